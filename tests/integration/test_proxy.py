"""test_proxy.py - the HTTP proxy in front of an application (proxy/proxy.h):
a primary and two replicas on 127.0.0.1, each with the proxy and the test
application (proxy_app.py: posts in SQLite on the mount).

What it promises: a POST to any node's proxy is made on the primary and
its answer carries the position it left (the __txid cookie, Ltxfs-Txid);
the next GET with that cookie on the same node shows the post; passthrough
paths are served locally as they are; bodies (chunked, large) and upgrades
pass through; malformed requests are refused.
"""

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from test_failover import coord  # noqa: F401 (the lease server fixture)

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_app.py")
DB = "posts.db"
# `make check-proxy` runs the acceptance's sizes: 1,000 rounds, 200 MB
ROUNDS = int(os.environ.get("LTXFS_PROXY_ROUNDS", "100"))
UPLOAD_MB = int(os.environ.get("LTXFS_PROXY_UPLOAD_MB", "20"))


def proxy_config(port, app_port, max_lag="2s", on_lag="forward"):
    return ("proxy:\n  addr: \"127.0.0.1:%d\"\n  target: \"127.0.0.1:%d\"\n  db: %s\n"
            "  passthrough: [\"/static/*\"]\n  max-lag: %s\n  on-lag: %s\n"
            % (port, app_port, DB, max_lag, on_lag))


