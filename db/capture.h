/*
 * capture.h - turning SQLite's committed transactions into LTX records
 * (capture.c).  Not part of the layer's contract (database.h is).
 *
 * Layering: capture sits on state.h and calls nothing else of the layer;
 * the entry points (database.c), snapshots, crash recovery and the
 * replica's applier call it.  Everything here expects db->mu held.
 */
#ifndef LTXFS_DB_CAPTURE_H
#define LTXFS_DB_CAPTURE_H

#include "db/state.h"

/* Where the content of a page of a transaction comes from. */
enum page_source { SRC_DB_FILE, SRC_WAL_FILE, SRC_LOGICAL };

typedef struct txn_page {
	uint32_t pgno;
	uint64_t ck;        /* page checksum of the new content */
	enum page_source src;
	uint64_t off;       /* byte offset of the data in the source file */
} txn_page;

typedef struct txn_build {
	uint32_t page_size;
	uint32_t commit;
	int full_image;         /* pages hold every page 1..commit */
	txn_page *pages;        /* sorted by pgno, unique */
	size_t n;
	txlog_anchor anchor;
} txn_build;

/* Append the transaction to the log and apply it to the in-memory state. */
int db_log_transaction_locked(database *db, const txn_build *t, lx_err *err);

/* Capture a finished rollback-journal (or journal-less) transaction. */
int db_capture_rollback_locked(database *db, lx_err *err);

/* Capture every committed, not yet captured transaction in the WAL. */
int db_capture_wal_locked(database *db, lx_err *err);

/* Load the WAL header (page size, salts) if it is valid; captures nothing.
 * Returns 1 when loaded. */
int db_wal_load_header_locked(database *db);

/* Record the newest WAL frame of each page of a captured transaction. */
int db_wal_remember_locked(database *db, const txn_page *v, size_t n);

/* Forget the WAL capture state (WAL removed, truncated or restarted). */
void db_wal_reset_locked(database *db);

#endif
