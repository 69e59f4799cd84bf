#!/usr/bin/python3
"""replication_bench.py - replication lag, snapshot speed and the primary's
write speed with replicas, on 127.0.0.1 (docs/benchmarks.md has the method).

Lag and snapshot are measured on two clusters side by side in one run:
"plain" (HTTP, no token) and "tls" (HTTPS with mutual TLS and a bearer
token on every request, as deploy/local-cluster.sh and docs/deployment.md
set a cluster up: EC P-256 certificates of a throwaway CA made with the
openssl CLI), alternating plain and tls measurement by measurement so that
a shared machine's load drifts over both alike.  --tls plain or --tls tls
measures one of them only.  The primary's speed is measured on plain.

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
  sync       replication.mode async against sync (min-acks 1, two replicas
             each), side by side: insert_bench tx/s, and the latency of
             single autocommit INSERTs (p50/p99) from Python's sqlite3; then
             sync with 20 ms added each way between the replicas and the
             primary (delay_proxy.py: +40 ms per round trip).

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
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import ltxfsmount  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from tls_pki import make_ca, make_cert  # noqa: E402

HOST = "bench-primary"
TOKEN = "bench-token-" + "b" * 32


def secure_config(pki):
    """The http: lines (after addr) of a node over HTTPS with mutual TLS and
    the token; one certificate for every node (all on 127.0.0.1)."""
    return ("  token: %s\n  tls:\n    cert: %s\n    key: %s\n    ca: %s\n"
            "    client-auth: true\n" % (TOKEN, os.path.join(pki, "node.crt"),
                                         os.path.join(pki, "node.key"),
                                         os.path.join(pki, "ca.crt")))


class Cluster:
    """A primary and its replicas; with `pki` (a directory with ca.crt,
    node.crt, node.key) over HTTPS with the token."""

    def __init__(self, binary, work, pki=None):
        self.binary = binary
        self.work = work
        self.extra = secure_config(pki) if pki else ""
        self.scheme = "https" if pki else "http"
        self.primary = ltxfsmount.LtxfsMount(
            binary, os.path.join(work, "primary"), lease=None, extra_config=self.extra)
        self.primary.lease = ("lease:\n  type: static\n  candidate: true\n  hostname: %s\n"
                              "  advertise-url: \"%s://127.0.0.1:%d\"\n"
                              % (HOST, self.scheme, self.primary.port))
        self.replicas = []

    def add_replica(self, name):
        r = ltxfsmount.LtxfsMount(
            self.binary, os.path.join(self.work, name), extra_config=self.extra,
            lease="lease:\n  type: static\n  candidate: false\n  hostname: %s\n"
                  "  advertise-url: \"%s://127.0.0.1:%d\"\n"
                  % (HOST, self.scheme, self.primary.port))
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


def cp_baseline(src, work):
    """Seconds of `cp` of the primary's database file on the same disk,
    without and with a final sync (median of 3; source in the cache)."""
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
    return t_cp, t_cp_sync


def snapshot_once(c, i):
    """Seconds from a new replica's start until it has big.db."""
    r = c.add_replica("snapshot-replica%d" % i)
    subprocess.run(["sync"], check=True)
    t0 = time.monotonic()
    r.start()
    wait_same_pos(c.primary, r, "big.db", 600)
    t = time.monotonic() - t0
    r.stop()
    r.cleanup()
    return t


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


def make_pki(work):
    d = os.path.join(work, "pki")
    os.makedirs(d)
    make_ca(d, "ca")
    make_cert(d, "ca", "node")
    return d


def primary_speed(c, args, label):
    """insert_bench on the primary alone, then with two replicas, alternating."""
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
    return ["| primary (%s), INSERT WAL+NORMAL | tx/s |" % label, "|---|---|",
            "| alone | %.0f |" % a, "| two replicas attached | %.0f (%.1f%%) |"
            % (b, 100.0 * (b - a) / a), "",
            "CPU per transaction: primary daemon alone %.0f us; with two replicas "
            "attached: primary daemon %.0f us, replicas %.0f us and %.0f us (%d cores)."
            % (statistics.median(cpu_alone), us[0], us[1], us[2], os.cpu_count()), ""]


SYNC = "replication:\n  mode: sync\n  min-acks: 1\n  sync-timeout: 5s\n"
SYNC_WRITE = SYNC + "  ack-after: write\n"


