/*
 * node.c - the node's role and its switches (see node.h).
 */
#include "node/node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/catch_up.h"
#include "node/import.h"
#include "lease/cluster_id.h"
#include "lease/consul_lease.h"
#include "lease/elector.h"
#include "lease/etcd_lease.h"
#include "net/http_client.h"
#include "net/messages.h"
#include "replica/stream_client.h"

#define WATCH_WAIT_MS 30000

struct node {
	const ltxfs_config *config;
	store *store;
	uint64_t node_id;
	int64_t started_ms;
	stream_hub hub;
	sync_commit *sync;              /* replication.mode sync; NULL: async */
	elector *elector;               /* NULL with a static lease */
	lease *lease;                   /* the elector's: used before it starts and in
					 * its callbacks (its thread) only */
	int64_t ttl_ms;                 /* the lease's TTL; 0 with a static lease */
	http_client_options http;       /* every call this node makes (node_http_options) */

	pthread_mutex_t mu;             /* guards everything below */
	int primary;                    /* this node holds the lease; written under mu,
					 * read atomically on FUSE threads (role_replica) */
	uint64_t epoch;
	lease_holder leader;            /* the lease holder; hostname "" if none known */
	struct following *follow;       /* the stream client, on a replica */
	char cluster_id[CLUSTER_ID_SIZE];  /* ours; a replica adopts the primary's */
	int fatal;                      /* atomic: stopped for a reason that is a failure */
	int stopping;                   /* under mu: node_stop began */
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

/* The replica thread found the primary's process gone: a candidate may
 * end its lease early (lease/elector.h). */
static void on_primary_gone(void *ctx, const char *primary_url)
{
	node *n = ctx;
	pthread_mutex_lock(&n->mu);       /* node_stop: the elector goes away */
	if (!n->stopping && n->elector != NULL)
		elector_holder_gone(n->elector, primary_url);
	pthread_mutex_unlock(&n->mu);
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
	f->opt.http = &n->http;
	f->opt.primary_gone = on_primary_gone;
	f->opt.gone_ctx = n;
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

/*
 * Before the first write: the newest history a reachable member holds
 * (node/catch_up.h).  Within half the TTL: the elector renews after this.
 *
 * In sync mode this is a rule, not a best effort: every acknowledged
 * transaction is on min-acks replicas, all members but the old primary.
 * Hearing from n_members - min_acks of them (this node included) means at
 * least one holds it, so the catch-up brings it here.  Fewer, or a catch-up
 * that did not complete: the node declines to write (-1), and says why.
 */
static int catch_up_with(node *n, const lease_holder *peers, size_t n_peers)
{
	catch_up_options o;
	char cluster[CLUSTER_ID_SIZE];
	size_t need;
	int rc;
	pthread_mutex_lock(&n->mu);
	memcpy(cluster, n->cluster_id, CLUSTER_ID_SIZE);
	pthread_mutex_unlock(&n->mu);
	memset(&o, 0, sizeof(o));
	o.my_url = n->config->lease.advertise_url;
	o.node_id = n->node_id;
	o.cluster_id = cluster;
	o.data_dir = n->config->data.dir;
	o.peers = peers;
	o.n_peers = n_peers;
	o.budget_ms = n->ttl_ms / 2;
	o.http = &n->http;
	rc = catch_up(n->store, &o);
	if (rc > 0)
		adopt_cluster_id(n);
	if (n->sync == NULL)
		return 0;
	/* members unknown: nobody to be sure with (2 > this node alone) */
	need = n_peers == 0 ? 2 : n_peers > n->config->replication.min_acks ?
	       n_peers - n->config->replication.min_acks : 1;
	if (rc < 0 || o.answered < need) {
		lx_warn("node", "replication.mode sync: %s; staying read-only, so that no "
			"acknowledged transaction is lost (another candidate may take the "
			"lease)", rc < 0 ? "the catch-up from the member furthest ahead did "
			"not complete" : "too few members answered to be sure to hold every "
			"acknowledged transaction");
		lx_warn("node", "heard from %zu of %zu members, this node included; "
			"replication.min-acks %u needs %zu", o.answered, n_peers,
			n->config->replication.min_acks, need);
		return -1;
	}
	return 0;
}

/* A new primary's cluster ID (created here if it has none) is stored next
 * to the lease key, or checked against the one there.  Another cluster's: never write; stop the node
 * (it logs why), which fences and releases the lease. */
static int cluster_bound(node *n)
{
	char id[CLUSTER_ID_SIZE];
	lx_err err;
	int rc;
	if (n->lease == NULL)
		return 1;
	pthread_mutex_lock(&n->mu);
	if (n->cluster_id[0] == '\0' &&
	    cluster_id_load_or_create(n->config->data.dir, n->cluster_id, &err) < 0)
		lx_error("node", "cluster ID: %s", err.msg);
	memcpy(id, n->cluster_id, CLUSTER_ID_SIZE);
	pthread_mutex_unlock(&n->mu);
	rc = n->lease->ops->bind_cluster(n->lease, id, sizeof(id), &err);
	if (rc == -EEXIST) {
		lx_error("node", "%s; stopping", err.msg);
		__atomic_store_n(&n->fatal, 1, __ATOMIC_RELEASE);
		/* To the process, not this thread: the supervisor's signal thread
		 * takes SIGTERM (it is blocked everywhere else) and stops. */
		kill(getpid(), SIGTERM);
		return 0;
	}
	if (rc < 0)
		lx_warn("node", "the cluster ID could not be stored with the lease service: %s",
			err.msg);
	return 1;
}

static int on_promoted(void *ctx, uint64_t epoch, int64_t write_until,
			const lease_holder *peers, size_t n_peers)
{
	node *n = ctx;
	unfollow(n);
	adopt_cluster_id(n);
	/* peers NULL: a hand-off, whose taker caught up with the old primary;
	 * none listed: a fixed (static) primary, or members unknown */
	if (peers != NULL && (n_peers > 0 || n->sync != NULL) &&
	    catch_up_with(n, peers, n_peers) < 0)
		return -1;
	if (!cluster_bound(n))
		return 0;
	pthread_mutex_lock(&n->mu);
	__atomic_store_n(&n->primary, 1, __ATOMIC_RELEASE);
	n->epoch = epoch;
	memset(&n->leader, 0, sizeof(n->leader));
	snprintf(n->leader.hostname, sizeof(n->leader.hostname), "%s",
		 n->config->lease.hostname);
	store_set_lease(n->store, epoch, write_until);
	if (n->sync != NULL)            /* before the first write can commit */
		sync_commit_set_active(n->sync, 1, epoch);
	store_set_readonly(n->store, 0);
	stream_hub_set_paused(&n->hub, 0);
	pthread_mutex_unlock(&n->mu);
	lx_info("node", "primary now (epoch %" PRIu64 "): writes accepted", epoch);
	return 0;
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
	if (n->sync != NULL)                  /* commits still waiting fail */
		sync_commit_set_active(n->sync, 0, 0);
	stream_hub_set_paused(&n->hub, 1);
	pthread_mutex_lock(&n->mu);
	__atomic_store_n(&n->primary, 0, __ATOMIC_RELEASE);
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
			(void)on_promoted(n, 1, 0, NULL, 0);   /* static: one epoch, no deadline */
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

/* The elector on a lease backend (consul or etcd), once the cluster ID is
 * known to agree with the one kept next to the lease key. */
static int start_elected(node *n, lease *l, int64_t ttl_ms, lx_err *err)
{
	const ltxfs_config *c = n->config;
	elector_options eo;
	elector_callbacks cb = { n, on_promoted, on_extended, on_fenced, on_follow };
	char id[CLUSTER_ID_SIZE];
	int rc;
	memcpy(id, n->cluster_id, CLUSTER_ID_SIZE);
	rc = l->ops->bind_cluster(l, id, sizeof(id), err);
	if (rc == -EEXIST) {
		l->ops->close(l);
		return rc;
	}
	if (rc < 0)
		lx_warn("node", "cannot check the cluster ID with the lease service now: %s "
			"(checked again when this node becomes primary)", err->msg);
	else if (n->cluster_id[0] == '\0' && id[0] != '\0' &&
		 cluster_id_save(c->data.dir, id, err) == 0)
		memcpy(n->cluster_id, id, CLUSTER_ID_SIZE);   /* joining: the lease's */
	n->lease = l;
	n->ttl_ms = ttl_ms;
	memset(&eo, 0, sizeof(eo));
	snprintf(eo.me.hostname, sizeof(eo.me.hostname), "%s", c->lease.hostname);
	snprintf(eo.me.advertise_url, sizeof(eo.me.advertise_url), "%s", c->lease.advertise_url);
	eo.candidate = c->lease.candidate;
	eo.margin_ms = ttl_ms / 10 > 100 ? ttl_ms / 10 : 100;
	eo.watch_wait_ms = WATCH_WAIT_MS;
	return elector_start(&n->elector, l, &eo, &cb, err);
}

static int start_consul(node *n, lx_err *err)
{
	const ltxfs_config *c = n->config;
	consul_lease_options lo;
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
	return rc < 0 ? rc : start_elected(n, l, lo.ttl_ms, err);
}

static int start_etcd(node *n, lx_err *err)
{
	const ltxfs_config *c = n->config;
	etcd_lease_options lo;
	lease *l;
	int rc = cluster_id_load(c->data.dir, n->cluster_id, err);
	if (rc < 0)
		return rc;
	memset(&lo, 0, sizeof(lo));
	lo.url = c->lease.etcd.url;
	lo.key = c->lease.etcd.key;
	lo.ttl_ms = (int64_t)(c->lease.etcd.ttl_ns / 1000000);
	rc = etcd_lease_open(&l, &lo, err);
	return rc < 0 ? rc : start_elected(n, l, lo.ttl_ms, err);
}

/* How this node calls other nodes (replication, catch-up, hand-off): the
 * one place these options are built, from http.token and
 * http.tls.ca/cert/key.  The strings must outlive the node (the
 * configuration's do). */
static void node_http_options(http_client_options *o, const ltxfs_config *c)
{
	memset(o, 0, sizeof(*o));
	o->token = c->http.token;
	o->tls_ca = c->http.tls.ca;
	/* Our own certificate is our identity to peers that require one
	 * (http.tls.client-auth). */
	o->tls_cert = c->http.tls.cert;
	o->tls_key = c->http.tls.key;
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
	node_http_options(&n->http, c);
	pthread_mutex_init(&n->mu, NULL);
	stream_hub_init(&n->hub, st, 1000);
	n->hub.proxy_url = c->proxy.advertise_url;
	if (c->replication.mode == CONFIG_REPL_SYNC) {
		sync_options so = { c->replication.min_acks,
				    (int64_t)(c->replication.sync_timeout_ns / 1000000),
				    c->replication.on_timeout == CONFIG_REPL_DEGRADE,
				    c->replication.ack_after == CONFIG_ACK_WRITE };
		if ((rc = sync_commit_new(&n->sync, st, &so, err)) < 0) {
			node_free(n);
			return rc;
		}
		n->hub.sync = n->sync;
	}
	/* Until the lease says otherwise, a replica with no primary. */
	store_set_readonly(st, 1);
	stream_hub_set_paused(&n->hub, 1);
	rc = c->lease.type == CONFIG_LEASE_CONSUL ? start_consul(n, err) :
	     c->lease.type == CONFIG_LEASE_ETCD ? start_etcd(n, err) : start_static(n, err);
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
	pthread_mutex_lock(&n->mu);
	n->stopping = 1;
	pthread_mutex_unlock(&n->mu);
	elector_stop(n->elector);         /* fences and releases if primary */
	n->elector = NULL;
	if (n->sync != NULL)              /* a static primary: waiting commits end */
		sync_commit_set_active(n->sync, 0, 0);
	unfollow(n);
	stream_hub_stop(&n->hub);
}

void node_free(node *n)
{
	if (n == NULL)
		return;
	stream_hub_destroy(&n->hub);
	sync_commit_free(n->sync);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

stream_hub *node_hub(node *n)
{
	return &n->hub;
}

/* ---- what the node is, for the HTTP API and the mount --------------------- */

static void node_refresh(void *arg, node_status *ns)
{
	node *n = arg;
	stream_client *c;
	pthread_mutex_lock(&n->mu);
	c = n->follow ? n->follow->client : NULL;
	ns->role = n->primary ? "primary" : "replica";
	snprintf(ns->primary_name, sizeof(ns->primary_name), "%s", n->leader.hostname);
	ns->primary = ns->primary_name;
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
	ns->repl_mode = n->config->replication.mode == CONFIG_REPL_SYNC ? "sync" : "async";
	ns->repl_on_timeout = n->config->replication.on_timeout == CONFIG_REPL_DEGRADE ?
			      "degrade" : "fail";
	ns->repl_ack_after = n->config->replication.ack_after == CONFIG_ACK_WRITE ? "write" : "fsync";
	ns->repl_min_acks = n->config->replication.min_acks;
	ns->repl_sync_timeout_ms = (int64_t)(n->config->replication.sync_timeout_ns / 1000000);
	if (n->sync != NULL) {
		sync_commit_stats(n->sync, &ns->sync);
		ns->has_sync = ns->sync.active;
	}
	ns->renew_ms = -1;
	if (n->elector != NULL) {
		elector_stats es;
		elector_get_stats(n->elector, &es);
		ns->renew_ms = es.renews ? es.last_renew_ms : -1;
		ns->renews = es.renews;
		ns->renew_failures = es.renew_failures;
	}
	pthread_mutex_lock(&n->hub.mu);
	ns->snapshots_sent = n->hub.snapshots_sent;
	ns->transactions_sent = n->hub.transactions_sent;
	pthread_mutex_unlock(&n->hub.mu);
}

static int role_replica(void *arg)
{
	node *n = arg;
	/* Asked on every lookup, getattr and open: no lock. */
	return !__atomic_load_n(&n->primary, __ATOMIC_ACQUIRE);
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

enum proxy_route node_proxy_route(void *arg, char *url, size_t cap)
{
	node *n = arg;
	enum proxy_route r = PROXY_NONE;
	pthread_mutex_lock(&n->mu);
	if (n->primary)
		r = PROXY_SELF;
	else if (n->follow != NULL && stream_client_proxy_url(n->follow->client, url, cap) == 0)
		r = PROXY_REMOTE;
	pthread_mutex_unlock(&n->mu);
	return r;
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

/* ---- hand-off ------------------------------------------------------------- */

#define HANDOFF_CATCHUP_MS 5000

/* Whether replica `id` may take the primary role from us: it streams
 * from this primary now (not a catch-up), has caught up once (READY),
 * and, when `peer` is given, from that address (the hand-off is asked by
 * the replica itself).  0 if so; else ENXIO and why in err. */
static int handoff_target_ok(node *n, uint64_t id, const char *peer, lx_err *err)
{
	stream_replica *reps;
	size_t nr;
	int found = 0, ready = 0, same_addr = 0;
	if (stream_hub_replicas(&n->hub, &reps, &nr) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < nr; i++)
		if (reps[i].node_id == id) {
			found = 1;
			ready |= reps[i].ready;
			same_addr |= peer == NULL || strcmp(reps[i].addr, peer) == 0;
		}
	stream_replicas_free(reps, nr);
	if (!found)
		return lx_err_set(err, ENXIO, "node %016" PRIx64 " is not a replica streaming "
				  "from this primary: no hand-off (this node stays primary)", id);
	if (!ready)
		return lx_err_set(err, ENXIO, "replica %016" PRIx64 " has not caught up yet: "
				  "no hand-off (this node stays primary)", id);
	if (!same_addr)
		return lx_err_set(err, ENXIO, "the hand-off to %016" PRIx64 " was asked from "
				  "another address than that replica's stream: refused", id);
	return 0;
}

/* 1 when replica `id` streams and has every database at our position. */
static int replica_has_everything(node *n, uint64_t id)
{
	stream_replica *reps;
	database **dbs;
	size_t nr, nd;
	int ok = 0;
	if (stream_hub_replicas(&n->hub, &reps, &nr) < 0)
		return 0;
	if (store_list(n->store, &dbs, &nd) < 0) {
		stream_replicas_free(reps, nr);
		return 0;
	}
	for (size_t i = 0; i < nr && !ok; i++) {
		if (reps[i].node_id != id)
			continue;
		ok = 1;
		for (size_t d = 0; d < nd && ok; d++) {
			db_status st;
			int found = 0;
			db_status_get(dbs[d], &st);
			if (st.txid == 0)
				continue;
			for (size_t k = 0; k < reps[i].n; k++)
				if (strcmp(reps[i].dbs[k].name, dbs[d]->name) == 0)
					found = reps[i].dbs[k].txid == st.txid &&
						reps[i].dbs[k].checksum == st.checksum;
			ok = found;
		}
	}
	free(dbs);
	stream_replicas_free(reps, nr);
	return ok;
}

/* The hand-off answer (net/messages.h): the token and our position in
 * every database; NULL when out of memory. */
static char *handoff_answer(node *n, const char *token)
{
	handoff_msg m = { .token = token };
	text_buf out = { 0 };
	database **dbs;
	db_status *st;
	size_t nd;
	if (store_list(n->store, &dbs, &nd) < 0)
		return NULL;
	st = calloc(nd ? nd : 1, sizeof(*st));
	m.positions = calloc(nd ? nd : 1, sizeof(*m.positions));
	if (st != NULL && m.positions != NULL) {
		for (size_t i = 0; i < nd; i++) {
			db_status_get(dbs[i], &st[i]);
			m.positions[i] = (handoff_position){ dbs[i]->name, st[i].txid,
							     st[i].checksum };
		}
		m.n_positions = nd;
		if (handoff_msg_encode(&m, &out) < 0)
			text_buf_free(&out);
	}
	free(m.positions);
	free(st);
	free(dbs);
	return out.data;
}

static int node_handoff(void *arg, uint64_t target, const char *peer, char **json,
			lx_err *err)
{
	node *n = arg;
	char token[128];
	int64_t deadline;
	int primary, rc;
	pthread_mutex_lock(&n->mu);
	primary = n->primary;
	pthread_mutex_unlock(&n->mu);
	if (n->elector == NULL || !primary)
		return lx_err_set(err, EAGAIN, "this node is not the primary of a dynamic lease");
	/* Before writes stop: a made-up or absent node costs the application
	 * nothing (issue 13). */
	if (handoff_target_ok(n, target, peer, err) < 0) {
		lx_warn("node", "hand-off refused: %s", err->msg);
		return -err->code;
	}
	lx_info("node", "hand-off to %016" PRIx64 ": writes stop until it has everything",
		target);
	store_set_readonly(n->store, 1);
	deadline = lx_mono_ms() + HANDOFF_CATCHUP_MS;
	while (!replica_has_everything(n, target)) {
		lx_err gone;
		if (handoff_target_ok(n, target, NULL, &gone) < 0) {   /* it left: at once */
			store_set_readonly(n->store, 0);
			return lx_err_set(err, ENXIO, "%s", gone.msg);
		}
		if (lx_mono_ms() >= deadline) {
			store_set_readonly(n->store, 0);
			return lx_err_set(err, ETIMEDOUT, "replica %016" PRIx64 " did not catch up "
					  "within %d ms; this node stays primary", target,
					  HANDOFF_CATCHUP_MS);
		}
		usleep(1000);
	}
	/* The answer is built before the lease goes: nothing changes now. */
	*json = handoff_answer(n, "");
	if (*json == NULL) {
		store_set_readonly(n->store, 0);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	free(*json);
	rc = elector_give(n->elector, token, sizeof(token), err);
	if (rc < 0) {
		store_set_readonly(n->store, 0);   /* still ours: write again */
		*json = NULL;
		return rc;
	}
	*json = handoff_answer(n, token);
	return *json ? 0 : lx_err_set(err, ENOMEM, "out of memory");
}

/* Wait until every database named in the primary's final positions is
 * at that position here (the last frames may still be in flight). */
static int wait_positions(node *n, const handoff_msg *m, lx_err *err)
{
	int64_t deadline = lx_mono_ms() + HANDOFF_CATCHUP_MS;
	for (;;) {
		int behind = 0;
		for (size_t i = 0; i < m->n_positions && !behind; i++) {
			const handoff_position *p = &m->positions[i];
			database *db;
			db_status st;
			if (p->txid == 0)
				continue;
			db = store_find(n->store, p->name);
			if (db == NULL) {
				behind = 1;
				break;
			}
			db_status_get(db, &st);
			behind = st.txid != p->txid || st.checksum != p->checksum;
		}
		if (!behind)
			return 0;
		if (lx_mono_ms() >= deadline)
			return lx_err_set(err, ETIMEDOUT, "this node did not receive the primary's last "
					  "transactions within %d ms", HANDOFF_CATCHUP_MS);
		usleep(1000);
	}
}

/* Ask the primary to hand the lease over: its answer is a handoff_msg
 * (a row per database: bounded as a document, never cut) into `m`, which
 * the caller frees. */
static int ask_handoff(node *n, const lease_holder *from, char *token, size_t cap,
		       handoff_msg *m, lx_err *err)
{
	char url[LEASE_URL_MAX + 32], idh[64];
	const char *headers[] = { idh, NULL };
	http_request q = { .method = "POST", .url = url, .headers = headers,
			   .timeout_ms = HANDOFF_CATCHUP_MS + 5000,
			   .body_max = HTTP_BODY_MAX_DOCUMENT };
	http_response r;
	lx_err e;
	int rc;
	snprintf(url, sizeof(url), "%s/handoff", from->advertise_url);
	snprintf(idh, sizeof(idh), "Ltxfs-Node-Id: %016" PRIx64, n->node_id);
	rc = http_fetch(&n->http, &q, &r, &e);
	if (rc == -EAGAIN || rc == -EINTR)
		rc = lx_err_set(err, EHOSTUNREACH, "primary %s: %s", from->hostname, e.msg);
	else if (rc < 0)
		rc = lx_err_set(err, -rc, "primary %s: %s", from->hostname, e.msg);
	else if (r.status != 200 && (rc = http_status_error(&q, &r, &e)) < 0)
		rc = lx_err_set(err, EAGAIN, "primary %s refused the hand-off: %s", from->hostname,
				e.msg);
	else if (handoff_msg_decode(r.body, r.len, m, &e) < 0)
		rc = lx_err_set(err, EPROTO, "primary %s: %s", from->hostname, e.msg);
	else if (strlen(m->token) >= cap)
		rc = lx_err_set(err, EPROTO, "primary %s: hand-off token longer than %zu bytes",
				from->hostname, cap - 1);
	else
		memcpy(token, m->token, strlen(m->token) + 1);
	http_response_free(&r);
	return rc;
}

static int node_promote(void *arg, lx_err *err)
{
	node *n = arg;
	lease_holder from;
	char token[128];
	int primary, rc;
	pthread_mutex_lock(&n->mu);
	primary = n->primary;
	from = n->leader;
	pthread_mutex_unlock(&n->mu);
	if (primary)
		return 0;
	if (n->elector == NULL)
		return lx_err_set(err, EINVAL, "lease.type static: the primary is fixed by "
				  "configuration (lease.candidate)");
	if (!n->config->lease.candidate)
		return lx_err_set(err, EPERM, "this node is not a candidate (lease.candidate: false)");
	if (from.hostname[0] == '\0')
		return lx_err_set(err, EAGAIN, "no primary to take over from; a candidate "
				  "becomes primary by itself when the lease is free");
	handoff_msg answer = { 0 };
	rc = ask_handoff(n, &from, token, sizeof(token), &answer, err);
	/* The lease is nobody's now: the old primary stopped writing and
	 * renewing.  Take it once every transaction it had is here; if that
	 * fails, the session expires and a candidate is elected as after a
	 * crash. */
	if (rc == 0)
		rc = wait_positions(n, &answer, err);
	handoff_msg_free(&answer);
	if (rc == 0)
		rc = elector_take(n->elector, token, err);
	if (rc == 0)
		lx_info("node", "took over from %s", from.hostname);
	return rc;
}

int node_failed(node *n)
{
	return n != NULL && __atomic_load_n(&n->fatal, __ATOMIC_ACQUIRE);
}

int node_ready(node *n, int *primary)
{
	node_status ns;
	memset(&ns, 0, sizeof(ns));
	node_refresh(n, &ns);
	*primary = strcmp(ns.role, "primary") == 0;
	return ns.ready;
}

int node_take_over(node *n, lx_err *err)
{
	return node_promote(n, err);
}

/* POST /import: on the primary only (a replica's mount is read-only). */
static int node_import(void *arg, const char *name, const char *path, lx_err *err)
{
	node *n = arg;
	lease_holder leader;
	int primary;
	pthread_mutex_lock(&n->mu);
	primary = n->primary;
	leader = n->leader;
	pthread_mutex_unlock(&n->mu);
	if (!primary && leader.hostname[0] != '\0')
		return lx_err_set(err, EAGAIN, "this node is a replica: import on the primary, "
				  "%s (ltxfs import -url %s ...)", leader.hostname,
				  leader.advertise_url);
	if (!primary)
		return lx_err_set(err, EAGAIN, "this node is a replica and no primary is known "
				  "now: import on the primary once there is one");
	return import_database(n->config->fuse.dir, name, path, err);
}

http_hooks node_http_hooks(node *n)
{
	return (http_hooks){ n, node_refresh, node_promote, node_handoff, node_import, NULL };
}

fs_role node_fs_role(node *n)
{
	return (fs_role){ n, role_replica, role_primary, role_lag };
}
