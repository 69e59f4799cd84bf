"""test_commit.py - commit detection, for every journal mode.

N committed transactions give exactly N new TXIDs, contiguous, each with a
positive page count, `ltxfs log verify` is ok and replaying the log from
TXID 1 reproduces the database byte for byte.  A rolled-back transaction
(also one whose dirty pages were spilled to the database file or the WAL
before the rollback), a read-only transaction, BEGIN IMMEDIATE/EXCLUSIVE
with no writes, and a checkpoint add no TXID.  Switching the journal mode
to and from WAL is one transaction each (SQLite rewrites page 1).
"""

import os
import sqlite3

import pytest

import ltxfs_helpers as H
from ltxfs_helpers import assert_new_txids, new_db

MODES = H.JOURNAL_MODES


@pytest.mark.parametrize("mode", MODES)
def test_n_transactions_n_txids(node, track_conn, mode):
    con, base = new_db(node, "c.db", mode, track_conn)
    n = 0
    for i in range(40):                       # autocommit INSERTs
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(?))", (i, 50 + 37 * i))
        n += 1
    for j in range(10):                       # explicit multi-statement txns
        con.execute("BEGIN")
        for i in range(20):
            con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(?))",
                        (1000 + j * 20 + i, 3000 if i % 5 == 0 else 100))
        con.execute("UPDATE t SET v = randomblob(10) WHERE k = ?", (j,))
        con.execute("COMMIT")
        n += 1
    con.execute("UPDATE t SET k = k + 1 WHERE k % 3 = 0")
    con.execute("DELETE FROM t WHERE k % 7 = 0")
    con.execute("CREATE TABLE u(a, b)")
    con.execute("INSERT INTO u SELECT k, v FROM t")
    con.execute("DROP TABLE u")
    n += 5
    for i in range(3):                        # deferred txn that writes
        con.execute("BEGIN DEFERRED")
        con.execute("SELECT count(*) FROM t").fetchall()
        con.execute("INSERT INTO t(k, v) VALUES (?, x'00')", (-i,))
        con.execute("COMMIT")
        n += 1
    assert_new_txids(node, "c.db", base, n, "mode %s" % mode)
    con.close()
    ents = node.check_replay("c.db")
    assert len(ents) == base + n
    assert H.integrity_check(node.path("c.db")) == "ok"


@pytest.mark.parametrize("mode", MODES)
def test_rollback_adds_no_txid(node, track_conn, mode):
    con, base = new_db(node, "rb.db", mode, track_conn)
    con.executemany("INSERT INTO t(k, v) VALUES (?, randomblob(200))",
                    [(i,) for i in range(50)])   # 50 autocommit transactions
    before = node.last_txid("rb.db")
    content = con.execute("SELECT id, k, v FROM t ORDER BY id").fetchall()

    # A small rolled-back transaction.
    con.execute("BEGIN")
    con.execute("INSERT INTO t(k, v) VALUES (1, 2)")
    con.execute("DELETE FROM t WHERE k < 10")
    con.execute("ROLLBACK")
    # A large one whose dirty pages spill to the database file (rollback
    # journal modes) or to the WAL (uncommitted frames) before the rollback.
    con.execute("PRAGMA cache_size=10")
    con.execute("BEGIN")
    for i in range(600):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(1500))", (10000 + i,))
    con.execute("UPDATE t SET v = randomblob(30) WHERE k < 40")
    con.execute("ROLLBACK")
    # A failed statement inside a transaction, then rollback.
    con.execute("BEGIN")
    con.execute("INSERT INTO t(k, v) VALUES (5, 5)")
    with pytest.raises(Exception):
        con.execute("INSERT INTO t(id, k) VALUES (1, 1)")   # PRIMARY KEY clash
    con.execute("ROLLBACK")

    assert_new_txids(node, "rb.db", before, 0, "rollbacks in mode %s" % mode)
    assert con.execute("SELECT id, k, v FROM t ORDER BY id").fetchall() == content
    # The database still works and the next commit is the next TXID.
    con.execute("INSERT INTO t(k, v) VALUES (-1, 'after')")
    assert_new_txids(node, "rb.db", before, 1, "commit after rollbacks")
    con.close()
    node.check_replay("rb.db")
    assert H.integrity_check(node.path("rb.db")) == "ok"


