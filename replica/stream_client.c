/*
 * stream_client.c - following the primary (see stream_client.h).
 */
#include "replica/stream_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/log.h"
#include "lease/cluster_id.h"
#include "ltx/ltx.h"
#include "net/http_client.h"
#include "replica/acker.h"
#include "replica/proto.h"
#include "replica/receive.h"

#define LAG_UNKNOWN_MS 2147483647LL
/* Reconnects after a failure wait 100 ms, doubling to 5 s.  The wait
 * starts over only after a connection that made progress (stream_once):
 * one that merely connected and then failed (a full disk refuses every
 * snapshot) keeps doubling it. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct stream_client {
	store *store;
	stream_client_options opt;
	char *url;
	pthread_t thread;
	int stop;                       /* atomic */
	pthread_mutex_t mu;             /* guards the sleep below */
	pthread_cond_t wake;

	char proxy_url[256];            /* the primary's Ltxfs-Proxy-Url (under mu); "" none */

	/* state shown to others (atomics) */
	int64_t primary_ts_ms;          /* primary clock of the last heartbeat/transaction */
	int ready;
	int connected;
	int finished;                   /* catch-up: the one connection ended */
	uint64_t snapshots, transactions;

	/* the connection in progress (replica thread only) */
	http_client *http;              /* cancelled by `stop` */
	char cluster_id[CLUSTER_ID_SIZE];  /* ours; "" until adopted from the primary */
	char peer_cluster[64];          /* the primary's, from its response */
	uint64_t peer_epoch;            /* the primary's lease epoch, from its response */
	int peer_has_epoch;
	int spool_fd;                   /* unlinked file in data.dir for incoming LTX files */
	uint8_t fhead[PROTO_FRAME_HEADER_SIZE];
	size_t fhead_len;
	proto_frame frame;
	char name[PROTO_NAME_MAX + 1];
	uint32_t name_got;
	enum { ST_HEADER, ST_NAME, ST_PAYLOAD } state;
	receive in;                     /* the LTX frame being received */
	uint8_t *points;                /* a DIVERGED frame's payload being received */
	size_t points_got;
	lx_err fail;                    /* why the connection is being ended */
	int received;                   /* bytes arrived on this connection */
	int64_t refused_since;          /* monotonic ms of the first refusal in a row; 0 */
	int gone_told;                  /* primary_gone was called for this run */

	/* sync mode: the primary asked for acknowledgements (Ltxfs-Acks) */
	int acks_wanted;
	int acks_written;               /* ... once written to the log, not fsynced */
	acker *acker;                   /* started at the first such stream */
	database **to_ack;              /* snapshots installed since the last acknowledgement */
	size_t n_to_ack, cap_to_ack;
	int ack_all;                    /* READY: acknowledge every database */
};

/* What the other side is, for messages: a catch-up streams from a member. */
static const char *peer_kind(const stream_client_options *o)
{
	return o->catch_up ? "member" : "primary";
}

/* ---- frames ------------------------------------------------------------------ */

/* A snapshot replaced `db`: acknowledge its position with the next ones. */
static void note_installed(stream_client *c, database *db)
{
	if (!c->acks_wanted || db == NULL)
		return;
	for (size_t i = 0; i < c->n_to_ack; i++)
		if (c->to_ack[i] == db)
			return;
	if (c->n_to_ack == c->cap_to_ack) {
		size_t cap = c->cap_to_ack ? c->cap_to_ack * 2 : 16;
		database **v = realloc(c->to_ack, cap * sizeof(*v));
		if (v == NULL) {
			c->ack_all = 1;      /* acknowledge everything instead */
			return;
		}
		c->to_ack = v;
		c->cap_to_ack = cap;
	}
	c->to_ack[c->n_to_ack++] = db;
}

/* Tell the acker where `db` stands: it fsyncs the log, then sends. */
static void ack_position(stream_client *c, database *db, uint64_t txid, uint64_t ck)
{
	if (txid > 0 && acker_add(c->acker, db, txid, ck) < 0)
		lx_warn("replica", "db %s: not acknowledged: out of memory", db->name);
}

