#!/usr/bin/env python3
"""run-tests.py - run SQLite's own TCL tests natively and on ltxfs, compare.

Each selected test file (e.g. test/wal2.test) runs with `testfixture
run1.tcl FILE --testdir=.` (see run1.tcl for why not plain `testfixture FILE
--testdir=.`) twice: once with a fresh plain directory as its working
directory (native) and once from the root of a fresh ltxfs mount (one daemon
per test file, so a crash or leftover file cannot spill into the next file).
tester.tcl creates and cd's into --testdir before running the file; with
"." every database the test makes lives in the mount root, which is all
ltxfs promises (no subdirectories).

Every run has a timeout; a run that prints no "N errors out of M tests"
summary crashed or hung.  A file with failures on ltxfs that did not fail
natively (other than a hang) runs on ltxfs once more; only cases failing in
both ltxfs runs count, the others are listed as intermittent.  Deviations
accepted on purpose are listed in ltxfs-expected.txt.  The report lists, per
file, native and ltxfs results and the cases that fail on ltxfs only.  Exit
status is 1 if any case fails only on ltxfs, a file crashes or hangs only on
ltxfs, or ltxfs cannot be mounted; 2 for usage errors; else 0.

Usage: run-tests.py --testfixture BIN --srcdir SQLITE_SRC [--ltxfs BIN]
           [--tests "wal*.test -walcrash3.test ..."] [--native-only]
           [--timeout 300] [--jobs 2] [--retries 1] [--workdir DIR]
           [--report FILE] [--expected FILE]
"""

import argparse
import concurrent.futures
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltxfsmount  # noqa: E402

RUN1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run1.tcl")

# Native seconds of the slow files on a 2-core machine (measured; see
# docs/sqlite-tests.md).  Slow files are started first so that two jobs
# finish close together; unknown files count as fast.
KNOWN_SECONDS = {
    "walcrash3.test": 600, "walthread.test": 146, "pagerfault2.test": 67,
    "pagerfault.test": 34, "walslow.test": 20, "walprotocol.test": 20,
    "walsetlk.test": 15, "walfault.test": 13, "walcrash.test": 12,
    "walcrash2.test": 12, "walvfs.test": 10, "wal3.test": 5,
}

# Process groups of running testfixtures and pids of running daemons, for
# cleanup_after_interrupt().
LIVE = set()
LIVE_LOCK = threading.Lock()
DAEMONS = set()
RUN_STATE = {"workdir": None}

SUMMARY_RE = re.compile(r"^(\d+) errors out of (\d+) tests", re.M)
FAILURES_RE = re.compile(r"^!Failures on these tests:(.*)$", re.M)


class Result:
    """Outcome of one test file in one mode."""

    def __init__(self, name, mode):
        self.name = name
        self.mode = mode
        self.status = "crash"    # ok | fail | crash | timeout | nomount
        self.errors = 0
        self.tests = 0
        self.failures = []       # failing case names, in order, unique
        self.seconds = 0.0
        self.exit_code = None
        self.note = ""           # daemon trouble, mount errors, ...
        self.log = ""

    def done(self):
        """True if the run got as far as its summary line."""
        return self.status in ("ok", "fail")

    def short(self):
        """One cell of the report table."""
        if self.status in ("ok", "fail"):
            s = "%d/%d" % (self.errors, self.tests)
        else:
            s = self.status.upper()
        return "%-11s %6.1fs" % (s, self.seconds)


def parse_output(res, text):
    """Fill RES's counts, failures and status from testfixture output."""
    m = None
    for m in SUMMARY_RE.finditer(text):
        pass
    if m is None:
        return
    res.errors = int(m.group(1))
    res.tests = int(m.group(2))
    names = []
    for f in FAILURES_RE.finditer(text):
        for n in f.group(1).split():
            if n not in names:
                names.append(n)
    res.failures = names
    res.status = "fail" if res.errors else "ok"


