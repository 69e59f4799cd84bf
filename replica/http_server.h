/*
 * http_server.h - the node's HTTP API (libmicrohttpd), on http.addr.
 *
 * GET /status (JSON), GET /metrics (Prometheus text), GET /health (for
 * load balancers), GET /events (newline-delimited JSON), POST /stream (the
 * replication stream, replica/stream_server.h), POST /promote and POST
 * /handoff (moving the primary role, cmd/node.h), POST /import and GET
 * /export (a database as one SQLite file), see docs/protocol.md.
 * Any other path is 404, any other method 405, both with a JSON error.
 *
 * Threads: libmicrohttpd's listening thread accepts; each connection gets
 * a thread of its own ("http connection"), which answers its requests and,
 * for /stream, /events and /export, produces the body as it goes.  They read database state through
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

/* What the server asks of the node.  Any hook may be NULL. */
typedef struct http_hooks {
	void *ctx;
	/* Fill the live fields of the node's status (role, lag, counters). */
	void (*refresh)(void *ctx, node_status *node);
	/* POST /promote: make this node the primary by a hand-off. */
	int (*promote)(void *ctx, lx_err *err);
	/* POST /handoff, on the primary: stop writing, wait until replica
	 * `node_id` was sent everything, and give it the lease.  *json: the
	 * answer's body (malloc'ed): the token and the final positions. */
	int (*handoff)(void *ctx, uint64_t node_id, char **json, lx_err *err);
	/* POST /import: make the SQLite file at `path` database `name`, in
	 * one transaction (the primary only: EAGAIN elsewhere, with the
	 * primary's URL in the message; EINVAL for a file that is not a sound
	 * database). */
	int (*import_db)(void *ctx, const char *name, const char *path, lx_err *err);
} http_hooks;

/*
 * Listen on `addr` ("host:port", ":port" for every address, "[v6]:port").
 * `node` is copied; its strings must outlive the server.  `hub` (the
 * primary's replication sessions) may be NULL: POST /stream is then 503.
 * `hooks` is copied.
 */
int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, stream_hub *hub, const http_hooks *hooks,
		      lx_err *err);
void http_server_stop(http_server *s);

#endif
