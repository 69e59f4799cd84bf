/*
 * events.c - GET /events: what happens on the node, as newline-delimited
 * JSON (see docs/protocol.md).
 *
 * On connect: one "node" line (role, primary, epoch, ready) and one "db"
 * line per database.  Then, as they happen: "role" when the role, the
 * primary or the epoch changes, "tx" for each transaction (one line per
 * record of the database's log, so a snapshot a replica installed, or more
 * than EVENTS_TX_MAX records since the last look, is one line whose
 * "transactions" says how many TXIDs it covers), and a "heartbeat" every
 * 10 s so a client can tell a quiet node from a dead connection.
 *
 * A stream never ends by itself, so streams have a budget of their own
 * (http.max-event-streams, 503 when all are taken) below the connection
 * limit: idle /events clients cannot take the connections /health and the
 * replicas need.
 *
 * The connection's thread produces the body: it compares the node and its
 * databases with what it sent last, sleeping on the store's commit
 * notifications (db_events_wait) for at most 250 ms between looks, so a
 * role change shows within that time and a commit at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "replica/http_internal.h"

#define EVENTS_POLL_MS 250
#define EVENTS_HEARTBEAT_MS 10000
#define EVENTS_TX_MAX 1024         /* tx lines per database per look */

typedef struct seen_db {
	const char *name;          /* the database object's: lives until store_close */
	uint64_t txid;
	uint64_t backup_txid;      /* the newest TXID in the backup (backup.url) */
} seen_db;

typedef struct events_session {
	http_server *server;
	uint64_t seq;              /* the store's commit sequence last looked at */
	char role[16], primary[256];
	uint64_t epoch;
	int ready;
	char sync_state[16];       /* replication.mode sync, primary: the last said */
	seen_db *dbs;
	size_t n_dbs;
	text_buf out;              /* lines not sent yet */
	size_t sent;
	int64_t last_line_ms;
} events_session;

static void emit(events_session *e, json_t *o)
{
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t n = line ? strlen(line) : 0;
	json_decref(o);
	if (line == NULL)
		return;
	if (e->out.len + n + 1 > e->out.cap) {
		size_t cap = e->out.cap ? e->out.cap : 4096;
		char *d;
		while (cap < e->out.len + n + 1)
			cap *= 2;
		d = realloc(e->out.data, cap);
		if (d == NULL) {
			free(line);
			e->out.oom = 1;
			return;
		}
		e->out.data = d;
		e->out.cap = cap;
	}
	memcpy(e->out.data + e->out.len, line, n);
	e->out.data[e->out.len + n] = '\n';
	e->out.len += n + 1;
	free(line);
	e->last_line_ms = lx_mono_ms();
}

/* "sync" when synchronous replication's state changed (the primary). */
static void look_at_sync(events_session *e, const node_status *n)
{
	const char *state = n->has_sync ? status_sync_state(&n->sync) : "";
	if (strcmp(state, e->sync_state) == 0)
		return;
	snprintf(e->sync_state, sizeof(e->sync_state), "%s", state);
	if (!n->has_sync)
		return;
	emit(e, json_pack("{s:s, s:s, s:s?, s:I, s:I, s:I}", "type", "sync", "state", state,
			  "reason", n->sync.degraded ? n->sync.degraded_reason : NULL,
			  "in_sync", (json_int_t)n->sync.in_sync,
			  "min_acks", (json_int_t)n->sync.min_acks,
			  "at_ms", (json_int_t)lx_wall_ms()));
}

/* "node" at the start, "role" when it changed. */
static void look_at_node(events_session *e, const char *type)
{
	node_status n;
	http_node_now(e->server, &n);
	look_at_sync(e, &n);
	if (strcmp(type, "role") == 0 && strcmp(n.role, e->role) == 0 &&
	    strcmp(n.primary, e->primary) == 0 && n.epoch == e->epoch && n.ready == e->ready)
		return;
	snprintf(e->role, sizeof(e->role), "%s", n.role);
	snprintf(e->primary, sizeof(e->primary), "%s", n.primary);
	e->epoch = n.epoch;
	e->ready = n.ready;
	emit(e, json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:I}", "type", type,
			  "hostname", n.hostname ? n.hostname : "", "role", n.role,
			  "primary", n.primary, "epoch", (json_int_t)n.epoch, "ready", n.ready,
			  "at_ms", (json_int_t)lx_wall_ms()));
}

static seen_db *find_seen(events_session *e, const char *name)
{
	for (size_t i = 0; i < e->n_dbs; i++)
		if (e->dbs[i].name == name)
			return &e->dbs[i];
	return NULL;
}

static json_t *db_line(const char *type, const status_db *d)
{
	char ck[17];
	snprintf(ck, sizeof(ck), "%016" PRIx64, d->st.checksum);
	return json_pack("{s:s, s:s, s:I, s:s, s:i, s:I}", "type", type, "db", d->name,
			 "txid", (json_int_t)d->st.txid, "checksum", ck,
			 "page_count", (int)d->st.n_pages, "at_ms", (json_int_t)lx_wall_ms());
}