@pytest.mark.parametrize("mode", MODES)
def test_read_only_adds_no_txid(node, track_conn, mode):
    con, base = new_db(node, "ro.db", mode, track_conn)
    con.execute("INSERT INTO t(k, v) VALUES (1, 'x')")
    before = node.last_txid("ro.db")
    for _ in range(5):
        con.execute("SELECT * FROM t").fetchall()
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM t").fetchall()
    con.execute("COMMIT")
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM t").fetchall()
    con.execute("ROLLBACK")
    con.execute("PRAGMA integrity_check").fetchall()
    # Another connection and another process read too.
    con2 = track_conn(H.connect(node.path("ro.db")))
    con2.execute("SELECT * FROM t").fetchall()
    con2.close()
    H.sqlite_cli(node.path("ro.db"), "SELECT count(*) FROM t;")
    assert_new_txids(node, "ro.db", before, 0, "reads in mode %s" % mode)
    con.close()
    node.check_replay("ro.db")


@pytest.mark.parametrize("mode", MODES)
def test_locking_without_writes_adds_no_txid(node, track_conn, mode):
    con, base = new_db(node, "lk.db", mode, track_conn)
    con.execute("INSERT INTO t(k, v) VALUES (1, 'x')")
    before = node.last_txid("lk.db")
    for kind in ("IMMEDIATE", "EXCLUSIVE", "IMMEDIATE"):
        con.execute("BEGIN %s" % kind)
        con.execute("COMMIT")
        con.execute("BEGIN %s" % kind)
        con.execute("SELECT * FROM t").fetchall()
        con.execute("ROLLBACK")
    assert_new_txids(node, "lk.db", before, 0, "BEGIN IMMEDIATE/EXCLUSIVE in %s" % mode)
    con.execute("INSERT INTO t(k, v) VALUES (2, 'y')")
    assert_new_txids(node, "lk.db", before, 1, "commit after empty txns")
    con.close()
    node.check_replay("lk.db")


@pytest.mark.parametrize("mode", MODES)
def test_exclusive_locking_mode(node, track_conn, mode):
    """locking_mode=EXCLUSIVE: SQLite keeps its locks (and in WAL mode uses
    heap memory instead of the -shm file); commits are still counted."""
    con, base = new_db(node, "ex.db", mode, track_conn)
    con.execute("PRAGMA locking_mode=EXCLUSIVE").fetchall()
    for i in range(10):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(500))", (i,))
    con.execute("BEGIN")
    con.execute("DELETE FROM t WHERE k < 5")
    con.execute("ROLLBACK")
    assert_new_txids(node, "ex.db", base, 10, "locking_mode=EXCLUSIVE in %s" % mode)
    con.close()
    node.check_replay("ex.db")


def test_checkpoints_add_no_txid(node, track_conn):
    con, base = new_db(node, "ck.db", "wal", track_conn, wal_autocheckpoint=0)
    for i in range(30):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(800))", (i,))
    before = node.last_txid("ck.db")
    assert before == base + 30
    for kind in ("PASSIVE", "FULL", "RESTART", "TRUNCATE", "PASSIVE"):
        res = con.execute("PRAGMA wal_checkpoint(%s)" % kind).fetchone()
        assert res[0] == 0, (kind, res)
        assert_new_txids(node, "ck.db", before, 0, "wal_checkpoint(%s)" % kind)
    # After RESTART/TRUNCATE the next writer starts the WAL over with new
    # salts; every commit must still be captured exactly once.
    for i in range(25):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(800))", (100 + i,))
        if i % 5 == 4:
            con.execute("PRAGMA wal_checkpoint(%s)" % ("RESTART", "TRUNCATE")[i % 2]).fetchall()
    assert_new_txids(node, "ck.db", before, 25, "commits between checkpoints")
    con.close()
    node.check_replay("ck.db")


def test_autocheckpoint_many_transactions(node, track_conn):
    """Many small commits with a tiny autocheckpoint: the WAL restarts many
    times; exactly one TXID per commit."""
    con, base = new_db(node, "ac.db", "wal", track_conn, wal_autocheckpoint=8)
    reader = track_conn(H.connect(node.path("ac.db")))
    for i in range(400):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(?))", (i, 100 + i * 7 % 3000))
        if i % 50 == 0:
            # A reader holding a snapshot makes checkpoints partial for a while.
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM t").fetchall()
        if i % 50 == 25:
            reader.execute("COMMIT")
    assert_new_txids(node, "ac.db", base, 400, "autocheckpoint")
    reader.close()
    con.close()
    node.check_replay("ac.db")


