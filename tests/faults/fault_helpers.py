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
