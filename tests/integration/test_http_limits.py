"""test_http_limits.py - the HTTP API's resource limits (issue 12, findings 3
and 4; docs/protocol.md "Limits").

* Descriptors: a node whose process holds more than 1024 descriptors
  (FD_SETSIZE) still listens, answers and streams to replicas (the server
  polls with poll(2), not select(2)); a node raises its soft RLIMIT_NOFILE
  to the hard limit at start; a failure to listen says the system's reason.
* Long-lived responses have budgets below the connection limit: idle
  /events clients beyond http.max-event-streams get 503, and /health and
  replication keep working; exports and imports share http.max-transfers.
* Bodies: a declared Content-Length above the endpoint's limit is answered
  413 before the body is read (nothing reaches data.dir/tmp); a chunked
  import that grows past http.max-import-size is cut and its partial file
  removed; an import that would not fit data.dir (with a reserve) is 507.
* A replica whose disk is full does not reconnect and restart its snapshot
  faster than its backoff allows.
* A malformed Ltxfs-Epoch is 400, not 409.

Disk-full cases mount a small tmpfs under the test's directory (the tests
run as root) and unmount it at teardown, after stopping the nodes using it.
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import cluster as C
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

FD_HOLDER = os.path.join(H.HERE, "fd_holder.py")
HELD_FDS = 1100                     # above FD_SETSIZE (1024)


# ---- helpers ------------------------------------------------------------------

def hold_fds(n):
    """A Node.wrap that starts the daemon holding N extra descriptors."""
    return lambda argv: [H.PYTHON, FD_HOLDER, str(n), "--"] + list(argv)


def open_fds(node):
    return len(os.listdir("/proc/%d/fd" % node.pid()))


def get(node, path, timeout=10):
    """(status, body) of GET PATH; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (node.host, node.port, path),
                                    timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def read_head(sock, timeout=10):
    """Read a response's status line and headers: (status, headers dict,
    bytes of the body already read).  Status 0: the server closed first."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            b = b""
        if not b:
            return 0, {}, buf
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, rest


def read_body(sock, hdrs, rest, timeout=10):
    n = int(hdrs.get("content-length", "0"))
    sock.settimeout(timeout)
    while len(rest) < n:
        b = sock.recv(65536)
        if not b:
            break
        rest += b
    return rest


def raw_request(node, head, body=b"", timeout=10):
    """Send HEAD (request line and headers, without the blank line) and
    BODY; (status, headers, body)."""
    with socket.create_connection((node.host, node.port), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n\r\n" + body)
        code, hdrs, rest = read_head(s, timeout)
        return code, hdrs, read_body(s, hdrs, rest, timeout) if code else rest


def open_stream(node, path):
    """A GET whose response is not read past its headers: (socket, status,
    headers, body start).  The caller closes the socket."""
    s = socket.create_connection((node.host, node.port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: itest\r\n\r\n" % path).encode())
    code, hdrs, rest = read_head(s)
    return s, code, hdrs, rest


def tmp_files(node):
    d = os.path.join(node.data, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def write_rows(path, n, size, journal="wal"):
    con = H.connect(path, journal_mode=journal)
    try:
        con.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
        con.execute("BEGIN")
        for _ in range(n):
            con.execute("INSERT INTO t(v) VALUES (randomblob(?))", (size,))
        con.execute("COMMIT")
    finally:
        con.close()


def small_sqlite_file(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def tmpfs(harness):
    """tmpfs(node, size) mounts a tmpfs of SIZE on NODE's data.dir (before
    it starts).  Teardown stops those nodes, then unmounts."""
    mounted = []

    def mount(node, size):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size,
                        "ltxfs-itest", node.data], check=True)
        mounted.append(node)
    yield mount
    problems = []
    for node in reversed(mounted):
        try:
            node.stop(check=False)
        finally:
            if subprocess.run(["umount", node.data]).returncode != 0:
                problems.append(node.data)
                subprocess.run(["umount", "-l", node.data])
    assert not problems, "tmpfs busy at teardown (detached lazily): %s" % problems


# ---- descriptors --------------------------------------------------------------

@pytest.mark.deadline(180)
def test_nodes_holding_many_descriptors_still_serve_and_stream(node_factory):
    """Every descriptor of these daemons is numbered above FD_SETSIZE: they
    must listen (a restart did not: "cannot listen"), answer /status and
    /health, and the replica must stream from the primary."""
    p = C.make_primary(node_factory)
    r = C.make_replica(node_factory, p, "replica")
    p.wrap = r.wrap = hold_fds(HELD_FDS)
    p.start()
    write_rows(p.path("a.db"), 20, 1000)
    r.start()
    for n in (p, r):
        assert open_fds(n) > HELD_FDS, "the wrapper did not pass its descriptors on"
        code, body = get(n, "/status")
        assert code == 200 and json.loads(body)["databases"] is not None
    C.wait_converged(p, [r], ["a.db"])
    write_rows(p.path("a.db"), 20, 1000)
    want = C.wait_converged(p, [r], ["a.db"])
    assert get(r, "/health")[0] == 200
    st = C.status(p)
    assert len(st["replicas"]) == 1, st
    p.restart()                         # a restart listens too
    write_rows(p.path("a.db"), 5, 1000)
    assert C.wait_converged(p, [r], ["a.db"])["a.db"][0] > want["a.db"][0]


@pytest.mark.deadline(240)
def test_four_hundred_databases_are_served_and_replicated(node_factory):
    """The field report: a few hundred databases (a few descriptors each).
    The node answers, a replica gets every database, a restart works."""
    p, (r,) = C.make_cluster(node_factory, replicas=1)
    names = ["db%03d.db" % i for i in range(400)]
    for name in names:
        con = sqlite3.connect(p.path(name))
        con.execute("CREATE TABLE t(x)")
        con.execute("INSERT INTO t VALUES (?)", (name,))
        con.commit()
        con.close()
    fds = open_fds(p)                   # 1,500 today (3-4 a database)
    code, body = get(p, "/status", timeout=30)
    assert code == 200, "primary holding %d descriptors: %s" % (fds, body[:300])
    assert len(json.loads(body)["databases"]) == 400
    C.wait_converged(p, [r], names, timeout=120)
    p.restart()
    assert get(p, "/health", timeout=30)[0] == 200
    con = sqlite3.connect(p.path(names[-1]))
    con.execute("INSERT INTO t VALUES ('after the restart')")
    con.commit()
    con.close()
    C.wait_converged(p, [r], names[-1:], timeout=60)


def test_descriptor_limit_is_raised_at_start(node):
    node.stop()
    node.wrap = lambda argv: ["prlimit", "--nofile=1024:4096", "--"] + list(argv)
    offset = node.log_size()
    node.start()
    with open("/proc/%d/limits" % node.pid()) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"], line
    assert "descriptor limit raised from 1024 to 4096" in node.log_since(offset)


def test_listen_failure_gives_the_systems_reason(node_factory):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        n = node_factory()
        n.port = busy.getsockname()[1]
        n.write_config()
        rc, text = n.start_expect_exit()
        assert rc not in (None, 0), text[-2000:]
        assert re.search(r"http\.addr .*%d: cannot listen: .*Address already in use"
                         % n.port, text), text[-2000:]
    finally:
        busy.close()


def test_listen_on_an_address_not_of_this_host_says_so(node_factory):
    n = node_factory()
    n.host = "192.0.2.1"                # TEST-NET-1: never local
    n.http_config = "  insecure: true\n"  # not loopback: past the token check
    n.write_config()
    rc, text = n.start_expect_exit()
    assert rc not in (None, 0), text[-2000:]
    assert re.search(r"http\.addr \[192\.0\.2\.1\]:%d: cannot listen: .*Cannot assign "
                     r"requested address" % n.port, text), text[-2000:]


# ---- connections -------------------------------------------------------------------

def request_from(node, source, path="/health"):
    """(status, body) of GET PATH from address SOURCE; status 0 when the
    server closed the connection without an answer."""
    with socket.create_connection((node.host, node.port), timeout=10,
                                  source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: itest\r\n\r\n" % path).encode())
        code, hdrs, rest = read_head(s)
        return code, read_body(s, hdrs, rest) if code else rest


def test_connection_limits_are_configurable_and_logged(node_factory):
    n = node_factory()
    n.http_config = ("  max-connections: 8\n  max-connections-per-ip: 4\n"
                     "  max-event-streams: 2\n  max-transfers: 1\n")
    n.start()
    held = []
    try:
        for _ in range(4):                  # idle: connected, nothing sent
            held.append(socket.create_connection((n.host, n.port), timeout=10))
        assert request_from(n, "127.0.0.1")[0] == 0        # this address is full
        assert request_from(n, "127.0.0.2")[0] == 200      # another one is not
        for _ in range(4):
            held.append(socket.create_connection((n.host, n.port), timeout=10,
                                                 source_address=("127.0.0.3", 0)))
        assert request_from(n, "127.0.0.2")[0] == 0        # the node is full
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 30
    while request_from(n, "127.0.0.1")[0] != 200:
        assert time.monotonic() < deadline, "connections were not given back"
        time.sleep(0.1)
    assert re.search(r"WARN .*libmicrohttpd: Server reached connection limit.* "
                     r"\(http\.max-connections is 8, http\.max-connections-per-ip 4\)",
                     n.log_text()), n.log_tail()


# ---- long-lived responses -------------------------------------------------------

@pytest.mark.deadline(180)
def test_idle_event_streams_cannot_starve_health_or_replication(node_factory):
    """More idle /events clients than the old connection limit (64): those
    beyond http.max-event-streams (32) are refused with 503, and /health and
    a new replica's stream still get through."""
    p = C.make_primary(node_factory)
    r = C.make_replica(node_factory, p, "replica")
    p.start()
    write_rows(p.path("a.db"), 10, 1000)
    socks, codes = [], []
    try:
        for _ in range(70):
            s, code, hdrs, rest = open_stream(p, "/events")
            socks.append(s)
            codes.append(code)
            if code == 503:
                assert "http.max-event-streams" in read_body(s, hdrs, rest).decode()
        assert codes.count(200) == 32 and codes.count(503) == 38, codes
        t0 = time.monotonic()
        assert get(p, "/health", timeout=5)[0] == 200
        assert time.monotonic() - t0 < 5
        r.start()
        C.wait_converged(p, [r], ["a.db"])
        write_rows(p.path("a.db"), 10, 1000)
        C.wait_converged(p, [r], ["a.db"])
        assert get(r, "/health", timeout=5)[0] == 200
    finally:
        for s in socks:
            s.close()
    # the slots come back once the clients are gone
    deadline = time.monotonic() + 30
    while True:
        s, code, _, _ = open_stream(p, "/events")
        s.close()
        if code == 200:
            break
        assert time.monotonic() < deadline, "an /events slot never came back"
        time.sleep(0.2)


