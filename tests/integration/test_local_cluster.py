"""test_local_cluster.py - deploy/local-cluster.sh, the three-node cluster a
new user starts to try replication and failover, driven as a user drives it.

The script is often the first thing someone runs, and it touches the
machine (network namespaces, a bridge, FUSE mounts, a Consul agent), so
each test checks what the user sees and that `down` leaves nothing behind:

  - `up` brings one Consul agent and nodes n1 n2 n3 (each in a network
    namespace of its own) up with one primary and two ready replicas, in
    the production shape: HTTPS only with a certificate per node from a
    throwaway CA, mutual TLS, a token (a file of mode 0600) on every
    request, https:// advertise URLs, no `http.insecure`; a request
    without the token is answered 401, one without a client certificate
    is refused, plain HTTP gets nothing, and the commands the script
    prints for the user (`ltxfs status -config`, `curl -K`) work; the
    mounts, made inside the namespaces with `nsenter --net`, are ordinary
    mounts in the host's mount namespace, so a row written there with
    Python's sqlite3 through the primary's mount is read through both
    replicas' mounts; a second `up` is refused;
  - `kill-primary` (SIGKILL) makes another node primary within the Consul
    bound (2 x TTL + lock-delay, plus slack); that node accepts a write
    that both other nodes see, the restarted old primary included;
  - `promote NODE` hands the primary role to NODE; the others follow it and
    refuse writes; `status` has a line per node;
  - with `--latency-node n2=50` all traffic goes through
    deploy/delay-proxy.py: the cluster still comes up and replicates, and
    n2 really is 50 ms away (its advertised API answers a round trip no
    sooner than 100 ms, a row reaches it no sooner than 50 ms), and the
    nodes' certificates name the proxy's address they are reached at;
  - an `up` that fails half-way (here: a binary that refuses to start)
    says why, with the end of the node's log, and takes down what it had
    started itself;
  - `down` runs in the fixture's finalizer, also after a failure, twice
    (it is idempotent), and then no process, mount, namespace or interface
    of the cluster may be left.  Whatever is left is removed by the
    finalizer itself (recorded PIDs only) and the test fails.

The script gets the binaries under test (LTXFS_BIN, LTXFS_CONSUL_BIN as the
Makefile sets them), a state directory under the test's tmp_path, and a
name prefix and subnet derived from this process's PID, so it never meets
a cluster a user started with the defaults, nor the other tests'
namespaces (netns.py: ltxns*, 10.200-249.x).
"""

import json
import os
import re
import shlex
import signal
import sqlite3
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import consul_server
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY   # the script's nodes keep locks in ltxfs

SCRIPT = os.path.join(H.REPO, "deploy", "local-cluster.sh")
NODES = ("n1", "n2", "n3")
TTL, LOCK_DELAY = 5.0, 1.0             # the script's defaults
# SIGKILL: Consul drops the session within 2 x TTL, the key is free
# lock-delay later; the slack covers polling and the catch-up.
FAILOVER_BOUND = 2 * TTL + LOCK_DELAY + 3
COMMAND_TIMEOUT = 120
REPLICATION_TIMEOUT = 20


