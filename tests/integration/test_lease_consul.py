"""test_lease_consul.py - lease/consul.h against a real Consul agent.

Each test drives one or two clients through tests/integration/lease_driver.c
and checks the facts the failover design relies on (docs/lease.md): one
holder at a time, the epoch grows at every acquisition, release frees the
key at once while a lost session leaves it blocked for the lock-delay, a
session that is not renewed expires, blocking reads return as soon as the
key changes, and an unreachable Consul is an error that names the URL.
"""

import itertools
import os
import subprocess
import time

import pytest

from consul_server import ConsulServer
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

_keys = itertools.count()


def driver_path():
    return os.path.join(os.environ.get("LTXFS_TEST_BINS", "build/tests"), "lease_driver")


class Client:
    """One lease_driver process: one Consul client with its own session."""

    def __init__(self, url, key, ttl_ms=2000, lock_delay_ms=1000, token=""):
        self.p = subprocess.Popen([driver_path()], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.ask("open %s %s %d %d %s" % (url, key, ttl_ms, lock_delay_ms, token))

    def ask(self, line, ok=True):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().strip()
        if ok:
            assert reply.startswith("ok"), "%s -> %s" % (line, reply)
        return reply.split(" ")[1:] if ok else reply

    def acquire(self, value='{"hostname":"h","advertise-url":"http://h"}'):
        got = self.ask("acquire " + value)
        return (int(got[0]), int(got[1]))

    def get(self, index=0, wait_ms=0):
        return self.ask("get %d %d" % (index, wait_ms))

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


@pytest.fixture(scope="module")
def consul_agent(tmp_path_factory):
    with ConsulServer(str(tmp_path_factory.mktemp("consul"))) as c:
        yield c


@pytest.fixture
def clients(consul_agent):
    made = []
    key = "ltxfs-test/%d/primary" % next(_keys)

    def make(**kw):
        c = Client(consul_agent.url, key, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.ask("destroy", ok=False)
        c.close()


def test_one_holder_and_growing_epochs(clients, consul_agent):
    a, b = clients(), clients()
    sid_a = a.ask("create")[0]
    b.ask("create")
    ok, epoch1 = a.acquire('{"hostname":"a","advertise-url":"http://a:1"}')
    assert ok == 1 and epoch1 > 0
    assert b.acquire()[0] == 0                       # held by a
    index, state, modify, _lock, session, value = a.get()
    assert state == "present" and session == sid_a and int(modify) == epoch1
    assert value == '{"hostname":"a","advertise-url":"http://a:1"}'
    assert a.ask("release") == ["1"]
    assert a.ask("release") == ["0"]                 # not held any more
    ok, epoch2 = b.acquire()                         # no lock-delay after release
    assert ok == 1 and epoch2 > epoch1


def test_lost_session_leaves_lock_delay(clients):
    a, b = clients(lock_delay_ms=2000), clients()
    a.ask("create")
    b.ask("create")
    assert a.acquire()[0] == 1
    a.ask("destroy")                                 # as if it had expired
    assert b.get()[1] == "absent"                    # Behavior delete
    t0 = time.monotonic()
    assert b.acquire()[0] == 0                       # lock-delay
    while b.acquire()[0] == 0:
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)
    assert 1.0 < time.monotonic() - t0 < 4.0


def test_session_expires_without_renewal(clients):
    a = clients(ttl_ms=1000)
    a.ask("create")
    assert a.acquire()[0] == 1
    for _ in range(8):                               # renewed: alive after 4 s
        time.sleep(0.5)
        a.ask("renew")
    assert a.get()[1] == "present"
    t0 = time.monotonic()
    while a.get()[1] == "present":                   # Consul: within about 2 x TTL
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)
    reply = a.ask("renew", ok=False)
    assert reply.startswith("err ENOENT"), reply


def test_blocking_read_returns_on_change(clients):
    a, b = clients(), clients()
    a.ask("create")
    b.ask("create")
    index = int(b.get()[0])
    t0 = time.monotonic()
    assert b.get(index, 600)[0] == str(index)       # nothing changed: about the wait
    assert 0.5 < time.monotonic() - t0 < 3
    b.p.stdin.write("get %d %d\n" % (index, 20000))
    b.p.stdin.flush()
    time.sleep(0.3)
    t1 = time.monotonic()
    assert a.acquire()[0] == 1
    reply = b.p.stdout.readline().split()
    assert reply[0] == "ok" and int(reply[1]) > index and reply[2] == "present"
    assert time.monotonic() - t1 < 1.0, "the blocking read was not woken by the change"


def test_check_and_set(clients):
    a = clients()
    key = "ltxfs-test/cas-%d" % next(_keys)
    assert a.ask("cas %s 0 LTXC0123456789ABCDEF" % key) == ["1"]
    assert a.ask("cas %s 0 LTXC1111111111111111" % key) == ["0"]   # exists already


def test_unreachable_consul_names_the_url(tmp_path):
    c = Client("http://127.0.0.1:1", "k")
    reply = c.ask("create", ok=False)
    assert reply.startswith("err EAGAIN") and "http://127.0.0.1:1" in reply, reply
    assert "is the service running there" in reply, reply
    c.close()


def test_acl_token_is_sent_and_a_refusal_names_the_token(tmp_path):
    """Consul with ACLs on (default deny): without lease.consul.token the
    session is refused with an error that says what to check; with the
    token the client holds the lease."""
    token = "ltxfs-test-master-token"
    with ConsulServer(str(tmp_path), acl_token=token) as agent:
        key = "ltxfs-test/acl/primary"
        anonymous = Client(agent.url, key)
        reply = anonymous.ask("create", ok=False)
        assert reply.startswith("err EACCES") and "lease.consul token" in reply, reply
        anonymous.close()
        c = Client(agent.url, key, token=token)
        c.ask("create")
        ok, epoch = c.acquire()
        assert ok == 1 and epoch > 0
        assert agent.kv_get(key)["Session"]
        c.ask("destroy")
        c.close()