@pytest.mark.deadline(120)
def test_exports_and_imports_share_the_transfer_budget(node_factory):
    p = node_factory()
    p.http_config = "  max-transfers: 1\n"
    p.start()
    write_rows(p.path("big.db"), 400, 20000)       # ~8 MB: more than socket buffers
    s, code, hdrs, _ = open_stream(p, "/export?name=big.db")  # never read: stays in progress
    try:
        assert code == 200, hdrs
        code, body = get(p, "/export?name=big.db")
        assert code == 503 and b"http.max-transfers is 1" in body, body
        code, _, body = raw_request(p, "POST /import?name=new.db HTTP/1.1\r\nHost: itest\r\n"
                                    "Content-Length: 4", b"abcd")
        assert code == 503 and b"http.max-transfers" in body, body
        assert tmp_files(p) == []
        assert get(p, "/health")[0] == 200
    finally:
        s.close()
    deadline = time.monotonic() + 30
    while get(p, "/export?name=big.db")[0] != 200:
        assert time.monotonic() < deadline, "the transfer slot never came back"
        time.sleep(0.2)


# ---- request bodies ----------------------------------------------------------------

def test_oversized_bodies_are_refused_before_they_are_read(node):
    """Declared sizes above the limits: 413 at once, with the body unsent
    (the request would wait for it otherwise), nothing in data.dir/tmp."""
    code, hdrs, body = raw_request(
        node, "POST /import?name=x.db HTTP/1.1\r\nHost: itest\r\n"
        "Content-Length: %d" % (17 << 30), b"SQLite format 3\0", timeout=5)
    assert code == 413, (code, hdrs, body)
    err = json.loads(body)["error"]
    assert "http.max-import-size" in err and str(16 << 30) in err, err
    assert tmp_files(node) == []
    for path in ("/promote", "/handoff", "/stream"):
        code, _, body = raw_request(node, "POST %s HTTP/1.1\r\nHost: itest\r\n"
                                    "Content-Length: %d" % (path, 1 << 30), b"x", timeout=5)
        assert code == 413, (path, code, body)
        assert "request body too large" in json.loads(body)["error"]
    assert get(node, "/health")[0] == 200


