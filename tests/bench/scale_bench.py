#!/usr/bin/python3
"""scale_bench.py - what many databases cost one node (issue 12, finding 3;
docs/benchmarks.md has the method and results).

  create     N databases (default 10,000) through the primary's mount, in
             batches of 200, each with python's sqlite3 (journal_mode
             --mode, CREATE TABLE, one INSERT, close): ms per database in
             each batch (the first and the last batch must be close: cost
             per database flat in their number)
  footprint  the primary's RSS and open descriptors, per database; disk
             per database (data.dir, du)
  replicate  with --replicas R (default 2): the time until every replica
             holds every database at the primary's position after the
             creation, and after one more write in each database
  restart    start-up time of the primary after a clean stop (every
             database is opened, from its saved state), and of each replica;
             the primary's descriptors after it
  new        a replica that starts empty: the time until it holds every
             database (snapshots, or the whole history when it is smaller)

Prints a markdown table and writes it to --out.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
import ltxfsmount  # noqa: E402

HOST = "scale-primary"
BATCH = 200


class Node(ltxfsmount.LtxfsMount):
    def restart(self, timeout):
        """Clean stop, then start on the same data; seconds until mounted."""
        self.stop()
        logf = open(self.log, "ab")
        try:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(
                [self.binary, "mount", "-config", self.config],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True)
        finally:
            logf.close()
        while time.monotonic() - t0 < timeout:
            if os.path.ismount(self.mnt):
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at restart:\n%s"
                                   % (self.workdir, ltxfsmount.log_tail(self.log)))
            time.sleep(0.01)
        raise RuntimeError("%s did not mount within %d s" % (self.workdir, timeout))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))


def name(i):
    return "db%05d.db" % i


def pos(node, n):
    try:
        with open(os.path.join(node.mnt, n + "-pos")) as f:
            return f.read()
    except OSError:
        return None


def wait_replicated(primary, replicas, names, timeout):
    """Seconds until every replica shows the primary's position of every name."""
    t0 = time.monotonic()
    want = {n: pos(primary, n) for n in names}
    pending = [(r, n) for r in replicas for n in names]
    while pending:
        pending = [(r, n) for r, n in pending if pos(r, n) != want[n]]
        if pending and time.monotonic() - t0 > timeout:
            raise RuntimeError("%d positions not replicated after %d s (e.g. %s on %s)"
                               % (len(pending), timeout, pending[0][1], pending[0][0].workdir))
        if pending:
            time.sleep(0.05)
    return time.monotonic() - t0


def du_bytes(path):
    cp = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True)
    return int(cp.stdout.split()[0]) if cp.returncode == 0 else 0


def create(primary, first, count, mode):
    for i in range(first, first + count):
        con = sqlite3.connect(os.path.join(primary.mnt, name(i)), isolation_level=None)
        con.execute("PRAGMA journal_mode=%s" % mode).fetchall()
        con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        con.execute("INSERT INTO t(v) VALUES('first')")
        con.close()


