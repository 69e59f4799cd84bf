"""test_replica_disk_full.py - a replica whose data.dir fills up never
serves a damaged database, and catches up by itself once space is back.

The replica's data.dir is a 40 MiB tmpfs with a filler file; the primary
(on the ordinary disk) commits about 12 MiB into 16 MiB of room, first as a snapshot the
replica must receive whole, then as transactions streamed one by one.
While the replica is out of space, every read on it sees a consistent
database (integrity_check ok, a count of rows some primary state had).
Once the filler is removed, the replica reaches the primary's position
without a restart and holds every row the primary acknowledged.
"""

import os
import sqlite3
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from fault_helpers import fill, make_table, small_tmpfs

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


@pytest.fixture
def replica_small_disk(tmp_path):
    """data.dir of "replica1" on a 40 MiB tmpfs (listed before node_factory)."""
    with small_tmpfs(str(tmp_path / "replica1" / "data")) as data:
        yield data


def commit_rows(primary, name, first, n, size=10000):
    con = sqlite3.connect(primary.path(name), isolation_level=None, timeout=30)
    for i in range(first, first + n):
        con.execute("INSERT INTO t VALUES(?, randomblob(?))", (i, size))
    con.close()


def replica_reads_consistent(replica, name, counts_seen):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % replica.path(name), uri=True, timeout=5)
    except sqlite3.Error:
        return
    try:
        n = con.execute("SELECT count(*) FROM t").fetchone()[0]
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        counts_seen.append(n)
    except sqlite3.OperationalError as e:
        # Not there yet (no such table / not served while it has no copy).
        assert "malformed" not in str(e), e
    finally:
        con.close()


@pytest.mark.deadline(240)
@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_replica_out_of_space_catches_up_when_space_is_back(replica_small_disk, node_factory, mode):
    primary = C.make_primary(node_factory)
    replica = C.make_replica(node_factory, primary, "replica1")
    assert replica.data == replica_small_disk
    filler = fill(replica.data, 24)
    primary.start()
    name = "big.db"
    make_table(primary, name, mode)
    commit_rows(primary, name, 0, 400)            # ~4 MiB: a snapshot for the replica
    replica.start()
    seen = []
    for k in range(8):                            # ~8 MiB more, streamed
        commit_rows(primary, name, 400 + 100 * k, 100)
        replica_reads_consistent(replica, name, seen)
    want = primary.last_txid(name)
    for _ in range(10):
        replica_reads_consistent(replica, name, seen)
        time.sleep(0.2)
    assert all(n in range(0, 1201) for n in seen), seen
    assert "No space left on device" in replica.log_text(), "the replica never ran out of space"
    assert replica.pos(name) is None or replica.pos(name)[0] < want

    os.remove(filler)
    C.wait_converged(primary, [replica], [name], timeout=90)
    assert replica.pos(name)[0] >= want
    con = sqlite3.connect("file:%s?mode=ro" % replica.path(name), uri=True)
    try:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1200
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
