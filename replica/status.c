/*
 * status.c - JSON and Prometheus renderings of the node's state (status.h).
 */
#include "replica/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_buf_free(text_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void put(text_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(text_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->oom = 1;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
}

/* A JSON string literal (RFC 8259): quotes, backslashes and control
 * characters escaped; other bytes (UTF-8) as they are. */
static void put_json_string(text_buf *b, const char *s)
{
	put(b, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			put(b, "\\%c", *p);
		else if (*p < 0x20)
			put(b, "\\u%04x", *p);
		else
			put(b, "%c", *p);
	}
	put(b, "\"");
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void put_label_value(text_buf *b, const char *s)
{
	for (const char *p = s ? s : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			put(b, "\\%c", *p);
		else if (*p == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *p);
	}
}

/* Transactions committed here that the cluster's history lost (the last
 * report; "from": null when where the histories part is unknown). */
static void put_json_lost(text_buf *b, const db_lost *l)
{
	put(b, ",\"lost\":{\"from\":");
	if (l->from)
		put(b, "%" PRIu64, l->from);
	else
		put(b, "null");
	put(b, ",\"to\":%" PRIu64 ",\"count\":%" PRIu64 ",\"at_ms\":%" PRId64 ",\"kept\":",
	    l->to, l->count, l->at_ms);
	put_json_string(b, l->kept);
	put(b, ",\"events\":%" PRIu64 ",\"total\":%" PRIu64 "}", l->events, l->total);
}

static void put_json_db(text_buf *b, const status_db *d)
{
	const db_status *s = &d->st;
	put(b, "{\"name\":");
	put_json_string(b, d->name);
	put(b, ",\"exists\":%s,\"txid\":%" PRIu64 ",\"checksum\":\"%016" PRIx64 "\""
	       ",\"page_size\":%u,\"page_count\":%u,\"journal\":\"%s\""
	       ",\"log_transactions\":%" PRIu64 ",\"log_bytes\":%" PRIu64
	       ",\"last_commit_ms\":%" PRId64 ",\"failed\":%s",
	    s->exists ? "true" : "false", s->txid, s->checksum, s->page_size,
	    s->n_pages, s->wal_mode ? "wal" : "rollback", s->log_transactions,
	    s->log_bytes, s->last_commit_ms, s->failed ? "true" : "false");
	if (s->failed) {
		put(b, ",\"failure\":");
		put_json_string(b, s->failure);
	}
	put(b, ",\"commits_refused\":%" PRIu64, s->commits_refused);
	if (s->storage_error[0]) {
		put(b, ",\"storage_error\":");
		put_json_string(b, s->storage_error);
		put(b, ",\"storage_error_since_ms\":%" PRId64, s->storage_error_ms);
	}
	put(b, ",\"untracked\":%s", s->untracked ? "true" : "false");
	if (s->untracked) {
		char why[256];
		status_untracked_reason(s, why, sizeof(why));
		put(b, ",\"untracked_reason\":");
		put_json_string(b, why);
	}
	if (s->lost.events)
		put_json_lost(b, &s->lost);
	put(b, "}");
}

void status_untracked_reason(const db_status *s, char *out, size_t cap)
{
	snprintf(out, cap, "the database file is not a SQLite database (page 1 has no valid "
		 "header): its changes are not logged or replicated; the last good state is "
		 "TXID %" PRIu64 ", which replicas keep serving", s->txid);
}

/* The databases by name, so that each replica's positions are matched in
 * O(log n): a linear search made /status O(databases x positions), 10^8
 * comparisons with 10,000 databases and a replica. */
static int by_name(const void *a, const void *b)
{
	return strcmp((*(const status_db *const *)a)->name, (*(const status_db *const *)b)->name);
}

static const status_db *find_db(const status_db *const *sorted, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sorted[mid]->name, name);
		if (c == 0)
			return sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A connected replica: its position per database and how far behind. */
static void put_json_replica(text_buf *b, const stream_replica *r,
			     const status_db *const *dbs, size_t n)
{
	put(b, "{\"node_id\":\"%016" PRIx64 "\",\"addr\":", r->node_id);
	put_json_string(b, r->addr);
	put(b, ",\"connected_ms\":%" PRId64 ",\"ready\":%s,\"databases\":[",
	    r->connected_ms, r->ready ? "true" : "false");
	for (size_t i = 0; i < r->n; i++) {
		const status_db *d = find_db(dbs, n, r->dbs[i].name);
		uint64_t behind = d && d->st.txid > r->dbs[i].txid ? d->st.txid - r->dbs[i].txid : 0;
		put(b, "%s{\"name\":", i ? "," : "");
		put_json_string(b, r->dbs[i].name);
		put(b, ",\"txid\":%" PRIu64 ",\"checksum\":\"%016" PRIx64 "\",\"behind\":%" PRIu64 "}",
		    r->dbs[i].txid, r->dbs[i].checksum, behind);
	}
	put(b, "]}");
}

int status_render_json(text_buf *out, const node_status *node,
		       const status_db *dbs, size_t n,
		       const stream_replica *reps, size_t nreps)
{
	const status_db **sorted = nreps && n ? malloc(n * sizeof(*sorted)) : NULL;
	for (size_t i = 0; sorted != NULL && i < n; i++)
		sorted[i] = &dbs[i];
	if (sorted != NULL)
		qsort(sorted, n, sizeof(*sorted), by_name);
	put(out, "{\"node_id\":\"%016" PRIx64 "\",\"hostname\":", node->node_id);
	put_json_string(out, node->hostname);
	put(out, ",\"role\":");
	put_json_string(out, node->role);
	put(out, ",\"primary\":");
	put_json_string(out, node->primary);
	put(out, ",\"lease\":");
	put_json_string(out, node->lease_type);
	put(out, ",\"epoch\":%" PRIu64, node->epoch);
	put(out, ",\"cluster_id\":");
	put_json_string(out, node->cluster_id ? node->cluster_id : "");
	put(out, ",\"uptime_ms\":%" PRId64 ",\"ready\":%s,\"lag_ms\":%" PRId64 ",\"databases\":[",
	    node->now_ms - node->started_ms, node->ready ? "true" : "false", node->lag_ms);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			put(out, ",");
		put_json_db(out, &dbs[i]);
	}
	put(out, "],\"replicas\":[");
	for (size_t i = 0; i < nreps; i++) {
		if (i > 0)
			put(out, ",");
		put_json_replica(out, &reps[i], sorted, sorted ? n : 0);
	}
	free(sorted);
	put(out, "]}\n");
	return out->oom ? -ENOMEM : 0;
}

