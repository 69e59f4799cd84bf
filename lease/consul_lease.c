/*
 * consul_lease.c - the lease on Consul (see consul_lease.h, docs/lease.md).
 *
 * Holding: a session (TTL, explicit lock-delay, Behavior delete, no health
 * checks) that acquired the key.  Consul does not invalidate a session
 * before TTL has passed since it received the last renew, and a key whose
 * session was invalidated cannot be acquired before the lock-delay has
 * passed.  A request is received after it was sent, so the lease is ours
 * until at least (send time of the last successful create/renew) + TTL:
 * that is valid_until.  Not holding: the key's value names the holder; a
 * blocking query on the key tells at once when it changes.
 *
 * A dead holder (its process gone) would hold the key until Consul
 * invalidates its session, up to twice the TTL.  A candidate that knows
 * the holder is dead breaks its hold (cl_break_holder): it writes a fence
 * (KEY-fence) first, then destroys the holder's session.  Every node that
 * sees a fence acquires only one TTL after it first saw it, which is after
 * the dead holder's write deadline (its last renew was sent before the
 * fence was written, and its deadline is that send time plus TTL minus a
 * margin).  A node checks the fence before acquiring and again after (a
 * fence written in between makes it let go and wait); the node that
 * acquires past a fence clears it.
 */
#include "lease/consul_lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "lease/consul.h"

/* Members are kept under KEY-nodes/HOSTNAME. */
#define MEMBERS_SUFFIX "-nodes/"

typedef struct consul_lease {
	lease base;                     /* first: a consul_lease is a lease */
	consul *c;
	int abort;                      /* atomic: interrupt() */
	char members[512];              /* KEY-nodes/ */
	char key[512];                  /* the lease key */
	char fence[520];                /* KEY-fence */
	uint64_t fence_index;           /* the fence seen last (ModifyIndex) */
	int64_t fence_seen_ms;          /* ... first seen then (monotonic) */
} consul_lease;

static consul_lease *of(lease *l)
{
	return (consul_lease *)l;
}

