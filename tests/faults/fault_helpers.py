"""fault_helpers.py - what the fault tests share: a small file system to fill."""

import contextlib
import os
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
