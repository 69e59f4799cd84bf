"""test_failover.py - failover with a real Consul agent and a real etcd.

Every test runs on both lease backends (the `coord` fixture).  Three
candidate nodes share one lease key.  Exactly one becomes primary;
the others follow it.  A primary stopped with SIGTERM fences itself,
releases the lease and another node accepts writes within 2 s; a primary
killed with SIGKILL is replaced about one TTL after its death (Consul: a
candidate breaks the dead primary's session behind a fence; etcd expires
leases at their TTL).  The old primary rejoins as a
replica and converges to the new primary's history.
"""

import itertools
import json
import os
import signal
import subprocess
import threading
import sqlite3
import time
import urllib.request

import pytest

import cluster as C
from consul_server import ConsulServer
from etcd_server import EtcdServer
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

TTL = "2s"
LOCK_DELAY = "1s"
_keys = itertools.count()


BACKENDS = ["consul", "etcd"]
SIGKILL_BOUND = {"consul": 2 * 2 + 1 + 2, "etcd": 2 * 2 + 2}


def lease_server(kind, work_dir, host="127.0.0.1"):
    """A Consul agent or an etcd member; `with` starts and stops it."""
    server = ConsulServer(work_dir, host=host) if kind == "consul" else EtcdServer(work_dir, host)
    server.kind = kind
    return server


@pytest.fixture(scope="module", params=BACKENDS)
def coord(request, tmp_path_factory):
    with lease_server(request.param, str(tmp_path_factory.mktemp(request.param))) as c:
        yield c


def lease_yaml(server, key, port, name, candidate=True, host="127.0.0.1", ttl=TTL):
    """The lease section of a node on `server`'s backend."""
    if server.kind == "consul":
        backend = ("  consul:\n    url: \"%s\"\n    key: %s\n    ttl: %s\n    lock-delay: %s\n"
                   % (server.url, key, ttl, LOCK_DELAY))
    else:
        backend = "  etcd:\n    url: \"%s\"\n    key: %s\n    ttl: %s\n" % (server.url, key, ttl)
    return ("lease:\n  type: %s\n  candidate: %s\n  hostname: %s\n"
            "  advertise-url: \"http://%s:%d\"\n%s"
            % (server.kind, "true" if candidate else "false", name, host, port, backend))


def held(server, key):
    """Whether some node holds the lease key."""
    entry = server.kv_get(key)
    if server.kind == "consul":
        return entry is not None and bool(entry.get("Session"))
    return entry is not None and entry["lease"] != 0


def make_nodes(node_factory, coord, n=3, candidates=None, ttl=TTL):
    key = "ltxfs-test/failover-%d/primary" % next(_keys)
    nodes = []
    for i in range(n):
        node = node_factory("node%d" % (i + 1))
        node.port = C.H.free_port()
        node.locks = "ltxfs"
        cand = candidates is None or i in candidates
        node.lease_text = lease_yaml(coord, key, node.port, node.name, cand, ttl=ttl)
        nodes.append(node)
    return key, nodes


def roles(nodes):
    out = {}
    for n in nodes:
        if n.running():
            try:
                out[n.name] = C.status(n, timeout=2)["role"]
            except OSError:
                out[n.name] = "down"
    return out


def wait_primary(nodes, timeout=30, exclude=()):
    """The one node that is primary, once exactly one is."""
    deadline = time.monotonic() + timeout
    while True:
        live = [n for n in nodes if n.running() and n not in exclude]
        r = roles(live)
        primaries = [n for n in live if r.get(n.name) == "primary"]
        if len(primaries) == 1:
            return primaries[0]
        assert len(primaries) <= 1, "two primaries: %s" % r
        assert time.monotonic() < deadline, "no primary after %d s: %s" % (timeout, r)
        time.sleep(0.05)


