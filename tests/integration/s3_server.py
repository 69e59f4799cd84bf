"""s3_server.py - an S3 server for the tests, and faults between it and a client.

    with S3Server(work_dir) as s3:      # s3rver on a free port of 127.0.0.1
        s3.url                          # http://127.0.0.1:PORT (path-style)
        s3.bucket, s3.access_key, s3.secret_key
        s3.requests()                   # [{"method", "url", "status"}] so far

The server is s3rver 3 (npm), installed by tests/tools/fetch-s3rver.sh
($LTXFS_S3RVER: its bin, as the Makefile sets it; else under build/tools),
started through s3rver_main.js, which adds what s3rver 3 does not check and
S3 does: SigV4 signatures (a wrong secret is SignatureDoesNotMatch),
Content-MD5 (BadDigest), the payload's SHA-256 (XAmzContentSHA256Mismatch);
and AbortMultipartUpload.  It listens on a port the kernel picks (no race
for a free one), in a directory of its own, with one bucket.  It is stopped
by PID (its process group), never by name.

    with S3FaultProxy(s3.port) as p:    # an HTTP-aware proxy in front of it
        p.url
        p.fail(2, status=503, code="SlowDown")  # the next 2 requests: that answer
        p.reset(1)                      # the next request: connection reset
        p.corrupt(1, methods=("PUT",))  # the next PUT: one bit of its body flipped
        p.requests, p.injected          # counters

Faults apply to requests in arrival order, the first pending fault that
matches a request's method wins.  A failed request's connection is closed.
"""

import json
import os
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
START_TIMEOUT = 30


def s3rver_bin():
    b = os.environ.get("LTXFS_S3RVER", "")
    if not b:
        b = os.path.join(REPO, "build", "tools", "s3rver", "node_modules", ".bin", "s3rver")
    return os.path.abspath(b)


def s3rver_module():
    """The s3rver package's directory: its bin is DIR/bin/s3rver.js."""
    real = os.path.realpath(s3rver_bin())
    return os.path.dirname(os.path.dirname(real))


def node_bin():
    for name in ("node", "nodejs"):
        for d in os.environ.get("PATH", "/usr/bin").split(os.pathsep):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
    raise AssertionError("no node (Node.js) in PATH: deploy/install-deps.sh --test")


