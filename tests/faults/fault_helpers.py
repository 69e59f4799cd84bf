"""fault_helpers.py - what the fault tests share: a small file system to
fill, a filler file on it, and a table to write rows into."""

import contextlib
import os
import sqlite3
import subprocess
import time


@contextlib.contextmanager
def small_tmpfs(path, size="40m"):
    """A tmpfs of `size` mounted on `path` (created), always unmounted; list
    the fixture that uses it before node_factory, so the nodes on it are
    stopped first."""
    os.makedirs(path, exist_ok=True)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path])
    try:
        yield path
    finally:
        for _ in range(50):
            if subprocess.run(["umount", path], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", path])


def fill(data_dir, mib):
    """A file of `mib` MiB in data_dir, to remove later: the room that comes back."""
    path = os.path.join(data_dir, "filler")
    with open(path, "wb") as f:
        f.write(b"\1" * (mib << 20))
    return path


def make_table(node, name, mode):
    """Database `name` on `node` in journal mode `mode` with t(id, v)."""
    con = sqlite3.connect(node.path(name), isolation_level=None, timeout=30)
    con.execute("PRAGMA journal_mode=%s" % mode)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    con.close()


def served_ids(node, name, timeout=30):
    """The ids of table t as `node`'s mount serves them read-only, once it
    serves the database (integrity_check ok), retrying until `timeout`."""
    deadline = time.time() + timeout
    while True:
        try:
            c = sqlite3.connect("file:%s?mode=ro" % node.path(name), uri=True, timeout=30)
            try:
                assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                return set(r[0] for r in c.execute("SELECT id FROM t"))
            finally:
                c.close()
        except sqlite3.OperationalError:
            assert time.time() < deadline, node.log_tail(30)
            time.sleep(0.2)
