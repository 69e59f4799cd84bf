"""test_divergence.py - a demoted primary whose last transactions never
reached the node that took over.

On a static lease, so the roles are moved by hand and every step is
deterministic: node A is primary and B its replica; B stops; A commits
transactions B never receives and dies (SIGKILL); B becomes primary and
commits its own; A comes back as B's replica.  A must report what it lost
(database, TXIDs, count) in its log and /status, keep those transactions'
records on disk, and converge to B's history byte for byte, never merging
the two.
"""

import json
import os
import sqlite3

import pytest

import cluster as C
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


def lease(hostname, candidate, url):
    return ("lease:\n  type: static\n  candidate: %s\n  hostname: %s\n"
            "  advertise-url: \"%s\"\n" % ("true" if candidate else "false", hostname, url))


def url(node):
    return "http://127.0.0.1:%d" % node.port


def make_primary(node, hostname):
    node.lease_text = lease(hostname, True, url(node))


def make_replica_of(node, primary, hostname):
    node.lease_text = lease(hostname, False, url(primary))


def commit(node, n, tag):
    c = sqlite3.connect(node.path("a.db"), timeout=30, isolation_level=None)
    try:
        for i in range(n):
            c.execute("INSERT INTO t(v) VALUES (?)", ("%s-%d" % (tag, i),))
    finally:
        c.close()


# B commits fewer, as many, and more transactions than A lost: A is then
# ahead of B, at B's TXID with another checksum, or off B's history below it.
@pytest.mark.parametrize("b_commits", [1, 3, 5])
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_demoted_primary_reports_lost_transactions(node_factory, mode, b_commits):
    a, b = node_factory("a"), node_factory("b")
    for n in (a, b):
        n.port = H.free_port()
        n.locks = "ltxfs"            # both are replicas at some point
    make_primary(a, "host-a")
    make_replica_of(b, a, "host-a")
    a.start()
    b.start()
    H.sqlite_cli(a.path("a.db"), "PRAGMA journal_mode=%s; CREATE TABLE t(v TEXT);" % mode)
    commit(a, 4, "shared")
    shared_txid = C.wait_converged(a, [b], ["a.db"])["a.db"][0]

    b.stop()
    commit(a, 3, "only-on-a")                     # acknowledged, never replicated
    a_txid = C.status(a)["databases"][0]["txid"]
    assert a_txid == shared_txid + 3
    a.kill()

    make_primary(b, "host-b")
    b.start()
    commit(b, b_commits, "on-b")
    make_replica_of(a, b, "host-b")
    a.start()
    C.wait_converged(b, [a], ["a.db"])

    # Reported: the range, the count, where the records are kept.
    db = C.status(a)["databases"][0]
    lost = db["lost"]
    assert (lost["from"], lost["to"], lost["count"]) == \
        (shared_txid + 1, shared_txid + 3, 3), json.dumps(db)
    assert lost["events"] == 1 and lost["total"] == 3
    log = a.log_text()
    assert "LOST: TXIDs %d..%d (3 transactions)" % (shared_txid + 1, shared_txid + 3) in log
    assert "host-b" in log.split("LOST:")[1].splitlines()[0]
    assert C.metrics(a)['ltxfs_db_lost_transactions_total{db="a.db"}'] == 3

    # Kept: the lost transactions' LTX records, readable with `ltxfs ltx`.
    kept = os.path.join(a.db_dir("a.db"), lost["kept"])
    files = sorted(os.listdir(kept))
    assert files == ["%d-%d.ltx" % (t, t) for t in range(shared_txid + 1, shared_txid + 4)], files
    for f in files:
        a.ltxfs("ltx", "verify", os.path.join(kept, f))

    # Converged to B's history; nothing of A's lost rows merged in.
    C.assert_identical(b, [a], ["a.db"])
    rows = [r[0] for r in sqlite3.connect("file:%s?mode=ro" % a.path("a.db"), uri=True)
            .execute("SELECT v FROM t")]
    assert not [r for r in rows if r.startswith("only-on-a")]
    assert len([r for r in rows if r.startswith("on-b")]) == b_commits

    # B logs it too.
    assert "at TXID %d is off our history" % (shared_txid + 3) in b.log_text()


def test_replica_behind_is_not_reported_as_diverged(node_factory):
    """A replica that merely missed transactions (stopped, then restarted)
    catches up with no report of anything lost."""
    a, b = node_factory("a"), node_factory("b")
    for n in (a, b):
        n.port = H.free_port()
        n.locks = "ltxfs"
    make_primary(a, "host-a")
    make_replica_of(b, a, "host-a")
    a.start()
    b.start()
    H.sqlite_cli(a.path("a.db"), "CREATE TABLE t(v TEXT);")
    commit(a, 3, "x")
    C.wait_converged(a, [b], ["a.db"])
    b.stop()
    commit(a, 3, "y")
    b.start()
    C.wait_converged(a, [b], ["a.db"])
    assert "lost" not in C.status(b)["databases"][0]
    assert "LOST" not in b.log_text()
