/*
 * stream_server.c - the frames of one replica's stream (see
 * stream_server.h).
 */
#include "replica/stream_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "db/snapshot.h"
#include "ltx/ltx.h"

/* Snapshot pages read (and encoded) per batch: about 1 MiB. */
#define SNAPSHOT_BATCH_BYTES (1u << 20)

typedef struct cursor {
	database *db;              /* NULL: the primary has no such database */
	char name[PROTO_NAME_MAX + 1];
	uint64_t txid, checksum;   /* the replica's position as far as we know */
	int known;                 /* the replica has the database */
	int force_snapshot;        /* a stored transaction could not be sent */
	uint16_t n_hist;           /* earlier positions the replica reported, */
	db_point hist[PROTO_HIST_MAX];  /* valid until the position moves */
} cursor;

struct stream_session {
	stream_hub *hub;
	stream_session *next;        /* in hub->sessions */
	uint64_t node_id;
	char addr[64];
	int64_t connected_ms;

	cursor *cur;                 /* positions: written under hub->mu */
	size_t n, cap;
	size_t n_reported;           /* cur[0..n_reported) are the replica's own
					positions, sorted by name */
	uint64_t list_seen;          /* the store's databases listed up to this
					list_seq have a cursor (store_list_since) */
	size_t rr;                   /* where the next scan starts (fairness) */
	int ready_sent;
	int catch_up;                /* the stream ends after READY */
	int failed;                  /* an error cut the stream: only errors follow */
	int caught_up;               /* the last plan found nothing to send ... */
	uint64_t caught_up_seq;      /* ... at this commit count */
	int64_t last_send_ms;        /* monotonic */

	/* pending output */
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	/* a logged transaction being sent straight from its segment */
	int ltx_fd;
	uint64_t ltx_off, ltx_left;
	/* a snapshot being encoded */
	db_snapshot *snap;
	ltx_encoder enc;
	uint64_t snap_post;
	uint8_t *pages;
	uint32_t *pgnos;
	uint32_t batch;
	/* the transfer in progress and the replica's position after it */
	cursor *sending;
	uint64_t after_txid, after_checksum;
};

/* ---- hub ------------------------------------------------------------------- */

void stream_hub_init(stream_hub *h, store *st, int heartbeat_ms)
{
	memset(h, 0, sizeof(*h));
	h->store = st;
	h->heartbeat_ms = heartbeat_ms;
	pthread_mutex_init(&h->mu, NULL);
}

void stream_hub_stop(stream_hub *h)
{
	__atomic_store_n(&h->stopping, 1, __ATOMIC_RELEASE);
	db_events_notify(&h->store->events);
}

void stream_hub_set_paused(stream_hub *h, int paused)
{
	__atomic_store_n(&h->paused, paused, __ATOMIC_RELEASE);
	db_events_notify(&h->store->events);
}

int stream_hub_serving(stream_hub *h)
{
	return !__atomic_load_n(&h->stopping, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&h->paused, __ATOMIC_ACQUIRE);
}

int stream_hub_serving_catch_up(stream_hub *h)
{
	return !__atomic_load_n(&h->stopping, __ATOMIC_ACQUIRE);
}

void stream_hub_destroy(stream_hub *h)
{
	pthread_mutex_destroy(&h->mu);
}

