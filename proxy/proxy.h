/*
 * proxy.h - the HTTP proxy in front of the application (proxy.*,
 * docs/configuration.md; docs/deployment.md, "Multi-region application").
 *
 * ltxfs listens on proxy.addr; the application listens on proxy.target.
 * Every request is routed:
 *   - a path that matches a proxy.passthrough glob goes to the application
 *     as it is;
 *   - a write (any method but GET, HEAD, OPTIONS, TRACE) goes to the
 *     application on the primary, and on a replica to the primary's proxy;
 *     its answer carries the position of proxy.db once the application
 *     answered (a `__txid` cookie, and an `Ltxfs-Txid` header for API
 *     clients).  During a failover a write waits (up to 10 s) for a primary;
 *   - a read that carries a position (the cookie, or an Ltxfs-Txid request
 *     header) waits until this node holds it (replica/position_wait.h), at
 *     most proxy.max-lag; then it goes to the local application, or, when
 *     the position did not arrive in time and proxy.on-lag is `forward`, to
 *     the primary's proxy.
 * Bodies pass both ways as they come (proxy/http1.h follows their framing),
 * X-Forwarded-For and X-Forwarded-Proto are added, an Upgrade (WebSocket)
 * becomes a byte pipe, and connections are kept alive.
 *
 * Threads: "proxy" accepts; each client connection has a thread of its own
 * ("proxy-conn") that blocks on its two sockets.  They share the options
 * (read-only after proxy_start) and the connection list (mutex).
 */
#ifndef LTXFS_PROXY_PROXY_H
#define LTXFS_PROXY_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "db/store.h"

typedef struct proxy proxy;

/* Where writes go: PROXY_SELF (this node is the primary), PROXY_REMOTE
 * (url filled: the primary's proxy, "http://host:port"), PROXY_NONE (no
 * primary known now). */
enum proxy_route { PROXY_SELF, PROXY_REMOTE, PROXY_NONE };

typedef struct proxy_options {
	const char *addr;            /* "host:port" to listen on */
	const char *target;          /* "host:port" of the application */
	const char *db;              /* the database whose position is tracked */
	const char *const *passthrough;  /* path globs (fnmatch), NULL-terminated; may be NULL */
	int64_t max_lag_ms;          /* how long a read waits for its position */
	int lag_forward;             /* after max_lag_ms: 1 forward to the primary, 0 serve here */
	store *store;
	enum proxy_route (*primary)(void *ctx, char *url, size_t cap);
	void *ctx;
} proxy_options;

/* Listen and serve until proxy_stop(); the strings are copied. */
int proxy_start(proxy **out, const proxy_options *o, lx_err *err);
/* Stop accepting, end every connection, free it. */
void proxy_stop(proxy *p);

/* Requests handled, by where they went (kept for /status and /metrics,
 * which do not show them yet). */
typedef struct proxy_stats {
	uint64_t local, forwarded, waited, lag_timeouts, failed;
} proxy_stats;

#endif