def test_switch_journal_mode(node, track_conn):
    """delete -> wal -> delete -> persist -> truncate -> wal: entering or
    leaving WAL is one transaction; switching between rollback modes none
    (also when leaving PERSIST deletes a stale journal)."""
    con, base = new_db(node, "sw.db", "delete", track_conn)
    con.execute("INSERT INTO t(k, v) VALUES (1, 'a')")
    txid = base + 1
    steps = [("wal", 1), ("wal", 0), ("delete", 1), ("persist", 0),
             ("truncate", 0), ("delete", 0), ("persist", 0), ("wal", 1)]
    for mode, added in steps:
        assert con.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0] == mode
        txid += added
        assert node.last_txid("sw.db") == txid, (mode, node.log_list("sw.db")[-3:])
        con.execute("INSERT INTO t(k, v) VALUES (2, ?)", (mode,))
        txid += 1
        assert node.last_txid("sw.db") == txid, (mode, node.log_list("sw.db")[-3:])
    con.close()
    node.check_replay("sw.db")


@pytest.mark.parametrize("mode", MODES)
def test_two_connections_alternate(node, track_conn, mode):
    """Two connections of one process and one other process commit in turn."""
    con, base = new_db(node, "two.db", mode, track_conn)
    con2 = track_conn(H.connect(node.path("two.db")))
    n = 0
    for i in range(20):
        (con if i % 2 else con2).execute(
            "INSERT INTO t(k, v) VALUES (?, randomblob(300))", (i,))
        n += 1
        if i % 5 == 0:
            H.sqlite_cli(node.path("two.db"),
                         "BEGIN; INSERT INTO t(k, v) VALUES (%d, 'cli');"
                         "INSERT INTO t(k, v) VALUES (%d, 'cli'); COMMIT;" % (-i, -i))
            n += 1
    assert_new_txids(node, "two.db", base, n, "alternating connections")
    assert con2.execute("SELECT count(*) FROM t").fetchone()[0] == 20 + 2 * 4
    con.close()
    con2.close()
    node.check_replay("two.db")


@pytest.mark.parametrize("sync", ["OFF", "NORMAL", "FULL", "EXTRA"])
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_synchronous_levels(node, track_conn, mode, sync):
    """Every PRAGMA synchronous level is captured the same way."""
    con, base = new_db(node, "s.db", mode, track_conn)
    con.execute("PRAGMA synchronous=%s" % sync)
    for i in range(30):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(400))", (i,))
    assert_new_txids(node, "s.db", base, 30, "synchronous=%s" % sync)
    con.close()
    node.check_replay("s.db")


def test_restart_continues_txids(node, track_conn):
    for mode in ("wal", "delete"):
        name = "rc-%s.db" % mode
        con, base = new_db(node, name, mode, track_conn)
        con.execute("INSERT INTO t(k, v) VALUES (1, 'a')")
        con.close()
    node.restart()
    for mode in ("wal", "delete"):
        name = "rc-%s.db" % mode
        before = node.last_txid(name)
        con = track_conn(H.connect(node.path(name)))
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == mode
        for i in range(5):
            con.execute("INSERT INTO t(k, v) VALUES (?, 'b')", (i,))
        assert_new_txids(node, name, before, 5, "after restart, %s" % mode)
        con.close()
        node.check_replay(name)
    assert os.path.exists(node.path("rc-wal.db"))


def test_a_wal_written_by_a_tool_can_be_patched(node, tmp_path):
    """A WAL written whole by a tool (not SQLite's header-then-page writes),
    then patched in place, as SQLite's own tests do (wal.test 18.x,
    walcksum.test): the writes pass and SQLite's WAL recovery judges the
    frames as it does natively (up to the first bad checksum).  Before, the
    whole-frame write was taken for a commit and logged at once, and the
    patch was refused with EIO as a change to committed frames."""
    src = str(tmp_path / "native.db")
    keep = sqlite3.connect(src, isolation_level=None)
    keep.execute("PRAGMA journal_mode=wal")
    keep.execute("PRAGMA wal_autocheckpoint=0")
    keep.execute("CREATE TABLE t(x)")
    keep.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(4):
        keep.execute("INSERT INTO t VALUES (?)", (i,))      # one commit frame each
    with open(src, "rb") as f:
        db_bytes = f.read()
    with open(src + "-wal", "rb") as f:
        wal = f.read()
    keep.close()
    page = int.from_bytes(wal[8:12], "big")
    frame = 24 + page
    assert len(wal) == 32 + 4 * frame
    with open(node.path("w.db"), "wb") as f:
        f.write(db_bytes)
    with open(node.path("w.db-wal"), "wb", buffering=0) as f:
        f.write(wal[:32])                                    # the header,
        f.write(wal[32:])                                    # then whole frames at once
    with open(node.path("w.db-wal"), "r+b") as f:
        f.seek(32 + 2 * frame + 16)                          # frame 3's checksum
        f.write(b"\xff" * 8)
        f.flush()
        os.fsync(f.fileno())
    c = sqlite3.connect(node.path("w.db"))
    try:
        assert [r[0] for r in c.execute("SELECT x FROM t")] == [0, 1]
    finally:
        c.close()
