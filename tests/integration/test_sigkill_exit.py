"""test_sigkill_exit.py - a daemon killed with SIGKILL exits at once.

A WAL-mode replica keeps its databases' -shm open through its own mount
(db/replica_wal.h).  When the daemon is killed, the kernel closes its
descriptors in ascending order; closing a file of the mount sends FLUSH to
the FUSE server, the dead daemon itself.  If that descriptor's number was
below the FUSE device's, the device was still open, the connection was not
aborted, and the exit waited for an answer forever: the process stayed in
state D with its mount and its HTTP port, so the node could not restart
until an operator ran `umount -f` (seen in `make bench-failover`).

The checker: after applying to many databases while the handle cache
closes descriptors (leaving low numbers free), every descriptor the daemon
holds on its own mount is numbered above the device's; and SIGKILL of the
replica ends the process within 10 s, with no unmount helping it.
"""

import os
import signal
import sqlite3
import time

import cluster as C
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


def fds(pid):
    """{fd number: target} of process pid."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


def test_a_killed_wal_replica_exits_at_once(node_factory):
    p, (r,) = C.make_cluster(node_factory, replicas=1, start=False)
    r.data_config += "  max-open-files: 4\n"     # descriptors closed: holes below
    p.start()
    r.start()
    names = ["d%02d.db" % i for i in range(12)]
    for i, name in enumerate(names):
        c = sqlite3.connect(p.path(name), isolation_level=None)
        c.execute("PRAGMA journal_mode=wal")
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (?)", (i,))
        c.close()
        C.wait_converged(p, [r], [name])
        # a reader on the replica: its -shm in use, the applier's through the mount
        rc = sqlite3.connect(r.path(name))
        assert rc.execute("SELECT x FROM t").fetchone() == (i,)
        rc.close()
    for i, name in enumerate(names):            # applied again: shm opened again
        c = sqlite3.connect(p.path(name), isolation_level=None)
        c.execute("INSERT INTO t VALUES (?)", (i + 100,))
        c.close()
    C.wait_converged(p, [r], names)
    pid = r.pid()
    table = fds(pid)
    dev = [n for n, t in table.items() if t == "/dev/fuse"]
    own = {n: t for n, t in table.items() if t.startswith(r.mnt + "/")}
    assert len(dev) == 1, table
    assert own, "the replica holds no file of its own mount: %s" % table
    assert all(n > dev[0] for n in own), (
        "descriptors on the daemon's own mount below the FUSE device (%d): %s"
        % (dev[0], {n: t for n, t in own.items() if n < dev[0]}))
    # the symptom itself: SIGKILL, and no umount to help it
    r.expect_down = True
    os.killpg(r.proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while r.proc.poll() is None:
        assert time.monotonic() < deadline, (
            "the killed replica did not exit in 10 s (state %s)"
            % open("/proc/%d/stat" % pid).read().split()[2])
        time.sleep(0.05)
    r.exit_status = r.proc.returncode
