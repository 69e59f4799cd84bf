/*
 * status.c - JSON and Prometheus renderings of the node's state (status.h).
 */
#include "replica/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/messages.h"

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void put_label_value(text_buf *b, const char *s)
{
	for (const char *p = s ? s : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			text_put(b, "\\%c", *p);
		else if (*p == '\n')
			text_put(b, "\\n");
		else
			text_put(b, "%c", *p);
	}
}

static void to_msg_db(const status_db *d, status_msg_db *m, char *why, size_t cap)
{
	const db_status *s = &d->st;
	*m = (status_msg_db){
		.name = d->name, .exists = s->exists, .txid = s->txid, .checksum = s->checksum,
		.page_size = s->page_size, .page_count = s->n_pages, .wal = s->wal_mode,
		.log_transactions = s->log_transactions, .log_bytes = s->log_bytes,
		.last_commit_ms = s->last_commit_ms, .failed = s->failed,
		.failure = s->failure, .commits_refused = s->commits_refused,
		.storage_error = s->storage_error,
		.storage_error_since_ms = s->storage_error_ms, .untracked = s->untracked,
		.has_lost = s->lost.events != 0,
		.lost = { .from = s->lost.from, .to = s->lost.to, .count = s->lost.count,
			  .at_ms = s->lost.at_ms, .kept = s->lost.kept,
			  .events = s->lost.events, .total = s->lost.total },
	};
	if (s->untracked) {
		status_untracked_reason(s, why, cap);
		m->untracked_reason = why;
	}
	if (d->has_backup) {
		const backup_db_status *k = &d->backup;
		m->has_backup = 1;
		m->backup = (status_msg_backup){ .shipping = k->shipping, .txid = k->txid,
			.shipped_ms = k->shipped_ms, .lag_ms = k->lag_ms,
			.snapshot_ms = k->snapshot_ms, .error = k->error };
	}
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
static int to_msg_replica(const stream_replica *r, const status_db *const *dbs, size_t n,
			  status_msg_replica *m)
{
	*m = (status_msg_replica){ .node_id = r->node_id, .addr = r->addr,
				   .connected_ms = r->connected_ms, .ready = r->ready,
				   .n_dbs = r->n };
	m->dbs = r->n ? calloc(r->n, sizeof(*m->dbs)) : NULL;
	if (r->n && m->dbs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		const status_db *d = find_db(dbs, n, r->dbs[i].name);
		m->dbs[i] = (status_msg_position){
			.name = r->dbs[i].name, .txid = r->dbs[i].txid,
			.checksum = r->dbs[i].checksum,
			.behind = d && d->st.txid > r->dbs[i].txid ? d->st.txid - r->dbs[i].txid : 0,
		};
	}
	return 0;
}

const char *status_sync_state(const sync_stats *s)
{
	return !s->degraded ? "in-sync" : s->degrade ? "degraded" : "refusing";
}

static void to_msg_replication(const node_status *node, status_msg_replication *r)
{
	const sync_stats *s = &node->sync;
	*r = (status_msg_replication){ .mode = node->repl_mode, .min_acks = node->repl_min_acks,
				       .on_timeout = node->repl_on_timeout,
				       .ack_after = node->repl_ack_after,
				       .sync_timeout_ms = node->repl_sync_timeout_ms };
	if (!node->has_sync)
		return;
	r->has_state = 1;
	r->state = status_sync_state(s);
	r->reason = s->degraded ? s->degraded_reason : NULL;
	r->since_ms = s->degraded_since_ms;
	r->in_sync = s->in_sync;
	r->commits_waited = s->waits;
	r->timeouts = s->timeouts;
	r->refused = s->refused;
	r->unreplicated = s->unreplicated;
	r->wait_avg_ms = s->waits ? s->wait_sum_s * 1000.0 / (double)s->waits : 0;
}

/* A connected replica's standing in the set in sync. */
static void to_msg_replica_sync(const node_status *node, status_msg_replica *r)
{
	if (!node->has_sync)
		return;
	r->has_sync = 1;
	for (size_t i = 0; i < node->sync.n_replicas; i++)
		if (node->sync.replicas[i].node_id == r->node_id) {
			r->in_sync = node->sync.replicas[i].in_sync;
			r->last_ack_ms = node->sync.replicas[i].last_ack_ms;
		}
}

/* The message's arrays borrow every string from the arguments; only the
 * untracked databases' reasons are written, into `why`. */
int status_render_json(text_buf *out, const node_status *node,
		       const status_db *dbs, size_t n,
		       const stream_replica *reps, size_t nreps)
{
	status_msg m = {
		.node_id = node->node_id, .hostname = node->hostname, .role = node->role,
		.primary = node->primary, .lease = node->lease_type, .epoch = node->epoch,
		.cluster_id = node->cluster_id ? node->cluster_id : "",
		.uptime_ms = node->now_ms - node->started_ms, .ready = node->ready,
		.lag_ms = node->lag_ms, .n_dbs = n, .n_replicas = nreps,
	};
	const status_db **sorted = nreps && n ? malloc(n * sizeof(*sorted)) : NULL;
	char (*why)[256] = NULL;
	size_t n_untracked = 0, k = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		n_untracked += dbs[i].st.untracked != 0;
	m.dbs = n ? calloc(n, sizeof(*m.dbs)) : NULL;
	m.replicas = nreps ? calloc(nreps, sizeof(*m.replicas)) : NULL;
	why = n_untracked ? calloc(n_untracked, sizeof(*why)) : NULL;
	if ((n && m.dbs == NULL) || (nreps && m.replicas == NULL) ||
	    (nreps && n && sorted == NULL) || (n_untracked && why == NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int u = dbs[i].st.untracked != 0;
		to_msg_db(&dbs[i], &m.dbs[i], u ? why[k] : NULL, sizeof(*why));
		k += u;
	}
	for (size_t i = 0; sorted != NULL && i < n; i++)
		sorted[i] = &dbs[i];
	if (sorted != NULL)
		qsort(sorted, n, sizeof(*sorted), by_name);
	for (size_t i = 0; i < nreps && rc == 0; i++) {
		rc = to_msg_replica(&reps[i], sorted, sorted ? n : 0, &m.replicas[i]);
		to_msg_replica_sync(node, &m.replicas[i]);
	}
	m.has_replication = node->repl_mode != NULL;
	if (m.has_replication)
		to_msg_replication(node, &m.replication);
	if (rc == 0)
		rc = status_msg_encode(&m, out);
out:
	for (size_t i = 0; m.replicas != NULL && i < nreps; i++)
		free(m.replicas[i].dbs);
	free(m.replicas);
	free(m.dbs);
	free(why);
	free(sorted);
	return rc;
}

/* One metric family: HELP, TYPE, then a sample per database. */
static void put_db_family(text_buf *b, const char *name, const char *type,
			  const char *help, const status_db *dbs, size_t n,
			  uint64_t (*value)(const db_status *))
{
	text_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < n; i++) {
		text_put(b, "%s{db=\"", name);
		put_label_value(b, dbs[i].name);
		text_put(b, "\"} %" PRIu64 "\n", value(&dbs[i].st));
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
	text_put(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

/* Synchronous replication's metrics (the primary in sync mode). */
static void put_sync_metrics(text_buf *b, const node_status *node)
{
	const sync_stats *s = &node->sync;
	uint64_t count = s->wait_le[SYNC_WAIT_BUCKETS - 1];
	if (!node->has_sync)
		return;
	text_put(b, "# HELP ltxfs_sync_commit_wait_seconds How long commits waited for "
		 "replication.min-acks acknowledgements.\n"
		 "# TYPE ltxfs_sync_commit_wait_seconds histogram\n");
	for (size_t i = 0; i < SYNC_WAIT_BUCKETS - 1; i++)
		text_put(b, "ltxfs_sync_commit_wait_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			 sync_wait_bounds_s[i], s->wait_le[i]);
	text_put(b, "ltxfs_sync_commit_wait_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		 "ltxfs_sync_commit_wait_seconds_sum %.6f\n"
		 "ltxfs_sync_commit_wait_seconds_count %" PRIu64 "\n", count, s->wait_sum_s, count);
	put_counter(b, "ltxfs_sync_commit_timeouts_total", "Commits not acknowledged within "
		    "replication.sync-timeout.", s->timeouts);
	put_counter(b, "ltxfs_sync_commits_refused_total", "Commits failed because too few "
		    "replicas were in sync (on-timeout fail).", s->refused);
	put_counter(b, "ltxfs_sync_commits_unreplicated_total", "Commits acknowledged without "
		    "replication.min-acks replicas (on-timeout degrade).", s->unreplicated);
	text_put(b, "# HELP ltxfs_sync_replicas_in_sync Replicas that count for "
		 "replication.min-acks now.\n# TYPE ltxfs_sync_replicas_in_sync gauge\n"
		 "ltxfs_sync_replicas_in_sync %u\n", s->in_sync);
	text_put(b, "# HELP ltxfs_sync_degraded 1 while fewer than replication.min-acks "
		 "replicas are in sync.\n# TYPE ltxfs_sync_degraded gauge\n"
		 "ltxfs_sync_degraded %d\n", s->degraded);
}

/* The backup's metrics: totals, and per database its stored TXID and the
 * age of its oldest unshipped transaction. */
static void put_backup_metrics(text_buf *b, const node_status *node, const status_db *dbs,
			       size_t n)
{
	if (!node->backup_on)
		return;
	put_counter(b, "ltxfs_backup_objects_uploaded_total", "Objects uploaded to the backup.",
		    node->backup.objects_uploaded);
	put_counter(b, "ltxfs_backup_bytes_uploaded_total", "Bytes uploaded to the backup.",
		    node->backup.bytes_uploaded);
	put_counter(b, "ltxfs_backup_upload_errors_total",
		    "Backup uploads, lists and deletes that failed (retried).",
		    node->backup.upload_errors);
	put_counter(b, "ltxfs_backup_snapshots_total", "Snapshots uploaded to the backup.",
		    node->backup.snapshots);
	put_counter(b, "ltxfs_backup_objects_deleted_total",
		    "Backup objects deleted by backup.retention.", node->backup.deleted);
	text_put(b, "# HELP ltxfs_backup_txid The newest TXID of the database in the backup.\n"
		 "# TYPE ltxfs_backup_txid gauge\n");
	for (size_t i = 0; i < n; i++) {
		text_put(b, "ltxfs_backup_txid{db=\"");
		put_label_value(b, dbs[i].name);
		text_put(b, "\"} %" PRIu64 "\n", dbs[i].backup.txid);
	}
	text_put(b, "# HELP ltxfs_backup_lag_seconds Age of the database's oldest transaction "
		 "not yet in the backup (0: all shipped).\n# TYPE ltxfs_backup_lag_seconds gauge\n");
	for (size_t i = 0; i < n; i++) {
		text_put(b, "ltxfs_backup_lag_seconds{db=\"");
		put_label_value(b, dbs[i].name);
		text_put(b, "\"} %.3f\n", (double)dbs[i].backup.lag_ms / 1000.0);
	}
}

int status_render_metrics(text_buf *out, const node_status *node,
			  const status_db *dbs, size_t n,
			  const stream_replica *reps, size_t nreps)
{
	text_put(out, "# HELP ltxfs_info The node (value 1).\n# TYPE ltxfs_info gauge\n"
		 "ltxfs_info{node_id=\"%016" PRIx64 "\",hostname=\"", node->node_id);
	put_label_value(out, node->hostname);
	text_put(out, "\",role=\"");
	put_label_value(out, node->role);
	text_put(out, "\"} 1\n");
	text_put(out, "# HELP ltxfs_primary 1 if this node holds the lease.\n# TYPE ltxfs_primary gauge\n"
		 "ltxfs_primary %d\n", strcmp(node->role, "primary") == 0);
	text_put(out, "# HELP ltxfs_lease_epoch The primary's lease epoch as this node knows it.\n"
		 "# TYPE ltxfs_lease_epoch gauge\nltxfs_lease_epoch %" PRIu64 "\n", node->epoch);
	text_put(out, "# HELP ltxfs_uptime_seconds Seconds since the daemon started.\n"
		 "# TYPE ltxfs_uptime_seconds gauge\nltxfs_uptime_seconds %.3f\n",
	    (double)(node->now_ms - node->started_ms) / 1000.0);
	(void)reps;
	text_put(out, "# HELP ltxfs_lag_seconds Replica: seconds since the primary was last heard.\n"
		 "# TYPE ltxfs_lag_seconds gauge\nltxfs_lag_seconds %.3f\n",
	    (double)node->lag_ms / 1000.0);
	if (node->renew_ms >= 0)
		text_put(out, "# HELP ltxfs_lease_renew_seconds How long the last lease renewal took.\n"
			 "# TYPE ltxfs_lease_renew_seconds gauge\nltxfs_lease_renew_seconds %.3f\n",
		    (double)node->renew_ms / 1000.0);
	put_counter(out, "ltxfs_lease_renews_total", "Successful lease renewals.", node->renews);
	put_counter(out, "ltxfs_lease_renew_failures_total",
		    "Lease renewals that failed (and were retried).", node->renew_failures);
	text_put(out, "# HELP ltxfs_replicas Replicas streaming from this node.\n"
		 "# TYPE ltxfs_replicas gauge\nltxfs_replicas %zu\n", nreps);
	put_counter(out, "ltxfs_snapshots_sent_total", "Snapshots sent to replicas.",
		    node->snapshots_sent);
	put_counter(out, "ltxfs_transactions_sent_total", "Transactions sent to replicas.",
		    node->transactions_sent);
	put_counter(out, "ltxfs_snapshots_received_total", "Snapshots installed from the primary.",
		    node->snapshots_received);
	put_counter(out, "ltxfs_transactions_received_total",
		    "Transactions applied from the primary.", node->transactions_received);
	text_put(out, "# HELP ltxfs_databases Databases known to the node.\n"
		 "# TYPE ltxfs_databases gauge\nltxfs_databases %zu\n", n);
	put_counter(out, "ltxfs_databases_retired_total",
		    "Deleted databases whose directory, log and descriptors were given back.",
		    node->databases_retired);
	text_put(out, "# HELP ltxfs_open_files Descriptors the databases keep open (bounded by "
		 "data.max-open-files; files held by applications are not counted).\n"
		 "# TYPE ltxfs_open_files gauge\nltxfs_open_files %" PRIu64 "\n", node->open_files);
	text_put(out, "# HELP ltxfs_open_files_max data.max-open-files.\n"
		 "# TYPE ltxfs_open_files_max gauge\nltxfs_open_files_max %" PRIu64 "\n",
	    node->open_files_max);
	text_put(out, "# HELP ltxfs_open_files_databases Databases whose descriptors are open.\n"
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
	put_backup_metrics(out, node, dbs, n);
	put_sync_metrics(out, node);
	return out->oom ? -ENOMEM : 0;
}
