/*
 * acker.c - sending a replica's acknowledgements (see acker.h).
 */
#include "replica/acker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "replica/proto.h"

#define RETRY_MS 100
#define ACK_TIMEOUT_MS 5000

typedef struct pending_ack {
	database *db;              /* never freed before the store is closed */
	proto_pos pos;
} pending_ack;

struct acker {
	char *url;                 /* <primary>/ack */
	uint64_t node_id;
	http_client_options http;
	http_client *client;       /* the acker thread's */
	pthread_t thread;
	int stop;                  /* atomic; also the client's cancel flag */

	pthread_mutex_t mu;        /* guards the rest */
	pthread_cond_t wake;
	uint64_t epoch;
	int fsync;                 /* fsync logs before acknowledging (else written is enough) */
	pending_ack *pending;      /* one per database, newest position */
	size_t n, cap;
	int ready;                 /* the replica caught up: say so with the next */
	uint64_t sent, failures;
};

/* Keep the newest position per database (mu held). */
static int merge_locked(acker *a, const pending_ack *p)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->pending[i].db == p->db) {
			if (p->pos.txid >= a->pending[i].pos.txid)
				a->pending[i] = *p;
			return 0;
		}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		pending_ack *v = realloc(a->pending, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		a->pending = v;
		a->cap = cap;
	}
	a->pending[a->n++] = *p;
	return 0;
}

int acker_add(acker *a, database *db, uint64_t txid, uint64_t checksum)
{
	pending_ack p;
	int rc;
	memset(&p, 0, sizeof(p));
	p.db = db;
	snprintf(p.pos.name, sizeof(p.pos.name), "%s", db->name);
	p.pos.txid = txid;
	p.pos.checksum = checksum;
	pthread_mutex_lock(&a->mu);
	rc = merge_locked(a, &p);
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void acker_ready(acker *a)
{
	pthread_mutex_lock(&a->mu);
	a->ready = 1;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->mu);
}

void acker_set_stream(acker *a, uint64_t epoch, int fsync)
{
	pthread_mutex_lock(&a->mu);
	a->fsync = fsync;
	if (epoch != a->epoch) {
		a->n = 0;               /* positions of an older stream: not for this primary */
		a->ready = 0;
	}
	a->epoch = epoch;
	pthread_mutex_unlock(&a->mu);
}

void acker_counters(acker *a, uint64_t *sent, uint64_t *failures)
{
	pthread_mutex_lock(&a->mu);
	*sent = a->sent;
	*failures = a->failures;
	pthread_mutex_unlock(&a->mu);
}

/*
 * Make every position of the batch durable: fsync each database's log
 * (a no-op where nothing was appended since the last).  The positions were
 * appended before they were added, so the fsync covers them.  A log that
 * cannot be synced is not acknowledged; the rest move to the front of v.
 */
static size_t make_durable(pending_ack *batch, size_t n, int fsync, proto_pos *v)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		lx_err err;
		if (fsync && db_sync_log(batch[i].db, &err) < 0) {
			lx_warn("replica", "db %s: not acknowledged: %s", batch[i].db->name, err.msg);
			continue;
		}
		v[k++] = batch[i].pos;
	}
	return k;
}

/* POST /ack with these positions.  1: sent or refused for good (drop
 * them); 0: not sent (retry). */
