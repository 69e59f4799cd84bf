"""consul_server.py - a real Consul agent for the tests.

    with ConsulServer() as c:       # consul agent -dev on free ports of 127.0.0.1
        c.url                       # http://127.0.0.1:PORT (or host=ADDR)
        c.stop(); c.start()         # a dev agent starts empty again

The binary is Debian 11's consul package, fetched by
tests/tools/fetch-consul.sh (the Makefile sets LTXFS_CONSUL_BIN).  The agent
accepts 1 s session TTLs (session_ttl_min) so failover tests stay short.
It is stopped by PID, never by name.
"""

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
    b = os.environ.get("LTXFS_CONSUL_BIN", "")
    if not b:
        here = os.path.dirname(os.path.abspath(__file__))
        b = os.path.join(here, "..", "..", "build", "tools", "bin", "consul")
    return os.path.abspath(b)


class ConsulServer:
    def __init__(self, log_dir=None, host="127.0.0.1", acl_token=None):
        """acl_token: ACLs on, default policy deny, this token as the
        master (and the agent's own) token."""
        self.host = host
        self.acl_token = acl_token
        self.http_port = H.free_port()
        self.proc = None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="ltxfs-consul-")
        self.log_path = os.path.join(self.log_dir, "consul.log")

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.http_port)

    def start(self):
        args = [binary(), "agent", "-dev", "-bind", self.host, "-client", self.host,
                "-http-port", str(self.http_port), "-dns-port", "-1", "-grpc-port", "-1",
                "-serf-lan-port", str(H.free_port()), "-serf-wan-port", str(H.free_port()),
                "-server-port", str(H.free_port()), "-log-level", "warn",
                "-hcl", 'session_ttl_min = "1s"']
        if self.acl_token:
            args += ["-hcl", 'acl { enabled = true default_policy = "deny" '
                     'tokens { master = "%s" agent = "%s" } }' % (self.acl_token, self.acl_token)]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        """Until a session can be created: a fresh agent answers 500 until
        its node is registered."""
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("consul exited %s: %s" % (self.proc.returncode,
                                                                H.file_tail(self.log_path)))
            try:
                sid = self.request("PUT", "/v1/session/create", {"TTL": "10s", "Checks": []})["ID"]
                self.request("PUT", "/v1/session/destroy/" + sid)
                return
            except Exception as e:        # not up yet
                last = e
                time.sleep(0.2)
        raise AssertionError("consul not ready in %d s: %s" % (START_TIMEOUT, last))

    def request(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if self.acl_token:
            req.add_header("X-Consul-Token", self.acl_token)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
        return json.loads(text) if text.strip() else None

    def kv_get(self, key):
        """The entry of `key` as Consul returns it, or None."""
        try:
            return self.request("GET", "/v1/kv/" + key)[0]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
