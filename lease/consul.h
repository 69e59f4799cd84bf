/*
 * consul.h - the Consul HTTP API calls a lease needs: a session with a TTL
 * and no health checks, acquire/release of the lease key, blocking reads
 * of it, and check-and-set writes (docs/lease.md, "The Consul lease").
 *
 * One `consul` is one client (one net/http_client) used by one thread at a
 * time; the session it creates belongs to it.  Every call is synchronous.
 * Errors are values with the Consul URL in the message:
 *   -ENOENT   the session or key is gone (renew of an expired session),
 *   -EACCES   Consul refused the ACL token (HTTP 403),
 *   -EAGAIN   Consul answered 5xx (no leader, invalid session, ...), or
 *             could not be reached, or did not answer in time: unknown,
 *             try again; never a proof that the lease is lost,
 *   -EPROTO   an answer that is not what the API documents.
 */
#ifndef LTXFS_LEASE_CONSUL_H
#define LTXFS_LEASE_CONSUL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct consul consul;

typedef struct consul_options {
	const char *url;                /* e.g. http://127.0.0.1:8500 (no trailing path) */
	const char *key;                /* the lease key, e.g. ltxfs/primary */
	const char *token;              /* ACL token sent as X-Consul-Token, or NULL */
	const char *session_name;       /* shown by Consul, e.g. "ltxfs node1" */
	int64_t ttl_ms;                 /* session TTL (Consul's minimum is 10 s by default) */
	int64_t lock_delay_ms;          /* sent explicitly, never Consul's 15 s default */
	int64_t timeout_ms;             /* per request; blocking reads add their wait */
	const int *abort;               /* optional: when *abort is set (atomically, by
					 * another thread) a call in progress fails EINTR */
} consul_options;

/* One KV entry as GET /v1/kv/KEY returns it. */
typedef struct consul_entry {
	int present;                    /* 0: the key does not exist */
	uint64_t modify_index;
	uint64_t lock_index;
	char session[64];               /* the holding session, "" when unlocked */
	char value[1024];               /* the decoded value, NUL-terminated */
	size_t value_len;
} consul_entry;

int consul_open(consul **out, const consul_options *o, lx_err *err);
void consul_close(consul *c);

/* Create this client's session.  *sent_ms: the monotonic time the request
 * was sent, the earliest instant the TTL can have started from. */
int consul_session_create(consul *c, int64_t *sent_ms, lx_err *err);

/* Renew it; *sent_ms as above.  -ENOENT: the session is gone. */
int consul_session_renew(consul *c, int64_t *sent_ms, lx_err *err);

/* Destroy it (idempotent); forgets the ID. */
int consul_session_destroy(consul *c, lx_err *err);
/* Destroy another session (one handed over to us). */
int consul_session_destroy_id(consul *c, const char *id, lx_err *err);

/* "" when there is no session. */
const char *consul_session_id(const consul *c);

/* From another thread: end the call in progress now (with opt.abort set
 * it fails EINTR). */
void consul_interrupt(consul *c);

/* Make `id` this client's session (a hand-off), or forget the session
 * without destroying it (id ""). */
void consul_session_adopt(consul *c, const char *id);

/* Acquire the lease key with this client's session, storing `value`.
 * Returns 1 and the epoch (the key's ModifyIndex, read back with
 * ?consistent) when acquired; 0 when another session holds the key or its
 * lock-delay runs. */
int consul_acquire(consul *c, const char *value, uint64_t *epoch, lx_err *err);
/* In one transaction (/v1/txn), unlock the key held by session `from` and
 * lock it with ours, writing `value`: the key is never unheld and no
 * lock-delay applies.  1 and the epoch when our session holds it after,
 * 0 when `from` did not hold it (nothing changed), or a negative errno. */
int consul_move_lock(consul *c, const char *from, const char *value, uint64_t *epoch,
		     lx_err *err);

/* Release the lease key (no lock-delay), clearing its value.  1 if this
 * session held it. */
int consul_release(consul *c, lx_err *err);

/* Read `key` (NULL: the lease key).  With *index > 0 and wait_ms > 0 it is
 * a blocking query: it returns when the key's index moves past *index or
 * after about wait_ms.  *index is set to X-Consul-Index (reset to 0 when
 * it went backwards, as Consul's documentation requires).  `consistent`
 * asks the Consul leader to confirm its leadership first. */
int consul_get(consul *c, const char *key, uint64_t *index, int64_t wait_ms, int consistent,
	       consul_entry *e, lx_err *err);

/* PUT `value` at `key` only if its ModifyIndex is `cas` (0: only if it
 * does not exist).  1 if written, 0 if not. */
int consul_put_cas(consul *c, const char *key, const char *value, uint64_t cas, lx_err *err);

/* PUT `value` at `key` unconditionally. */
int consul_put(consul *c, const char *key, const char *value, lx_err *err);

/* The entries under `prefix` (at most max; none: *n 0). */
int consul_list(consul *c, const char *prefix, consul_entry *v, size_t max, size_t *n,
		lx_err *err);

/* Pure parsers, exposed for the unit tests. */
int consul_parse_entry(const char *body, size_t len, consul_entry *e, lx_err *err);
int consul_parse_entries(const char *body, size_t len, consul_entry *v, size_t max,
			 size_t *n, lx_err *err);
int consul_parse_session_id(const char *body, size_t len, char out[64], lx_err *err);

#endif
