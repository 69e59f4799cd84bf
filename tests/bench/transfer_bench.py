#!/usr/bin/python3
"""transfer_bench.py - `ltxfs import` and `ltxfs export` against what SQLite
does natively on the same disk, in one run (docs/benchmarks.md).

  import   a WAL-mode database of --mib MiB (its last writes still in the
           -wal file) becomes database big.db of a primary with one replica:
           `ltxfs import` (integrity_check, a consistent copy, the upload, the
           node's integrity_check, one transaction through the mount), and
           until the replica has it.  Native: `sqlite3 SRC "PRAGMA
           integrity_check" ".backup DST"` on the same disk, which does the
           check and the consistent copy once.
  export   `ltxfs export` of that database from the replica (a copy-on-write
           image, checksum verified by the client).  Native: `.backup` of the
           primary's database to a file, and `cp` of a checkpointed copy.

Each figure is the median of --repeat runs.  Prints a markdown table and
writes it to --out.
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sqlite"))
import ltxfsmount  # noqa: E402
from replication_bench import wait_same_pos  # noqa: E402

HOST = "bench-primary"


def make_source(path, mib):
    """The database, and its connection: kept open so that its last writes
    stay in the -wal file (the last connection to close checkpoints)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)")
    rows = mib * 1024 * 1024 // 4000
    with con:
        con.executemany("INSERT INTO big(v) VALUES(randomblob(3900))", [()] * rows)
    return con


def timed(argv):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def drop_caches():
    """Between runs, so no run reads what the previous one left in memory
    more than another (best effort: needs root)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--workdir", default="build/bench-run/transfer")
    ap.add_argument("--out", default="build/bench-transfer.md")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    binary = os.path.abspath(args.ltxfs)
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    src = os.path.join(work, "source.db")
    keep = make_source(src, args.mib)
    size = (keep.execute("PRAGMA page_count").fetchone()[0] *
            keep.execute("PRAGMA page_size").fetchone()[0])

    primary = ltxfsmount.LtxfsMount(binary, os.path.join(work, "primary"))
    primary.lease = ("lease:\n  type: static\n  candidate: true\n  hostname: %s\n"
                     "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, primary.port))
    replica = ltxfsmount.LtxfsMount(
        binary, os.path.join(work, "replica"),
        lease="lease:\n  type: static\n  candidate: false\n  hostname: %s\n"
              "  advertise-url: \"http://127.0.0.1:%d\"\n" % (HOST, primary.port))
    native_imp, imp, imp_repl, native_exp, cp_exp, exp = [], [], [], [], [], []
    try:
        primary.start()
        replica.start()
        purl = "http://127.0.0.1:%d" % primary.port
        rurl = "http://127.0.0.1:%d" % replica.port
        for i in range(args.repeat):
            dst = os.path.join(work, "native-%d.db" % i)
            drop_caches()
            native_imp.append(timed(["sqlite3", src, "PRAGMA integrity_check",
                                     ".backup '%s'" % dst]))
            drop_caches()
            t0 = time.monotonic()
            subprocess.run([binary, "import", "-url", purl, "-name", "big.db", src],
                           check=True, stdout=subprocess.DEVNULL)
            imp.append(time.monotonic() - t0)
            wait_same_pos(primary, replica, "big.db", 600)
            imp_repl.append(time.monotonic() - t0)

            out = os.path.join(work, "export-%d.db" % i)
            drop_caches()
            exp.append(timed([binary, "export", "-url", rurl, "-name", "big.db", out]))
            drop_caches()
            native_exp.append(timed(["sqlite3", os.path.join(primary.mnt, "big.db"),
                                     ".backup '%s'" % (out + ".native")]))
            drop_caches()
            cp_exp.append(timed(["cp", out, out + ".cp"]))
            for p in (dst, out, out + ".native", out + ".cp"):
                os.unlink(p)
    finally:
        replica.stop()
        primary.stop()
        replica.cleanup()
        primary.cleanup()
        keep.close()

    def row(what, secs, base):
        s = statistics.median(secs)
        return "| %s | %.2f s | %.0f MB/s | %s |" % (
            what, s, size / s / 1e6, "%.2f" % (statistics.median(base) / s) if base else "")

    lines = ["# ltxfs import/export benchmark", "",
             "%d MiB WAL-mode database, median of %d runs, caches dropped between steps."
             % (args.mib, args.repeat), "",
             "| step | time | rate | ratio (native time / this) |", "|---|---|---|---|",
             row("native: integrity_check + .backup", native_imp, None),
             row("ltxfs import (primary has it)", imp, native_imp),
             row("ltxfs import (replica has it)", imp_repl, native_imp),
             row("native: .backup of the primary's database", native_exp, None),
             row("native: cp of an exported file", cp_exp, None),
             row("ltxfs export from the replica", exp, native_exp)]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
