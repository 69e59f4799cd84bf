"""test_disk_full.py - a full data directory on the primary loses no
acknowledged commit, and the node recovers by itself when space comes back.

The primary's data.dir is a 40 MiB tmpfs with an 8 MiB filler file on it.
A writer inserts 20 KB rows, one transaction each, and keeps writing after
its first `database or disk is full`.  The checker: every row whose commit
returned OK is in the database (read through the mount), and the log
replays to the database file byte for byte.  While commits are refused,
/health is 503 and /status says why; after a clean restart on the full disk
the node starts and serves the database.  Then the filler is removed: the
node accepts commits again without a restart, and the checker holds after
a clean restart and after SIGKILL.

Before the fix (issue 12, finding 1), WAL mode lost acknowledged commits:
a commit frame whose transaction could not be logged was zeroed after the
kernel had split its page write, SQLite retried the unwritten part, which
then succeeded, and every later commit sat behind the zeroed frame.
"""

import json
import os
import sqlite3
import time
import urllib.error
import urllib.request

import pytest

import ltxfs_helpers as H
from fault_helpers import fill, make_table, small_tmpfs

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

ROW = 20000


@pytest.fixture
def small_disk(tmp_path):
    """data.dir of the node "node" (node_factory's default) on a 40 MiB
    tmpfs; listed before node_factory, so the node is stopped first."""
    with small_tmpfs(str(tmp_path / "node" / "data")) as data:
        yield data


def get(node, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (node.port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def write_until_full(path, mode, sync, first_id, extra_errors=60):
    """Insert rows until `extra_errors` commits failed after the first; return the ids acknowledged."""
    acked, errors = [], 0
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    con.execute("PRAGMA synchronous=%s" % sync)
    i = first_id
    while errors < extra_errors and i < first_id + 5000:
        try:
            con.execute("INSERT INTO t VALUES(?, randomblob(?))", (i, ROW))
            acked.append(i)
        except sqlite3.Error as e:
            assert "full" in str(e) or "I/O" in str(e), "unexpected error: %s" % e
            errors += 1
        i += 1
    con.close()
    assert errors, "the disk never filled"
    return acked


def check_acked(node, name, acked, what):
    con = sqlite3.connect("file:%s?mode=ro" % node.path(name), uri=True, timeout=30)
    try:
        have = set(r[0] for r in con.execute("SELECT id FROM t"))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", what
    finally:
        con.close()
    missing = sorted(set(acked) - have)
    assert not missing, "%s: %d acknowledged rows missing, first %s" % (what, len(missing), missing[:5])


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.deadline(240)
@pytest.mark.parametrize("mode,sync", [("wal", "full"), ("wal", "normal"), ("wal", "off"),
                                       ("delete", "full"), ("delete", "normal"),
                                       ("truncate", "off"), ("persist", "full")])
def test_full_disk_loses_no_acknowledged_commit(small_disk, node_factory, mode, sync):
    node = node_factory()
    assert node.data == small_disk
    filler = fill(node.data, 8)
    node.start()
    name = "full.db"
    make_table(node, name, mode)

    acked = write_until_full(node.path(name), mode, sync, 0)
    check_acked(node, name, acked, "while the disk is full")
    code, body = get(node, "/health")
    assert code == 503 and name in body, "/health while commits are refused: %d %s" % (code, body)
    st = json.loads(get(node, "/status")[1])
    db = [d for d in st["databases"] if d["name"] == name][0]
    assert db["storage_error"] and db["commits_refused"] > 0, db

    # A clean restart on the full disk: the node starts and serves what it has.
    node.stop()
    node.start()
    check_acked(node, name, acked, "after a clean restart on the full disk")

    # Space comes back: commits are accepted again, without a restart.
    os.remove(filler)
    wait_for(lambda: get(node, "/health")[0] == 200, 30, "/health 200 once space is back")
    con = sqlite3.connect(node.path(name), isolation_level=None, timeout=30)
    for i in range(100000, 100020):
        con.execute("INSERT INTO t VALUES(?, randomblob(?))", (i, ROW))
        acked.append(i)
    con.close()
    check_acked(node, name, acked, "after space came back")
    node.stop()
    node.start()
    check_acked(node, name, acked, "after a clean restart")
    node.check_replay(name)
    node.kill()
    node.start()
    check_acked(node, name, acked, "after SIGKILL and restart")
    node.check_replay(name)
