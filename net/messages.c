/*
 * messages.c - the HTTP API's JSON messages (messages.h): encoders write
 * text directly (the field order is the documented one); decoders parse
 * with jansson and check every member's type.
 */
#include "net/messages.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/bytes.h"

/* ---- decoding helpers: `at` names the object ("databases[2]") ---- */

#define AT_MAX 96

static int bad(lx_err *err, const char *at, const char *key, const char *what)
{
	return lx_err_set(err, EPROTO, "%s%s%s: %s", at, *at ? "." : "", key, what);
}

/* 1 and the member `key` of `o` in *v when present; 0 when absent and
 * optional; -EPROTO when absent and required. */
static int member(json_t *o, const char *at, const char *key, int required, json_t **v,
		  lx_err *err)
{
	*v = json_object_get(o, key);
	if (*v != NULL)
		return 1;
	return required ? bad(err, at, key, "missing") : 0;
}

/* An integer member; negative ones only when `is_signed`.  0 if absent. */
static int rd_integer(json_t *o, const char *at, const char *key, int required, int is_signed,
		      json_int_t *out, lx_err *err)
{
	json_t *v;
	int rc = member(o, at, key, required, &v, err);
	*out = 0;
	if (rc <= 0)
		return rc;
	if (!json_is_integer(v))
		return bad(err, at, key, "not an integer");
	if (!is_signed && json_integer_value(v) < 0)
		return bad(err, at, key, "negative");
	*out = json_integer_value(v);
	return 0;
}

static int rd_u64(json_t *o, const char *at, const char *key, int required, uint64_t *out,
		  lx_err *err)
{
	json_int_t v;
	int rc = rd_integer(o, at, key, required, 0, &v, err);
	*out = (uint64_t)v;
	return rc;
}

static int rd_i64(json_t *o, const char *at, const char *key, int required, int64_t *out,
		  lx_err *err)
{
	json_int_t v;
	int rc = rd_integer(o, at, key, required, 1, &v, err);
	*out = (int64_t)v;
	return rc;
}

static int rd_u32(json_t *o, const char *at, const char *key, int required, uint32_t *out,
		  lx_err *err)
{
	uint64_t v;
	*out = 0;
	if (rd_u64(o, at, key, required, &v, err) < 0)
		return -EPROTO;
	if (v > UINT32_MAX)
		return bad(err, at, key, "larger than 2^32-1");
	*out = (uint32_t)v;
	return 0;
}

static int rd_bool(json_t *o, const char *at, const char *key, int required, int *out,
		   lx_err *err)
{
	json_t *v;
	int rc = member(o, at, key, required, &v, err);
	*out = rc > 0 && json_is_true(v);
	if (rc > 0 && !json_is_boolean(v))
		return bad(err, at, key, "not true or false");
	return rc < 0 ? rc : 0;
}

static int rd_str(json_t *o, const char *at, const char *key, int required, const char **out,
		  lx_err *err)
{
	json_t *v;
	int rc = member(o, at, key, required, &v, err);
	*out = rc > 0 ? json_string_value(v) : NULL;
	if (rc > 0 && *out == NULL)
		return bad(err, at, key, "not a string");
	return rc < 0 ? rc : 0;
}

/* "%016x" as the encoders write IDs and checksums. */
static int parse_hex_str(const char *s, uint64_t *out)
{
	return lx_parse_hex64(s, strlen(s), out);
}

static int rd_hex(json_t *o, const char *at, const char *key, int required, uint64_t *out,
		  lx_err *err)
{
	const char *s;
	*out = 0;
	if (rd_str(o, at, key, required, &s, err) < 0)
		return -EPROTO;
	if (s != NULL && parse_hex_str(s, out) < 0)
		return bad(err, at, key, "not 1 to 16 hex digits");
	return 0;
}

/* The body as a JSON object, or an error saying where it is not JSON. */
static int load_object(const char *what, const char *body, size_t len, json_t **root,
		       lx_err *err)
{
	json_error_t je;
	*root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &je);
	if (*root == NULL)
		return lx_err_set(err, EPROTO, "%s: not JSON (line %d, column %d: %s)", what,
				  je.line, je.column, je.text);
	if (!json_is_object(*root)) {
		json_decref(*root);
		*root = NULL;
		return lx_err_set(err, EPROTO, "%s: not a JSON object", what);
	}
	return 0;
}

/* The array member `key`, its size in *n and room for *n items of `size`
 * bytes in *items (NULL when empty). */
