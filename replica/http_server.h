/*
 * http_server.h - the node's HTTP API (libmicrohttpd), on http.addr.
 *
 * GET /status (JSON), GET /metrics (Prometheus text) and POST /stream (the
 * replication stream, replica/stream_server.h), see docs/protocol.md.
 * Any other path is 404, any other method 405, both with a JSON error.
 *
 * Threads: libmicrohttpd's listening thread accepts; each connection gets
 * a thread of its own ("http connection"), which answers its requests and,
 * for /stream, drives the session.  They read database state through
 * db_status_get() and the stream functions (each database's mutex,
 * briefly); they never write a database.
 */
#ifndef LTXFS_REPLICA_HTTP_SERVER_H
#define LTXFS_REPLICA_HTTP_SERVER_H

#include "base/err.h"
#include "db/store.h"
#include "replica/status.h"
#include "replica/stream_server.h"

typedef struct http_server http_server;

/* Fill the live fields of the node's status (lag, ready, counters). */
typedef void (*http_refresh_fn)(void *ctx, node_status *node);

/*
 * Listen on `addr` ("host:port", ":port" for every address, "[v6]:port").
 * `node` is copied; its strings must outlive the server.  `hub` (the
 * primary's replication sessions) may be NULL: POST /stream is then 503.
 * `refresh` may be NULL.
 */
int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, stream_hub *hub, http_refresh_fn refresh,
		      void *refresh_ctx, lx_err *err);
void http_server_stop(http_server *s);

#endif
