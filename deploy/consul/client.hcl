# /etc/consul.d/client.hcl - a Consul client agent (Consul 1.8 syntax) on
# an ltxfs node that does not run a Consul server: a fourth node (node4,
# 10.10.0.4, a read replica in another region, say), or every ltxfs node
# when the three servers run on machines of their own.  A machine that
# runs a server (deploy/consul/server.hcl) needs no client agent: ltxfs
# talks to the server's local HTTP API in the same way.
#
# Why a local agent rather than pointing ltxfs at a server directly: the
# token and the lease traffic stay on localhost in plain HTTP, and the
# agent forwards them to whichever server is reachable, over TLS on 8300.

datacenter = "dc1"            # the servers' datacenter
node_name  = "node4"          # unique; the ACL policy names it (session)
data_dir   = "/var/lib/consul"
server     = false

bind_addr      = "10.10.0.4"  # WireGuard address
advertise_addr = "10.10.0.4"
retry_join     = ["10.10.0.1", "10.10.0.2", "10.10.0.3"]

# HTTP API on localhost only: ltxfs's lease.consul.url is
# http://127.0.0.1:8500.
client_addr = "127.0.0.1"
ports {
  http  = 8500
  https = -1
  grpc  = -1
  dns   = -1   # or 8600 if something local resolves *.consul names
}

# Never leave the cluster on a stop.  A client that leaves (Consul's
# default for clients on SIGTERM and SIGINT, and `consul leave`) is
# deregistered, and Consul destroys every session of its node at once,
# TTL or not.  If that session holds the lease, the key is freed while the
# primary, cut off from its stopped agent, goes on accepting writes until
# its own deadline (up to TTL - TTL/10): another candidate can become
# primary after lock-delay, and two nodes accept writes.  Measured with
# Consul 1.8.7: the key was gone within a second of SIGINT to the agent.
# A stopped agent that does not leave is only "failed"; sessions without
# health checks (ltxfs's) survive that.  See docs/operations.md, "Consul
# maintenance".
leave_on_terminate      = false
skip_leave_on_interrupt = true

disable_remote_exec  = true
enable_script_checks = false
disable_update_check = true

# The same gossip key as the servers.
encrypt                 = "REPLACE-WITH-consul-keygen-OUTPUT"
encrypt_verify_incoming = true
encrypt_verify_outgoing = true

# TLS towards the servers: verify they are servers of dc1 signed by our
# CA, and present a client certificate (the servers require one:
# verify_incoming_rpc).  Create it with `consul tls cert create -client
# -dc dc1` on the machine that holds the CA key.
ca_file                = "/etc/consul.d/tls/consul-agent-ca.pem"
cert_file              = "/etc/consul.d/tls/dc1-client-consul-0.pem"
key_file               = "/etc/consul.d/tls/dc1-client-consul-0-key.pem"
verify_outgoing        = true
verify_server_hostname = true

acl {
  enabled                  = true
  default_policy           = "deny"
  down_policy              = "extend-cache"
  enable_token_persistence = true
  tokens {
    # node:write on "node4", for the agent's own registration.
    agent = "REPLACE-WITH-AGENT-TOKEN"
  }
}