def wait_listening(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "nothing listens on %d" % port
            time.sleep(0.05)


class Site:
    """A node, its application and its proxy port."""

    def __init__(self, node, spawn, **kw):
        self.node = node
        self.app_port = H.free_port()
        self.port = H.free_port()
        node.extra_config += proxy_config(self.port, self.app_port, **kw)
        self.spawn = spawn

    def start_app(self):
        self.spawn([sys.executable, APP, str(self.app_port), self.node.path(DB), self.node.name])
        wait_listening(self.app_port)

    def request(self, method, path, body=None, headers=None, timeout=30, chunked=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()


@pytest.fixture
def sites(node_factory, spawn):
    p, rs = C.make_cluster(node_factory, replicas=2, start=False)
    ss = [Site(n, spawn) for n in [p] + rs]
    for s in ss:
        s.node.start()
    c = H.sqlite_cli(p.path(DB), "PRAGMA journal_mode=wal; "
                     "CREATE TABLE posts(id INTEGER PRIMARY KEY, text TEXT);")
    assert c.returncode == 0
    C.wait_converged(p, rs, [DB])
    for s in ss:
        s.start_app()
        wait_listening(s.port)
    return ss


def cookie_of(headers):
    v = headers.get("Set-Cookie", "")
    assert v.startswith("__txid="), headers
    return v.split(";")[0]


def test_a_write_on_any_node_is_read_there_next(sites):
    """200 rounds: a POST to a replica's proxy is made on the primary, and
    the GET that follows on that replica, with the cookie, shows it."""
    primary, r1, r2 = sites
    for i in range(200):
        site = (r1, r2, primary)[i % 3]
        status, h, body = site.request("POST", "/posts", body=("post %d" % i).encode())
        assert status == 201, (status, body)
        assert h["X-Served-By"] == primary.node.name
        cookie = cookie_of(h)
        assert h["Ltxfs-Txid"] == cookie.split("=", 1)[1]
        post_id = json.loads(body)["id"]
        status, h, body = site.request("GET", "/posts", headers={"Cookie": cookie})
        assert status == 200
        assert h["X-Served-By"] == site.node.name       # read locally
        assert [post_id, "post %d" % i] in json.loads(body), i


def test_a_read_whose_write_does_not_arrive_goes_to_the_primary(node_factory, spawn):
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    sp, sr = Site(p, spawn), Site(r, spawn, max_lag="300ms")
    for s in (sp, sr):
        s.node.start()
    H.sqlite_cli(p.path(DB), "CREATE TABLE posts(id INTEGER PRIMARY KEY, text TEXT);")
    C.wait_converged(p, [r], [DB])
    for s in (sp, sr):
        s.start_app()
    far = "%016x" % (p.pos(DB)[0] + 1000)
    t0 = time.monotonic()
    status, h, _ = sr.request("GET", "/posts", headers={"Ltxfs-Txid": far})
    assert status == 200 and h["X-Served-By"] == p.name
    assert time.monotonic() - t0 >= 0.3
    # without a position: served here at once
    status, h, _ = sr.request("GET", "/posts")
    assert status == 200 and h["X-Served-By"] == r.name


def test_passthrough_bodies_and_upgrades(sites):
    primary, r1, _ = sites
    # a static path, even with a write method, stays local and carries nothing
    status, h, body = r1.request("GET", "/static/logo.png")
    assert status == 200 and h["X-Served-By"] == r1.node.name and body == b"static /static/logo.png"
    assert "Set-Cookie" not in h
    # an upload (chunked and with a length) through a replica to the primary
    blob = os.urandom(UPLOAD_MB << 20)
    want = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    status, h, body = r1.request("POST", "/upload", body=blob)
    assert status == 200 and json.loads(body) == want and h["X-Served-By"] == primary.node.name
    status, h, body = r1.request("POST", "/upload", body=iter([blob[:len(blob) // 3],
                                                               blob[len(blob) // 3:]]),
                                 headers={"Transfer-Encoding": "chunked"}, chunked=True)
    assert status == 200 and json.loads(body) == want
    # curl sends its body only after 100 Continue (it would wait 120 s: longer than
    # its --max-time)
    path = os.path.join(r1.node.workdir, "blob")
    with open(path, "wb") as f:
        f.write(blob)
    out = subprocess.run(["curl", "-sS", "--max-time", "90", "--expect100-timeout", "120",
                          "-H", "Expect: 100-continue",
                          "--data-binary", "@" + path,
                          "http://127.0.0.1:%d/upload" % r1.port],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout) == want, out
    # an upgrade becomes a byte pipe
    s = socket.create_connection(("127.0.0.1", r1.port), timeout=10)
    try:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        rest = head.split(b"\r\n\r\n", 1)[1]
        for msg in (b"hello", b"x" * 100000):
            s.sendall(msg)
            got = rest
            while len(got) < len(msg):
                got += s.recv(65536)
            assert got == msg
            rest = b""
    finally:
        s.close()
    # server-sent events until the application closes
    status, h, body = r1.request("GET", "/events")
    assert status == 200 and body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_malformed_requests_are_refused(sites):
    _, r1, _ = sites
    for raw in (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"NOT A REQUEST\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", r1.port), timeout=10)
        try:
            s.sendall(raw)
            assert s.recv(4096).startswith(b"HTTP/1.1 400")
        finally:
            s.close()
    # the proxy goes on serving
    assert r1.request("GET", "/posts")[0] == 200


@pytest.mark.deadline(180)
def test_a_primary_killed_during_posts_loses_no_answered_post(node_factory, spawn, coord):
    """Three candidates on Consul or etcd, replication.mode sync, every node
    behind its proxy.  A client keeps POSTing to one replica's proxy while
    the primary is SIGKILLed: every POST that got a 2xx is on the new
    primary, and writes are answered again after the failover."""
    from test_failover import make_nodes, wait_primary
    key, nodes = make_nodes(node_factory, coord)
    sync = ("replication:\n  mode: sync\n  min-acks: 1\n  sync-timeout: 2s\n"
            "  on-timeout: fail\n")
    sites = []
    for n in nodes:
        n.extra_config += sync
        sites.append(Site(n, spawn))
        n.start()
    p = wait_primary(nodes)
    H.sqlite_cli(p.path(DB), "PRAGMA journal_mode=wal; "
                 "CREATE TABLE posts(id INTEGER PRIMARY KEY, text TEXT);")
    others = [n for n in nodes if n is not p]
    C.wait_converged(p, others, [DB])
    for s in sites:
        s.start_app()
        wait_listening(s.port)
    client = next(s for s in sites if s.node is others[0])
    answered, failed, answered_after_kill = [], 0, 0
    t_kill = time.monotonic() + 2
    killed = False
    while time.monotonic() < t_kill + 12:
        if not killed and time.monotonic() >= t_kill:
            p.kill()
            killed = True
        text = "post %d" % (len(answered) + failed)
        try:
            status, _, _ = client.request("POST", "/posts", body=text.encode(), timeout=20)
        except OSError:
            status = 0
        if 200 <= status < 300:
            answered.append(text)
            answered_after_kill += killed
        else:
            failed += 1
    q = wait_primary(nodes, exclude=(p,))
    assert killed and answered_after_kill > 0, "nothing was answered after the kill"
    rows = H.sqlite_cli(q.path(DB), "SELECT text FROM posts").stdout.split("\n")
    missing = sorted(set(answered) - set(rows))
    assert not missing, "answered posts lost: %s" % missing[:10]
    # writes go on after the failover, through the same replica's proxy
    status, h, _ = client.request("POST", "/posts", body=b"after", timeout=20)
    assert status == 201 and h["X-Served-By"] == q.name




def test_read_your_writes_across_regions(node_factory, spawn):
    """The replicas 80 ms away from the primary (a delay proxy on the
    replication stream and on the forwarded writes): a POST to a replica's
    proxy, then a GET there with its cookie shows the post, ROUNDS times in
    a row (`make check-proxy` runs 1,000)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
    from delay_proxy import DelayProxy
    p = C.make_primary(node_factory)
    sp = Site(p, spawn)
    with DelayProxy("127.0.0.1", p.port, 40) as api, DelayProxy("127.0.0.1", sp.port, 40) as px:
        p.extra_config += "  advertise-url: \"http://127.0.0.1:%d\"\n" % px.port
        rs = [C.make_replica(node_factory, p, "replica%d" % i, url="http://127.0.0.1:%d" % api.port)
              for i in (1, 2)]
        srs = [Site(r, spawn) for r in rs]
        p.start()
        for r in rs:
            r.start()
        H.sqlite_cli(p.path(DB), "PRAGMA journal_mode=wal; "
                     "CREATE TABLE posts(id INTEGER PRIMARY KEY, text TEXT);")
        C.wait_converged(p, rs, [DB])
        for s in [sp] + srs:
            s.start_app()
            wait_listening(s.port)
        t0 = time.monotonic()
        for i in range(ROUNDS):
            site = srs[i % 2]
            status, h, body = site.request("POST", "/posts", body=("far %d" % i).encode())
            assert status == 201, (status, body)
            post_id = json.loads(body)["id"]
            status, h, body = site.request("GET", "/posts", headers={"Cookie": cookie_of(h)})
            assert status == 200 and h["X-Served-By"] == site.node.name
            assert [post_id, "far %d" % i] in json.loads(body), i
        per_round = (time.monotonic() - t0) / ROUNDS
        assert per_round >= 0.08                          # the delay is real
