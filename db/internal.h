/*
 * internal.h - functions shared by the files of the database layer
 * (database.c, capture.c, recovery.c).  Not part of the layer's contract.
 * Everything here expects db->mu held.
 */
#ifndef LTXFS_DB_INTERNAL_H
#define LTXFS_DB_INTERNAL_H

#include <errno.h>

#include "db/database.h"
#include "db/snapshot.h"

/* Before the mount changes bytes of file f that a snapshot may still need
 * (see snapshot.h); free when no snapshot is being read. */
static inline void db_preserve_locked(database *db, enum db_file f, uint64_t off,
				      uint64_t len)
{
	if (db->snapshots != NULL)
		db_snapshot_preserve_locked(db, f, off, len);
}

/*
 * Make the database's descriptors usable: open again what an idle database
 * closed (db/handles.h) and count it as just used.  Every function that
 * uses db->dirfd, a backing's fd or the log calls it first, after taking
 * db->mu (db_lock_files does both).  Nothing to do for a retired database.
 */
int db_use_files_locked(database *db, lx_err *err);

static inline int db_lock_files(database *db, lx_err *err)
{
	pthread_mutex_lock(&db->mu);
	return db_use_files_locked(db, err);
}

/* A descriptor was opened during an operation (a backing file created, a
 * snapshot's file taken): count it now, not at the next use. */
void db_recount_files_locked(database *db);

/* db_lock_files for callers whose next system call reports a failure to
 * open again (EBADF on a descriptor still closed). */
static inline void db_lock_files_or_fail_later(database *db)
{
	lx_err err;
	(void)db_lock_files(db, &err);
}

/* Close the descriptors of an idle database (the handle cache does, with
 * db->mu taken by trylock); 0, or -EBUSY when its log is busy. */
int db_close_files_locked(database *db);

/* The mount's observer (db_observer), or NULL before one registers. */
static inline const db_observer *db_observer_of(const database *db)
{
	return db->opt.events ? __atomic_load_n(&db->opt.events->observer, __ATOMIC_ACQUIRE) : NULL;
}

/* Tell the mount that [off, off+len) of file f changed behind its back. */
static inline void db_tell_inval(database *db, enum db_file f, uint64_t off, uint64_t len)
{
	const db_observer *o = db_observer_of(db);
	if (o != NULL && o->inval != NULL)
		o->inval(o->ctx, db, f, off, len);
}

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

/* Copy captured WAL pages into the database file; remove WAL and shm. */
int db_checkpoint_locked(database *db, lx_err *err);

/*
 * A replica keeps no WAL of its own.  What this node committed as primary
 * and SQLite had not checkpointed is copied into the database file
 * (keep_pages; before applying the primary's next transaction) or dropped
 * (a snapshot replaces the file), then the WAL is emptied, not removed:
 * clients may hold it open.  Otherwise a later first connection's WAL
 * recovery would bring those old frames back over newer pages.  The
 * caller excludes every client (the applier's locks).
 */
int db_absorb_wal_locked(database *db, int keep_pages, lx_err *err);

/*
 * Fail early on a full disk: before a write of a transaction in progress is
 * passed through, make sure the log can take `pending` more bytes of
 * records without allocating, so that logging the transaction at its commit
 * point does not run out of space.  On failure the write must be refused
 * (SQLite then rolls the transaction back).
 */
int db_reserve_log_locked(database *db, uint64_t pending, lx_err *err);

/* Errors of the storage under data.dir that may go away (space freed,
 * quota raised, a device back): worth retrying, not a verdict on the data. */
static inline int db_storage_errno(int e)
{
	return e == ENOSPC || e == EDQUOT || e == EIO;
}

/* Run crash recovery again on a database whose recovery met a storage
 * error (recovery_pending); on success it is served again. */
int db_retry_recovery_locked(database *db, lx_err *err);

/* A change of the database failed with `rc`: if the storage is at fault
 * (db_storage_errno), remember why in storage_error and count it.  Called
 * once per failed request, by the entry point that returns it. */
void db_note_storage_error_locked(database *db, long rc, const lx_err *err);

/* Open an existing (or with O_CREAT create) backing file into db->file[f]. */
int db_open_backing_locked(database *db, enum db_file f, int flags, mode_t mode,
			   lx_err *err);

/* Forget the WAL capture state (WAL removed, truncated or restarted). */
void db_wal_reset_locked(database *db);

/* Drop the dirty-page set of the current rollback transaction. */
void db_dirty_clear_locked(database *db);

/* Mark the database as failed (not served) and log why, once. */
void db_fail_locked(database *db, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Grow page_ck to hold `n` pages (new entries 0). */
int db_page_ck_reserve_locked(database *db, uint32_t n);

/* pread that zero-fills past end of file. */
int db_pread_page(int fd, uint8_t *buf, uint32_t len, uint64_t off);

/* Parse the database header of page 1 (first 100 bytes of the file):
 * returns 0 and the page size and in-header page count (0 if invalid), or
 * -EBADMSG if it is not a SQLite database. */
int db_parse_header(const uint8_t *hdr, uint32_t *page_size, uint32_t *n_pages);

/* Checksums of every page of the database file (crash recovery, import). */
int db_checksum_file_locked(database *db, lx_err *err);

int64_t db_now_ms(void);

/* An apply target (db/apply.h) at the database's in-memory state; after
 * applying, db_apply_target_taken() takes the (possibly grown) page
 * checksum array back. */
struct apply_target;
void db_apply_target_locked(database *db, struct apply_target *t);
void db_apply_target_taken(database *db, const struct apply_target *t);

/* history.c: 1 if (txid, checksum) is a position of this database's
 * retained history (the current one, the log's base, or a record's). */
int db_on_history_locked(const database *db, uint64_t txid, uint64_t checksum);

#endif
