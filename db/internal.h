/*
 * internal.h - what the upper files of the database layer share (the entry
 * points in database.c, recovery.c, remote.c, history.c, diverged.c,
 * store.c).  Not part of the layer's contract (database.h is).
 * Everything here expects db->mu held.
 *
 * The layer's files call each other one way only (a file never calls a
 * file above it), bottom to top:
 *
 *   wal, wal_index, locks, names, txlog, syncer, apply, handles, events
 *                      self-contained; handles closes an idle database
 *                      through a callback the store gives it
 *   state.c            descriptors, backing files, page checksums, a page's
 *                      logical content, the failure flag (state.h)
 *   capture.c          commits into LTX records (capture.h)
 *   snapshot.c         copy-on-write images for replicas (snapshot.h)
 *   replica_wal.c      a replica's WAL applier (replica_wal.h)
 *   recovery.c         open, close, crash recovery, checkpoints
 *   history.c          positions and what to send a replica
 *   database.c         the file operations the mount forwards (database.h)
 *   remote.c, diverged.c, export.c
 *                      applying a primary's transactions, divergence, export
 *   store.c            the databases of a data directory
 *
 * A lower file that must reach up does it through a function pointer its
 * owner registers (handle_cache's close_files, db_observer), never by name.
 */
#ifndef LTXFS_DB_INTERNAL_H
#define LTXFS_DB_INTERNAL_H

#include "db/capture.h"
#include "db/snapshot.h"
#include "db/state.h"

/* ---- recovery.c ------------------------------------------------------------ */

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

/* Run crash recovery again on a database whose recovery met a storage
 * error (recovery_pending); on success it is served again. */
int db_retry_recovery_locked(database *db, lx_err *err);

/* Checksums of every page of the database file (crash recovery, import). */
int db_checksum_file_locked(database *db, lx_err *err);

/* ---- database.c ------------------------------------------------------------ */

/*
 * Fail early on a full disk: before a write of a transaction in progress is
 * passed through, make sure the log can take `pending` more bytes of
 * records without allocating, so that logging the transaction at its commit
 * point does not run out of space.  On failure the write must be refused
 * (SQLite then rolls the transaction back).
 */
int db_reserve_log_locked(database *db, uint64_t pending, lx_err *err);

/* A change of the database failed with `rc`: if the storage is at fault
 * (db_storage_errno), remember why in storage_error and count it.  Called
 * once per failed request, by the entry point that returns it. */
void db_note_storage_error_locked(database *db, long rc, const lx_err *err);

/* ---- history.c ------------------------------------------------------------- */

/* 1 if (txid, checksum) is a position of this database's retained history
 * (the current one, the log's base, or a record's). */
int db_on_history_locked(const database *db, uint64_t txid, uint64_t checksum);

#endif
