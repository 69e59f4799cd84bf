#!/usr/bin/python3
"""backup_bench.py - continuous backup, measured (docs/benchmarks.md, "Backup").

  lag       a single node with backup.url (default sync-interval 1 s) and a
            writer committing one row per transaction (WAL, synchronous=NORMAL)
            at 100 and at 1,000 tx/s for --seconds; a watcher lists the
            storage every 10 ms.  Lag of a transaction = when the first object
            holding it appears minus when its commit returned (one clock).
  restore   a database of --mib MiB is backed up (one transaction), then
            `ltxfs restore` rebuilds it (download, verify, apply,
            integrity_check) against a plain download of the same objects from
            the same storage: from s3rver (the tests' S3 server, when
            installed: make bench-backup installs it), `curl` GETs of the same
            objects; from a directory (file://), reading them.
  objects   objects stored per hour of 100 tx/s after compaction, from the
            default levels (l0 per sync, l1 per 30 s, l2 per 5 min, l3 per
            hour), counted over --seconds and scaled to an hour.

Prints a markdown table and writes it to --out.
"""

import argparse
import os
import urllib.parse
import xml.etree.ElementTree as ET
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import ltxfsmount  # noqa: E402


def objects(store, name):
    """{level: [(min, max, path)]} of database `name` in a file:// store."""
    out = {}
    top = os.path.join(store, name)
    for level in ("l0", "l1", "l2", "l3", "snap"):
        d = os.path.join(top, level)
        try:
            files = os.listdir(d)
        except FileNotFoundError:
            continue
        out[level] = [(int(f[17:33], 16), int(f[34:50], 16), os.path.join(d, f))
                      for f in files if f.endswith(".ltx")]
    return out


def newest_shipped(store, name):
    return max((mx for objs in objects(store, name).values() for _, mx, _ in objs), default=0)


def pos(mnt, name):
    with open(os.path.join(mnt, name + "-pos")) as f:
        return int(f.read()[:16], 16)


