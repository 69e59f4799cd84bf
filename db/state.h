/*
 * state.h - the state of one database that every file of the layer shares:
 * its descriptors and backing files, its page checksums, the logical
 * content of a page, the failure flag, the dirty set of a rollback
 * transaction.  Not part of the layer's contract (database.h is).
 *
 * Layering: state.c is the bottom of the database layer's own files.  It
 * calls nothing above it (capture, snapshots, the entry points, recovery,
 * the replica's applier); it uses only the modules below the layer's
 * struct (txlog, handles, apply's target).  Every file above may call it.
 *
 * Threading: functions named *_locked expect db->mu held by the calling
 * thread; db_lock_files() takes it.  The others touch no database state.
 */
#ifndef LTXFS_DB_STATE_H
#define LTXFS_DB_STATE_H

#include <errno.h>

#include "db/database.h"

/*
 * Checked lock contracts, as SQLite's assert(sqlite3_mutex_held(...)): a
 * function named *_locked begins with db_assert_locked(db), which aborts
 * the process, naming the function, unless the calling thread holds
 * db->mu.  Debug builds only (compiled out under NDEBUG; the Makefile does
 * not define it, so normal builds and the tests check).
 *
 * How, soundly and cheaply: db_mutex_init() makes db->mu an error-checking
 * mutex (PTHREAD_MUTEX_ERRORCHECK), which records its owner, and the check
 * is pthread_mutex_timedlock() with a deadline already passed.  POSIX fixes
 * the three answers: EDEADLK when this thread owns the mutex (the contract
 * holds: glibc answers from the recorded owner, one load, no system call),
 * 0 when nobody held it (taken now: released again, then the abort), and
 * ETIMEDOUT when another thread holds it (the abort).  No lock call site
 * changes, so nothing can lock the mutex without the check seeing it, and
 * the database's struct gains no field.
 */
void db_mutex_init(pthread_mutex_t *mu);

#ifdef NDEBUG
#define db_assert_locked(db) ((void)0)
#else
#define db_assert_locked(db) db_check_locked((db), __func__)
void db_check_locked(const database *db, const char *func);
#endif

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

/* Open an existing (or with O_CREAT create) backing file into db->file[f]. */
int db_open_backing_locked(database *db, enum db_file f, int flags, mode_t mode,
			   lx_err *err);

/* The mount's observer (db_observer), or NULL before one registers. */
static inline const db_observer *db_observer_of(const database *db)
{
	return db->opt.events ? __atomic_load_n(&db->opt.events->observer, __ATOMIC_ACQUIRE) : NULL;
}

/* The store's commit gate (replication.mode sync), or NULL. */
static inline const db_commit_gate *db_gate_of(const database *db)
{
	return db->opt.events ? __atomic_load_n(&db->opt.events->gate, __ATOMIC_ACQUIRE) : NULL;
}

/* The gate's admit for a transaction about to be logged at an
 * application's commit point (db->at_commit_point); 0 elsewhere or without
 * a gate. */
static inline int db_gate_admit_locked(database *db, lx_err *err)
{
	const db_commit_gate *g;
	db_assert_locked(db);
	if (!db->at_commit_point || (g = db_gate_of(db)) == NULL)
		return 0;
	return g->admit(g->ctx, db, err);
}

/* Tell the mount that [off, off+len) of file f changed behind its back. */
static inline void db_tell_inval(database *db, enum db_file f, uint64_t off, uint64_t len)
{
	const db_observer *o = db_observer_of(db);
	if (o != NULL && o->inval != NULL)
		o->inval(o->ctx, db, f, off, len);
}

/* Errors of the storage under data.dir that may go away (space freed,
 * quota raised, a device back): worth retrying, not a verdict on the data. */
static inline int db_storage_errno(int e)
{
	return e == ENOSPC || e == EDQUOT || e == EIO;
}

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

int64_t db_now_ms(void);

/* An apply target (db/apply.h) at the database's in-memory state; after
 * applying, db_apply_target_taken() takes the (possibly grown) page
 * checksum array back. */
struct apply_target;
void db_apply_target_locked(database *db, struct apply_target *t);
void db_apply_target_taken(database *db, const struct apply_target *t);

/* db_read_page_locked() (database.h) is defined here too: the logical
 * content of a page, from the captured WAL or the database file. */

#endif
