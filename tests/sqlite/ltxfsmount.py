"""ltxfsmount.py - start one single-node ltxfs mount for a test or benchmark
run, and always take it down again.

Used by tests/sqlite/run-tests.py and tests/bench/bench.py.  The daemon runs
in the foreground (`ltxfs mount -config FILE`) with a static lease, its own
data directory, mount point and HTTP port; stderr goes to a log file.  The
mount counts as ready when the mount point is a mount point.  Stopping sends
SIGTERM (the daemon unmounts), waits, then SIGKILLs and lazily unmounts a
stale mount as a last resort, so no test can leave a mount behind.

    with LtxfsMount(binary, workdir) as m:
        use(m.mnt)          # databases live in the mount root
"""

import os
import shutil
import signal
import socket
import subprocess
import time

MOUNT_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class MountError(Exception):
    """ltxfs could not be started or did not mount in time."""


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_mount_table(path):
    """True if PATH is listed in /proc/self/mounts.

    os.path.ismount() is not enough: on a FUSE mount whose daemon died,
    stat fails with ENOTCONN and ismount() answers False."""
    path = os.path.abspath(path)
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                mp = line.split()[1].replace("\\040", " ")
                if mp == path:
                    return True
    except OSError:
        return os.path.ismount(path)
    return False


def force_unmount(path):
    """Lazily unmount PATH if it is (still) mounted, even if stale."""
    if not in_mount_table(path):
        return
    for cmd in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if not in_mount_table(path):
            return


def log_tail(path, lines=20):
    """Return the last LINES lines of the file at PATH ('' if none)."""
    try:
        with open(path, "rb") as f:
            data = f.read()[-16384:]
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class LtxfsMount:
    """One ltxfs daemon serving WORKDIR/mnt from WORKDIR/data.

    WORKDIR is created if needed; its mnt/ and data/ are created fresh.  The
    config file and daemon log (ltxfs.log) are kept in WORKDIR.  start()
    raises MountError with the log tail if the mount is not ready within
    MOUNT_TIMEOUT seconds or the daemon exits early; stop() is idempotent
    and never raises for a daemon that already died.
    """

    def __init__(self, binary, workdir, extra_config="", locks="ltxfs", lease=None,
                 port=None):
        self.binary = os.path.abspath(binary)
        self.workdir = os.path.abspath(workdir)
        self.mnt = os.path.join(self.workdir, "mnt")
        self.data = os.path.join(self.workdir, "data")
        self.config = os.path.join(self.workdir, "ltxfs.yml")
        self.log = os.path.join(self.workdir, "ltxfs.log")
        self.extra_config = extra_config
        self.locks = locks
        self.lease = lease or "lease:\n  type: static\n  candidate: true\n"
        self.port = port or free_port()
        self.proc = None
        self.exit_status = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _write_config(self):
        with open(self.config, "w") as f:
            f.write("fuse:\n  dir: %s\n  locks: %s\n" % (self.mnt, self.locks))
            f.write("data:\n  dir: %s\n" % self.data)
            f.write(self.lease)
            f.write("http:\n  addr: \"127.0.0.1:%d\"\n" % self.port)
            f.write(self.extra_config)

    def start(self):
        """Start the daemon and wait until the mount is ready."""
        if not os.access(self.binary, os.X_OK):
            raise MountError("ltxfs binary %s is missing or not executable"
                             % self.binary)
        os.makedirs(self.workdir, exist_ok=True)
        force_unmount(self.mnt)
        for d in (self.mnt, self.data):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        self._write_config()
        logf = open(self.log, "wb")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "mount", "-config", self.config],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True)
        finally:
            logf.close()
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                self.exit_status = self.proc.returncode
                raise MountError(
                    "ltxfs exited with status %d before mounting %s; log:\n%s"
                    % (self.proc.returncode, self.mnt, log_tail(self.log)))
            time.sleep(0.05)
        self.stop()
        raise MountError("ltxfs did not mount %s within %.0f s; log:\n%s"
                         % (self.mnt, MOUNT_TIMEOUT, log_tail(self.log)))

    def alive(self):
        """True while the daemon runs and the mount is in place."""
        return (self.proc is not None and self.proc.poll() is None
                and os.path.ismount(self.mnt))

    def stop(self):
        """SIGTERM the daemon, wait, escalate, and make sure of the unmount.

        Returns the daemon's exit status (negative for a signal), or None if
        it was never started."""
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    p.kill()
                p.wait()
        if p is not None:
            self.exit_status = p.returncode
        force_unmount(self.mnt)
        return self.exit_status

    def cleanup(self):
        """Remove the mount point and data directory (not the log)."""
        force_unmount(self.mnt)
        if not in_mount_table(self.mnt):
            shutil.rmtree(self.mnt, ignore_errors=True)
            shutil.rmtree(self.data, ignore_errors=True)
