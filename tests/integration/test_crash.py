"""test_crash.py - the daemon killed (SIGKILL) at random moments, and crash
recovery at start.

test_sigkill_during_write_loop: a writer process inserts sequential integers
(mostly one per autocommit transaction, sometimes a batch in one explicit
transaction) and prints the highest committed one after each COMMIT
returns.  The daemon is SIGKILLed at a random moment; the writer fails and
stops; the stale mount is cleaned and the daemon restarted.  Then: PRAGMA
integrity_check is ok; the table holds exactly 1..M with M >= the last
integer the writer saw committed (and at most one transaction more); NAME-pos
equals the last line of `ltxfs log list`; `log verify` is ok and the replay
is byte-identical.  LTXFS_CRASH_ITERATIONS kills per mode (default 20 for
WAL+synchronous=NORMAL, the mode where ltxfs itself avoids fsyncs, and 20
for DELETE+FULL: 40 kills in all, twice the 20 the acceptance asks for).
The random seed is printed in every failure message (LTXFS_CRASH_SEED
replays it).

The other tests produce specific crash states deterministically: a
transaction open (with pages spilled to the database file or uncommitted
frames in the WAL) when the daemon or the client dies; committed WAL frames
the log does not have yet; a hot journal; a database file that lost the
newest transactions (they are re-applied from the log).
"""

import os
import random
import shutil
import subprocess
import threading
import time

import pytest

import ltxfs_helpers as H

ITERATIONS = int(os.environ.get("LTXFS_CRASH_ITERATIONS", "20"))
SEED = int(os.environ.get("LTXFS_CRASH_SEED", str(int(time.time()))))
MAX_BATCH = 30   # itest_client.py crash-writer's largest transaction


def create_table(node, name, mode):
    con = H.connect(node.path(name), mode)
    con.execute("CREATE TABLE t(n INTEGER PRIMARY KEY, pad BLOB)")
    con.close()


class Writer:
    """A crash-writer process and a thread collecting its output lines."""

    def __init__(self, spawn, db, first, sync):
        self.proc = spawn([H.PYTHON, H.CLIENT, "crash-writer", db, str(first), sync],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.first_commit = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith("c "):
                self.first_commit.set()

    def finish(self, timeout=30):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the writer did not stop within %d s after the "
                                 "daemon was killed" % timeout)
        self.thread.join(10)
        self.stderr = self.proc.stderr.read().decode("utf-8", "replace")

    def committed(self):
        c = [int(x[2:]) for x in self.lines if x.startswith("c ")]
        return max(c) if c else None

    def error(self):
        e = [x for x in self.lines if x.startswith("e ")]
        return e[-1] if e else "(no error line; exit status %s; stderr %s)" % (
            self.proc.returncode, self.stderr[-300:])


def check_after_restart(node, name, committed, ctx, replay=True):
    """The checks after every restart; returns the highest integer present."""
    con = H.connect(node.path(name))
    try:
        ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
        ns = [r[0] for r in con.execute("SELECT n FROM t ORDER BY n")]
    finally:
        con.close()
    assert ic == ["ok"], "%s: integrity_check: %s" % (ctx, ic[:10])
    top = ns[-1] if ns else 0
    if ns != list(range(1, top + 1)):
        missing = sorted(set(range(1, top + 1)) - set(ns))
        raise AssertionError("%s: rows are not 1..%d: %d missing, first %s"
                             % (ctx, top, len(missing), missing[:10]))
    assert top >= committed, ("%s: the writer saw %d committed but the database "
                              "ends at %d" % (ctx, committed, top))
    assert top <= committed + MAX_BATCH, (
        "%s: %d rows beyond the last one the writer saw committed (%d)"
        % (ctx, top - committed, committed))
    ents = node.log_list(name)
    assert node.pos(name) == (ents[-1].txid, ents[-1].post), (
        "%s: %s-pos %r != last log entry %r" % (ctx, name, node.pos(name), ents[-1]))
    if replay:
        node.check_replay(name)
    return top


@pytest.mark.deadline(600 + ITERATIONS * 20)
@pytest.mark.parametrize("mode,sync", [("wal", "NORMAL"), ("delete", "FULL")])
def test_sigkill_during_write_loop(node, spawn, mode, sync):
    name = "crash.db"
    create_table(node, name, mode)
    rnd = random.Random(SEED)
    top = 0
    for it in range(ITERATIONS):
        w = Writer(spawn, node.path(name), top + 1, sync)
        if not w.first_commit.wait(20):
            w.proc.kill()
            w.finish()
            raise AssertionError("iteration %d: the writer committed nothing in 20 s: "
                                 "%s %s" % (it, w.lines[-3:], w.stderr[-2000:]))
        delay = rnd.uniform(0.0, 0.5)
        time.sleep(delay)
        node.kill()
        w.finish()
        committed = w.committed()
        ctx = ("iteration %d of %d, mode %s, seed %d: daemon killed %.3f s after the "
               "first commit; writer saw up to %d committed, then %s"
               % (it + 1, ITERATIONS, mode, SEED, delay, committed, w.error()))
        node.clean_stale_mount()
        try:
            node.start()
        except H.DaemonError as e:
            raise AssertionError("%s\nrestart failed: %s" % (ctx, e))
        top = check_after_restart(node, name, committed, ctx,
                                  replay=(it % 4 == 3 or it == ITERATIONS - 1))
    node.check_replay(name)


