/*
 * node.h - what this node is, primary or replica, and the switch between
 * the two.
 *
 * The primary: its databases are writable (until the lease's write
 * deadline), it serves POST /stream.  A replica: its databases are
 * read-only through the mount, streams are refused, and a stream client
 * follows the primary.  With lease.type static the role is fixed at start
 * by lease.candidate.  With lease.type consul or etcd the elector
 * (lease/elector.h) decides, and the node switches at run time:
 *   promoted: stop following, take the epoch and the write deadline,
 *             become writable, serve streams;
 *   fenced:   read-only at once, end every stream;
 *   follow:   (re)start the stream client towards the lease holder.
 *
 * Hand-off (POST /promote on a candidate replica): the replica asks its
 * primary (POST /handoff); the primary stops writing, waits until that
 * replica has every transaction, and gives it the lease (elector_give);
 * the replica takes it over (elector_take) and is promoted.  No
 * acknowledged write is lost, and the lease is never free in between, so
 * no other candidate can slip in.
 *
 * Threads: the elector's thread calls the switches; HTTP and FUSE threads
 * read the role through node_refresh and the fs_role callbacks.
 */
#ifndef LTXFS_NODE_NODE_H
#define LTXFS_NODE_NODE_H

#include <stdint.h>

#include "base/err.h"
#include "config/config.h"
#include "db/store.h"
#include "fs/fs.h"
#include "proxy/proxy.h"
#include "replica/http_server.h"
#include "replica/status.h"
#include "replica/stream_server.h"

typedef struct node node;

/* Start in the role the lease gives; `c` and `st` outlive the node. */
int node_start(node **out, const ltxfs_config *c, store *st, uint64_t node_id, lx_err *err);

/* Stop deciding and following; if primary, fence, then give the lease up
 * (a clean stop hands the role over at once). */
void node_stop(node *n);
/* After the HTTP server stopped. */
void node_free(node *n);

/* The primary's streams, for the HTTP server. */
stream_hub *node_hub(node *n);

/* The HTTP server's hooks: /status, POST /promote, POST /handoff. */
http_hooks node_http_hooks(node *n);

/* 1 when the node stopped itself for a failure (another cluster's ID next
 * to the lease key): ltxfs must exit non-zero. */
int node_failed(node *n);

/* 1 when the node is ready: the primary holding its lease (caught up), or
 * a replica that has caught up with its primary; *primary says which. */
int node_ready(node *n, int *primary);

/* Take the primary role from the current primary by a hand-off (what POST
 * /promote does); 0 when this node is the primary already. */
int node_take_over(node *n, lx_err *err);

/* The role callbacks of the mount (.primary, .lag, attribute caching). */
fs_role node_fs_role(node *n);

/* Where the proxy sends writes (proxy/proxy.h's `primary` callback; `arg`
 * is the node): here, the primary's proxy as its stream said, or nowhere
 * known now. */
enum proxy_route node_proxy_route(void *arg, char *url, size_t cap);

#endif
