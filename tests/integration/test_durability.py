"""test_durability.py - the log is synced when the application asks, and only then.

The daemon is traced with strace (fsync/fdatasync, with file paths) while a
client commits: with PRAGMA synchronous=OFF SQLite never syncs, and neither
may the log (no device flush per transaction the application did not ask
for); with synchronous=FULL every commit is followed by a sync of the log's
segment (never less durable than SQLite's own files); with
`data.sync: always` every commit syncs the log even when SQLite does not.
"""

import os
import re
import signal
import subprocess
import time

import pytest

import ltxfs_helpers as H
from ltxfs_helpers import new_db

COMMITS = 30


class SyncTrace:
    """strace -f on the daemon, counting fsync/fdatasync calls per path."""

    def __init__(self, node, spawn):
        self.out = os.path.join(node.workdir, "strace.txt")
        self.err = open(os.path.join(node.workdir, "strace.err"), "w+")
        self.p = spawn(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync",
                        "-o", self.out, "-p", str(node.pid())], stderr=self.err)
        # strace has attached once every thread of the daemon is traced:
        # wait for its "attached" lines, then for it to settle.
        deadline = time.time() + 10
        while time.time() < deadline:
            status = open("/proc/%d/status" % node.pid()).read()
            if re.search(r"TracerPid:\s+[1-9]", status):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("strace did not attach to the daemon")
        time.sleep(0.3)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=10)
        with open(self.out) as f:
            return f.read()


def log_syncs(trace):
    """Sync calls on the daemon's log segments."""
    return [ln for ln in trace.splitlines()
            if re.search(r"(fsync|fdatasync)\(\d+<[^>]*/log/[0-9a-f]{16}\.seg>", ln)]


def traced_commits(node, spawn, track_conn, name, mode, synchronous):
    """COMMITS autocommit INSERTs into a new database NAME, the daemon traced;
    returns (connection, strace output)."""
    con, base = new_db(node, name, mode, track_conn)
    con.execute("PRAGMA synchronous=%s" % synchronous)
    trace = SyncTrace(node, spawn)
    for i in range(COMMITS):
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(300))", (i,))
    text = trace.stop()
    assert node.last_txid(name) == base + COMMITS
    return con, text


@pytest.mark.parametrize("mode", H.JOURNAL_MODES)
def test_synchronous_off_never_syncs_the_log(node, spawn, track_conn, mode):
    con, text = traced_commits(node, spawn, track_conn, "off.db", mode, "OFF")
    syncs = [ln for ln in text.splitlines() if "sync(" in ln]
    assert syncs == [], ("synchronous=OFF, %d commits, yet the daemon synced "
                         "%d times:\n%s" % (COMMITS, len(syncs), "\n".join(syncs[:20])))
    con.close()
    node.check_replay("off.db")


@pytest.mark.parametrize("mode", H.JOURNAL_MODES)
def test_synchronous_full_syncs_the_log_every_commit(node, spawn, track_conn, mode):
    con, text = traced_commits(node, spawn, track_conn, "full.db", mode, "FULL")
    n = len(log_syncs(text))
    assert n >= COMMITS, ("synchronous=FULL, %d commits, but the log was synced "
                          "%d times:\n%s" % (COMMITS, n, text[-3000:]))
    con.close()
    node.check_replay("full.db")


def test_data_sync_always(node_factory, spawn, track_conn):
    node = node_factory()
    text = node.config_text().replace("data:\n  dir: %s\n" % node.data,
                                      "data:\n  dir: %s\n  sync: always\n" % node.data)
    assert "sync: always" in text
    node.write_config(text)
    node.start(write_config=False)
    con, out = traced_commits(node, spawn, track_conn, "always.db", "wal", "OFF")
    n = len(log_syncs(out))
    assert n >= COMMITS, ("data.sync: always, %d commits, but the log was synced "
                          "%d times" % (COMMITS, n))
    con.close()
    node.check_replay("always.db")