int stream_hub_replicas(stream_hub *h, stream_replica **out, size_t *n)
{
	size_t count = 0, i = 0;
	stream_replica *v;
	pthread_mutex_lock(&h->mu);
	for (stream_session *s = h->sessions; s != NULL; s = s->next)
		count++;
	v = calloc(count ? count : 1, sizeof(*v));
	for (stream_session *s = h->sessions; v != NULL && s != NULL; s = s->next, i++) {
		v[i].node_id = s->node_id;
		snprintf(v[i].addr, sizeof(v[i].addr), "%s", s->addr);
		v[i].connected_ms = s->connected_ms;
		v[i].ready = s->ready_sent;
		v[i].dbs = calloc(s->n ? s->n : 1, sizeof(*v[i].dbs));
		if (v[i].dbs == NULL)
			continue;
		for (size_t k = 0; k < s->n; k++) {
			if (!s->cur[k].known)
				continue;
			memcpy(v[i].dbs[v[i].n].name, s->cur[k].name, sizeof(s->cur[k].name));
			v[i].dbs[v[i].n].txid = s->cur[k].txid;
			v[i].dbs[v[i].n].checksum = s->cur[k].checksum;
			v[i].n++;
		}
	}
	pthread_mutex_unlock(&h->mu);
	if (v == NULL)
		return -ENOMEM;
	*out = v;
	*n = count;
	return 0;
}

void stream_replicas_free(stream_replica *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i].dbs);
	free(v);
}

/* ---- cursors ------------------------------------------------------------- */

static cursor *cursor_add(stream_session *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		cursor *v = realloc(s->cur, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		s->cur = v;
		s->cap = cap;
	}
	memset(&s->cur[s->n], 0, sizeof(s->cur[s->n]));
	snprintf(s->cur[s->n].name, sizeof(s->cur[s->n].name), "%s", name);
	return &s->cur[s->n++];
}

static int cursor_cmp(const void *a, const void *b)
{
	return strcmp(((const cursor *)a)->name, ((const cursor *)b)->name);
}

/* The replica's own position for `name` (binary search), or NULL. */
static cursor *cursor_reported(stream_session *s, const char *name)
{
	size_t lo = 0, hi = s->n_reported;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->cur[mid].name, name);
		if (c == 0)
			return &s->cur[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The cursor of a database that was deleted (retired) and is created
 * again: it keeps its object, so its cursor, if it has one, is found by
 * it.  Only names created again cost this pass. */
static cursor *cursor_of_db(stream_session *s, const database *db)
{
	for (size_t i = s->n_reported; i < s->n; i++)
		if (s->cur[i].db == db)
			return &s->cur[i];
	return NULL;
}

/* Databases created (or created again) on the primary since the last look
 * get a cursor: only the new ones are looked at, each in O(log n), so a
 * commit does not cost a pass over every name (that was O(databases^2) per
 * commit).  A deleted database keeps its cursor: its object stays, and
 * tells a replica that still has it to remove it (db_next_send). */
static int cursors_refresh(stream_session *s)
{
	database **dbs;
	size_t n;
	uint64_t last;
	int rc = 0;
	if (store_list_since(s->hub->store, s->list_seen, &dbs, &n, &last) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&s->hub->mu);
	for (size_t i = 0; i < n && rc == 0; i++) {
		cursor *c = cursor_reported(s, dbs[i]->name);
		if (c == NULL && __atomic_load_n(&dbs[i]->incarnation, __ATOMIC_ACQUIRE) > 0)
			c = cursor_of_db(s, dbs[i]);
		if (c == NULL && (c = cursor_add(s, dbs[i]->name)) == NULL)
			rc = -ENOMEM;
		else if (c->db == NULL)
			c->db = dbs[i];
		if (rc == 0)
			s->list_seen = dbs[i]->list_seq;
	}
	if (rc == 0)
		s->list_seen = last;
	pthread_mutex_unlock(&s->hub->mu);
	free(dbs);
	return rc;
}

static void cursor_set(stream_session *s, cursor *c, uint64_t txid, uint64_t checksum, int known)
{
	pthread_mutex_lock(&s->hub->mu);
	c->txid = txid;
	c->checksum = checksum;
	c->known = known;
	c->n_hist = 0;
	pthread_mutex_unlock(&s->hub->mu);
}

/* ---- output ---------------------------------------------------------------- */

static int out_append(void *ctx, const void *buf, size_t len)
{
	stream_session *s = ctx;
	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 64 * 1024;
		uint8_t *v;
		while (cap < s->out_len + len)
			cap *= 2;
		v = realloc(s->out, cap);
		if (v == NULL)
			return -ENOMEM;
		s->out = v;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, buf, len);
	s->out_len += len;
	return 0;
}

