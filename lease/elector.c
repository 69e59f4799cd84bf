/*
 * elector.c - see elector.h.
 *
 * Thread: "elector", one per node with a dynamic lease.  It owns the
 * lease backend and all state but `stop` and `req`, which other threads set
 * (under mu) to stop it or to ask for a hand-off.
 */
#include "lease/elector.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

#define RETRY_MIN_MS 100
#define MEMBERS_MAX 64
#define RETRY_MAX_MS 2000

/* A hand-off asked of the elector's thread by another thread. */
typedef struct request {
	enum { REQ_NONE, REQ_GIVE, REQ_TAKE } kind;
	char token[128];
	size_t cap;
	int done, rc;
	lx_err err;
} request;

struct elector {
	lease *lease;
	elector_options opt;
	elector_callbacks cb;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	int stop;                       /* under mu */
	int holding;                    /* elector thread only */
	request *req;                   /* under mu: the pending hand-off, or NULL */
	pthread_cond_t req_done;
	int64_t valid_until;            /* elector thread only */
	int64_t next_renew;
	int64_t retry_ms;
	uint64_t index;
	int warned;
	int announced;                  /* elector thread only */
	char holder_url[LEASE_URL_MAX + 1];   /* elector thread only: the last holder seen */
	char gone_url[LEASE_URL_MAX + 1];     /* under mu: a holder reported dead ... */
	int gone;                             /* ... pending (elector_holder_gone) */
	int announce_warned;
	elector_stats stats;            /* written by the elector thread, atomically */
};

/* Sleep until the monotonic instant `until`, or until stopped; 1 if stopped. */
static int sleep_until(elector *e, int64_t until)
{
	int stopped;
	pthread_mutex_lock(&e->mu);
	while (!e->stop && e->req == NULL) {
		int64_t left = until - lx_mono_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		ts = lx_mono_deadline((int)(left > 60000 ? 60000 : left));
		pthread_cond_timedwait(&e->wake, &e->mu, &ts);
	}
	stopped = e->stop;
	pthread_mutex_unlock(&e->mu);
	return stopped;
}

static int stopping(elector *e)
{
	int s;
	pthread_mutex_lock(&e->mu);
	s = e->stop;
	pthread_mutex_unlock(&e->mu);
	return s;
}

/* Back off after an error: 100 ms doubling to 2 s.  Logged once per run of
 * failures, then again when it clears. */
static void failed(elector *e, const char *what, const lx_err *err)
{
	if (!e->warned)
		lx_warn("lease", "%s: %s (retrying)", what, err->msg);
	e->warned = 1;
	sleep_until(e, lx_mono_ms() + e->retry_ms);
	e->retry_ms = e->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : e->retry_ms * 2;
}

static void succeeded(elector *e, const char *what)
{
	if (e->warned)
		lx_info("lease", "%s works again", what);
	e->warned = 0;
	e->retry_ms = RETRY_MIN_MS;
}


static void lose(elector *e, const char *why)
{
	lx_warn("lease", "lost the lease (%s): writes refused from now on", why);
	e->cb.fenced(e->cb.ctx);
	e->holding = 0;
	e->index = 0;
}

/* Holding: renew every ttl/3; give up when the lease may have run out. */
static void hold_step(elector *e)
{
	int64_t t0, valid;
	lx_err err;
	int rc;

	if (sleep_until(e, e->next_renew))
		return;
	if (lx_mono_ms() >= e->valid_until - e->opt.margin_ms) {
		lose(e, "not renewed in time");
		return;
	}
	t0 = lx_mono_ms();
	rc = e->lease->ops->renew(e->lease, &valid, &err);
	if (rc == 0) {
		__atomic_store_n(&e->stats.last_renew_ms, lx_mono_ms() - t0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&e->stats.renews, 1, __ATOMIC_RELAXED);
		succeeded(e, "lease renewal");
		e->valid_until = valid;
		e->next_renew = t0 + e->lease->ttl_ms / 3;
		e->cb.extended(e->cb.ctx, valid - e->opt.margin_ms);
		return;
	}
	if (rc == -ENOENT) {
		lose(e, err.msg);
		return;
	}
	if (rc == -EINTR) {             /* a hand-off request cut it short */
		e->next_renew = lx_mono_ms();
		return;
	}
	__atomic_add_fetch(&e->stats.renew_failures, 1, __ATOMIC_RELAXED);
	if (!e->warned)
		lx_warn("lease", "renew failed: %s (retrying until the lease runs out)", err.msg);
	e->warned = 1;
	e->next_renew = lx_mono_ms() + (e->lease->ttl_ms / 10 < 500 ? e->lease->ttl_ms / 10 : 500);
}

