/*
 * shipper_internal.h - what the backup thread's two files share:
 * shipper.c (starting, shipping, the thread, status) and maintain.c
 * (compaction and retention).  Not part of the contract (shipper.h is).
 */
#ifndef LTXFS_BACKUP_SHIPPER_INTERNAL_H
#define LTXFS_BACKUP_SHIPPER_INTERNAL_H

#include <pthread.h>

#include "backup/shipper.h"

/* One database as the shipper sees it.  Guarded by the shipper's mu for
 * what status readers see; the backup thread alone changes it. */
typedef struct ship_db {
	char *name;
	database *db;
	char dir[BK_DIR_MAX];          /* its directory in the storage */
	int started;                   /* marker written: shipping in `epoch` */
	uint64_t lease_epoch;          /* the lease epoch it started under */
	uint64_t epoch;                /* the shipping epoch */
	uint64_t txid, checksum;       /* the stored position, on our history */
	int64_t shipped_ms;            /* wall clock of the last upload */
	int64_t snapshot_ms;           /* wall clock of the newest stored snapshot */
	int64_t pending_since_ms;      /* monotonic: an unshipped TXID was first seen */
	int64_t maintain_at_ms;        /* monotonic: next compaction and retention pass */
	int64_t retry_at_ms;           /* monotonic: after a failure */
	int64_t observe_at_ms;         /* monotonic: a replica's next look at the storage */
	int64_t backoff_ms;
	char error[LX_ERR_MSG_MAX];
} ship_db;

struct backup_shipper {
	backup_shipper_options o;
	backup_store *st;
	pthread_t thread;
	int running;
	int cancel;                    /* atomic: ends storage calls at stop */
	pthread_mutex_t mu;            /* dbs[] for status readers; totals; stop */
	pthread_cond_t cond;
	int stop;
	ship_db *dbs;
	size_t n, cap;
	backup_totals totals;
};

/* A growing buffer; membuf_write is an ltx_write_fn. */
typedef struct membuf {
	uint8_t *p;
	size_t len, cap;
} membuf;

int membuf_write(void *ctx, const void *buf, size_t len);

/* Fencing: 0 while d's database takes writes (this node holds the lease
 * within its deadline), else EPERM.  Checked before every upload and
 * delete. */
int ship_still_primary(ship_db *d, lx_err *err);

/* Seal and upload `buf` as d's object `rel` (fenced, counted). */
int ship_put(backup_shipper *s, ship_db *d, const char *rel, const uint8_t *buf, size_t len,
	     lx_err *err);

/* Compaction (levels 1 to 3) and retention of database d: one listing,
 * run every MAINTAIN_EVERY_MS at most. */
int ship_maintain(backup_shipper *s, ship_db *d, lx_err *err);

#endif
