"""test_kill_points.py - the daemon SIGKILLed at each step of the write path,
deterministically (base/failpoint.h), and the acknowledged-writes checker.

For each failpoint the daemon runs with LTXFS_FAILPOINTS="POINT=N": the Nth
time it passes that step it kills itself.  A writer inserts one row per
transaction and records each row whose COMMIT returned OK, until the mount
goes away.  After a restart without the failpoint: every acknowledged row
is there, at most the one row in flight more (a commit logged before the
kill but never answered may survive: SQLite treats it as committed), the
database passes integrity_check, and the log replays to it byte for byte
(ltxfs_helpers.Node.check_replay).  Replica steps are in
test_replica_kill_points below.
"""

import sqlite3
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from fault_helpers import make_table, served_ids

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

SETUP_COMMITS = 3      # journal mode, CREATE TABLE, first row: before the kill
KILL_AT = 25


def write_until_dead(path, first_id, limit=2000):
    acked = []
    try:
        con = sqlite3.connect(path, isolation_level=None, timeout=5)
    except sqlite3.Error:
        return acked
    for i in range(first_id, first_id + limit):
        try:
            con.execute("INSERT INTO t VALUES(?, randomblob(300))", (i,))
            acked.append(i)
        except sqlite3.Error:
            break
    try:
        con.close()
    except sqlite3.Error:
        pass
    return acked


def wait_dead(node, timeout=20):
    deadline = time.time() + timeout
    while node.proc.poll() is None:
        assert time.time() < deadline, "the failpoint never fired"
        time.sleep(0.05)


def restart_clean(node):
    node.expect_down = True
    node.clean_stale_mount()
    node.env = None
    node.start()


def rows(node, name):
    return served_ids(node, name)


@pytest.mark.parametrize("point,mode", [
    ("wal.commit.before_log", "wal"),
    ("wal.commit.after_log", "wal"),
    ("log.append.torn", "wal"),
    ("log.append.torn", "delete"),
    ("rollback.commit.before_log", "delete"),
    ("rollback.commit.after_log", "delete"),
])
def test_primary_killed_at_each_step_keeps_every_acknowledged_commit(node_factory, point, mode):
    node = node_factory()
    node.start()
    name = "k.db"
    make_table(node, name, mode)
    node.stop()
    node.env = {"LTXFS_FAILPOINTS": "%s=%d" % (point, KILL_AT)}
    node.start()
    acked = write_until_dead(node.path(name), 0)
    wait_dead(node)
    assert ("failpoint %s: SIGKILL" % point) in node.log_text()
    assert acked, "nothing was acknowledged before the kill"
    restart_clean(node)
    have = rows(node, name)
    missing = sorted(set(acked) - have)
    assert not missing, "acknowledged rows lost after a kill at %s: %s" % (point, missing[:10])
    extra = sorted(have - set(acked))
    assert extra in ([], [len(acked)]), "rows nobody wrote: %s" % extra[:10]
    node.check_replay(name)
    # The node goes on: more commits, and the log still replays.
    more = write_until_dead(node.path(name), 10000, limit=20)
    assert len(more) == 20
    node.check_replay(name)


@pytest.mark.parametrize("point,mode", [
    ("replica.receive.mid", "wal"),
    ("replica.apply.after_log", "wal"),
    ("replica.apply.after_log", "delete"),
])
def test_replica_killed_at_each_step_converges(node_factory, point, mode):
    """The replica dies receiving or applying: restarted, it resumes from
    its own log and ends identical to the primary."""
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    p.start()
    r.env = {"LTXFS_FAILPOINTS": "%s=%d" % (point, KILL_AT)}
    r.start()
    name = "k.db"
    make_table(p, name, mode)
    acked = write_until_dead(p.path(name), 0, limit=200)
    assert len(acked) == 200
    wait_dead(r)
    assert ("failpoint %s: SIGKILL" % point) in r.log_text()
    restart_clean(r)
    C.wait_converged(p, [r], [name], timeout=60)
    C.assert_identical(p, [r], [name])
    assert rows(r, name) == set(acked)


def test_primary_killed_while_sending_keeps_every_acknowledged_commit(node_factory):
    """The primary dies in the middle of sending a transaction to a replica:
    nothing it acknowledged is lost, and the replica converges after the
    primary's restart."""
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    p.env = {"LTXFS_FAILPOINTS": "stream.send.mid=%d" % KILL_AT}
    p.start()
    r.start()
    name = "k.db"
    make_table(p, name, "wal")
    acked = []
    while p.proc.poll() is None and len(acked) < 5000:
        got = write_until_dead(p.path(name), len(acked), limit=1)
        if not got:
            break
        acked += got
    wait_dead(p)
    restart_clean(p)
    have = rows(p, name)
    assert not (set(acked) - have), "acknowledged rows lost"
    C.wait_converged(p, [r], [name], timeout=60)
    C.assert_identical(p, [r], [name])
    p.check_replay(name)


@pytest.mark.parametrize("point", ["replica.ack.before_sync", "replica.ack.before_send"])
def test_sync_replica_killed_before_it_acknowledges(node_factory, point):
    """replication.mode sync, one replica, min-acks 1, on-timeout fail: the
    replica dies between taking a transaction into its log and telling the
    primary.  The commit waiting for it fails (never reported made without
    its acknowledgement); after the replica's restart every acknowledged row
    is on both nodes, at most the one in flight more, and they are identical."""
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    p.extra_config = ("replication:\n  mode: sync\n  min-acks: 1\n  sync-timeout: 1s\n"
                      "  on-timeout: fail\n")
    p.start()
    r.env = {"LTXFS_FAILPOINTS": "%s=%d" % (point, KILL_AT)}
    r.start()
    deadline = time.time() + 30
    while C.status(p)["replication"].get("in_sync", 0) < 1:
        assert time.time() < deadline, "the replica never came in sync"
        time.sleep(0.05)
    name = "k.db"
    make_table(p, name, "wal")
    acked = write_until_dead(p.path(name), 0, limit=500)
    wait_dead(r)
    assert ("failpoint %s: SIGKILL" % point) in r.log_text()
    assert 0 < len(acked) < 500, "the commit in flight at the kill was acknowledged"
    restart_clean(r)
    C.wait_converged(p, [r], [name], timeout=60)
    C.assert_identical(p, [r], [name])
    have = rows(r, name)
    missing = sorted(set(acked) - have)
    assert not missing, "acknowledged rows missing on the replica: %s" % missing[:10]
    extra = sorted(have - set(acked))
    assert extra in ([], [len(acked)]), "rows nobody wrote: %s" % extra[:10]
    assert rows(p, name) == have