class Cluster:
    """One state directory of deploy/local-cluster.sh and its settings."""

    def __init__(self, tmp_path):
        tag = os.getpid() % 100000
        self.dir = os.path.join(str(tmp_path), "cluster")
        self.prefix = "lct%d" % tag
        self.subnet = "10.97.%d" % (tag % 250 + 1)
        self.env = dict(os.environ,
                        LTXFS_CLUSTER_DIR=self.dir,
                        LTXFS_BIN=H.binary(),
                        LTXFS_CONSUL_BIN=consul_server.binary(),
                        LTXFS_CLUSTER_PREFIX=self.prefix,
                        LTXFS_CLUSTER_SUBNET=self.subnet)
        self.pids = set()              # every PID the script recorded

    def run(self, *args, check=True, timeout=COMMAND_TIMEOUT):
        t0 = time.monotonic()
        try:
            cp = subprocess.run([SCRIPT] + list(args), env=self.env, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        finally:
            self.record_pids()
        cp.seconds = time.monotonic() - t0
        if check and cp.returncode != 0:
            raise AssertionError("local-cluster.sh %s failed\n%s\n%s"
                                 % (" ".join(args), H.describe_run(cp), self.log_tails()))
        return cp

    def record_pids(self):
        for root, _, files in os.walk(self.dir):
            for f in files:
                if f.endswith(".pid"):
                    try:
                        with open(os.path.join(root, f)) as fh:
                            self.pids.add(int(fh.read().strip()))
                    except (OSError, ValueError):
                        pass

    def node_dir(self, n):
        return os.path.join(self.dir, n)

    def db(self, n, name="app.db"):
        return os.path.join(self.node_dir(n), "mnt", name)

    def ip(self, n):
        return "%s.%d" % (self.subnet, 10 + int(n[1:]))

    def url(self, n):
        return "https://%s:20202" % self.ip(n)

    def tls(self, client_cert=True):
        """Trust in the cluster's CA, with the operator's certificate."""
        d = os.path.join(self.dir, "tls")
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(os.path.join(d, "operator.crt"),
                                os.path.join(d, "operator.key"))
        return ctx

    def token(self):
        with open(os.path.join(self.dir, "token")) as f:
            return f.read().strip()

    def get(self, url, timeout=5, token=True, client_cert=True):
        """GET url over HTTPS; the token unless told otherwise."""
        headers = {"Authorization": "Bearer " + self.token()} if token else {}
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout,
                                    context=self.tls(client_cert)) as r:
            return json.loads(r.read())

    def status(self, n, timeout=5):
        return self.get(self.url(n) + "/status", timeout=timeout)

    def node_pid(self, n):
        with open(os.path.join(self.node_dir(n), "ltxfs.pid")) as f:
            return int(f.read())

    def primary(self):
        roles = {n: self.status(n)["role"] for n in NODES}
        ps = [n for n, r in roles.items() if r == "primary"]
        assert len(ps) == 1, roles
        return ps[0]

    def log_tails(self, lines=30):
        out = []
        for rel in ["consul/consul.log", "proxy/proxy.log"] + ["%s/ltxfs.log" % n for n in NODES]:
            path = os.path.join(self.dir, rel)
            if os.path.exists(path):
                out.append("== %s\n%s" % (rel, H.file_tail(path, lines)))
        return "\n".join(out)

    # ---- what must be gone after `down` --------------------------------------

    def live_pids(self):
        """Recorded PIDs still alive, and any process naming the state dir."""
        found = set()
        for pid in self.pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if f.read():       # empty: a zombie, or gone
                        found.add(pid)
            except OSError:
                pass
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/cmdline" % entry, "rb") as f:
                        if self.dir.encode() in f.read():
                            found.add(int(entry))
                except OSError:
                    pass
        return found

    def mounts(self):
        return [path for path in H.mount_points()
                if path == self.dir or path.startswith(self.dir + "/")]

    def netns(self):
        names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        return [n for n in names if n.startswith(self.prefix + "-")]

    def links(self):
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True,
                             text=True, check=True).stdout
        names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
        return [n for n in names if n.startswith(self.prefix)]

    def leftovers(self):
        return {k: v for k, v in (("processes", sorted(self.live_pids())),
                                  ("mounts", self.mounts()),
                                  ("namespaces", self.netns()),
                                  ("links", self.links())) if v}

    def force_clean(self, left):
        """The fallback when `down` failed: recorded PIDs and our names only."""
        for pid in left.get("processes", []):
            if pid in self.pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.5)
        for m in left.get("mounts", []):
            H.force_unmount(m)
        for ns in left.get("namespaces", []):
            subprocess.run(["ip", "netns", "del", ns], check=False)
        for link in left.get("links", []):
            subprocess.run(["ip", "link", "del", link], check=False,
                           stderr=subprocess.DEVNULL)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    problems = []
    for attempt in (1, 2):             # the second `down` finds nothing to do
        cp = c.run("down", check=False)
        if cp.returncode != 0:
            problems.append("down #%d failed:\n%s" % (attempt, H.describe_run(cp)))
    left = c.leftovers()
    if left:
        c.force_clean(left)
        problems.append("left after down: %r (cleaned up by the test; still left: %r)"
                        % (left, c.leftovers()))
    print(c.log_tails())               # shown with the report of a failed test
    if problems:
        pytest.fail("teardown:\n" + "\n".join(problems), pytrace=False)


