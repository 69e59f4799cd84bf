/*
 * http_server.h - the node's HTTP API (libmicrohttpd), on http.addr.
 *
 * GET /status (JSON), GET /metrics (Prometheus text), GET /health (for
 * load balancers), GET /events (newline-delimited JSON), POST /stream (the
 * replication stream, replica/stream_server.h), POST /promote and POST
 * /handoff (moving the primary role, node/node.h), POST /import and GET
 * /export (a database as one SQLite file), see docs/protocol.md.
 * Any other path is 404, any other method 405, both with a JSON error.
 *
 * Authentication (http_auth.c): with a token, every request but GET
 * /health must carry "Authorization: Bearer <token>" (else 401 with
 * WWW-Authenticate: Bearer); the read token is good for GET /status,
 * /metrics and /events only (else 403).  With TLS client-auth, a client
 * certificate chaining to the CA is required too (else 403).  Decided on
 * the headers, before any body is read; tokens are compared in constant
 * time and never logged nor echoed.  TLS (http_tls.c): HTTPS with the
 * certificate re-read by http_server_reload_tls().
 *
 * Threads: libmicrohttpd's listening thread accepts (poll(2), so any
 * descriptor number works); each connection gets a thread of its own
 * ("http connection"), which answers its requests and, for /stream,
 * /events and /export, produces the body as it goes.  They read database
 * state through db_status_get() and the stream functions (each database's
 * mutex, briefly); they never write a database.
 *
 * Limits (http_limits): at most max_connections connections, and
 * max_connections_per_ip from one address (one more is closed at once, and
 * logged); long-lived responses have budgets of their
 * own well below that, so they can never take the slots that /health,
 * /status and the replicas' /stream need: max_event_streams concurrent
 * GET /events and max_transfers concurrent GET /export and POST /import,
 * each answered 503 when full.  Request bodies have a size limit per
 * endpoint (max_import_size for /import, the protocol's for /stream, 64
 * KiB for anything else): a declared Content-Length above it is answered
 * 413 before a byte of the body is read, and a chunked body that grows
 * past it is cut (the connection closed, an import's partial file removed).
 */
#ifndef LTXFS_REPLICA_HTTP_SERVER_H
#define LTXFS_REPLICA_HTTP_SERVER_H

#include "backup/shipper.h"
#include "base/err.h"
#include "db/store.h"
#include "replica/status.h"
#include "replica/stream_server.h"

typedef struct http_server http_server;

/* Resource limits (the http.* keys, docs/configuration.md). */
typedef struct http_limits {
	unsigned max_connections;     /* open connections at once */
	unsigned max_connections_per_ip; /* from one client address; 0: no limit */
	unsigned max_event_streams;   /* GET /events at once; 0: none served */
	unsigned max_transfers;       /* GET /export and POST /import at once; 0: none */
	uint64_t max_import_size;     /* bytes of a POST /import body */
} http_limits;

#define HTTP_DEFAULT_MAX_CONNECTIONS 256u
#define HTTP_DEFAULT_MAX_CONNECTIONS_PER_IP 0u
#define HTTP_DEFAULT_MAX_EVENT_STREAMS 32u
#define HTTP_DEFAULT_MAX_TRANSFERS 8u
#define HTTP_DEFAULT_MAX_IMPORT_SIZE (16ULL << 30)

/* Who may use the API (the http.token / http.tls.* keys,
 * docs/configuration.md "Securing the HTTP API").  Strings are copied or
 * hashed at start; NULL members mean "off". */
typedef struct http_security {
	const char *token;          /* required on everything but /health */
	const char *read_token;     /* grants GET /status, /metrics, /events only */
	const char *tls_cert, *tls_key;   /* PEM files: HTTPS */
	const char *tls_ca;         /* PEM CA bundle client certificates must chain to */
	int tls_client_auth;        /* require a client certificate (needs tls_ca) */
} http_security;

/* What the server asks of the node.  Any hook may be NULL. */
typedef struct http_hooks {
	void *ctx;
	/* Fill the live fields of the node's status (role, lag, counters). */
	void (*refresh)(void *ctx, node_status *node);
	/* POST /promote: make this node the primary by a hand-off. */
	int (*promote)(void *ctx, lx_err *err);
	/* POST /handoff, on the primary: check that replica `node_id` streams
	 * from this node, from address `peer` (the caller's), then stop
	 * writing, wait until it was sent everything, and give it the lease.
	 * *json: the answer's body (malloc'ed): the token and the final
	 * positions.  A refusal (-ENXIO, 409) leaves writes untouched. */
	int (*handoff)(void *ctx, uint64_t node_id, const char *peer, char **json,
		       lx_err *err);
	/* POST /import: make the SQLite file at `path` database `name`, in
	 * one transaction (the primary only: EAGAIN elsewhere, with the
	 * primary's URL in the message; EINVAL for a file that is not a sound
	 * database). */
	int (*import_db)(void *ctx, const char *name, const char *path, lx_err *err);
	/* The continuous backup (backup.url), or NULL: its position per
	 * database in /status and /metrics, its lag in /health. */
	backup_shipper *backup;
} http_hooks;

/*
 * Listen on `addr` ("host:port", ":port" for every address, "[v6]:port").
 * `node` is copied; its strings must outlive the server.  `hub` (the
 * primary's replication sessions) may be NULL: POST /stream is then 503.
 * `hooks` and `limits` are copied; `limits` NULL means the defaults.  A
 * failure to listen says why (the system's reason, e.g. "Address already
 * in use"), in `err`.
 */
int http_server_start(http_server **out, const char *addr, store *st,
		      const node_status *node, stream_hub *hub, const http_hooks *hooks,
		      const http_limits *limits, const http_security *sec, lx_err *err);
void http_server_stop(http_server *s);

/* 1 when the server speaks HTTPS. */
int http_server_tls(const http_server *s);
/* Re-read the TLS certificate, key and CA (SIGHUP): the next handshake
 * uses them.  If any does not load, the old ones stay and `err` says why.
 * Any thread. */
int http_server_reload_tls(http_server *s, lx_err *err);

#endif
