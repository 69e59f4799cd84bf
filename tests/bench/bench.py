#!/usr/bin/env python3
"""bench.py - SQLite write benchmarks, native directory vs ltxfs mount.

Runs, side by side in one process and on one filesystem:
  * speedtest1 --size N --journal wal|delete  (SQLite's own benchmark; the
    time is speedtest1's TOTAL line, median of --repeat runs)
  * insert_bench for --seconds each: autocommit INSERT of a 100-byte blob in
    WAL+NORMAL, WAL+FULL and DELETE+FULL (tx/s, median of --repeat runs)
For each workload the native run and the ltxfs runs alternate, so slow drift
of the machine hits all alike.  The native databases live in WORKDIR/native,
the ltxfs ones in the root of a fresh single-node mount at WORKDIR/ltxfs/mnt
(backing data in WORKDIR/ltxfs/data, same filesystem), and, with --locks
both (the default), of a second mount with `fuse.locks: kernel` at
WORKDIR/ltxfs-k.  The script starts and stops ltxfs itself and always
unmounts.

Prints a markdown table (also written to --out) with the targets:
speedtest1 WAL <= 1.5x native time, DELETE <= 2x; WAL+NORMAL >= 10,000 tx/s
on ltxfs; fsync-bound insert modes >= 0.7x native throughput.  Missing a
target does not fail the run; failing to mount or a crashed workload does
(exit 1).  See docs/benchmarks.md.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
import ltxfsmount  # noqa: E402

TOTAL_RE = re.compile(r"TOTAL\.*\s+([0-9.]+)s")

# (key, label, kind, args, target description, target check)
# For kind "speedtest" the ratio is ltxfs time / native time (lower is
# better); for "insert" it is ltxfs tx/s / native tx/s (higher is better).
WORKLOADS = [
    ("st-wal", "speedtest1 --size {size}, WAL", "speedtest", ("wal",),
     "<= 1.5x native time", lambda n, l: l / n <= 1.5),
    ("st-delete", "speedtest1 --size {size}, DELETE", "speedtest",
     ("delete",), "<= 2x native time", lambda n, l: l / n <= 2.0),
    ("ins-wal-normal", "autocommit INSERT, WAL, synchronous=NORMAL",
     "insert", ("wal", "normal"), ">= 10,000 tx/s",
     lambda n, l: l >= 10000),
    ("ins-wal-full", "autocommit INSERT, WAL, synchronous=FULL", "insert",
     ("wal", "full"), ">= 0.7x native tx/s", lambda n, l: l / n >= 0.7),
    ("ins-delete-full", "autocommit INSERT, DELETE, synchronous=FULL",
     "insert", ("delete", "full"), ">= 0.7x native tx/s",
     lambda n, l: l / n >= 0.7),
]

# LiteFS v0.5.14 on a machine like ours (design/README.md), for context.
LITEFS_RATIO = {
    "st-wal": "7.1x time",
    "st-delete": "12.5x time",
    "ins-wal-normal": "0.007x (288 tx/s)",
    "ins-wal-full": "0.09x",
    "ins-delete-full": "0.22x",
}


class BenchError(Exception):
    """A workload could not run."""


def remove_db(path):
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def run(cmd, timeout):
    """Run CMD, return stdout; raise BenchError on failure or timeout."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s: timed out after %d s" % (cmd[0], timeout))
    if p.returncode != 0:
        raise BenchError("%s exited %d: %s" % (
            " ".join(cmd), p.returncode,
            p.stderr.decode("utf-8", "replace").strip()[-2000:]))
    return p.stdout.decode("utf-8", "replace")


def speedtest(args, dbdir, journal):
    """Run speedtest1 once in DBDIR; return its TOTAL seconds."""
    db = os.path.join(dbdir, "speedtest1-%s.db" % journal)
    remove_db(db)
    out = run([args.speedtest1, "--size", str(args.size), "--journal",
               journal, db], args.timeout)
    remove_db(db)
    v = re.search(r"Speedtest1 for SQLite (\S+)", out)
    if v:
        args.sqlite_version = v.group(1)
    m = TOTAL_RE.search(out)
    if m is None:
        raise BenchError("speedtest1: no TOTAL line in output:\n" + out)
    return float(m.group(1))


def insert(args, dbdir, journal, sync):
    """Run insert_bench once in DBDIR; return transactions per second."""
    db = os.path.join(dbdir, "insert-%s-%s.db" % (journal, sync))
    out = run([args.insert_bench, db, journal, sync, str(args.seconds)],
              args.timeout)
    remove_db(db)
    fields = out.split()
    if len(fields) != 5:
        raise BenchError("insert_bench: unexpected output %r" % out)
    return float(fields[4])


def measure(args, kind, wargs, dbdir):
    if kind == "speedtest":
        return speedtest(args, dbdir, *wargs)
    return insert(args, dbdir, *wargs)


def fmt_value(kind, v):
    if v is None:
        return "n/a"
    if kind == "speedtest":
        return "%.2f s" % v
    return "{:,.0f} tx/s".format(v)


def fmt_ratio(kind, n, l):
    if n is None or l is None or n == 0:
        return "n/a"
    if kind == "speedtest":
        return "%.2fx time" % (l / n)
    return "%.2fx tx/s" % (l / n)


def describe_fs(path):
    """One line: device, size and type of the filesystem holding PATH."""
    try:
        out = subprocess.run(["df", "-hT", path], stdout=subprocess.PIPE,
                             text=True).stdout.splitlines()
        f = out[-1].split()
        return "%s (%s, %s, %s free)" % (f[6], f[0], f[1], f[4])
    except (OSError, IndexError):
        return "?"