class S3Server:
    access_key = "S3RVER"       # s3rver's own account
    secret_key = "S3RVER"
    region = "us-east-1"

    def __init__(self, work_dir, bucket="ltxfs-test", tls=None):
        """tls: (key, cert) PEM files: HTTPS."""
        self.work_dir = work_dir
        self.bucket = bucket
        self.tls = tls
        self.data_dir = os.path.join(work_dir, "data")
        self.log_path = os.path.join(work_dir, "s3rver.log")
        self.requests_path = os.path.join(work_dir, "requests.jsonl")
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        module = s3rver_module()
        if not os.path.isfile(os.path.join(module, "package.json")):
            raise AssertionError("s3rver not found at %s: make %s (or set LTXFS_S3RVER)"
                                 % (s3rver_bin(), "build/tools/s3rver/node_modules/.bin/s3rver"))
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # s3rver 3's continuation tokens are DES-encrypted: OpenSSL 3
            # keeps DES in its legacy provider
            [node_bin(), "--openssl-legacy-provider", os.path.join(HERE, "s3rver_main.js"),
             "--module", module,
             "--directory", self.data_dir, "--bucket", self.bucket, "--port", "0",
             "--log", self.requests_path]
            + (["--key", self.tls[0], "--cert", self.tls[1]] if self.tls else []),
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        try:
            self.port = self._read_port()
            self._wait_answers()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("s3rver did not start (exit %s): %s" % (
                    self.proc.poll(), self.log_tail()))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        words = line.decode().split()
        if len(words) != 2 or words[0] != "listening":
            raise AssertionError("s3rver said %r" % line)
        return int(words[1].rsplit(":", 1)[1])

    def _wait_answers(self):
        """Until an HTTP answer comes (an unsigned request: 403)."""
        deadline = time.monotonic() + START_TIMEOUT
        ctx = ssl._create_unverified_context() if self.tls else None
        while True:
            try:
                urllib.request.urlopen(self.url + "/" + self.bucket, timeout=2,
                                       context=ctx).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise AssertionError("s3rver does not answer at %s: %s" % (self.url, e))
                time.sleep(0.05)

    def requests(self):
        try:
            with open(self.requests_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                p.wait()
        if p.stdout is not None:
            p.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class S3FaultProxy:
    """An HTTP/1.1 proxy to 127.0.0.1:target_port injecting faults per request
    (see the module's docstring).  Requests must carry Content-Length (or no
    body); answers are relayed as they come."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._faults = []
        self._socks = set()
        self._stopping = False
        self.requests = 0
        self.injected = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- faults ----

    def _add(self, kind, n, methods, **kw):
        with self._lock:
            self._faults.append(dict(kind=kind, left=n, methods=methods, **kw))

    def fail(self, n, status=503, code="SlowDown", message="Please reduce your request rate.",
             methods=None):
        self._add("fail", n, methods, status=status, code=code, message=message)

    def reset(self, n, methods=None):
        self._add("reset", n, methods)

    def corrupt(self, n, methods=("PUT", "POST")):
        self._add("corrupt", n, methods)

    def clear(self):
        with self._lock:
            self._faults = []

    def _take(self, method, has_body):
        with self._lock:
            self.requests += 1
            for f in self._faults:
                if f["left"] <= 0 or (f["methods"] and method not in f["methods"]):
                    continue
                if f["kind"] == "corrupt" and not has_body:
                    continue
                f["left"] -= 1
                self.injected += 1
                return f
        return None

    # ---- life cycle ----

    def start(self):
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name="s3-fault-proxy:%d" % self.port)
        self._thread.start()
        return self

    def stop(self):
        with self._lock:
            self._stopping = True
            socks = list(self._socks)
        for s in [self._listener] + socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, *socks):
        with self._lock:
            if self._stopping:
                return False
            self._socks.update(socks)
            return True

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            if not self._track(client, server):
                client.close()
                server.close()
                return
            threading.Thread(target=self._relay_answers, args=(server, client),
                             daemon=True).start()
            threading.Thread(target=self._serve, args=(client, server), daemon=True).start()

    # ---- one connection ----

    def _relay_answers(self, server, client):
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        self._close(client, server)

    def _close(self, *socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            self._socks.difference_update(socks)

    def _serve(self, client, server):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        raise EOFError
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "chunked" in headers.get("transfer-encoding", ""):
                    raise EOFError          # not this proxy's job
                length = int(headers.get("content-length", "0"))
                fault = self._take(method, length > 0)
                kind = fault["kind"] if fault else "pass"
                if kind == "reset":
                    # RST, not FIN: the client sees "connection reset"
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                    client.close()      # no shutdown first: that would send a FIN
                    raise EOFError
                if kind == "fail":
                    if "100-continue" not in headers.get("expect", "").lower():
                        buf = self._read_body(client, buf, length)[1]
                    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                            '<Message>%s</Message></Error>' % (fault["code"], fault["message"]))
                    client.sendall(("HTTP/1.1 %d Injected\r\nContent-Type: application/xml\r\n"
                                    "Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                                    % (fault["status"], len(body), body)).encode())
                    raise EOFError
                server.sendall(head + b"\r\n\r\n")
                body, buf = self._read_body(client, buf, length)
                if kind == "corrupt":
                    body = bytearray(body)
                    body[len(body) // 2] ^= 0x01
                server.sendall(bytes(body))
        except (EOFError, OSError, ValueError):
            pass
        self._close(client, server)

    @staticmethod
    def _read_body(client, buf, length):
        """`length` bytes of body (some may be in buf); returns (body, rest)."""
        got = bytearray(buf)
        while len(got) < length:
            data = client.recv(min(1 << 20, length - len(got)))
            if not data:
                raise EOFError
            got += data
        return bytes(got[:length]), bytes(got[length:])