static int put_frame(stream_session *s, uint32_t type, const char *name,
		     uint64_t payload_len, uint64_t arg)
{
	proto_frame f = { type, name ? (uint32_t)strlen(name) : 0, payload_len, arg };
	uint8_t hdr[PROTO_FRAME_HEADER_SIZE];
	int rc;
	proto_frame_encode(&f, name, hdr);
	rc = out_append(s, hdr, sizeof(hdr));
	if (rc == 0 && f.name_len)
		rc = out_append(s, name, f.name_len);
	return rc;
}

/* ---- transfers ------------------------------------------------------------- */

static void count_sent(stream_session *s, int snapshot)
{
	pthread_mutex_lock(&s->hub->mu);
	if (snapshot)
		s->hub->snapshots_sent++;
	else
		s->hub->transactions_sent++;
	pthread_mutex_unlock(&s->hub->mu);
}

static int start_snapshot(stream_session *s, cursor *c, const char *why);

/* A logged transaction, known good before a byte of it leaves: appended by
 * this process, or read from disk and verified here once. */
static int start_ltx(stream_session *s, cursor *c, db_send *d)
{
	lx_err err;
	int rc = d->verified ? 0 : ltx_verify_fd(d->fd, d->offset, d->length, NULL, NULL, &err);
	if (rc == 0 && !d->verified)
		db_mark_verified(c->db, d->txid);   /* once, not per replica and send */
	if (rc < 0) {
		db_count_mismatch(c->db);
		lx_error(c->name, "log record after TXID %" PRIu64 " is damaged (%s); "
			 "the replica gets a snapshot", c->txid, err.msg);
		close(d->fd);
		c->force_snapshot = 1;
		return start_snapshot(s, c, "a stored transaction is damaged");
	}
	rc = put_frame(s, FRAME_LTX, c->name, d->length, 0);
	if (rc < 0) {
		close(d->fd);
		return rc;
	}
	s->ltx_fd = d->fd;
	s->ltx_off = d->offset;
	s->ltx_left = d->length;
	s->sending = c;
	s->after_txid = d->txid;
	s->after_checksum = d->checksum;
	count_sent(s, 0);
	return 1;
}

static int start_snapshot(stream_session *s, cursor *c, const char *why)
{
	ltx_header h;
	lx_err err;
	int rc = db_snapshot_begin(c->db, &s->snap, &h, &s->snap_post, &err);
	if (rc == -ENOENT)
		return 0;                  /* deleted meanwhile: plan again */
	if (rc < 0) {
		lx_error(c->name, "snapshot for replica %016" PRIx64 ": %s", s->node_id, err.msg);
		return rc;
	}
	lx_info(c->name, "sending a snapshot at TXID %" PRIu64 " (%u pages) to replica %016" PRIx64
		" at TXID %" PRIu64 ": %s", h.max_txid, h.commit, s->node_id, c->txid, why);
	s->batch = SNAPSHOT_BATCH_BYTES / h.page_size;
	free(s->pages);
	free(s->pgnos);
	s->pages = malloc((size_t)s->batch * h.page_size);
	s->pgnos = malloc(s->batch * sizeof(*s->pgnos));
	rc = s->pages && s->pgnos ? put_frame(s, FRAME_LTX, c->name, ltx_file_size(&h), 0) : -ENOMEM;
	memset(&s->enc, 0, sizeof(s->enc));
	if (rc == 0)
		rc = ltx_encoder_begin(&s->enc, &h, out_append, s, &err);
	if (rc < 0) {
		lx_error(c->name, "snapshot for replica %016" PRIx64 ": %s", s->node_id,
			 rc == -ENOMEM ? "out of memory" : err.msg);
		ltx_encoder_free(&s->enc);
		db_snapshot_end(s->snap);
		s->snap = NULL;
		return rc;
	}
	s->sending = c;
	s->after_txid = h.max_txid;
	s->after_checksum = s->snap_post;
	c->force_snapshot = 0;
	count_sent(s, 1);
	return 1;
}

