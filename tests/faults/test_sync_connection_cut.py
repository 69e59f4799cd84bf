"""test_sync_connection_cut.py - replication.mode sync with the connections
between the replica and the primary cut, again and again, while a writer
commits: the stream and the acknowledgements (POST /ack) both go through a
fault proxy that closes every connection at once.

The checker: a commit is reported made only once the replica holds it.
With the primary SIGKILLed at the end, the replica's own copy serves every
row whose commit returned OK (at most the rows whose commits timed out
more: an ambiguous commit may have reached it).  And the cluster recovers
after each cut: commits are acknowledged again without a restart.
"""

import sqlite3
import threading
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from fault_helpers import make_table, served_ids
from fault_proxy import FaultProxy

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

CUTS = 15
CUT_EVERY = 0.3


def in_sync(primary):
    return C.status(primary)["replication"].get("in_sync", 0) >= 1


def wait_in_sync(primary, timeout=60):
    deadline = time.time() + timeout
    while not in_sync(primary):
        assert time.time() < deadline, "the replica never came in sync"
        time.sleep(0.05)


@pytest.mark.deadline(240)
def test_cut_connections_never_acknowledge_what_the_replica_lacks(node_factory):
    primary = C.make_primary(node_factory)
    primary.extra_config = ("replication:\n  mode: sync\n  min-acks: 1\n  sync-timeout: 1s\n"
                            "  on-timeout: fail\n")
    primary.start()
    with FaultProxy("127.0.0.1", primary.port) as proxy:
        replica = C.make_replica(node_factory, primary, "replica1",
                                 url="http://127.0.0.1:%d" % proxy.port)
        replica.start()
        wait_in_sync(primary)
        name = "cut.db"
        make_table(primary, name, "wal")
        acked, failed = [], []
        stop = threading.Event()

        def write():
            con = sqlite3.connect(primary.path(name), isolation_level=None, timeout=30)
            row = 0
            while not stop.is_set():
                try:
                    con.execute("INSERT INTO t VALUES(?, randomblob(200))", (row,))
                    acked.append(row)
                except sqlite3.OperationalError:
                    failed.append(row)
                row += 1
            con.close()

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(CUTS):
                time.sleep(CUT_EVERY)
                proxy.cut()         # wherever the commits are: stream, ack, answer
        finally:
            stop.set()
            writer.join()
        n_before = len(acked)
        wait_in_sync(primary)
        con = sqlite3.connect(primary.path(name), isolation_level=None, timeout=30)
        con.execute("INSERT INTO t VALUES(-1, 'after the cuts')")
        con.close()
        acked.append(-1)
        assert proxy.cut_count >= CUTS
        assert n_before > CUTS, "hardly anything was acknowledged: %d" % n_before
        primary.crash()
        have = served_ids(replica, name)
        missing = sorted(set(acked) - have)
        assert not missing, "acknowledged rows the replica does not have: %s" % missing[:10]
        assert have <= set(acked) | set(failed), "rows nobody wrote: %s" % \
            sorted(have - set(acked) - set(failed))[:10]