/* Tell the node, with the members to catch up from (none: a hand-off).
 * A node that declines gets the lease released for it, and waits a TTL. */
static void promote(elector *e, uint64_t epoch, int64_t valid, int with_peers)
{
	lease_holder *peers = with_peers ? calloc(MEMBERS_MAX, sizeof(*peers)) : NULL;
	size_t n = 0;
	lx_err err;
	int rc;
	if (peers != NULL && e->lease->ops->members(e->lease, peers, MEMBERS_MAX, &n, &err) < 0) {
		lx_warn("lease", "cannot list the cluster's members: %s (no catch-up)", err.msg);
		n = 0;
	}
	rc = e->cb.promoted(e->cb.ctx, epoch, valid - e->opt.margin_ms, peers, n);
	free(peers);
	if (rc == 0)
		return;
	e->holding = 0;
	e->index = 0;
	if (e->lease->ops->release(e->lease, &err) < 0)
		lx_warn("lease", "release: %s (the lease expires by itself)", err.msg);
	else
		lx_info("lease", "released the lease: this node declined to write");
	sleep_until(e, lx_mono_ms() + e->lease->ttl_ms);
}

/* Record this node as a member, until that works once. */
static void announce(elector *e)
{
	lx_err err;
	if (e->lease->ops->announce(e->lease, &e->opt.me, &err) == 0) {
		e->announced = 1;
	} else if (!e->announce_warned) {
		lx_warn("lease", "cannot record this node as a member: %s (retrying)", err.msg);
		e->announce_warned = 1;
	}
}

static void try_acquire(elector *e)
{
	int64_t valid;
	uint64_t epoch = 0;
	lx_err err;
	int rc = e->lease->ops->acquire(e->lease, &e->opt.me, &epoch, &valid, &err);
	if (rc < 0) {
		/* Look at the key again after the back-off: a blocking query on
		 * the index of the key as it was would wait out its whole period
		 * (a restarted Consul: no primary for 30 s). */
		e->index = 0;
		failed(e, "acquiring the lease", &err);
		return;
	}
	succeeded(e, "the lease service");
	if (rc == 0) {
		/* Held by another node, or its lock-delay runs: the key may not
		 * change when the delay ends, so look again soon. */
		sleep_until(e, lx_mono_ms() + RETRY_MIN_MS);
		e->index = 0;
		return;
	}
	if (lx_mono_ms() >= valid - e->opt.margin_ms) {
		/* Too slow to be of use: let it go rather than write blind. */
		e->lease->ops->release(e->lease, NULL);
		return;
	}
	lx_info("lease", "acquired the lease: primary with epoch %" PRIu64, epoch);
	e->valid_until = valid;
	e->next_renew = lx_mono_ms() + e->lease->ttl_ms / 3;
	e->holding = 1;
	promote(e, epoch, valid, 1);
}

/* Not holding: learn the holder (blocking query), follow it, or take it. */
static void watch_step(elector *e)
{
	lease_holder h;
	lx_err err;
	int rc = e->lease->ops->watch(e->lease, &e->index, e->opt.watch_wait_ms, &h, &err);
	if (rc < 0) {
		if (rc == -EINTR)
			return;         /* stopping, or a hand-off request to serve */
		e->index = 0;           /* the service may have restarted: read anew */
		failed(e, "watching the lease", &err);
		return;
	}
	succeeded(e, "the lease service");
	snprintf(e->holder_url, sizeof(e->holder_url), "%s", rc == 1 ? h.advertise_url : "");
	e->cb.follow(e->cb.ctx, rc == 1 ? &h : NULL);
	if (e->index == 0)
		e->index = 1;   /* never a non-blocking loop: Consul's indexes are >= 1 */
	if (rc == 0 && e->opt.candidate)
		try_acquire(e);   /* resets the index after an error or a refusal */
}