def measure_lag(binary, work, rate, seconds):
    """p50, p99, max lag in ms, and the rate achieved."""
    store = os.path.join(work, "store-%d" % rate)
    os.makedirs(store)
    cfg = "backup:\n  url: \"file://%s\"\n" % store
    with ltxfsmount.LtxfsMount(binary, os.path.join(work, "lag-%d" % rate),
                               extra_config=cfg) as m:
        con = sqlite3.connect(os.path.join(m.mnt, "lag.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode=wal")
        con.execute("PRAGMA synchronous=normal")
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        committed = {}               # txid -> monotonic time its commit returned
        seen = {}                    # txid -> monotonic time it was first in storage
        stop_at = [float("inf")]     # the watcher's end: 30 s after the writer's

        def watch():
            last = 0
            while time.monotonic() < stop_at[0] and (
                    stop_at[0] == float("inf") or last < max(committed, default=0)):
                now = time.monotonic()
                top = newest_shipped(store, "lag.db")
                for t in range(last + 1, top + 1):
                    seen[t] = now
                last = max(last, top)
                time.sleep(0.01)
        w = threading.Thread(target=watch)
        w.start()
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            due = t0 + n / rate
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            con.execute("INSERT INTO t(v) VALUES (randomblob(100))")
            committed[pos(m.mnt, "lag.db")] = time.monotonic()
            n += 1
        achieved = n / (time.monotonic() - t0)
        stop_at[0] = time.monotonic() + 30
        w.join()
        con.close()
    lags = sorted((seen[t] - c) * 1000 for t, c in committed.items() if t in seen)
    missing = len(committed) - len(lags)
    if not lags:
        return None
    return (statistics.median(lags), lags[int(len(lags) * 0.99) - 1] if len(lags) > 1 else lags[0],
            lags[-1], achieved, missing)


def measure_restore(binary, work, mib):
    """Seconds of `ltxfs restore` and of a plain read of the same objects."""
    store = os.path.join(work, "store-restore")
    os.makedirs(store)
    cfg = "backup:\n  url: \"file://%s\"\n" % store
    with ltxfsmount.LtxfsMount(binary, os.path.join(work, "restore"), extra_config=cfg) as m:
        con = sqlite3.connect(os.path.join(m.mnt, "big.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode=wal")
        con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
        rows = mib * 1024 * 1024 // 4000
        con.execute("BEGIN")
        con.executemany("INSERT INTO big(v) VALUES(randomblob(3900))", [()] * rows)
        con.execute("COMMIT")
        con.close()
        target = pos(m.mnt, "big.db")
        deadline = time.monotonic() + 600
        while newest_shipped(store, "big.db") < target:
            if time.monotonic() > deadline:
                raise RuntimeError("the backup did not reach TXID %d" % target)
            time.sleep(0.2)
        config = m.config
        paths = [p for objs in objects(store, "big.db").values() for _, _, p in objs]
        nbytes = sum(os.path.getsize(p) for p in paths)
        os.sync()
        out = os.path.join(work, "restored.db")
        t0 = time.monotonic()
        subprocess.run([binary, "restore", "-config", config, "-name", "big.db", "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        t_restore = time.monotonic() - t0
        t0 = time.monotonic()
        for p in paths:
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass
        t_plain = time.monotonic() - t0
        os.unlink(out)
    return t_restore, t_plain, nbytes


EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def curl_s3(s3, path, out="/dev/null"):
    """One SigV4-signed GET with curl: the plain download to compare with."""
    subprocess.run(["curl", "-sf", "-o", out, "--aws-sigv4", "aws:amz:us-east-1:s3",
                    "--user", "%s:%s" % (s3.access_key, s3.secret_key), "-H",
                    "x-amz-content-sha256: " + EMPTY_SHA256,
                    "%s/%s/%s" % (s3.url, s3.bucket, path)], check=True)


def measure_restore_s3(binary, work, mib):
    """As measure_restore, against s3rver: `ltxfs restore` vs curl GETs."""
    from s3_server import S3Server
    with S3Server(os.path.join(work, "s3rver")) as s3:
        cfg = ("backup:\n  url: \"s3://%s/bench\"\n  endpoint: \"%s\"\n"
               "  force-path-style: true\n  access-key-id: \"%s\"\n"
               "  secret-access-key: \"%s\"\n" % (s3.bucket, s3.url, s3.access_key,
                                                   s3.secret_key))
        with ltxfsmount.LtxfsMount(binary, os.path.join(work, "restore-s3"),
                                   extra_config=cfg) as m:
            con = sqlite3.connect(os.path.join(m.mnt, "big.db"), isolation_level=None)
            con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
            con.execute("BEGIN")
            con.executemany("INSERT INTO big(v) VALUES(randomblob(3900))",
                            [()] * (mib * 1024 * 1024 // 4000))
            con.execute("COMMIT")
            con.close()
            target = pos(m.mnt, "big.db")
            deadline = time.monotonic() + 900
            while True:
                cp = subprocess.run([binary, "backup", "list", "-config", m.config, "-name",
                                     "big.db"], capture_output=True, text=True)
                rows = cp.stdout.splitlines()[1:]
                if rows and int(rows[0].split()[2]) >= target:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the S3 backup did not reach TXID %d" % target)
                time.sleep(0.5)
            config = m.config
        listing = os.path.join(work, "list.xml")
        curl_s3(s3, "?list-type=2&prefix=bench%2Fbig.db%2F", out=listing)
        root = ET.parse(listing).getroot()
        local = lambda e: e.tag.rsplit("}", 1)[-1]   # whatever namespace the server uses
        keys = []
        for e in root:
            if local(e) == "Contents":
                f = {local(c): c.text for c in e}
                keys.append((f["Key"], int(f["Size"])))
        keys = [(k, n) for k, n in keys if "/epoch/" not in k]
        nbytes = sum(n for _, n in keys)
        out = os.path.join(work, "restored-s3.db")
        t0 = time.monotonic()
        subprocess.run([binary, "restore", "-config", config, "-name", "big.db", "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        t_restore = time.monotonic() - t0
        t0 = time.monotonic()
        for k, _ in keys:
            curl_s3(s3, urllib.parse.quote(k))
        t_plain = time.monotonic() - t0
        os.unlink(out)
    return t_restore, t_plain, nbytes


def measure_objects(binary, work, seconds):
    store = os.path.join(work, "store-objects")
    os.makedirs(store)
    cfg = "backup:\n  url: \"file://%s\"\n" % store
    with ltxfsmount.LtxfsMount(binary, os.path.join(work, "objects"), extra_config=cfg) as m:
        con = sqlite3.connect(os.path.join(m.mnt, "o.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode=wal")
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            due = t0 + n / 100.0
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            con.execute("INSERT INTO t(v) VALUES (randomblob(100))")
            n += 1
        con.close()
        time.sleep(2)
        counts = {k: len(v) for k, v in objects(store, "o.db").items()}
    return counts, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--workdir", default="build/bench-run/backup")
    ap.add_argument("--out", default="build/bench-backup.md")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--objects-seconds", type=float, default=90)
    ap.add_argument("--no-s3", action="store_true", help="skip the S3 restore measure")
    args = ap.parse_args()
    binary = os.path.abspath(args.ltxfs)
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    lines = ["| measure | result | target |", "|---|---|---|"]
    for rate in (100, 1000):
        r = measure_lag(binary, work, rate, args.seconds)
        if r is None:
            lines.append("| lag at %d tx/s | nothing shipped | p99 <= 2 s |" % rate)
            continue
        p50, p99, mx, achieved, missing = r
        lines.append("| backup lag at %d tx/s (achieved %.0f) | p50 %.0f ms, p99 %.0f ms, max %.0f ms"
                     "%s | p99 <= 2000 ms |" % (rate, achieved, p50, p99, mx,
                                                 ", %d never seen" % missing if missing else ""))
        print(lines[-1], flush=True)
    t_restore, t_plain, nbytes = measure_restore(binary, work, args.mib)
    lines.append("| file://: restore of %d MiB (%d bytes of objects) | %.1f s (%.0f MiB/s) vs "
                 "reading the objects %.2f s: %.2fx | |"
                 % (args.mib, nbytes, t_restore, nbytes / t_restore / 2**20, t_plain,
                    t_plain / t_restore))
    print(lines[-1], flush=True)
    if not args.no_s3:
        t_restore, t_plain, nbytes = measure_restore_s3(binary, work, args.mib)
        lines.append("| s3rver: restore of %d MiB (%d bytes of objects) | %.1f s (%.0f MiB/s) vs "
                     "curl GETs of the same objects %.1f s (%.0f MiB/s): %.2fx | >= 0.5x |"
                     % (args.mib, nbytes, t_restore, nbytes / t_restore / 2**20, t_plain,
                        nbytes / t_plain / 2**20, t_plain / t_restore))
        print(lines[-1], flush=True)
    counts, secs = measure_objects(binary, work, args.objects_seconds)
    per_hour = {k: v * 3600.0 / secs for k, v in counts.items()}
    lines.append("| objects per hour of 100 tx/s | %s (measured over %.0f s, scaled) | |"
                 % (", ".join("%s %.0f" % (k, per_hour[k]) for k in sorted(per_hour)), secs))
    print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
