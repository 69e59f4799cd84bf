"""test_http.py - the node's HTTP API today: GET /status and GET /metrics.

/status names the node and, per database, the position NAME-pos shows and
the log's size; /metrics carries the same in Prometheus text format.  Other
paths are 404 and other methods 405, with a JSON error.  A node whose
http.addr is taken does not start (and says why).
"""

import json
import re
import socket
import urllib.error
import urllib.request

import pytest

import ltxfs_helpers as H


def get(node, path, method="GET", data=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (node.port, path),
                                 data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def test_status_reports_positions(node):
    H.sqlite_cli(node.path("a.db"), "PRAGMA journal_mode=wal; CREATE TABLE t(x);"
                 "INSERT INTO t VALUES (1), (2);")
    H.sqlite_cli(node.path("b.db"), "CREATE TABLE t(x);")
    code, ctype, body = get(node, "/status")
    assert code == 200 and ctype == "application/json"
    st = json.loads(body)
    assert st["role"] == "primary" and st["lease"] == "static"
    assert re.fullmatch(r"[0-9a-f]{16}", st["node_id"])
    assert st["hostname"] == st["primary"] == socket.gethostname()
    dbs = {d["name"]: d for d in st["databases"]}
    assert set(dbs) == {"a.db", "b.db"}
    for name in ("a.db", "b.db"):
        txid, ck = node.pos(name)
        ents = node.log_list(name)
        d = dbs[name]
        assert (d["txid"], int(d["checksum"], 16)) == (txid, ck)
        assert d["exists"] is True and d["failed"] is False
        assert d["log_transactions"] == len(ents)
        assert d["log_bytes"] == sum(e.nbytes for e in ents)
        assert d["page_size"] == 4096 and d["page_count"] == ents[-1].commit
    assert dbs["a.db"]["journal"] == "wal" and dbs["b.db"]["journal"] == "rollback"


def test_metrics_match_status(node):
    H.sqlite_cli(node.path("m.db"), "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    code, ctype, text = get(node, "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) ltxfs_\w+ ", line), line
            continue
        m = re.fullmatch(r'(ltxfs_\w+)(\{[^}]*\})? (\S+)', line)
        assert m, "not a Prometheus sample line: %r" % line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    txid, _ = node.pos("m.db")
    assert samples['ltxfs_db_txid{db="m.db"}'] == txid
    assert samples['ltxfs_db_failed{db="m.db"}'] == 0
    assert samples["ltxfs_primary"] == 1 and samples["ltxfs_databases"] == 1
    assert samples['ltxfs_db_size_bytes{db="m.db"}'] == 2 * 4096


@pytest.mark.parametrize("path,method,code", [
    ("/nope", "GET", 404), ("/status/x", "GET", 404),
    ("/status", "POST", 405), ("/metrics", "DELETE", 405)])
def test_bad_requests(node, path, method, code):
    with pytest.raises(urllib.error.HTTPError) as ei:
        get(node, path, method, data=b"x" * 100 if method == "POST" else None)
    assert ei.value.code == code
    assert "error" in json.loads(ei.value.read().decode())
    assert get(node, "/status")[0] == 200       # still serving


def test_address_in_use_refuses_to_start(node_factory):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        n = node_factory()
        n.port = busy.getsockname()[1]
        n.write_config()
        rc, text = n.start_expect_exit()
        assert rc not in (None, 0), "started although http.addr is taken:\n" + text[-2000:]
        assert "http.addr" in text and str(n.port) in text, text[-2000:]
        assert not H.mounted_at(n.mnt)
    finally:
        busy.close()
