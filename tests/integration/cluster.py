"""cluster.py - multi-node ltxfs clusters on 127.0.0.1 for the tests.

make_cluster(make_node, replicas=2) builds one primary and N replicas on a
static lease (lease.candidate true on the primary, false on the replicas,
all naming the primary's hostname and advertise-url), each with its own
directories and HTTP port.  Replicas always keep SQLite's locks in ltxfs
(fuse.locks: ltxfs): a replica must see its readers' locks to apply safely.

Helpers wait for convergence by polling NAME-pos files and /status, never by
sleeping a fixed time.
"""

import hashlib
import json
import os
import sqlite3
import time
import urllib.request

import ltxfs_helpers as H

PRIMARY_HOST = "primary-host"


def lease_primary(port):
    return ("lease:\n  type: static\n  candidate: true\n"
            "  hostname: %s\n  advertise-url: \"http://127.0.0.1:%d\"\n"
            % (PRIMARY_HOST, port))


def lease_replica(primary_url):
    return ("lease:\n  type: static\n  candidate: false\n"
            "  hostname: %s\n  advertise-url: \"%s\"\n" % (PRIMARY_HOST, primary_url))


def make_primary(make_node, name="primary"):
    p = make_node(name)
    p.port = H.free_port()
    p.lease_text = lease_primary(p.port)
    return p


def make_replica(make_node, primary, name, url=None):
    r = make_node(name)
    r.lease_text = lease_replica(url or "http://127.0.0.1:%d" % primary.port)
    r.locks = "ltxfs"
    return r


def make_cluster(make_node, replicas=2, start=True, replica_wal=None):
    """replica_wal: True/False sets the replicas' data.replica-wal (WAL-mode
    transactions applied as WAL frames, or after readers leave); None keeps
    the daemon's default unless LTXFS_ITEST_REPLICA_WAL is 1 or 0."""
    if replica_wal is None and os.environ.get("LTXFS_ITEST_REPLICA_WAL") in ("0", "1"):
        replica_wal = os.environ["LTXFS_ITEST_REPLICA_WAL"] == "1"
    p = make_primary(make_node)
    rs = [make_replica(make_node, p, "replica%d" % (i + 1)) for i in range(replicas)]
    for r in rs:
        if replica_wal is not None:
            r.data_config += "  replica-wal: %s\n" % ("true" if replica_wal else "false")

    if start:
        p.start()
        for r in rs:
            r.start()
    return p, rs


def api_get(node, path, timeout=10):
    """GET `path` from the node's HTTP API (HTTPS and a bearer token when
    the node has api_tls / api_token); the open response."""
    scheme = "https" if node.api_tls is not None else "http"
    req = urllib.request.Request("%s://%s:%d%s" % (scheme, node.host, node.port, path))
    if node.api_token is not None:
        req.add_header("Authorization", "Bearer " + node.api_token)
    return urllib.request.urlopen(req, timeout=timeout, context=node.api_tls)


def status(node, timeout=10):
    with api_get(node, "/status", timeout) as resp:
        return json.loads(resp.read())


def metrics(node, timeout=10):
    with api_get(node, "/metrics", timeout) as resp:
        out = {}
        for line in resp.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def pos_or_none(node, name):
    try:
        return node.pos(name)
    except OSError:
        return None


def wait_converged(primary, replicas, names, timeout=60):
    """Wait until every replica shows the primary's position for each db
    (a deleted database: absent on both)."""
    deadline = time.monotonic() + timeout
    while True:
        want = {n: pos_or_none(primary, n) for n in names}
        have = [{n: pos_or_none(r, n) for n in names} for r in replicas]
        if all(h == want for h in have):
            return want
        if time.monotonic() > deadline:
            raise AssertionError("replicas did not converge in %ds: primary %r, replicas %r\n%s"
                                 % (timeout, want, have,
                                    "\n".join("== %s\n%s" % (r.name, r.log_tail(30))
                                              for r in replicas)))
        time.sleep(0.02)


def checkpoint(node, name):
    """Fold the WAL into the database file (a no-op in rollback mode)."""
    c = sqlite3.connect(node.path(name), timeout=30)
    try:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        c.close()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def assert_identical(primary, replicas, names):
    """Byte-identical database files: the primary's (checkpointed) file,
    each replica's backing file and what each replica's mount serves."""
    for n in names:
        if not os.path.exists(primary.path(n)):
            for r in replicas:
                assert not os.path.exists(r.path(n)), "%s: %s still has it" % (n, r.name)
            continue
        checkpoint(primary, n)
        want = sha256(primary.backing(n))
        for r in replicas:
            # A replica in WAL mode keeps new transactions in its WAL until
            # its readers let a checkpoint copy them (db/replica_wal.h); an
            # idle replica does so at the next heartbeat (every second).
            deadline = time.monotonic() + 10
            while sha256(r.backing(n)) != want and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sha256(r.backing(n)) == want, "%s: %s's file differs" % (n, r.name)
            assert sha256(r.path(n)) == want, "%s: %s's mount serves other bytes" % (n, r.name)
