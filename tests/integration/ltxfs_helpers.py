"""ltxfs_helpers.py - the integration tests' view of one ltxfs node.

A Node is one `ltxfs mount -config FILE` daemon with its own work
directory:

    WORKDIR/ltxfs.yml   the config (fuse.dir, data.dir, static lease, http)
    WORKDIR/ltxfs.log   the daemon's stdout+stderr, appended across restarts
                        (each start and stop is marked with a "=== itest" line)
    WORKDIR/mnt         the mount point
    WORKDIR/data        data.dir (dbs/NAME/{database,...,log/})

It starts the daemon and waits for the mount, stops it (SIGTERM, which must
unmount and exit 0), kills it (SIGKILL, then cleans the stale mount the way
an operator would), and wraps the log inspection commands (`ltxfs log
list|verify|replay`, `ltxfs ltx verify|dump`).  check_replay() checks the
central invariant of ltxfs: replaying a database's whole log from TXID 1
onto an empty file reproduces the database file byte for byte, and the
database's -pos file names the last logged transaction.

Only the Python standard library is used.  Every wait has a timeout, and
every error message carries enough context (commands, exit status, stderr,
daemon log tail) to diagnose a failure from the pytest report alone.
"""

import collections
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = sys.executable or "/usr/bin/python3"
CLIENT = os.path.join(HERE, "itest_client.py")

MOUNT_TIMEOUT = float(os.environ.get("LTXFS_MOUNT_TIMEOUT", "10"))
STOP_TIMEOUT = float(os.environ.get("LTXFS_STOP_TIMEOUT", "30"))
LOG_LEVEL = os.environ.get("LTXFS_ITEST_LOG_LEVEL", "info")
# fuse.locks of every node: "ltxfs" (default) or "kernel" (`make check`
# runs the suite once in each mode; see Makefile check-integration).
LOCKS = os.environ.get("LTXFS_ITEST_LOCKS", "ltxfs")
# A test module whose nodes all keep locks in ltxfs whatever LOCKS says
# (multi-node roles need them), or that mounts nothing, would run unchanged
# in the kernel-locks pass: `pytestmark = H.LTXFS_LOCKS_PASS_ONLY`.
LTXFS_LOCKS_PASS_ONLY = pytest.mark.skipif(
    LOCKS == "kernel", reason="independent of fuse.locks: run in the ltxfs-locks pass")

ROLLBACK_MODES = ["delete", "truncate", "persist"]
JOURNAL_MODES = ROLLBACK_MODES + ["wal"]

# Markers of a sanitizer report in the daemon log (make check-asan).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer")


class DaemonError(AssertionError):
    """The daemon failed to start, stop, or behave as its contract says."""


class CommandError(AssertionError):
    """An `ltxfs` inspection command failed unexpectedly."""


LogEntry = collections.namedtuple(
    "LogEntry", "txid pre post commit page_count nbytes")


def binary():
    """The ltxfs binary under test ($LTXFS_BIN, else build/ltxfs)."""
    b = os.environ.get("LTXFS_BIN") or os.path.join(REPO, "build", "ltxfs")
    return os.path.abspath(b)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unescape_mountinfo(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_points():
    """The mount points in the kernel's mount table, one per mount.

    /proc/self/mountinfo is generated a page at a time, so a mount or unmount
    elsewhere (another test's lazy unmount finishing) while it is read can
    make one read skip or repeat a line: read until two reads agree."""
    previous = None
    for _ in range(20):
        try:
            with open("/proc/self/mountinfo") as f:
                table = f.read()
        except OSError:
            return []
        if table == previous:
            break
        previous = table
    return [_unescape_mountinfo(line.split()[4])
            for line in previous.splitlines() if len(line.split()) > 4]


def mount_count(path):
    """How many mounts are stacked on PATH (also dead FUSE mounts).

    os.path.ismount() says False for a FUSE mount whose daemon died (stat
    fails with ENOTCONN), so read the kernel's mount table instead."""
    path = os.path.realpath(path)
    return sum(1 for point in mount_points() if point == path)


def mounted_at(path):
    """True if anything (also a dead FUSE mount) is mounted on PATH."""
    return mount_count(path) > 0


def force_unmount(path):
    """Detach whatever is mounted on PATH (lazily, also several stacked
    mounts); True if nothing is left."""
    for cmd in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]) * 4:
        if not mounted_at(path):
            return True
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return not mounted_at(path)