/* One metric family: HELP, TYPE, then a sample per database. */
static void put_db_family(text_buf *b, const char *name, const char *type,
			  const char *help, const status_db *dbs, size_t n,
			  uint64_t (*value)(const db_status *))
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < n; i++) {
		put(b, "%s{db=\"", name);
		put_label_value(b, dbs[i].name);
		put(b, "\"} %" PRIu64 "\n", value(&dbs[i].st));
	}
}

static uint64_t v_txid(const db_status *s) { return s->txid; }
static uint64_t v_pages(const db_status *s) { return s->n_pages; }
static uint64_t v_db_bytes(const db_status *s) { return (uint64_t)s->n_pages * s->page_size; }
static uint64_t v_log_tx(const db_status *s) { return s->log_transactions; }
static uint64_t v_log_bytes(const db_status *s) { return s->log_bytes; }
static uint64_t v_failed(const db_status *s) { return s->failed ? 1 : 0; }
static uint64_t v_untracked(const db_status *s) { return s->untracked ? 1 : 0; }
static uint64_t v_lost(const db_status *s) { return s->lost.total; }
static uint64_t v_lost_events(const db_status *s) { return s->lost.events; }
static uint64_t v_commits(const db_status *s) { return s->commits; }
static uint64_t v_mismatches(const db_status *s) { return s->checksum_mismatches; }
static uint64_t v_refusing(const db_status *s) { return s->storage_error[0] ? 1 : 0; }
static uint64_t v_refused(const db_status *s) { return s->commits_refused; }