def replica_lease(port):
    return ("lease:\n  type: static\n  candidate: false\n  hostname: %s\n"
            "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, port))


def start_pair(binary, work, sync, via_port=None):
    """A primary (`sync`: its replication config, or None for async) and
    two replicas reaching it directly or through `via_port` (a proxy in
    front of the primary's port)."""
    c = Cluster(binary, work)
    if sync:
        c.primary.extra_config += sync
    c.primary.start()
    for i in (1, 2):
        r = ltxfsmount.LtxfsMount(binary, os.path.join(work, "replica%d" % i),
                                  lease=replica_lease(via_port or c.primary.port))
        c.replicas.append(r)
        r.start()
    return c


def commit_latencies(mnt, n):
    """Seconds each of `n` single autocommit INSERTs took (WAL, NORMAL)."""
    con = sqlite3.connect(os.path.join(mnt, "lat.db"), timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=wal").fetchall()
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
    row = os.urandom(200)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        con.execute("INSERT INTO t(v) VALUES (?)", (row,))
        out.append(time.perf_counter() - t0)
    con.close()
    return out


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def sync_table(binary, args, work):
    """async vs sync (ack-after fsync, and write) side by side
    (alternating), then sync across 40 ms."""
    configs = {"async": None, "sync": SYNC, "write": SYNC_WRITE}
    rate = {m: [] for m in configs}
    lat = {m: [] for m in configs}
    pairs = {m: start_pair(binary, os.path.join(work, "sync-" + m), configs[m])
             for m in configs}
    try:
        time.sleep(1)
        for _ in range(args.repeat):
            for m in configs:
                rate[m].append(insert_rate(args.insert_bench, pairs[m].primary.mnt,
                                           args.seconds / 2))
                lat[m] += commit_latencies(pairs[m].primary.mnt, 1000)
    finally:
        for c in pairs.values():
            c.stop()
    far = []
    wan = Cluster(binary, os.path.join(work, "sync-wan"))
    wan.primary.extra_config += SYNC
    wan.primary.start()
    try:
        with DelayProxy("127.0.0.1", wan.primary.port, 20) as proxy:
            for i in (1, 2):
                r = ltxfsmount.LtxfsMount(binary, os.path.join(work, "sync-wan", "r%d" % i),
                                          lease=replica_lease(proxy.port))
                wan.replicas.append(r)
                r.start()
            time.sleep(1)
            far = commit_latencies(wan.primary.mnt, 100)
    finally:
        wan.stop()
    a = statistics.median(rate["async"])
    ms = lambda v: v * 1000.0  # noqa: E731

    def row(label, q):
        base = pct(lat["async"], q)
        return "| %s | %.3f ms | %s |" % (label, ms(base), " | ".join(
            "%.3f ms (+%.3f)" % (ms(pct(lat[m], q)), ms(pct(lat[m], q) - base))
            for m in ("sync", "write")))
    return ["| replication (2 replicas, min-acks 1), INSERT WAL+NORMAL | async | "
            "sync, ack-after fsync | sync, ack-after write |",
            "|---|---|---|---|",
            "| insert_bench tx/s | %.0f | %s |" % (a, " | ".join(
                "%.0f (%.2fx)" % (statistics.median(rate[m]), statistics.median(rate[m]) / a)
                for m in ("sync", "write"))),
            row("commit latency p50", 0.5),
            row("commit latency p99", 0.99),
            "| sync (fsync), replicas 40 ms away: commit latency p50 / p99 | | %.1f / %.1f ms | |"
            % (ms(pct(far, 0.5)), ms(pct(far, 0.99))), ""]


def cell(by_mode, modes, fmt, key):
    return " | ".join(fmt % by_mode[m][key] for m in modes)


def lag_table(clusters, modes, args):
    """Lag at 100 and 1,000 tx/s, plain and tls alternating per rate."""
    rs = {}
    for m in modes:
        rs[m] = clusters[m].add_replica("lag-replica")
        rs[m].start()
    res = {}
    for rate in (100, 1000):
        res[rate] = {m: measure_lag(clusters[m], rs[m], rate, args.seconds) for m in modes}
    for m in modes:
        rs[m].stop()
        rs[m].cleanup()
    head = ["rate"]
    for m in modes:
        head += ["%s achieved tx/s" % m, "%s p50 ms" % m, "%s p99 ms" % m, "%s max ms" % m]
    lines = ["| lag, commit on primary to visible on replica | " + " | ".join(head[1:]) + " |",
             "|---" * len(head) + "|"]
    for rate in (100, 1000):
        row = ["%d tx/s, %d transactions" % (rate, res[rate][modes[0]]["n"])]
        for m in modes:
            r = res[rate][m]
            row += ["%.0f" % r["achieved"], "%.2f" % r["p50"], "%.2f" % r["p99"], "%.2f" % r["max"]]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if len(modes) == 2:
        for rate in (100, 1000):
            d50 = res[rate]["tls"]["p50"] - res[rate]["plain"]["p50"]
            d99 = res[rate]["tls"]["p99"] - res[rate]["plain"]["p99"]
            lines.append("TLS + token at %d tx/s: p50 %+.2f ms, p99 %+.2f ms (target: p99 "
                         "at most +1 ms: %s)." % (rate, d50, d99, "met" if d99 <= 1.0 else
                                                  "NOT met"))
        lines.append("")
    return lines


def snapshot_table(clusters, modes, args, work):
    srcs = {m: make_big_db(clusters[m], args.snapshot_mib) for m in modes}
    size = os.path.getsize(srcs[modes[0]])
    t_cp, t_cp_sync = cp_baseline(srcs[modes[0]], work)
    times = {m: [] for m in modes}
    for i in range(3):
        for m in modes:
            times[m].append(snapshot_once(clusters[m], i))
    mb = size / 1e6
    lines = ["| snapshot of %.0f MiB (median of 3) | seconds | MB/s | / cp | / cp + sync |"
             % (size / 2**20), "|---|---|---|---|---|"]
    mbs = {}
    for m in modes:
        t = statistics.median(times[m])
        mbs[m] = mb / t
        lines.append("| new replica (%s), start to caught up | %.2f | %.0f | %.2f | %.2f |"
                     % (m, t, mbs[m], t_cp / t, t_cp_sync / t))
    lines += ["| cp | %.2f | %.0f | | |" % (t_cp, mb / t_cp),
              "| cp + sync | %.2f | %.0f | | |" % (t_cp_sync, mb / t_cp_sync), ""]
    lines.append("Each run, seconds: " + "; ".join(
        "%s %s" % (m, ", ".join("%.2f" % t for t in times[m])) for m in modes) + ".")
    if len(modes) == 2:
        cost = 100.0 * (mbs["plain"] - mbs["tls"]) / mbs["plain"]
        lines.append("TLS + token costs %.1f%% of snapshot throughput (target: at most 10%%: %s)."
                     % (cost, "met" if cost <= 10.0 else "NOT met"))
    lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--insert-bench", required=True)
    ap.add_argument("--workdir", default="build/bench-run/replication")
    ap.add_argument("--out", default="build/bench-replication.md")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--snapshot-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tls", choices=("both", "plain", "tls"), default="both",
                    help="lag and snapshot: over plain HTTP, over HTTPS with a token, or both")
    ap.add_argument("--only-sync", action="store_true",
                    help="measure only async against sync replication")
    ap.add_argument("--skip-primary", action="store_true",
                    help="leave out the primary's speed with replicas")
    args = ap.parse_args()
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    modes = ("plain", "tls") if args.tls == "both" else (args.tls,)
    binary = os.path.abspath(args.ltxfs)
    pki = make_pki(work) if "tls" in modes else None
    lines = ["# ltxfs replication benchmark", "",
             "tls: HTTPS (mutual TLS, EC P-256) and a bearer token on every request; "
             "plain: HTTP, no token.", ""]
    if args.only_sync:
        modes = ()
    clusters = {m: Cluster(binary, os.path.join(work, m), pki if m == "tls" else None)
                for m in modes}
    lines += sync_table(binary, args, work)
    try:
        for m in modes:
            clusters[m].primary.start()
        if not args.skip_primary and modes:
            lines += primary_speed(clusters[modes[0]], args, modes[0])
        if modes:
            lines += lag_table(clusters, modes, args)
            lines += snapshot_table(clusters, modes, args, work)
    finally:
        for c in clusters.values():
            c.stop()
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
