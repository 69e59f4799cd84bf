"""test_sync_replication.py - replication.mode sync on a static lease: a
primary and replicas on 127.0.0.1, driven by real SQLite clients.

What sync mode promises (docs/design.md, "Synchronous replication"): a
commit returns to the application only once replication.min-acks replicas
hold it durably; with replicas frozen or gone, on-timeout fail makes
commits fail (nothing reported committed without its acknowledgements) and
on-timeout degrade goes on asynchronously, saying so.  The failover side
(no acknowledged write lost when the primary dies) is in
test_sync_failover.py.
"""

import json
import os
import signal
import sqlite3
import threading
import time

import pytest

import cluster as C
import ltxfs_helpers as H


def sync_config(min_acks=1, timeout="1s", on_timeout="fail", ack_after="fsync"):
    return ("replication:\n  mode: sync\n  min-acks: %d\n  sync-timeout: %s\n"
            "  on-timeout: %s\n  ack-after: %s\n" % (min_acks, timeout, on_timeout, ack_after))


def sync_cluster(node_factory, replicas=2, **kw):
    p = C.make_primary(node_factory)
    p.extra_config = sync_config(**kw)
    rs = [C.make_replica(node_factory, p, "replica%d" % (i + 1)) for i in range(replicas)]
    p.start()
    for r in rs:
        r.start()
    wait_in_sync(p, replicas)
    return p, rs


def replication(node):
    return C.status(node)["replication"]