def try_write(node, value, busy_timeout=0.5):
    """1 if `node` acknowledged the insert, 0 if it refused it."""
    try:
        c = sqlite3.connect(node.path("a.db"), timeout=busy_timeout, isolation_level=None)
        try:
            c.execute("INSERT INTO t(v) VALUES (?)", (value,))
            return 1
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def wait_writable(nodes, value, timeout):
    """The node that first acknowledges a write, and how long it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for n in nodes:
            if n.running() and try_write(n, value):
                return n, time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("no node accepted a write within %.1f s: %s" % (timeout, roles(nodes)))


def setup_cluster(node_factory, coord, **kw):
    key, nodes = make_nodes(node_factory, coord, **kw)
    for n in nodes:
        n.start()
    p = wait_primary(nodes)
    c = sqlite3.connect(p.path("a.db"), timeout=10, isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    c.close()
    others = [n for n in nodes if n is not p]
    C.wait_converged(p, others, ["a.db"])
    return key, nodes, p, others


@pytest.mark.deadline(120)
def test_one_primary_others_follow(node_factory, coord):
    key, nodes, p, others = setup_cluster(node_factory, coord)
    assert held(coord, key)
    for i in range(20):
        assert try_write(p, "w%d" % i) == 1
    for n in others:
        assert try_write(n, "nope") == 0, "a replica accepted a write"
        st = C.status(n)
        assert st["role"] == "replica" and st["primary"] == p.name, st
        assert st["epoch"] == C.status(p)["epoch"] > 0
    C.wait_converged(p, others, ["a.db"])
    C.assert_identical(p, others, ["a.db"])
    # the primary renews (every TTL/3) and says how long a renewal takes
    deadline = time.monotonic() + 10
    while C.metrics(p)["ltxfs_lease_renews_total"] < 1:
        assert time.monotonic() < deadline, "no lease renewal in 10 s"
        time.sleep(0.1)
    m = C.metrics(p)
    assert 0 <= m["ltxfs_lease_renew_seconds"] < 1.0, m
    assert m["ltxfs_lease_epoch"] == C.status(p)["epoch"]
    assert all(C.metrics(n)["ltxfs_lease_renews_total"] == 0 for n in others)


@pytest.mark.deadline(120)
def test_sigterm_hands_over_within_2s(node_factory, coord):
    key, nodes, p, others = setup_cluster(node_factory, coord)
    assert try_write(p, "before") == 1
    C.wait_converged(p, others, ["a.db"])
    epoch = C.status(p)["epoch"]
    events = urllib.request.urlopen("http://127.0.0.1:%d/events" % others[0].port, timeout=30)
    t0 = time.monotonic()
    p.stop(sig=signal.SIGTERM)
    winner, took = wait_writable(others, "after", timeout=10)
    took = time.monotonic() - t0
    print("SIGTERM hand-over: a new primary accepted a write after %.3f s" % took)
    assert took < 2.0, took
    assert C.status(winner)["epoch"] > epoch
    # GET /events on a replica told of the new primary
    with events:
        line = json.loads(events.readline())
        assert line["type"] == "node" and line["primary"] == p.name, line
        while not (line["type"] == "role" and line["primary"] == winner.name):
            line = json.loads(events.readline())
        assert line["epoch"] > epoch
    rest = [n for n in others if n is not winner]
    C.wait_converged(winner, rest, ["a.db"])
    # The old primary rejoins as a replica and gets the new history.
    p.start()
    C.wait_converged(winner, rest + [p], ["a.db"])
    assert C.status(p)["role"] == "replica"
    C.assert_identical(winner, rest + [p], ["a.db"])


@pytest.mark.deadline(120)
def test_sigkill_fails_over_after_the_session_expires(node_factory, coord):
    key, nodes, p, others = setup_cluster(node_factory, coord)
    assert try_write(p, "before") == 1
    C.wait_converged(p, others, ["a.db"])
    t0 = time.monotonic()
    p.kill()
    winner, _ = wait_writable(others, "after", timeout=30)
    took = time.monotonic() - t0
    bound = SIGKILL_BOUND[coord.kind]
    print("SIGKILL failover: a new primary accepted a write after %.3f s (bound %d s)"
          % (took, bound))
    assert took < bound, took
    rest = [n for n in others if n is not winner]
    C.wait_converged(winner, rest, ["a.db"])
    p.start()
    C.wait_converged(winner, rest + [p], ["a.db"])
    C.assert_identical(winner, rest + [p], ["a.db"])


@pytest.mark.deadline(120)
def test_a_dead_primary_is_replaced_within_one_ttl(node_factory, coord):
    """A primary whose process is gone (its address refuses connections) is
    replaced about one TTL after its death, not after Consul's up to two:
    a candidate breaks its lease behind a fence that keeps every node from
    acquiring before the dead primary's write deadline.  TTL 6 s: Consul
    alone took 2 x TTL + lock-delay (13 s); the bound is TTL + lock-delay +
    2 s (9 s).  etcd expires at one TTL by itself."""
    ttl = 6
    key, nodes, p, others = setup_cluster(node_factory, coord, ttl="%ds" % ttl)
    assert try_write(p, "before") == 1
    C.wait_converged(p, others, ["a.db"])
    t0 = time.monotonic()
    p.kill()
    winner, _ = wait_writable(others, "after", timeout=60)
    took = time.monotonic() - t0
    print("SIGKILL failover, TTL %d s, %s: a new primary accepted a write after %.3f s"
          % (ttl, coord.kind, took))
    # never before the dead primary's write deadline: at least TTL minus
    # its renew period (TTL/3) after its last renew, which preceded the kill
    assert took > ttl - ttl / 3.0 - 0.5, took
    assert took < ttl + 1 + 2, took
    if coord.kind == "consul":
        assert any("lease is broken" in n.log_text() for n in others)
    p.start()
    C.wait_converged(winner, nodes, ["a.db"])


@pytest.mark.deadline(120)
def test_only_candidates_become_primary(node_factory, coord):
    key, nodes, p, others = setup_cluster(node_factory, coord, candidates=(1,))
    assert p.name == "node2"
    p.stop(sig=signal.SIGTERM)
    time.sleep(3)                   # longer than it takes a candidate to take over
    assert all(r == "replica" for r in roles(others).values()), roles(others)
    assert not held(coord, key)


@pytest.mark.deadline(120)
@pytest.mark.parametrize("kind", BACKENDS)
def test_primary_cut_off_from_the_lease_service_stops_writing(node_factory, tmp_path, kind):
    """The lease service stops answering: the primary cannot renew, and
    refuses writes from TTL - margin after its last successful renew on,
    while nobody else can have acquired (the service is down); then it
    comes back (Consul's dev agent empty, etcd with its data) and the nodes
    elect a primary again."""
    os.makedirs(str(tmp_path / kind))
    with lease_server(kind, str(tmp_path / kind)) as agent:
        key, nodes, p, others = setup_cluster(node_factory, agent)
        assert try_write(p, "before") == 1
        t_stop = time.monotonic()
        agent.stop()
        last_ok = t_stop
        while try_write(p, "during"):
            last_ok = time.monotonic()
            assert last_ok - t_stop < 5, "still writing 5 s after Consul went away"
            time.sleep(0.02)
        refused_after = time.monotonic() - t_stop
        print("%s stopped: writes refused after %.3f s (TTL 2 s)" % (kind, refused_after))
        # TTL - margin after the last renew, which was at most TTL/3 before.
        assert refused_after <= 2.0 - 0.2 + 0.3, refused_after
        for n in others:
            assert try_write(n, "nope") == 0
        assert "lost the lease" in p.log_text() or "renew failed" in p.log_text()
        # Each refused write used to log a warning of its own.
        for i in range(10):
            assert try_write(p, "refused") == 0
        assert p.log_text().count("may not change") == 0
        agent.start()
        winner = wait_primary(nodes, timeout=30)
        assert try_write(winner, "after") == 1


def promote(node):
    return subprocess.run([C.H.binary(), "promote", "-url", "http://127.0.0.1:%d" % node.port],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.deadline(300)
def test_handoffs_under_writes_lose_nothing(node_factory, coord):
    """20 hand-offs (ltxfs promote) while a client keeps writing to whichever
    node accepts: every acknowledged write is on the final primary and every
    replica; writes are unavailable well under a second per hand-off."""
    key, nodes, p, others = setup_cluster(node_factory, coord)
    acked = []                      # (value, node name, time)
    stop = threading.Event()

    def writer():
        i, last = 0, 0
        while not stop.is_set():
            for k in range(len(nodes)):
                n = nodes[(last + k) % len(nodes)]
                if try_write(n, "h%d" % i, busy_timeout=0.05):
                    acked.append(("h%d" % i, n.name, time.monotonic()))
                    i, last = i + 1, (last + k) % len(nodes)
                    break
            else:
                time.sleep(0.002)
    t = threading.Thread(target=writer)
    t.start()
    gaps = []
    try:
        primary = p
        for round_ in range(20):
            target = [n for n in nodes if n is not primary][round_ % 2]
            C.wait_converged(primary, [target], ["a.db"])
            t0 = time.monotonic()
            r = promote(target)
            assert r.returncode == 0, r.stderr
            assert C.status(target)["role"] == "primary"
            # From the last write acknowledged before the new primary's first
            # one to that one (the old primary acknowledges writes until it
            # is fenced, after t0).  Waited for, not slept: a loaded machine
            # delays the writer thread, not the hand-off.
            deadline = time.monotonic() + 10
            while True:
                v = list(acked)
                first = next((i for i, a in enumerate(v)
                              if a[2] > t0 and a[1] != primary.name), None)
                if first is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            assert first is not None, "no write acknowledged after hand-off %d" % round_
            gaps.append(v[first][2] - (v[first - 1][2] if first > 0 else t0))
            primary = target
    finally:
        stop.set()
        t.join(timeout=30)
    gaps.sort()
    print("hand-off write unavailability over %d hand-offs: p50 %.3f s, max %.3f s"
          % (len(gaps), gaps[len(gaps) // 2], gaps[-1]))
    final = wait_primary(nodes)
    rest = [n for n in nodes if n is not final]
    C.wait_converged(final, rest, ["a.db"])
    c = sqlite3.connect("file:%s?mode=ro" % final.path("a.db"), uri=True)
    have = {v for (v,) in c.execute("SELECT v FROM t")}
    c.close()
    lost = [a for a in acked if a[0] not in have]
    runs = []
    for v, n, _ in acked:
        if not runs or runs[-1][0] != n:
            runs.append([n, v, v, 0])
        runs[-1][2] = v
        runs[-1][3] += 1
    assert not lost, "acknowledged writes lost: %s; runs %s" % (lost[:3], runs)
    assert len(acked) > 40, len(acked)   # every term took writes (first, above)
    C.assert_identical(final, rest, ["a.db"])
    assert gaps[-1] < 1.0, gaps


@pytest.mark.deadline(120)
def test_two_clusters_cannot_share_a_lease_key(node_factory, coord):
    """The primary stores its cluster ID next to the lease key; a node whose
    data.dir belongs to another cluster refuses to start on that key, with
    the remedy; a new, empty node adopts the key's cluster."""
    key, nodes, p, others = setup_cluster(node_factory, coord)
    ours = C.status(p)["cluster_id"]
    stranger = node_factory("stranger")
    stranger.port = C.H.free_port()
    stranger.locks = "ltxfs"
    stranger.lease_text = lease_yaml(coord, key + "-elsewhere", stranger.port, "stranger")
    stranger.start()
    wait_primary([stranger])                      # its own cluster, on its own key
    theirs = C.status(stranger)["cluster_id"]
    assert theirs and theirs != ours
    stranger.stop()
    stranger.lease_text = lease_yaml(coord, key, stranger.port, "stranger")
    stranger.write_config()
    status, log = stranger.start_expect_exit()
    assert status is not None and status != 0, log
    assert "belongs to cluster %s" % ours in log and "lease key of its own" in log, log

    newcomer = node_factory("newcomer")
    newcomer.port = C.H.free_port()
    newcomer.locks = "ltxfs"
    newcomer.lease_text = lease_yaml(coord, key, newcomer.port, "newcomer")
    newcomer.start()
    assert C.status(newcomer)["cluster_id"] == ours
    C.wait_converged(p, [newcomer], ["a.db"])


@pytest.mark.deadline(180)
def test_if_candidate_migration_takes_the_primary_role_with_promote(node_factory, coord):
    """A rolling deploy: a restarted candidate runs its migration where
    writes are allowed.  With promote: true it first takes the primary role
    by a hand-off, then migrates, then starts the application; without it,
    a candidate replica skips the migration and says why."""
    key, nodes, p, others = setup_cluster(node_factory, coord)
    r1, r2 = others
    migrate = ("sqlite3 -cmd '.timeout 5000' %s \"INSERT INTO t(v) VALUES('migrated by %s')\""
               % (r1.path("a.db"), r1.name))
    r1.stop()
    r1.extra_config = ("exec:\n  - cmd: %s\n    if-candidate: true\n    promote: true\n"
                       "  - \"sleep 600\"\n" % H.yaml_quote(migrate))
    r1.start()
    deadline = time.monotonic() + 30
    while C.status(r1)["role"] != "primary" or not H.os.path.exists(r1.path("a.db")):
        assert time.monotonic() < deadline, r1.log_tail()
        time.sleep(0.05)
    assert wait_primary(nodes) is r1
    rows = []
    while not rows:
        c = sqlite3.connect(r1.path("a.db"), timeout=10)
        rows = c.execute("SELECT v FROM t WHERE v LIKE 'migrated%'").fetchall()
        c.close()
        assert time.monotonic() < deadline, r1.log_tail()
        time.sleep(0.05)
    assert rows == [("migrated by %s" % r1.name,)]
    assert "exec[0]: taking the primary role first (promote: true)" in r1.log_text()
    # without promote, a candidate replica skips it
    r2.stop()
    r2.extra_config = ("exec:\n  - cmd: %s\n    if-candidate: true\n  - \"sleep 600\"\n"
                       % H.yaml_quote(migrate.replace(r1.name, r2.name)))
    r2.start()
    deadline = time.monotonic() + 30
    while "exec[1]: started" not in r2.log_text():
        assert time.monotonic() < deadline, r2.log_tail()
        time.sleep(0.05)
    assert "exec[0]: skipped: this candidate is a replica now" in r2.log_text()
    assert C.status(r2)["role"] == "replica"
    C.wait_converged(r1, [p, r2], ["a.db"])
    c = sqlite3.connect(r2.path("a.db"), timeout=10)
    assert c.execute("SELECT count(*) FROM t WHERE v LIKE 'migrated%'").fetchone()[0] == 1
    c.close()


@pytest.mark.deadline(120)
def test_consul_handoff_moves_the_lease_to_the_new_primarys_own_session(node_factory,
                                                                        tmp_path):
    """After a hand-off the lease must not hang on the old primary's Consul
    session: Consul destroys a node's sessions when the node leaves its
    catalog (an agent stopped with leave, a dead server removed by
    autopilot), which would free the key at once, not after the TTL the new
    primary's write deadline counts on.  Destroying the old session, as
    such a departure does, leaves the new primary the primary."""
    with lease_server("consul", str(tmp_path)) as coord:
        key, nodes, p, others = setup_cluster(node_factory, coord)
        old_session = coord.kv_get(key)["Session"]
        target = others[0]
        cp = promote(target)
        assert cp.returncode == 0, cp.stderr
        assert wait_primary(nodes) is target
        entry = coord.kv_get(key)
        assert entry["Session"] != old_session
        sessions = [s["ID"] for s in coord.request("GET", "/v1/session/list")]
        assert old_session not in sessions, "the handed-over session was left behind"
        try:
            coord.request("PUT", "/v1/session/destroy/%s" % old_session)
        except OSError:
            pass
        end = time.monotonic() + 3 * 2 + 1        # past TTL x 2 + lock-delay
        while time.monotonic() < end:
            assert roles(nodes) == {n.name: "primary" if n is target else "replica"
                                    for n in nodes}
            assert try_write(target, "still primary") == 1
            time.sleep(0.2)


@pytest.mark.deadline(120)
def test_a_primary_of_another_cluster_stops_with_a_failure_status(node_factory, tmp_path):
    """A node that finds, once it holds the lease, another cluster's ID next
    to the key writes nothing and stops; it exits non-zero, so systemd
    (Restart=on-failure) and the operator see a failure, not a clean stop."""
    with lease_server("consul", str(tmp_path)) as consul:
        key = "ltxfs-test/foreign-%d/primary" % next(_keys)
        sid = consul.request("PUT", "/v1/session/create",
                             {"TTL": "30s", "Checks": [], "LockDelay": "0s",
                              "Behavior": "delete"})["ID"]
        holder = {"hostname": "elsewhere", "advertise-url": "http://127.0.0.1:1"}
        assert consul.request("PUT", "/v1/kv/%s?acquire=%s" % (key, sid), holder) is True
        node = node_factory("node")
        node.port = C.H.free_port()
        node.locks = "ltxfs"
        node.lease_text = lease_yaml(consul, key, node.port, node.name)
        node.start()                              # a replica: the key is held
        ours = C.status(node)["cluster_id"]
        other = "LTXC" + ("0123456789ABCDEF" if ours[4:] != "0123456789ABCDEF"
                          else "FEDCBA9876543210")
        req = urllib.request.Request(consul.url + "/v1/kv/%s-cluster" % key,
                                     data=other.encode(), method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read().strip() == b"true"
        consul.request("PUT", "/v1/session/destroy/%s" % sid)
        status = node.wait_exit(timeout=30)
        assert status == 1, node.log_tail()
        assert other in node.log_text(), node.log_tail()


@pytest.mark.deadline(120)
def test_silent_members_do_not_keep_a_new_primary_from_catching_up(node_factory, tmp_path):
    """Members that no longer answer (machines gone, a far region) stay
    recorded next to the lease key.  A new primary asks every member for
    its position before its first write, within half the TTL; asked one
    after another, ten silent members used up that time before the member
    that held the newest transactions was asked, and those were lost.
    Asked together, the new primary takes them."""
    import socket
    K = 20
    with lease_server("consul", str(tmp_path)) as consul:
        key, nodes = make_nodes(node_factory, consul, candidates=(0, 1))
        node1, node2, node3 = nodes
        for n in nodes:
            n.start()
        assert wait_primary(nodes) is node1
        c = sqlite3.connect(node1.path("a.db"), timeout=10, isolation_level=None)
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        c.close()
        C.wait_converged(node1, [node2, node3], ["a.db"])
        silent = socket.socket()              # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        try:
            for i in range(10):                # listed before node1..node3
                value = json.dumps({"hostname": "gone%d" % i, "advertise-url":
                                    "http://127.0.0.1:%d" % silent.getsockname()[1]})
                req = urllib.request.Request(consul.url + "/v1/kv/%s-nodes/gone%d" % (key, i),
                                             data=value.encode(), method="PUT")
                urllib.request.urlopen(req, timeout=10).read()
            node2.stop()
            for k in range(K):
                assert try_write(node1, "only-on-1-and-3-%d" % k) == 1
            C.wait_converged(node1, [node3], ["a.db"])
            node1.kill()
            node2.start()
            assert wait_primary([node2, node3], timeout=30) is node2
            assert try_write(node2, "after") == 1
        finally:
            silent.close()
        con = sqlite3.connect("file:%s?mode=ro" % node2.path("a.db"), uri=True)
        rows = {v for (v,) in con.execute("SELECT v FROM t")}
        con.close()
        assert {"only-on-1-and-3-%d" % k for k in range(K)} <= rows, node2.log_tail()
        assert "catch-up: member node3 is %d transactions ahead" % K in node2.log_text()
