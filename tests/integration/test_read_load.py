"""test_read_load.py - a replica keeps applying under heavy local read load.

Fifty reader threads (read_load_reader.py, in several processes) run point
lookups on a replica's mount as fast as they can while the primary inserts
as fast as it can.  The replica must reach the primary's TXID of a moment
while the readers are still running (it used to wait for a moment with no
reader in a transaction, which 50 readers never leave, so its lag grew
until the load stopped), and every read transaction must see a consistent
snapshot (meta.n == max(id), rows as written), with integrity_check ok
during the run.  With the default configuration a WAL-mode replica applies
each transaction as WAL frames published through the wal-index
(data.replica-wal, db/replica_wal.h), so readers keep their snapshots and
never hold it back; a rollback-mode replica waits for the readers inside a
transaction while new ones are held off (writer preference), and its
readers are single-threaded processes (see the test).  The other applier
for WAL mode (data.replica-wal: false) waits like the rollback one; under
multi-threaded readers it can starve new readers into SQLITE_PROTOCOL,
which is why it is not the default.

LTXFS_READLOAD_READERS changes the number of reader threads (default 50).
Performance is measured by tests/bench/readload_bench.py, not here.
"""

import json
import os
import sqlite3
import sys
import threading
import time

import pytest

import cluster as C
import ltxfs_helpers as H

READERS = int(os.environ.get("LTXFS_READLOAD_READERS", "50"))
PROCESSES = 10
CATCH_UP_TIMEOUT = 30
HERE = os.path.dirname(os.path.abspath(__file__))


class Writer(threading.Thread):
    """Inserts row n + 1 (v = 7 * id) and sets meta.n = n + 1, one
    transaction each, as fast as the primary takes them."""

    def __init__(self, path, start_n):
        super().__init__(daemon=True)
        self.path, self.n = path, start_n
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            while not self.stop.is_set():
                k = self.n + 1
                c.execute("BEGIN IMMEDIATE")
                c.execute("INSERT INTO t(id, v) VALUES (?, ?)", (k, 7 * k))
                c.execute("UPDATE meta SET n = ?", (k,))
                c.execute("COMMIT")
                self.n = k
            c.close()
        except Exception as e:   # reported by the test
            self.error = e


def load_cluster(node_factory, mode, rows=2000, replica_wal=None):
    p, (r,) = C.make_cluster(node_factory, replicas=1, replica_wal=replica_wal)
    c = H.connect(p.path("a.db"), journal_mode=mode)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
    c.execute("CREATE TABLE meta(n INTEGER)")
    with c:
        c.executemany("INSERT INTO t(id, v) VALUES (?, ?)", [(i, 7 * i) for i in range(1, rows + 1)])
        c.execute("INSERT INTO meta VALUES (?)", (rows,))
    c.close()
    C.wait_converged(p, [r], ["a.db"])
    return p, r, rows


def start_readers(spawn, replica, stopfile, threads=READERS, processes=PROCESSES):
    per = [threads // processes + (1 if i < threads % processes else 0)
           for i in range(processes)]
    return [spawn([sys.executable, os.path.join(HERE, "read_load_reader.py"),
                   replica.path("a.db"), stopfile, str(n)],
                  stdout=__import__("subprocess").PIPE, stderr=__import__("subprocess").PIPE)
            for n in per if n > 0]


def stop_readers(readers, stopfile):
    open(stopfile, "w").close()
    total = {"rounds": 0, "n_errors": 0, "errors": []}
    for proc in readers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        res = json.loads(out.decode().strip().splitlines()[-1])
        for k in total:
            total[k] += res[k]
    return total


def replica_integrity(replica):
    c = sqlite3.connect("file:%s?mode=ro" % replica.path("a.db"), uri=True, timeout=30)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        c.close()


def catch_up_under_load(p, r, readers, writer, rounds=3):
    """Each round: the primary's TXID now; the replica must reach it while
    the readers and the writer go on."""
    for i in range(rounds):
        time.sleep(2)
        target = p.pos("a.db")[0]
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        while (C.pos_or_none(r, "a.db") or (0, 0))[0] < target:
            assert time.monotonic() < deadline, (
                "round %d: the replica did not reach TXID %d in %d s under read load "
                "(it is at %r; primary at %d)"
                % (i, target, CATCH_UP_TIMEOUT, C.pos_or_none(r, "a.db"), p.pos("a.db")[0]))
            assert writer.is_alive(), writer.error
            time.sleep(0.05)
        assert all(proc.poll() is None for proc in readers), "a reader process ended early"
        assert writer.is_alive(), writer.error
        assert replica_integrity(r) == "ok"


@pytest.mark.deadline(240)
@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_replica_keeps_up_under_50_readers(node_factory, spawn, tmp_path, mode):
    """50 point-lookup readers on the replica, the primary inserting at full
    speed: the replica reaches the primary's TXID while the readers run,
    every read transaction is consistent, integrity_check ok throughout."""
    p, r, rows = load_cluster(node_factory, mode)
    stopfile = str(tmp_path / "stop-readers")
    # Rollback mode: one reader thread per process.  SQLite keeps one POSIX
    # lock per process for all its connections, so a process whose threads
    # overlap their read transactions holds SHARED without a gap, and no
    # writer in another process (a native SQLite one neither) gets in.
    readers = start_readers(spawn, r, stopfile,
                            processes=READERS if mode == "delete" else PROCESSES)
    writer = Writer(p.path("a.db"), rows)
    writer.start()
    try:
        catch_up_under_load(p, r, readers, writer)
    finally:
        writer.stop.set()
        writer.join(60)
        res = stop_readers(readers, stopfile)
    assert writer.error is None, writer.error
    assert res["n_errors"] == 0, res["errors"]
    assert res["rounds"] > READERS, res
    C.wait_converged(p, [r], ["a.db"])
    C.assert_identical(p, [r], ["a.db"])
    assert replica_integrity(r) == "ok"