/* A transaction is in the log (db_apply_remote's hook, during the apply). */
static void on_logged(void *ctx, database *db, uint64_t txid, uint64_t checksum)
{
	stream_client *c = ctx;
	if (c->acks_wanted && c->acker != NULL)
		ack_position(c, db, txid, checksum);
}

static void ack_database(stream_client *c, database *db)
{
	uint64_t txid, ck;
	db_position(db, &txid, &ck);
	ack_position(c, db, txid, ck);
}

/*
 * Acknowledge the snapshots installed by the bytes just parsed, or after
 * READY every database (sync mode).  Transactions were handed to the
 * acker as they reached the log (on_logged).
 */
static void send_acks(stream_client *c)
{
	if (!c->acks_wanted || c->acker == NULL)
		return;
	if (c->ack_all) {
		database **dbs = NULL;
		size_t n = 0;
		if (store_list(c->store, &dbs, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				ack_database(c, dbs[i]);
			acker_ready(c->acker);
		}
		free(dbs);
	} else {
		for (size_t i = 0; i < c->n_to_ack; i++)
			ack_database(c, c->to_ack[i]);
	}
	c->ack_all = 0;
	c->n_to_ack = 0;
}

static int ltx_frame_done(stream_client *c)
{
	int snapshot;
	int64_t ts;
	database *db = c->in.db;
	db_logged_hook logged = { on_logged, c };
	int rc = receive_finish(&c->in, &logged, &snapshot, &ts);
	if (rc == 0 && snapshot)
		note_installed(c, db);
	if (rc < 0) {
		lx_err_set(&c->fail, c->in.err.code ? c->in.err.code : -rc, "%s", c->in.err.msg);
	} else {
		__atomic_add_fetch(snapshot ? &c->snapshots : &c->transactions, 1, __ATOMIC_RELAXED);
		if (ts > __atomic_load_n(&c->primary_ts_ms, __ATOMIC_RELAXED))
			__atomic_store_n(&c->primary_ts_ms, ts, __ATOMIC_RELAXED);
	}
	receive_reset(&c->in);
	return rc;
}

/* The primary's positions after f->arg, checked, for db_report_diverged. */
static int diverged_frame_done(stream_client *c)
{
	proto_point *pts = NULL;
	db_point *later = NULL;
	size_t n = 0;
	database *db = store_find(c->store, c->name);
	int rc = c->frame.payload_len == 0 ? 0 :
		 proto_points_decode(c->points, c->points_got, &pts, &n, &c->fail);
	free(c->points);
	c->points = NULL;
	if (rc == 0 && n > 0 && (later = malloc(n * sizeof(*later))) == NULL)
		rc = lx_err_set(&c->fail, ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		later[i] = (db_point){ pts[i].txid, pts[i].checksum };
	if (rc == 0 && db != NULL)
		db_report_diverged(db, c->frame.arg, later, n, c->opt.primary_name);
	free(pts);
	free(later);
	return rc;
}

/* Idle: replicated WAL frames still waiting for readers to let them into
 * the database file get another chance (db_replica_tick never waits). */
static void tick_databases(stream_client *c)
{
	database **dbs = NULL;
	size_t n = 0;
	if (store_list(c->store, &dbs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		db_replica_tick(dbs[i]);
	free(dbs);
}

static int frame_done(stream_client *c)
{
	proto_frame *f = &c->frame;
	database *db;
	int rc = 0;
	switch (f->type) {
	case FRAME_LTX:
		rc = ltx_frame_done(c);
		break;
	case FRAME_HEARTBEAT:
		__atomic_store_n(&c->primary_ts_ms, (int64_t)f->arg, __ATOMIC_RELAXED);
		tick_databases(c);
		break;
	case FRAME_READY:
		if (!__atomic_exchange_n(&c->ready, 1, __ATOMIC_ACQ_REL))
			lx_info("replica", "caught up with the %s %s", peer_kind(&c->opt),
				c->opt.primary_name);
		__atomic_store_n(&c->primary_ts_ms, lx_wall_ms(), __ATOMIC_RELAXED);
		c->ack_all = c->acks_wanted;    /* caught up: join the set in sync */
		break;
	case FRAME_DELETED:
		db = store_find(c->store, c->name);
		if (db != NULL)
			rc = db_remove_remote(db, &c->fail);
		if (db != NULL && rc == 0)
			store_retire(c->store, db);
		break;
	case FRAME_DIVERGED:
		rc = diverged_frame_done(c);
		break;
	}
	c->state = ST_HEADER;
	c->fhead_len = 0;
	return rc < 0 || c->fail.code ? -EIO : 0;
}

/* The name is complete: check the header and start the payload. */
static int frame_named(stream_client *c)
{
	c->name[c->frame.name_len] = '\0';
	if (proto_frame_check(c->fhead, c->name, &c->fail) < 0)
		return -EBADMSG;
	if (c->frame.payload_len == 0)
		return frame_done(c);
	if (c->frame.type == FRAME_DIVERGED) {
		/* bounded by proto_frame_decode */
		c->points = malloc(c->frame.payload_len);
		c->points_got = 0;
		if (c->points == NULL)
			return lx_err_set(&c->fail, ENOMEM, "out of memory");
		c->state = ST_PAYLOAD;
		return 0;
	}
	if (receive_start(&c->in, c->store, c->name, c->frame.payload_len, c->spool_fd) < 0) {
		if (!c->fail.code)
			lx_err_set(&c->fail, c->in.err.code, "db %s: %s", c->name, c->in.err.msg);
		return -EIO;
	}
	c->state = ST_PAYLOAD;
	return 0;
}

static size_t take_upto(uint8_t *dst, size_t have, size_t want, const uint8_t *src, size_t len)
{
	size_t n = want - have < len ? want - have : len;
	memcpy(dst + have, src, n);
	return n;
}

/* Consume stream bytes; returns how many were used (fewer: an error in c->fail). */
static size_t parse(stream_client *c, const uint8_t *p, size_t len)
{
	size_t used = 0, n;
	while (used < len) {
		switch (c->state) {
		case ST_HEADER:
			n = take_upto(c->fhead, c->fhead_len, PROTO_FRAME_HEADER_SIZE, p + used, len - used);
			c->fhead_len += n;
			used += n;
			if (c->fhead_len < PROTO_FRAME_HEADER_SIZE)
				break;
			if (proto_frame_decode(c->fhead, &c->frame, &c->fail) < 0)
				return 0;
			c->name_got = 0;
			c->state = ST_NAME;
			if (c->frame.name_len == 0 && frame_named(c) < 0)
				return 0;
			break;
		case ST_NAME:
			n = take_upto((uint8_t *)c->name, c->name_got, c->frame.name_len, p + used,
				      len - used);
			c->name_got += (uint32_t)n;
			used += n;
			if (c->name_got == c->frame.name_len && frame_named(c) < 0)
				return 0;
			break;
		case ST_PAYLOAD:
			if (c->frame.type == FRAME_DIVERGED) {
				n = take_upto(c->points, c->points_got, c->frame.payload_len,
					      p + used, len - used);
				c->points_got += n;
				used += n;
				if (c->points_got == c->frame.payload_len && frame_done(c) < 0)
					return 0;
				break;
			}
			n = c->frame.payload_len - c->in.got < len - used ?
			    (size_t)(c->frame.payload_len - c->in.got) : len - used;
			if (receive_feed(&c->in, p + used, n) < 0) {
				lx_err_set(&c->fail, c->in.err.code, "db %s: %s", c->name, c->in.err.msg);
				return 0;
			}
			used += n;
			if (c->in.got == c->frame.payload_len && frame_done(c) < 0)
				return 0;
			break;
		}
	}
	return used;
}

/* ---- the connection ------------------------------------------------------------ */

/* Ltxfs-Epoch and Ltxfs-Cluster-Id of the answer. */
static void on_response_header(void *arg, const char *name, size_t name_len,
			       const char *value, size_t value_len)
{
	stream_client *c = arg;
	if (name_len == 15 && strncasecmp(name, "Ltxfs-Proxy-Url", 15) == 0) {
		pthread_mutex_lock(&c->mu);
		snprintf(c->proxy_url, sizeof(c->proxy_url), "%.*s",
			 value_len < sizeof(c->proxy_url) ? (int)value_len : 0, value);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (name_len == 10 && strncasecmp(name, "Ltxfs-Acks", 10) == 0) {
		/* "fsync" (or "1", as the first version said it) or "write" */
		c->acks_written = value_len == 5 && strncasecmp(value, "write", 5) == 0;
		c->acks_wanted = c->acks_written || (value_len == 1 && value[0] == '1') ||
				 (value_len == 5 && strncasecmp(value, "fsync", 5) == 0);
	} else if (name_len == 11 && strncasecmp(name, "Ltxfs-Epoch", 11) == 0) {
		char buf[32];
		char *end;
		snprintf(buf, sizeof(buf), "%.*s",
			 (int)(value_len < sizeof(buf) ? value_len : sizeof(buf) - 1), value);
		c->peer_epoch = strtoull(buf, &end, 10);
		c->peer_has_epoch = end != buf;
	} else if (name_len == 16 && strncasecmp(name, "Ltxfs-Cluster-Id", 16) == 0) {
		snprintf(c->peer_cluster, sizeof(c->peer_cluster), "%.*s", (int)value_len, value);
	}
}

/* A primary older than the lease's holder was replaced: take nothing. */
static int check_epoch(stream_client *c)
{
	if (c->opt.min_epoch == 0 || (c->peer_has_epoch && c->peer_epoch >= c->opt.min_epoch))
		return 0;
	return lx_err_set(&c->fail, ESTALE, "the primary at %s has lease epoch %" PRIu64
			  ", older than epoch %" PRIu64 " this node has seen: it was replaced; "
			  "nothing it sends is applied", c->opt.primary_url, c->peer_epoch,
			  c->opt.min_epoch);
}

/* The primary's cluster must be ours; the first one is adopted and kept. */
static int check_cluster(stream_client *c)
{
	if (c->peer_cluster[0] == '\0')
		return 0;
	if (!cluster_id_valid(c->peer_cluster))
		return lx_err_set(&c->fail, EPROTO, "the primary sent a malformed cluster ID");
	if (c->cluster_id[0] == '\0') {
		if (cluster_id_save(c->opt.data_dir, c->peer_cluster, &c->fail) < 0)
			return -c->fail.code;
		memcpy(c->cluster_id, c->peer_cluster, CLUSTER_ID_SIZE);
		lx_info("replica", "joined cluster %s", c->cluster_id);
		return 0;
	}
	if (strcmp(c->cluster_id, c->peer_cluster) != 0)
		return lx_err_set(&c->fail, EPROTO, "the primary at %s belongs to cluster %s, this "
				  "node to %s: point lease.advertise-url at this cluster's primary, or "
				  "empty data.dir to join the other cluster", c->opt.primary_url,
				  c->peer_cluster, c->cluster_id);
	return 0;
}

/* A primary in sync mode wants acknowledgements: the acker sends them. */
static int start_acks(stream_client *c)
{
	lx_err err;
	if (!c->acks_wanted || c->opt.catch_up)
		return 0;
	if (c->acker == NULL &&
	    acker_start(&c->acker, c->opt.primary_url, c->opt.node_id, c->opt.http, &err) < 0)
		return lx_err_set(&c->fail, err.code, "acknowledgements: %s", err.msg);
	acker_set_stream(c->acker, c->peer_epoch, !c->acks_written);
	c->n_to_ack = 0;
	c->ack_all = 0;
	return 0;
}

/* The stream's bytes (a 2xx answer), as they arrive: -1 ends the
 * connection, with the reason in c->fail. */
static int on_stream(void *arg, const char *data, size_t len)
{
	stream_client *c = arg;
	if (!c->received) {
		if (check_epoch(c) < 0 || check_cluster(c) < 0)
			return -1;
		c->received = 1;
		if (start_acks(c) < 0)
			return -1;
		__atomic_store_n(&c->connected, 1, __ATOMIC_RELEASE);
		lx_info("replica", "streaming from the %s %s (%s)", peer_kind(&c->opt),
			c->opt.primary_name, c->opt.primary_url);
	}
	if (parse(c, (const uint8_t *)data, len) != len)
		return -1;
	send_acks(c);
	return 0;
}

/* Earlier positions of the database's own history (see proto.h). */
static void add_history(proto_pos *p, database *db)
{
	db_point pts[PROTO_HIST_MAX];
	size_t n = db_history_points(db, pts, PROTO_HIST_MAX);
	for (size_t i = 0; i < n; i++)
		if (pts[i].txid < p->txid)   /* it may have moved since */
			p->hist[p->n_hist++] = (proto_point){ pts[i].txid, pts[i].checksum };
}

/* The request body: every local database's position. */
static int build_positions(stream_client *c, uint8_t **body, size_t *len)
{
	database **dbs;
	proto_pos *pos;
	size_t n, k = 0;
	if (store_list(c->store, &dbs, &n) < 0)
		return -ENOMEM;
	pos = calloc(n ? n : 1, sizeof(*pos));
	if (pos == NULL) {
		free(dbs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		db_status st;
		db_status_get(dbs[i], &st);
		/* A failed database, or one without history, reports nothing:
		 * the primary sends a snapshot if it has pages. */
		if (st.failed || st.txid == 0 || strlen(dbs[i]->name) > PROTO_NAME_MAX)
			continue;
		snprintf(pos[k].name, sizeof(pos[k].name), "%s", dbs[i]->name);
		pos[k].txid = st.txid;
		pos[k].checksum = st.checksum;
		add_history(&pos[k], dbs[i]);
		k++;
	}
	free(dbs);
	*len = proto_pos_size(pos, k);
	*body = malloc(*len);
	if (*body != NULL)
		proto_pos_encode(pos, k, *body);
	free(pos);
	return *body ? 0 : -ENOMEM;
}

/* The request's header lines, in line[][] (NULL-terminated in h[]). */
static void request_headers(stream_client *c, char line[4][128], const char *h[8])
{
	size_t k = 0;
	snprintf(line[0], sizeof(line[0]), "Ltxfs-Node-Id: %016" PRIx64, c->opt.node_id);
	h[k++] = line[0];
	if (c->opt.min_epoch) {
		snprintf(line[1], sizeof(line[1]), "Ltxfs-Epoch: %" PRIu64, c->opt.min_epoch);
		h[k++] = line[1];
	}
	if (c->cluster_id[0]) {
		snprintf(line[2], sizeof(line[2]), "Ltxfs-Cluster-Id: %s", c->cluster_id);
		h[k++] = line[2];
	}
	if (c->opt.catch_up)
		h[k++] = "Ltxfs-Catch-Up: 1";
	h[k++] = "Content-Type: application/x-ltxfs-positions";
	h[k++] = "Expect:";                /* no 100-continue round trip */
	h[k] = NULL;
}

/* Why the connection ended, logged once (nothing when stopping). */
static void report_end(stream_client *c, const http_request *q, const http_response *r, int rc,
		       const lx_err *err)
{
	lx_err e;
	if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
		return;                    /* shutting down: nothing to report */
	if (c->fail.code)
		lx_warn("replica", "stream from %s ended: %s", c->opt.primary_url, c->fail.msg);
	else if (rc < 0)
		lx_warn("replica", "stream: %s", err->msg);
	else if (http_status_error(q, r, &e) < 0)
		lx_warn("replica", "the %s %s refused the stream: %s", peer_kind(&c->opt),
			c->opt.primary_name, e.msg);
	else
		lx_info("replica", "stream from %s ended", c->opt.primary_url);
}

/* A primary whose address refuses every connection for PRIMARY_GONE_MS
 * is gone (its host answers, its process does not): say so once. */
static void note_refusal(stream_client *c, int refused)
{
	int64_t now = lx_mono_ms();
	if (!refused) {
		c->refused_since = 0;
		if (c->received)
			c->gone_told = 0;
		return;
	}
	if (c->refused_since == 0)
		c->refused_since = now;
	if (!c->gone_told && c->opt.primary_gone != NULL &&
	    now - c->refused_since >= PRIMARY_GONE_MS) {
		c->gone_told = 1;
		lx_warn("replica", "the primary %s at %s has refused connections for %" PRId64
			" ms: its process is gone", c->opt.primary_name, c->opt.primary_url,
			now - c->refused_since);
		c->opt.primary_gone(c->opt.gone_ctx, c->opt.primary_url);
	}
}

/* One connection, until it ends.  Returns 1 if it made progress: a
 * transaction or snapshot applied, or the stream stayed up for the longest
 * backoff (then reconnecting at once costs no more than waiting would). */
static int stream_once(stream_client *c)
{
	uint64_t applied = __atomic_load_n(&c->snapshots, __ATOMIC_RELAXED) +
			   __atomic_load_n(&c->transactions, __ATOMIC_RELAXED);
	int64_t started = lx_mono_ms();
	char line[4][128];
	const char *headers[8];
	uint8_t *body = NULL;
	size_t body_len = 0;
	http_request q;
	http_response r;
	lx_err err;
	int rc;

	lx_err_clear(&c->fail);
	c->peer_cluster[0] = '\0';
	c->peer_epoch = 0;
	c->peer_has_epoch = 0;
	c->received = 0;
	c->acks_wanted = 0;
	pthread_mutex_lock(&c->mu);
	c->proxy_url[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	c->state = ST_HEADER;
	c->fhead_len = 0;
	request_headers(c, line, headers);
	if (build_positions(c, &body, &body_len) < 0) {
		lx_warn("replica", "out of memory");
		return 0;
	}
	memset(&q, 0, sizeof(q));
	q.method = "POST";
	q.url = c->url;
	q.headers = headers;
	q.body = body;
	q.body_len = body_len;
	q.idle_ms = c->opt.silence_ms;     /* a silent primary ends the connection */
	q.sink = on_stream;
	q.sink_arg = c;
	q.on_header = on_response_header;
	q.header_arg = c;
	q.recv_buffer = 512L * 1024;       /* fewer callbacks */
	rc = http_client_do(c->http, &q, &r, &err);
	__atomic_store_n(&c->connected, 0, __ATOMIC_RELEASE);
	receive_reset(&c->in);
	free(c->points);
	c->points = NULL;
	report_end(c, &q, &r, rc, &err);
	note_refusal(c, r.refused);
	http_response_free(&r);
	free(body);
	if (!c->received)
		return 0;
	return __atomic_load_n(&c->snapshots, __ATOMIC_RELAXED) +
	       __atomic_load_n(&c->transactions, __ATOMIC_RELAXED) != applied ||
	       lx_mono_ms() - started >= BACKOFF_MAX_MS;
}

/* Sleep `ms`, or less if the client is stopped. */
static void pause_ms(stream_client *c, int ms)
{
	struct timespec ts = lx_mono_deadline(ms);
	pthread_mutex_lock(&c->mu);
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
		if (pthread_cond_timedwait(&c->wake, &c->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&c->mu);
}

static void *client_main(void *arg)
{
	stream_client *c = arg;
	int backoff = BACKOFF_MIN_MS;
	if (c->opt.catch_up) {
		stream_once(c);
		__atomic_store_n(&c->finished, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (stream_once(c))
			backoff = BACKOFF_MIN_MS;
		if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
			break;
		pause_ms(c, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

/* ---- API --------------------------------------------------------------------- */

/* "<primary url without trailing slashes>/stream", or NULL. */
static char *join_url(const char *base, size_t len)
{
	char *url;
	return asprintf(&url, "%.*s/stream", (int)len, base) < 0 ? NULL : url;
}

/* The node's options (TLS, token), with the client's own cancel flag
 * (stop) and a 5 s bound on connecting. */
static const http_client_options *stream_http_options(stream_client *c, http_client_options *o)
{
	if (c->opt.http != NULL)
		*o = *c->opt.http;
	o->cancel = &c->stop;
	o->connect_timeout_ms = 5000;
	return o;
}

/* Free a client whose thread is not running (partly built ones too). */
static void client_free(stream_client *c)
{
	receive_reset(&c->in);
	free(c->points);
	acker_stop(c->acker);
	free(c->to_ack);
	http_client_close(c->http);
	if (c->spool_fd >= 0)
		close(c->spool_fd);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->mu);
	free(c->url);
	free(c);
}

int stream_client_start(stream_client **out, store *st, const stream_client_options *o,
			lx_err *err)
{
	stream_client *c = calloc(1, sizeof(*c));
	http_client_options ho = { 0 };
	pthread_condattr_t ca;
	size_t ulen;
	int rc = 0;
	*out = NULL;
	if (c == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	c->store = st;
	c->opt = *o;
	snprintf(c->cluster_id, sizeof(c->cluster_id), "%s", o->cluster_id ? o->cluster_id : "");
	if (c->opt.silence_ms <= 0)
		c->opt.silence_ms = 5000;
	receive_init(&c->in);
	c->spool_fd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_condattr_destroy(&ca);
	ulen = strlen(o->primary_url);
	while (ulen > 0 && o->primary_url[ulen - 1] == '/')
		ulen--;
	c->spool_fd = open(st->data_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (c->spool_fd < 0)
		rc = lx_err_sys(err, errno, "spool file in %s", st->data_dir);
	else if ((c->url = join_url(o->primary_url, ulen)) == NULL)
		rc = lx_err_set(err, ENOMEM, "out of memory");
	else if ((rc = http_client_open(&c->http, stream_http_options(c, &ho), err)) < 0)
		;
	else if ((rc = -pthread_create(&c->thread, NULL, client_main, c)) < 0)
		lx_err_sys(err, -rc, "start the replica thread");
	if (rc < 0) {
		client_free(c);
		return rc;
	}
	lx_info("replica", "%s %s at %s", o->catch_up ? "catching up from the member" :
		"following the primary", o->primary_name, o->primary_url);
	*out = c;
	return 0;
}

void stream_client_stop(stream_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&c->wake);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	client_free(c);
}

int64_t stream_client_lag_ms(void *arg)
{
	stream_client *c = arg;
	int64_t ts = __atomic_load_n(&c->primary_ts_ms, __ATOMIC_RELAXED);
	int64_t lag;
	if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE) || ts == 0)
		return LAG_UNKNOWN_MS;
	lag = lx_wall_ms() - ts;
	return lag < 0 ? 0 : lag;
}

int stream_client_finished(stream_client *c)
{
	return __atomic_load_n(&c->finished, __ATOMIC_ACQUIRE);
}

int stream_client_ready(stream_client *c)
{
	return __atomic_load_n(&c->ready, __ATOMIC_ACQUIRE);
}

int stream_client_proxy_url(stream_client *c, char *out, size_t cap)
{
	int rc;
	pthread_mutex_lock(&c->mu);
	rc = c->proxy_url[0] && __atomic_load_n(&c->connected, __ATOMIC_ACQUIRE) ? 0 : -ENOENT;
	if (rc == 0)
		snprintf(out, cap, "%s", c->proxy_url);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int stream_client_connected(stream_client *c)
{
	return __atomic_load_n(&c->connected, __ATOMIC_ACQUIRE);
}

void stream_client_counters(stream_client *c, uint64_t *snapshots, uint64_t *transactions)
{
	*snapshots = __atomic_load_n(&c->snapshots, __ATOMIC_RELAXED);
	*transactions = __atomic_load_n(&c->transactions, __ATOMIC_RELAXED);
}

const char *stream_client_cluster_id(stream_client *c)
{
	/* Written once, by the replica thread, before the first frame. */
	return c->cluster_id;
}
