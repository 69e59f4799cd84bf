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

import ltxfs_helpers as H

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
    con = sqlite3.connect("file:%s?mode=ro" % node.path(name), uri=True, timeout=30)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return set(r[0] for r in con.execute("SELECT id FROM t"))
    finally:
        con.close()


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
    con = sqlite3.connect(node.path(name), isolation_level=None, timeout=30)
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    con.close()
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
