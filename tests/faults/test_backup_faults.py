"""test_backup_faults.py - the backup's write path under faults: a full
backup disk, and SIGKILL of the primary while it ships.

The checker, after each fault: every row whose commit returned OK to a
client is in the database, and a restore of the backup's newest point
(`ltxfs restore`, verified end to end) gives exactly the database's
content.  Commits never wait for the backup: while shipping fails they
still succeed, and /health says the backup is behind.
"""

import os
import sqlite3
import time
import urllib.error
import urllib.request

import pytest

import cluster as C
import ltxfs_helpers as H
from fault_helpers import fill, small_tmpfs
from test_backup import backup_list, content, restore, wait_shipped

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


@pytest.fixture
def small_store(tmp_path):
    """The backup directory on a 16 MiB tmpfs; listed before node_factory,
    so the node is stopped first."""
    with small_tmpfs(str(tmp_path / "store"), size="16m") as store:
        yield store


def health(node):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % node.port, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def insert(node, name, first, count, size=4000):
    """Rows first..first+count-1, one transaction each; the ids acknowledged."""
    acked = []
    con = sqlite3.connect(node.path(name), isolation_level=None, timeout=30)
    for i in range(first, first + count):
        try:
            con.execute("INSERT INTO t(id, v) VALUES (?, ?)", (i, "r%d-%s" % (i, "x" * size)))
            acked.append(i)
        except sqlite3.Error:
            pass
    con.close()
    return acked


def ids(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return [r[0] for r in con.execute("SELECT id FROM t ORDER BY id")]
    finally:
        con.close()


def check_backup_matches(node, name, acked, tmp_path, tag):
    """Every acknowledged row is in the database, and the backup's newest
    point is exactly the database."""
    have = set(ids(node.path(name)))
    missing = [i for i in acked if i not in have]
    assert not missing, "acknowledged rows missing from the database: %s" % missing[:20]
    wait_shipped(node, name, node.pos(name)[0], timeout=60)
    out = str(tmp_path / ("restored-%s.db" % tag))
    restore(node, name, out)
    assert content(out) == content(node.path(name)), tag


def test_a_full_backup_disk_delays_the_backup_and_loses_nothing(node_factory, tmp_path,
                                                                small_store):
    n = node_factory("node", extra_config=(
        "backup:\n  url: \"file://%s\"\n  sync-interval: 100ms\n  max-lag: 1s\n"
        % small_store))
    n.start()
    con = sqlite3.connect(n.path("a.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    con.close()
    acked = insert(n, "a.db", 1, 50)
    wait_shipped(n, "a.db", n.pos("a.db")[0])
    filler = fill(small_store, 15)          # the backup disk is full now
    acked += insert(n, "a.db", 100, 200)    # commits go on: the backup waits
    assert len(acked) == 250, "commits failed because the backup disk is full"
    deadline = time.monotonic() + 20
    while health(n)[0] != 503:
        assert time.monotonic() < deadline, health(n)
        time.sleep(0.2)
    code, body = health(n)
    assert "backup of a.db" in body and "behind" in body, body
    assert backup_list(n, "a.db")["a.db"]["last"] < n.pos("a.db")[0]
    os.unlink(filler)                       # room again: the backup catches up by itself
    check_backup_matches(n, "a.db", acked, tmp_path, "after-full")
    deadline = time.monotonic() + 20
    while health(n)[0] != 200:
        assert time.monotonic() < deadline, health(n)
        time.sleep(0.2)
    assert C.metrics(n)["ltxfs_backup_upload_errors_total"] > 0


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_sigkill_while_shipping_loses_nothing(node_factory, tmp_path, mode):
    store = str(tmp_path / "store")
    os.makedirs(store)
    n = node_factory("node", extra_config=(
        "backup:\n  url: \"file://%s\"\n  sync-interval: 50ms\n  snapshot-interval: 1s\n"
        "  l1-interval: 200ms\n  l2-interval: 400ms\n  l3-interval: 800ms\n" % store))
    n.start()
    con = sqlite3.connect(n.path("a.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    con.close()
    acked = []
    for round_ in range(4):
        acked += insert(n, "a.db", round_ * 1000 + 1, 60, size=1000)
        time.sleep(0.05 * round_)           # kill at a different step of shipping each time
        n.kill()                            # SIGKILL, then the stale mount cleaned
        n.start()
    check_backup_matches(n, "a.db", acked, tmp_path, "after-kills")
    row = backup_list(n, "a.db")["a.db"]
    assert row["lost"] == 0, row            # one node, one history: nothing superseded