static int do_give(elector *e, request *r)
{
	int rc;
	if (!e->holding)
		return lx_err_set(&r->err, EAGAIN, "this node does not hold the lease");
	rc = e->lease->ops->give(e->lease, r->token, r->cap, &r->err);
	if (rc < 0)
		return rc;
	e->cb.fenced(e->cb.ctx);
	e->holding = 0;
	e->index = 0;
	lx_info("lease", "handed the lease over");
	return 0;
}

static int do_take(elector *e, request *r)
{
	int64_t valid;
	uint64_t epoch = 0;
	int rc;
	if (e->holding)
		return lx_err_set(&r->err, EAGAIN, "this node holds the lease already");
	rc = e->lease->ops->take(e->lease, r->token, &e->opt.me, &epoch, &valid, &r->err);
	if (rc == 0)
		return lx_err_set(&r->err, EAGAIN, "the lease could not be taken over (the "
				  "holder's session is gone or another node holds it)");
	if (rc < 0)
		return rc;
	lx_info("lease", "took the lease over: primary with epoch %" PRIu64, epoch);
	e->valid_until = valid;
	e->next_renew = lx_mono_ms() + e->lease->ttl_ms / 3;
	e->holding = 1;
	promote(e, epoch, valid, 0);
	return 0;
}

/* Serve a pending hand-off request, if any (elector thread). */
static void serve_request(elector *e)
{
	request *r;
	int rc;
	pthread_mutex_lock(&e->mu);
	r = e->req;
	if (r != NULL && !e->stop)
		e->lease->ops->resume(e->lease);   /* the interrupt was for us */
	pthread_mutex_unlock(&e->mu);
	if (r == NULL)
		return;
	rc = r->kind == REQ_GIVE ? do_give(e, r) : do_take(e, r);
	pthread_mutex_lock(&e->mu);
	r->rc = rc;
	r->done = 1;
	e->req = NULL;
	pthread_cond_broadcast(&e->req_done);
	pthread_mutex_unlock(&e->mu);
}

static int submit(elector *e, request *r, lx_err *err)
{
	pthread_mutex_lock(&e->mu);
	while (e->req != NULL && !e->stop)
		pthread_cond_wait(&e->req_done, &e->mu);
	if (e->stop) {
		pthread_mutex_unlock(&e->mu);
		return lx_err_set(err, ESHUTDOWN, "the node is stopping");
	}
	e->req = r;
	pthread_cond_broadcast(&e->wake);
	e->lease->ops->interrupt(e->lease);    /* out of a blocking watch */
	while (!r->done && !e->stop)
		pthread_cond_wait(&e->req_done, &e->mu);
	if (!r->done) {
		e->req = NULL;
		pthread_mutex_unlock(&e->mu);
		return lx_err_set(err, ESHUTDOWN, "the node is stopping");
	}
	pthread_mutex_unlock(&e->mu);
	if (r->rc < 0 && err != NULL)
		*err = r->err;
	return r->rc;
}

int elector_give(elector *e, char *token, size_t cap, lx_err *err)
{
	request r;
	int rc;
	memset(&r, 0, sizeof(r));
	r.kind = REQ_GIVE;
	r.cap = cap < sizeof(r.token) ? cap : sizeof(r.token);
	rc = submit(e, &r, err);
	if (rc == 0)
		snprintf(token, cap, "%s", r.token);
	return rc;
}

int elector_take(elector *e, const char *token, lx_err *err)
{
	request r;
	memset(&r, 0, sizeof(r));
	r.kind = REQ_TAKE;
	if (strlen(token) >= sizeof(r.token))
		return lx_err_set(err, EINVAL, "hand-off token too long");
	memcpy(r.token, token, strlen(token) + 1);
	return submit(e, &r, err);
}

