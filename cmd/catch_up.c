/*
 * catch_up.c - a new primary's catch-up before its first write (see
 * catch_up.h).  Runs on the elector's thread inside the promoted callback.
 */
#include "cmd/catch_up.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/clock.h"
#include "base/log.h"
#include "replica/stream_client.h"

#define STATUS_BODY_MAX (1 << 20)

typedef struct body {
	char *data;
	size_t len;
} body;

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	body *b = arg;
	size_t len = size * nmemb;
	char *v;
	if (b->len + len > STATUS_BODY_MAX || (v = realloc(b->data, b->len + len + 1)) == NULL)
		return 0;              /* too large: the request fails */
	memcpy(v + b->len, p, len);
	b->data = v;
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* One member's GET /status. */
typedef struct probe {
	CURL *curl;
	body b;
	int done;                  /* the transfer completed (any status) */
} probe;

static CURL *probe_start(probe *p, const lease_holder *peer, long timeout_ms)
{
	char url[LEASE_URL_MAX + 16];
	p->curl = curl_easy_init();
	if (p->curl == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%s/status", peer->advertise_url);
	curl_easy_setopt(p->curl, CURLOPT_URL, url);
	curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &p->b);
	curl_easy_setopt(p->curl, CURLOPT_PRIVATE, p);
	curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	return p->curl;
}

/* The member's status as JSON, or NULL (unreachable, slow, not JSON). */
static json_t *probe_result(probe *p)
{
	long status = 0;
	if (p->curl == NULL || !p->done || p->b.data == NULL ||
	    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status != 200)
		return NULL;
	return json_loads(p->b.data, 0, NULL);
}

static int is_self(const catch_up_options *o, size_t i)
{
	return strcmp(o->peers[i].advertise_url, o->my_url) == 0;
}

/* Ask every member at once, so that silent ones (gone, or far away) cost
 * one timeout in all, not one each.  v[i] for o->peers[i]; ours is not
 * asked. */
static void probe_all(const catch_up_options *o, probe *v, long timeout_ms)
{
	CURLM *m = curl_multi_init();
	int64_t until = lx_mono_ms() + timeout_ms;
	int running = 0;
	CURLMsg *msg;
	int left;
	if (m == NULL)
		return;
	for (size_t i = 0; i < o->n_peers; i++)
		if (!is_self(o, i) && probe_start(&v[i], &o->peers[i], timeout_ms) != NULL)
			curl_multi_add_handle(m, v[i].curl);
	do {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			probe *p = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
			if (msg->msg == CURLMSG_DONE && p != NULL)
				p->done = msg->data.result == CURLE_OK;
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 50, NULL);
	} while (running > 0 && lx_mono_ms() < until + 100);
	for (size_t i = 0; i < o->n_peers; i++)
		if (v[i].curl != NULL)
			curl_multi_remove_handle(m, v[i].curl);
	curl_multi_cleanup(m);
}

/* How many TXIDs the peer is ahead of us, summed over its databases. */
static uint64_t txids_ahead(store *st, json_t *status)
{
	json_t *dbs = json_object_get(status, "databases"), *d;
	uint64_t ahead = 0;
	size_t i;
	json_array_foreach(dbs, i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		json_t *t = json_object_get(d, "txid");
		database *db = name ? store_find(st, name) : NULL;
		uint64_t theirs = json_is_integer(t) ? (uint64_t)json_integer_value(t) : 0, ours = 0;
		if (db != NULL) {
			db_status s;
			db_status_get(db, &s);
			ours = s.txid;
		}
		if (theirs > ours)
			ahead += theirs - ours;
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

/* The reachable peer furthest ahead of us, or -1. */
static int furthest_ahead(store *st, const catch_up_options *o, uint64_t *ahead)
{
	probe *v = calloc(o->n_peers ? o->n_peers : 1, sizeof(*v));
	int best = -1;
	*ahead = 0;
	if (v == NULL)
		return -1;
	probe_all(o, v, probe_timeout(o->budget_ms));
	for (size_t i = 0; i < o->n_peers; i++) {
		json_t *s;
		uint64_t a;
		if (is_self(o, i))
			continue;
		if ((s = probe_result(&v[i])) == NULL) {
			lx_info("node", "catch-up: member %s (%s) did not answer", o->peers[i].hostname,
				o->peers[i].advertise_url);
		} else {
			a = txids_ahead(st, s);
			json_decref(s);
			if (a > *ahead) {
				*ahead = a;
				best = (int)i;
			}
		}
		curl_easy_cleanup(v[i].curl);
		free(v[i].b.data);
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

int catch_up(store *st, const catch_up_options *o)
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
