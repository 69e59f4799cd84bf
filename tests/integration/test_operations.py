"""test_operations.py - the operator's commands and endpoints on real clusters.

`ltxfs import` (an existing SQLite file becomes the cluster's database in
one transaction, keeping its journal mode), `ltxfs export` (a consistent,
checksum-verified copy from any node, also while the primary writes),
`ltxfs status` (table and --json, on each role), GET /health (ready and
within http.health-max-lag) and GET /events (newline-delimited JSON).
Each test drives the real `ltxfs` command line against real nodes on a
static lease and checks the files that result.
"""

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import cluster as C
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


def url(node):
    return "http://127.0.0.1:%d" % node.port


def cli(*args, check=True, timeout=300):
    cp = subprocess.run([H.binary()] + list(args), capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError("ltxfs %s exited %d:\n%s%s" % (" ".join(args), cp.returncode,
                                                            cp.stdout, cp.stderr))
    return cp


def make_source(path, mb, wal=True):
    """An SQLite file of about `mb` MiB of random rows."""
    con = H.sqlite3.connect(path)
    if wal:
        con.execute("PRAGMA journal_mode=wal")
    con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    con.execute("CREATE INDEX big_v ON big(substr(v, 1, 16))")
    rows = mb * 1024 * 1024 // 4000
    with con:
        con.executemany("INSERT INTO big(v) VALUES(randomblob(3900))",
                        [()] * rows)
    summary = con.execute("SELECT count(*), sum(length(v)), "
                          "sum(unicode(substr(v, 7, 1))) FROM big").fetchone()
    con.close()          # WAL content stays in the -wal file until checkpointed
    return summary


def summary_of(path):
    con = H.sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return (con.execute("SELECT count(*), sum(length(v)), "
                            "sum(unicode(substr(v, 7, 1))) FROM big").fetchone(),
                con.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        con.close()


@pytest.mark.deadline(600)
def test_import_of_a_100MB_wal_database_is_identical_on_every_replica(node_factory,
                                                                       tmp_path):
    primary, replicas = C.make_cluster(node_factory, replicas=2)
    src = str(tmp_path / "source.db")
    want = make_source(src, 100)
    cp = cli("import", "-url", url(primary), "-name", "big.db", src)
    assert "wal mode" in cp.stdout, cp.stdout
    C.wait_converged(primary, replicas, ["big.db"], timeout=300)
    for n in [primary] + replicas:
        assert summary_of(n.path("big.db")) == (want, "wal"), n.name
    C.assert_identical(primary, replicas, ["big.db"])
    assert H.integrity_check(replicas[0].path("big.db")) == "ok"
    # one transaction: the import moved the TXID by exactly one
    assert primary.pos("big.db")[0] == 1


def test_import_replaces_a_database_in_use_in_one_transaction(node_factory, tmp_path):
    """An application's database is replaced by an imported rollback-mode
    file while a reader holds it open; the reader sees the old or the new
    content, and the TXID moves by one."""
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    con = H.connect(primary.path("app.db"))
    con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    con.execute("INSERT INTO big(v) VALUES(x'00')")
    con.commit()
    before = primary.pos("app.db")[0]
    src = str(tmp_path / "new.db")
    want = make_source(src, 2, wal=False)
    cli("import", "-url", url(primary), "-name", "app.db", src)
    assert primary.pos("app.db")[0] == before + 1
    assert con.execute("SELECT count(*) FROM big").fetchone()[0] == want[0]
    con.close()
    C.wait_converged(primary, replicas, ["app.db"])
    assert summary_of(replicas[0].path("app.db")) == (want, "delete")


def test_import_is_refused_where_it_cannot_be_done(node_factory, tmp_path):
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    src = str(tmp_path / "source.db")
    make_source(src, 1)
    # on a replica: the answer names the primary to import on
    cp = cli("import", "-url", url(replicas[0]), "-name", "x.db", src, check=False)
    assert cp.returncode == 1
    assert "this node is a replica: import on the primary" in cp.stderr, cp.stderr
    assert url(primary) in cp.stderr
    # a damaged file: refused here, nothing sent
    bad = str(tmp_path / "bad.db")
    with open(src, "rb") as f:
        data = bytearray(f.read())
    data[4096 * 3 + 100: 4096 * 3 + 400] = b"\xff" * 300
    with open(bad, "wb") as f:
        f.write(data)
    cp = cli("import", "-url", url(primary), "-name", "x.db", bad, check=False)
    assert cp.returncode == 1 and "fails PRAGMA integrity_check" in cp.stderr, cp.stderr
    # not a database at all, sent straight to the node: 400, nothing created
    req = urllib.request.Request(url(primary) + "/import?name=x.db", data=b"garbage" * 1000,
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400
    assert "not an SQLite database" in json.loads(e.value.read())["error"]
    assert not os.path.exists(primary.path("x.db"))
    assert os.listdir(os.path.join(primary.data, "tmp")) == []
    # no valid ?name=DB: 400, whatever the body
    for query in ("", "?name=..%2Fx", "?name=x.db-wal"):
        req = urllib.request.Request(url(primary) + "/import" + query, data=b"x" * 5000,
                                     method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 400
        assert json.loads(e.value.read())["error"].startswith("missing or invalid ?name=DB")
    # an unreachable node: says which URL and what to check
    cp = cli("import", "-url", "http://127.0.0.1:1", "-name", "x.db", src, check=False)
    assert "cannot reach the node at http://127.0.0.1:1" in cp.stderr, cp.stderr


def writer(node, name, stop, counter):
    con = H.connect(node.path(name))
    i = 0
    while not stop.is_set():
        con.execute("INSERT INTO t(v) VALUES(randomblob(3000))")
        if i % 10 == 0:
            con.execute("DELETE FROM t WHERE id %% 7 = %d" % (i % 7))
        con.commit()
        i += 1
        counter[0] = i
    con.close()


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_export_from_a_replica_while_the_primary_writes(node_factory, tmp_path, mode):
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    con = H.connect(primary.path("app.db"))
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    con.executemany("INSERT INTO t(v) VALUES(randomblob(3000))", [()] * 3000)
    con.commit()
    con.close()
    stop, counter = threading.Event(), [0]
    th = threading.Thread(target=writer, args=(primary, "app.db", stop, counter))
    th.start()
    try:
        i = 0
        deadline = time.monotonic() + 120
        while i < 5 or (counter[0] < 100 and time.monotonic() < deadline):
            out = str(tmp_path / "during.db")
            cp = cli("export", "-url", url(replicas[0]), "-name", "app.db", out)
            assert "at TXID" in cp.stdout
            assert H.integrity_check(out) == "ok"
            i += 1
    finally:
        stop.set()
        th.join()
    assert counter[0] > 50, "the writer hardly ran"
    C.wait_converged(primary, replicas, ["app.db"])
    a, b = str(tmp_path / "from-primary.db"), str(tmp_path / "from-replica.db")
    cli("export", "-url", url(primary), "-name", "app.db", a)
    cli("export", "-url", url(replicas[0]), "-name", "app.db", b)
    assert C.sha256(a) == C.sha256(b)
    C.checkpoint(primary, "app.db")
    assert C.sha256(a) == C.sha256(primary.backing("app.db"))
    con = H.sqlite3.connect(b)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == mode
    con.close()


def test_export_errors(node_factory, tmp_path):
    node = node_factory().start()
    out = tmp_path / "x.db"
    cp = cli("export", "-url", url(node), "-name", "nope.db", str(out), check=False)
    assert cp.returncode == 1 and "no such database" in cp.stderr, cp.stderr
    assert not out.exists() and os.listdir(str(tmp_path)) == ["node"]
    cp = cli("export", "-url", url(node), str(out), check=False)
    assert cp.returncode == 2 and "usage: ltxfs export" in cp.stderr
    for command in ("status", "import", "export", "promote"):
        cp = cli(command, "-h")          # help is not an error
        assert cp.returncode == 0 and "usage: ltxfs %s" % command in cp.stdout


def test_status_on_each_role(node_factory):
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    con = H.connect(primary.path("app.db"))
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    C.wait_converged(primary, replicas, ["app.db"])
    node_id = C.status(replicas[0])["node_id"]
    deadline = time.monotonic() + 10
    while True:     # the replica shows as connected and ready on the primary
        p = cli("status", "-url", url(primary)).stdout
        if node_id in p and " yes " in p:
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.1)
    assert "role      primary, ready" in p
    assert "primary   %s" % C.PRIMARY_HOST in p
    assert "lease     static, epoch 1" in p
    assert "app.db" in p and " 8.0 KiB " in p, p
    r = cli("status", "-url", url(replicas[0])).stdout
    assert "role      replica, ready" in r
    assert "primary   %s" % C.PRIMARY_HOST in r
    assert "s since the primary was last heard" in r
    assert "REPLICA" not in r
    j = json.loads(cli("status", "-url", url(replicas[0]), "--json").stdout)
    assert j["role"] == "replica" and j["databases"][0]["name"] == "app.db"
    # -config: the URL comes from its http.addr
    assert "role      replica" in cli("status", "-config", replicas[0].config_path).stdout


def get(node, path):
    try:
        with urllib.request.urlopen(url(node) + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_follows_readiness_and_lag(node_factory):
    primary = C.make_primary(node_factory)
    replica = C.make_replica(node_factory, primary, "replica")
    replica.http_config = "  health-max-lag: 1500ms\n"
    replica.start()
    code, body = get(replica, "/health")
    assert code == 503 and "not caught up" in body["error"], body
    primary.start()
    deadline = time.monotonic() + 30
    while get(replica, "/health")[0] != 200:
        assert time.monotonic() < deadline, get(replica, "/health")
        time.sleep(0.05)
    assert get(primary, "/health") == (200, {"ok": True, "role": "primary", "lag_ms": 0,
                                              "error": None})
    primary.stop()
    deadline = time.monotonic() + 30
    while True:
        code, body = get(replica, "/health")
        if code == 503:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert "lagging: the primary was last heard" in body["error"], body
    assert "http.health-max-lag is 1500 ms" in body["error"]


def test_events_stream_transactions(node_factory):
    """One "tx" line per transaction, in order, on the primary and on a
    replica, also for a burst that commits faster than anyone looks."""
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    con = H.connect(primary.path("app.db"))
    con.execute("CREATE TABLE t(x)")
    con.commit()
    C.wait_converged(primary, replicas, ["app.db"])
    streams = [urllib.request.urlopen(url(n) + "/events", timeout=30)
               for n in (primary, replicas[0])]
    try:
        firsts = [json.loads(s.readline()) for s in streams]
        assert [f["type"] for f in firsts] == ["node", "node"]
        assert [f["role"] for f in firsts] == ["primary", "replica"]
        start = []
        for s in streams:
            line = json.loads(s.readline())
            assert line["type"] == "db" and line["db"] == "app.db"
            start.append(line["txid"])
        for i in range(20):
            con.execute("INSERT INTO t VALUES(?)", (i,))
            con.commit()
        last = primary.pos("app.db")[0]
        for s, first in zip(streams, start):
            seen = []
            while not seen or seen[-1] < last:
                line = json.loads(s.readline())
                if line["type"] == "tx":
                    assert line["db"] == "app.db" and line["transactions"] == 1, line
                    seen.append(line["txid"])
            assert seen == list(range(first + 1, last + 1)), seen
    finally:
        for s in streams:
            s.close()
        con.close()


def test_metrics_count_commits_renewals_and_lag(node_factory):
    primary, replicas = C.make_cluster(node_factory, replicas=1)
    con = H.connect(primary.path("app.db"))
    con.execute("CREATE TABLE t(x)")
    for i in range(5):
        con.execute("INSERT INTO t VALUES(?)", (i,))
        con.commit()
    con.close()
    C.wait_converged(primary, replicas, ["app.db"])
    txid = primary.pos("app.db")[0]
    m, r = C.metrics(primary), C.metrics(replicas[0])
    assert m['ltxfs_db_transactions_total{db="app.db"}'] == txid
    assert m['ltxfs_db_txid{db="app.db"}'] == txid
    assert m['ltxfs_db_checksum_mismatches_total{db="app.db"}'] == 0
    assert m["ltxfs_primary"] == 1 and m["ltxfs_lease_epoch"] == 1
    # the replica applied them (its snapshot at TXID 1 is not a commit)
    assert r['ltxfs_db_transactions_total{db="app.db"}'] >= txid - 1
    assert r["ltxfs_primary"] == 0 and 0 <= r["ltxfs_lag_seconds"] < 5
    assert m["ltxfs_lease_renews_total"] == 0      # a static lease is never renewed
    assert "ltxfs_lease_renew_seconds" not in m
