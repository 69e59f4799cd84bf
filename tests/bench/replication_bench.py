#!/usr/bin/python3
"""replication_bench.py - replication lag, snapshot speed and the primary's
write speed with replicas, on 127.0.0.1 (docs/benchmarks.md has the method).

  lag        a writer commits on the primary at a fixed rate (WAL,
             synchronous=NORMAL, one row per transaction); a reader on the
             replica's mount polls max(id) in a loop.  Lag of a transaction
             = the moment the reader first sees it minus the moment its
             commit returned on the primary (one clock: same machine).
  snapshot   a database of --snapshot-mib MiB on the primary; a new replica
             starts; time until its position equals the primary's (median of
             3 new replicas), against
             `cp` of the primary's database file on the same disk (without
             and with a final fsync, as the replica syncs its copy).
  primary    insert_bench (WAL, NORMAL) on the primary alone, then with two
             replicas attached, in the same run.

Prints a markdown table and writes it to --out.
"""

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
import ltxfsmount  # noqa: E402

HOST = "bench-primary"


class Cluster:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.primary = ltxfsmount.LtxfsMount(
            binary, os.path.join(work, "primary"), lease=None)
        self.primary.lease = ("lease:\n  type: static\n  candidate: true\n  hostname: %s\n"
                              "  advertise-url: \"http://127.0.0.1:%d\"\n"
                              % (HOST, self.primary.port))
        self.replicas = []

    def add_replica(self, name):
        r = ltxfsmount.LtxfsMount(
            self.binary, os.path.join(self.work, name),
            lease="lease:\n  type: static\n  candidate: false\n  hostname: %s\n"
                  "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, self.primary.port))
        self.replicas.append(r)
        return r

    def stop(self):
        for m in self.replicas + [self.primary]:
            m.stop()
            m.cleanup()


def pos(mount, name):
    try:
        with open(os.path.join(mount.mnt, name + "-pos")) as f:
            return f.read()
    except OSError:
        return None


def wait_same_pos(primary, replica, name, timeout):
    deadline = time.monotonic() + timeout
    want = pos(primary, name)
    while pos(replica, name) != want:
        if time.monotonic() > deadline:
            raise RuntimeError("replica did not reach %r" % want)
        time.sleep(0.001)


def poll_replica(path, n, seen):
    """Reader process: note when each id first shows on the replica.  A
    process of its own: a thread would wait for the writer's GIL."""
    r = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    last = 0
    deadline = time.monotonic() + 600
    while last < n and time.monotonic() < deadline:
        try:
            top = r.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        now = time.monotonic_ns()
        for i in range(last + 1, top + 1):
            seen[i] = now
        last = max(last, top)
    r.close()


def measure_lag(c, replica, rate, seconds):
    name = "lag-%d.db" % rate
    w = sqlite3.connect(os.path.join(c.primary.mnt, name), isolation_level=None)
    w.execute("PRAGMA journal_mode=wal")
    w.execute("PRAGMA synchronous=NORMAL")
    w.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, at INTEGER)")
    wait_same_pos(c.primary, replica, name, 30)
    n = int(rate * seconds)
    committed = [0] * (n + 1)
    seen = multiprocessing.Array("q", n + 1, lock=False)
    reader = multiprocessing.Process(target=poll_replica,
                                     args=(os.path.join(replica.mnt, name), n, seen))
    reader.start()
    time.sleep(0.5)
    start = time.monotonic_ns()
    for i in range(1, n + 1):
        slot = start + int((i - 1) * 1e9 / rate)
        delay = (slot - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        w.execute("INSERT INTO t(id, at) VALUES (?, ?)", (i, slot))
        committed[i] = time.monotonic_ns()
    achieved = n / ((time.monotonic_ns() - start) / 1e9)
    reader.join(timeout=60)
    if reader.is_alive():
        reader.kill()
    w.close()
    lags = sorted((seen[i] - committed[i]) / 1e6 for i in range(1, n + 1) if seen[i])
    if len(lags) < n:
        raise RuntimeError("%d of %d transactions never seen on the replica" % (n - len(lags), n))
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    return {"rate": rate, "achieved": achieved, "p50": p(0.50), "p99": p(0.99),
            "max": lags[-1], "n": n}


def make_big_db(c, mib):
    path = os.path.join(c.primary.mnt, "big.db")
    rows = mib * 1024 * 1024 // 4096
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=wal")
    db.execute("CREATE TABLE t(v BLOB)")
    batch = 4096
    for first in range(0, rows, batch):
        db.execute("INSERT INTO t SELECT randomblob(3900) FROM (WITH RECURSIVE c(x) AS "
                   "(SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) SELECT x FROM c)",
                   (min(batch, rows - first),))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return os.path.join(c.primary.data, "dbs", "big.db", "database")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def measure_snapshot(c, mib, work):
    src = make_big_db(c, mib)
    size = os.path.getsize(src)
    dst = os.path.join(work, "cp-copy.db")

    def cp(sync):
        if os.path.exists(dst):
            os.unlink(dst)
        subprocess.run(["cp", src, dst], check=True)
        if sync:
            subprocess.run(["sync", "-f", dst], check=True)

    cp(False)                                   # the source in the cache, as for ltxfs
    t_cp = statistics.median(timed(lambda: cp(False)) for _ in range(3))
    t_cp_sync = statistics.median(timed(lambda: cp(True)) for _ in range(3))
    os.unlink(dst)
    times = []
    for i in range(3):
        r = c.add_replica("snapshot-replica%d" % i)
        subprocess.run(["sync"], check=True)
        t0 = time.monotonic()
        r.start()
        wait_same_pos(c.primary, r, "big.db", 600)
        times.append(time.monotonic() - t0)
        r.stop()
        r.cleanup()
    t_snap = statistics.median(times)
    mb = size / 1e6
    return {"bytes": size, "snap": t_snap, "cp": t_cp, "cp_sync": t_cp_sync,
            "snap_mbs": mb / t_snap, "cp_mbs": mb / t_cp, "cp_sync_mbs": mb / t_cp_sync}


def cpu_seconds(mount):
    """User + system CPU time the daemon has used so far."""
    with open("/proc/%d/stat" % mount.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def insert_rate(bench, mnt, seconds):
    db = os.path.join(mnt, "insert.db")
    out = subprocess.run([bench, db, "wal", "normal", str(seconds)], check=True,
                         capture_output=True, text=True).stdout.split()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return float(out[4])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--insert-bench", required=True)
    ap.add_argument("--workdir", default="build/bench-run/replication")
    ap.add_argument("--out", default="build/bench-replication.md")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--snapshot-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    lines = ["# ltxfs replication benchmark", ""]

    # Primary alone, then with two replicas, alternating, median of --repeat.
    c = Cluster(os.path.abspath(args.ltxfs), work)
    try:
        c.primary.start()
        alone, attached, cpu, cpu_alone = [], [], [], []
        rs = [c.add_replica("replica%d" % i) for i in (1, 2)]
        for _ in range(args.repeat):
            before = cpu_seconds(c.primary)
            rate = insert_rate(args.insert_bench, c.primary.mnt, args.seconds / 2)
            alone.append(rate)
            cpu_alone.append((cpu_seconds(c.primary) - before) / (rate * args.seconds / 2) * 1e6)
            for r in rs:
                r.start()
            time.sleep(0.5)
            before = [cpu_seconds(m) for m in [c.primary] + rs]
            rate = insert_rate(args.insert_bench, c.primary.mnt, args.seconds / 2)
            used = [cpu_seconds(m) - b for m, b in zip([c.primary] + rs, before)]
            attached.append(rate)
            cpu.append([u / (rate * args.seconds / 2) * 1e6 for u in used])
            for r in rs:
                r.stop()
                r.cleanup()
        a, b = statistics.median(alone), statistics.median(attached)
        us = [statistics.median(x[i] for x in cpu) for i in range(3)]
        lines += ["| primary, INSERT WAL+NORMAL | tx/s |", "|---|---|",
                  "| alone | %.0f |" % a, "| two replicas attached | %.0f (%.1f%%) |"
                  % (b, 100.0 * (b - a) / a), "",
                  "CPU per transaction: primary daemon alone %.0f us; with two replicas "
                  "attached: primary daemon %.0f us, replicas %.0f us and %.0f us (%d cores)."
                  % (statistics.median(cpu_alone), us[0], us[1], us[2], os.cpu_count()), ""]

        r = rs[0]
        r.start()
        lines += ["| lag, commit on primary to visible on replica | achieved tx/s | p50 ms | "
                  "p99 ms | max ms |", "|---|---|---|---|---|"]
        for rate in (100, 1000):
            m = measure_lag(c, r, rate, args.seconds)
            lines.append("| %d tx/s, %d transactions | %.0f | %.2f | %.2f | %.2f |"
                         % (rate, m["n"], m["achieved"], m["p50"], m["p99"], m["max"]))
        r.stop()
        r.cleanup()
        lines.append("")

        s = measure_snapshot(c, args.snapshot_mib, work)
        lines += ["| snapshot of %.0f MiB | seconds | MB/s |" % (s["bytes"] / 2**20),
                  "|---|---|---|",
                  "| new replica, start to caught up | %.2f | %.0f |" % (s["snap"], s["snap_mbs"]),
                  "| cp | %.2f | %.0f |" % (s["cp"], s["cp_mbs"]),
                  "| cp + sync | %.2f | %.0f |" % (s["cp_sync"], s["cp_sync_mbs"]),
                  "", "snapshot / cp throughput: %.2f (cp + sync: %.2f)"
                  % (s["snap_mbs"] / s["cp_mbs"], s["snap_mbs"] / s["cp_sync_mbs"])]
    finally:
        c.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