static json_t *tx_line(const char *db, const db_point *p, uint64_t covered)
{
	char ck[17];
	snprintf(ck, sizeof(ck), "%016" PRIx64, p->checksum);
	return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "type", "tx", "db", db,
			 "txid", (json_int_t)p->txid, "checksum", ck,
			 "transactions", (json_int_t)covered, "at_ms", (json_int_t)lx_wall_ms());
}

/* The database's TXID moved from `from` to d's: a line per logged record
 * in between, the last one for d's position.  A TXID that went back (a
 * replica re-snapshotted onto the primary's history) is one line with
 * "rewound": true. */
static void emit_transactions(events_session *e, const status_db *d, uint64_t from)
{
	db_point v[EVENTS_TX_MAX], now = { d->st.txid, d->st.checksum };
	database *db = store_find(e->server->store, d->name);
	size_t n = db && now.txid > from ? db_history_after(db, from, now.txid, v, EVENTS_TX_MAX) : 0;
	uint64_t prev = from;
	json_t *o;
	for (size_t i = 0; i < n; i++) {
		emit(e, tx_line(d->name, &v[i], v[i].txid - prev));
		prev = v[i].txid;
	}
	if (prev == now.txid && n > 0)
		return;
	o = tx_line(d->name, &now, now.txid > prev ? now.txid - prev : 0);
	if (o != NULL && now.txid < from)
		json_object_set_new(o, "rewound", json_true());
	emit(e, o);
}

/* "backup" when the newest TXID of a database in the backup moved: the
 * range shipped since the last line (backup/shipper.h). */
static void look_at_backup(events_session *e, seen_db *seen)
{
	backup_db_status b;
	backup_shipper *sh = e->server->hooks.backup;
	if (sh == NULL || backup_shipper_db_status(sh, seen->name, &b) < 0 ||
	    b.txid == seen->backup_txid)
		return;
	emit(e, json_pack("{s:s, s:s, s:I, s:I, s:b, s:I}", "type", "backup", "db", seen->name,
			  "from", (json_int_t)seen->backup_txid, "txid", (json_int_t)b.txid,
			  "shipping", b.shipping, "at_ms", (json_int_t)lx_wall_ms()));
	seen->backup_txid = b.txid;
}

/* "db" for a database not seen before (all of them at the start), "tx"
 * for one whose TXID moved, "backup" for one whose backup moved. */
static void look_at_dbs(events_session *e)
{
	status_db *dbs = NULL;
	size_t n = 0;
	if (http_gather(e->server->store, &dbs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		seen_db *seen = find_seen(e, dbs[i].name);
		if (seen == NULL) {
			seen_db *v = realloc(e->dbs, (e->n_dbs + 1) * sizeof(*v));
			if (v == NULL)
				break;
			e->dbs = v;
			seen = &e->dbs[e->n_dbs++];
			seen->name = dbs[i].name;
			seen->txid = dbs[i].st.txid;
			seen->backup_txid = 0;
			emit(e, db_line("db", &dbs[i]));
		} else if (seen->txid != dbs[i].st.txid) {
			uint64_t from = seen->txid;
			seen->txid = dbs[i].st.txid;
			emit_transactions(e, &dbs[i], from);
		}
		look_at_backup(e, seen);
	}
	free(dbs);
}

static ssize_t events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	events_session *e = cls;
	(void)pos;
	while (e->sent == e->out.len) {
		e->out.len = e->sent = 0;
		if (__atomic_load_n(&e->server->stopping, __ATOMIC_ACQUIRE) || e->out.oom)
			return MHD_CONTENT_READER_END_OF_STREAM;
		db_events_wait(&e->server->store->events, &e->seq, EVENTS_POLL_MS,
			       &e->server->stopping);
		look_at_node(e, "role");
		look_at_dbs(e);
		if (e->out.len == 0 && lx_mono_ms() - e->last_line_ms >= EVENTS_HEARTBEAT_MS)
			emit(e, json_pack("{s:s, s:I}", "type", "heartbeat", "at_ms",
					  (json_int_t)lx_wall_ms()));
	}
	if (max > e->out.len - e->sent)
		max = e->out.len - e->sent;
	memcpy(buf, e->out.data + e->sent, max);
	e->sent += max;
	return (ssize_t)max;
}

static void events_free(void *cls)
{
	events_session *e = cls;
	http_slot_give(&e->server->event_streams);
	free(e->dbs);
	free(e->out.data);
	free(e);
}

enum MHD_Result http_events(http_server *s, struct MHD_Connection *c)
{
	events_session *e;
	struct MHD_Response *resp;
	enum MHD_Result ok;
	if (http_slot_take(&s->event_streams, s->limits.max_event_streams) < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "too many /events streams open (http.max-event-streams "
			 "is %u): try again later", s->limits.max_event_streams);
		return http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		http_slot_give(&s->event_streams);
		return MHD_NO;
	}
	e->server = s;
	pthread_mutex_lock(&s->store->events.mu);
	e->seq = s->store->events.seq;
	pthread_mutex_unlock(&s->store->events.mu);
	look_at_node(e, "node");
	look_at_dbs(e);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, events_reader, e,
						 events_free);
	if (resp == NULL) {
		events_free(e);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}
