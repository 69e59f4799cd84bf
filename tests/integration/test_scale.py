"""test_scale.py - what a node keeps per database (issue 12, finding 3).

Counts and bounds only, never timings (those are in
tests/bench/scale_bench.py):
  - SQLite's super-journals (a commit that changes two attached
    rollback-journal databases writes MAIN-mjXXXXXXXXX next to the main
    database) are plain files, not databases: no status row, no dbs/
    entry, no descriptor that stays;
  - a deleted database gives everything back (descriptors, status row,
    directory), on the primary and on its replica, and its name can be
    created again, also while a replica still has the old database;
  - descriptors are bounded by data.max-open-files, whatever the number
    of databases, across a restart and on a replica;
  - a small database costs little more than its own size and history on
    disk (the log's zeros written ahead and reserved space scale with it).
"""

import json
import os
import sqlite3
import subprocess
import time
import urllib.request

import cluster as C
import ltxfs_helpers as H


def url(node):
    return "http://127.0.0.1:%d" % node.port


def status(node):
    with urllib.request.urlopen(url(node) + "/status", timeout=30) as r:
        return json.loads(r.read())


def fd_count(node):
    return len(os.listdir("/proc/%d/fd" % node.pid()))


def two_database_commits(node, n, con=None):
    """N commits that each change main.db and aux.db (journal_mode=delete):
    SQLite writes and removes a super-journal main.db-mjXXXXXXXXX for each."""
    if con is None:
        con = sqlite3.connect(node.path("main.db"), isolation_level=None, timeout=30)
        con.execute("PRAGMA journal_mode=delete")
        con.execute("ATTACH ? AS aux", (node.path("aux.db"),))
        con.execute("PRAGMA aux.journal_mode=delete")
        con.execute("CREATE TABLE IF NOT EXISTS main.t(x)")
        con.execute("CREATE TABLE IF NOT EXISTS aux.t(x)")
    for i in range(n):
        con.execute("BEGIN")
        con.execute("INSERT INTO main.t VALUES(?)", (i,))
        con.execute("INSERT INTO aux.t VALUES(?)", (i,))
        con.execute("COMMIT")
    return con


def test_super_journals_are_plain_files_not_databases(node, track_conn):
    con = track_conn(two_database_commits(node, 10))
    fds_after_10 = fd_count(node)
    two_database_commits(node, 200, con)
    assert con.execute("SELECT count(*) FROM main.t").fetchone()[0] == 210
    assert con.execute("SELECT count(*) FROM aux.t").fetchone()[0] == 210
    con.close()
    names = sorted(d["name"] for d in status(node)["databases"])
    assert names == ["aux.db", "main.db"], names[:10]
    assert sorted(os.listdir(os.path.join(node.data, "dbs"))) == ["aux.db", "main.db"]
    # the daemon's descriptors do not grow with the number of commits
    assert fd_count(node) <= fds_after_10 + 2, (fds_after_10, fd_count(node))
    # nothing is left of the super-journals, in the mount or on disk
    assert sorted(os.listdir(node.mnt)) == ["aux.db", "main.db"], os.listdir(node.mnt)
    assert os.listdir(os.path.join(node.data, "files")) == []
    for name in ("main.db", "aux.db"):
        assert H.integrity_check(node.path(name)) == "ok"
        node.check_replay(name)


# ---- deleted databases -----------------------------------------------------------


def status_names(node):
    return sorted(d["name"] for d in status(node)["databases"])


def dbs_entries(node):
    return sorted(os.listdir(os.path.join(node.data, "dbs")))


