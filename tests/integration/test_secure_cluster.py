"""test_secure_cluster.py - clusters over HTTPS with bearer tokens and
mutual TLS (issue 13).

Every node serves HTTPS with a certificate of one throwaway CA, requires a
client certificate of that CA (http.tls.client-auth) and the cluster's
token, and advertises an https:// URL.  Replication in both journal modes,
the command line (credentials from the configuration, LTXFS_TOKEN over
it), and on Consul and etcd: failover (the new primary's catch-up asks the
others over HTTPS) and a hand-off (`ltxfs promote`).  A node whose
certificate comes from another CA, or that lacks the token, gets nothing.
"""

import os
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import cluster as C
import ltxfs_helpers as H
import test_failover as F
from test_failover import coord  # noqa: F401 (the Consul / etcd fixture)
from tls_pki import make_pki

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

TOKEN = "cluster-token-" + "k" * 18
NAMES = ("primary", "replica1", "replica2", "node1", "node2", "node3")


@pytest.fixture
def pki(tmp_path):
    return make_pki(str(tmp_path / "pki"), [("ca", name, None) for name in NAMES] +
                    [("other-ca", "intruder", None)])


def secure(node, pki, cert=None, token=TOKEN):
    """HTTPS with `cert` (default: the node's name), client certificates
    of the CA required, `token` (None: none); the tests' own calls use the
    CA, the node's certificate and TOKEN."""
    cert = cert or node.name
    if token is not None:
        node.http_config += "  token: %s\n" % token
    node.http_config += ("  tls:\n    cert: %s\n    key: %s\n    ca: %s\n"
                         "    client-auth: true\n"
                         % (pki(cert + ".crt"), pki(cert + ".key"), pki("ca.crt")))
    node.lease_text = node.lease_text.replace('advertise-url: "http://',
                                              'advertise-url: "https://')
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    ctx.load_cert_chain(pki(node.name + ".crt"), pki(node.name + ".key"))
    node.api_tls, node.api_token = ctx, TOKEN
    return node


def static_cluster(node_factory, pki, replicas=2, **kw):
    p = secure(C.make_primary(node_factory), pki)
    rs = [secure(C.make_replica(node_factory, p, "replica%d" % (i + 1),
                                url="https://127.0.0.1:%d" % p.port), pki, **kw)
          for i in range(replicas)]
    p.start()
    for r in rs:
        r.start()
    return p, rs


