/*
 * lease.h - what a lease says about its holder, shared by every backend.
 *
 * The primary's lease names the holder (its hostname, the URL replicas
 * stream from) and carries an epoch: a number the lease service makes
 * strictly larger at every acquisition (Consul: the key's ModifyIndex read
 * back after acquiring; etcd: the revision of the winning transaction).
 * Data stamped with an older epoch than one a node has seen is refused.
 *
 * The value stored under the lease key is JSON, as LiteFS stores it:
 *     {"hostname":"node1","advertise-url":"http://node1:20202"}
 * Pure functions: no state, no I/O.
 */
#ifndef LTXFS_LEASE_LEASE_H
#define LTXFS_LEASE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define LEASE_HOSTNAME_MAX 255
#define LEASE_URL_MAX 511

typedef struct lease_holder {
	char hostname[LEASE_HOSTNAME_MAX + 1];
	char advertise_url[LEASE_URL_MAX + 1];
	uint64_t epoch;                 /* 0 when unknown */
} lease_holder;

/*
 * A lease backend (lease/consul_lease.c; the static lease needs none).
 * Used by one thread, the elector's (lease/elector.h).  Times are
 * monotonic milliseconds (base/clock.h).
 */
typedef struct lease lease;

typedef struct lease_ops {
	/* Try to become the holder, as `me`.  1: held, with *epoch and
	 * *valid_until: before that instant no other node can hold the
	 * lease.  0: another node holds it, or it cannot be taken yet
	 * (Consul's lock-delay).  -errno: unknown (the service is unreachable). */
	int (*acquire)(lease *l, const lease_holder *me, uint64_t *epoch, int64_t *valid_until,
		       lx_err *err);
	/* Extend the held lease; *valid_until as above.  -ENOENT: it was lost. */
	int (*renew)(lease *l, int64_t *valid_until, lx_err *err);
	/* Give it up at once, so another node can take it without waiting. */
	int (*release)(lease *l, lx_err *err);
	/* The holder: 1 and *h, or 0 when nobody holds it.  With *index > 0,
	 * waits up to wait_ms for a change after *index (a blocking query) and
	 * updates *index. */
	int (*watch)(lease *l, uint64_t *index, int64_t wait_ms, lease_holder *h, lx_err *err);
	/* Hand-off, holder side: stop holding without releasing and return in
	 * token[cap] what lets another node take the lease over (Consul: the
	 * session ID).  The lease stays held, by nobody here, until taken or
	 * expired. */
	int (*give)(lease *l, char *token, size_t cap, lx_err *err);
	/* Hand-off, taker side: take the lease over with `token`, as `me`;
	 * results as acquire (the epoch is a new one). */
	int (*take)(lease *l, const char *token, const lease_holder *me, uint64_t *epoch,
		    int64_t *valid_until, lx_err *err);
	/* Make a watch or any call in progress return soon (another thread);
	 * calls fail with EINTR until resume. */
	void (*interrupt)(lease *l);
	void (*resume)(lease *l);
	/* Record `me` as a member of the cluster (for catch-up, docs/lease.md). */
	int (*announce)(lease *l, const lease_holder *me, lx_err *err);
	/* The members recorded, at most max, into out[*n]. */
	int (*members)(lease *l, lease_holder *out, size_t max, size_t *n, lx_err *err);
	/* The cluster ID kept next to the lease key (KEY-cluster), so that two
	 * clusters never share a key by accident: absent, store id[] (only if
	 * still absent; nothing when id is ""); stored and id "": copy it into
	 * id[cap]; stored and different: -EEXIST, with the remedy. */
	int (*bind_cluster)(lease *l, char *id, size_t cap, lx_err *err);
	/* Optional (NULL: the service expires a silent holder within one TTL
	 * by itself, as etcd does).  The holder whose advertise URL is
	 * `holder_url` is dead (its address refuses connections): end its hold
	 * now, such that no node, this one included, acquires the lease before
	 * that holder's write deadline has passed.  1: broken; 0: that holder
	 * no longer holds it; -errno. */
	int (*break_holder)(lease *l, const char *holder_url, lx_err *err);
	void (*close)(lease *l);
	const char *name;               /* "consul" */
} lease_ops;

struct lease {
	const lease_ops *ops;
	int64_t ttl_ms;                 /* how long a renew keeps it; renewals run at ttl/3 */
};

/* The JSON value for `h` into a malloc'ed string (NULL: out of memory). */
char *lease_holder_encode(const lease_holder *h);

/* bind_cluster's decision, once the stored ID (stored[len], len 0: none)
 * is known; `key` names the lease key in the message. */
int lease_cluster_match(const char *stored, size_t len, char *id, size_t cap, const char *key,
			lx_err *err);

/* Parse a stored value.  A value that is not such an object, or lacks
 * either field, or has one too long, is EINVAL with the reason. */
int lease_holder_decode(const char *value, size_t len, lease_holder *h, lx_err *err);

#endif