def test_chunked_import_past_the_limit_is_cut_and_removed(node_factory):
    n = node_factory()
    n.http_config = "  max-import-size: 1MiB\n"
    n.start()
    chunk = b"x" * 65536
    sent, cut = 0, False
    s = socket.create_connection((n.host, n.port), timeout=10)
    try:
        s.sendall(b"POST /import?name=big.db HTTP/1.1\r\nHost: itest\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        while sent < (64 << 20):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        cut = True
    finally:
        s.close()
    assert cut, "the upload was not cut: %d bytes sent" % sent
    assert sent < (16 << 20), "the upload was not cut: %d bytes sent" % sent
    deadline = time.monotonic() + 10
    while tmp_files(n):
        assert time.monotonic() < deadline, tmp_files(n)
        time.sleep(0.05)
    assert "the body passed 1048576 bytes (http.max-import-size)" in n.log_text()
    # a small import still works
    data = small_sqlite_file(os.path.join(n.workdir, "small.db"))
    code, _, body = raw_request(n, "POST /import?name=small.db HTTP/1.1\r\nHost: itest\r\n"
                                "Content-Length: %d" % len(data), data)
    assert code == 200, body


def test_import_that_would_fill_the_disk_is_507(node_factory, tmpfs):
    n = node_factory()
    tmpfs(n, "64m")
    n.start()
    code, hdrs, body = raw_request(
        n, "POST /import?name=x.db HTTP/1.1\r\nHost: itest\r\n"
        "Content-Length: %d" % (30 << 20), b"SQLite", timeout=5)
    assert code == 507, (code, hdrs, body)
    assert "not enough free space in data.dir" in json.loads(body)["error"]
    assert tmp_files(n) == []
    # without a declared size: looked at every 16 MiB, dropped, 507 at the end
    chunk = b"x" * (1 << 20)
    with socket.create_connection((n.host, n.port), timeout=10) as s:
        s.sendall(b"POST /import?name=y.db HTTP/1.1\r\nHost: itest\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(40):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        code, hdrs, rest = read_head(s)
        assert code == 507, (code, hdrs, rest)
    assert tmp_files(n) == []
    assert shutil.disk_usage(n.data).used < (8 << 20)
    data = small_sqlite_file(os.path.join(n.workdir, "small.db"))
    code, _, body = raw_request(n, "POST /import?name=small.db HTTP/1.1\r\nHost: itest\r\n"
                                "Content-Length: %d" % len(data), data)
    assert code == 200, body


# ---- replica backoff -------------------------------------------------------------

@pytest.mark.deadline(120)
def test_replica_with_a_full_disk_backs_off(node_factory, tmpfs):
    """The replica's data.dir cannot hold the primary's database: every
    snapshot fails after the connection succeeded.  Reconnects must follow
    the backoff (100 ms doubling to 5 s: about 7 in 8 s), not restart the
    snapshot ~6 times a second."""
    p = C.make_primary(node_factory)
    r = C.make_replica(node_factory, p, "replica")
    p.start()
    write_rows(p.path("big.db"), 400, 20000)       # ~8 MB
    tmpfs(r, "4m")
    r.start()
    deadline = time.monotonic() + 30
    while r.log_text().count("streaming from the primary") < 2:
        assert time.monotonic() < deadline, r.log_tail()
        time.sleep(0.1)
    before = r.log_text().count("streaming from the primary")
    time.sleep(8)
    attempts = r.log_text().count("streaming from the primary") - before
    assert attempts <= 10, ("%d connections in 8 s: the backoff was reset by "
                            "connections that failed\n%s" % (attempts, r.log_tail(30)))
    assert r.alive()


# ---- headers --------------------------------------------------------------------

@pytest.mark.parametrize("epoch", ["-1abc", "1abc", "18446744073709551616", "+1", "0x10"])
def test_malformed_epoch_is_400(node, epoch):
    code, _, body = raw_request(node, "POST /stream HTTP/1.1\r\nHost: itest\r\n"
                                "Ltxfs-Node-Id: 00000000000000aa\r\nLtxfs-Epoch: %s\r\n"
                                "Content-Length: 0" % epoch)
    assert code == 400, (code, body)
    assert "malformed Ltxfs-Epoch" in json.loads(body)["error"]