def write(path, sql_rows, setup=None):
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        if setup:
            for s in setup:
                con.execute(s).fetchall()
        for v in sql_rows:
            con.execute("INSERT INTO t(v) VALUES (?)", (v,))
    finally:
        con.close()


def has_row(path, value):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM t WHERE v = ?", (value,)).fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:
        return False               # no table yet, or the node is switching roles


def wait_row(cluster, nodes, value, timeout=REPLICATION_TIMEOUT):
    """Seconds until every node in `nodes` serves the row, per node."""
    t0 = time.monotonic()
    seen = {}
    while len(seen) < len(nodes):
        for n in nodes:
            if n not in seen and has_row(cluster.db(n), value):
                seen[n] = time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("row %r not on %s within %d s; status: %s\n%s"
                                 % (value, sorted(set(nodes) - set(seen)), timeout,
                                    cluster.run("status", check=False).stdout,
                                    cluster.log_tails()))
        time.sleep(0.005)
    return seen


def check_secured(cluster, stdout):
    """The production shape: token, HTTPS, mutual TLS, no way around them."""
    token_file = os.path.join(cluster.dir, "token")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert len(cluster.token()) >= 32
    for n in NODES:
        with open(os.path.join(cluster.node_dir(n), "ltxfs.yml")) as f:
            cfg = f.read()
        assert "insecure" not in cfg, cfg
        assert 'token-file: "%s"' % token_file in cfg, cfg
        assert "client-auth: true" in cfg, cfg
        assert re.search(r'advertise-url: "https://', cfg), cfg
        assert re.search(r'consul:\n    url: "http://', cfg), cfg      # Consul stays HTTP
    p = cluster.primary()
    url = cluster.url(p) + "/status"
    # The operator's certificate without the token: 401.
    with pytest.raises(urllib.error.HTTPError) as e:
        cluster.get(url, token=False)
    assert e.value.code == 401
    # The token without a client certificate: refused (403 or at the handshake).
    with pytest.raises((urllib.error.HTTPError, urllib.error.URLError, ssl.SSLError,
                        ConnectionError)) as e:
        cluster.get(url, client_cert=False)
    assert not isinstance(e.value, urllib.error.HTTPError) or e.value.code == 403, e.value
    # Plain HTTP gets nothing.
    with pytest.raises(Exception):
        urllib.request.urlopen("http://%s:20202/status" % cluster.ip(p), timeout=5).read()
    assert cluster.get(url)["role"] == "primary"
    # The commands the summary prints for the user work as printed (from
    # this directory, as the user would run them).
    cmds = [line.split("   #")[0].strip() for line in stdout.splitlines()
            if line.strip().startswith("curl -sK ") or " status -config " in line]
    assert len(cmds) == 2, stdout
    for cmd in cmds:
        cp = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=30)
        assert cp.returncode == 0, (cmd, H.describe_run(cp))
        assert p in cp.stdout and "primary" in cp.stdout, (cmd, cp.stdout)