/* Encode the next batch of snapshot pages into the output. */
static int snapshot_step(stream_session *s)
{
	lx_err err;
	int n = db_snapshot_read(s->snap, s->pages, s->pgnos, s->batch, &err);
	int rc = n < 0 ? n : 0;
	uint32_t ps = s->enc.hdr.page_size;
	for (int i = 0; i < n && rc == 0; i++)
		rc = ltx_encoder_page(&s->enc, s->pgnos[i], s->pages + (size_t)i * ps, 0, &err);
	if (rc == 0 && n == 0)
		rc = ltx_encoder_finish(&s->enc, s->snap_post, NULL, &err);
	if (rc < 0)
		lx_error(s->sending->name, "snapshot for replica %016" PRIx64 ": %s", s->node_id,
			 err.msg);
	if (rc < 0 || n == 0) {
		ltx_encoder_free(&s->enc);
		db_snapshot_end(s->snap);
		s->snap = NULL;
	}
	return rc;
}

/* The replica's position is off our history: say where the two part, so
 * that it can report what it loses.  The newest of the earlier positions it
 * reported that we share is the lower bound; our positions after it let the
 * replica find the exact point.  The snapshot follows. */
static int tell_diverged(stream_session *s, cursor *c)
{
	uint64_t common = db_common_txid(c->db, c->hist, c->n_hist);
	db_point *later = malloc(PROTO_POINTS_MAX * sizeof(*later));
	proto_point *wire = malloc(PROTO_POINTS_MAX * sizeof(*wire));
	uint8_t *payload = malloc(proto_points_size(PROTO_POINTS_MAX));
	size_t n = 0;
	int rc = -ENOMEM;
	if (later != NULL && wire != NULL && payload != NULL) {
		n = db_history_after(c->db, common, c->txid, later, PROTO_POINTS_MAX);
		for (size_t i = 0; i < n; i++)
			wire[i] = (proto_point){ later[i].txid, later[i].checksum };
		proto_points_encode(wire, n, payload);
		rc = put_frame(s, FRAME_DIVERGED, c->name, proto_points_size(n), common);
		if (rc == 0)
			rc = out_append(s, payload, proto_points_size(n));
	}
	free(later);
	free(wire);
	free(payload);
	lx_warn(c->name, "replica %016" PRIx64 " at TXID %" PRIu64 " is off our history (the "
		"newest position it reported that we share: TXID %" PRIu64 "); it gets a snapshot",
		s->node_id, c->txid, common);
	return rc;
}

/* Start whatever a database needs; 1 if something was started. */
static int plan_cursor(stream_session *s, cursor *c)
{
	db_send d;
	lx_err err;
	int rc;
	if (c->db == NULL) {
		if (!c->known)
			return 0;
		cursor_set(s, c, 0, 0, 0);
		return put_frame(s, FRAME_DELETED, c->name, 0, 0) < 0 ? -ENOMEM : 1;
	}
	rc = db_next_send(c->db, c->txid, c->checksum, c->known, &d, &err);
	if (rc < 0) {
		lx_error(c->name, "stream to replica %016" PRIx64 ": %s", s->node_id, err.msg);
		return rc;
	}
	if (c->force_snapshot && d.kind == SEND_LTX) {
		close(d.fd);
		d.kind = SEND_SNAPSHOT;
		d.why = "a stored transaction is damaged";
	}
	switch (d.kind) {
	case SEND_LTX:
		return start_ltx(s, c, &d);
	case SEND_SNAPSHOT:
		if (d.diverged && tell_diverged(s, c) < 0)
			return -ENOMEM;
		return start_snapshot(s, c, d.why);
	case SEND_DELETED:
		lx_info(c->name, "replica %016" PRIx64 " has it at TXID %" PRIu64 "; the primary "
			"deleted it: remove", s->node_id, c->txid);
		cursor_set(s, c, 0, 0, 0);
		return put_frame(s, FRAME_DELETED, c->name, 0, 0) < 0 ? -ENOMEM : 1;
	case SEND_NOTHING:
		break;
	}
	return 0;
}