def file_tail(path, lines=40, max_bytes=65536):
    """The last LINES lines of the file at PATH ('' if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def describe_run(cp):
    """A one-paragraph description of a finished subprocess.CompletedProcess."""
    def text(b):
        if b is None:
            return ""
        if isinstance(b, bytes):
            b = b.decode("utf-8", "replace")
        return b.strip()[-4000:]
    return ("command: %s\nexit status: %s\nstdout:\n%s\nstderr:\n%s"
            % (" ".join(map(str, cp.args)), cp.returncode, text(cp.stdout),
               text(cp.stderr)))


def files_equal(a, b, chunk=4 << 20):
    """(equal, description of the first difference) for two files."""
    sa, sb = os.path.getsize(a), os.path.getsize(b)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            ba, bb = fa.read(chunk), fb.read(chunk)
            if ba != bb:
                n = min(len(ba), len(bb))
                i = next((k for k in range(n) if ba[k] != bb[k]), n)
                pos = off + i
                return False, ("files differ at byte %d (0x%x; size %d vs %d)"
                               % (pos, pos, sa, sb))
            if not ba:
                return True, ""
            off += len(ba)


def sha256_file(path, chunk=4 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def sqlite_cli(db, sql, timeout=120, check=True, args=()):
    """Run the sqlite3 CLI on DB with SQL on stdin; returns CompletedProcess."""
    cp = subprocess.run(["sqlite3", "-batch", "-bail"] + list(args) + [db],
                        input=sql, capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError("sqlite3 CLI failed\n" + describe_run(cp))
    return cp


def integrity_check(path):
    """Run PRAGMA integrity_check on PATH; returns the result rows joined."""
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    return "\n".join(r[0] for r in rows)


def connect(path, journal_mode=None, timeout=30, **pragmas):
    """A Python sqlite3 connection in autocommit mode (isolation_level None:
    BEGIN/COMMIT are explicit), optionally setting the journal mode and
    other pragmas; checks that the journal mode took effect."""
    con = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    for k, v in pragmas.items():
        con.execute("PRAGMA %s=%s" % (k, v)).fetchall()
    if journal_mode is not None:
        got = con.execute("PRAGMA journal_mode=%s" % journal_mode).fetchone()[0]
        assert got == journal_mode, ("PRAGMA journal_mode=%s returned %r"
                                     % (journal_mode, got))
    return con


class Node:
    """One ltxfs daemon; see the top of this file.

    `registry` (a list) collects every Node and client process so the test
    fixture can always take them down.  Attribute `expect_down` is True
    while the daemon is intentionally not running (never started, stopped,
    or killed), so teardown only complains about unexpected deaths."""

    def __init__(self, workdir, name="node", extra_config="", registry=None):
        self.name = name
        self.lease_text = ("lease:\n  type: static\n  candidate: true\n")
        self.data_config = ""     # more data.* keys, e.g. "  retention-bytes: 0\n"
        self.http_config = ""     # more http.* keys, e.g. "  health-max-lag: 1s\n"
        self.locks = LOCKS
        self.workdir = os.path.abspath(workdir)
        self.mnt = os.path.join(self.workdir, "mnt")
        self.data = os.path.join(self.workdir, "data")
        self.config_path = os.path.join(self.workdir, "ltxfs.yml")
        self.log_path = os.path.join(self.workdir, "ltxfs.log")
        self.extra_config = extra_config
        self.proc = None
        self.starts = 0
        self.exit_status = None
        self.expect_down = True
        self.port = None
        self.host = "127.0.0.1"   # the HTTP API's address
        self.api_token = None     # the bearer token the tests send (http.token)
        self.api_tls = None       # an ssl.SSLContext when the node serves HTTPS
        self.wrap = None          # argv -> argv, e.g. run in a network namespace
        self.app_argv = None      # `mount -config F -- APP_ARGV...`
        self.env = None           # extra environment variables for the daemon
        self.registry = registry if registry is not None else []
        self.registry.append(self)
        os.makedirs(self.mnt, exist_ok=True)
        os.makedirs(self.data, exist_ok=True)

    # ---- config and log ----------------------------------------------------

    def config_text(self):
        if self.port is None:
            self.port = free_port()
        return ("fuse:\n  dir: %s\n  locks: %s\n"
                "data:\n  dir: %s\n%s"
                "%s"
                "http:\n  addr: \"%s:%d\"\n%s"
                "log:\n  level: %s\n"
                % (self.mnt, self.locks, self.data, self.data_config, self.lease_text,
                   self.host, self.port, self.http_config, LOG_LEVEL)) + self.extra_config

    def write_config(self, text=None):
        with open(self.config_path, "w") as f:
            f.write(self.config_text() if text is None else text)

    def mark(self, text):
        """Append a marker line to the daemon log (between runs)."""
        with open(self.log_path, "a") as f:
            f.write("=== itest %s: %s\n" % (time.strftime("%H:%M:%S"), text))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_since(self, offset):
        return self.log_text()[offset:]

    def log_size(self):
        return len(self.log_text())

    def log_tail(self, lines=40):
        return file_tail(self.log_path, lines)

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]

    # ---- lifecycle -----------------------------------------------------------

    def _spawn(self):
        self.starts += 1
        self.mark("start #%d: %s mount -config %s"
                  % (self.starts, binary(), self.config_path))
        logf = open(self.log_path, "ab")
        try:
            argv = [binary(), "mount", "-config", self.config_path]
            if self.app_argv:
                argv += ["--"] + list(self.app_argv)
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(
                self.wrap(argv) if self.wrap else argv,
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True, cwd=self.workdir, env=env)
        finally:
            logf.close()
        self.exit_status = None

    def start(self, timeout=MOUNT_TIMEOUT, clean_stale=True, write_config=True):
        """Start the daemon and wait until the mount answers.

        clean_stale=False leaves a stale mount from a killed run in place, so
        the daemon's own stale-mount cleanup is exercised."""
        if not os.access(binary(), os.X_OK):
            raise DaemonError("ltxfs binary %s is missing or not executable "
                              "(set LTXFS_BIN)" % binary())
        if self.running():
            raise DaemonError("node %s is already running" % self.name)
        if clean_stale and mounted_at(self.mnt):
            force_unmount(self.mnt)
        if write_config:
            self.write_config()
        self._spawn()
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_status = self.proc.returncode
                self.expect_down = True
                raise DaemonError(
                    "ltxfs exited with status %d before mounting %s; log tail:\n%s"
                    % (self.proc.returncode, self.mnt, self.log_tail()))
            if os.path.ismount(self.mnt):
                try:
                    os.listdir(self.mnt)
                    self.expect_down = False
                    self.start_seconds = time.monotonic() - t0
                    return self
                except OSError:
                    pass
            time.sleep(0.02)
        self._kill_and_clean()
        self.expect_down = True
        raise DaemonError("ltxfs did not mount %s within %.0f s; log tail:\n%s"
                          % (self.mnt, timeout, self.log_tail()))

    def start_expect_exit(self, timeout=MOUNT_TIMEOUT):
        """Start the daemon expecting it to refuse to run.

        Returns (exit status, log text of this run) if it exits within
        `timeout`; returns (None, log text) if it mounted instead (the node
        is then running)."""
        offset = self.log_size()
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_status = self.proc.returncode
                self.expect_down = True
                force_unmount(self.mnt)
                return self.proc.returncode, self.log_since(offset)
            if os.path.ismount(self.mnt):
                self.expect_down = False
                time.sleep(0.2)  # let it log whatever it logs at start
                return None, self.log_since(offset)
            time.sleep(0.02)
        self._kill_and_clean()
        self.expect_down = True
        raise DaemonError("ltxfs neither exited nor mounted within %.0f s; "
                          "log tail:\n%s" % (timeout, self.log_tail()))

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the daemon to exit by itself (its application ended);
        returns its exit status.  It must have unmounted."""
        self.expect_down = True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError("daemon did not exit within %.0f s; log tail:\n%s"
                              % (timeout, self.log_tail()))
        self.exit_status = self.proc.returncode
        if mounted_at(self.mnt):
            force_unmount(self.mnt)
            raise DaemonError("daemon exited (status %d) but left %s mounted"
                              % (self.exit_status, self.mnt))
        return self.exit_status

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def alive(self):
        return self.running() and os.path.ismount(self.mnt)

    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def _kill_and_clean(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                p.kill()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if p is not None:
            self.exit_status = p.returncode
        force_unmount(self.mnt)

    def kill(self):
        """SIGKILL the daemon (a crash) and clean the stale mount it leaves."""
        self.expect_down = True
        self.mark("SIGKILL")
        p = self.proc
        if p is None or p.poll() is not None:
            raise DaemonError("kill: daemon not running (exit status %s); log "
                              "tail:\n%s" % (self.proc and self.proc.returncode,
                                             self.log_tail()))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        self.exit_status = p.returncode

    def clean_stale_mount(self):
        if not force_unmount(self.mnt):
            raise DaemonError("could not detach the stale mount at %s" % self.mnt)

    def crash(self):
        """kill() plus cleaning the stale mount."""
        self.kill()
        self.clean_stale_mount()

    def stop(self, sig=signal.SIGTERM, check=True):
        """Stop with SIGTERM (or SIGINT); the daemon must unmount and exit 0.

        Returns the exit status.  With check=True raises DaemonError if the
        daemon does not exit in time, exits non-zero, or leaves its mount."""
        p = self.proc
        was_expected_down = self.expect_down
        self.expect_down = True
        if p is None:
            return None
        if p.poll() is not None:
            self.exit_status = p.returncode
            force_unmount(self.mnt)
            if check and not was_expected_down:
                raise DaemonError("daemon had died (exit status %s) before stop; "
                                  "log tail:\n%s" % (p.returncode, self.log_tail()))
            return p.returncode
        self.mark("sending %s" % signal.Signals(sig).name)
        p.send_signal(sig)
        try:
            p.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_and_clean()
            raise DaemonError("daemon did not exit within %.0f s of %s; killed; "
                              "log tail:\n%s" % (STOP_TIMEOUT,
                                                 signal.Signals(sig).name,
                                                 self.log_tail()))
        self.exit_status = p.returncode
        left_mounted = mounted_at(self.mnt)
        if left_mounted:
            force_unmount(self.mnt)
        if check and p.returncode != 0:
            raise DaemonError("daemon exited with status %d after %s; log tail:\n%s"
                              % (p.returncode, signal.Signals(sig).name,
                                 self.log_tail()))
        if check and left_mounted:
            raise DaemonError("daemon exited after %s but left %s mounted"
                              % (signal.Signals(sig).name, self.mnt))
        return p.returncode

    def restart(self):
        self.stop()
        return self.start()

    # ---- paths ------------------------------------------------------------------

    def path(self, name):
        """Path of NAME (or NAME-wal, ...) in the mount."""
        return os.path.join(self.mnt, name)

    def db_dir(self, name):
        return os.path.join(self.data, "dbs", name)

    def backing(self, name, file="database"):
        """Path of a backing file: database, database-journal, -wal, -shm."""
        return os.path.join(self.db_dir(name), file)

    def log_dir(self, name):
        return os.path.join(self.db_dir(name), "log")

    def segments(self, name):
        d = self.log_dir(name)
        return sorted(os.path.join(d, f) for f in os.listdir(d)
                      if f.endswith(".seg"))

    # ---- position and log --------------------------------------------------

    def pos(self, name):
        """(TXID, checksum) read from NAME-pos in the mount."""
        with open(self.path(name + "-pos"), "rb") as f:
            raw = f.read()
        text = raw.decode("ascii", "replace")
        assert len(raw) == 34 and text[16] == "/" and text[-1] == "\n", (
            "%s-pos is not '%%016x/%%016x\\n': %r" % (name, raw))
        return int(text[:16], 16), int(text[17:33], 16)

    def ltxfs(self, *args, timeout=300, check=True):
        """Run `ltxfs ARGS...`; returns CompletedProcess (text)."""
        cp = subprocess.run([binary()] + [str(a) for a in args],
                            capture_output=True, text=True, timeout=timeout)
        # A sanitizer report fails the test even where a failure is expected
        # (a rejected input exits non-zero, and so does ASan).
        found = [m for m in SANITIZER_MARKERS if m in cp.stderr]
        if found:
            raise CommandError("sanitizer report %s from ltxfs %s\n%s"
                               % (found, " ".join(map(str, args)), describe_run(cp)))
        if check and cp.returncode != 0:
            raise CommandError("ltxfs command failed\n" + describe_run(cp))
        return cp

    def log_list(self, name, missing_ok=False):
        """Parsed `ltxfs log list` of database NAME (a list of LogEntry).

        missing_ok: return [] when NAME has no log directory yet."""
        if missing_ok and not os.path.isdir(self.log_dir(name)):
            return []
        cp = self.ltxfs("log", "list", "-data", self.data, "-name", name)
        out = []
        for line in cp.stdout.splitlines():
            f = line.split()
            if len(f) != 6:
                raise CommandError("bad `log list` line %r\n%s" % (line, describe_run(cp)))
            out.append(LogEntry(int(f[0]), int(f[1], 16), int(f[2], 16),
                                int(f[3]), int(f[4]), int(f[5])))
        return out

    def last_txid(self, name):
        ents = self.log_list(name, missing_ok=True)
        return ents[-1].txid if ents else 0

    def log_verify(self, name):
        """Run `ltxfs log verify`; returns (n transactions, last TXID, checksum)."""
        cp = self.ltxfs("log", "verify", "-data", self.data, "-name", name)
        m = re.match(r"ok (\d+) transactions, last TXID (\d+), checksum ([0-9a-f]{16})$",
                     cp.stdout.strip())
        if not m:
            raise CommandError("unexpected `log verify` output\n" + describe_run(cp))
        return int(m.group(1)), int(m.group(2)), int(m.group(3), 16)

    def replay(self, name, out):
        """Run `ltxfs log replay` of NAME into OUT; returns its stdout."""
        if os.path.exists(out):
            os.remove(out)
        return self.ltxfs("log", "replay", "-data", self.data, "-name", name,
                          "-o", out).stdout

    def checkpoint_if_wal(self, name):
        """If NAME-wal exists in the mount with content, checkpoint it away."""
        wal = self.path(name + "-wal")
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            con = sqlite3.connect(self.path(name), isolation_level=None, timeout=30)
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                con.close()

    def check_replay(self, name, keep=False):
        """The replay invariant, checked with every connection closed:

        - `ltxfs log verify` is ok (TXIDs contiguous from 1, checksums chain);
        - NAME-pos equals the last logged TXID and post-apply checksum;
        - `ltxfs log replay` from TXID 1 reproduces the database file, read
          through the mount, byte for byte.
        Returns the log entries.  The replayed copy is removed unless keep."""
        self.checkpoint_if_wal(name)
        ents = self.log_list(name)
        assert ents, "database %s has an empty log" % name
        n, last, ck = self.log_verify(name)
        assert (n, last, ck) == (len(ents), ents[-1].txid, ents[-1].post), (
            "`log verify` (%d transactions, last %d, %016x) disagrees with "
            "`log list` (%d entries, last %s)" % (n, last, ck, len(ents), ents[-1]))
        db = self.path(name)
        if ents[-1].commit == 0:
            # The log ends with a deletion: neither NAME nor NAME-pos exists.
            assert not os.path.exists(db), "log ends with a deletion but %s exists" % db
            assert not os.path.exists(db + "-pos"), "%s-pos exists after deletion" % name
        else:
            pos = self.pos(name)
            assert pos == (ents[-1].txid, ents[-1].post), (
                "%s-pos is %d/%016x but the last logged transaction is %d/%016x"
                % (name, pos[0], pos[1], ents[-1].txid, ents[-1].post))
        out = os.path.join(self.workdir, "replay-%s.db" % name)
        self.replay(name, out)
        try:
            if ents[-1].commit == 0:
                assert os.path.getsize(out) == 0, "replay of a deleted database is not empty"
                return ents
            same, why = files_equal(out, db)
            assert same, ("replaying the log of %s does not reproduce the "
                          "database: %s (last TXID %d, %d pages)"
                          % (name, why, ents[-1].txid, ents[-1].commit))
            size = os.path.getsize(db)
            page_size = int.from_bytes(open(db, "rb").read(18)[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            assert size == ents[-1].commit * page_size, (
                "database is %d bytes but the last LTX says %d pages of %d"
                % (size, ents[-1].commit, page_size))
        finally:
            if not keep and os.path.exists(out):
                os.remove(out)
        return ents

    # ---- single LTX files ---------------------------------------------------

    def extract_ltx(self, name, index, out):
        """Copy the LTX bytes of log entry INDEX (0-based, in log order) to OUT.

        Segment files hold records of a 40-byte record header followed by the
        LTX bytes (db/txlog.h), then zeroed space; the LTX lengths come from
        `log list`."""
        ents = self.log_list(name)
        want = ents[index]
        segs = self.segments(name)
        remaining = list(ents)
        for seg in segs:
            size = os.path.getsize(seg)
            off = 0
            with open(seg, "rb") as f:
                while off < size and remaining:
                    f.seek(off)
                    if f.read(40) == bytes(40):
                        break                  # zeroed space: next segment
                    e = remaining.pop(0)
                    f.seek(off + 40)
                    data = f.read(e.nbytes)
                    assert data[:4] == b"LTXF", (
                        "no LTX magic at %s offset %d" % (seg, off + 40))
                    if e == want:
                        with open(out, "wb") as o:
                            o.write(data)
                        return off + 40, seg
                    off += 40 + e.nbytes
        raise AssertionError("log entry %d not found in the segments" % index)


# ---- databases with a known setup -----------------------------------------

def new_db(node, name, mode, track_conn=None, **pragmas):
    """Create database NAME in MODE with table t; returns (connection, TXID
    after the setup).  Asserts the setup's own TXIDs: PRAGMA journal_mode=WAL
    on a new database is one transaction (it writes page 1), a rollback
    journal mode is none; so is PRAGMA auto_vacuum (given in PRAGMAS, applied
    first); CREATE TABLE and CREATE INDEX are one each."""
    con = connect(node.path(name), **pragmas)
    if track_conn:
        track_conn(con)
    setup = 1 if "auto_vacuum" in pragmas else 0
    con.execute("PRAGMA journal_mode=%s" % mode).fetchall()
    if mode == "wal":
        setup += 1
    assert node.last_txid(name) == setup, node.log_list(name, True)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
    con.execute("CREATE INDEX t_k ON t(k)")
    txid = node.last_txid(name)
    assert txid == setup + 2, node.log_list(name)
    return con, txid


def assert_new_txids(node, name, before, n, what):
    """Exactly N new TXIDs after BEFORE, contiguous; -pos names the last."""
    ents = node.log_list(name, missing_ok=True)
    new = [e for e in ents if e.txid > before]
    assert len(new) == n, ("%s: expected %d new TXIDs after %d, the log has %d: %s"
                           % (what, n, before, len(new), new[:10]))
    assert [e.txid for e in new] == list(range(before + 1, before + n + 1)), new
    for e in new:
        assert e.page_count >= 1 and e.commit >= 1, e
    if ents:
        assert node.pos(name) == (ents[-1].txid, ents[-1].post)
    return ents


def yaml_quote(s):
    """`s` as a YAML double-quoted scalar that ltxfs's config loader reads
    back as `s` ($ doubled: the loader expands environment variables)."""
    return json.dumps(s.replace("$", "$$"))