static int post_acks(acker *a, const proto_pos *v, size_t n, uint64_t epoch, int ready)
{
	size_t len = proto_pos_size(v, n);
	uint8_t *body = malloc(len);
	char idh[64], eph[64];
	const char *headers[] = { idh, eph, "Content-Type: application/x-ltxfs-positions",
				  ready ? "Ltxfs-Caught-Up: 1" : NULL, NULL };
	http_request q;
	http_response r;
	lx_err err;
	int rc, done, ok;
	if (body == NULL)
		return 0;
	proto_pos_encode(v, n, body);
	snprintf(idh, sizeof(idh), "Ltxfs-Node-Id: %016" PRIx64, a->node_id);
	snprintf(eph, sizeof(eph), "Ltxfs-Epoch: %" PRIu64, epoch);
	memset(&q, 0, sizeof(q));
	q.method = "POST";
	q.url = a->url;
	q.headers = headers;
	q.body = body;
	q.body_len = len;
	q.timeout_ms = ACK_TIMEOUT_MS;
	rc = http_client_do(a->client, &q, &r, &err);
	ok = rc == 0 && r.status >= 200 && r.status < 300;
	/* 400, 409, 503: not for this primary (or malformed): never better */
	done = ok || (rc == 0 && (r.status == 400 || r.status == 409 || r.status == 503));
	if (rc == 0 && !ok) {
		http_status_error(&q, &r, &err);
		lx_debug("acker", "%s", err.msg);
	} else if (rc < 0 && rc != -EINTR) {
		lx_debug("acker", "%s", err.msg);
	}
	http_response_free(&r);
	free(body);
	pthread_mutex_lock(&a->mu);
	if (ok)
		a->sent += n;
	else
		a->failures++;
	pthread_mutex_unlock(&a->mu);
	return done;
}

static void *acker_main(void *arg)
{
	acker *a = arg;
	pending_ack *batch = NULL;
	proto_pos *pos;
	size_t n = 0, k;
	uint64_t epoch;
	int ready, fsync;
	pthread_mutex_lock(&a->mu);
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		if (a->n == 0 && !a->ready) {
			pthread_cond_wait(&a->wake, &a->mu);
			continue;
		}
		/* Take the pending positions; new ones gather meanwhile. */
		batch = a->pending;
		n = a->n;
		a->pending = NULL;
		a->n = a->cap = 0;
		epoch = a->epoch;
		fsync = a->fsync;
		ready = a->ready;
		a->ready = 0;
		pthread_mutex_unlock(&a->mu);
		LX_FAILPOINT("replica.ack.before_sync");
		pos = malloc((n ? n : 1) * sizeof(*pos));
		k = pos != NULL ? make_durable(batch, n, fsync, pos) : 0;
		LX_FAILPOINT("replica.ack.before_send");
		int done = pos != NULL && (k > 0 || ready) ? post_acks(a, pos, k, epoch, ready) :
			   pos != NULL;
		free(pos);
		pthread_mutex_lock(&a->mu);
		if (!done && epoch == a->epoch) {
			a->ready |= ready;
			for (size_t i = 0; i < n; i++)
				(void)merge_locked(a, &batch[i]);
			struct timespec ts = lx_mono_deadline(RETRY_MS);
			while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE) &&
			       pthread_cond_timedwait(&a->wake, &a->mu, &ts) == 0)
				;
		}
		free(batch);
		batch = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void acker_free(acker *a)
{
	http_client_close(a->client);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->mu);
	free(a->pending);
	free(a->url);
	free(a);
}

int acker_start(acker **out, const char *primary_url, uint64_t node_id,
		const http_client_options *http, lx_err *err)
{
	acker *a = calloc(1, sizeof(*a));
	size_t ulen = strlen(primary_url);
	pthread_condattr_t ca;
	int rc;
	*out = NULL;
	if (a == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	while (ulen > 0 && primary_url[ulen - 1] == '/')
		ulen--;
	a->node_id = node_id;
	a->fsync = 1;
	if (http != NULL)
		a->http = *http;
	a->http.cancel = &a->stop;
	a->http.connect_timeout_ms = 2000;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (asprintf(&a->url, "%.*s/ack", (int)ulen, primary_url) < 0) {
		a->url = NULL;
		acker_free(a);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	rc = http_client_open(&a->client, &a->http, err);
	if (rc == 0 && (rc = -pthread_create(&a->thread, NULL, acker_main, a)) < 0)
		lx_err_sys(err, -rc, "start the acker thread");
	if (rc < 0) {
		acker_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void acker_stop(acker *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->mu);
	http_client_interrupt(a->client);
	pthread_join(a->thread, NULL);
	acker_free(a);
}
