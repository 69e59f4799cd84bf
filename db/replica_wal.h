/*
 * replica_wal.h - a replica applies WAL-mode transactions the way a local
 * SQLite writer commits them: as frames appended to the database's -wal,
 * published through the wal-index in -shm (db/wal_index.h), and copied
 * into the database file by a checkpoint only as far as the readers'
 * read marks allow.  Readers keep their snapshot while the applier
 * appends; the applier never waits for them (docs/design.md, "Apply
 * without waiting for readers").
 *
 * The contract with SQLite's readers is SQLite's own (wal.c), with the
 * applier as one more connection that holds its locks in ltxfs's lock
 * table under APPLY_OWNER:
 *   - append: the WAL WRITE lock (readers take it only to run recovery);
 *     frames with SQLite's salts and checksum chain and a commit frame,
 *     then the hash tables, then the index header (copy 1, barrier, copy 0);
 *   - checkpoint: the CKPT lock, read marks lowered only under an
 *     exclusive READ(i), frames up to the oldest mark in use, READ(0)
 *     exclusive while the database file changes; nBackfill last;
 *   - restart (a new WAL generation from frame 1): only when everything
 *     was backfilled (and the database file fsynced) and READ(1..4) are
 *     free, as walRestartLog does.
 * The shm is mapped through the mount itself (the observer's shm_open), so
 * the applier reads and writes the very page-cache pages the readers map;
 * it holds the DMS byte shared meanwhile, so no reader truncates the file.
 * Never touch that mapping with db->mu held: a write fault may wait for
 * the kernel's writeback of that page, which a FUSE worker serves under
 * db->mu.
 *
 * The capture state db->wal is kept exactly as if SQLite had written the
 * frames (valid header, processed, chain, newest frame of each page), so
 * capture triggers of local readers find nothing new, snapshots and
 * exports read pages from the WAL, crash recovery replays the frames by
 * the anchor in each log record, and a promoted replica's first writer
 * simply continues the WAL.
 *
 * Threads: only the replica thread calls these (db_apply_remote,
 * db_replica_tick, db_install_snapshot, db_remove_remote), and db_close.
 */
#ifndef LTXFS_DB_REPLICA_WAL_H
#define LTXFS_DB_REPLICA_WAL_H

#include "db/apply.h"
#include "db/capture.h"
#include "db/snapshot.h"
#include "db/state.h"
#include "ltx/ltx.h"

/* The applier's lock owner: FUSE owners are kernel pointers, never this. */
#define APPLY_OWNER (UINT64_MAX - 1)
#define SHM_DMS_BYTE 128
#define SHM_READ_LOCK(i) (SHM_WRITE_LOCK + 3 + (i))

/* Try to take one shm byte exclusively as APPLY_OWNER (takes db->mu). */
int rwal_trylock(database *db, uint64_t byte);
void rwal_unlock(database *db, uint64_t byte);

/*
 * With the WRITE lock held, db->mu not held: make the WAL ready to take
 * the next transaction (attach the shm, check that the index and the
 * capture state are this applier's, restart the WAL when readers allow).
 * Returns 0 when the transaction can be appended, -1 when it must be
 * applied to the database file under every lock instead (the WAL or its
 * index belongs to someone else, the shm cannot be mapped).
 */
int rwal_prepare(database *db);

/* The frames of one transaction while it is being appended (db->mu held). */
typedef struct rwal_txn {
	database *db;
	uint32_t first;         /* first frame of the transaction (1-based) */
	uint32_t next;          /* next frame to write */
	wal_cksum chain;
	uint8_t *frame;         /* one frame: pending page, not written yet */
	uint32_t pending;       /* its pgno; 0: none */
	uint64_t pending_ck;
	txn_page *pages;        /* written frames, for db->wal */
	size_t n, cap;
	int header_written;
} rwal_txn;

/* Begin appending (db->mu held): apply_target t gets the put callback. */
int rwal_begin_locked(database *db, rwal_txn *x, apply_target *t, lx_err *err);

/* The anchor the log record of this transaction carries: where its frames
 * will end, given `n_pages` pages (0 pages still write one frame). */
txlog_anchor rwal_anchor(database *db, uint32_t n_pages);

/* Write the pending page as the commit frame (db size `commit`) and take
 * the frames into db->wal.  db->mu held. */
int rwal_commit_locked(rwal_txn *x, uint32_t commit, lx_err *err);

/* Forget a transaction that failed half-way (its frames stay unpublished
 * and uncommitted, so neither readers nor recovery use them). */
void rwal_abort(rwal_txn *x);

/* db->mu not held, WRITE held: drop stale kernel-cached WAL pages, index
 * the new frames, publish the header.  Frees x. */
void rwal_publish(rwal_txn *x);

/* Copy frames into the database file as far as readers allow, once at
 * least `min_frames` wait (RWAL_CKPT_FRAMES after a transaction; 1 when
 * the stream is idle); never waits.  db->mu not held. */
void rwal_checkpoint(database *db, uint32_t min_frames);

/*
 * Frames a replica's WAL gathers before a transaction's apply checkpoints
 * them.  Each checkpoint makes the next transaction restart the WAL, which
 * costs an fdatasync of the database file first; checkpointing after every
 * frame put that fdatasync in every transaction's apply (0.24 ms of a
 * synchronous commit's wait, docs/benchmarks.md).  256 frames bound the
 * WAL at 1 MiB with 4 KiB pages, per database: a replica holding many
 * databases must not keep SQLite's 1,000 pages for each.
 */
#define RWAL_CKPT_FRAMES 256

/* Everything goes through the database file from now on (an apply or a
 * snapshot under every lock absorbed the WAL): forget the generation.
 * With every lock held, db->mu not held: write a reset index header
 * (mxFrame 0, a new change counter) through the mapping; returns 0, or -1
 * if the shm is not mapped (the caller stores it another way). */
void rwal_forget(database *db);
int rwal_reset_index(database *db, uint32_t page_size, uint32_t n_pages, uint32_t change);

/* Unmap and close the shm (the database's files go away, or db_close). */
void rwal_detach(database *db);
void rwal_free(database *db);

#endif
