"""etcd_server.py - a real etcd for the tests (Debian's etcd-server).

    with EtcdServer(dir) as e:      # one etcd member on free 127.0.0.1 ports
        e.url                       # http://127.0.0.1:PORT
        e.stop(); e.start()         # its data directory keeps its state

It is stopped by PID, never by name.
"""

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import ltxfs_helpers as H

START_TIMEOUT = 30


def binary():
    return os.environ.get("LTXFS_ETCD_BIN", "/usr/bin/etcd")


class EtcdServer:
    def __init__(self, work_dir=None, host="127.0.0.1"):
        self.host = host
        self.client_port = H.free_port()
        self.peer_port = H.free_port()
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="ltxfs-etcd-")
        self.data_dir = os.path.join(self.work_dir, "data")
        self.log_path = os.path.join(self.work_dir, "etcd.log")
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.client_port)

    def start(self):
        peer = "http://%s:%d" % (self.host, self.peer_port)
        args = [binary(), "--name", "n1", "--data-dir", self.data_dir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "n1=" + peer, "--logger", "zap",
                "--log-level", "warn"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("etcd exited %s: %s" % (self.proc.returncode,
                                                             H.file_tail(self.log_path)))
            try:
                self.request("kv/range", {"key": _b64("ready?")})
                return self
            except Exception as e:        # not up yet
                last = e
                time.sleep(0.1)
        raise AssertionError("etcd not ready in %d s: %s" % (START_TIMEOUT, last))

    def request(self, path, body, timeout=10):
        req = urllib.request.Request(self.url + "/v3/" + path, data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def kv_get(self, key):
        """The key's entry (value decoded, lease as an int), or None."""
        kvs = self.request("kv/range", {"key": _b64(key)}).get("kvs")
        if not kvs:
            return None
        kv = kvs[0]
        kv["Value"] = base64.b64decode(kv.get("value", "")).decode()
        kv["lease"] = int(kv.get("lease", "0"))
        return kv

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _b64(s):
    return base64.b64encode(s.encode()).decode()
