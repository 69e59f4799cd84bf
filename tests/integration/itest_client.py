"""itest_client.py - SQLite client processes for the integration tests.

Run as `python3 itest_client.py COMMAND ARGS...`; each command is one
independent client process, so tests can run several at once and kill them.

  stress-writer DB ID SECONDS SYNC MMAP
      Write transactions (BEGIN IMMEDIATE; 1-10 INSERTs tagged with one
      transaction tag; sometimes DELETE one of its older tags; COMMIT) until
      SECONDS have passed.  Prints one JSON line: commits, the tags it left
      in the database with their row counts, busy retries, and `fatal` (the
      first error that is not SQLITE_BUSY/SQLITE_LOCKED; the process then
      exits 1).

  stress-reader DB ID SECONDS MMAP
      Read transactions until SECONDS have passed: counts, and a check that
      every transaction tag is complete (readers never see part of a
      transaction); PRAGMA integrity_check every 3 s.  Prints one JSON line;
      exits 1 on a non-busy error or a failed check.

  crash-writer DB FIRST SYNC
      Insert the integers FIRST, FIRST+1, ... forever: mostly one per
      autocommit transaction, sometimes up to 30 in one explicit transaction.
      After each COMMIT returns it prints "c N" (every integer <= N is
      committed).  On any error it prints "e MESSAGE" and exits 0.

  hold-txn DB CACHE_PAGES [JOURNAL_MODE]
      BEGIN, insert ~1 MB with a tiny page cache (so SQLite spills dirty
      pages to the database file or the WAL before commit), print "ready",
      then sleep until killed.

  commit-and-vanish DB N
      Commit N transactions (one row each, table t(n, pad)) and _exit(0)
      without closing the connection, leaving the WAL or journal as a crash
      would.

  spill-and-vanish DB [JOURNAL_MODE]
      Like hold-txn but _exit(0) right after the spill: a hot journal (or
      uncommitted WAL frames) left by a crashed client.
"""

import json
import os
import random
import sqlite3
import sys
import time

BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)


def is_busy(e):
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xff) in BUSY_CODES
    msg = str(e)
    return "locked" in msg or "busy" in msg


def describe(e):
    return "%s: %s (code %s, %s)" % (type(e).__name__, e,
                                     getattr(e, "sqlite_errorcode", None),
                                     getattr(e, "sqlite_errorname", None))


def connect(db, timeout=30.0, mmap=0):
    con = sqlite3.connect(db, isolation_level=None, timeout=timeout)
    if mmap:
        con.execute("PRAGMA mmap_size=%d" % (256 << 20)).fetchall()
    return con


def rollback_quietly(con):
    try:
        con.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def stress_writer(db, wid, seconds, sync, mmap):
    wid, seconds, mmap = int(wid), float(seconds), int(mmap)
    rnd = random.Random(os.getpid())
    con = connect(db, mmap=mmap)
    con.execute("PRAGMA synchronous=%s" % sync)
    tags = {}     # tag -> rows, as committed
    commits = busy = 0
    seq = 0
    fatal = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and fatal is None:
        seq += 1
        tag = wid * 1000000000 + seq
        n = rnd.randint(1, 10)
        victim = None
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if is_busy(e):
                busy += 1
                continue
            fatal = "BEGIN: " + describe(e)
            break
        try:
            for i in range(n):
                size = rnd.choice((8, 100, 500, 3000))
                con.execute("INSERT INTO t(tag, n, writer, i, payload) "
                            "VALUES (?, ?, ?, ?, randomblob(?))",
                            (tag, n, wid, i, size))
            if tags and rnd.random() < 0.5:
                victim = rnd.choice(list(tags))
                con.execute("DELETE FROM t WHERE tag = ?", (victim,))
            if rnd.random() < 0.2:
                con.execute("UPDATE t SET payload = randomblob(length(payload)) "
                            "WHERE tag = ?", (tag,))
            con.execute("COMMIT")
        except sqlite3.OperationalError as e:
            rollback_quietly(con)
            if is_busy(e):
                busy += 1
                continue
            fatal = "transaction %d: %s" % (tag, describe(e))
            break
        except sqlite3.Error as e:
            rollback_quietly(con)
            fatal = "transaction %d: %s" % (tag, describe(e))
            break
        commits += 1
        tags[tag] = n
        if victim is not None:
            del tags[victim]
    try:
        con.close()
    except sqlite3.Error as e:
        fatal = fatal or "close: " + describe(e)
    print(json.dumps({"role": "writer", "id": wid, "commits": commits,
                      "busy": busy, "tags": {str(k): v for k, v in tags.items()},
                      "fatal": fatal}))
    return 1 if fatal else 0