static int rd_array(json_t *o, const char *at, const char *key, size_t size, json_t **arr,
		    void **items, size_t *n, lx_err *err)
{
	*items = NULL;
	*n = 0;
	if (member(o, at, key, 1, arr, err) < 0)
		return -EPROTO;
	if (!json_is_array(*arr))
		return bad(err, at, key, "not an array");
	*n = json_array_size(*arr);
	if (*n == 0)
		return 0;
	*items = calloc(*n, size);
	if (*items == NULL) {
		*n = 0;
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int need_object(json_t *v, const char *at, lx_err *err)
{
	return json_is_object(v) ? 0 : lx_err_set(err, EPROTO, "%s: not an object", at);
}

/* ---- GET /status ---- */

static void put_lost(text_buf *b, const status_msg_lost *l)
{
	text_put(b, ",\"lost\":{\"from\":");
	if (l->from)
		text_put(b, "%" PRIu64, l->from);
	else
		text_put(b, "null");
	text_put(b, ",\"to\":%" PRIu64 ",\"count\":%" PRIu64 ",\"at_ms\":%" PRId64 ",\"kept\":",
		 l->to, l->count, l->at_ms);
	text_put_json_string(b, l->kept);
	text_put(b, ",\"events\":%" PRIu64 ",\"total\":%" PRIu64 "}", l->events, l->total);
}

static void put_backup(text_buf *b, const status_msg_backup *k)
{
	text_put(b, ",\"backup\":{\"shipping\":%s,\"txid\":%" PRIu64 ",\"shipped_ms\":%" PRId64
		 ",\"lag_ms\":%" PRId64 ",\"snapshot_ms\":%" PRId64,
		 k->shipping ? "true" : "false", k->txid, k->shipped_ms, k->lag_ms, k->snapshot_ms);
	if (k->error != NULL && k->error[0]) {
		text_put(b, ",\"error\":");
		text_put_json_string(b, k->error);
	}
	text_put(b, "}");
}

static void put_db(text_buf *b, const status_msg_db *d)
{
	text_put(b, "{\"name\":");
	text_put_json_string(b, d->name);
	text_put(b, ",\"exists\":%s,\"txid\":%" PRIu64 ",\"checksum\":\"%016" PRIx64 "\""
		    ",\"page_size\":%" PRIu32 ",\"page_count\":%" PRIu32 ",\"journal\":\"%s\""
		    ",\"log_transactions\":%" PRIu64 ",\"log_bytes\":%" PRIu64
		    ",\"last_commit_ms\":%" PRId64 ",\"failed\":%s",
		 d->exists ? "true" : "false", d->txid, d->checksum, d->page_size,
		 d->page_count, d->wal ? "wal" : "rollback", d->log_transactions,
		 d->log_bytes, d->last_commit_ms, d->failed ? "true" : "false");
	if (d->failed) {
		text_put(b, ",\"failure\":");
		text_put_json_string(b, d->failure);
	}
	text_put(b, ",\"commits_refused\":%" PRIu64, d->commits_refused);
	if (d->storage_error != NULL && d->storage_error[0]) {
		text_put(b, ",\"storage_error\":");
		text_put_json_string(b, d->storage_error);
		text_put(b, ",\"storage_error_since_ms\":%" PRId64, d->storage_error_since_ms);
	}
	text_put(b, ",\"untracked\":%s", d->untracked ? "true" : "false");
	if (d->untracked) {
		text_put(b, ",\"untracked_reason\":");
		text_put_json_string(b, d->untracked_reason);
	}
	if (d->has_lost)
		put_lost(b, &d->lost);
	if (d->has_backup)
		put_backup(b, &d->backup);
	text_put(b, "}");
}

static void put_replica(text_buf *b, const status_msg_replica *r)
{
	text_put(b, "{\"node_id\":\"%016" PRIx64 "\",\"addr\":", r->node_id);
	text_put_json_string(b, r->addr);
	text_put(b, ",\"connected_ms\":%" PRId64 ",\"ready\":%s", r->connected_ms,
		 r->ready ? "true" : "false");
	if (r->has_sync)
		text_put(b, ",\"in_sync\":%s,\"last_ack_ms\":%" PRId64,
			 r->in_sync ? "true" : "false", r->last_ack_ms);
	text_put(b, ",\"databases\":[");
	for (size_t i = 0; i < r->n_dbs; i++) {
		const status_msg_position *p = &r->dbs[i];
		text_put(b, "%s{\"name\":", i ? "," : "");
		text_put_json_string(b, p->name);
		text_put(b, ",\"txid\":%" PRIu64 ",\"checksum\":\"%016" PRIx64 "\",\"behind\":%"
			 PRIu64 "}", p->txid, p->checksum, p->behind);
	}
	text_put(b, "]}");
}

static void put_replication(text_buf *b, const status_msg_replication *r)
{
	text_put(b, ",\"replication\":{\"mode\":");
	text_put_json_string(b, r->mode);
	text_put(b, ",\"min_acks\":%" PRIu64 ",\"on_timeout\":", r->min_acks);
	text_put_json_string(b, r->on_timeout);
	if (r->ack_after != NULL) {
		text_put(b, ",\"ack_after\":");
		text_put_json_string(b, r->ack_after);
	}
	text_put(b, ",\"sync_timeout_ms\":%" PRId64, r->sync_timeout_ms);
	if (r->has_state) {
		text_put(b, ",\"state\":");
		text_put_json_string(b, r->state);
		if (r->reason != NULL) {
			text_put(b, ",\"reason\":");
			text_put_json_string(b, r->reason);
		}
		text_put(b, ",\"since_ms\":%" PRId64 ",\"in_sync\":%" PRIu64
			 ",\"commits_waited\":%" PRIu64 ",\"timeouts\":%" PRIu64
			 ",\"refused\":%" PRIu64 ",\"unreplicated\":%" PRIu64
			 ",\"wait_avg_ms\":%.3f", r->since_ms, r->in_sync, r->commits_waited,
			 r->timeouts, r->refused, r->unreplicated, r->wait_avg_ms);
	}
	text_put(b, "}");
}

int status_msg_encode(const status_msg *m, text_buf *out)
{
	text_put(out, "{\"node_id\":\"%016" PRIx64 "\",\"hostname\":", m->node_id);
	text_put_json_string(out, m->hostname);
	text_put(out, ",\"role\":");
	text_put_json_string(out, m->role);
	text_put(out, ",\"primary\":");
	text_put_json_string(out, m->primary);
	text_put(out, ",\"lease\":");
	text_put_json_string(out, m->lease);
	text_put(out, ",\"epoch\":%" PRIu64 ",\"cluster_id\":", m->epoch);
	text_put_json_string(out, m->cluster_id);
	text_put(out, ",\"uptime_ms\":%" PRId64 ",\"ready\":%s,\"lag_ms\":%" PRId64
		 ",\"databases\":[", m->uptime_ms, m->ready ? "true" : "false", m->lag_ms);
	for (size_t i = 0; i < m->n_dbs; i++) {
		if (i > 0)
			text_put(out, ",");
		put_db(out, &m->dbs[i]);
	}
	text_put(out, "],\"replicas\":[");
	for (size_t i = 0; i < m->n_replicas; i++) {
		if (i > 0)
			text_put(out, ",");
		put_replica(out, &m->replicas[i]);
	}
	text_put(out, "]");
	if (m->has_replication)
		put_replication(out, &m->replication);
	text_put(out, "}\n");
	return out->oom ? -ENOMEM : 0;
}

static int rd_lost(json_t *d, const char *at, status_msg_db *db, lx_err *err)
{
	json_t *l = json_object_get(d, "lost"), *from;
	char here[AT_MAX * 2];
	if (l == NULL)
		return 0;
	snprintf(here, sizeof(here), "%s.lost", at);
	if (need_object(l, here, err) < 0)
		return -EPROTO;
	db->has_lost = 1;
	from = json_object_get(l, "from");
	if (from != NULL && !json_is_null(from) &&
	    rd_u64(l, here, "from", 1, &db->lost.from, err) < 0)
		return -EPROTO;
	if (rd_u64(l, here, "to", 0, &db->lost.to, err) < 0 ||
	    rd_u64(l, here, "count", 0, &db->lost.count, err) < 0 ||
	    rd_i64(l, here, "at_ms", 0, &db->lost.at_ms, err) < 0 ||
	    rd_str(l, here, "kept", 0, &db->lost.kept, err) < 0 ||
	    rd_u64(l, here, "events", 0, &db->lost.events, err) < 0 ||
	    rd_u64(l, here, "total", 0, &db->lost.total, err) < 0)
		return -EPROTO;
	return 0;
}

static int rd_backup(json_t *d, const char *at, status_msg_db *db, lx_err *err)
{
	json_t *k = json_object_get(d, "backup");
	char here[AT_MAX * 2];
	if (k == NULL)
		return 0;
	snprintf(here, sizeof(here), "%s.backup", at);
	if (need_object(k, here, err) < 0)
		return -EPROTO;
	db->has_backup = 1;
	if (rd_bool(k, here, "shipping", 0, &db->backup.shipping, err) < 0 ||
	    rd_u64(k, here, "txid", 0, &db->backup.txid, err) < 0 ||
	    rd_i64(k, here, "shipped_ms", 0, &db->backup.shipped_ms, err) < 0 ||
	    rd_i64(k, here, "lag_ms", 0, &db->backup.lag_ms, err) < 0 ||
	    rd_i64(k, here, "snapshot_ms", 0, &db->backup.snapshot_ms, err) < 0 ||
	    rd_str(k, here, "error", 0, &db->backup.error, err) < 0)
		return -EPROTO;
	return 0;
}

static int rd_db(json_t *d, const char *at, status_msg_db *db, lx_err *err)
{
	const char *journal;
	if (need_object(d, at, err) < 0)
		return -EPROTO;
	if (rd_str(d, at, "name", 1, &db->name, err) < 0 ||
	    rd_bool(d, at, "exists", 1, &db->exists, err) < 0 ||
	    rd_u64(d, at, "txid", 1, &db->txid, err) < 0 ||
	    rd_hex(d, at, "checksum", 1, &db->checksum, err) < 0 ||
	    rd_u32(d, at, "page_size", 0, &db->page_size, err) < 0 ||
	    rd_u32(d, at, "page_count", 0, &db->page_count, err) < 0 ||
	    rd_str(d, at, "journal", 0, &journal, err) < 0 ||
	    rd_u64(d, at, "log_transactions", 0, &db->log_transactions, err) < 0 ||
	    rd_u64(d, at, "log_bytes", 0, &db->log_bytes, err) < 0 ||
	    rd_i64(d, at, "last_commit_ms", 0, &db->last_commit_ms, err) < 0 ||
	    rd_bool(d, at, "failed", 0, &db->failed, err) < 0 ||
	    rd_str(d, at, "failure", 0, &db->failure, err) < 0 ||
	    rd_u64(d, at, "commits_refused", 0, &db->commits_refused, err) < 0 ||
	    rd_str(d, at, "storage_error", 0, &db->storage_error, err) < 0 ||
	    rd_i64(d, at, "storage_error_since_ms", 0, &db->storage_error_since_ms, err) < 0 ||
	    rd_bool(d, at, "untracked", 0, &db->untracked, err) < 0 ||
	    rd_str(d, at, "untracked_reason", 0, &db->untracked_reason, err) < 0)
		return -EPROTO;
	if (journal != NULL && strcmp(journal, "wal") != 0 && strcmp(journal, "rollback") != 0)
		return bad(err, at, "journal", "neither \"wal\" nor \"rollback\"");
	db->wal = journal != NULL && strcmp(journal, "wal") == 0;
	if (rd_lost(d, at, db, err) < 0)
		return -EPROTO;
	return rd_backup(d, at, db, err);
}

static int rd_replica(json_t *r, const char *at, status_msg_replica *rep, lx_err *err)
{
	json_t *arr, *p;
	void *items;
	size_t i;
	if (need_object(r, at, err) < 0)
		return -EPROTO;
	if (rd_hex(r, at, "node_id", 1, &rep->node_id, err) < 0 ||
	    rd_str(r, at, "addr", 1, &rep->addr, err) < 0 ||
	    rd_i64(r, at, "connected_ms", 0, &rep->connected_ms, err) < 0 ||
	    rd_bool(r, at, "ready", 1, &rep->ready, err) < 0 ||
	    rd_array(r, at, "databases", sizeof(*rep->dbs), &arr, &items, &rep->n_dbs, err) < 0)
		return -EPROTO;
	rep->has_sync = json_object_get(r, "in_sync") != NULL;
	if (rep->has_sync && (rd_bool(r, at, "in_sync", 1, &rep->in_sync, err) < 0 ||
			      rd_i64(r, at, "last_ack_ms", 0, &rep->last_ack_ms, err) < 0))
		return -EPROTO;
	rep->dbs = items;
	json_array_foreach(arr, i, p) {
		char here[AT_MAX * 2];
		snprintf(here, sizeof(here), "%s.databases[%zu]", at, i);
		if (need_object(p, here, err) < 0 ||
		    rd_str(p, here, "name", 1, &rep->dbs[i].name, err) < 0 ||
		    rd_u64(p, here, "txid", 1, &rep->dbs[i].txid, err) < 0 ||
		    rd_hex(p, here, "checksum", 1, &rep->dbs[i].checksum, err) < 0 ||
		    rd_u64(p, here, "behind", 0, &rep->dbs[i].behind, err) < 0)
			return -EPROTO;
	}
	return 0;
}

/* "replication" (absent from older nodes). */
static int rd_replication(json_t *o, status_msg *m, lx_err *err)
{
	json_t *r = json_object_get(o, "replication"), *avg;
	status_msg_replication *p = &m->replication;
	const char *at = "replication";
	if (r == NULL)
		return 0;
	if (need_object(r, at, err) < 0)
		return -EPROTO;
	m->has_replication = 1;
	if (rd_str(r, at, "mode", 1, &p->mode, err) < 0 ||
	    rd_u64(r, at, "min_acks", 0, &p->min_acks, err) < 0 ||
	    rd_str(r, at, "on_timeout", 0, &p->on_timeout, err) < 0 ||
	    rd_str(r, at, "ack_after", 0, &p->ack_after, err) < 0 ||
	    rd_i64(r, at, "sync_timeout_ms", 0, &p->sync_timeout_ms, err) < 0)
		return -EPROTO;
	if (json_object_get(r, "state") == NULL)
		return 0;
	avg = json_object_get(r, "wait_avg_ms");
	p->has_state = 1;
	if (rd_str(r, at, "state", 1, &p->state, err) < 0 ||
	    rd_str(r, at, "reason", 0, &p->reason, err) < 0 ||
	    rd_i64(r, at, "since_ms", 0, &p->since_ms, err) < 0 ||
	    rd_u64(r, at, "in_sync", 0, &p->in_sync, err) < 0 ||
	    rd_u64(r, at, "commits_waited", 0, &p->commits_waited, err) < 0 ||
	    rd_u64(r, at, "timeouts", 0, &p->timeouts, err) < 0 ||
	    rd_u64(r, at, "refused", 0, &p->refused, err) < 0 ||
	    rd_u64(r, at, "unreplicated", 0, &p->unreplicated, err) < 0)
		return -EPROTO;
	p->wait_avg_ms = json_is_number(avg) ? json_number_value(avg) : 0;
	return 0;
}

static int rd_status(json_t *o, status_msg *m, lx_err *err)
{
	json_t *arr, *v;
	void *items;
	size_t i;
	if (rd_hex(o, "", "node_id", 1, &m->node_id, err) < 0 ||
	    rd_str(o, "", "hostname", 1, &m->hostname, err) < 0 ||
	    rd_str(o, "", "role", 1, &m->role, err) < 0 ||
	    rd_str(o, "", "primary", 0, &m->primary, err) < 0 ||
	    rd_str(o, "", "lease", 0, &m->lease, err) < 0 ||
	    rd_u64(o, "", "epoch", 0, &m->epoch, err) < 0 ||
	    rd_str(o, "", "cluster_id", 0, &m->cluster_id, err) < 0 ||
	    rd_i64(o, "", "uptime_ms", 0, &m->uptime_ms, err) < 0 ||
	    rd_bool(o, "", "ready", 0, &m->ready, err) < 0 ||
	    rd_i64(o, "", "lag_ms", 0, &m->lag_ms, err) < 0)
		return -EPROTO;
	if (rd_array(o, "", "databases", sizeof(*m->dbs), &arr, &items, &m->n_dbs, err) < 0)
		return -EPROTO;
	m->dbs = items;
	json_array_foreach(arr, i, v) {
		char at[AT_MAX];
		snprintf(at, sizeof(at), "databases[%zu]", i);
		if (rd_db(v, at, &m->dbs[i], err) < 0)
			return -EPROTO;
	}
	if (rd_replication(o, m, err) < 0)
		return -EPROTO;
	/* A node before replicas were reported: none. */
	if (json_object_get(o, "replicas") == NULL)
		return 0;
	if (rd_array(o, "", "replicas", sizeof(*m->replicas), &arr, &items, &m->n_replicas,
		     err) < 0)
		return -EPROTO;
	m->replicas = items;
	json_array_foreach(arr, i, v) {
		char at[AT_MAX];
		snprintf(at, sizeof(at), "replicas[%zu]", i);
		if (rd_replica(v, at, &m->replicas[i], err) < 0)
			return -EPROTO;
	}
	return 0;
}

int status_msg_decode(const char *body, size_t len, status_msg *m, lx_err *err)
{
	json_t *root;
	int rc;
	memset(m, 0, sizeof(*m));
	if (load_object("/status", body, len, &root, err) < 0)
		return -EPROTO;
	m->doc = root;
	rc = rd_status(root, m, err);
	if (rc < 0) {
		lx_err_wrap(err, "/status: ");
		status_msg_free(m);
	}
	return rc;
}

void status_msg_free(status_msg *m)
{
	for (size_t i = 0; m->replicas != NULL && i < m->n_replicas; i++)
		free(m->replicas[i].dbs);
	free(m->replicas);
	free(m->dbs);
	json_decref(m->doc);
	memset(m, 0, sizeof(*m));
}

/* ---- POST /handoff ---- */

int handoff_msg_encode(const handoff_msg *m, text_buf *out)
{
	text_put(out, "{\"token\":");
	text_put_json_string(out, m->token);
	text_put(out, ",\"positions\":{");
	for (size_t i = 0; i < m->n_positions; i++) {
		const handoff_position *p = &m->positions[i];
		if (i > 0)
			text_put(out, ",");
		text_put_json_string(out, p->name);
		text_put(out, ":[%" PRIu64 ",\"%016" PRIx64 "\"]", p->txid, p->checksum);
	}
	text_put(out, "}}");
	return out->oom ? -ENOMEM : 0;
}

/* A position's TXID: a JSON integer as /status writes TXIDs.  Nodes before
 * the messages were shared wrote it as a decimal string ("42"); that form
 * is still read, so that a cluster being upgraded one node at a time still
 * hands off in both directions. */
static int rd_position_txid(json_t *v, const char *at, uint64_t *out, lx_err *err)
{
	const char *s = json_string_value(v);
	uint64_t t = 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return lx_err_set(err, EPROTO, "%s[0] (txid): negative", at);
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return lx_err_set(err, EPROTO, "%s[0] (txid): not an integer", at);
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return lx_err_set(err, EPROTO, "%s[0] (txid): not an integer", at);
		if (t > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return lx_err_set(err, EPROTO, "%s[0] (txid): larger than 2^64-1", at);
		t = t * 10 + (uint64_t)(*p - '0');
	}
	*out = t;
	return 0;
}

static int rd_positions(json_t *o, handoff_msg *m, lx_err *err)
{
	json_t *pos, *v;
	const char *name;
	size_t i = 0;
	if (member(o, "", "positions", 1, &pos, err) < 0)
		return -EPROTO;
	if (!json_is_object(pos))
		return bad(err, "", "positions", "not an object");
	m->n_positions = json_object_size(pos);
	if (m->n_positions == 0)
		return 0;
	m->positions = calloc(m->n_positions, sizeof(*m->positions));
	if (m->positions == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	json_object_foreach(pos, name, v) {
		handoff_position *p = &m->positions[i++];
		char at[AT_MAX];
		const char *ck = json_string_value(json_array_get(v, 1));
		snprintf(at, sizeof(at), "positions[\"%.64s\"]", name);
		if (!json_is_array(v) || json_array_size(v) != 2)
			return lx_err_set(err, EPROTO, "%s: not [txid, checksum]", at);
		p->name = name;
		if (rd_position_txid(json_array_get(v, 0), at, &p->txid, err) < 0)
			return -EPROTO;
		if (ck == NULL || parse_hex_str(ck, &p->checksum) < 0)
			return lx_err_set(err, EPROTO, "%s[1] (checksum): not 1 to 16 hex digits",
					  at);
	}
	return 0;
}

int handoff_msg_decode(const char *body, size_t len, handoff_msg *m, lx_err *err)
{
	json_t *root;
	int rc;
	memset(m, 0, sizeof(*m));
	if (load_object("hand-off answer", body, len, &root, err) < 0)
		return -EPROTO;
	m->doc = root;
	rc = rd_str(root, "", "token", 1, &m->token, err);
	if (rc == 0)
		rc = rd_positions(root, m, err);
	if (rc < 0) {
		lx_err_wrap(err, "hand-off answer: ");
		handoff_msg_free(m);
	}
	return rc;
}

void handoff_msg_free(handoff_msg *m)
{
	free(m->positions);
	json_decref(m->doc);
	memset(m, 0, sizeof(*m));
}