static int plan(stream_session *s)
{
	int rc = cursors_refresh(s);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		size_t k = (s->rr + i) % s->n;
		rc = plan_cursor(s, &s->cur[k]);
		if (rc > 0)
			s->rr = k + 1;
	}
	return rc;
}

static void transfer_done(stream_session *s)
{
	cursor_set(s, s->sending, s->after_txid, s->after_checksum, 1);
	s->sending = NULL;
}

/* ---- the session ------------------------------------------------------------ */

int stream_session_new(stream_session **out, stream_hub *h, uint64_t node_id,
		       const char *addr, const proto_pos *pos, size_t n, int catch_up,
		       lx_err *err)
{
	stream_session *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->hub = h;
	s->node_id = node_id;
	snprintf(s->addr, sizeof(s->addr), "%s", addr ? addr : "");
	s->connected_ms = lx_wall_ms();
	s->ltx_fd = -1;
	s->catch_up = catch_up;
	s->last_send_ms = lx_mono_ms();
	for (size_t i = 0; i < n; i++) {
		cursor *c = cursor_add(s, pos[i].name);
		if (c == NULL) {
			stream_session_free(s);
			return lx_err_set(err, ENOMEM, "out of memory");
		}
		c->txid = pos[i].txid;
		c->checksum = pos[i].checksum;
		c->known = 1;
		c->n_hist = pos[i].n_hist;
		for (uint16_t k = 0; k < pos[i].n_hist; k++)
			c->hist[k] = (db_point){ pos[i].hist[k].txid, pos[i].hist[k].checksum };
	}
	if (s->n > 1)
		qsort(s->cur, s->n, sizeof(*s->cur), cursor_cmp);
	s->n_reported = s->n;
	pthread_mutex_lock(&h->mu);
	s->next = h->sessions;
	h->sessions = s;
	pthread_mutex_unlock(&h->mu);
	if (h->sync != NULL && !catch_up)
		sync_commit_replica_up(h->sync, node_id);
	lx_info("stream", "%s %016" PRIx64 " (%s) connected with %zu databases",
		catch_up ? "new primary catching up:" : "replica", node_id, s->addr, n);
	*out = s;
	return 0;
}

static ssize_t take_output(stream_session *s, uint8_t *buf, size_t max)
{
	size_t n = s->out_len - s->out_off;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	return (ssize_t)n;
}

static ssize_t take_ltx(stream_session *s, uint8_t *buf, size_t max)
{
	size_t n = s->ltx_left < max ? (size_t)s->ltx_left : max;
	LX_FAILPOINT("stream.send.mid");    /* the frame's header went out */
	ssize_t got = pread(s->ltx_fd, buf, n, (off_t)s->ltx_off);
	if (got <= 0) {
		lx_error(s->sending->name, "stream to replica %016" PRIx64 ": read log: %s",
			 s->node_id, got < 0 ? strerror(errno) : "short");
		return -EIO;
	}
	s->ltx_off += (uint64_t)got;
	s->ltx_left -= (uint64_t)got;
	if (s->ltx_left == 0) {
		close(s->ltx_fd);
		s->ltx_fd = -1;
	}
	return got;
}

/*
 * Queue what comes next: 1 if something was queued, 0 if nothing is due
 * (after waiting for a commit or the heartbeat when `may_wait`), or a
 * negative errno.
 */
