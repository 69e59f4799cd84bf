"""test_scale.py - what a node keeps per database (issue 12, finding 3).

Counts and bounds only, never timings (those are in
tests/bench/scale_bench.py):
  - SQLite's super-journals (a commit that changes two attached
    rollback-journal databases writes MAIN-mjXXXXXXXXX next to the main
    database) are plain files, not databases: no status row, no dbs/
    entry, no descriptor that stays;
"""

import json
import os
import sqlite3
import urllib.request

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