def write_rows(node, mode, n, name="a.db"):
    c = H.connect(node.path(name), journal_mode=mode)
    c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(n):
        with c:
            c.execute("INSERT INTO t(v) VALUES (?)", ("row %d" % i,))
    c.close()


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_replication_over_https_with_tokens_and_client_certificates(node_factory, pki, mode):
    p, rs = static_cluster(node_factory, pki)
    write_rows(p, mode, 50)
    C.wait_converged(p, rs, ["a.db"])
    C.assert_identical(p, rs, ["a.db"])
    assert "listening on 127.0.0.1:%d (HTTPS" % p.port in p.log_text()
    st = C.status(rs[0])
    assert st["role"] == "replica", st
    # the command line takes the token, CA and certificate from the node's
    # configuration and the scheme from http.tls.cert
    cp = p.ltxfs("status", "-config", rs[0].config_path)
    assert "a.db" in cp.stdout, cp.stdout
    # LTXFS_TOKEN wins over the configuration's token
    env = dict(os.environ, LTXFS_TOKEN="wrong-token-" + "w" * 20)
    bad = subprocess.run([H.binary(), "status", "-config", rs[0].config_path],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode != 0 and "401" in bad.stderr, bad.stderr


def test_sync_acknowledgements_over_https_with_tokens(node_factory, pki):
    """replication.mode sync on the secured layer: the replicas' POST /ack
    carries the token and the client certificate, and a commit returns only
    once a replica has it; an /ack without the token is refused (401)."""
    p = secure(C.make_primary(node_factory), pki)
    p.extra_config = "replication:\n  mode: sync\n  sync-timeout: 2s\n"
    rs = [secure(C.make_replica(node_factory, p, "replica1",
                                url="https://127.0.0.1:%d" % p.port), pki)]
    p.start()
    rs[0].start()
    deadline = time.monotonic() + 30
    while C.status(p).get("replication", {}).get("in_sync", 0) < 1:
        assert time.monotonic() < deadline, p.log_tail(30)
        time.sleep(0.05)
    c = H.connect(p.path("a.db"), journal_mode="wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        with c:
            c.execute("INSERT INTO t(v) VALUES (?)", ("row %d" % i,))
        assert rs[0].pos("a.db")[0] >= p.pos("a.db")[0]
    c.close()
    r = C.status(p)["replication"]
    assert r["state"] == "in-sync" and r["commits_waited"] >= 21 and r["timeouts"] == 0, r
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    ctx.load_cert_chain(pki("replica1.crt"), pki("replica1.key"))
    req = urllib.request.Request("https://127.0.0.1:%d/ack" % p.port, data=b"LTXP",
                                 headers={"Ltxfs-Node-Id": "0123", "Ltxfs-Epoch": "1"},
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10, context=ctx)
    assert e.value.code == 401


def wait_for_log(node, text, timeout=15):
    deadline = time.monotonic() + timeout
    while text not in node.log_text():
        assert time.monotonic() < deadline, "%r not in the log of %s:\n%s" % (
            text, node.name, node.log_tail())
        time.sleep(0.05)


@pytest.mark.parametrize("who", ["foreign-certificate", "no-token"])
def test_a_node_without_the_clusters_credentials_gets_nothing(node_factory, pki, who):
    """A replica with a certificate of another CA (it trusts ours), or with
    a good certificate but no token: the primary refuses its stream, it
    never receives the database, and the primary says why."""
    p = secure(C.make_primary(node_factory), pki)
    r = C.make_replica(node_factory, p, "replica1", url="https://127.0.0.1:%d" % p.port)
    if who == "foreign-certificate":
        secure(r, pki, cert="intruder")
    else:
        secure(r, pki, token=None)
    p.start()
    r.start()
    write_rows(p, "wal", 5)
    wait_for_log(p, "POST /stream from")
    time.sleep(1.0)               # a few reconnection attempts
    assert C.pos_or_none(r, "a.db") is None
    log = p.log_text()
    if who == "foreign-certificate":
        assert "client certificate" in log, p.log_tail()
    else:
        assert "refused (401)" in log, p.log_tail()


@pytest.mark.deadline(240)
def test_failover_and_handoff_over_https(node_factory, coord, pki):  # noqa: F811
    """Consul or etcd, three candidates on HTTPS with the token: SIGKILL of
    the primary, a new one catches up from the others and takes writes;
    then `ltxfs promote` on a replica takes the role by a hand-off.  Every
    acknowledged write is on every live node."""
    key, nodes = F.make_nodes(node_factory, coord, n=3)
    for n in nodes:
        secure(n, pki)
        n.start()
    p = F.wait_primary(nodes)
    write_rows(p, "wal", 20)
    others = [n for n in nodes if n is not p]
    C.wait_converged(p, others, ["a.db"])
    p.kill()
    q, _ = F.wait_writable(others, "after failover", timeout=F.SIGKILL_BOUND[coord.kind] + 10)
    rest = [n for n in others if n is not q]
    C.wait_converged(q, rest, ["a.db"])
    target = rest[0]
    cp = target.ltxfs("promote", "-config", target.config_path, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert F.wait_primary(others) is target
    assert F.try_write(target, "after hand-off") == 1
    C.wait_converged(target, [q], ["a.db"])
    c = sqlite3.connect(q.path("a.db"), timeout=10)
    try:
        got = [r[0] for r in c.execute("SELECT v FROM t ORDER BY id")]
    finally:
        c.close()
    assert got == ["row %d" % i for i in range(20)] + ["after failover", "after hand-off"]
