#!/usr/bin/env python3
"""run-tests.py - run SQLite's own TCL tests natively and on ltxfs, compare.

Each selected test file (e.g. test/wal2.test) runs with `testfixture
run1.tcl FILE --testdir=.` (see run1.tcl for why not plain `testfixture FILE
--testdir=.`) twice: once with a fresh plain directory as its working
directory (native) and once from the root of a fresh ltxfs mount (one daemon
per test file, so a crash or leftover file cannot spill into the next file).
tester.tcl creates and cd's into --testdir before running the file; with
"." every database the test makes lives in the mount root, which is all
ltxfs promises (no subdirectories).

Every run has a timeout; a run that prints no "N errors out of M tests"
summary crashed or hung.  The report lists, per file, native and ltxfs
results and the cases that fail on ltxfs but not natively.  Exit status is 1
if any case fails only on ltxfs, a file crashes or hangs only on ltxfs, or
ltxfs cannot be mounted; 2 for usage errors; else 0.

Usage: run-tests.py --testfixture BIN --srcdir SQLITE_SRC [--ltxfs BIN]
           [--tests "wal*.test pager1.test ..."] [--native-only]
           [--timeout 300] [--jobs 2] [--workdir DIR] [--report FILE]
"""

import argparse
import concurrent.futures
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltxfsmount  # noqa: E402

RUN1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run1.tcl")

# Native seconds of the slow files on a 2-core machine (measured; see
# docs/sqlite-tests.md).  Slow files are started first so that two jobs
# finish close together; unknown files count as fast.
KNOWN_SECONDS = {
    "walcrash3.test": 600, "walthread.test": 146, "pagerfault2.test": 67,
    "pagerfault.test": 34, "walslow.test": 20, "walprotocol.test": 20,
    "walsetlk.test": 15, "walfault.test": 13, "walcrash.test": 12,
    "walcrash2.test": 12, "walvfs.test": 10, "wal3.test": 5,
}

SUMMARY_RE = re.compile(r"^(\d+) errors out of (\d+) tests", re.M)
FAILURES_RE = re.compile(r"^!Failures on these tests:(.*)$", re.M)


class Result:
    """Outcome of one test file in one mode."""

    def __init__(self, name, mode):
        self.name = name
        self.mode = mode
        self.status = "crash"    # ok | fail | crash | timeout | nomount
        self.errors = 0
        self.tests = 0
        self.failures = []       # failing case names, in order, unique
        self.seconds = 0.0
        self.exit_code = None
        self.note = ""           # daemon trouble, mount errors, ...
        self.log = ""

    def short(self):
        """One cell of the report table."""
        if self.status in ("ok", "fail"):
            s = "%d/%d" % (self.errors, self.tests)
        else:
            s = self.status.upper()
        return "%-11s %6.1fs" % (s, self.seconds)


def parse_output(res, text):
    """Fill RES's counts, failures and status from testfixture output."""
    m = None
    for m in SUMMARY_RE.finditer(text):
        pass
    if m is None:
        return
    res.errors = int(m.group(1))
    res.tests = int(m.group(2))
    names = []
    for f in FAILURES_RE.finditer(text):
        for n in f.group(1).split():
            if n not in names:
                names.append(n)
    res.failures = names
    res.status = "fail" if res.errors else "ok"


