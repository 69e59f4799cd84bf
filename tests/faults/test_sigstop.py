"""test_sigstop.py - a primary frozen with SIGSTOP (a VM paused, a process
swapped out, a debugger) on Consul and etcd.

The lease runs out while it is frozen and another candidate takes over.
A write that the frozen node received meanwhile must not be acknowledged
when it thaws (its lease deadline has passed: every write is checked
against it), the thawed node must follow the new primary, and every write
a client saw acknowledged, before the freeze on the old primary and after
it on the new one, is on every node at the end.
"""

import signal
import threading
import time

import pytest

import cluster as C
import ltxfs_helpers as H
from test_failover import coord, setup_cluster, try_write, wait_primary, wait_writable  # noqa: F401

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


def count(node):
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % node.path("a.db"), uri=True, timeout=30)
    try:
        return set(r[0] for r in con.execute("SELECT v FROM t"))
    finally:
        con.close()


@pytest.mark.deadline(180)
def test_frozen_primary_is_replaced_and_fenced(node_factory, coord):  # noqa: F811
    key, nodes, p, others = setup_cluster(node_factory, coord)
    acked = set()
    for i in range(50):
        assert try_write(p, "before-%d" % i) == 1
        acked.add("before-%d" % i)
    C.wait_converged(p, others, ["a.db"])

    p.proc.send_signal(signal.SIGSTOP)
    try:
        frozen_result = []
        t = threading.Thread(target=lambda: frozen_result.append(
            try_write(p, "during-freeze", busy_timeout=30)), daemon=True)
        t.start()
        winner, took = wait_writable(others, "after-0", timeout=60)
        acked.add("after-0")
        for i in range(1, 20):
            assert try_write(winner, "after-%d" % i) == 1
            acked.add("after-%d" % i)
    finally:
        p.proc.send_signal(signal.SIGCONT)
    t.join(60)
    assert frozen_result == [0], "the thawed primary acknowledged a write it received " \
        "after its lease ran out"
    assert wait_primary(nodes, timeout=30) is winner
    C.wait_converged(winner, [n for n in nodes if n is not winner], ["a.db"], timeout=60)
    for n in nodes:
        have = count(n)
        assert acked <= have, "%s lacks acknowledged writes: %s" % (n.name, sorted(acked - have)[:5])
        assert "during-freeze" not in have
    C.assert_identical(winner, [n for n in nodes if n is not winner], ["a.db"])
