"""conftest.py - fixtures of the ltxfs integration tests.

Fixtures:
  node_factory  make_node(name="node", extra_config="") -> Node (not started),
                with its own work directory under the test's tmp_path
  node          a started Node
  spawn         spawn(args, **popen_kw) -> Popen: a client process in its own
                process group, killed at teardown if still running
  s3_server     a started S3 server (s3rver, see s3_server.py) on a free port
                of 127.0.0.1, with its own directory and one bucket, shared by
                the tests of a module (each keeps to keys of its own); stopped
                (by PID) after them

Teardown always, even after a failure or a dead daemon: kills leftover
client processes, closes tracked sqlite3 connections, stops every node
(SIGTERM; it must exit 0 and unmount unless the test killed it), detaches
any mount left behind, and fails the test if a sanitizer report appears in a
daemon log.  A failed test's report gets a section with each daemon's log
tail.

A watchdog bounds every test (default 300 s; @pytest.mark.deadline(S) to
change): when it fires it SIGKILLs the daemons and clients, so a test blocked
in a system call on a hung mount fails (ENOTCONN) instead of hanging the
whole suite.

Environment: LTXFS_BIN (the binary; the Makefile sets it), LTXFS_S3RVER
(s3rver's bin, for s3_server; the Makefile sets it),
LTXFS_ITEST_LOG_LEVEL (daemon log level, default info), LTXFS_STRESS_SECONDS,
LTXFS_CRASH_ITERATIONS (see test_concurrency.py and test_crash.py).
"""

import os
import signal
import subprocess
import threading

import pytest

import ltxfs_helpers as H

DEFAULT_DEADLINE = float(os.environ.get("LTXFS_TEST_DEADLINE", "300"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deadline(seconds): watchdog limit for one test "
        "(default %d s)" % DEFAULT_DEADLINE)


def pytest_sessionstart(session):
    b = H.binary()
    if not os.access(b, os.X_OK):
        raise pytest.UsageError(
            "ltxfs binary %s not found: build it (make) and set LTXFS_BIN" % b)
    if os.geteuid() != 0:
        raise pytest.UsageError("the integration tests mount FUSE file "
                                "systems and must run as root")


class Harness:
    """Everything one test started, for the watchdog and teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.nodes = []
        self.procs = []
        self.conns = []
        self.watchdog_fired = False
        self.lock = threading.Lock()

    def fire(self):
        with self.lock:
            self.watchdog_fired = True
            for p in list(self.procs):
                _killpg(p)
            for n in list(self.nodes):
                n.mark("watchdog: test deadline exceeded, SIGKILL")
                if n.proc is not None:
                    _killpg(n.proc)


def _killpg(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            try:
                p.kill()
            except OSError:
                pass


@pytest.fixture
def harness(request, tmp_path):
    h = Harness(tmp_path)
    request.node._ltxfs_harness = h
    marker = request.node.get_closest_marker("deadline")
    limit = float(marker.args[0]) if marker else DEFAULT_DEADLINE
    timer = threading.Timer(limit, h.fire)
    timer.daemon = True
    timer.start()
    yield h
    timer.cancel()
    problems = []
    for p in h.procs:
        _killpg(p)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            problems.append("client process %d did not die" % p.pid)
    for c in h.conns:
        try:
            c.close()
        except Exception:
            pass
    for n in h.nodes:
        try:
            n.stop(check=True)
        except H.DaemonError as e:
            problems.append("node %s: %s" % (n.name, e))
        if H.mounted_at(n.mnt) and not H.force_unmount(n.mnt):
            problems.append("node %s: could not unmount %s" % (n.name, n.mnt))
        found = n.sanitizer_reports()
        if found:
            problems.append("node %s: sanitizer report(s) %s in %s:\n%s"
                            % (n.name, found, n.log_path, n.log_tail(80)))
    if h.watchdog_fired:
        problems.insert(0, "watchdog: the test exceeded its deadline of %.0f s "
                        "and its daemons and clients were killed" % limit)
    if problems:
        pytest.fail("teardown:\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def node_factory(harness):
    def make_node(name="node", extra_config=""):
        return H.Node(os.path.join(str(harness.tmp_path), name), name=name,
                      extra_config=extra_config, registry=harness.nodes)
    return make_node


@pytest.fixture
def node(node_factory):
    return node_factory().start()


@pytest.fixture
def spawn(harness):
    def do_spawn(args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(args, start_new_session=True, **kw)
        harness.procs.append(p)
        return p
    return do_spawn


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    from s3_server import S3Server
    server = S3Server(str(tmp_path_factory.mktemp("s3rver"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def track_conn(harness):
    """track_conn(con) -> con: close it at teardown if the test did not."""
    def track(con):
        harness.conns.append(con)
        return con
    return track


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    h = getattr(item, "_ltxfs_harness", None)
    if h is None or not rep.failed:
        return
    for n in h.nodes:
        rep.sections.append(("ltxfs log of node %s (%s)" % (n.name, n.log_path),
                             n.log_tail(60)))
