"""test_exec.py - running the application under ltxfs (node/supervisor.h).

`ltxfs mount -config F -- CMD ARGS` and the `exec` list start commands only
once the node is ready (the primary, or a replica caught up with its
primary), pass termination signals on to the running command and end the
mount, with the application's exit status, when it exits.  `if-candidate`
entries (migrations) run only on a candidate that is the primary.  systemd
hears READY=1 at the same moment (sd_notify), and STOPPING=1 at the end.

Every check here watches the effect of a real command (a file it wrote, the
rows it saw through the mount) and a real notify socket.
"""

import os
import signal
import socket
import sys
import time

import pytest

import cluster as C
import ltxfs_helpers as H

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

# An application that records what it saw through the mount, then exits
# with the status it is given (or waits for SIGTERM when that is "wait").
APP = r'''
import os, signal, sqlite3, sys, time
db, out, status = sys.argv[1], sys.argv[2], sys.argv[3]
def done(*_):
    with open(out + ".term", "w") as f:
        f.write("TERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
try:
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    seen = str(con.execute("SELECT count(*) FROM t").fetchone()[0])
    con.close()
except sqlite3.Error as e:
    seen = "error: %s" % e
with open(out + ".tmp", "w") as f:
    f.write(seen)
os.rename(out + ".tmp", out)
if status == "wait":
    while True:
        time.sleep(0.05)
sys.exit(int(status))
'''


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(APP)
    return str(path)


def wait_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError("%s did not appear within %d s" % (path, timeout))
        time.sleep(0.02)
    with open(path) as f:
        return f.read()


def fill(node, rows):
    con = H.connect(node.path("app.db"))
    con.execute("CREATE TABLE IF NOT EXISTS t(x)")
    con.executemany("INSERT INTO t VALUES(?)", [(i,) for i in range(rows)])
    con.commit()
    con.close()


def test_application_waits_for_the_replica_to_catch_up_and_its_status_passes_through(
        node_factory, app, tmp_path):
    primary = C.make_primary(node_factory)
    primary.start()
    fill(primary, 3)
    primary.stop()
    replica = C.make_replica(node_factory, primary, "replica")
    out = str(tmp_path / "seen")
    replica.app_argv = [sys.executable, app, replica.path("app.db"), out, "7"]
    replica.start()                       # mounted, but its primary is down
    time.sleep(1.5)
    assert not os.path.exists(out), "the application started before the replica was ready"
    primary.start()
    assert wait_file(out) == "3"          # it saw the primary's rows at once
    assert replica.wait_exit() == 7
    assert "the application exited with status 7; stopping" in replica.log_text()


def test_signal_is_passed_on_and_the_mount_stays_until_the_application_exits(
        node_factory, app, tmp_path):
    node = node_factory()
    node.start()
    fill(node, 2)
    node.stop()
    out = str(tmp_path / "seen")
    node.app_argv = [sys.executable, app, node.path("app.db"), out, "wait"]
    node.start()
    assert wait_file(out) == "2"
    node.proc.send_signal(signal.SIGTERM)
    assert wait_file(out + ".term") == "TERM"
    assert node.wait_exit() == 0          # the application's own status
    assert "SIGTERM: passed on to the application" in node.log_text()


def test_application_killed_by_another_signal_gives_128_plus_it(node_factory):
    node = node_factory()
    node.app_argv = ["sh", "-c", "sleep 1; kill -KILL $$"]
    node.start()
    assert node.wait_exit() == 128 + signal.SIGKILL


def test_stop_before_ready_starts_nothing(node_factory, app, tmp_path):
    primary = C.make_primary(node_factory)      # never started
    replica = C.make_replica(node_factory, primary, "replica")
    out = str(tmp_path / "seen")
    replica.app_argv = [sys.executable, app, replica.path("app.db"), out, "0"]
    replica.start()
    assert replica.stop() == 0
    assert not os.path.exists(out)


def exec_yaml(entries):
    lines = ["exec:"]
    for e in entries:
        if isinstance(e, str):
            lines.append("  - %s" % H.yaml_quote(e))
        else:
            lines.append("  - cmd: %s" % H.yaml_quote(e["cmd"]))
            for k in ("if-candidate", "promote"):
                if k in e:
                    lines.append("    %s: %s" % (k, "true" if e[k] else "false"))
    return "\n".join(lines) + "\n"


def test_exec_list_runs_the_migration_on_the_candidate_only(node_factory, app, tmp_path):
    """The same exec list on a static primary and a replica: the migration
    (if-candidate) runs on the primary only, the application on both, each
    after its node is ready."""
    primary = C.make_primary(node_factory)
    replica = C.make_replica(node_factory, primary, "replica")
    for n in (primary, replica):
        migrate = ("sqlite3 %s 'CREATE TABLE IF NOT EXISTS t(x); "
                   "INSERT INTO t VALUES(1)' && echo %s >> %s"
                   % (n.path("app.db"), n.name, tmp_path / "migrations"))
        serve = "%s %s %s %s wait" % (sys.executable, app, n.path("app.db"),
                                      tmp_path / ("seen-" + n.name))
        n.extra_config = exec_yaml([{"cmd": migrate, "if-candidate": True}, serve])
    primary.start()
    assert wait_file(str(tmp_path / "seen-primary")) == "1"
    replica.start()
    assert wait_file(str(tmp_path / "seen-replica")) == "1"
    assert (tmp_path / "migrations").read_text() == "primary\n"
    assert "exec[0]: skipped: this node is not a candidate" in replica.log_text()
    assert replica.stop() == 0
    assert primary.stop() == 0


def test_a_failing_migration_stops_the_node_with_its_status(node_factory, tmp_path):
    node = node_factory()
    node.extra_config = exec_yaml(["exit 3", "touch %s" % (tmp_path / "app-ran")])
    node.write_config()
    status, log = node.start_expect_exit()
    if status is None:
        # It mounted before the migration failed (the mount is up while
        # exec runs): it stops by itself.
        status = node.wait_exit()
        log = node.log_text()
    assert status == 3, log
    assert not (tmp_path / "app-ran").exists()
    assert "exec[0] exited with status 3; stopping" in log


class NotifySocket:
    """A systemd notify socket: what sd_notify sends to NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            msg = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.messages.append(msg)
        return msg

    def close(self):
        self.sock.close()


def test_systemd_hears_ready_only_once_the_replica_caught_up(node_factory, tmp_path):
    notify = NotifySocket(str(tmp_path / "notify"))
    try:
        primary = C.make_primary(node_factory)
        replica = C.make_replica(node_factory, primary, "replica")
        replica.env = {"NOTIFY_SOCKET": notify.path}
        replica.start()
        assert notify.receive(1.5) is None, "READY before the replica caught up"
        primary.start()
        msg = notify.receive(30)
        assert msg is not None and "READY=1" in msg.split("\n"), msg
        assert "STATUS=replica, serving %s" % replica.mnt in msg
        replica.stop()
        msg = notify.receive(5)
        assert msg is not None and "STOPPING=1" in msg, notify.messages
    finally:
        notify.close()
