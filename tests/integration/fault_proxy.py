"""fault_proxy.py - a fault-injecting TCP proxy for the integration tests.

A FaultProxy listens on 127.0.0.1 (by default on a free port, `.port`) and
forwards every accepted connection to one target address, while the test
injects faults into the byte streams:

    with FaultProxy("127.0.0.1", node.port) as proxy:
        url = "http://127.0.0.1:%d/..." % proxy.port
        proxy.set_mode("flip", rate=0.5, after=512, seed=1)
        ...
        proxy.cut()

Modes (set_mode; each applies to current and future connections):

  pass      forward unchanged (the default)
  flip      server->client only: in each chunk read from the server, with
            probability `rate`, flip one random bit among the chunk's bytes
            at stream offset >= `after` (so the first `after` bytes of every
            response, e.g. the HTTP headers, pass intact).  `seed` makes the
            choices reproducible for a given chunking.
  truncate  server->client only: forward the first `after` bytes of each
            connection's response; once the server has sent that many, the
            rest is discarded and, when those bytes have been written to the
            client, both sides of the connection are closed (the client sees
            EOF, not a reset).  With after=0 the connection is closed as soon
            as the response starts.
  stall     forward nothing in either direction: the proxy stops reading and
            writing, so only the kernel's socket buffers hold data (bytes the
            proxy had already buffered are held, not delivered).  New
            connections are still accepted and connected to the target.
            Leaving the mode resumes forwarding.

Other controls: cut() closes every current connection (both sides) at once,
refuse(True) makes the proxy accept and immediately close new connections
until refuse(False).  Counters: connections (accepted, refused ones
included), refused, flipped (bits), cut_count (connections closed by cut()),
peak_buffered (the most bytes ever buffered for one direction of one
connection).

Every control call is thread-safe and synchronous: when it returns, the
proxy thread has applied it (e.g. after set_mode("stall") returns no further
byte is forwarded; after cut() returns the sockets are closed).

All I/O happens in one background thread on non-blocking sockets multiplexed
with `selectors`.  It reads at most CHUNK bytes at a time and stops reading
from a side while the buffer towards the other side holds HIGH_WATER bytes
or more, so a slow reader slows the writer down instead of growing memory.
Errors on a connection close that connection and are logged (logger
"fault_proxy"); nothing is raised into the test from the proxy thread.
stop() (or leaving the `with` block) closes every socket and joins the
thread within a second.

Only the Python standard library is used.
"""

import errno
import logging
import random
import selectors
import socket
import threading
import time

log = logging.getLogger("fault_proxy")

CHUNK = 64 * 1024           # largest single recv()
HIGH_WATER = 1024 * 1024    # stop reading a side while its peer's buffer is this full
MODES = ("pass", "flip", "truncate", "stall")

CONTROL_TIMEOUT = 5.0       # how long a control call waits for the proxy thread
STOP_TIMEOUT = 1.0          # how long stop() waits for the proxy thread
SELECT_TIMEOUT = 0.5        # safety net; the wake-up socket makes changes immediate

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class _Mode:
    """The fault settings the proxy thread works with (replaced, not mutated,
    by set_mode; the rng is used by the proxy thread only)."""

    __slots__ = ("name", "rate", "after", "rng")

    def __init__(self, name="pass", rate=0.0, after=0, seed=None):
        self.name = name
        self.rate = rate
        self.after = after
        self.rng = random.Random(seed)

    def __repr__(self):
        return "_Mode(%s, rate=%s, after=%s)" % (self.name, self.rate, self.after)


class _Conn:
    """One proxied connection: the accepted client socket, the socket to the
    target, and what is buffered for each direction."""

    def __init__(self, cid, client, server):
        self.id = cid
        self.client = client
        self.server = server
        self.connecting = True      # connect() to the target still in progress
        self.to_server = bytearray()  # read from the client, not yet sent
        self.to_client = bytearray()  # read from the server, not yet sent
        self.client_eof = False     # the client has half-closed (recv gave b"")
        self.server_eof = False
        self.server_shut = False    # we passed the client's EOF on (SHUT_WR)
        self.client_shut = False    # we passed the server's EOF on
        self.s2c_read = 0           # response bytes read from the server so far
        self.truncated = False      # truncate cap reached: close once flushed
        self.closed = False
        self.events = {"client": 0, "server": 0}  # registered selector interest

    def sock(self, side):
        return self.client if side == "client" else self.server

    def __repr__(self):
        return "conn#%d" % self.id


