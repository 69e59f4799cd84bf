#!/usr/bin/python3
"""failover_bench.py - how long writes are unavailable when the primary
role moves, with three candidate nodes on 127.0.0.1 and a real Consul
agent (lease TTL --ttl, default 10 s as in production; lock-delay 1 s) or
a real etcd (the same TTL); see docs/lease.md.

  sigterm   the primary is stopped cleanly: it fences, releases the lease;
  sigkill   the primary is killed: a candidate sees its address refuse
            connections and breaks its Consul session behind a fence, so a
            new primary writes about one TTL after the death (without that,
            Consul expires the session after about 2 x TTL); etcd expires
            the lease after about TTL, no lock-delay;
  handoff   `ltxfs promote` on a replica (the lease moves with no gap).

A client writes one row at a time to whichever node accepts it (WAL,
synchronous=NORMAL); it stops using a node just before that node is
stopped or killed.  Unavailability of one event = the first write
acknowledged after it minus the last one acknowledged before it.  A stopped
or killed node is started again (empty, it rejoins by snapshot) before the
next run.  Prints a markdown table and writes it to --out.
"""

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import json
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import ltxfsmount  # noqa: E402
from consul_server import ConsulServer  # noqa: E402
from etcd_server import EtcdServer  # noqa: E402

LOCK_DELAY = "1s"


def lease(backend, url, name, port, ttl):
    if backend == "consul":
        service = ("  consul:\n    url: \"%s\"\n    key: ltxfs-bench/primary\n    ttl: %s\n"
                   "    lock-delay: %s\n" % (url, ttl, LOCK_DELAY))
    else:
        service = "  etcd:\n    url: \"%s\"\n    key: ltxfs-bench/primary\n    ttl: %s\n" % (url, ttl)
    return ("lease:\n  type: %s\n  candidate: true\n  hostname: %s\n"
            "  advertise-url: \"http://127.0.0.1:%d\"\n%s" % (backend, name, port, service))


def role(m):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % m.port, timeout=2) as r:
            return json.loads(r.read())["role"]
    except OSError:
        return "down"


def primary_of(nodes, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ps = [m for m in nodes if m.alive() and role(m) == "primary"]
        if len(ps) == 1:
            return ps[0]
        time.sleep(0.05)
    raise RuntimeError("no primary")


def try_write(m, v):
    try:
        c = sqlite3.connect(os.path.join(m.mnt, "a.db"), timeout=0.5, isolation_level=None)
        try:
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("INSERT INTO t(v) VALUES (?)", (v,))
            return True
        finally:
            c.close()
    except sqlite3.Error:
        return False


class Writer(threading.Thread):
    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes, self.acks, self.stop = nodes, [], threading.Event()
        # A node about to be stopped is left alone first: a connection whose
        # daemon goes away under it dies of SIGBUS on its mapped -shm.
        self.mu = threading.Lock()
        self.excluded = set()

    def exclude(self, m):
        with self.mu:
            self.excluded.add(m)

    def include(self, m):
        with self.mu:
            self.excluded.discard(m)

    def run(self):
        i, last = 0, 0
        while not self.stop.is_set():
            done = False
            for k in range(len(self.nodes)):
                m = self.nodes[(last + k) % len(self.nodes)]
                with self.mu:
                    if m in self.excluded or not m.alive() or not try_write(m, "w%d" % i):
                        continue
                    self.acks.append((time.monotonic(), m))
                i, last, done = i + 1, (last + k) % len(self.nodes), True
                break
            if not done:
                time.sleep(0.001)


def gap(acks, t0, old, timeout=60):
    """From the last write acknowledged before the first one the new
    primary acknowledged, to that one (the old primary may still
    acknowledge writes after t0 until it is fenced)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = list(acks)
        for i, (t, m) in enumerate(v):
            if t > t0 and m is not old:
                return t - (v[i - 1][0] if i > 0 else t0)
        time.sleep(0.005)
    raise RuntimeError("no write acknowledged within %d s" % timeout)


def run_backend(args, backend):
    workdir = os.path.join(args.workdir, backend)
    os.makedirs(workdir, exist_ok=True)
    results = {"sigterm": [], "sigkill": [], "handoff": []}
    server = ConsulServer(workdir) if backend == "consul" else EtcdServer(workdir)
    with server:
        nodes = []
        try:
            for i in range(3):
                m = ltxfsmount.LtxfsMount(args.ltxfs, os.path.join(workdir, "node%d" % i))
                m.lease = lease(backend, server.url, "node%d" % i, m.port, args.ttl)
                m.start()
                nodes.append(m)
            p = primary_of(nodes)
            c = sqlite3.connect(os.path.join(p.mnt, "a.db"), isolation_level=None)
            c.execute("PRAGMA journal_mode=wal")
            c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
            c.close()
            w = Writer(nodes)
            w.start()
            for kind in ("handoff", "sigterm", "sigkill"):
                for _ in range(args.runs):
                    time.sleep(0.5)                  # writes flowing, replicas caught up
                    p = primary_of(nodes)
                    if kind != "handoff":
                        w.exclude(p)                 # waits for a write in flight
                    t0 = time.monotonic()
                    if kind == "handoff":
                        target = next(m for m in nodes if m is not p and m.alive())
                        subprocess.run([args.ltxfs, "promote", "-url",
                                        "http://127.0.0.1:%d" % target.port],
                                       check=True, capture_output=True, timeout=60)
                    elif kind == "sigterm":
                        p.proc.send_signal(signal.SIGTERM)
                    else:
                        os.killpg(p.proc.pid, signal.SIGKILL)
                    results[kind].append(gap(w.acks, t0, p))
                    print("%s %s: %.3f s" % (backend, kind, results[kind][-1]), flush=True)
                    if kind != "handoff":
                        p.stop()
                        p.start()                    # empty: rejoins by snapshot
                        w.include(p)
            w.stop.set()
            w.join(timeout=30)
        finally:
            for m in nodes:
                m.stop()
                m.cleanup()
    return results


def run(args):
    lines = ["| service | event (TTL %s; Consul lock-delay %s) | runs | min | p50 | max |"
             % (args.ttl, LOCK_DELAY), "|---|---|---|---|---|---|"]
    for backend in args.backends.split(","):
        for kind, v in run_backend(args, backend).items():
            lines.append("| %s | %s | %d | %.3f s | %.3f s | %.3f s |"
                         % (backend, kind, len(v), min(v), statistics.median(v), max(v)))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--backends", default="consul,etcd")
    ap.add_argument("--ttl", default="10s", help="lease TTL (Consul and etcd)")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