def wait_for(what, cond, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def create_with_rows(node, name, rows, mode="wal"):
    H.sqlite_cli(node.path(name), "PRAGMA journal_mode=%s; CREATE TABLE IF NOT EXISTS t(x); %s"
                 % (mode, "".join("INSERT INTO t VALUES('%s-%d');" % (name, i)
                                  for i in range(rows))))


def test_deleted_databases_give_everything_back(node_factory):
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    create_with_rows(p, "keep.db", 1)
    C.wait_converged(p, [r], ["keep.db"])
    base = {n: fd_count(n) for n in (p, r)}
    names = ["gone%03d.db" % i for i in range(100)]
    for i, name in enumerate(names):
        create_with_rows(p, name, 2, mode="wal" if i % 2 else "delete")
    C.wait_converged(p, [r], names)      # the replica has every one of them
    before = p.pos("gone007.db")[0]
    for name in names:
        os.unlink(p.path(name))
    for n in (p, r):
        wait_for("%s to forget the deleted databases" % n.name,
                 lambda n=n: status_names(n) == ["keep.db"] and dbs_entries(n) == ["keep.db"])
        assert not [f for f in os.listdir(n.mnt) if f.startswith("gone")]
        assert os.listdir(os.path.join(n.data, "trash")) == []
        # nothing of them holds a descriptor
        wait_for("%s's descriptors back to %d (now %d)" % (n.name, base[n], fd_count(n)),
                 lambda n=n: fd_count(n) <= base[n] + 2)
    # a name created again continues its TXIDs (after its delete
    # transaction, before + 1) and replicates
    create_with_rows(p, "gone007.db", 3)
    C.wait_converged(p, [r], ["keep.db", "gone007.db"])
    C.assert_identical(p, [r], ["keep.db", "gone007.db"])
    assert p.pos("gone007.db")[0] > before + 1
    assert H.integrity_check(r.path("gone007.db")) == "ok"
    con = sqlite3.connect(r.path("gone007.db"))
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    con.close()
    assert status_names(p) == ["gone007.db", "keep.db"]
    p.check_replay("gone007.db")   # its log starts at the delete: replayed from empty


def test_a_replica_with_the_old_database_gets_the_new_one(node_factory):
    """The replica is away while the name is deleted and created again: it
    comes back with the old database and gets the new one by snapshot, not a
    report of lost transactions, and never keeps the stale copy."""
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    create_with_rows(p, "old.db", 5)
    for i in range(3):
        H.sqlite_cli(p.path("old.db"), "INSERT INTO t VALUES('more%d');" % i)
    C.wait_converged(p, [r], ["old.db"])
    old_txid = p.pos("old.db")[0]
    r.stop()
    os.unlink(p.path("old.db"))
    wait_for("the primary to retire old.db", lambda: "old.db" not in dbs_entries(p))
    create_with_rows(p, "old.db", 1, mode="delete")
    mark = r.log_size()
    r.start()
    C.wait_converged(p, [r], ["old.db"])
    C.assert_identical(p, [r], ["old.db"])
    con = sqlite3.connect(r.path("old.db"))
    assert con.execute("SELECT x FROM t").fetchall() == [("old.db-0",)]
    con.close()
    log = r.log_since(mark)
    assert "LOST" not in log, log
    assert "installed snapshot" in log, log
    assert p.pos("old.db")[0] > old_txid + 1     # TXIDs continue after the delete


# ---- descriptors bounded -------------------------------------------------------------

CAP = 64
SLACK = 24       # the daemon's own: FUSE, listening and client sockets, its log, pipes


def test_descriptors_stay_bounded_with_many_databases(node_factory):
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    for n in (p, r):
        n.data_config = "  max-open-files: %d\n" % CAP
        n.start()
    base = {n: fd_count(n) for n in (p, r)}
    names = ["db%03d.db" % i for i in range(300)]
    peak = {p: 0, r: 0}

    def sample():
        for n in (p, r):
            peak[n] = max(peak[n], fd_count(n) - base[n])

    for i, name in enumerate(names):
        con = sqlite3.connect(p.path(name), timeout=30)
        con.execute("PRAGMA journal_mode=%s" % ("wal" if i % 2 else "delete"))
        con.execute("CREATE TABLE t(x)")
        con.execute("INSERT INTO t VALUES(?)", (name,))
        con.commit()
        con.close()
        if i % 25 == 0:
            sample()
    for name in names:                     # write to each again
        with sqlite3.connect(p.path(name), timeout=30) as con:
            con.execute("INSERT INTO t VALUES('again')")
        con.close()
    sample()
    for name in names:                     # and read them back
        con = sqlite3.connect(p.path(name), timeout=30)
        assert con.execute("SELECT x FROM t ORDER BY rowid").fetchall() == [(name,), ("again",)]
        con.close()
    C.wait_converged(p, [r], names, timeout=120)
    sample()
    for n in (p, r):
        assert peak[n] <= CAP + SLACK, (n.name, peak[n], base[n])
        m = C.metrics(n)
        assert m["ltxfs_open_files_max"] == CAP
        assert m["ltxfs_open_files"] <= CAP + 8, m["ltxfs_open_files"]
        assert m["ltxfs_open_files_closes_total"] > 0
    # a restart opens every database (recovery) within the bound too
    p.restart()
    r.restart()
    C.wait_converged(p, [r], names, timeout=120)
    for n in (p, r):
        assert len(status(n)["databases"]) == 300
        assert fd_count(n) <= base[n] + CAP + SLACK, (n.name, fd_count(n), base[n])
    for name in names[::30]:
        assert H.integrity_check(p.path(name)) == "ok"
        assert H.integrity_check(r.path(name)) == "ok"
    C.assert_identical(p, [r], names)
    sample()
    for n in (p, r):
        assert peak[n] <= CAP + SLACK, (n.name, peak[n], base[n])
    # a new replica gets all 300 (snapshots or histories) within the bound
    r2 = C.make_replica(node_factory, p, "replica2")
    r2.data_config = "  max-open-files: %d\n" % CAP
    r2.start()
    base2, peak2 = fd_count(r2), 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        peak2 = max(peak2, fd_count(r2) - base2)
        if all(C.pos_or_none(r2, n) == p.pos(n) for n in names[::-1][:5]) and \
                len(status(r2)["databases"]) == 300:
            break
        time.sleep(0.02)
    C.wait_converged(p, [r2], names, timeout=120)
    peak2 = max(peak2, fd_count(r2) - base2)
    assert peak2 <= CAP + SLACK, peak2
    C.assert_identical(p, [r2], names[::30])


def test_small_databases_take_little_disk(node):
    """100 one-row databases: at most 64 KiB each on disk (database, log,
    directories), running and after a stop.  Each log once kept 1 MiB of
    zeros written ahead: 10,000 one-row databases took 10 GB."""
    for i in range(100):
        con = sqlite3.connect(node.path("s%d.db" % i), isolation_level=None)
        con.execute("PRAGMA journal_mode=delete")
        con.execute("CREATE TABLE t(x)")
        con.execute("INSERT INTO t VALUES (randomblob(100))")
        con.close()

    def kib_per_db():
        out = subprocess.check_output(["du", "-sk", os.path.join(node.data, "dbs")])
        return int(out.split()[0]) / 100

    running = kib_per_db()
    assert running <= 64, "%.1f KiB per one-row database while running" % running
    node.stop()
    stopped = kib_per_db()
    assert stopped <= 48, "%.1f KiB per one-row database after a stop" % stopped
    node.start()
