# ltxfs-acl-policy.hcl - what ltxfs needs from Consul (ACL rules, Consul
# 1.8 syntax), for lease.consul.key "myapp/primary" and the agents
# node1..node4 of docs/deployment.md.  Replace the key and the node names
# with yours.
#
# Create the policy and one token per ltxfs node (so a node's token can be
# revoked alone), with the management token from `consul acl bootstrap`:
#     consul acl policy create -name ltxfs-myapp -rules @ltxfs-acl-policy.hcl
#     consul acl token create -description "ltxfs node1" -policy-name ltxfs-myapp
# and give each node its token as lease.consul.token (via /etc/ltxfs.env).
#
# What ltxfs does with Consul (lease/consul.c, lease/consul_lease.c):
#   PUT  /v1/session/create              a TTL session with no health checks,
#                                        on the local agent's node
#   PUT  /v1/session/renew/ID            every TTL/3 while primary
#   PUT  /v1/session/destroy/ID          before each new attempt, and on stop
#   PUT  /v1/kv/KEY?acquire=ID           become primary (the value names it)
#   PUT  /v1/kv/KEY?release=ID           clean stop: the lease is free at once
#   GET  /v1/kv/KEY?index=N&wait=30000ms who is primary (blocking query)
#   GET  /v1/kv/KEY?consistent           the epoch, right after acquiring
#   GET  /v1/kv/KEY-cluster?consistent   the cluster ID ...
#   PUT  /v1/kv/KEY-cluster?cas=0        ... stored only if absent
#   PUT  /v1/kv/KEY-nodes/HOSTNAME       this node as a member (no session)
#   GET  /v1/kv/KEY-nodes/?recurse       the members, for the catch-up
# Nothing else: no catalog, service, health or agent endpoints.

# The lease key itself: read, blocking reads, acquire and release.
key "myapp/primary" {
  policy = "write"
}

# The cluster ID kept next to the lease key (created once, then read).
key "myapp/primary-cluster" {
  policy = "write"
}

# The members: each node writes its own entry and lists all of them.
key_prefix "myapp/primary-nodes/" {
  policy = "write"
}

# Sessions are created on the local agent's node (its node_name), so a
# node needs session:write there.  It also needs it on every other ltxfs
# node: in a hand-off (`ltxfs promote`) the new primary takes over the old
# primary's session, which belongs to the old primary's node, and renews,
# and at its own stop destroys, that session.  So list every ltxfs node's
# Consul node name here, or give the agents a common prefix and use
#     session_prefix "node" { policy = "write" }
session "node1" {
  policy = "write"
}
session "node2" {
  policy = "write"
}
session "node3" {
  policy = "write"
}
session "node4" {
  policy = "write"
}
