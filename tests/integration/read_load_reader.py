"""read_load_reader.py - point-lookup readers for test_read_load.py and
tests/bench/readload_bench.py.

    read_load_reader.py DB STOPFILE THREADS

THREADS threads, each with its own read-only connection to DB (on a
replica's mount), run read transactions in a loop until STOPFILE exists.
The writer on the primary inserts row id = n + 1 with v = id * 7 and sets
meta.n = n + 1 in the same transaction, so in every consistent snapshot
meta.n == max(id) and every row's v == id * 7.  Each read transaction
reads meta.n and max(id), and looks up one random row <= n (a point
lookup); every 500th one also runs PRAGMA quick_check.  SQLITE_BUSY (a
replica applying in rollback mode) is retried; any other error, or a
snapshot that breaks the invariant, is counted and reported.

Prints one JSON line: {"rounds": N, "errors": [...first few...], "n_errors": K}.
"""

import json
import os
import random
import sqlite3
import sys
import threading


def reader(path, stopfile, out, lock):
    rounds, errors, n_errors = 0, [], 0
    con = None
    rng = random.Random()
    while not os.path.exists(stopfile):
        try:
            if con is None:
                con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30,
                                      isolation_level=None, check_same_thread=False)
            con.execute("BEGIN")
            n = con.execute("SELECT n FROM meta").fetchone()[0]
            top = con.execute("SELECT max(id) FROM t").fetchone()[0] or 0
            if n != top:
                raise AssertionError("torn snapshot: meta.n = %d, max(id) = %d" % (n, top))
            if n:
                k = rng.randint(1, n)
                row = con.execute("SELECT v FROM t WHERE id = ?", (k,)).fetchone()
                if row is None or row[0] != k * 7:
                    raise AssertionError("row %d of %d reads %r" % (k, n, row))
            if rounds % 500 == 499:
                ok = con.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise AssertionError("quick_check: %s" % ok)
            con.execute("COMMIT")
            rounds += 1
        except sqlite3.OperationalError as e:
            if con is not None and con.in_transaction:
                try:
                    con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if "locked" in str(e) or "busy" in str(e):
                continue
            n_errors += 1
            if len(errors) < 5:
                errors.append("%s: %s (%s)" % (type(e).__name__, e,
                                               getattr(e, "sqlite_errorname", "?")))
        except (sqlite3.Error, AssertionError) as e:
            n_errors += 1
            if len(errors) < 5:
                errors.append("%s: %s" % (type(e).__name__, e))
            if con is not None:
                con.close()
            con = None
    if con is not None:
        con.close()
    with lock:
        out["rounds"] += rounds
        out["n_errors"] += n_errors
        out["errors"] += errors


def main():
    path, stopfile, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = {"rounds": 0, "errors": [], "n_errors": 0}
    lock = threading.Lock()
    ts = [threading.Thread(target=reader, args=(path, stopfile, out, lock))
          for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