def crash_reason(text):
    """Return ': <Tcl error>' for output that ended in an uncaught error."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "while executing" and i > 0:
            msg = lines[i - 1].split(": ", 1)[-1] if ": " in lines[i - 1] \
                else lines[i - 1]
            return ": " + msg.strip()[:200]
    return ""


def run_testfixture(res, testfixture, testfile, cwd, timeout, logpath):
    """Run one test file with CWD as its test directory; fill RES."""
    env = dict(os.environ)
    env.pop("SQLITE_TMPDIR", None)
    start = time.monotonic()
    with open(logpath, "wb") as log:
        p = subprocess.Popen([testfixture, RUN1, testfile, "--testdir=."],
                             cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        with LIVE_LOCK:
            LIVE.add(p.pid)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
            res.status = "timeout"
    res.seconds = time.monotonic() - start
    res.exit_code = p.returncode
    res.log = logpath
    with open(logpath, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if res.status != "timeout":
        parse_output(res, text)
        if res.status == "crash":
            res.note = "exit status %s, no summary line%s" % (
                p.returncode, crash_reason(text))
    else:
        res.note = "killed after %d s" % timeout
    # Kill anything the test file left running in its process group.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    with LIVE_LOCK:
        LIVE.discard(p.pid)


def run_native(args, name):
    res = Result(name, "native")
    cwd = os.path.join(args.workdir, "native", name)
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    try:
        run_testfixture(res, args.testfixture,
                        os.path.join(args.testdir, name), cwd, args.timeout,
                        os.path.join(args.logdir, "native-%s.log" % name))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return res


def run_ltxfs(args, name, mode="ltxfs"):
    res = Result(name, mode)
    work = os.path.join(args.workdir, mode, name)
    m = ltxfsmount.LtxfsMount(args.ltxfs, work, locks=args.locks)
    logpath = os.path.join(args.logdir, "%s-%s.log" % (mode, name))
    daemon_log = os.path.join(args.logdir, "%s-%s.daemon.log" % (mode, name))
    try:
        try:
            m.start()
            with LIVE_LOCK:
                DAEMONS.add(m.proc.pid)
        except ltxfsmount.MountError as e:
            res.status = "nomount"
            res.note = str(e)
            res.log = logpath
            with open(logpath, "w") as f:
                f.write(str(e) + "\n")
            return res
        run_testfixture(res, args.testfixture,
                        os.path.join(args.testdir, name), m.mnt,
                        args.timeout, logpath)
        if not m.alive():
            res.note = "ltxfs daemon died or unmounted during the test"
            if res.status in ("ok", "fail"):
                res.status = "crash"
    finally:
        status = m.stop()
        if m.proc is not None:
            with LIVE_LOCK:
                DAEMONS.discard(m.proc.pid)
        if status not in (0, None) and not res.note:
            res.note = "ltxfs exited with status %s at shutdown" % status
        if os.path.exists(m.log):
            shutil.copyfile(m.log, daemon_log)
        m.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return res


def run_pool(jobs, calls):
    """Run (fn, args) CALLS on JOBS threads; yield results as they finish.

    The pool is not joined on an exception, so an interrupt reaches
    cleanup_after_interrupt() at once (the caller then leaves with
    os._exit, without waiting for the worker threads)."""
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futs = [ex.submit(fn, *a) for fn, a in calls]
        for fut in concurrent.futures.as_completed(futs):
            yield fut.result()
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def select_tests(testdir, patterns):
    """Expand glob PATTERNS against the test directory, in order, deduped.

    A pattern starting with '-' removes the files it matches from those
    selected so far ("wal*.test -walcrash3.test")."""
    have = sorted(f for f in os.listdir(testdir) if f.endswith(".test"))
    out = []
    for pat in patterns:
        drop = pat.startswith("-")
        if drop:
            pat = pat[1:]
        hits = [f for f in have if fnmatch.fnmatch(f, pat)]
        if not hits:
            raise SystemExit("run-tests: no test file matches %r in %s"
                             % (pat, testdir))
        if drop:
            out = [f for f in out if f not in hits]
            continue
        for h in hits:
            if h not in out:
                out.append(h)
    return out


def load_expected(path):
    """Read the accepted ltxfs deviations: {file: {case or '*': reason}}.

    Each non-comment line is `FILE CASE REASON...`; CASE '*' accepts a crash
    of the whole file (a test that needs something ltxfs does not offer)."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) < 2:
                raise SystemExit("run-tests: bad line in %s: %r"
                                 % (path, raw))
            reason = parts[2] if len(parts) > 2 else ""
            out.setdefault(parts[0], {})[parts[1]] = reason
    return out


def apply_expected(name, new, problem, expected):
    """Drop accepted deviations; return (new, problem, accepted text)."""
    exp = expected.get(name, {})
    if not exp:
        return new, problem, ""
    accepted = []
    if "*" in exp and problem:
        accepted.append("file: %s (%s)" % (problem.split("\n")[0],
                                           exp["*"]))
        problem = ""
    keep = []
    for c in new:
        if c in exp or "*" in exp:
            accepted.append("%s (%s)" % (c, exp.get(c, exp.get("*"))))
        else:
            keep.append(c)
    return keep, problem, "; ".join(accepted)


def compare_one(nat, ltx):
    """Return (cases failing on LTX only, problem text or '')."""
    if ltx.status == "nomount":
        return [], "ltxfs did not mount: " + ltx.note
    new = [c for c in ltx.failures if c not in set(nat.failures)]
    if nat.done() and not ltx.done():
        return new, "%s on ltxfs only (%s)" % (ltx.status, ltx.note)
    if ltx.note:
        return new, ltx.note
    return new, ""


