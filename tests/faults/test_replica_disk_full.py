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
from fault_helpers import fill, make_table, served_ids, small_tmpfs

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


@pytest.mark.deadline(240)
def test_sync_replica_out_of_space_acknowledges_only_what_it_logged(replica_small_disk,
                                                                    node_factory):
    """replication.mode sync, one replica whose data.dir fills up: commits
    stop being acknowledged once the replica cannot take them (they fail,
    on-timeout fail), and every commit that was acknowledged is the
    replica's own: with the primary SIGKILLed at the first failure and space
    back, the replica restarted alone serves every acknowledged row from its
    own data.dir.  With the primary back, commits are acknowledged again."""
    primary = C.make_primary(node_factory)
    primary.extra_config = ("replication:\n  mode: sync\n  min-acks: 1\n  sync-timeout: 1s\n"
                            "  on-timeout: fail\n")
    replica = C.make_replica(node_factory, primary, "replica1")
    filler = fill(replica.data, 24)
    primary.start()
    replica.start()
    wait_in_sync(primary)
    name = "big.db"
    make_table(primary, name, "wal")
    con = sqlite3.connect(primary.path(name), isolation_level=None, timeout=30)
    acked = []
    for i in range(3000):                         # ~30 MiB: more than the replica's room
        try:
            con.execute("INSERT INTO t VALUES(?, randomblob(10000))", (i,))
        except sqlite3.OperationalError:
            break
        acked.append(i)
    con.close()
    assert 0 < len(acked) < 3000, "the replica never ran out of space"
    primary.crash()
    assert "No space left on device" in replica.log_text()
    os.remove(filler)
    replica.stop()
    replica.start()                               # alone: what its own data.dir holds
    have = served_ids(replica, name)
    missing = sorted(set(acked) - have)
    assert not missing, "acknowledged rows the replica does not have: %s" % missing[:10]
    primary.start()
    wait_in_sync(primary)
    con = sqlite3.connect(primary.path(name), isolation_level=None, timeout=30)
    con.execute("INSERT INTO t VALUES(100000, 'after')")
    con.close()
    C.wait_converged(primary, [replica], [name], timeout=90)
    C.assert_identical(primary, [replica], [name])


def wait_in_sync(primary, timeout=60):
    deadline = time.time() + timeout
    while C.status(primary)["replication"].get("in_sync", 0) < 1:
        assert time.time() < deadline, "the replica never came in sync"
        time.sleep(0.05)
