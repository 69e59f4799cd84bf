"""test_fault_proxy.py - the fault-injecting proxy (fault_proxy.py) itself.

The proxy sits in front of small local servers (plain threaded sockets, no
ltxfs node): an echo server, a source that answers a request line with a
fixed payload, a sink that answers with the SHA-256 of what it received, and
a firehose that streams until the connection breaks.  Each mode is checked
for exactly what it promises: pass forwards 10 MiB intact, flip corrupts
only server->client bytes past `after` (one bit per flip), truncate delivers
exactly N bytes and then EOF, stall forwards nothing until resumed, cut
closes current connections only, refuse closes new ones only, buffering is
bounded, and stop() releases everything within a second.

Every test is bounded by socket timeouts, and fixtures stop every proxy,
server and client socket even when the test fails; a final check fails the
test if it left a thread running.
"""

import hashlib
import random
import socket
import threading
import time

import pytest

from fault_proxy import CHUNK, HIGH_WATER, FaultProxy

TIMEOUT = 5.0           # bound on any single blocking client socket operation
CLOSE_TIMEOUT = 2.0     # how long a close by the proxy may take to show
QUIET = 0.5             # how long "nothing arrives" is watched for
# Server sockets wait longer than any client-side check, so that a server
# handler giving up can never pass for something the proxy did; close()
# wakes blocked handlers at teardown anyway.
SERVER_TIMEOUT = 30.0
MIB = 1024 * 1024