MODE_LABEL = {"ltxfs": "ltxfs", "kernel": "ltxfs, kernel locks"}


def render(args, rows, header):
    """Return the markdown report."""
    lines = list(header)
    lines.append("")
    head = "| workload | native |"
    rule = "|---|---|"
    for m in args.modes:
        head += " %s | vs native | met |" % MODE_LABEL[m]
        rule += "---|---|---|"
    lines.append(head + " target | LiteFS vs native (ref.) |")
    lines.append(rule + "---|---|")
    for r in rows:
        line = "| %s | %s |" % (r["label"], fmt_value(r["kind"], r["native"]))
        for m in args.modes:
            line += " %s | %s | %s |" % (
                fmt_value(r["kind"], r[m]), fmt_ratio(r["kind"], r["native"], r[m]),
                r["met"][m])
        lines.append(line + " %s | %s |" % (r["target"], LITEFS_RATIO[r["key"]]))
    notes = [r for r in rows if r.get("error")]
    if notes:
        lines.append("")
        for r in notes:
            lines.append("- %s: %s" % (r["label"], r["error"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", help="ltxfs binary")
    ap.add_argument("--native-only", action="store_true")
    ap.add_argument("--speedtest1", required=True)
    ap.add_argument("--insert-bench", required=True)
    ap.add_argument("--workdir", default="build/bench-run")
    ap.add_argument("--out", default="build/bench-results.md")
    ap.add_argument("--size", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="",
                    help="comma separated workload keys: "
                    + ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--locks", choices=["ltxfs", "kernel", "both"], default="both",
                    help="fuse.locks of the ltxfs mount(s) to measure")
    args = ap.parse_args()
    args.modes = [] if args.native_only else (
        ["ltxfs", "kernel"] if args.locks == "both" else [args.locks])
    if not args.native_only and not args.ltxfs:
        ap.error("give --ltxfs BIN or --native-only")
    args.speedtest1 = os.path.abspath(args.speedtest1)
    args.insert_bench = os.path.abspath(args.insert_bench)
    workloads = [w for w in WORKLOADS
                 if not args.only or w[0] in args.only.split(",")]

    work = os.path.abspath(args.workdir)
    native_dir = os.path.join(work, "native")
    shutil.rmtree(native_dir, ignore_errors=True)
    os.makedirs(native_dir)
    mounts = {}
    for m in args.modes:
        mounts[m] = ltxfsmount.LtxfsMount(
            args.ltxfs, os.path.join(work, "ltxfs" if m == "ltxfs" else "ltxfs-k"), locks=m)

    args.sqlite_version = "?"
    header = [
        "# ltxfs benchmark results",
        "",
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- machine: %s, %d cores, kernel %s" % (
            platform.machine(), os.cpu_count() or 0, platform.release()),
        "- filesystem (native dir and ltxfs data dir): %s"
        % describe_fs(work),
    ]

    rows = []
    failed = False
    try:
        for m, mount in mounts.items():
            try:
                mount.start()
            except ltxfsmount.MountError as e:
                print("bench: ltxfs (fuse.locks: %s) does not mount, no ltxfs "
                      "numbers:\n%s" % (m, e), file=sys.stderr)
                return 1
        for key, label, kind, wargs, target, check in workloads:
            label = label.format(size=args.size)
            r = {"key": key, "label": label, "kind": kind, "target": target,
                 "native": None, "met": {}}
            nat, ltx = [], {m: [] for m in mounts}
            try:
                for _ in range(args.repeat):
                    nat.append(measure(args, kind, wargs, native_dir))
                    for m, mount in mounts.items():
                        ltx[m].append(measure(args, kind, wargs, mount.mnt))
                        if not mount.alive():
                            raise BenchError("ltxfs died during this "
                                             "workload; log: %s" % mount.log)
            except BenchError as e:
                r["error"] = str(e)
                failed = True
            r["native"] = statistics.median(nat) if nat else None
            line = "  %-45s native %-14s" % (label, fmt_value(kind, r["native"]))
            for m in mounts:
                r[m] = statistics.median(ltx[m]) if ltx[m] else None
                r["met"][m] = "n/a"
                if r["native"] and r[m]:
                    r["met"][m] = "yes" if check(r["native"], r[m]) else "NO"
                line += " %s %-14s %s" % (m, fmt_value(kind, r[m]),
                                          fmt_ratio(kind, r["native"], r[m]))
            print(line, flush=True)
            if "error" in r:
                print("    error: %s" % r["error"], file=sys.stderr)
            rows.append(r)
            if any(not mount.alive() for mount in mounts.values()):
                break
    finally:
        for m, mount in mounts.items():
            status = mount.stop()
            if status not in (0, None):
                print("bench: ltxfs exited with status %s; log %s"
                      % (status, mount.log), file=sys.stderr)
            mount.cleanup()
        shutil.rmtree(native_dir, ignore_errors=True)

    header.append("- SQLite %s, speedtest1 --size %d, inserts %g s each,"
                  " median of %d run(s)" % (args.sqlite_version, args.size,
                                            args.seconds, args.repeat))
    if args.native_only:
        header.append("- **native only: ltxfs was not run**")
    text = render(args, rows, header)
    print()
    print(text, end="")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print("\nwritten to %s" % args.out)
    return 1 if failed else 0


def interrupted(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # SIGTERM unwinds like ^C, so the finally in main() stops ltxfs.
    signal.signal(signal.SIGTERM, interrupted)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