def run_testfixture(res, testfixture, testfile, cwd, timeout, logpath):
    """Run one test file with CWD as its test directory; fill RES."""
    env = dict(os.environ)
    env.pop("SQLITE_TMPDIR", None)
    start = time.monotonic()
    with open(logpath, "wb") as log:
        p = subprocess.Popen([testfixture, RUN1, testfile, "--testdir=."],
                             cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
            res.status = "timeout"
    res.seconds = time.monotonic() - start
    res.exit_code = p.returncode
    res.log = logpath
    with open(logpath, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if res.status != "timeout":
        parse_output(res, text)
        if res.status == "crash":
            res.note = "exit status %s, no summary line" % p.returncode
    else:
        res.note = "killed after %d s" % timeout
    # Kill anything the test file left running in its process group.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def run_native(args, name):
    res = Result(name, "native")
    cwd = os.path.join(args.workdir, "native", name)
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    try:
        run_testfixture(res, args.testfixture,
                        os.path.join(args.testdir, name), cwd, args.timeout,
                        os.path.join(args.logdir, "native-%s.log" % name))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return res


def run_ltxfs(args, name):
    res = Result(name, "ltxfs")
    work = os.path.join(args.workdir, "ltxfs", name)
    m = ltxfsmount.LtxfsMount(args.ltxfs, work)
    logpath = os.path.join(args.logdir, "ltxfs-%s.log" % name)
    daemon_log = os.path.join(args.logdir, "ltxfs-%s.daemon.log" % name)
    try:
        try:
            m.start()
        except ltxfsmount.MountError as e:
            res.status = "nomount"
            res.note = str(e)
            res.log = logpath
            with open(logpath, "w") as f:
                f.write(str(e) + "\n")
            return res
        run_testfixture(res, args.testfixture,
                        os.path.join(args.testdir, name), m.mnt,
                        args.timeout, logpath)
        if not m.alive():
            res.note = "ltxfs daemon died or unmounted during the test"
            if res.status in ("ok", "fail"):
                res.status = "crash"
    finally:
        status = m.stop()
        if status not in (0, None) and not res.note:
            res.note = "ltxfs exited with status %s at shutdown" % status
        if os.path.exists(m.log):
            shutil.copyfile(m.log, daemon_log)
        m.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return res


def select_tests(testdir, patterns):
    """Expand glob PATTERNS against the test directory, in order, deduped.

    A pattern starting with '-' removes the files it matches from those
    selected so far ("wal*.test -walcrash3.test")."""
    have = sorted(f for f in os.listdir(testdir) if f.endswith(".test"))
    out = []
    for pat in patterns:
        drop = pat.startswith("-")
        if drop:
            pat = pat[1:]
        hits = [f for f in have if fnmatch.fnmatch(f, pat)]
        if not hits:
            raise SystemExit("run-tests: no test file matches %r in %s"
                             % (pat, testdir))
        if drop:
            out = [f for f in out if f not in hits]
            continue
        for h in hits:
            if h not in out:
                out.append(h)
    return out


def compare(nat, ltx):
    """Return (new_failures, problem) for one file; problem is '' if none."""
    if ltx is None:
        return [], ""
    if ltx.status == "nomount":
        return [], "ltxfs did not mount"
    new = [c for c in ltx.failures if c not in set(nat.failures)]
    nat_done = nat.status in ("ok", "fail")
    ltx_done = ltx.status in ("ok", "fail")
    if nat_done and not ltx_done:
        return new, "%s on ltxfs only (%s)" % (ltx.status, ltx.note)
    if ltx.note and ltx_done:
        return new, ltx.note
    return new, ""


def build_report(args, names, results, wall):
    """Return (report text, number of files with ltxfs-only problems)."""
    lines = []
    lines.append("SQLite TCL tests, testfixture %s" % args.testfixture)
    lines.append("columns: errors/tests and seconds; CRASH = no summary line,"
                 " TIMEOUT = killed after %d s" % args.timeout)
    lines.append("")
    hdr = "%-20s %-19s" % ("test file", "native")
    if not args.native_only:
        hdr += " %-19s %s" % ("ltxfs", "new on ltxfs")
    lines.append(hdr)
    bad_files = 0
    details = []
    tot_n = tot_l = 0.0
    for name in names:
        nat = results[(name, "native")]
        ltx = results.get((name, "ltxfs"))
        tot_n += nat.seconds
        row = "%-20s %-19s" % (name, nat.short())
        if ltx is not None:
            tot_l += ltx.seconds
            new, problem = compare(nat, ltx)
            mark = str(len(new)) if new else "-"
            if problem:
                mark += " !"
            row += " %-19s %s" % (ltx.short(), mark)
            if new or problem:
                bad_files += 1
                d = "%s:" % name
                if new:
                    d += "\n    fail on ltxfs only: " + " ".join(new)
                if problem:
                    d += "\n    " + problem.replace("\n", "\n    ")
                d += "\n    log: %s" % ltx.log
                details.append(d)
        elif nat.status not in ("ok", "fail"):
            details.append("%s: native %s (%s), log %s"
                           % (name, nat.status, nat.note, nat.log))
        lines.append(row)
    lines.append("")
    tot = "%-20s %-19s" % ("total", "%18.1fs" % tot_n)
    if not args.native_only:
        tot += " %-19s" % ("%18.1fs" % tot_l)
    lines.append(tot)
    lines.append("wall clock %.1f s with %d job(s)" % (wall, args.jobs))
    nat_fail = {}
    for name in names:
        nat = results[(name, "native")]
        if nat.failures:
            nat_fail[name] = nat.failures
    if nat_fail:
        lines.append("")
        lines.append("Cases failing natively too (not counted against ltxfs):")
        for name in names:
            if name in nat_fail:
                lines.append("  %s: %s" % (name, " ".join(nat_fail[name])))
    lines.append("")
    if args.native_only:
        crashed = [n for n in names
                   if results[(n, "native")].status not in ("ok", "fail")]
        if details:
            lines.append("Native runs that crashed or hung:")
            lines.extend("  " + d for d in details)
            lines.append("")
        lines.append("sqlite: %d passed, %d failed"
                     % (len(names) - len(crashed), len(crashed)))
        return "\n".join(lines) + "\n", len(crashed)
    if details:
        lines.append("Regressions on ltxfs (fail there, pass natively):")
        lines.extend("  " + d for d in details)
    else:
        lines.append("No test case fails on ltxfs that passes natively.")
    lines.append("")
    lines.append("sqlite: %d passed, %d failed"
                 % (len(names) - bad_files, bad_files))
    return "\n".join(lines) + "\n", bad_files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testfixture", required=True)
    ap.add_argument("--srcdir", required=True,
                    help="unpacked SQLite source tree (holds test/)")
    ap.add_argument("--ltxfs", help="ltxfs binary")
    ap.add_argument("--native-only", action="store_true")
    ap.add_argument("--tests", default="wal*.test journal*.test pager*.test",
                    help="space separated globs relative to test/; "
                    "-GLOB drops files")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--report", default=None)
    args = ap.parse_args()

    args.testfixture = os.path.abspath(args.testfixture)
    args.testdir = os.path.join(os.path.abspath(args.srcdir), "test")
    if not os.access(args.testfixture, os.X_OK):
        print("run-tests: no testfixture at %s" % args.testfixture,
              file=sys.stderr)
        return 2
    if not args.native_only and not args.ltxfs:
        print("run-tests: give --ltxfs BIN or --native-only", file=sys.stderr)
        return 2
    if args.workdir is None:
        args.workdir = os.path.join(os.path.dirname(args.srcdir.rstrip("/")),
                                    "sqlite-run")
    args.workdir = os.path.abspath(args.workdir)
    args.logdir = os.path.join(args.workdir, "logs")
    shutil.rmtree(args.logdir, ignore_errors=True)
    os.makedirs(args.logdir)
    names = select_tests(args.testdir, args.tests.split())

    if not args.native_only:
        # Fail fast, and clearly, if ltxfs cannot mount at all.
        probe = ltxfsmount.LtxfsMount(args.ltxfs,
                                      os.path.join(args.workdir, "probe"))
        try:
            probe.start()
        except ltxfsmount.MountError as e:
            print("run-tests: ltxfs does not mount, no ltxfs run possible:\n"
                  + str(e), file=sys.stderr)
            return 1
        finally:
            probe.stop()
            probe.cleanup()

    jobs = []
    for name in sorted(names, key=lambda n: -KNOWN_SECONDS.get(n, 0)):
        jobs.append((name, "native"))
        if not args.native_only:
            jobs.append((name, "ltxfs"))
    results = {}
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = {}
        for name, mode in jobs:
            fn = run_native if mode == "native" else run_ltxfs
            futs[ex.submit(fn, args, name)] = (name, mode)
        for fut in concurrent.futures.as_completed(futs):
            r = fut.result()
            results[(r.name, r.mode)] = r
            print("  %-7s %-20s %s %s" % (r.mode, r.name, r.short(), r.note
                                          .split("\n")[0]), flush=True)
    wall = time.monotonic() - start

    text, bad = build_report(args, names, results, wall)
    print()
    print(text, end="")
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
