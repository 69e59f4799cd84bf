"""netns.py - a private network for tests that cut nodes off.

    with Network(3) as net:       # a bridge and 3 network namespaces
        net.gateway               # the bridge's address (for Consul)
        net.addr(i)               # node i's address
        net.wrap(i, argv)         # argv run inside namespace i
        net.cut(i); net.heal(i)   # node i loses / regains the network

Each namespace is joined to one bridge in the root namespace by a veth
pair.  Cutting a node takes its bridge-side link down: its packets go
nowhere and nobody's reach it (connections hang, as in a real partition),
while its FUSE mount is untouched.  Processes enter only the network
namespace (nsenter --net), not a mount namespace as `ip netns exec` would,
so their FUSE mounts are visible to the test.  Everything is removed on
exit, also when a test fails.  Needs root, iproute2 and nsenter.
"""

import os
import subprocess


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=30)


class Network:
    def __init__(self, nodes):
        tag = os.getpid() % 10000
        self.n = nodes
        self.bridge = "ltxbr%d" % tag
        self.prefix = "10.%d.%d" % (200 + tag // 250 % 50, tag % 250)
        self.ns = ["ltxns%d-%d" % (tag, i) for i in range(nodes)]
        self.host_if = ["ltxv%d-%d" % (tag, i) for i in range(nodes)]
        self.made = []

    @property
    def gateway(self):
        return self.prefix + ".1"

    def addr(self, i):
        return "%s.%d" % (self.prefix, 10 + i)

    def wrap(self, i, argv):
        return ["nsenter", "--net=/run/netns/" + self.ns[i], "--"] + list(argv)

    def cut(self, i):
        _ip("link", "set", self.host_if[i], "down")

    def heal(self, i):
        _ip("link", "set", self.host_if[i], "up")

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _create(self):
        self.close()                      # leftovers of a crashed run with this PID
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made.append(("link", self.bridge))
        _ip("addr", "add", self.gateway + "/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, host = self.ns[i], self.host_if[i]
            _ip("netns", "add", ns)
            self.made.append(("netns", ns))
            _ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.made.append(("link", host))
            _ip("link", "set", host, "master", self.bridge)
            _ip("link", "set", host, "up")
            _ip("-n", ns, "addr", "add", self.addr(i) + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def close(self):
        for i in range(self.n):
            _ip("link", "del", self.host_if[i], check=False)
            _ip("netns", "del", self.ns[i], check=False)
        _ip("link", "del", self.bridge, check=False)
        self.made = []