def wait_in_sync(p, count, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        r = replication(p)
        if r.get("in_sync", 0) >= count and r.get("state") == "in-sync":
            return r
        if time.monotonic() > deadline:
            raise AssertionError("%d replicas not in sync: %r\n%s" % (count, r, p.log_tail(30)))
        time.sleep(0.05)


def connect(node, name, mode="wal"):
    c = sqlite3.connect(node.path(name), timeout=10, isolation_level=None)
    c.execute("PRAGMA journal_mode=%s" % mode).fetchall()
    return c


def insert(c, value):
    c.execute("INSERT INTO t(v) VALUES (?)", (value,))


def freeze(nodes):
    for n in nodes:
        os.kill(n.pid(), signal.SIGSTOP)


def thaw(nodes):
    for n in nodes:
        os.kill(n.pid(), signal.SIGCONT)


@pytest.mark.parametrize("mode,ack_after", [("wal", "fsync"), ("delete", "fsync"),
                                            ("wal", "write"), ("delete", "write")])
def test_a_commit_returns_only_once_a_replica_holds_it(node_factory, mode, ack_after):
    """After every commit the application saw succeed, a replica already
    has the transaction (min-acks 1 of 2): 200 commits in a row, with
    replicas acknowledging once their log is fsynced or once written."""
    p, rs = sync_cluster(node_factory, replicas=2, ack_after=ack_after)
    c = connect(p, "a.db", mode)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(200):
        insert(c, "row-%d" % i)
        txid = p.pos("a.db")[0]
        have = [C.pos_or_none(r, "a.db") for r in rs]
        assert any(h is not None and h[0] >= txid for h in have), \
            "commit %d (TXID %d) returned, replicas at %r" % (i, txid, have)
    c.close()
    r = replication(p)
    assert r["mode"] == "sync" and r["state"] == "in-sync" and r["in_sync"] == 2
    assert r["ack_after"] == ack_after
    assert r["commits_waited"] >= 201 and r["timeouts"] == 0
    out = p.ltxfs("status", "-config", p.config_path).stdout
    assert ("log is %s" % ("fsynced" if ack_after == "fsync" else "written")) in out, out
    st = C.status(p)
    assert all(x["in_sync"] for x in st["replicas"]), st["replicas"]
    m = C.metrics(p)
    assert m["ltxfs_sync_commit_wait_seconds_count"] >= 201
    assert m["ltxfs_sync_replicas_in_sync"] == 2
    C.wait_converged(p, rs, ["a.db"])


@pytest.mark.parametrize("mode", ["wal", "delete", "truncate", "persist"])
def test_fail_mode_never_reports_an_unacknowledged_commit(node_factory, mode):
    """Replicas frozen: the commit waiting for them fails after
    sync-timeout, every later one fails at once (before it is logged), /health
    says why; the database stays sound, and once the replicas are back
    commits succeed again and every node converges."""
    p, rs = sync_cluster(node_factory, replicas=2, timeout="1s")
    c = connect(p, "a.db", mode)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    insert(c, "before")
    freeze(rs)
    try:
        t0 = time.monotonic()
        with pytest.raises(sqlite3.OperationalError):
            insert(c, "timed-out")
        waited = time.monotonic() - t0
        assert 0.9 <= waited < 5, waited
        for i in range(20):
            t0 = time.monotonic()
            with pytest.raises(sqlite3.OperationalError):
                insert(c, "refused-%d" % i)
            assert time.monotonic() - t0 < 0.5
        r = replication(p)
        assert r["state"] == "refusing" and r["in_sync"] == 0, r
        assert r["timeouts"] >= 1 and r["refused"] >= 20, r
        with pytest.raises(Exception) as e:
            C.api_get(p, "/health")
        assert e.value.code == 503
        assert "replication refusing" in e.value.read().decode()
    finally:
        thaw(rs)
    wait_in_sync(p, 2)
    c.close()
    c = connect(p, "a.db", mode)
    insert(c, "after")
    values = [v for (v,) in c.execute("SELECT v FROM t ORDER BY id")]
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    c.close()
    # the timed-out commit is ambiguous (committed here); the refused ones
    # never happened
    assert values[0] == "before" and values[-1] == "after", values
    assert not any(v.startswith("refused") for v in values), values
    assert set(values) <= {"before", "timed-out", "after"}, values
    C.wait_converged(p, rs, ["a.db"])
    C.checkpoint(p, "a.db")
    for r in rs:
        assert H.sqlite_cli(r.path("a.db"), "SELECT group_concat(v) FROM t ORDER BY id").stdout \
            .strip() == ",".join(values)


def test_degrade_mode_goes_on_and_says_so(node_factory):
    """on-timeout degrade: with the replicas frozen one commit waits
    sync-timeout, the next ones none; /status, /metrics, /events and /health
    say the node is degraded until the replicas are back in sync."""
    p, rs = sync_cluster(node_factory, replicas=1, timeout="1s", on_timeout="degrade")
    events = C.api_get(p, "/events", timeout=30)
    lines = []

    def read_events():
        try:
            for raw in events:
                lines.append(json.loads(raw))
        except Exception:
            pass

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    c = connect(p, "a.db")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    freeze(rs)
    try:
        t0 = time.monotonic()
        insert(c, "slow")
        assert 0.9 <= time.monotonic() - t0 < 5
        t0 = time.monotonic()
        for i in range(50):
            insert(c, "fast-%d" % i)
        assert time.monotonic() - t0 < 5
        r = replication(p)
        assert r["state"] == "degraded" and r["unreplicated"] >= 51, r
        assert C.metrics(p)["ltxfs_sync_degraded"] == 1
        with pytest.raises(Exception) as e:
            C.api_get(p, "/health")
        assert e.value.code == 503
        assert "DEGRADED" in p.log_text()
    finally:
        thaw(rs)
    wait_in_sync(p, 1)
    insert(c, "synced")
    c.close()
    assert C.metrics(p)["ltxfs_sync_degraded"] == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [x["state"] for x in lines if x.get("type") == "sync"]
        if states[-2:] == ["degraded", "in-sync"]:
            break
        time.sleep(0.1)
    assert states[-2:] == ["degraded", "in-sync"], lines
    events.close()
    C.wait_converged(p, rs, ["a.db"])


def test_min_acks_counts_distinct_replicas(node_factory):
    """min-acks 2 of 2 replicas: with one frozen, the other's acknowledgement
    is not enough (fail mode refuses); with both back, commits succeed and
    both replicas have each one when it returns."""
    p, rs = sync_cluster(node_factory, replicas=2, min_acks=2, timeout="1s")
    c = connect(p, "a.db")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        insert(c, "both-%d" % i)
        txid = p.pos("a.db")[0]
        assert all(r.pos("a.db")[0] >= txid for r in rs)
    freeze(rs[:1])
    try:
        with pytest.raises(sqlite3.OperationalError):
            insert(c, "one-replica")
        assert replication(p)["state"] == "refusing"
    finally:
        thaw(rs[:1])
    wait_in_sync(p, 2)
    c.close()
    c = connect(p, "a.db")
    insert(c, "after")
    c.close()
    C.wait_converged(p, rs, ["a.db"])


def test_a_restarted_replica_counts_again_only_once_caught_up(node_factory):
    """min-acks 1 with one replica: while it is down, commits fail; the
    primary moves on meanwhile only by commits that failed; once the replica
    is back and caught up, it is in sync and commits succeed."""
    p, rs = sync_cluster(node_factory, replicas=1, timeout="1s")
    c = connect(p, "a.db")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    insert(c, "one")
    rs[0].stop()
    with pytest.raises(sqlite3.OperationalError):
        insert(c, "lost-replica")
    r = replication(p)
    assert r["in_sync"] == 0 and r["state"] == "refusing", r
    rs[0].start()
    wait_in_sync(p, 1)
    st = C.status(p)
    assert st["replicas"][0]["in_sync"] is True
    # caught up: it holds the primary's whole history
    assert C.pos_or_none(rs[0], "a.db") == p.pos("a.db")
    insert(c, "two")
    c.close()
    C.wait_converged(p, rs, ["a.db"])


def test_async_mode_reports_no_sync_state(node_factory):
    """The default stays asynchronous: no acknowledgements are asked for,
    /status says so."""
    p, rs = C.make_cluster(node_factory, replicas=1)
    c = connect(p, "a.db")
    c.execute("CREATE TABLE t(v)")
    insert(c, "x")
    c.close()
    r = replication(p)
    assert r["mode"] == "async" and "state" not in r, r
    C.wait_converged(p, rs, ["a.db"])
    assert "in_sync" not in C.status(p)["replicas"][0]
    assert "ltxfs_sync_degraded" not in C.metrics(p)