class FaultProxy:
    """A TCP proxy to (target_host, target_port) with injectable faults.

    Use as a context manager or call start() and stop().  See the module
    docstring for the modes and counters.
    """

    def __init__(self, target_host, target_port, listen_host="127.0.0.1",
                 listen_port=0):
        self.target = (target_host, target_port)
        self.listen_addr = (listen_host, listen_port)

        # Shared with the test thread; guarded by _lock.  A control call bumps
        # _gen and waits until the proxy thread reports it applied (_applied).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._mode = _Mode()
        self._refuse = False
        self._cut_pending = False
        self._stopping = False
        self._gen = 0
        self._applied = 0
        self._connections = 0
        self._refused = 0
        self._flipped = 0
        self._cut_count = 0
        self._peak_buffered = 0

        # Owned by the proxy thread once it runs.
        self._thread = None
        self._listener = None
        self._port = None
        self._wake_r = self._wake_w = None
        self._sel = None
        self._target_addr = None
        self._conns = set()
        self._next_id = 0

    # ------------------------------------------------------------------
    # Life cycle

    def start(self):
        """Bind the listening socket and start the proxy thread."""
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        # Resolve both addresses here, in the test thread, so a bad address
        # is an error at start() rather than a silent failure later.
        fam, _, _, _, self._target_addr = socket.getaddrinfo(
            self.target[0], self.target[1], type=socket.SOCK_STREAM)[0]
        self._target_family = fam
        lfam = socket.getaddrinfo(self.listen_addr[0], self.listen_addr[1],
                                  type=socket.SOCK_STREAM)[0][0]
        try:
            self._listener = socket.create_server(self.listen_addr,
                                                  family=lfam, backlog=128)
            self._listener.setblocking(False)
            self._port = self._listener.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._sel = selectors.DefaultSelector()
            self._sel.register(self._listener, _READ, "listen")
            self._sel.register(self._wake_r, _READ, "wake")
        except BaseException:
            for obj in (self._sel, self._listener, self._wake_r, self._wake_w):
                if obj is not None:
                    obj.close()
            raise
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="fault-proxy:%d" % self.port)
        self._thread.start()
        log.debug("proxy :%d -> %s:%s started", self.port, *self.target)
        return self

    def stop(self):
        """Close every socket and join the proxy thread (idempotent).

        Raises RuntimeError if the thread does not finish within a second,
        which would be a bug in the proxy.
        """
        with self._lock:
            self._stopping = True
            thread = self._thread
        if thread is None:
            return
        self._wake()
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            log.error("proxy thread did not stop within %.1f s", STOP_TIMEOUT)
            raise RuntimeError("FaultProxy thread did not stop within %.1f s"
                               % STOP_TIMEOUT)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        """The port the proxy listens on (after start())."""
        return self._port

    @property
    def host(self):
        return self.listen_addr[0]

    # ------------------------------------------------------------------
    # Fault controls (any thread)

    def set_mode(self, mode, rate=None, after=None, seed=None):
        """Switch to mode "pass", "flip", "truncate" or "stall".

        flip takes rate (probability per chunk, 0..1, default 1), after
        (default 0) and seed; truncate requires after.  Other modes take no
        arguments.
        """
        if mode not in MODES:
            raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
        if mode != "flip" and (rate is not None or seed is not None):
            raise TypeError("rate and seed apply to mode 'flip' only")
        if mode in ("pass", "stall") and after is not None:
            raise TypeError("after applies to modes 'flip' and 'truncate' only")
        if mode == "truncate" and after is None:
            raise TypeError("mode 'truncate' needs after=N")
        rate = 1.0 if rate is None else float(rate)
        after = 0 if after is None else int(after)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1, not %r" % rate)
        if after < 0:
            raise ValueError("after must be >= 0, not %r" % after)
        new = _Mode(mode, rate, after, seed)

        def apply():
            self._mode = new
        self._control(apply)

    def cut(self):
        """Close every current connection, both sides, at once."""
        def apply():
            self._cut_pending = True
        self._control(apply)

    def refuse(self, on=True):
        """While on, accept new connections and close them immediately."""
        def apply():
            self._refuse = bool(on)
        self._control(apply)

    @property
    def mode(self):
        with self._lock:
            return self._mode.name

    @property
    def connections(self):
        """Connections accepted so far (refused ones included)."""
        with self._lock:
            return self._connections

    @property
    def refused(self):
        """Connections closed at once because of refuse(True)."""
        with self._lock:
            return self._refused

    @property
    def flipped(self):
        """Bits flipped so far."""
        with self._lock:
            return self._flipped

    @property
    def cut_count(self):
        """Connections closed by cut() so far."""
        with self._lock:
            return self._cut_count

    @property
    def peak_buffered(self):
        """The most bytes ever buffered for one direction of one connection."""
        with self._lock:
            return self._peak_buffered

    def _control(self, change):
        """Apply change() under the lock, then wait until the proxy thread has
        acted on it (immediately if the thread is not running)."""
        with self._cond:
            change()
            self._gen += 1
            gen = self._gen
            thread = self._thread
            running = (thread is not None and thread.is_alive()
                       and not self._stopping)
            if not running:
                self._cut_pending = False   # nothing to cut
        if not running or threading.current_thread() is thread:
            return
        self._wake()
        deadline = time.monotonic() + CONTROL_TIMEOUT
        with self._cond:
            while self._applied < gen and thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("proxy thread did not apply a control change "
                                "within %.1f s", CONTROL_TIMEOUT)
                    break
                self._cond.wait(left)

    def _wake(self):
        """Make the proxy thread's select() return."""
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, InterruptedError):
            pass    # a wake-up is already pending
        except OSError:
            pass    # already closed: the thread is gone

    # ------------------------------------------------------------------
    # Proxy thread

    def _run(self):
        try:
            while True:
                try:
                    if not self._iterate():
                        break
                except Exception:
                    # A bug in the loop itself (per-connection errors are
                    # handled below): log it and keep serving, without
                    # spinning if it repeats.
                    log.exception("fault proxy loop error")
                    time.sleep(0.05)
        finally:
            self._shutdown()

    def _iterate(self):
        """One round: apply control changes, then wait for and handle I/O.
        Returns False when the proxy is stopping."""
        with self._lock:
            if self._stopping:
                return False
            mode = self._mode
            refuse = self._refuse
            cut = self._cut_pending
            self._cut_pending = False
            gen = self._gen
        if cut:
            self._cut_all()
        for conn in list(self._conns):
            self._settle(conn, mode)
        with self._cond:
            self._applied = gen
            self._cond.notify_all()

        for key, mask in self._sel.select(SELECT_TIMEOUT):
            tag = key.data
            if tag == "wake":
                self._drain_wake()
            elif tag == "listen":
                self._accept(refuse)
            else:
                conn, side = tag
                if conn.closed:
                    continue    # closed by an earlier event of this round
                try:
                    self._on_event(conn, side, mask, mode)
                except Exception:
                    log.exception("%s: unexpected error, closing it", conn)
                    self._close(conn)
        return True

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _accept(self, refuse):
        for _ in range(64):     # bounded, so one round cannot starve the rest
            try:
                client, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # e.g. EMFILE; the pending connection stays in the backlog.
                log.warning("accept failed: %s", e)
                return
            with self._lock:
                self._connections += 1
            if refuse:
                with self._lock:
                    self._refused += 1
                log.debug("refused a connection from %s", addr)
                client.close()
                continue
            self._open(client, addr)

    def _open(self, client, addr):
        """Start connecting an accepted client to the target."""
        server = None
        try:
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server = socket.socket(self._target_family, socket.SOCK_STREAM)
            server.setblocking(False)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = server.connect_ex(self._target_addr)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise OSError(err, "connect to %s:%s: %s" % (
                    self.target[0], self.target[1], errno.errorcode.get(err, err)))
        except OSError as e:
            log.info("connection from %s: %s", addr, e)
            client.close()
            if server is not None:
                server.close()
            return
        self._next_id += 1
        conn = _Conn(self._next_id, client, server)
        conn.connecting = err != 0
        self._conns.add(conn)
        log.debug("%s: accepted from %s", conn, addr)

    def _on_event(self, conn, side, mask, mode):
        if conn.connecting:
            # Only the server socket is registered (for writability) while
            # the connect is in progress.
            err = conn.server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                log.info("%s: connect to %s:%s failed: %s", conn, self.target[0],
                         self.target[1], errno.errorcode.get(err, err))
                self._close(conn)
            else:
                conn.connecting = False
            return
        if mask & _WRITE:
            self._write(conn, side)
        if mask & _READ and not conn.closed:
            self._read(conn, side, mode)

    def _read(self, conn, side, mode):
        try:
            data = conn.sock(side).recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("%s: %s recv: %s", conn, side, e)
            self._close(conn)
            return
        if not data:
            if side == "client":
                conn.client_eof = True
            else:
                conn.server_eof = True
            return
        if side == "client":
            conn.to_server += data
            self._note_buffered(len(conn.to_server))
            return

        start = conn.s2c_read           # stream offset of data[0]
        conn.s2c_read += len(data)
        if mode.name == "truncate" and conn.s2c_read >= mode.after:
            data = data[:max(0, mode.after - start)]
            conn.truncated = True
            log.debug("%s: response truncated at %d bytes", conn, mode.after)
        elif mode.name == "flip":
            data = self._flip(data, start, mode)
        conn.to_client += data
        self._note_buffered(len(conn.to_client))

    def _flip(self, data, start, mode):
        """Flip one random bit, with probability mode.rate, among the bytes of
        data (at stream offset start) whose offset is >= mode.after."""
        first = max(0, mode.after - start)      # first eligible index
        if first >= len(data) or mode.rng.random() >= mode.rate:
            return data
        pos = mode.rng.randrange(first, len(data))
        data = bytearray(data)
        data[pos] ^= 1 << mode.rng.randrange(8)
        with self._lock:
            self._flipped += 1
        return data

    def _write(self, conn, side):
        buf = conn.to_client if side == "client" else conn.to_server
        if not buf:
            return
        try:
            n = conn.sock(side).send(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("%s: %s send: %s", conn, side, e)
            self._close(conn)
            return
        del buf[:n]

    def _note_buffered(self, n):
        if n > self._peak_buffered:     # unlocked read: only this thread writes
            with self._lock:
                self._peak_buffered = n

    def _settle(self, conn, mode):
        """Bring one connection in line with the mode and its state: trim or
        finish a truncated response, pass EOFs on, close it when both
        directions are done, and register the I/O interest it needs now."""
        if conn.connecting:
            self._interest(conn, "client", 0)
            self._interest(conn, "server", _WRITE)
            return
        if mode.name == "stall":
            # Nothing moves, not even an EOF or a truncation's close.
            self._interest(conn, "client", 0)
            self._interest(conn, "server", 0)
            return

        if mode.name == "truncate" and not conn.truncated and \
                conn.s2c_read > 0 and conn.s2c_read >= mode.after:
            # Switched to truncate after the response had passed the cap:
            # drop what is buffered beyond it.
            sent = conn.s2c_read - len(conn.to_client)
            del conn.to_client[max(0, mode.after - sent):]
            conn.truncated = True
        if conn.truncated and not conn.to_client:
            self._close(conn, graceful=True)
            return

        try:
            if conn.client_eof and not conn.to_server and not conn.server_shut:
                conn.server.shutdown(socket.SHUT_WR)
                conn.server_shut = True
            if conn.server_eof and not conn.to_client and not conn.client_shut:
                conn.client.shutdown(socket.SHUT_WR)
                conn.client_shut = True
        except OSError as e:
            log.debug("%s: shutdown: %s", conn, e)
            self._close(conn)
            return
        if conn.server_shut and conn.client_shut:
            log.debug("%s: finished", conn)
            self._close(conn)
            return

        # Backpressure: read a side only while the buffer towards its peer
        # is below HIGH_WATER (so it never exceeds HIGH_WATER + CHUNK).
        cev = sev = 0
        if not conn.client_eof and len(conn.to_server) < HIGH_WATER:
            cev |= _READ
        if (not conn.server_eof and not conn.truncated
                and len(conn.to_client) < HIGH_WATER):
            sev |= _READ
        if conn.to_client:
            cev |= _WRITE
        if conn.to_server:
            sev |= _WRITE
        self._interest(conn, "client", cev)
        self._interest(conn, "server", sev)

    def _interest(self, conn, side, events):
        """Register exactly `events` for one socket of conn (0: unregister)."""
        old = conn.events[side]
        if events == old:
            return
        sock = conn.sock(side)
        if old == 0:
            self._sel.register(sock, events, (conn, side))
        elif events == 0:
            self._sel.unregister(sock)
        else:
            self._sel.modify(sock, events, (conn, side))
        conn.events[side] = events

    def _cut_all(self):
        n = len(self._conns)
        for conn in list(self._conns):
            self._close(conn)
        with self._lock:
            self._cut_count += n
        log.debug("cut %d connection(s)", n)

    def _close(self, conn, graceful=False):
        """Close both sockets of conn.  graceful: first read whatever the
        client has sent, so that closing does not answer it with a reset
        that could destroy the data just delivered to it."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.discard(conn)
        for side in ("client", "server"):
            sock = conn.sock(side)
            if conn.events[side]:
                try:
                    self._sel.unregister(sock)
                except (KeyError, ValueError, OSError):
                    pass
                conn.events[side] = 0
            if graceful and side == "client":
                try:
                    for _ in range(64):
                        if not sock.recv(CHUNK):
                            break
                except OSError:
                    pass    # nothing (more) to read, or already reset
            try:
                sock.close()
            except OSError:
                pass

    def _shutdown(self):
        """Proxy thread exit: close everything and release waiters."""
        for conn in list(self._conns):
            try:
                self._close(conn)
            except Exception:
                log.exception("%s: error while closing", conn)
        for obj in (self._sel, self._listener, self._wake_r, self._wake_w):
            try:
                obj.close()
            except Exception:
                log.exception("error while closing %r", obj)
        with self._cond:
            self._stopping = True
            self._applied = self._gen
            self._cond.notify_all()
        log.debug("proxy :%s stopped", self._port)