def payload(size, seed=0):
    """size deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------
# Local servers


class StreamServer:
    """A TCP server on 127.0.0.1 running handler(server, sock) for each
    connection in its own thread.  close() shuts every connection down and
    joins every thread."""

    def __init__(self, handler):
        self.handler = handler
        self.lock = threading.Lock()
        self.accepted = 0       # connections accepted
        self.active = 0         # handlers still running
        self.received = 0       # bytes the handlers reported reading
        self.socks = []
        self.threads = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)     # lets the accept loop see stopping
        self.port = self.listener.getsockname()[1]
        self.acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                         name="test-server:%d" % self.port)
        self.acceptor.start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(SERVER_TIMEOUT)
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                 name="test-server:%d-conn" % self.port)
            with self.lock:
                self.accepted += 1
                self.active += 1
                self.socks.append(sock)
                self.threads.append(t)
            t.start()

    def _serve(self, sock):
        try:
            self.handler(self, sock)
        except OSError:
            pass    # resets and broken pipes are what the proxy is for
        finally:
            sock.close()
            with self.lock:
                self.active -= 1

    def count(self, n):
        with self.lock:
            self.received += n

    def close(self):
        self.stopping.set()
        self.acceptor.join(TIMEOUT)
        self.listener.close()
        with self.lock:
            socks, threads = list(self.socks), list(self.threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)    # wakes a blocked recv/send
            except OSError:
                pass
        for t in threads:
            t.join(TIMEOUT)


def echo(server, sock):
    """Send back everything received; half-close on EOF."""
    while True:
        data = sock.recv(CHUNK)
        if not data:
            break
        server.count(len(data))
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def source(data, pace=None):
    """After a request line, send data and close (like an HTTP response with
    Connection: close).  pace: send 8 KiB pieces this many seconds apart, so
    a reading client keeps the socket buffers on the way nearly empty."""
    def handler(server, sock):
        req = b""
        while not req.endswith(b"\n"):
            chunk = sock.recv(1024)
            if not chunk:
                return
            req += chunk
        server.count(len(req))
        if pace is None:
            sock.sendall(data)
        else:
            for i in range(0, len(data), 8192):
                sock.sendall(data[i:i + 8192])
                time.sleep(pace)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(CHUNK):     # until the client closes
            pass
    return handler


def sink(server, sock):
    """Read until EOF, then answer with the hex SHA-256 of what arrived."""
    h = hashlib.sha256()
    while True:
        data = sock.recv(CHUNK)
        if not data:
            break
        server.count(len(data))
        h.update(data)
    sock.sendall(h.hexdigest().encode())


def firehose(server, sock):
    """Stream bytes until the connection breaks (or the server closes)."""
    block = payload(CHUNK)
    while not server.stopping.is_set():
        sock.sendall(block)
        server.count(len(block))    # here: bytes sent


# ----------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail the test if it leaves a thread running (set up first, so it is
    torn down after every other fixture of the test)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not left, "threads left running: %s" % [t.name for t in left]


@pytest.fixture
def make_server():
    """make_server(handler) -> a running StreamServer, closed at teardown."""
    servers = []

    def make(handler):
        s = StreamServer(handler)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


@pytest.fixture
def make_proxy():
    """make_proxy(server) -> a started FaultProxy in front of it, stopped at
    teardown."""
    proxies = []

    def make(server):
        p = FaultProxy("127.0.0.1", server.port)
        proxies.append(p)
        return p.start()
    yield make
    for p in proxies:
        p.stop()


@pytest.fixture
def connect(run_thread):
    """connect(port) -> a client socket (TIMEOUT on every operation), shut
    down and closed at teardown.  (It uses run_thread so that its sockets are
    shut down, waking helper threads blocked on them, before those threads
    are joined.)"""
    socks = []

    def do_connect(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        socks.append(s)
        return s
    yield do_connect
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass    # not connected any more
        s.close()


@pytest.fixture
def run_thread():
    """run_thread(fn, *args) -> a started thread, joined at teardown."""
    threads = []

    def run(fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        threads.append(t)
        t.start()
        return t
    yield run
    for t in threads:
        t.join(TIMEOUT)


# ----------------------------------------------------------------------
# Client helpers


def recv_all(sock):
    """Everything up to EOF (a timeout or reset is an error)."""
    parts = []
    while True:
        data = sock.recv(CHUNK)
        if not data:
            return b"".join(parts)
        parts.append(data)


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += data
    return bytes(buf)


def ping(sock, msg=b"ping"):
    """One echo round trip; returns what came back."""
    sock.sendall(msg)
    return recv_exactly(sock, len(msg))


def assert_silent(sock):
    """Nothing arrives on sock for QUIET seconds (and it is not closed)."""
    sock.settimeout(QUIET)
    try:
        with pytest.raises(socket.timeout):
            data = sock.recv(CHUNK)
            pytest.fail("received %r while nothing should arrive" % data[:32])
    finally:
        sock.settimeout(TIMEOUT)


def assert_closed(sock):
    """The peer closes sock within CLOSE_TIMEOUT: EOF or reset (data still
    in flight before it is read and discarded)."""
    deadline = time.monotonic() + CLOSE_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("connection not closed within %.1f s" % CLOSE_TIMEOUT)
            sock.settimeout(left)
            if not sock.recv(CHUNK):
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        pytest.fail("connection not closed within %.1f s" % CLOSE_TIMEOUT)
    finally:
        sock.settimeout(TIMEOUT)


def bit_diff(a, b):
    """Number of differing bits between equal-length byte strings."""
    assert len(a) == len(b)
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return x.bit_count()


def wait_for(cond, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ----------------------------------------------------------------------
# pass


def test_pass_forwards_10mib_intact(make_server, make_proxy, connect, run_thread):
    """10 MiB through an echo server come back byte for byte; the sender runs
    in its own thread so neither direction waits for the other."""
    proxy = make_proxy(make_server(echo))
    data = payload(10 * MIB)
    c = connect(proxy.port)

    def send():
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
    run_thread(send)
    got = recv_all(c)
    assert len(got) == len(data)
    assert sha(got) == sha(data)
    assert proxy.connections == 1 and proxy.flipped == 0
    assert proxy.mode == "pass"


def test_pass_many_connections_at_once(make_server, make_proxy, connect, run_thread):
    """Several concurrent connections are multiplexed without mixing bytes."""
    proxy = make_proxy(make_server(echo))
    results = {}

    def roundtrip(i):
        data = payload(512 * 1024, seed=i)
        c = connect(proxy.port)
        sender = threading.Thread(target=lambda: (c.sendall(data),
                                                  c.shutdown(socket.SHUT_WR)))
        sender.start()
        try:
            results[i] = recv_all(c) == data
        finally:
            sender.join(TIMEOUT)
    for i in range(6):
        run_thread(roundtrip, i)
    assert wait_for(lambda: len(results) == 6), results
    assert all(results.values()), results
    assert proxy.connections == 6


# ----------------------------------------------------------------------
# flip


AFTER = 4096 + 17   # not a multiple of any chunk size


def test_flip_after_n(make_server, make_proxy, connect):
    """rate=1: the first AFTER bytes arrive intact, later ones do not, and
    the corruption is exactly one bit per counted flip."""
    data = payload(MIB)
    proxy = make_proxy(make_server(source(data)))
    proxy.set_mode("flip", rate=1.0, after=AFTER, seed=7)
    c = connect(proxy.port)
    c.sendall(b"GET\n")
    got = recv_all(c)
    assert len(got) == len(data)
    assert got[:AFTER] == data[:AFTER]
    assert sha(got[AFTER:]) != sha(data[AFTER:])
    assert proxy.flipped > 0
    # Each flip hits a different chunk, hence a different bit.
    assert bit_diff(got, data) == proxy.flipped


def test_flip_leaves_client_to_server_intact(make_server, make_proxy, connect, run_thread):
    """Requests are never corrupted: the sink's digest of 2 MiB sent in flip
    mode matches, and its 64-byte answer (within `after`) arrives intact."""
    proxy = make_proxy(make_server(sink))
    proxy.set_mode("flip", rate=1.0, after=64, seed=1)
    data = payload(2 * MIB, seed=3)
    c = connect(proxy.port)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c).decode() == sha(data)
    assert proxy.flipped == 0


def test_flip_rate_zero_changes_nothing(make_server, make_proxy, connect):
    data = payload(MIB)
    proxy = make_proxy(make_server(source(data)))
    proxy.set_mode("flip", rate=0.0, after=0, seed=7)
    c = connect(proxy.port)
    c.sendall(b"GET\n")
    assert recv_all(c) == data
    assert proxy.flipped == 0


# ----------------------------------------------------------------------
# truncate


@pytest.mark.parametrize("cap", [0, 1, 100_003, MIB, 2 * MIB])
def test_truncate_delivers_exactly_n_then_eof(make_server, make_proxy, connect, cap):
    """Each connection gets exactly min(cap, response) bytes, then a clean
    EOF (recv_all fails on a reset)."""
    data = payload(MIB)
    proxy = make_proxy(make_server(source(data)))
    proxy.set_mode("truncate", after=cap)
    for _ in range(2):      # the cap is per connection
        c = connect(proxy.port)
        c.sendall(b"GET\n")
        got = recv_all(c)
        assert len(got) == min(cap, len(data))
        assert got == data[:cap]


# ----------------------------------------------------------------------
# stall


def test_stall_forwards_nothing_until_resumed(make_server, make_proxy, connect):
    server = make_server(echo)
    proxy = make_proxy(server)
    old = connect(proxy.port)
    assert ping(old) == b"ping"

    proxy.set_mode("stall")
    old.sendall(b"during stall")
    new = connect(proxy.port)      # accepted, but nothing flows either
    new.sendall(b"new conn")
    assert_silent(old)
    assert_silent(new)
    assert server.received == len(b"ping")     # nothing reached the server

    proxy.set_mode("pass")
    assert recv_exactly(old, len(b"during stall")) == b"during stall"
    assert recv_exactly(new, len(b"new conn")) == b"new conn"
    assert ping(old, b"again") == b"again"


def test_stall_holds_a_response_midway(make_server, make_proxy, connect):
    """Stalled in the middle of a (paced) 1 MiB response, the client receives
    nothing more; resumed, it receives the rest intact."""
    data = payload(MIB)
    proxy = make_proxy(make_server(source(data, pace=0.002)))
    c = connect(proxy.port)
    c.sendall(b"GET\n")
    head = recv_exactly(c, 100_000)
    proxy.set_mode("stall")
    # Drain what was already in flight (kernel buffers on the client side).
    c.settimeout(QUIET)
    got = bytearray(head)
    try:
        while True:
            chunk = c.recv(CHUNK)
            assert chunk, "EOF while stalled"
            got += chunk
    except socket.timeout:
        pass
    assert len(got) < len(data)
    assert_silent(c)
    c.settimeout(TIMEOUT)
    proxy.set_mode("pass")
    got += recv_all(c)
    assert bytes(got) == data


# ----------------------------------------------------------------------
# cut and refuse


def test_cut_closes_current_connections_only(make_server, make_proxy, connect):
    server = make_server(echo)
    proxy = make_proxy(server)
    a, b = connect(proxy.port), connect(proxy.port)
    assert ping(a) == b"ping" and ping(b) == b"ping"

    proxy.cut()
    assert proxy.cut_count == 2
    assert_closed(a)
    assert_closed(b)
    # The server side is closed too: both echo handlers see EOF and finish.
    assert wait_for(lambda: server.active == 0)

    c = connect(proxy.port)
    assert ping(c, b"after cut") == b"after cut"
    assert proxy.connections == 3 and proxy.cut_count == 2


def test_cut_in_the_middle_of_a_response(make_server, make_proxy, connect):
    """A cut ends an endless stream: only what was in flight still arrives."""
    server = make_server(firehose)
    proxy = make_proxy(server)
    c = connect(proxy.port)
    recv_exactly(c, 1000)
    proxy.cut()
    assert proxy.cut_count == 1
    assert_closed(c)
    assert wait_for(lambda: server.active == 0)


def test_refuse_closes_new_connections_only(make_server, make_proxy, connect):
    server = make_server(echo)
    proxy = make_proxy(server)
    old = connect(proxy.port)
    assert ping(old) == b"ping"

    proxy.refuse(True)
    refused = connect(proxy.port)      # the TCP handshake still completes
    assert_closed(refused)
    assert ping(old, b"still here") == b"still here"

    proxy.refuse(False)
    new = connect(proxy.port)
    assert ping(new, b"welcome") == b"welcome"
    assert proxy.connections == 3 and proxy.refused == 1
    assert server.accepted == 2        # the refused one never got through


# ----------------------------------------------------------------------
# Robustness


def test_backpressure_bounds_buffering(make_server, make_proxy, connect):
    """A client that does not read makes the proxy stop reading the server
    once HIGH_WATER bytes are buffered, instead of buffering everything."""
    server = make_server(firehose)
    proxy = make_proxy(server)
    c = connect(proxy.port)
    recv_exactly(c, 1)
    # Wait until the server is blocked: its sent count stops growing.
    last = -1
    deadline = time.monotonic() + TIMEOUT
    while server.received != last:
        assert time.monotonic() < deadline, \
            "the server never blocked: %d bytes sent" % server.received
        last = server.received
        time.sleep(0.2)
    assert proxy.peak_buffered <= HIGH_WATER + CHUNK
    # Reading resumes the flow.
    recv_exactly(c, 8 * MIB)
    assert wait_for(lambda: server.received > last)


def test_unreachable_target_closes_the_client(make_server, connect):
    """Connections to a dead target are closed; the proxy keeps serving."""
    dead = make_server(echo)
    port = dead.port
    dead.close()
    with FaultProxy("127.0.0.1", port) as proxy:
        for _ in range(2):
            assert_closed(connect(proxy.port))
        assert proxy.connections == 2


def test_stop_closes_everything_quickly(make_server, connect):
    server = make_server(echo)
    proxy = FaultProxy("127.0.0.1", server.port).start()
    try:
        a = connect(proxy.port)
        assert ping(a) == b"ping"
        proxy.set_mode("stall")
        b = connect(proxy.port)
        b.sendall(b"stuck")
        t0 = time.monotonic()
    finally:
        proxy.stop()
    assert time.monotonic() - t0 < 1.0
    assert not any(t.name.startswith("fault-proxy") for t in threading.enumerate())
    assert_closed(a)
    assert_closed(b)
    assert wait_for(lambda: server.active == 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()
    proxy.stop()    # idempotent
    proxy.set_mode("pass")  # controls on a stopped proxy do not block


def test_bad_arguments():
    proxy = FaultProxy("127.0.0.1", 9)     # never started: no sockets
    with pytest.raises(ValueError):
        proxy.set_mode("scramble")
    with pytest.raises(ValueError):
        proxy.set_mode("flip", rate=1.5)
    with pytest.raises(TypeError):
        proxy.set_mode("truncate")
    with pytest.raises(TypeError):
        proxy.set_mode("pass", after=3)
    proxy.stop()
