/*
 * status.h - the node's state as the HTTP API reports it.
 *
 * Pure rendering: GET /status is JSON (docs/protocol.md), GET /metrics is
 * the Prometheus text format (version 0.0.4).  The caller gathers a
 * node_status and one db_status per database; these functions only format
 * them into a growable buffer.  No I/O, no locking, no global state.
 */
#ifndef LTXFS_REPLICA_STATUS_H
#define LTXFS_REPLICA_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "backup/shipper.h"
#include "base/text_buf.h"
#include "db/database.h"
#include "replica/stream_server.h"
#include "replica/sync_commit.h"

typedef struct node_status {
	uint64_t node_id;
	const char *hostname;
	const char *role;          /* "primary" or "replica" */
	const char *primary;       /* the primary's hostname */
	char primary_name[256];    /* storage a refresh may point `primary` at */
	const char *lease_type;    /* "static", ... */
	uint64_t epoch;            /* the primary's lease epoch as this node knows it */
	const char *cluster_id;    /* may be NULL */
	int64_t started_ms;        /* wall clock at start */
	int64_t now_ms;
	int64_t lag_ms;            /* replica: ms since the primary was last heard */
	int ready;                 /* primary, or replica caught up once */
	int64_t health_max_lag_ms; /* GET /health: 503 above this lag (http.health-max-lag) */
	uint64_t snapshots_sent, transactions_sent;          /* primary */
	uint64_t snapshots_received, transactions_received;  /* replica */
	int64_t renew_ms;          /* the last lease renewal's duration; -1: none */
	uint64_t renews, renew_failures;
	/* descriptors the databases keep open (db/handles.h) */
	uint64_t open_files, open_files_max, open_files_dbs, open_files_closes;
	uint64_t databases_retired;  /* deleted databases given back since start */
	int backup_on;               /* backup.url is set: backup totals below */
	backup_totals backup;
	/* replication.* (docs/design.md, "Synchronous replication") */
	const char *repl_mode;       /* "async" or "sync"; NULL: not reported */
	const char *repl_on_timeout; /* "fail" or "degrade" */
	const char *repl_ack_after;  /* "fsync" or "write" */
	unsigned repl_min_acks;
	int64_t repl_sync_timeout_ms;
	int has_sync;                /* the primary in sync mode: `sync` is filled */
	sync_stats sync;
} node_status;

/* The state of synchronous replication in words: "in-sync", "degraded"
 * (on-timeout degrade) or "refusing" (on-timeout fail). */
const char *status_sync_state(const sync_stats *s);

typedef struct status_db {
	const char *name;
	db_status st;
	int has_backup;             /* backup.url is set */
	backup_db_status backup;
} status_db;

/* Render into `out` (appending).  `reps` are the replicas connected to a
 * primary (may be NULL).  Return 0, or -ENOMEM. */
int status_render_json(text_buf *out, const node_status *node,
		       const status_db *dbs, size_t n,
		       const stream_replica *reps, size_t nreps);
int status_render_metrics(text_buf *out, const node_status *node,
			  const status_db *dbs, size_t n,
			  const stream_replica *reps, size_t nreps);

/* Why an untracked database (db_status.untracked) is not replicated, for
 * /status, /health and GET /export: one sentence. */
void status_untracked_reason(const db_status *s, char *out, size_t cap);

#endif