def test_up_failover_promote_down(cluster):
    cp = cluster.run("up")
    assert "ltxfs cluster up" in cp.stdout, cp.stdout
    print("up: %.1f s" % cp.seconds)
    p = cluster.primary()
    replicas = [n for n in NODES if n != p]
    for n in NODES:
        st = cluster.status(n)
        assert st["ready"] and st["primary"] == p and st["lease"] == "consul", (n, st)
        # The mount was made in another network namespace but this one's
        # mount namespace: the test reads it directly.
        pid = cluster.node_pid(n)
        assert os.readlink("/proc/%d/ns/net" % pid) != os.readlink("/proc/self/ns/net")
        assert os.readlink("/proc/%d/ns/mnt" % pid) == os.readlink("/proc/self/ns/mnt")
        assert H.mounted_at(os.path.join(cluster.node_dir(n), "mnt")), n
    assert cluster.db(p) in cp.stdout or os.path.relpath(cluster.db(p)) in cp.stdout
    check_secured(cluster, cp.stdout)

    again = cluster.run("up", check=False)
    assert again.returncode != 0 and "a cluster is up" in again.stderr, H.describe_run(again)

    write(cluster.db(p), ["first"], setup=[
        "PRAGMA journal_mode=wal",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"])
    wait_row(cluster, replicas, "first")

    # SIGKILL the primary: another node takes over once Consul lets it.
    cp = cluster.run("kill-primary")
    m = re.search(r"failover: (n\d) is the primary ([\d.]+) s after the kill", cp.stdout)
    assert m, cp.stdout
    new, took = m.group(1), float(m.group(2))
    print("kill-primary: %s -> %s in %.1f s (command %.1f s)" % (p, new, took, cp.seconds))
    assert new != p and new in replicas
    assert took <= FAILOVER_BOUND, cp.stdout
    assert cluster.primary() == new
    assert cluster.status(p)["role"] == "replica"     # restarted, rejoined
    write(cluster.db(new), ["after-failover"])
    wait_row(cluster, [n for n in NODES if n != new], "after-failover")

    # Hand the role to the node that was killed.
    cp = cluster.run("promote", p)
    print("promote %s: %.1f s" % (p, cp.seconds))
    assert "%s is the primary" % p in cp.stdout, cp.stdout
    for n in NODES:
        st = cluster.status(n)
        assert st["primary"] == p and st["role"] == ("primary" if n == p else "replica"), (n, st)
    write(cluster.db(p), ["after-promote"])
    wait_row(cluster, [n for n in NODES if n != p], "after-promote")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        write(cluster.db(new), ["on-a-replica"])

    out = cluster.run("status").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    txid = cluster.status(p)["databases"][0]["txid"]
    header = lines["NODE"].split()
    for n in NODES:
        row = dict(zip(header, lines[n].split()))
        assert row["PID"] == str(cluster.node_pid(n)) and row["ALIVE"] == "yes", out
        assert row["ROLE"] == ("primary" if n == p else "replica") and row["PRIMARY"] == p, out
        assert row["READY"] == "yes" and row["DATABASES"].startswith("app.db@"), out
    assert "app.db@%d" % txid in lines[p], out


def test_latency_node(cluster):
    cp = cluster.run("up", "--latency-node", "n2=50")
    print("up with 50 ms on n2: %.1f s" % cp.seconds)
    p = cluster.primary()
    status = cluster.run("status").stdout
    assert "n2 50 ms" in status, status

    # n2 is reached through the proxy, 50 ms each way.
    with open(os.path.join(cluster.node_dir("n2"), "ltxfs.yml")) as f:
        url = re.search(r'advertise-url: "([^"]+)"', f.read()).group(1)
    assert not url.startswith("http://%s:" % cluster.ip("n2")), url
    assert url.startswith("https://%s.1:" % cluster.subnet), url
    # Verified against the CA: n2's certificate names the proxy's address.
    t0 = time.monotonic()
    assert cluster.get(url + "/status", timeout=10)["hostname"] == "n2"
    assert time.monotonic() - t0 >= 0.1

    write(cluster.db(p), ["slow"], setup=[
        "PRAGMA journal_mode=wal",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"])
    write(cluster.db(p), ["probe"])
    seen = wait_row(cluster, [n for n in NODES if n != p], "probe")
    print("replication of one row: %s" % {n: "%.3f s" % s for n, s in seen.items()})
    # The data crossed n2's 50 ms link once: to n2, or from n2 as the primary.
    for n in ([n for n in NODES if n != p] if p == "n2" else ["n2"]):
        assert seen[n] >= 0.045, seen


def test_failed_up_shows_the_log_and_cleans_up(cluster, tmp_path):
    fake = tmp_path / "fake-ltxfs"
    fake.write_text("#!/bin/sh\necho 'fake ltxfs: refusing to start' >&2\nexit 1\n")
    fake.chmod(0o755)
    cluster.env["LTXFS_BIN"] = str(fake)
    cp = cluster.run("up", check=False)
    assert cp.returncode != 0, H.describe_run(cp)
    assert "exited before mounting" in cp.stderr, cp.stderr
    assert "fake ltxfs: refusing to start" in cp.stderr, cp.stderr   # the log's tail
    assert "stopping what it started" in cp.stderr, cp.stderr
    # It had got as far as Consul and the nodes, and stopped them.
    assert "Consul agent running" in H.file_tail(os.path.join(cluster.dir, "consul", "consul.log"))
    assert cluster.leftovers() == {}, cluster.leftovers()
