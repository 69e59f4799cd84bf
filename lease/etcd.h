/*
 * etcd.h - the etcd v3 calls a lease needs, over the JSON gateway that
 * etcd 3.4 (Debian 12's) serves at /v3/ (docs/lease.md): leases (grant,
 * keep-alive, revoke), a create-if-absent transaction bound to a lease,
 * reads, plain writes, prefix reads and a watch that waits for the next
 * change of one key.
 *
 * One `etcd` is one client used by one thread at a time.  Keys and values
 * are strings here; they travel base64-encoded.  Errors are values with the
 * etcd URL in the message:
 *   -ENOENT   the lease is gone (keep-alive of an expired lease),
 *   -EAGAIN   etcd answered 5xx, could not be reached or did not answer in
 *             time: unknown, try again,
 *   -EINTR    interrupted (etcd_interrupt with the abort flag set),
 *   -EPROTO   an answer that is not what the API documents.
 */
#ifndef LTXFS_LEASE_ETCD_H
#define LTXFS_LEASE_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct etcd etcd;

typedef struct etcd_options {
	const char *url;                /* e.g. http://127.0.0.1:2379 */
	int64_t timeout_ms;             /* per request; a watch adds its wait */
	const int *abort;               /* optional, as in consul_options */
} etcd_options;

/* One key as etcd holds it. */
typedef struct etcd_kv {
	int present;
	char value[1024];               /* decoded, NUL-terminated */
	size_t value_len;
	uint64_t lease;                 /* 0: not bound to a lease */
	uint64_t create_revision;
	uint64_t mod_revision;
} etcd_kv;

int etcd_open(etcd **out, const etcd_options *o, lx_err *err);
void etcd_close(etcd *e);
void etcd_interrupt(etcd *e);

/* A lease of ttl_s seconds: *id, *granted_s (etcd may round up), and the
 * monotonic time the request was sent. */
int etcd_grant(etcd *e, int64_t ttl_s, uint64_t *id, int64_t *granted_s, int64_t *sent_ms,
	       lx_err *err);
/* Keep lease `id` alive: *ttl_s from now (as etcd received it); -ENOENT if
 * it is gone. */
int etcd_keepalive(etcd *e, uint64_t id, int64_t *ttl_s, int64_t *sent_ms, lx_err *err);
/* Revoke it; the keys bound to it are deleted at once. */
int etcd_revoke(etcd *e, uint64_t id, lx_err *err);

/* Create `key` = value bound to `lease` if the key does not exist: 1 and
 * the revision of the write, or 0 and the current holder's entry. */
int etcd_create(etcd *e, const char *key, const char *value, uint64_t lease,
		uint64_t *revision, etcd_kv *holder, lx_err *err);
/* Overwrite `key` = value, still bound to `lease`, only if it is bound to
 * `lease` now (a hand-off): 1 and the revision, or 0. */
int etcd_replace(etcd *e, const char *key, const char *value, uint64_t lease,
		 uint64_t *revision, lx_err *err);
/* Read `key`; *revision: the store's revision when read. */
int etcd_get(etcd *e, const char *key, etcd_kv *kv, uint64_t *revision, lx_err *err);
/* Write `key` = value, not bound to a lease. */
int etcd_put(etcd *e, const char *key, const char *value, lx_err *err);
/* The keys under `prefix`, at most max. */
int etcd_list(etcd *e, const char *prefix, etcd_kv *v, size_t max, size_t *n, lx_err *err);
/* Wait until `key` changes after revision `after`, or about wait_ms. */
int etcd_watch(etcd *e, const char *key, uint64_t after, int64_t wait_ms, lx_err *err);

/* Pure parser, exposed for the unit tests: the kvs of a range answer and
 * its header revision (etcd sends int64 fields as strings, and leaves out
 * fields that are zero). */
int etcd_parse_range(const char *body, size_t len, etcd_kv *v, size_t max, size_t *n,
		     uint64_t *revision, lx_err *err);

#endif
