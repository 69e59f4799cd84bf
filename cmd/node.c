/*
 * node.c - the node's role and its switches (see node.h).
 */
#include "cmd/node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "lease/cluster_id.h"
#include "lease/consul_lease.h"
#include "lease/elector.h"
#include "replica/stream_client.h"

#define WATCH_WAIT_MS 30000

struct node {
	const ltxfs_config *config;
	store *store;
	uint64_t node_id;
	int64_t started_ms;
	stream_hub hub;
	elector *elector;               /* NULL with a static lease */

	pthread_mutex_t mu;             /* guards everything below */
	int primary;                    /* this node holds the lease */
	uint64_t epoch;
	lease_holder leader;            /* the lease holder; hostname "" if none known */
	struct following *follow;       /* the stream client, on a replica */
	char cluster_id[CLUSTER_ID_SIZE];  /* ours; a replica adopts the primary's */
	char status_primary[LEASE_HOSTNAME_MAX + 1];  /* a copy for node_refresh */
};

/* ---- switches (elector thread, or node_start) ------------------------------ */

/* A stream client and the strings it uses (they must outlive it). */
typedef struct following {
	stream_client *client;
	stream_client_options opt;
	lease_holder leader;
	char cluster_id[CLUSTER_ID_SIZE];
} following;

/* Stop following (elector thread, or start/stop); never under mu: stopping
 * waits for the client's thread, which may wait for local readers. */
static void unfollow(node *n)
{
	following *f;
	pthread_mutex_lock(&n->mu);
	f = n->follow;
	n->follow = NULL;
	pthread_mutex_unlock(&n->mu);
	if (f == NULL)
		return;
	stream_client_stop(f->client);
	free(f);
}

