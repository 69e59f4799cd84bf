/*
 * shipper.h - continuous backup: the primary ships every database's
 * transactions to the backup store (backup/store.h) within
 * backup.sync-interval of their commit, snapshots each database every
 * backup.snapshot-interval, and deletes what backup.retention no longer
 * needs.  docs/backup.md is the user's side; backup/catalog.h names the
 * objects.
 *
 * Whoever is primary ships, across failovers.  The shipper watches its
 * node's databases: while they take writes (the node holds the lease and
 * its write deadline has not passed) it ships; the moment they stop, it
 * stops, before any further upload or delete, so a deposed primary never
 * writes into the new primary's history.  Each time it starts shipping a
 * database (node start, promotion) it takes a new shipping epoch, larger
 * than every epoch in the storage and at least the lease epoch, reads
 * where the stored history ends, finds the newest stored position that is
 * on its own history, writes its epoch marker there, and goes on from it;
 * a database whose stored history it cannot continue gets a snapshot
 * first.  What a deposed primary shipped past that point is superseded by
 * the marker and never restored.
 *
 * Only durable transactions are shipped: the log is fsynced before its
 * records are read, so an uploaded transaction can never be taken back
 * by a crash of this node.  Every record is verified before upload.
 *
 * Threads: one, "backup", started by backup_shipper_start and ended by
 * backup_shipper_stop; backup_shipper_status is called by HTTP threads.
 */
#ifndef LTXFS_BACKUP_SHIPPER_H
#define LTXFS_BACKUP_SHIPPER_H

#include <stdint.h>

#include "backup/codec.h"
#include "backup/store.h"
#include "base/err.h"
#include "db/store.h"

typedef struct backup_shipper backup_shipper;

typedef struct backup_shipper_options {
	backup_store_options storage;
	const bk_codec *codec;          /* names and encryption; outlives the shipper */
	store *dbs;                     /* the node's databases */
	int64_t sync_interval_ms;
	int64_t snapshot_interval_ms;
	int64_t retention_ms;
	int64_t max_lag_ms;             /* /health: shipping behind by more is unhealthy */
	int64_t level_interval_ms[4];   /* compaction: [k] for level k (1..3) */
} backup_shipper_options;

int backup_shipper_start(backup_shipper **out, const backup_shipper_options *o, lx_err *err);
void backup_shipper_stop(backup_shipper *s);

/* One database's backup position, as /status and `ltxfs status` show it. */
typedef struct backup_db_status {
	int shipping;                   /* this node ships it (primary) */
	uint64_t txid;                  /* the newest TXID in storage (0: none known) */
	int64_t shipped_ms;             /* wall clock of that upload (0: none) */
	int64_t lag_ms;                 /* age of the oldest transaction not yet shipped */
	uint64_t epoch;                 /* the shipping epoch */
	int64_t snapshot_ms;            /* wall clock of the newest snapshot (0: none) */
	char error[LX_ERR_MSG_MAX];                /* the last failure, "" if the last try worked */
} backup_db_status;

/* 0 and *out for a database the shipper knows, else -ENOENT. */
int backup_shipper_db_status(backup_shipper *s, const char *name, backup_db_status *out);

/* Totals for /metrics. */
typedef struct backup_totals {
	uint64_t objects_uploaded, bytes_uploaded, upload_errors;
	uint64_t snapshots, deleted;
	int64_t max_lag_ms;             /* the largest lag_ms of any database */
} backup_totals;

void backup_shipper_totals(backup_shipper *s, backup_totals *out);

/* 1 when some database's lag exceeds backup.max-lag (for /health), with
 * a reason in `why`. */
int backup_shipper_lagging(backup_shipper *s, char *why, size_t cap);

#endif
