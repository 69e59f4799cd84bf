"""test_concurrency.py - 4 writer and 4 reader processes at once.

For LTXFS_STRESS_SECONDS (default 30) per journal mode (WAL and DELETE),
4 writer processes commit transactions of 1-10 tagged rows (sometimes
deleting an older transaction's rows, sometimes rewriting their own) and 4
reader processes run read transactions that check no transaction is ever
partly visible, with PRAGMA integrity_check every 3 s.  Half the clients use
mmap_size > 0; in WAL mode half the writers use synchronous=NORMAL.  Busy
errors are retried; any other error (SQLITE_CORRUPT, SQLITE_IOERR, ...) fails
the test.  Meanwhile `ltxfs log list` runs every second (the inspection
commands may run while the daemon runs) and must see a growing, contiguous
log.

Afterwards: the number of new TXIDs equals the number of COMMITs the writers
saw succeed; every writer's surviving rows are exactly what it committed;
integrity_check is ok; `log verify` is ok and the replay is byte-identical,
also after a clean restart.
"""

import json
import os
import subprocess
import threading
import time

import pytest

import ltxfs_helpers as H

SECONDS = float(os.environ.get("LTXFS_STRESS_SECONDS", "30"))


def _setup(node, name, mode):
    con = H.connect(node.path(name), mode)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, tag INTEGER, n INTEGER, "
                "writer INTEGER, i INTEGER, payload BLOB)")
    con.execute("CREATE INDEX t_tag ON t(tag)")
    con.close()
    return node.last_txid(name)


class LogWatcher(threading.Thread):
    """Runs `ltxfs log list` every second while the clients run."""

    def __init__(self, node, name):
        super().__init__(daemon=True)
        self.node, self.name = node, name
        self.stop_event = threading.Event()
        self.errors = []
        self.runs = 0

    def run(self):
        last = 0
        while not self.stop_event.wait(1.0):
            try:
                ents = self.node.log_list(self.name)
            except Exception as e:  # collected and reported by the test
                self.errors.append("log list: %s" % e)
                continue
            self.runs += 1
            txids = [e.txid for e in ents]
            if txids != list(range(1, len(txids) + 1)):
                self.errors.append("log list not contiguous from 1: %s..." % txids[:20])
            if txids and txids[-1] < last:
                self.errors.append("log went backwards: %d after %d" % (txids[-1], last))
            if txids:
                last = txids[-1]