static void put_counter(text_buf *b, const char *name, const char *help, uint64_t v)
{
	put(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

int status_render_metrics(text_buf *out, const node_status *node,
			  const status_db *dbs, size_t n,
			  const stream_replica *reps, size_t nreps)
{
	put(out, "# HELP ltxfs_info The node (value 1).\n# TYPE ltxfs_info gauge\n"
		 "ltxfs_info{node_id=\"%016" PRIx64 "\",hostname=\"", node->node_id);
	put_label_value(out, node->hostname);
	put(out, "\",role=\"");
	put_label_value(out, node->role);
	put(out, "\"} 1\n");
	put(out, "# HELP ltxfs_primary 1 if this node holds the lease.\n# TYPE ltxfs_primary gauge\n"
		 "ltxfs_primary %d\n", strcmp(node->role, "primary") == 0);
	put(out, "# HELP ltxfs_lease_epoch The primary's lease epoch as this node knows it.\n"
		 "# TYPE ltxfs_lease_epoch gauge\nltxfs_lease_epoch %" PRIu64 "\n", node->epoch);
	put(out, "# HELP ltxfs_uptime_seconds Seconds since the daemon started.\n"
		 "# TYPE ltxfs_uptime_seconds gauge\nltxfs_uptime_seconds %.3f\n",
	    (double)(node->now_ms - node->started_ms) / 1000.0);
	(void)reps;
	put(out, "# HELP ltxfs_lag_seconds Replica: seconds since the primary was last heard.\n"
		 "# TYPE ltxfs_lag_seconds gauge\nltxfs_lag_seconds %.3f\n",
	    (double)node->lag_ms / 1000.0);
	if (node->renew_ms >= 0)
		put(out, "# HELP ltxfs_lease_renew_seconds How long the last lease renewal took.\n"
			 "# TYPE ltxfs_lease_renew_seconds gauge\nltxfs_lease_renew_seconds %.3f\n",
		    (double)node->renew_ms / 1000.0);
	put_counter(out, "ltxfs_lease_renews_total", "Successful lease renewals.", node->renews);
	put_counter(out, "ltxfs_lease_renew_failures_total",
		    "Lease renewals that failed (and were retried).", node->renew_failures);
	put(out, "# HELP ltxfs_replicas Replicas streaming from this node.\n"
		 "# TYPE ltxfs_replicas gauge\nltxfs_replicas %zu\n", nreps);
	put_counter(out, "ltxfs_snapshots_sent_total", "Snapshots sent to replicas.",
		    node->snapshots_sent);
	put_counter(out, "ltxfs_transactions_sent_total", "Transactions sent to replicas.",
		    node->transactions_sent);
	put_counter(out, "ltxfs_snapshots_received_total", "Snapshots installed from the primary.",
		    node->snapshots_received);
	put_counter(out, "ltxfs_transactions_received_total",
		    "Transactions applied from the primary.", node->transactions_received);
	put(out, "# HELP ltxfs_databases Databases known to the node.\n"
		 "# TYPE ltxfs_databases gauge\nltxfs_databases %zu\n", n);
	put_counter(out, "ltxfs_databases_retired_total",
		    "Deleted databases whose directory, log and descriptors were given back.",
		    node->databases_retired);
	put(out, "# HELP ltxfs_open_files Descriptors the databases keep open (bounded by "
		 "data.max-open-files; files held by applications are not counted).\n"
		 "# TYPE ltxfs_open_files gauge\nltxfs_open_files %" PRIu64 "\n", node->open_files);
	put(out, "# HELP ltxfs_open_files_max data.max-open-files.\n"
		 "# TYPE ltxfs_open_files_max gauge\nltxfs_open_files_max %" PRIu64 "\n",
	    node->open_files_max);
	put(out, "# HELP ltxfs_open_files_databases Databases whose descriptors are open.\n"
		 "# TYPE ltxfs_open_files_databases gauge\nltxfs_open_files_databases %" PRIu64 "\n",
	    node->open_files_dbs);
	put_counter(out, "ltxfs_open_files_closes_total",
		    "Idle databases that closed their descriptors to stay under the bound.",
		    node->open_files_closes);
	put_db_family(out, "ltxfs_db_txid", "gauge", "TXID of the last transaction.",
		      dbs, n, v_txid);
	put_db_family(out, "ltxfs_db_pages", "gauge", "Pages in the database.", dbs, n, v_pages);
	put_db_family(out, "ltxfs_db_size_bytes", "gauge", "Database size in bytes.",
		      dbs, n, v_db_bytes);
	put_db_family(out, "ltxfs_log_transactions", "gauge",
		      "Transactions held in the log.", dbs, n, v_log_tx);
	put_db_family(out, "ltxfs_log_bytes", "gauge", "LTX bytes held in the log.",
		      dbs, n, v_log_bytes);
	put_db_family(out, "ltxfs_db_failed", "gauge",
		      "1 if the database is not served (see the log and /status).",
		      dbs, n, v_failed);
	put_db_family(out, "ltxfs_db_untracked", "gauge",
		      "1 if the database file is not a SQLite database: its changes are not "
		      "logged or replicated (see /status).", dbs, n, v_untracked);
	put_db_family(out, "ltxfs_db_lost_transactions_total", "counter",
		      "Transactions committed here that the primary's history does not hold "
		      "(replaced by its snapshot; see /status).", dbs, n, v_lost);
	put_db_family(out, "ltxfs_db_divergences_total", "counter",
		      "Times this node's history was found off the primary's.", dbs, n,
		      v_lost_events);
	put_db_family(out, "ltxfs_db_transactions_total", "counter",
		      "Transactions committed here (primary) or applied (replica) since start.",
		      dbs, n, v_commits);
	put_db_family(out, "ltxfs_db_checksum_mismatches_total", "counter",
		      "Checksums that disagreed since start: damaged log records, received "
		      "files that failed verification, replica positions off the history.",
		      dbs, n, v_mismatches);
	put_db_family(out, "ltxfs_db_commits_refusing", "gauge",
		      "1 while commits are refused because the log cannot take them (a full "
		      "disk, an I/O error; see storage_error in /status).", dbs, n, v_refusing);
	put_db_family(out, "ltxfs_db_commits_refused_total", "counter",
		      "Writes of transactions refused since start because the log could not "
		      "take them.", dbs, n, v_refused);
	return out->oom ? -ENOMEM : 0;
}