def compare(nat, ltx, retry):
    """Judge one file from its native run, ltxfs run and optional retry.

    Returns (regressions, problem, flaky): the cases failing on ltxfs but
    not natively in every ltxfs run, a crash/hang/daemon problem seen in
    every ltxfs run ('' if none), and text about what went wrong only once.
    """
    new1, prob1 = compare_one(nat, ltx)
    if retry is None:
        return new1, prob1, ""
    new2, prob2 = compare_one(nat, retry)
    if not ltx.done():
        # The first run stopped early; only the retry has a full verdict.
        flaky = "" if prob2 else "first run: " + prob1
        return new2, prob2, flaky
    new = [c for c in new1 if c in new2]
    once = [c for c in new1 + new2 if c not in new]
    flaky = ""
    if once:
        flaky = "failed in one of two ltxfs runs: " + " ".join(once)
    problem = prob2 if prob1 and prob2 else ""
    if bool(prob1) != bool(prob2):
        flaky += ("; " if flaky else "") + "once: " + (prob1 or prob2)
    return new, problem, flaky


def build_report(args, names, results, wall):
    """Return (report text, number of files with ltxfs-only problems)."""
    lines = []
    lines.append("SQLite TCL tests, testfixture %s" % args.testfixture)
    lines.append("columns: errors/tests and seconds; CRASH = no summary line,"
                 " TIMEOUT = killed after %d s; ltxfs files with new"
                 " failures are run a second time" % args.timeout)
    lines.append("")
    hdr = "%-20s %-19s" % ("test file", "native")
    if not args.native_only:
        hdr += " %-19s %-19s %s" % ("ltxfs", "ltxfs retry",
                                    "new on ltxfs")
    lines.append(hdr)
    bad_files = 0
    details = []
    flakes = []
    accepts = []
    tot_n = tot_l = 0.0
    for name in names:
        nat = results[(name, "native")]
        ltx = results.get((name, "ltxfs"))
        retry = results.get((name, "ltxfs-retry"))
        tot_n += nat.seconds
        row = "%-20s %-19s" % (name, nat.short())
        if ltx is not None:
            tot_l += ltx.seconds
            new, problem, flaky = compare(nat, ltx, retry)
            new, problem, accepted = apply_expected(name, new, problem,
                                                    args.expected_map)
            if accepted:
                accepts.append("%s: %s" % (name, accepted))
            mark = str(len(new)) if new else "-"
            if problem:
                mark += " !"
            row += " %-19s %-19s %s" % (ltx.short(),
                                        retry.short() if retry else "",
                                        mark)
            if new or problem:
                bad_files += 1
                d = "%s:" % name
                if new:
                    d += "\n    fail on ltxfs only: " + " ".join(new)
                if problem:
                    d += "\n    " + problem.replace("\n", "\n    ")
                d += "\n    log: %s" % (retry or ltx).log
                details.append(d)
            if flaky:
                flakes.append("%s: %s" % (name, flaky.split("\n")[0]))
        elif not nat.done():
            details.append("%s: native %s (%s), log %s"
                           % (name, nat.status, nat.note, nat.log))
        lines.append(row)
    lines.append("")
    tot = "%-20s %-19s" % ("total", "%18.1fs" % tot_n)
    if not args.native_only:
        tot += " %-19s" % ("%18.1fs" % tot_l)
    lines.append(tot)
    lines.append("wall clock %.1f s with %d job(s)" % (wall, args.jobs))
    nat_fail = [(n, results[(n, "native")].failures) for n in names
                if results[(n, "native")].failures]
    if nat_fail:
        lines.append("")
        lines.append("Cases failing natively too (not counted against ltxfs):")
        for name, cases in nat_fail:
            lines.append("  %s: %s" % (name, " ".join(cases)))
    lines.append("")
    if args.native_only:
        crashed = [n for n in names if not results[(n, "native")].done()]
        if details:
            lines.append("Native runs that crashed or hung:")
            lines.extend("  " + d for d in details)
            lines.append("")
        lines.append("sqlite: %d passed, %d failed"
                     % (len(names) - len(crashed), len(crashed)))
        return "\n".join(lines) + "\n", len(crashed)
    if accepts:
        lines.append("Accepted on ltxfs (%s):" % args.expected)
        lines.extend("  " + a for a in accepts)
        lines.append("")
    if flakes:
        lines.append("Intermittent on ltxfs (not counted; look at them):")
        lines.extend("  " + f for f in flakes)
        lines.append("")
    if details:
        lines.append("Regressions on ltxfs (fail there, pass natively):")
        lines.extend("  " + d for d in details)
    else:
        lines.append("No test case fails on ltxfs that passes natively.")
    lines.append("")
    lines.append("sqlite: %d passed, %d failed"
                 % (len(names) - bad_files, bad_files))
    return "\n".join(lines) + "\n", bad_files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--testfixture", required=True)
    ap.add_argument("--srcdir", required=True,
                    help="unpacked SQLite source tree (holds test/)")
    ap.add_argument("--ltxfs", help="ltxfs binary")
    ap.add_argument("--native-only", action="store_true")
    ap.add_argument("--tests", default="wal*.test journal*.test pager*.test",
                    help="space separated globs relative to test/; "
                    "-GLOB drops files")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--locks", choices=["ltxfs", "kernel"], default="ltxfs",
                    help="fuse.locks of the ltxfs mounts")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--retries", type=int, default=1,
                    help="rerun ltxfs files with new failures (0 or 1)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--report", default=None)
    ap.add_argument("--expected", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "ltxfs-expected.txt"),
        help="accepted ltxfs deviations (FILE CASE|* REASON per line)")
    args = ap.parse_args()

    args.testfixture = os.path.abspath(args.testfixture)
    args.testdir = os.path.join(os.path.abspath(args.srcdir), "test")
    if not os.access(args.testfixture, os.X_OK):
        print("run-tests: no testfixture at %s" % args.testfixture,
              file=sys.stderr)
        return 2
    if not args.native_only and not args.ltxfs:
        print("run-tests: give --ltxfs BIN or --native-only", file=sys.stderr)
        return 2
    if args.workdir is None:
        args.workdir = os.path.join(os.path.dirname(args.srcdir.rstrip("/")),
                                    "sqlite-run")
    args.workdir = os.path.abspath(args.workdir)
    RUN_STATE["workdir"] = args.workdir
    args.logdir = os.path.join(args.workdir, "logs")
    shutil.rmtree(args.logdir, ignore_errors=True)
    os.makedirs(args.logdir)
    names = select_tests(args.testdir, args.tests.split())
    args.expected_map = load_expected(args.expected)

    if not args.native_only:
        # Fail fast, and clearly, if ltxfs cannot mount at all.
        probe = ltxfsmount.LtxfsMount(args.ltxfs,
                                      os.path.join(args.workdir, "probe"))
        try:
            probe.start()
        except ltxfsmount.MountError as e:
            print("run-tests: ltxfs does not mount, no ltxfs run possible:\n"
                  + str(e), file=sys.stderr)
            return 1
        finally:
            probe.stop()
            probe.cleanup()

    jobs = []
    for name in sorted(names, key=lambda n: -KNOWN_SECONDS.get(n, 0)):
        jobs.append((name, "native"))
        if not args.native_only:
            jobs.append((name, "ltxfs"))
    results = {}
    start = time.monotonic()

    def report(r, label):
        results[(r.name, r.mode)] = r
        print("  %-7s %-20s %s %s" % (label, r.name, r.short(),
                                      r.note.split("\n")[0]), flush=True)

    calls = [(run_native if mode == "native" else run_ltxfs, (args, name))
             for name, mode in jobs]
    for r in run_pool(args.jobs, calls):
        report(r, r.mode)
    if not args.native_only and args.retries > 0:
        again = []
        for name in names:
            new, problem = compare_one(results[(name, "native")],
                                       results[(name, "ltxfs")])
            # A hang is not retried: it would cost another full timeout.
            if (new or problem) and results[(name, "ltxfs")].status not in \
                    ("nomount", "timeout"):
                again.append(name)
        if again:
            print("  retrying on ltxfs: %s" % " ".join(again), flush=True)
        for r in run_pool(args.jobs, [(run_ltxfs, (args, n, "ltxfs-retry"))
                                      for n in again]):
            report(r, "retry")
    wall = time.monotonic() - start

    text, bad = build_report(args, names, results, wall)
    print()
    print(text, end="")
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    return 1 if bad else 0


def interrupted(signum, frame):
    raise KeyboardInterrupt


def cleanup_after_interrupt(workdir):
    """Kill running tests and lazily unmount every mount under WORKDIR."""
    with LIVE_LOCK:
        pids = list(LIVE)
        daemons = list(DAEMONS)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in daemons:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    time.sleep(1)
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
    except OSError:
        mounts = []
    for m in mounts:
        m = m.replace("\\040", " ")
        if m.startswith(workdir + "/"):
            ltxfsmount.force_unmount(m)
    for pid in daemons:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        wd = RUN_STATE.get("workdir")
        if wd:
            cleanup_after_interrupt(wd)
        print("run-tests: interrupted", file=sys.stderr)
        os._exit(130)