static int produce(stream_session *s, int may_wait)
{
	stream_hub *h = s->hub;
	uint64_t seen = __atomic_load_n(&h->store->events.seq, __ATOMIC_ACQUIRE);
	int64_t idle;
	int rc;

	if (s->sending != NULL) {
		transfer_done(s);
		s->caught_up = 0;
	}
	/* Nothing was due at the last look and nothing committed since: no
	 * need to take every database's mutex again. */
	if (!s->caught_up || seen != s->caught_up_seq) {
		rc = plan(s);
		if (rc != 0)
			return rc;
		s->caught_up = 1;
		s->caught_up_seq = seen;
	}
	if (!s->ready_sent) {
		s->ready_sent = 1;
		return put_frame(s, FRAME_READY, NULL, 0, 0) < 0 ? -ENOMEM : 1;
	}
	idle = lx_mono_ms() - s->last_send_ms;
	if (idle >= h->heartbeat_ms) {
		s->last_send_ms = lx_mono_ms();
		return put_frame(s, FRAME_HEARTBEAT, NULL, 0, (uint64_t)lx_wall_ms()) < 0 ? -ENOMEM : 1;
	}
	if (may_wait)
		db_events_wait(&h->store->events, &seen, (int)(h->heartbeat_ms - idle), &h->stopping);
	return 0;
}

/* One step: bytes copied into buf (>= 0), or a negative errno. */
static ssize_t step(stream_session *s, uint8_t *buf, size_t max, int may_wait, int *idle)
{
	int rc;
	*idle = 0;
	if (s->out_off < s->out_len)
		return take_output(s, buf, max);
	if (s->ltx_left)
		return take_ltx(s, buf, max);
	if (s->snap)
		return snapshot_step(s);
	rc = produce(s, may_wait);
	*idle = rc == 0;
	return rc < 0 ? rc : 0;
}

/* Fill `buf` with as many frames as are ready, so a burst of commits
 * leaves in one write; wait only while nothing at all is ready. */
/* A catch-up session sent everything up to READY. */
static int catch_up_done(const stream_session *s)
{
	return s->catch_up && s->ready_sent && s->out_off == s->out_len && s->ltx_left == 0 &&
	       s->snap == NULL;
}

ssize_t stream_session_read(stream_session *s, uint8_t *buf, size_t max)
{
	size_t total = 0;
	if (s->failed)
		return -EIO;
	while (total < max && !catch_up_done(s) &&
	       (s->catch_up ? stream_hub_serving_catch_up(s->hub) : stream_hub_serving(s->hub))) {
		int idle;
		ssize_t n = step(s, buf + total, max - total, total == 0, &idle);
		if (n < 0) {
			s->failed = 1;       /* the stream is cut: the frame is incomplete */
			return total ? (ssize_t)total : n;
		}
		total += (size_t)n;
		if (idle && total > 0)
			break;
	}
	if (total > 0)
		s->last_send_ms = lx_mono_ms();
	return (ssize_t)total;
}

void stream_session_free(stream_session *s)
{
	if (s == NULL)
		return;
	if (s->hub != NULL) {
		pthread_mutex_lock(&s->hub->mu);
		for (stream_session **pp = &s->hub->sessions; *pp != NULL; pp = &(*pp)->next)
			if (*pp == s) {
				*pp = s->next;
				break;
			}
		pthread_mutex_unlock(&s->hub->mu);
		if (s->hub->sync != NULL && !s->catch_up)
			sync_commit_replica_down(s->hub->sync, s->node_id);
	}
	if (s->snap) {
		ltx_encoder_free(&s->enc);
		db_snapshot_end(s->snap);
	}
	if (s->ltx_fd >= 0)
		close(s->ltx_fd);
	lx_info("stream", "replica %016" PRIx64 " (%s) disconnected", s->node_id, s->addr);
	free(s->pages);
	free(s->pgnos);
	free(s->out);
	free(s->cur);
	free(s);
}
