/*
 * catch_up.c - a new primary's catch-up before its first write (see
 * catch_up.h).  Runs on the elector's thread inside the promoted callback.
 */
#include "node/catch_up.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/http_client.h"
#include "net/messages.h"
#include "replica/stream_client.h"

static int is_self(const catch_up_options *o, size_t i)
{
	return strcmp(o->peers[i].advertise_url, o->my_url) == 0;
}

/* Ask every member at once, so that silent ones (gone, or far away) cost
 * one timeout in all, not one each.  st[i] for o->peers[i]: its status,
 * or left empty (doc NULL: ours, unreachable, slow, refused, not a
 * /status document); the reason is logged. */
static void probe_all(const catch_up_options *o, status_msg *st, long timeout_ms)
{
	size_t n = o->n_peers ? o->n_peers : 1, k = 0;
	http_request *q = calloc(n, sizeof(*q));
	http_response *r = calloc(n, sizeof(*r));
	char (*url)[LEASE_URL_MAX + 16] = calloc(n, sizeof(*url));
	size_t *peer = calloc(n, sizeof(*peer));
	lx_err *err = calloc(n, sizeof(*err));
	int *rc = calloc(n, sizeof(*rc));
	http_client_options ho = { 0 };
	if (q == NULL || r == NULL || url == NULL || peer == NULL || err == NULL || rc == NULL) {
		lx_warn("node", "catch-up: out of memory");
		goto out;
	}
	if (o->http != NULL)
		ho = *o->http;
	ho.connect_timeout_ms = timeout_ms;
	for (size_t i = 0; i < o->n_peers; i++) {
		if (is_self(o, i))
			continue;
		snprintf(url[k], sizeof(url[k]), "%s/status", o->peers[i].advertise_url);
		q[k] = (http_request){ .method = "GET", .url = url[k], .timeout_ms = timeout_ms,
				       .body_max = HTTP_BODY_MAX_DOCUMENT };
		peer[k++] = i;
	}
	http_fetch_all(&ho, q, r, rc, err, k);
	for (size_t j = 0; j < k; j++) {
		const lease_holder *p = &o->peers[peer[j]];
		if (rc[j] == 0)
			rc[j] = http_status_error(&q[j], &r[j], &err[j]);
		if (rc[j] == 0 && status_msg_decode(r[j].body, r[j].len, &st[peer[j]], &err[j]) < 0)
			rc[j] = lx_err_wrap(&err[j], "GET %s: ", url[j]);
		if (rc[j] < 0)
			lx_info("node", "catch-up: member %s did not answer: %s", p->hostname,
				err[j].msg);
		http_response_free(&r[j]);
	}
out:
	free(q);
	free(r);
	free(url);
	free(peer);
	free(err);
	free(rc);
}

/* How many TXIDs the peer is ahead of us, summed over its databases. */
static uint64_t txids_ahead(store *st, const status_msg *status)
{
	uint64_t ahead = 0;
	for (size_t i = 0; i < status->n_dbs; i++) {
		const status_msg_db *d = &status->dbs[i];
		database *db = store_find(st, d->name);
		uint64_t ours = 0;
		if (db != NULL) {
			db_status s;
			db_status_get(db, &s);
			ours = s.txid;
		}
		if (d->txid > ours)
			ahead += d->txid - ours;
	}
	return ahead;
}

/* How long members have to answer: a third of the budget, at least
 * 300 ms (a member nearby), at most 2 s (a member far away). */
static long probe_timeout(int64_t budget_ms)
{
	int64_t t = budget_ms / 3;
	return (long)(t < 300 ? 300 : t > 2000 ? 2000 : t);
}

/* The reachable peer furthest ahead of us, or -1; o->answered counts the
 * members that answered, this node included. */
static int furthest_ahead(store *st, catch_up_options *o, uint64_t *ahead)
{
	status_msg *v = calloc(o->n_peers ? o->n_peers : 1, sizeof(*v));
	int best = -1;
	*ahead = 0;
	if (v == NULL)
		return -1;
	probe_all(o, v, probe_timeout(o->budget_ms));
	o->answered = 1;
	for (size_t i = 0; i < o->n_peers; i++) {
		uint64_t a;
		if (v[i].doc == NULL)
			continue;
		o->answered++;
		a = txids_ahead(st, &v[i]);
		status_msg_free(&v[i]);
		if (a > *ahead) {
			*ahead = a;
			best = (int)i;
		}
	}
	free(v);
	return best;
}

/* Stream from `peer` until its READY or the deadline. */
static int stream_from(store *st, const catch_up_options *o, const lease_holder *peer,
		       int64_t deadline)
{
	stream_client_options so;
	stream_client *c;
	lx_err err;
	int ready;
	memset(&so, 0, sizeof(so));
	so.primary_url = peer->advertise_url;
	so.primary_name = peer->hostname;
	so.node_id = o->node_id;
	so.cluster_id = o->cluster_id;
	so.data_dir = o->data_dir;
	so.silence_ms = (int)(deadline - lx_mono_ms()) > 1000 ? (int)(deadline - lx_mono_ms()) : 1000;
	so.catch_up = 1;
	so.http = o->http;
	if (stream_client_start(&c, st, &so, &err) < 0) {
		lx_warn("node", "catch-up from %s: %s", peer->hostname, err.msg);
		return -1;
	}
	while (!stream_client_finished(c) && lx_mono_ms() < deadline)
		usleep(5000);
	ready = stream_client_ready(c);
	stream_client_stop(c);
	return ready ? 1 : -1;
}

int catch_up(store *st, catch_up_options *o)
{
	int64_t start = lx_mono_ms(), deadline = start + o->budget_ms;
	uint64_t ahead;
	int best = furthest_ahead(st, o, &ahead), rc;
	if (best < 0)
		return 0;
	lx_info("node", "catch-up: member %s is %" PRIu64 " transactions ahead; taking them "
		"before the first write", o->peers[best].hostname, ahead);
	rc = stream_from(st, o, &o->peers[best], deadline);
	if (rc > 0)
		lx_info("node", "catch-up from %s done in %" PRId64 " ms", o->peers[best].hostname,
			lx_mono_ms() - start);
	else
		lx_warn("node", "catch-up from %s did not complete within %" PRId64 " ms: writes "
			"start from this node's history; what only %s holds is reported lost when "
			"it follows", o->peers[best].hostname, o->budget_ms, o->peers[best].hostname);
	return rc;
}