/* Acquire the key with the current session, whose TTL runs from `sent`. */
static int acquire_key(consul_lease *cl, int64_t sent, const lease_holder *me, uint64_t *epoch,
		       int64_t *valid_until, lx_err *err)
{
	char *value = lease_holder_encode(me);
	int rc;
	if (value == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = consul_acquire(cl->c, value, epoch, err);
	free(value);
	if (rc == 1)
		*valid_until = sent + cl->base.ttl_ms;
	return rc;
}

/* 1 while a fence keeps this node from acquiring (one TTL from when it
 * first saw it), 0 when it may; *index: the fence's ModifyIndex, 0 if
 * there is none. */
static int fence_blocks(consul_lease *cl, uint64_t *index, lx_err *err)
{
	consul_entry e;
	uint64_t qi = 0;
	int rc = consul_get(cl->c, cl->fence, &qi, 0, 1, &e, err);
	*index = 0;
	if (rc < 0)
		return rc;
	if (!e.present || e.value_len == 0)
		return 0;
	*index = e.modify_index;
	if (cl->fence_index != e.modify_index) {
		cl->fence_index = e.modify_index;
		cl->fence_seen_ms = lx_mono_ms();
		lx_info("lease", "a dead primary's lease was broken: no node acquires before its "
			"write deadline (%lld ms from now)", (long long)cl->base.ttl_ms);
	}
	return lx_mono_ms() < cl->fence_seen_ms + cl->base.ttl_ms;
}

static int cl_acquire(lease *l, const lease_holder *me, uint64_t *epoch, int64_t *valid_until,
		      lx_err *err)
{
	consul_lease *cl = of(l);
	uint64_t fence, again;
	int64_t sent;
	int rc = fence_blocks(cl, &fence, err);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	/* A fresh session for every attempt: an old one may have expired. */
	consul_session_destroy(cl->c, NULL);
	rc = consul_session_create(cl->c, &sent, err);
	if (rc == 0)
		rc = acquire_key(cl, sent, me, epoch, valid_until, err);
	if (rc == 1) {
		rc = fence_blocks(cl, &again, err);
		if (rc == 0 && again == fence) {
			if (fence != 0)        /* spent: the next election need not wait */
				consul_put_cas(cl->c, cl->fence, "", fence, NULL);
			return 1;
		}
		consul_release(cl->c, NULL);   /* a fence appeared meanwhile: let go, wait */
		rc = rc < 0 ? rc : 0;
	}
	/* not needed (or unknown: an ambiguous acquire is undone) */
	consul_session_destroy(cl->c, NULL);
	return rc;
}

static int cl_renew(lease *l, int64_t *valid_until, lx_err *err)
{
	consul_lease *cl = of(l);
	int64_t sent;
	int rc = consul_session_renew(cl->c, &sent, err);
	if (rc == 0)
		*valid_until = sent + l->ttl_ms;
	return rc;
}

static int cl_release(lease *l, lx_err *err)
{
	consul_lease *cl = of(l);
	int rc;
	__atomic_store_n(&cl->abort, 0, __ATOMIC_RELEASE);
	/* Release first: a destroyed session's keys get the lock-delay, a
	 * released key can be taken at once. */
	rc = consul_release(cl->c, err);
	if (consul_session_destroy(cl->c, rc < 0 ? NULL : err) < 0 && rc >= 0)
		rc = -EAGAIN;
	return rc < 0 ? rc : 0;
}

static int cl_watch(lease *l, uint64_t *index, int64_t wait_ms, lease_holder *h, lx_err *err)
{
	consul_lease *cl = of(l);
	consul_entry e;
	int rc = consul_get(cl->c, NULL, index, wait_ms, 0, &e, err);
	if (rc < 0)
		return rc;
	/* Held means a session holds the key; a released key keeps no value. */
	if (!e.present || e.session[0] == '\0' || e.value_len == 0)
		return 0;
	rc = lease_holder_decode(e.value, e.value_len, h, err);
	if (rc < 0)
		return lx_err_wrap(err, "lease key held by session %s: ", e.session);
	h->epoch = e.modify_index;
	return 1;
}

static int cl_break_holder(lease *l, const char *holder_url, lx_err *err)
{
	consul_lease *cl = of(l);
	consul_entry e;
	lease_holder h;
	uint64_t index = 0;
	int rc = consul_get(cl->c, NULL, &index, 0, 1, &e, err);
	if (rc < 0)
		return rc;
	if (!e.present || e.session[0] == '\0' || e.value_len == 0 ||
	    lease_holder_decode(e.value, e.value_len, &h, NULL) < 0 ||
	    strcmp(h.advertise_url, holder_url) != 0)
		return 0;                      /* someone else holds it now */
	/* The fence first: once the session is gone, the key is free. */
	rc = consul_put(cl->c, cl->fence, e.session, err);
	if (rc == 0)
		rc = consul_session_destroy_id(cl->c, e.session, err);
	return rc < 0 ? rc : 1;
}

static int cl_give(lease *l, char *token, size_t cap, lx_err *err)
{
	consul_lease *cl = of(l);
	const char *id = consul_session_id(cl->c);
	if (id[0] == '\0' || strlen(id) >= cap)
		return lx_err_set(err, ENOENT, "no session to hand over");
	memcpy(token, id, strlen(id) + 1);
	consul_session_adopt(cl->c, "");       /* forget it, do not destroy it */
	return 0;
}

/* Move the key from the given session to a new one of ours, in one
 * transaction.  The given session lives on the old primary's Consul node,
 * and Consul destroys a node's sessions when the node leaves the catalog
 * (its agent stops with leave, autopilot removes a dead server): that
 * would free the key under us without the TTL bound the write deadline
 * relies on.  Ours lives on our own agent's node.  1 when moved. */
static int move_to_own_session(consul_lease *cl, const char *given, const lease_holder *me,
			       uint64_t *epoch, int64_t *valid_until, lx_err *err)
{
	char *value = lease_holder_encode(me);
	int64_t sent;
	int rc;
	if (value == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	consul_session_adopt(cl->c, "");
	rc = consul_session_create(cl->c, &sent, err);
	if (rc == 0)
		rc = consul_move_lock(cl->c, given, value, epoch, err);
	free(value);
	if (rc == 1) {
		*valid_until = sent + cl->base.ttl_ms;
		consul_session_destroy_id(cl->c, given, NULL);   /* holds nothing now */
		return 1;
	}
	consul_session_destroy(cl->c, NULL);
	consul_session_adopt(cl->c, given);
	return rc;
}

/* Renew the given session (it must still be alive), then move the key to
 * a session of our own (above); if that cannot be done, re-acquire the key
 * with the given session: Consul lets a holder's session acquire again,
 * which writes our value and a new ModifyIndex (the epoch).  Either way
 * the key is never unheld. */
static int cl_take(lease *l, const char *token, const lease_holder *me, uint64_t *epoch,
		   int64_t *valid_until, lx_err *err)
{
	consul_lease *cl = of(l);
	int64_t sent;
	lx_err why;
	int rc;
	consul_session_destroy(cl->c, NULL);
	consul_session_adopt(cl->c, token);
	rc = consul_session_renew(cl->c, &sent, err);
	if (rc == 0 && move_to_own_session(cl, token, me, epoch, valid_until, &why) == 1)
		return 1;
	if (rc == 0) {
		lx_warn("lease", "hand-off: the lease stays on the old primary's Consul session "
			"(%s); it ends if that node leaves the Consul catalog", why.msg);
		rc = acquire_key(cl, sent, me, epoch, valid_until, err);
	}
	if (rc != 1)
		consul_session_adopt(cl->c, "");      /* not ours: forget it */
	return rc;
}

static void cl_interrupt(lease *l)
{
	__atomic_store_n(&of(l)->abort, 1, __ATOMIC_RELEASE);
	consul_interrupt(of(l)->c);
}

static void cl_resume(lease *l)
{
	__atomic_store_n(&of(l)->abort, 0, __ATOMIC_RELEASE);
}

static void cl_close(lease *l)
{
	consul_lease *cl = of(l);
	if (cl == NULL)
		return;
	consul_close(cl->c);
	free(cl);
}

/* A plain key per node, no session: it outlives the node, and a stale one
 * costs a peer one unanswered status request (docs/lease.md). */
static int cl_announce(lease *l, const lease_holder *me, lx_err *err)
{
	consul_lease *cl = of(l);
	char key[sizeof(cl->members) + sizeof(me->hostname)];
	char *value = lease_holder_encode(me);
	int rc;
	if (value == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s%s", cl->members, me->hostname);
	rc = consul_put(cl->c, key, value, err);
	free(value);
	return rc;
}

static int cl_members(lease *l, lease_holder *out, size_t max, size_t *n, lx_err *err)
{
	consul_lease *cl = of(l);
	consul_entry *v = calloc(max ? max : 1, sizeof(*v));
	size_t got = 0;
	int rc;
	*n = 0;
	if (v == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = consul_list(cl->c, cl->members, v, max, &got, err);
	for (size_t i = 0; rc == 0 && i < got; i++)
		if (lease_holder_decode(v[i].value, v[i].value_len, &out[*n], NULL) == 0)
			(*n)++;              /* a malformed entry is nobody */
	free(v);
	return rc;
}

static int cl_bind_cluster(lease *l, char *id, size_t cap, lx_err *err)
{
	consul_lease *cl = of(l);
	char key[sizeof(cl->key) + 16];
	snprintf(key, sizeof(key), "%s-cluster", cl->key);
	for (int attempt = 0; attempt < 3; attempt++) {
		consul_entry e;
		uint64_t index = 0;
		int rc = consul_get(cl->c, key, &index, 0, 1, &e, err);
		if (rc < 0)
			return rc;
		if (e.present && e.value_len > 0)
			return lease_cluster_match(e.value, e.value_len, id, cap, cl->key, err);
		if (id[0] == '\0')
			return 0;
		rc = consul_put_cas(cl->c, key, id, e.present ? e.modify_index : 0, err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		/* another node stored one meanwhile: compare with it */
	}
	return lx_err_set(err, EAGAIN, "consul: %s keeps changing", key);
}

static const lease_ops consul_lease_ops = {
	cl_acquire, cl_renew, cl_release, cl_watch, cl_give, cl_take, cl_interrupt, cl_resume,
	cl_announce, cl_members, cl_bind_cluster, cl_break_holder, cl_close, "consul",
};

int consul_lease_open(lease **out, const consul_lease_options *o, lx_err *err)
{
	consul_lease *cl = calloc(1, sizeof(*cl));
	consul_options co;
	int rc;
	*out = NULL;
	if (cl == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	memset(&co, 0, sizeof(co));
	co.url = o->url;
	co.key = o->key;
	co.token = o->token;
	co.session_name = o->session_name;
	co.ttl_ms = o->ttl_ms;
	co.lock_delay_ms = o->lock_delay_ms;
	co.timeout_ms = o->ttl_ms / 3 > 100 ? o->ttl_ms / 3 : 100;
	co.abort = &cl->abort;
	rc = consul_open(&cl->c, &co, err);
	if (rc < 0) {
		free(cl);
		return rc;
	}
	cl->base.ops = &consul_lease_ops;
	cl->base.ttl_ms = o->ttl_ms;
	snprintf(cl->members, sizeof(cl->members), "%s" MEMBERS_SUFFIX, o->key);
	snprintf(cl->key, sizeof(cl->key), "%s", o->key);
	snprintf(cl->fence, sizeof(cl->fence), "%s-fence", o->key);
	*out = &cl->base;
	return 0;
}
