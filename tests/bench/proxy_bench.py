#!/usr/bin/env python3
"""proxy_bench.py - what the HTTP proxy (proxy/proxy.h) costs, in one run.

A static primary and two replicas on this machine, each with the proxy in
front of the test application (tests/integration/proxy_app.py, posts in
SQLite on the mount).  Measured, on kept-alive connections:

  1. the proxy's overhead on the primary: GET /posts (a few rows) straight
     to the application against through the proxy, alternating, p50/p99;
  2. a forwarded write: POST /posts through the primary's proxy against
     through a replica's proxy whose primary is 40 ms away each way (a
     delay proxy, 80 ms round trip): the added latency against that one
     round trip;
  3. read-your-writes at 100 writes/s: a writer POSTs through the primary's
     proxy every 10 ms; after each, a reader GETs through a replica's proxy
     with the write's position: how long the reads wait (their latency
     against the same GET without a position).

Writes Markdown to --out and prints it.
"""

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
sys.path.insert(0, HERE)
import ltxfsmount  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402

APP = os.path.join(HERE, "..", "integration", "proxy_app.py")
DB = "posts.db"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Site:
    def __init__(self, binary, work, name, lease, advertise_port=None):
        self.name = name
        self.app_port, self.port = free_port(), free_port()
        extra = ("proxy:\n  addr: \"127.0.0.1:%d\"\n  target: \"127.0.0.1:%d\"\n  db: %s\n"
                 % (self.port, self.app_port, DB))
        if advertise_port:
            extra += "  advertise-url: \"http://127.0.0.1:%d\"\n" % advertise_port
        self.mount = ltxfsmount.LtxfsMount(binary, os.path.join(work, name), lease=lease,
                                           extra_config=extra)
        self.app = None

    def start(self):
        self.mount.start()

    def start_app(self):
        self.app = subprocess.Popen([sys.executable, APP, str(self.app_port),
                                     os.path.join(self.mount.mnt, DB), self.name])
        wait_listening(self.app_port)
        wait_listening(self.port)

    def stop(self):
        if self.app is not None:
            self.app.kill()
            self.app.wait()
        self.mount.stop()


def timed(conn, method, path, body=None, headers=None):
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return time.perf_counter() - t0, r, data


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000.0


def overhead(primary, n):
    direct = http.client.HTTPConnection("127.0.0.1", primary.app_port, timeout=30)
    proxied = http.client.HTTPConnection("127.0.0.1", primary.port, timeout=30)
    d, p = [], []
    for _ in range(n):
        d.append(timed(direct, "GET", "/posts")[0])
        p.append(timed(proxied, "GET", "/posts")[0])
    return d, p


def forwarded(primary, replica, n):
    here = http.client.HTTPConnection("127.0.0.1", primary.port, timeout=30)
    far = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=30)
    a, b = [], []
    for i in range(n):
        a.append(timed(here, "POST", "/posts", body=b"near %d" % i)[0])
        b.append(timed(far, "POST", "/posts", body=b"far %d" % i)[0])
    return a, b


def read_your_writes(primary, replica, seconds):
    w = http.client.HTTPConnection("127.0.0.1", primary.port, timeout=30)
    r = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=30)
    waited, plain = [], []
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < end:
        nxt += 0.01
        _, resp, _ = timed(w, "POST", "/posts", body=b"x")
        pos = resp.getheader("Ltxfs-Txid")
        waited.append(timed(r, "GET", "/posts", headers={"Ltxfs-Txid": pos})[0])
        plain.append(timed(r, "GET", "/posts")[0])
        time.sleep(max(0.0, nxt - time.monotonic()))
    return waited, plain


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--workdir", default="build/bench-run/proxy")
    ap.add_argument("--out", default="build/bench-proxy.md")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    sites = []
    primary = Site(args.ltxfs, args.workdir, "primary", None)
    try:
        with DelayProxy("127.0.0.1", primary.mount.port, 40) as api, \
                DelayProxy("127.0.0.1", primary.port, 40) as px:
            # The far replica reaches the primary through the delays, and
            # forwards writes to the primary's proxy as advertised: through
            # the delay too.  The near one streams directly.
            primary.mount.lease = ("lease:\n  type: static\n  candidate: true\n  hostname: "
                                   "bench-primary\n  advertise-url: \"http://127.0.0.1:%d\"\n"
                                   % primary.mount.port)
            primary.mount.extra_config += "  advertise-url: \"http://127.0.0.1:%d\"\n" % px.port
            near = Site(args.ltxfs, args.workdir, "near", "lease:\n  type: static\n  candidate: "
                        "false\n  hostname: near\n  advertise-url: \"http://127.0.0.1:%d\"\n"
                        % primary.mount.port)
            far = Site(args.ltxfs, args.workdir, "far", "lease:\n  type: static\n  candidate: "
                       "false\n  hostname: far\n  advertise-url: \"http://127.0.0.1:%d\"\n"
                       % api.port)
            sites += [primary, near, far]
            primary.start()
            subprocess.run(["sqlite3", os.path.join(primary.mount.mnt, DB),
                            "PRAGMA journal_mode=wal; CREATE TABLE posts(id INTEGER PRIMARY "
                            "KEY, text TEXT); INSERT INTO posts(text) VALUES ('a'), ('b');"],
                           check=True, capture_output=True)
            for s in (near, far):
                s.start()
            time.sleep(1)
            for s in sites:
                s.start_app()
            d, p = overhead(primary, args.requests)
            a, b = forwarded(primary, far, 100)
            waited, plain = read_your_writes(primary, near, args.seconds)
    finally:
        for s in sites:
            s.stop()
    lines = [
        "| proxy | p50 | p99 |", "|---|---|---|",
        "| GET /posts, straight to the application | %.3f ms | %.3f ms |" % (pct(d, .5), pct(d, .99)),
        "| GET /posts, through the proxy | %.3f ms | %.3f ms |" % (pct(p, .5), pct(p, .99)),
        "| proxy overhead (target at most 0.2 ms p50) | %+.3f ms | %+.3f ms |"
        % (pct(p, .5) - pct(d, .5), pct(p, .99) - pct(d, .99)),
        "| POST /posts through the primary's proxy | %.2f ms | %.2f ms |" % (pct(a, .5), pct(a, .99)),
        "| POST /posts through a replica 80 ms away | %.2f ms | %.2f ms |" % (pct(b, .5), pct(b, .99)),
        "| forwarded write, added (one round trip: 80 ms) | %+.2f ms | %+.2f ms |"
        % (pct(b, .5) - pct(a, .5), pct(b, .99) - pct(a, .99)),
        "| read-your-writes at 100 writes/s: GET with the write's position | %.3f ms | %.3f ms |"
        % (pct(waited, .5), pct(waited, .99)),
        "| the same GET without a position | %.3f ms | %.3f ms |" % (pct(plain, .5), pct(plain, .99)),
        "", "%d requests each for the overhead, 100 forwarded writes, %d read-your-writes rounds "
        "(%d cores)." % (args.requests, len(waited), os.cpu_count()), ""]
    text = "\n".join(["# ltxfs proxy benchmark", ""] + lines)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