def stress_reader(db, rid, seconds, mmap):
    rid, seconds, mmap = int(rid), float(seconds), int(mmap)
    con = connect(db, mmap=mmap)
    reads = checks = busy = 0
    fatal = None
    deadline = time.monotonic() + seconds
    next_check = time.monotonic() + 1 + rid * 0.5
    while time.monotonic() < deadline and fatal is None:
        try:
            if time.monotonic() >= next_check:
                res = [r[0] for r in con.execute("PRAGMA integrity_check")]
                if res != ["ok"]:
                    fatal = "integrity_check: %r" % res[:10]
                    break
                checks += 1
                next_check = time.monotonic() + 3
                continue
            con.execute("BEGIN")
            cnt, total = con.execute(
                "SELECT count(*), total(length(payload)) FROM t").fetchone()
            bad = con.execute(
                "SELECT tag, count(*), max(n), min(n) FROM t GROUP BY tag "
                "HAVING count(*) != max(n) OR max(n) != min(n) LIMIT 3").fetchall()
            con.execute("COMMIT")
            if bad:
                fatal = "partial transactions visible: %r" % bad
                break
            reads += 1
        except sqlite3.OperationalError as e:
            rollback_quietly(con)
            if is_busy(e):
                busy += 1
                time.sleep(0.001)
                continue
            fatal = describe(e)
        except sqlite3.Error as e:
            rollback_quietly(con)
            fatal = describe(e)
    try:
        con.close()
    except sqlite3.Error as e:
        fatal = fatal or "close: " + describe(e)
    print(json.dumps({"role": "reader", "id": rid, "reads": reads,
                      "checks": checks, "busy": busy, "fatal": fatal}))
    return 1 if fatal else 0


def crash_writer(db, first, sync):
    n = int(first)
    rnd = random.Random(os.getpid())
    out = sys.stdout
    try:
        # A short busy timeout: there is no other client, and once the daemon
        # is dead SQLite reports failed -shm locks as SQLITE_BUSY and would
        # retry them for the whole timeout.
        con = sqlite3.connect(db, isolation_level=None, timeout=3)
        con.execute("PRAGMA synchronous=%s" % sync)
        k = 0
        while True:
            k += 1
            if rnd.random() < 0.2:
                batch = rnd.randint(2, 30)
                con.execute("BEGIN")
                for i in range(batch):
                    con.execute("INSERT INTO t(n, pad) VALUES (?, randomblob(?))",
                                (n + i, rnd.randint(0, 3000)))
                con.execute("COMMIT")
                n += batch
            else:
                con.execute("INSERT INTO t(n, pad) VALUES (?, randomblob(?))",
                            (n, rnd.randint(0, 3000)))
                n += 1
            out.write("c %d\n" % (n - 1))
            out.flush()
            if k % 150 == 0:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except Exception as e:  # the daemon was killed: any error ends the loop
        try:
            out.write("e %s\n" % describe(e))
            out.flush()
        except OSError:
            pass
    return 0


def spill(db, cache_pages, mode=None):
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    if mode:
        con.execute("PRAGMA journal_mode=%s" % mode).fetchall()
    con.execute("PRAGMA cache_size=%d" % int(cache_pages))
    con.execute("BEGIN")
    for i in range(500):
        con.execute("INSERT INTO t(n, pad) VALUES (?, randomblob(2000))",
                    (-1 - i,))
    con.execute("UPDATE t SET pad = randomblob(100) WHERE n BETWEEN 1 AND 50")
    return con


def hold_txn(db, cache_pages, mode=None):
    spill(db, cache_pages, mode)
    print("ready", flush=True)
    time.sleep(3600)
    return 0


def spill_and_vanish(db, mode=None):
    spill(db, 5, mode)
    sys.stdout.flush()
    os._exit(0)


def commit_and_vanish(db, n):
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    base = con.execute("SELECT coalesce(max(n), 0) FROM t").fetchone()[0]
    for i in range(int(n)):
        con.execute("INSERT INTO t(n, pad) VALUES (?, randomblob(1000))",
                    (base + 1 + i,))
    print(base + int(n), flush=True)
    os._exit(0)


COMMANDS = {
    "stress-writer": stress_writer,
    "stress-reader": stress_reader,
    "crash-writer": crash_writer,
    "hold-txn": hold_txn,
    "spill-and-vanish": spill_and_vanish,
    "commit-and-vanish": commit_and_vanish,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    return COMMANDS[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