/*
 * A holder reported dead (elector_holder_gone): a candidate breaks its hold
 * if the service can do so safely (lease_ops.break_holder), instead of
 * waiting for the service to expire it.
 */
static void break_dead_holder(elector *e)
{
	char url[LEASE_URL_MAX + 1];
	lx_err err;
	int rc;
	pthread_mutex_lock(&e->mu);
	if (!e->gone) {
		pthread_mutex_unlock(&e->mu);
		return;
	}
	e->gone = 0;
	memcpy(url, e->gone_url, sizeof(url));
	if (e->req == NULL && !e->stop)
		e->lease->ops->resume(e->lease);   /* the interrupt was for us */
	pthread_mutex_unlock(&e->mu);
	if (e->holding || !e->opt.candidate || e->lease->ops->break_holder == NULL ||
	    strcmp(url, e->holder_url) != 0)
		return;
	rc = e->lease->ops->break_holder(e->lease, url, &err);
	if (rc < 0)
		lx_warn("lease", "the primary at %s refuses connections, but its lease could not "
			"be broken: %s (it expires by itself)", url, err.msg);
	else if (rc == 1)
		lx_warn("lease", "the primary at %s refuses connections (its process is gone): its "
			"lease is broken, and no node acquires before its write deadline", url);
	e->index = 0;
}

void elector_holder_gone(elector *e, const char *holder_url)
{
	pthread_mutex_lock(&e->mu);
	if (!e->stop && !e->gone) {
		snprintf(e->gone_url, sizeof(e->gone_url), "%s", holder_url);
		e->gone = 1;
		pthread_cond_broadcast(&e->wake);
		e->lease->ops->interrupt(e->lease);    /* out of a blocking watch */
	}
	pthread_mutex_unlock(&e->mu);
}

static void *run(void *arg)
{
	elector *e = arg;
	while (!stopping(e)) {
		if (!e->announced)
			announce(e);
		serve_request(e);
		break_dead_holder(e);
		if (e->holding)
			hold_step(e);
		else
			watch_step(e);
	}
	if (e->holding) {
		lx_err err;
		e->cb.fenced(e->cb.ctx);          /* writes stop before the key is free */
		if (e->lease->ops->release(e->lease, &err) < 0)
			lx_warn("lease", "release on shutdown: %s (the lease expires by itself)",
				err.msg);
		else
			lx_info("lease", "released the lease");
		e->holding = 0;
	}
	return NULL;
}

int elector_start(elector **out, lease *l, const elector_options *o,
		  const elector_callbacks *cb, lx_err *err)
{
	elector *e = calloc(1, sizeof(*e));
	pthread_condattr_t ca;
	int rc;
	*out = NULL;
	if (e == NULL) {
		l->ops->close(l);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	e->lease = l;
	e->opt = *o;
	e->cb = *cb;
	e->retry_ms = RETRY_MIN_MS;
	e->index = 0;
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&e->req_done, NULL);
	rc = pthread_create(&e->thread, NULL, run, e);
	if (rc != 0) {
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->wake);
		pthread_cond_destroy(&e->req_done);
		l->ops->close(l);
		free(e);
		return lx_err_sys(err, rc, "start the elector thread");
	}
	*out = e;
	return 0;
}

void elector_stop(elector *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = 1;
	pthread_cond_broadcast(&e->wake);
	pthread_cond_broadcast(&e->req_done);
	e->lease->ops->interrupt(e->lease);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	e->lease->ops->close(e->lease);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->wake);
	pthread_cond_destroy(&e->req_done);
	free(e);
}

void elector_get_stats(elector *e, elector_stats *out)
{
	out->last_renew_ms = __atomic_load_n(&e->stats.last_renew_ms, __ATOMIC_RELAXED);
	out->renews = __atomic_load_n(&e->stats.renews, __ATOMIC_RELAXED);
	out->renew_failures = __atomic_load_n(&e->stats.renew_failures, __ATOMIC_RELAXED);
}
