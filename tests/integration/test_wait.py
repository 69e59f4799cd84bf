"""test_wait.py - read-your-writes for applications that are not HTTP:
`ltxfs wait -name DB -txid POS` and GET /wait (replica/position_wait.h).

A client writes on the primary and reads the primary's NAME-pos; asking a
replica to wait for that position, then reading there, shows the write,
every time.  A position the replica does not reach in time is a timeout
(504, exit 1); a position whose checksum is not on the node's history is a
lost write (409, exit 1), told apart from a late one; malformed requests
are refused with a reason.
"""

import json
import os
import sqlite3
import threading
import urllib.error

import pytest

import cluster as C


def wait_http(node, name, pos, timeout="5s"):
    """(status, decoded body) of GET /wait."""
    path = "/wait?name=%s&pos=%s&timeout=%s" % (name, pos, timeout)
    try:
        with C.api_get(node, path, timeout=70) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def pos_text(node, name):
    with open(node.path(name + "-pos")) as f:
        return f.read().strip()


def cli_wait(node, name, pos, timeout="5s"):
    return node.ltxfs("wait", "-url", "http://%s:%d" % (node.host, node.port), "-name", name,
                      "-txid", pos, "-timeout", timeout, check=False)


def test_a_replica_that_waited_shows_the_write(node_factory):
    """200 writes on the primary; after each, `ltxfs wait` on the replica
    for the primary's position (every other time the TXID alone), then a
    read on the replica sees the row."""
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    w = sqlite3.connect(p.path("a.db"), isolation_level=None, timeout=10)
    w.execute("PRAGMA journal_mode=wal").fetchall()
    w.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(200):
        w.execute("INSERT INTO t VALUES(?, 'x')", (i,))
        pos = pos_text(p, "a.db")
        if i % 2:
            pos = pos.split("/")[0]
        if i % 10 == 0:
            out = cli_wait(r, "a.db", pos)
            assert out.returncode == 0, out.stderr
            assert out.stdout.startswith("a.db at "), out.stdout
        else:
            code, body = wait_http(r, "a.db", pos)
            assert code == 200 and body["reached"], body
        c = sqlite3.connect("file:%s?mode=ro" % r.path("a.db"), uri=True, timeout=10)
        try:
            assert c.execute("SELECT count(*) FROM t WHERE id = ?", (i,)).fetchone()[0] == 1, i
        finally:
            c.close()
    w.close()


def test_a_database_that_does_not_exist_yet_is_waited_for(node_factory):
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    got = {}

    def waiter():
        got["answer"] = wait_http(r, "later.db", "1", timeout="20s")

    t = threading.Thread(target=waiter)
    t.start()
    c = sqlite3.connect(p.path("later.db"), isolation_level=None)
    c.execute("CREATE TABLE t(x)")
    c.close()
    t.join(30)
    code, body = got["answer"]
    assert code == 200 and body["reached"], body


def test_timeout_and_lost_writes_are_told_apart(node_factory):
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    c = sqlite3.connect(p.path("a.db"), isolation_level=None)
    c.execute("CREATE TABLE t(x)")
    c.execute("INSERT INTO t VALUES(1)")
    c.close()
    C.wait_converged(p, [r], ["a.db"])
    txid, ck = p.pos("a.db")
    # far ahead: a timeout, with where the node stands
    code, body = wait_http(r, "a.db", "%x" % (txid + 1000), timeout="300ms")
    assert code == 504 and not body["reached"], body
    assert body["pos"] == pos_text(r, "a.db"), body
    out = cli_wait(r, "a.db", "%x" % (txid + 1000), timeout="300ms")
    assert out.returncode == 1 and "did not reach" in out.stderr, out.stderr
    # the TXID is there, with another checksum: the write was lost
    wrong = "%016x/%016x" % (txid, ck ^ 1)
    code, body = wait_http(r, "a.db", wrong)
    assert code == 409 and "lost" in body["error"], body
    out = cli_wait(r, "a.db", wrong)
    assert out.returncode == 1 and "lost" in out.stderr, out.stderr
    # an earlier position of the same history is reached at once
    code, body = wait_http(r, "a.db", "%016x/%016x" % (txid, ck))
    assert code == 200, body
    code, body = wait_http(p, "a.db", "1")
    assert code == 200, body


@pytest.mark.parametrize("query,says", [
    ("/wait?pos=1", "name"),
    ("/wait?name=a.db", "pos"),
    ("/wait?name=a.db&pos=0", "TXID 0"),
    ("/wait?name=a.db&pos=xyz", "hexadecimal"),
    ("/wait?name=a.db&pos=1/2/3", "hexadecimal"),
    ("/wait?name=a.db&pos=1&timeout=2m", "timeout"),
    ("/wait?name=a.db&pos=1&timeout=soon", "timeout"),
    ("/wait?name=../x&pos=1", "name"),
])
def test_malformed_waits_are_refused(node_factory, query, says):
    n = node_factory()
    n.start()
    try:
        C.api_get(n, query)
        raise AssertionError("%s was accepted" % query)
    except urllib.error.HTTPError as e:
        assert e.code == 400, (query, e.code)
        assert says in json.loads(e.read())["error"], query
    out = n.ltxfs("wait", "-url", "http://%s:%d" % (n.host, n.port), "-name", "a.db",
                  check=False)
    assert out.returncode == 2 and "usage" in out.stderr
    assert os.path.exists(n.mnt)