@pytest.mark.parametrize("mode", ["delete", "persist", "wal"])
def test_daemon_killed_with_transaction_open(node, spawn, mode):
    """The client has spilled dirty pages (database file or WAL) of an open
    transaction when the daemon dies: after restart the transaction is gone."""
    name = "open.db"
    create_table(node, name, mode)
    con = H.connect(node.path(name), mode)
    con.executemany("INSERT INTO t(n, pad) VALUES (?, randomblob(300))",
                    [(i,) for i in range(1, 201)])
    con.close()
    pos = node.pos(name)
    p = spawn([H.PYTHON, H.CLIENT, "hold-txn", node.path(name), "5", mode],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()
    assert line == "ready", (line, p.stderr.read().decode()[-2000:] if p.poll() is not None else "")
    if mode == "wal":
        assert os.path.getsize(node.backing(name, "database-wal")) > 100000
    else:
        assert os.path.exists(node.backing(name, "database-journal"))
    node.kill()
    p.kill()
    p.wait(30)
    node.clean_stale_mount()
    node.start()
    assert node.pos(name) == pos
    check_after_restart(node, name, 200, "transaction open at kill")


@pytest.mark.parametrize("mode", ["delete", "truncate", "persist", "wal"])
def test_client_killed_with_transaction_open(node, spawn, mode):
    """A client dies with a hot journal (or uncommitted WAL frames): the next
    client rolls it back through the mount; no TXID is added."""
    name = "cl.db"
    create_table(node, name, mode)
    con = H.connect(node.path(name), mode)
    con.executemany("INSERT INTO t(n, pad) VALUES (?, randomblob(300))",
                    [(i,) for i in range(1, 101)])
    con.close()
    pos = node.pos(name)
    p = spawn([H.PYTHON, H.CLIENT, "spill-and-vanish", node.path(name), mode],
              stderr=subprocess.PIPE)
    assert p.wait(60) == 0, p.stderr.read().decode()[-2000:]
    check_after_restart(node, name, 100, "client killed mid-transaction")
    assert node.pos(name) == pos
    node.restart()
    assert node.pos(name) == pos
    check_after_restart(node, name, 100, "client killed mid-transaction, restarted")


def test_recovery_captures_committed_wal_frames(node, spawn):
    """Committed WAL frames the log does not have (the daemon died after the
    commit frame reached the WAL, before it was logged) are captured at start.
    Produced by committing directly on the backing files while stopped."""
    name = "wf.db"
    create_table(node, name, "wal")
    con = H.connect(node.path(name))
    con.executemany("INSERT INTO t(n, pad) VALUES (?, randomblob(500))",
                    [(i,) for i in range(1, 51)])
    con.close()
    before = node.last_txid(name)
    node.stop()
    p = spawn([H.PYTHON, H.CLIENT, "commit-and-vanish", node.backing(name), "5"],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out.decode().strip() == "55", (out, err)
    assert os.path.getsize(node.backing(name, "database-wal")) > 0
    node.start()
    new = [e for e in node.log_list(name) if e.txid > before]
    assert 1 <= len(new) <= 5, new
    check_after_restart(node, name, 55, "committed WAL frames beyond the log")


@pytest.mark.parametrize("mode", ["delete", "persist"])
def test_recovery_rolls_back_hot_journal(node, spawn, mode):
    """A hot journal in the data directory at start (produced by a client
    dying mid-transaction on the backing files while stopped) is rolled back;
    the database is at the log's position."""
    name = "hj.db"
    create_table(node, name, mode)
    con = H.connect(node.path(name), mode)
    con.executemany("INSERT INTO t(n, pad) VALUES (?, randomblob(500))",
                    [(i,) for i in range(1, 101)])
    con.close()
    pos = node.pos(name)
    node.stop()
    p = spawn([H.PYTHON, H.CLIENT, "spill-and-vanish", node.backing(name), mode],
              stderr=subprocess.PIPE)
    assert p.wait(60) == 0, p.stderr.read().decode()
    assert os.path.getsize(node.backing(name, "database-journal")) > 0
    node.start()
    assert node.pos(name) == pos
    check_after_restart(node, name, 100, "hot journal at start")


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_recovery_reapplies_logged_transactions(node, mode):
    """The database file lost its newest transactions (an older copy is put
    back while stopped): they are re-applied from the log at start."""
    name = "ra.db"
    create_table(node, name, mode)
    con = H.connect(node.path(name))
    con.executemany("INSERT INTO t(n, pad) VALUES (?, randomblob(700))",
                    [(i,) for i in range(1, 101)])
    con.close()
    node.stop()
    old = os.path.join(node.workdir, "old-database")
    shutil.copyfile(node.backing(name), old)
    node.start()
    con = H.connect(node.path(name))
    for i in range(101, 131):
        con.execute("INSERT INTO t(n, pad) VALUES (?, randomblob(700))", (i,))
    con.close()
    pos = node.pos(name)
    node.stop()
    shutil.copyfile(old, node.backing(name))
    node.start()
    assert node.pos(name) == pos
    check_after_restart(node, name, 130, "older database file at start")
