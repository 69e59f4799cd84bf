"""readload_bench.py - replica lag under heavy local read load.

A primary and one replica (static lease, real mounts, this machine); a.db
with 2000 rows.  READERS reader threads (tests/integration/read_load_reader.py)
run point lookups on the replica as fast as they can while one writer inserts
on the primary as fast as it can, for SECONDS.  Every 5 ms the bench samples
the primary's and the replica's TXID (NAME-pos): the lag of a sample is the
age of the oldest transaction the primary had and the replica had not
(0 when caught up), with 5 ms resolution.  Reports lag p50/p99/max, the
primary's commit rate and the readers' read transactions per second.

    readload_bench.py --ltxfs build/ltxfs [--mode wal] [--readers 50]
                      [--seconds 20] [--workdir DIR] [--out FILE]
"""

import argparse
import bisect
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltxfs", required=True)
    ap.add_argument("--mode", default="wal", choices=["wal", "delete"])
    ap.add_argument("--apply", default="wal", choices=["wal", "locks"],
                    help="the replica's applier in WAL mode: WAL frames (the default, "
                         "data.replica-wal: true) or under every reader's lock (false)")
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workdir", default="/tmp/ltxfs-readload-bench")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.environ["LTXFS_BIN"] = os.path.abspath(args.ltxfs)
    import ltxfs_helpers as H        # noqa: E402 (needs LTXFS_BIN)
    import test_read_load as T       # noqa: E402

    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    nodes, procs = [], []

    def make_node(name):
        n = H.Node(os.path.join(args.workdir, name), name)
        nodes.append(n)
        return n

    def spawn(cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        procs.append(p)
        return p

    try:
        p, r, rows = T.load_cluster(make_node, args.mode, replica_wal=args.apply == "wal")
        stop = os.path.join(args.workdir, "stop-readers")
        # Rollback mode: one reader thread per process, as in the test (a
        # process's threads share one POSIX lock, so overlapping threads
        # would hold SHARED without a gap: no writer, native or not, gets in).
        readers = T.start_readers(spawn, r, stop, threads=args.readers,
                                  processes=args.readers if args.mode == "delete"
                                  else T.PROCESSES)
        time.sleep(1)
        writer = T.Writer(p.path("a.db"), rows)
        first_txid = p.pos("a.db")[0]
        writer.start()
        seen_t, seen_txid = [], []          # primary: first time each TXID was seen
        lags = []
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            now = time.monotonic()
            pt = p.pos("a.db")[0]
            if not seen_txid or pt > seen_txid[-1]:
                seen_t.append(now)
                seen_txid.append(pt)
            rt = (T.C.pos_or_none(r, "a.db") or (0, 0))[0]
            if rt >= seen_txid[-1]:
                lags.append(0.0)
            else:
                # the first sample at which the primary had more than rt
                i = bisect.bisect_right(seen_txid, rt)
                lags.append(now - seen_t[i])
            time.sleep(0.005)
        writer.stop.set()
        writer.join(60)
        commits = p.pos("a.db")[0] - first_txid
        elapsed = time.monotonic() - start
        res = T.stop_readers(readers, stop)
        T.C.wait_converged(p, [r], ["a.db"], timeout=120)
        out = {
            "mode": args.mode, "apply": args.apply, "readers": args.readers,
            "seconds": round(elapsed, 1),
            "primary_tx_per_s": round(commits / elapsed),
            "lag_p50_ms": round(percentile(lags, 50) * 1000, 1),
            "lag_p99_ms": round(percentile(lags, 99) * 1000, 1),
            "lag_max_ms": round(max(lags) * 1000, 1),
            "reads_per_s": round(res["rounds"] / elapsed),
            "reader_errors": res["n_errors"], "first_errors": res["errors"][:3],
        }
        line = json.dumps(out)
        print(line)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
        for n in nodes:
            try:
                n.stop(check=False)
            except Exception as e:   # report, keep cleaning
                print("stopping %s: %s" % (n.name, e), file=sys.stderr)


if __name__ == "__main__":
    main()
