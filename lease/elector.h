/*
 * elector.h - who is primary: one thread that holds, renews, loses and
 * watches a lease (lease.h) and tells the node what to be.
 *
 * A candidate that sees nobody holding the lease tries to acquire it; once
 * it holds it, it renews it every ttl/3.  Every other node watches the
 * lease with blocking queries and follows the holder.  Writes are fenced
 * by time, not by the thread being on time: each acquire or renew gives a
 * write deadline, write_until = valid_until - margin, and the node refuses
 * writes past it (db/store.h store_set_write_deadline) even if this thread
 * is stuck in a slow request.  The bound is stated in docs/lease.md.
 *
 * Callbacks run on the elector's thread, one at a time, in this order of
 * life: follow* -> promoted -> extended* -> fenced -> follow* ...
 * The thread also records this node as a member of the cluster with the
 * lease service (lease_ops.announce) until that succeeds once.
 */
#ifndef LTXFS_LEASE_ELECTOR_H
#define LTXFS_LEASE_ELECTOR_H

#include <stdint.h>

#include "base/err.h"
#include "lease/lease.h"

typedef struct elector elector;

typedef struct elector_callbacks {
	void *ctx;
	/* This node holds the lease under `epoch`: accept writes until the
	 * monotonic instant write_until.  `peers` (n_peers) are the members
	 * the lease service records (this node among them), for the catch-up
	 * before the first write; none after a hand-off, whose taker has
	 * caught up already.  Runs on the elector's thread, so it must return
	 * well within ttl/2 (the next renew waits for it).  Returns 0, or -1
	 * when the node declines to write (it cannot be sure to hold every
	 * acknowledged transaction, replication.mode sync): the elector then
	 * releases the lease and waits a TTL before it tries again, so that
	 * another candidate may. */
	int (*promoted)(void *ctx, uint64_t epoch, int64_t write_until,
			const lease_holder *peers, size_t n_peers);
	/* A renew moved the write deadline. */
	void (*extended)(void *ctx, int64_t write_until);
	/* Stop accepting writes now: the lease is lost, or given up. */
	void (*fenced)(void *ctx);
	/* Another node holds the lease (h), or nobody does (h NULL). */
	void (*follow)(void *ctx, const lease_holder *h);
} elector_callbacks;

typedef struct elector_options {
	lease_holder me;                /* hostname and advertise URL; epoch unused */
	int candidate;                  /* may acquire */
	int64_t margin_ms;              /* write_until = valid_until - margin */
	int64_t watch_wait_ms;          /* longest blocking query */
} elector_options;

/* Start the thread; `l` is owned by the elector from now on. */
int elector_start(elector **out, lease *l, const elector_options *o,
		  const elector_callbacks *cb, lx_err *err);

/* Stop the thread.  If this node holds the lease: fenced, then released,
 * so that another candidate can take it at once. */
void elector_stop(elector *e);

/*
 * The holder at `holder_url` refuses connections: its process is gone
 * (node.c learns it from the replication stream).  A candidate then breaks
 * its hold where the lease service allows it safely (Consul: a fence, then
 * the session destroyed; docs/lease.md), so the cluster waits about one TTL
 * for a new primary instead of up to two.  Any thread; returns at once.
 */
void elector_holder_gone(elector *e, const char *holder_url);

/*
 * Hand-off (ltxfs promote).  Holder side: once the node has stopped
 * writing and the taker has caught up, give the lease away: fenced is
 * called, the lease is not released, and token[cap] gets what the taker
 * needs.  Taker side: take it over with that token: promoted is called
 * with a new epoch.  Both run on the elector's thread; these calls wait
 * for it.  -EAGAIN: not holding (give) or already holding (take).
 */
int elector_give(elector *e, char *token, size_t cap, lx_err *err);
int elector_take(elector *e, const char *token, lx_err *err);

/* Renewals since start (for /metrics); any thread. */
typedef struct elector_stats {
	int64_t last_renew_ms;      /* how long the last successful renew took */
	uint64_t renews;            /* successful */
	uint64_t renew_failures;    /* failed attempts (retried) */
} elector_stats;
void elector_get_stats(elector *e, elector_stats *out);

#endif
