# /etc/consul.d/server.hcl - a Consul server (Consul 1.8 syntax: Debian 11's
# consul 1.8.7).  One per region: node1 (region A), node2 (B), node3 (C),
# on the same VPSes as ltxfs (docs/deployment.md).  The three files differ
# only in node_name, bind_addr, advertise_addr and the certificate names.
#
# Addresses are the WireGuard addresses (10.10.0.1, .2, .3): Consul's
# ports are never opened on a public interface.
#
# Before the first start (once, on one machine; copy the results to the
# others over a trusted channel):
#     consul keygen                                  # -> encrypt below
#     consul tls ca create                           # consul-agent-ca.pem, -key.pem
#     consul tls cert create -server -dc dc1         # once per server
#     consul tls cert create -client -dc dc1         # once per client agent
# Then start all three servers, and on one of them:
#     consul acl bootstrap                           # prints the management token
# (docs/deployment.md, "Consul", lists the remaining steps.)
#
# Newer Consul (1.12 and later) moves the TLS keys below into a `tls`
# block and renames acl.tokens.master; this file is for 1.8.

# One datacenter spanning the three regions.  Sessions and the KV store
# belong to a datacenter, so the lease needs all three servers in one Raft
# group: a region can then be lost (two of three servers keep quorum) and
# the lease lives on.  Three federated datacenters would be three separate
# KV stores, and no lease.
datacenter         = "dc1"
primary_datacenter = "dc1"   # where ACLs are authoritative; required for ACLs

node_name = "node1"
data_dir  = "/var/lib/consul"
server    = true

# Wait for all three servers before electing the first leader.
bootstrap_expect = 3

# Gossip and RPC on the WireGuard interface only.
bind_addr      = "10.10.0.1"
advertise_addr = "10.10.0.1"
retry_join     = ["10.10.0.1", "10.10.0.2", "10.10.0.3"]

# The HTTP API (8500) and DNS answer on localhost only: ltxfs talks to
# its local agent, which carries its requests to the leader over TLS.
client_addr = "127.0.0.1"
ports {
  http  = 8500
  https = -1   # not used: the HTTP API never leaves the machine
  grpc  = -1   # only for Connect/Envoy, not used
  dns   = 8600 # optional (localhost); -1 turns it off
}

# The shortest session TTL a client may ask for.  ltxfs's
# lease.consul.ttl must be at least this, or Consul answers
# "Invalid Session TTL" and no node can become primary.  Keep the default
# 10s: a shorter TTL fails over faster after a crash but also turns a
# slow Raft election into a needless failover (docs/deployment.md,
# "Latency").  The same value on every server.
session_ttl_min = "10s"

# Raft timing.  1 is HashiCorp's setting for production servers on a LAN;
# the default, 5, waits 5 to 10 s to notice a dead leader.  Across regions
# (tens to a couple of hundred ms between servers) 2 is a compromise: a
# leader election takes a few seconds, and ordinary jitter does not
# trigger elections.  Whatever you choose, an election must finish well
# within lease.consul.ttl - ttl/10 - ttl/3 (8.5 s with ttl 15s), or the
# primary steps down during it.  Watch `consul operator raft list-peers`
# and the servers' logs for leadership changes.
performance {
  raft_multiplier = 2
}

# A server that stops does not leave the cluster: it stays a Raft peer
# and rejoins when it comes back, so quorum arithmetic does not change
# during restarts and upgrades.  (Already the default for servers; written
# down because it matters.)  Leaving would also deregister the node, and
# Consul destroys every session of a deregistered node at once, TTL or
# not: if one of them holds the ltxfs lease, the lease is freed while the
# primary still accepts writes (see deploy/consul/client.hcl).
leave_on_terminate      = false
skip_leave_on_interrupt = true

# Autopilot removes a failed server from the cluster about ten seconds
# after a new leader settles (measured with 1.8.7), which deregisters its
# node and destroys its sessions, as above.  After `ltxfs promote` the
# primary holds the session of the node it took over from, so a dead
# server can take the lease of a healthy primary with it.  Remove dead
# servers by hand instead (docs/operations.md, "Consul maintenance").
# These keys are read only when the cluster is first bootstrapped; on a
# running cluster use
#     consul operator autopilot set-config -cleanup-dead-servers=false
autopilot {
  cleanup_dead_servers = false
  # The leader's heartbeats cross regions: 200ms (the default) would call
  # a healthy remote server unhealthy.
  last_contact_threshold = "1s"
}

# Nothing on these machines needs them.
disable_remote_exec  = true
enable_script_checks = false
disable_update_check = true
ui                   = false

# Gossip encryption: a 32-byte key from `consul keygen`, the same on every
# agent (servers and clients).  Without it anyone who reaches port 8301
# can read and inject cluster membership messages.
encrypt                 = "REPLACE-WITH-consul-keygen-OUTPUT"
encrypt_verify_incoming = true
encrypt_verify_outgoing = true

# TLS for RPC (8300) between agents.  Servers present server.dc1.consul
# certificates; verify_server_hostname stops a client certificate from
# posing as a server.  verify_incoming_rpc makes every agent that talks
# RPC to this server present a certificate from our CA.  The HTTPS API is
# off, so verify_incoming (which would also cover HTTPS) is not needed.
ca_file                = "/etc/consul.d/tls/consul-agent-ca.pem"
cert_file              = "/etc/consul.d/tls/dc1-server-consul-0.pem"
key_file               = "/etc/consul.d/tls/dc1-server-consul-0-key.pem"
verify_incoming_rpc    = true
verify_outgoing        = true
verify_server_hostname = true

# ACLs, default deny: a request without a token may do nothing.  ltxfs
# gets a token with deploy/consul/ltxfs-acl-policy.hcl (lease.consul.token).
acl {
  enabled        = true
  default_policy = "deny"
  # When the leader cannot be asked about a token, keep using what was
  # cached rather than refusing: a renew refused during a Consul hiccup
  # would make the primary step down.
  down_policy = "extend-cache"
  # Tokens set with `consul acl set-agent-token` survive restarts.
  enable_token_persistence = true
  # The agent's own token (node:write on its node name), for registering
  # itself.  Create it after `consul acl bootstrap`, then either paste it
  # here or set it with `consul acl set-agent-token agent TOKEN`.  Until
  # then the agent logs "Coordinate update blocked by ACLs"; harmless.
  tokens {
    agent = "REPLACE-WITH-AGENT-TOKEN"
  }
}
