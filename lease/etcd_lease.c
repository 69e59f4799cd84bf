/*
 * etcd_lease.c - the lease on etcd (see etcd_lease.h, docs/lease.md).
 *
 * Holding: an etcd lease that created the key.  etcd expires a lease no
 * earlier than TTL after it received the last keep-alive, and a request is
 * received after it was sent, so the key stays ours until at least (send
 * time of the last successful grant/keep-alive) + TTL: that is
 * valid_until.  Not holding: the key's value names the holder; a watch on
 * the key tells at once when it changes.
 */
#include "lease/etcd_lease.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease/etcd.h"

#define MEMBERS_SUFFIX "-nodes/"

typedef struct etcd_lease {
	lease base;                     /* first: an etcd_lease is a lease */
	etcd *e;
	char *key;
	char members[512];              /* KEY-nodes/ */
	int64_t ttl_s;
	uint64_t id;                    /* our etcd lease, 0: none */
	int abort;                      /* atomic: interrupt() */
} etcd_lease;

static etcd_lease *of(lease *l)
{
	return (etcd_lease *)l;
}

static void drop_lease(etcd_lease *el)
{
	if (el->id != 0)
		etcd_revoke(el->e, el->id, NULL);
	el->id = 0;
}

static int el_acquire(lease *l, const lease_holder *me, uint64_t *epoch, int64_t *valid_until,
		      lx_err *err)
{
	etcd_lease *el = of(l);
	char *value = lease_holder_encode(me);
	etcd_kv holder;
	int64_t sent, granted;
	int rc;
	if (value == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	drop_lease(el);                 /* a fresh lease for every attempt */
	rc = etcd_grant(el->e, el->ttl_s, &el->id, &granted, &sent, err);
	if (rc == 0)
		rc = etcd_create(el->e, el->key, value, el->id, epoch, &holder, err);
	free(value);
	if (rc == 1)
		*valid_until = sent + granted * 1000;
	else
		drop_lease(el);         /* not needed, or an ambiguous create undone */
	return rc;
}

static int el_renew(lease *l, int64_t *valid_until, lx_err *err)
{
	etcd_lease *el = of(l);
	int64_t sent, ttl;
	int rc = el->id ? etcd_keepalive(el->e, el->id, &ttl, &sent, err) :
			  lx_err_set(err, ENOENT, "no etcd lease to keep alive");
	if (rc == 0)
		*valid_until = sent + ttl * 1000;
	return rc;
}

static int el_release(lease *l, lx_err *err)
{
	etcd_lease *el = of(l);
	int rc = 0;
	__atomic_store_n(&el->abort, 0, __ATOMIC_RELEASE);
	/* Revoking deletes the key at once: a watcher acquires without waiting. */
	if (el->id != 0)
		rc = etcd_revoke(el->e, el->id, err);
	el->id = 0;
	return rc;
}

static int el_watch(lease *l, uint64_t *index, int64_t wait_ms, lease_holder *h, lx_err *err)
{
	etcd_lease *el = of(l);
	etcd_kv kv;
	uint64_t rev;
	int rc = 0;
	if (*index > 0 && wait_ms > 0)
		rc = etcd_watch(el->e, el->key, *index, wait_ms, err);
	if (rc == 0)
		rc = etcd_get(el->e, el->key, &kv, &rev, err);
	if (rc < 0)
		return rc;
	*index = rev;
	if (!kv.present || kv.lease == 0 || kv.value_len == 0)
		return 0;
	rc = lease_holder_decode(kv.value, kv.value_len, h, err);
	if (rc < 0)
		return lx_err_wrap(err, "etcd key %s: ", el->key);
	h->epoch = kv.mod_revision;
	return 1;
}

static int el_give(lease *l, char *token, size_t cap, lx_err *err)
{
	etcd_lease *el = of(l);
	if (el->id == 0)
		return lx_err_set(err, ENOENT, "no etcd lease to hand over");
	snprintf(token, cap, "%" PRIu64, el->id);
	el->id = 0;                     /* forget it, do not revoke it */
	return 0;
}

/* Keep the given lease alive (it must be), then rewrite the key, still
 * bound to it, with our value: a new mod_revision (the epoch), never a
 * moment unheld. */
static int el_take(lease *l, const char *token, const lease_holder *me, uint64_t *epoch,
		   int64_t *valid_until, lx_err *err)
{
	etcd_lease *el = of(l);
	char *value, *end;
	int64_t sent, ttl;
	uint64_t id = strtoull(token, &end, 10);
	int rc;
	if (*token == '\0' || *end != '\0' || id == 0)
		return lx_err_set(err, EINVAL, "malformed hand-off token");
	if ((value = lease_holder_encode(me)) == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	drop_lease(el);
	rc = etcd_keepalive(el->e, id, &ttl, &sent, err);
	if (rc == -ENOENT)
		rc = 0;
	else if (rc == 0)
		rc = etcd_replace(el->e, el->key, value, id, epoch, err);
	free(value);
	if (rc == 1) {
		el->id = id;
		*valid_until = sent + ttl * 1000;
	}
	return rc;
}

static void el_interrupt(lease *l)
{
	__atomic_store_n(&of(l)->abort, 1, __ATOMIC_RELEASE);
	etcd_interrupt(of(l)->e);
}

static void el_resume(lease *l)
{
	__atomic_store_n(&of(l)->abort, 0, __ATOMIC_RELEASE);
}

static int el_announce(lease *l, const lease_holder *me, lx_err *err)
{
	etcd_lease *el = of(l);
	char key[sizeof(el->members) + sizeof(me->hostname)];
	char *value = lease_holder_encode(me);
	int rc;
	if (value == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s%s", el->members, me->hostname);
	rc = etcd_put(el->e, key, value, err);
	free(value);
	return rc;
}

static int el_members(lease *l, lease_holder *out, size_t max, size_t *n, lx_err *err)
{
	etcd_lease *el = of(l);
	etcd_kv *v = calloc(max ? max : 1, sizeof(*v));
	size_t got = 0;
	int rc;
	*n = 0;
	if (v == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = etcd_list(el->e, el->members, v, max, &got, err);
	for (size_t i = 0; rc == 0 && i < got; i++)
		if (lease_holder_decode(v[i].value, v[i].value_len, &out[*n], NULL) == 0)
			(*n)++;              /* a malformed entry is nobody */
	free(v);
	return rc;
}

static void el_close(lease *l)
{
	etcd_lease *el = of(l);
	etcd_close(el->e);
	free(el->key);
	free(el);
}

static int el_bind_cluster(lease *l, char *id, size_t cap, lx_err *err)
{
	etcd_lease *el = of(l);
	char key[sizeof(el->members) + 16];
	etcd_kv kv;
	uint64_t rev;
	int rc;
	snprintf(key, sizeof(key), "%s-cluster", el->key);
	rc = etcd_get(el->e, key, &kv, &rev, err);
	if (rc < 0)
		return rc;
	if (!kv.present && id[0] == '\0')
		return 0;
	if (!kv.present) {
		rc = etcd_create(el->e, key, id, 0, &rev, &kv, err);   /* not bound to a lease */
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return lease_cluster_match(kv.value, kv.value_len, id, cap, el->key, err);
}

static const lease_ops etcd_lease_ops = {
	el_acquire, el_renew, el_release, el_watch, el_give, el_take, el_interrupt, el_resume,
	el_announce, el_members, el_bind_cluster, NULL, el_close, "etcd",
};

int etcd_lease_open(lease **out, const etcd_lease_options *o, lx_err *err)
{
	etcd_lease *el = calloc(1, sizeof(*el));
	etcd_options eo;
	int rc;
	*out = NULL;
	if (el == NULL || (el->key = strdup(o->key)) == NULL) {
		free(el);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	memset(&eo, 0, sizeof(eo));
	eo.url = o->url;
	eo.timeout_ms = o->ttl_ms / 3 > 100 ? o->ttl_ms / 3 : 100;
	eo.abort = &el->abort;
	rc = etcd_open(&el->e, &eo, err);
	if (rc < 0) {
		free(el->key);
		free(el);
		return rc;
	}
	el->ttl_s = (o->ttl_ms + 999) / 1000;
	snprintf(el->members, sizeof(el->members), "%s" MEMBERS_SUFFIX, o->key);
	el->base.ops = &etcd_lease_ops;
	el->base.ttl_ms = el->ttl_s * 1000;
	*out = &el->base;
	return 0;
}