static int follow(node *n, const lease_holder *h, lx_err *err)
{
	following *f;
	int rc;
	pthread_mutex_lock(&n->mu);
	n->leader = *h;
	f = n->follow;
	if (f != NULL && strcmp(f->leader.advertise_url, h->advertise_url) == 0) {
		pthread_mutex_unlock(&n->mu);
		return 0;
	}
	pthread_mutex_unlock(&n->mu);
	unfollow(n);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	f->leader = *h;
	pthread_mutex_lock(&n->mu);
	memcpy(f->cluster_id, n->cluster_id, CLUSTER_ID_SIZE);
	pthread_mutex_unlock(&n->mu);
	f->opt.primary_url = f->leader.advertise_url;
	f->opt.primary_name = f->leader.hostname;
	f->opt.node_id = n->node_id;
	f->opt.cluster_id = f->cluster_id;
	f->opt.data_dir = n->config->data.dir;
	f->opt.silence_ms = 5000;
	f->opt.min_epoch = h->epoch;
	lx_info("node", "following the primary %s at %s", h->hostname, h->advertise_url);
	rc = stream_client_start(&f->client, n->store, &f->opt, err);
	if (rc < 0) {
		free(f);
		return rc;
	}
	pthread_mutex_lock(&n->mu);
	n->follow = f;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

/* A replica adopted the primary's cluster ID into data.dir: take it. */
static void adopt_cluster_id(node *n)
{
	char id[CLUSTER_ID_SIZE];
	lx_err err;
	if (cluster_id_load(n->config->data.dir, id, &err) == 0 && id[0] != '\0') {
		pthread_mutex_lock(&n->mu);
		memcpy(n->cluster_id, id, CLUSTER_ID_SIZE);
		pthread_mutex_unlock(&n->mu);
	}
}

static void on_follow(void *ctx, const lease_holder *h)
{
	node *n = ctx;
	lx_err err;
	if (h == NULL || strcmp(h->advertise_url, n->config->lease.advertise_url) == 0) {
		/* Nobody holds the lease (or our own former session does, until
		 * it expires): keep the client, it retries, and the next holder
		 * is followed as soon as the lease names it. */
		pthread_mutex_lock(&n->mu);
		n->leader.hostname[0] = '\0';
		pthread_mutex_unlock(&n->mu);
	} else if (follow(n, h, &err) < 0) {
		lx_error("node", "cannot follow %s: %s", h->hostname, err.msg);
	}
}

static void on_promoted(void *ctx, uint64_t epoch, int64_t write_until)
{
	node *n = ctx;
	lx_err err;
	unfollow(n);
	adopt_cluster_id(n);
	pthread_mutex_lock(&n->mu);
	if (n->cluster_id[0] == '\0' &&
	    cluster_id_load_or_create(n->config->data.dir, n->cluster_id, &err) < 0)
		lx_error("node", "cluster ID: %s", err.msg);
	n->primary = 1;
	n->epoch = epoch;
	memset(&n->leader, 0, sizeof(n->leader));
	snprintf(n->leader.hostname, sizeof(n->leader.hostname), "%s",
		 n->config->lease.hostname);
	store_set_lease(n->store, epoch, write_until);
	store_set_readonly(n->store, 0);
	stream_hub_set_paused(&n->hub, 0);
	pthread_mutex_unlock(&n->mu);
	lx_info("node", "primary now (epoch %" PRIu64 "): writes accepted", epoch);
}

static void on_extended(void *ctx, int64_t write_until)
{
	node *n = ctx;
	store_set_write_until(n->store, write_until);
}

static void on_fenced(void *ctx)
{
	node *n = ctx;
	store_set_readonly(n->store, 1);      /* first: no write after this */
	stream_hub_set_paused(&n->hub, 1);
	pthread_mutex_lock(&n->mu);
	n->primary = 0;
	n->leader.hostname[0] = '\0';
	pthread_mutex_unlock(&n->mu);
	lx_info("node", "replica now: writes refused");
}

/* ---- start and stop ------------------------------------------------------- */

static int start_static(node *n, lx_err *err)
{
	const ltxfs_config *c = n->config;
	lease_holder h;
	int rc;
	if (c->lease.candidate) {
		rc = cluster_id_load_or_create(c->data.dir, n->cluster_id, err);
		if (rc == 0)
			on_promoted(n, 1, 0);   /* static: one epoch, no deadline */
		return rc;
	}
	rc = cluster_id_load(c->data.dir, n->cluster_id, err);
	if (rc < 0)
		return rc;
	memset(&h, 0, sizeof(h));
	snprintf(h.hostname, sizeof(h.hostname), "%s", c->lease.hostname);
	snprintf(h.advertise_url, sizeof(h.advertise_url), "%s", c->lease.advertise_url);
	h.epoch = 1;
	return follow(n, &h, err);
}

static int start_consul(node *n, lx_err *err)
{
	const ltxfs_config *c = n->config;
	consul_lease_options lo;
	elector_options eo;
	elector_callbacks cb = { n, on_promoted, on_extended, on_fenced, on_follow };
	char name[300];
	lease *l;
	int rc = cluster_id_load(c->data.dir, n->cluster_id, err);
	if (rc < 0)
		return rc;
	snprintf(name, sizeof(name), "ltxfs %s", c->lease.hostname);
	memset(&lo, 0, sizeof(lo));
	lo.url = c->lease.consul.url;
	lo.key = c->lease.consul.key;
	lo.token = c->lease.consul.token;
	lo.session_name = name;
	lo.ttl_ms = (int64_t)(c->lease.consul.ttl_ns / 1000000);
	lo.lock_delay_ms = (int64_t)(c->lease.consul.lock_delay_ns / 1000000);
	rc = consul_lease_open(&l, &lo, err);
	if (rc < 0)
		return rc;
	memset(&eo, 0, sizeof(eo));
	snprintf(eo.me.hostname, sizeof(eo.me.hostname), "%s", c->lease.hostname);
	snprintf(eo.me.advertise_url, sizeof(eo.me.advertise_url), "%s", c->lease.advertise_url);
	eo.candidate = c->lease.candidate;
	eo.margin_ms = lo.ttl_ms / 10 > 100 ? lo.ttl_ms / 10 : 100;
	eo.watch_wait_ms = WATCH_WAIT_MS;
	return elector_start(&n->elector, l, &eo, &cb, err);
}

int node_start(node **out, const ltxfs_config *c, store *st, uint64_t node_id, lx_err *err)
{
	node *n = calloc(1, sizeof(*n));
	int rc;
	*out = NULL;
	if (n == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	n->config = c;
	n->store = st;
	n->node_id = node_id;
	n->started_ms = lx_wall_ms();
	pthread_mutex_init(&n->mu, NULL);
	stream_hub_init(&n->hub, st, 1000);
	/* Until the lease says otherwise, a replica with no primary. */
	store_set_readonly(st, 1);
	stream_hub_set_paused(&n->hub, 1);
	rc = c->lease.type == CONFIG_LEASE_CONSUL ? start_consul(n, err) : start_static(n, err);
	if (rc < 0) {
		node_stop(n);
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

void node_stop(node *n)
{
	if (n == NULL)
		return;
	elector_stop(n->elector);         /* fences and releases if primary */
	n->elector = NULL;
	unfollow(n);
	stream_hub_stop(&n->hub);
}

void node_free(node *n)
{
	if (n == NULL)
		return;
	stream_hub_destroy(&n->hub);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

stream_hub *node_hub(node *n)
{
	return &n->hub;
}

/* ---- what the node is, for the HTTP API and the mount --------------------- */

void node_refresh(void *arg, node_status *ns)
{
	node *n = arg;
	stream_client *c;
	pthread_mutex_lock(&n->mu);
	c = n->follow ? n->follow->client : NULL;
	ns->role = n->primary ? "primary" : "replica";
	memcpy(n->status_primary, n->leader.hostname, sizeof(n->status_primary));
	ns->primary = n->status_primary;
	ns->epoch = n->primary ? n->epoch : n->leader.epoch;
	ns->cluster_id = n->cluster_id;
	if (c != NULL && !n->primary) {
		ns->cluster_id = stream_client_cluster_id(c);
		ns->lag_ms = stream_client_lag_ms(c);
		ns->ready = stream_client_ready(c);
		stream_client_counters(c, &ns->snapshots_received, &ns->transactions_received);
	} else {
		ns->ready = n->primary;
	}
	pthread_mutex_unlock(&n->mu);
	pthread_mutex_lock(&n->hub.mu);
	ns->snapshots_sent = n->hub.snapshots_sent;
	ns->transactions_sent = n->hub.transactions_sent;
	pthread_mutex_unlock(&n->hub.mu);
}

static int role_replica(void *arg)
{
	node *n = arg;
	int replica;
	pthread_mutex_lock(&n->mu);
	replica = !n->primary;
	pthread_mutex_unlock(&n->mu);
	return replica;
}

/* .primary: on a replica that is streaming from its primary. */
static int role_primary(void *arg, char *buf, size_t cap)
{
	node *n = arg;
	int rc = -ENOENT;
	pthread_mutex_lock(&n->mu);
	if (!n->primary && n->follow != NULL && stream_client_connected(n->follow->client)) {
		snprintf(buf, cap, "%s", n->leader.hostname);
		rc = 0;
	}
	pthread_mutex_unlock(&n->mu);
	return rc;
}

static int64_t role_lag(void *arg)
{
	node *n = arg;
	int64_t lag = 0;
	pthread_mutex_lock(&n->mu);
	if (!n->primary && n->follow != NULL)
		lag = stream_client_lag_ms(n->follow->client);
	pthread_mutex_unlock(&n->mu);
	return lag;
}

fs_role node_fs_role(node *n)
{
	return (fs_role){ n, role_replica, role_primary, role_lag };
}