@pytest.mark.deadline(SECONDS * 3 + 240)
@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_4_writers_4_readers(node, spawn, mode):
    name = "stress.db"
    base = _setup(node, name, mode)
    db = node.path(name)
    procs = []
    for i in range(4):
        sync = ("NORMAL" if i % 2 else "FULL") if mode == "wal" else "FULL"
        procs.append(("writer %d" % i, spawn(
            [H.PYTHON, H.CLIENT, "stress-writer", db, str(i + 1), str(SECONDS),
             sync, str(i % 2)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for i in range(4):
        procs.append(("reader %d" % i, spawn(
            [H.PYTHON, H.CLIENT, "stress-reader", db, str(i + 1), str(SECONDS),
             str(i % 2)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    watcher = LogWatcher(node, name)
    watcher.start()

    results, failures = [], []
    deadline = time.monotonic() + SECONDS + 120
    for label, p in procs:
        try:
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            failures.append("%s did not finish in time; stderr: %s" % (label, err[-2000:]))
            continue
        lines = out.decode().strip().splitlines()
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            failures.append("%s exited %d without a result; stdout %r stderr %s"
                            % (label, p.returncode, out[-500:], err.decode()[-3000:]))
            continue
        results.append(res)
        if res.get("fatal") or p.returncode != 0:
            failures.append("%s: %s (exit %d) %s" % (label, res.get("fatal"),
                                                     p.returncode, err.decode()[-2000:]))
    watcher.stop_event.set()
    watcher.join(30)
    summary = ["%s %d: %s" % (r["role"], r["id"],
                              {k: v for k, v in r.items() if k not in ("tags", "role", "id")})
               for r in results]
    assert not failures, "client failures:\n" + "\n".join(failures + summary)
    assert not watcher.errors, watcher.errors[:5]
    assert watcher.runs >= SECONDS / 3, "log watcher ran only %d times" % watcher.runs

    writers = [r for r in results if r["role"] == "writer"]
    readers = [r for r in results if r["role"] == "reader"]
    commits = sum(w["commits"] for w in writers)
    assert commits > 50 and all(w["commits"] > 0 for w in writers), summary
    assert all(r["reads"] > 0 and r["checks"] > 0 for r in readers), summary
    print("\n".join(summary))

    # Exactly one TXID per successful COMMIT.
    ents = node.log_list(name)
    new = [e for e in ents if e.txid > base]
    assert len(new) == commits, ("%d COMMITs succeeded but %d TXIDs were logged"
                                 % (commits, len(new)))

    # Every writer's rows are exactly what it committed.
    con = H.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for w in writers:
        got = dict(con.execute("SELECT tag, count(*) FROM t WHERE writer = ? "
                               "GROUP BY tag", (w["id"],)).fetchall())
        want = {int(k): v for k, v in w["tags"].items()}
        assert got == want, ("writer %d: %d tags committed, %d in the database; "
                             "missing %s, unexpected %s"
                             % (w["id"], len(want), len(got),
                                sorted(set(want) - set(got))[:10],
                                sorted(set(got) - set(want))[:10]))
    con.close()
    node.check_replay(name)
    pos = node.pos(name)
    node.restart()
    assert node.pos(name) == pos
    assert H.integrity_check(db) == "ok"
    node.check_replay(name)


@pytest.mark.deadline(240)
def test_writers_in_two_modes_on_two_databases(node, spawn):
    """Two databases (WAL and DELETE) written at the same time by 2 writers
    each, for a third of the stress duration; one TXID per commit on each."""
    seconds = max(5.0, SECONDS / 3)
    bases = {"w.db": _setup(node, "w.db", "wal"), "d.db": _setup(node, "d.db", "delete")}
    procs = []
    for name in bases:
        for i in range(2):
            procs.append((name, spawn([H.PYTHON, H.CLIENT, "stress-writer", node.path(name),
                                       str(i + 1), str(seconds), "NORMAL", str(i)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    commits = dict.fromkeys(bases, 0)
    for name, p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        res = json.loads(out.decode().strip().splitlines()[-1])
        assert p.returncode == 0 and not res["fatal"], (res, err.decode()[-2000:])
        commits[name] += res["commits"]
    for name, base in bases.items():
        new = [e for e in node.log_list(name) if e.txid > base]
        assert len(new) == commits[name], (name, len(new), commits[name])
        assert H.integrity_check(node.path(name)) == "ok"
        node.check_replay(name)


def test_reader_snapshot_isolation(node, track_conn):
    """A WAL read transaction keeps its snapshot while another process
    commits; a rollback-mode reader blocks the writer's commit (busy)."""
    con = track_conn(H.connect(node.path("iso.db"), "wal"))
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.execute("BEGIN")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    H.sqlite_cli(node.path("iso.db"), "INSERT INTO t VALUES (2);")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    con.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    con.close()

    con = track_conn(H.connect(node.path("iso2.db"), "delete"))
    con.execute("CREATE TABLE t(x)")
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM t").fetchone()
    before = node.last_txid("iso2.db")
    cp = H.sqlite_cli(node.path("iso2.db"), ".timeout 200\nINSERT INTO t VALUES (1);",
                      check=False)
    assert cp.returncode != 0 and "locked" in (cp.stderr + cp.stdout), H.describe_run(cp)
    con.execute("COMMIT")
    assert node.last_txid("iso2.db") == before
    H.sqlite_cli(node.path("iso2.db"), "INSERT INTO t VALUES (1);")
    assert node.last_txid("iso2.db") == before + 1
    con.close()
    node.check_replay("iso.db")
    node.check_replay("iso2.db")
