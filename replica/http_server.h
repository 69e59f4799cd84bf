/*
 * http_server.h - the node's HTTP API (libmicrohttpd), on http.addr.
 *
 * Today: GET /status (JSON) and GET /metrics (Prometheus text), see
 * docs/protocol.md; the replication stream joins them with replication.
 * Any other path is 404, any other method 405, both with a JSON error.
 *
 * Threads: libmicrohttpd's own polling thread ("http") answers requests;
 * it reads database state through db_status_get() (each database's mutex,
 * briefly) and the store's list; it never writes.
 */
#ifndef LTXFS_REPLICA_HTTP_SERVER_H
#define LTXFS_REPLICA_HTTP_SERVER_H

#include "base/err.h"
#include "db/store.h"
#include "replica/status.h"

typedef struct http_server http_server;

/*
 * Listen on `addr` ("host:port", ":port" for every address, "[v6]:port").
 * `node` is copied; its strings must outlive the server.
 */
int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, lx_err *err);
void http_server_stop(http_server *s);

#endif
