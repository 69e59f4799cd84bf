"""replica_reader.py - a reader process for test_replication.py.

    replica_reader.py DB SECONDS [reopen]

Queries DB (on a replica's mount) in a loop for SECONDS, each time in one
read transaction: the writer on the primary keeps meta.n equal to the row
count of t in every transaction, so a torn state (some pages of a
transaction applied, others not) shows up as a mismatch.  Every 25th round
runs PRAGMA integrity_check.  SQLITE_BUSY is absorbed by the busy timeout;
any other error, a mismatch or a failed integrity check exits 1 with a
message on stderr.  With "reopen", every round runs on a new connection
(the opening is what a busy replica could starve).  Prints the number of
rounds.
"""

import sqlite3
import sys
import time


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    reopen = sys.argv[3:] == ["reopen"]
    deadline = time.monotonic() + seconds
    rounds = 0
    con = None
    while time.monotonic() < deadline:
        if con is None or reopen:
            if con is not None:
                con.close()
            con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30,
                                  isolation_level=None)
        try:
            con.execute("BEGIN")
            n = con.execute("SELECT n FROM meta").fetchone()[0]
            count = con.execute("SELECT count(*) FROM t").fetchone()[0]
            if rounds % 25 == 0:
                ok = con.execute("PRAGMA integrity_check").fetchone()[0]
                if ok != "ok":
                    sys.exit("integrity_check: %s" % ok)
            con.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                con.execute("ROLLBACK") if con.in_transaction else None
                continue
            sys.exit("round %d: %s" % (rounds, e))
        if n != count:
            sys.exit("round %d: torn state: meta.n = %d, count(t) = %d" % (rounds, n, count))
        rounds += 1
    print(rounds)


if __name__ == "__main__":
    main()
