"""test_security.py - the HTTP API's tokens, TLS and safe hand-off (issue 13).

One test per attack of the issue, on a node with http.token and
http.read-token: without a token each request is answered 401 (with
WWW-Authenticate: Bearer), with the read token 403, and nothing changes;
with the token it goes through.  A node listening beyond the loopback
without a token refuses to start.  HTTPS with a throwaway CA made by the
openssl CLI: the right CA is served, another CA's client is refused,
client-auth refuses a client without or with a foreign certificate, and a
certificate rotated by SIGHUP is used by the next connection.  A hand-off
to a made-up node ID is refused at once and costs the application no write
error (before: 5 s of `disk I/O error`).
"""

import hashlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from tls_pki import make_pki

TOKEN = "t0ken-" + "a" * 26
READ_TOKEN = "r3ad-" + "b" * 27


def call(node, method, path, token=None, body=None, headers=None, tls=None, timeout=15):
    """(status, headers, body) of one request to `node`."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", node.port, timeout=timeout, context=tls)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def secured(node_factory, name="node"):
    n = node_factory(name)
    n.http_config = "  token: %s\n  read-token: %s\n" % (TOKEN, READ_TOKEN)
    return n


def sqlite_file(path, value):
    if os.path.exists(path):
        os.unlink(path)
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE t(v)")
    c.execute("INSERT INTO t VALUES (?)", (value,))
    c.commit()
    c.close()
    with open(path, "rb") as f:
        return f.read()


def rows(node, name="app.db"):
    c = sqlite3.connect(node.path(name), timeout=10)
    try:
        return [r[0] for r in c.execute("SELECT v FROM t")]
    finally:
        c.close()


def assert_refused(node, method, path, **kw):
    """401 without a token (and with a wrong one), 403 with the read token."""
    for token, want in ((None, 401), ("wrong-" + "x" * 20, 401), (READ_TOKEN, 403)):
        status, headers, body = call(node, method, path, token=token, **kw)
        assert status == want, (method, path, token, status, body)
        assert "error" in json.loads(body)
        if want == 401:
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert TOKEN.encode() not in body and READ_TOKEN.encode() not in body


@pytest.fixture
def app_node(node_factory):
    n = secured(node_factory)
    n.start()
    H.sqlite_cli(n.path("app.db"), "CREATE TABLE t(v); INSERT INTO t VALUES ('original');")
    return n


def test_import_needs_the_token(app_node, tmp_path):
    n = app_node
    evil = sqlite_file(str(tmp_path / "evil.db"), "replaced")
    assert_refused(n, "POST", "/import?name=app.db", body=evil)
    assert rows(n) == ["original"]
    # refused on the headers: a huge declared upload is answered before its body
    s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
    try:
        s.sendall(b"POST /import?name=app.db HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 10000000000\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 401")
    finally:
        s.close()
    tmp = os.path.join(n.data, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []     # nothing stored
    status, _, body = call(n, "POST", "/import?name=app.db", token=TOKEN, body=evil)
    assert status == 200, body
    assert rows(n) == ["replaced"]


def test_export_needs_the_token(app_node):
    n = app_node
    assert_refused(n, "GET", "/export?name=app.db")
    status, _, body = call(n, "GET", "/export?name=app.db", token=TOKEN)
    assert status == 200 and body.startswith(b"SQLite format 3\0")


def test_stream_needs_the_token(app_node):
    n = app_node
    hdr = {"Ltxfs-Node-Id": "00000000deadbeef"}
    assert_refused(n, "POST", "/stream", body=b"", headers=hdr)
    # with the token the request reaches the stream (which wants a position body)
    status, _, body = call(n, "POST", "/stream", token=TOKEN, body=b"", headers=hdr)
    assert status == 400 and b"position" in body


def test_promote_and_handoff_need_the_token(app_node):
    n = app_node
    assert_refused(n, "POST", "/promote", body=b"")
    assert_refused(n, "POST", "/handoff", body=b"", headers={"Ltxfs-Node-Id": "0000000000000001"})
    # with the token they reach the node (the static primary: already one)
    status, _, body = call(n, "POST", "/promote", token=TOKEN, body=b"")
    assert status == 200 and json.loads(body) == {"role": "primary"}
    status, _, body = call(n, "POST", "/handoff", token=TOKEN, body=b"",
                           headers={"Ltxfs-Node-Id": "0000000000000001"})
    assert status == 503 and b"not the primary of a dynamic lease" in body


def test_read_token_reads_and_health_is_open(app_node):
    n = app_node
    for path in ("/status", "/metrics", "/events", "/wait?name=app.db&pos=1"):
        assert call(n, "GET", path)[0] == 401
        if path != "/events":
            assert call(n, "GET", path, token=READ_TOKEN)[0] == 200
            assert call(n, "GET", path, token=TOKEN)[0] == 200
    # /events streams: its headers are enough
    conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
    conn.request("GET", "/events", headers={"Authorization": "Bearer " + READ_TOKEN})
    assert conn.getresponse().status == 200
    conn.close()
    assert call(n, "GET", "/health")[0] == 200
    assert call(n, "GET", "/nowhere")[0] == 401          # unknown paths too
    assert call(n, "GET", "/nowhere", token=TOKEN)[0] == 404
    log = n.log_text()
    assert TOKEN not in log and READ_TOKEN not in log
    assert "refused (401)" in log


def test_non_loopback_address_needs_a_token(node_factory):
    n = node_factory()
    n.host = "0.0.0.0"
    n.write_config()
    rc, text = n.start_expect_exit()
    assert rc not in (None, 0), text[-2000:]
    assert "is reachable from other hosts and no token is set" in text
    assert "http.token-file" in text and "http.insecure: true" in text
    assert not H.mounted_at(n.mnt)
    n.http_config = "  insecure: true\n"
    n.start()
    assert call(n, "GET", "/status")[0] == 200
    n.stop()
    n.http_config = "  token-file: %s\n" % os.path.join(n.workdir, "token")
    with open(os.path.join(n.workdir, "token"), "w") as f:
        f.write(TOKEN + "\n")
    n.start()
    assert call(n, "GET", "/status")[0] == 401
    assert call(n, "GET", "/status", token=TOKEN)[0] == 200


# ---- TLS -----------------------------------------------------------------------

@pytest.fixture
def pki(tmp_path):
    return make_pki(str(tmp_path / "pki"), [
        ("ca", "server", "subjectAltName=IP:127.0.0.1"),
        ("ca", "server2", "subjectAltName=IP:127.0.0.1"),
        ("ca", "client", "extendedKeyUsage=clientAuth"),
        ("other-ca", "intruder", "extendedKeyUsage=clientAuth")])


def client_tls(pki, ca="ca", cert=None):
    ctx = ssl.create_default_context(cafile=pki(ca + ".crt"))
    if cert is not None:
        ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    return ctx


def tls_node(node_factory, pki, client_auth=False):
    n = secured(node_factory, "tls")
    n.http_config += ("  tls:\n    cert: %s\n    key: %s\n    ca: %s\n    client-auth: %s\n"
                      % (pki("live.crt"), pki("live.key"), pki("ca.crt"),
                         "true" if client_auth else "false"))
    return n


def install(pki, name):
    for ext in (".crt", ".key"):
        with open(pki(name + ext), "rb") as f:
            data = f.read()
        with open(pki("live" + ext + ".tmp"), "wb") as f:
            f.write(data)
        os.replace(pki("live" + ext + ".tmp"), pki("live" + ext))


def served_cert(node, pki):
    ctx = client_tls(pki)
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def der_hash(pki, name):
    out = subprocess.run(["openssl", "x509", "-in", pki(name + ".crt"), "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE).stdout
    return hashlib.sha256(out).hexdigest()


def test_https_serves_with_the_right_ca_only(node_factory, pki):
    install(pki, "server")
    n = tls_node(node_factory, pki)
    n.start()
    status, _, body = call(n, "GET", "/status", token=TOKEN, tls=client_tls(pki))
    assert status == 200 and json.loads(body)["role"] == "primary"
    assert call(n, "GET", "/status", tls=client_tls(pki))[0] == 401
    with pytest.raises(ssl.SSLCertVerificationError):
        call(n, "GET", "/status", token=TOKEN, tls=client_tls(pki, ca="other-ca"))
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        call(n, "GET", "/health")                    # plain HTTP is not served
    assert "HTTPS" in n.log_text()


def test_client_auth_refuses_missing_and_foreign_certificates(node_factory, pki):
    install(pki, "server")
    n = tls_node(node_factory, pki, client_auth=True)
    n.start()
    status, _, body = call(n, "GET", "/status", token=TOKEN, tls=client_tls(pki))
    assert status == 403, body
    assert "no client certificate" in n.log_text()
    time.sleep(1.1)                 # refusals are logged at most once a second
    status, _, body = call(n, "GET", "/status", token=TOKEN,
                           tls=client_tls(pki, cert="intruder"))
    assert status == 403, body
    assert "unknown CA" in n.log_text()
    status, _, body = call(n, "GET", "/status", token=TOKEN, tls=client_tls(pki, cert="client"))
    assert status == 200, body
    # the certificate does not replace the token
    assert call(n, "GET", "/status", tls=client_tls(pki, cert="client"))[0] == 401


def test_sighup_rotates_the_certificate(node_factory, pki):
    install(pki, "server")
    n = tls_node(node_factory, pki)
    n.start()
    assert served_cert(n, pki) == der_hash(pki, "server")
    install(pki, "server2")
    os.kill(n.pid(), signal.SIGHUP)
    wait_until(lambda: "TLS certificate, key and CA reloaded" in n.log_text(), 10)
    assert served_cert(n, pki) == der_hash(pki, "server2")
    assert n.running()                                # SIGHUP did not stop it
    # a broken certificate at SIGHUP keeps the one in use
    with open(pki("live.crt"), "w") as f:
        f.write("not a certificate\n")
    os.kill(n.pid(), signal.SIGHUP)
    wait_until(lambda: "were not reloaded" in n.log_text(), 10)
    assert served_cert(n, pki) == der_hash(pki, "server2")
    assert call(n, "GET", "/status", token=TOKEN, tls=client_tls(pki))[0] == 200


def test_bad_certificate_at_start_is_a_clear_error(node_factory, pki):
    install(pki, "server")
    n = tls_node(node_factory, pki)
    # the key of another certificate
    with open(pki("server2.key"), "rb") as f, open(pki("live.key"), "wb") as g:
        g.write(f.read())
    n.write_config()
    rc, text = n.start_expect_exit()
    assert rc not in (None, 0), text[-2000:]
    assert "is not the key of http.tls.cert" in text


# ---- hand-off --------------------------------------------------------------------

def test_handoff_to_a_made_up_node_is_refused_at_once_without_write_errors(
        node_factory, tmp_path):
    """A cluster on Consul (no token: the point is the hand-off logic).
    POST /handoff naming a node that is not a replica of the primary is
    answered 409 at once; the application writing meanwhile sees no error
    (before: every write failed with disk I/O error for 5 s)."""
    from consul_server import ConsulServer
    import test_failover as F
    os.makedirs(str(tmp_path / "consul"))
    with ConsulServer(str(tmp_path / "consul")) as agent:
        agent.kind = "consul"
        key, nodes = F.make_nodes(node_factory, agent, n=2)
        for nd in nodes:
            nd.start()
        p = F.wait_primary(nodes)
        others = [nd for nd in nodes if nd is not p]
        c = sqlite3.connect(p.path("a.db"), timeout=10, isolation_level=None)
        c.execute("PRAGMA journal_mode=wal")
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        c.close()
        C.wait_converged(p, others, ["a.db"])
        errors, writes, stop = [], [0], threading.Event()

        def writer():
            con = sqlite3.connect(p.path("a.db"), timeout=0.2, isolation_level=None)
            try:
                while not stop.is_set():
                    try:
                        con.execute("INSERT INTO t(v) VALUES ('w')")
                        writes[0] += 1
                    except sqlite3.Error as e:
                        errors.append(str(e))
                    time.sleep(0.002)
            finally:
                con.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(0.3)
            t0 = time.monotonic()
            status, _, body = call(p, "POST", "/handoff", body=b"",
                                   headers={"Ltxfs-Node-Id": "00000000deadbeef"})
            took = time.monotonic() - t0
            time.sleep(0.5)
        finally:
            stop.set()
            t.join()
        assert errors == [], "%d write errors during a refused hand-off: %s" % (
            len(errors), errors[:3])
        assert status == 409, body
        assert b"not a replica streaming from this primary" in body
        assert "token" not in json.loads(body)
        assert writes[0] > 0
        assert took < 2.5, "the refusal took %.1f s" % took
        assert C.status(p)["role"] == "primary"