def write_each(primary, n):
    for i in range(n):
        con = sqlite3.connect(os.path.join(primary.mnt, name(i)), isolation_level=None)
        con.execute("INSERT INTO t(v) VALUES('second')")
        con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--workdir", default="build/bench-run/scale")
    ap.add_argument("--out", default="build/bench-scale.md")
    ap.add_argument("--databases", type=int, default=10000)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--mode", default="delete", help="journal mode of the databases")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for each wait")
    a = ap.parse_args()
    n = a.databases
    work = os.path.abspath(a.workdir)
    primary = Node(a.ltxfs, os.path.join(work, "primary"))
    primary.lease = ("lease:\n  type: static\n  candidate: true\n  hostname: %s\n"
                     "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, primary.port))
    replicas = [Node(a.ltxfs, os.path.join(work, "replica%d" % (k + 1)),
                     lease="lease:\n  type: static\n  candidate: false\n  hostname: %s\n"
                           "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, primary.port))
                for k in range(a.replicas)]
    rows = []
    try:
        primary.start()
        for r in replicas:
            r.start()
        base_fds, base_rss = primary.fds(), primary.rss_kib()
        batches = []
        t_all = time.monotonic()
        for first in range(0, n, BATCH):
            count = min(BATCH, n - first)
            t0 = time.monotonic()
            create(primary, first, count, a.mode)
            ms = (time.monotonic() - t0) * 1000 / count
            batches.append(ms)
            print("databases %5d-%5d: %6.1f ms each (fds %d)"
                  % (first + 1, first + count, ms, primary.fds()), flush=True)
        create_s = time.monotonic() - t_all
        names = [name(i) for i in range(n)]
        fds, rss = primary.fds(), primary.rss_kib()
        disk = du_bytes(primary.data)
        rows += [("databases", "%d (%s mode)" % (n, a.mode)),
                 ("create: ms per database, first batch of 200", "%.1f" % batches[0]),
                 ("create: ms per database, last batch of 200", "%.1f" % batches[-1]),
                 ("create: last / first", "%.2fx" % (batches[-1] / batches[0])),
                 ("create: total", "%.1f s" % create_s),
                 ("primary descriptors (per database)",
                  "%d (%.2f)" % (fds, (fds - base_fds) / n)),
                 ("primary RSS (per database)",
                  "%.1f MiB (%.1f KiB)" % (rss / 1024, (rss - base_rss) / n)),
                 ("primary disk (per database)",
                  "%.1f MiB (%.1f KiB)" % (disk / 2**20, disk / n / 1024))]
        if replicas:
            rows.append(("replicas: all databases present after creation",
                         "%.1f s" % wait_replicated(primary, replicas, names, a.timeout)))
            t0 = time.monotonic()
            write_each(primary, n)
            w = time.monotonic() - t0
            rep = wait_replicated(primary, replicas, names, a.timeout)
            rows.append(("one write in each database (primary)", "%.1f s" % w))
            rows.append(("... then on every replica", "+%.1f s" % rep))
            rows.append(("replica descriptors / RSS", ", ".join(
                "%d / %.1f MiB" % (r.fds(), r.rss_kib() / 1024) for r in replicas)))
        for label, fn in [("primary restart (clean stop, then until mounted)",
                           lambda: "%.2f s" % primary.restart(a.timeout))] + [
                          ("%s restart" % os.path.basename(r.workdir),
                           lambda r=r: "%.2f s" % r.restart(a.timeout)) for r in replicas] + [
                          ("replicas caught up after the restarts",
                           lambda: "%.1f s" % wait_replicated(primary, replicas, names,
                                                              a.timeout))] * bool(replicas):
            try:
                rows.append((label, fn()))
            except RuntimeError as e:
                # e.g. the HTTP server cannot listen with this many descriptors
                why = [ln for ln in str(e).splitlines() if "ERROR" in ln][-1:] or [str(e)[:200]]
                rows.append((label, "failed: %s" % why[0].split("] ", 1)[-1]))
                print(e, file=sys.stderr)
                break
        else:
            rows.append(("primary descriptors / RSS after the restart",
                         "%d / %.1f MiB" % (primary.fds(), primary.rss_kib() / 1024)))
            if replicas:
                fresh = Node(a.ltxfs, os.path.join(work, "new-replica"), lease=replicas[0].lease)
                replicas.append(fresh)
                t0 = time.monotonic()
                fresh.start()
                wait_replicated(primary, [fresh], names, a.timeout)
                rows.append(("new replica: from start until it holds every database",
                             "%.1f s" % (time.monotonic() - t0)))
                rows.append(("new replica descriptors / RSS",
                             "%d / %.1f MiB" % (fresh.fds(), fresh.rss_kib() / 1024)))
    finally:
        for m in replicas + [primary]:
            m.stop()
            m.cleanup()
    table = "| scale (%d databases) | value |\n|---|---|\n" % n
    table += "".join("| %s | %s |\n" % r for r in rows)
    print(table)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(table)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
