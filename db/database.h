/*
 * database.h - one replicated SQLite database: its files, its position,
 * its page checksums, and the capture of every committed transaction into
 * its log.  This is the heart of ltxfs; the FUSE layer (fs/) is a thin
 * adapter that forwards each file operation here.
 *
 * Backing files live in data.dir/dbs/NAME/:
 *     database, database-journal, database-wal, database-shm, log/
 * (named as SQLite names them so recovery can open `database` with the real
 * SQLite library).
 *
 * Commit capture (docs/design.md has the full reasoning):
 *   - Rollback journal (DELETE, TRUNCATE, PERSIST): database pages written
 *     while the journal is hot are tracked as dirty; the transaction is
 *     captured at the commit point, the moment the journal stops being hot
 *     (unlink, truncate to 0, header overwritten without the magic), before
 *     that operation is passed through.  Pages whose content did not change
 *     (a rollback restores them) are dropped; a transaction with no net
 *     change gets no TXID.
 *   - Journal-less writes (journal_mode=OFF/MEMORY, tools writing the file)
 *     are captured when the writer releases its EXCLUSIVE lock, fsyncs or
 *     closes the file.
 *   - WAL: committed transactions are read back from the WAL, validated with
 *     SQLite's own salts and checksum chain, when the write of a commit
 *     frame completes, and again (idempotently) on a WAL fsync, on release
 *     of the WAL write lock and before a checkpoint starts.  Writes of the
 *     database file in WAL mode are checkpoints and must match the logical
 *     state; they are verified, never captured.
 *
 * Threading: every field below `mu` is guarded by it.  Functions named
 * db_* lock it themselves unless their name ends in _locked; those check,
 * in debug builds, that the calling thread holds it (db_assert_locked,
 * db/state.h).  fsyncs run outside the mutex so readers taking locks never
 * wait for the disk.
 */
#ifndef LTXFS_DB_DATABASE_H
#define LTXFS_DB_DATABASE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/err.h"
#include "db/handles.h"
#include "db/locks.h"
#include "db/syncer.h"
#include "db/txlog.h"
#include "db/wal.h"

enum db_file { DBF_DB = 0, DBF_JOURNAL, DBF_WAL, DBF_SHM, DBF_COUNT };

/* SQLite's lock bytes: PENDING, RESERVED and the 510 SHARED bytes of the
 * database file (sqlite3's os.h), the WRITE and CHECKPOINT locks of the
 * -shm (sqlite.org/walformat.html). */
#define SQLITE_PENDING_BYTE 0x40000000ULL
#define SQLITE_RESERVED_BYTE (SQLITE_PENDING_BYTE + 1)
#define SQLITE_SHARED_FIRST (SQLITE_PENDING_BYTE + 2)
#define SQLITE_SHARED_SIZE 510
#define SHM_WRITE_LOCK 120
#define SHM_CKPT_LOCK 121

/* Names of the backing files in the database's directory. */
extern const char *const db_file_names[DBF_COUNT];

/* A descriptor of a backing file shared by every FUSE handle of it.  The
 * database holds one reference while the file exists; while nobody else
 * holds one and the database is idle, fd may be closed (-1) to bound the
 * descriptors (db/handles.h): it is opened again, under the database's
 * mutex, before any use.  A reference taken by a FUSE handle keeps it
 * open. */
typedef struct backing {
	int fd;
	int refs;  /* atomic */
} backing;

backing *backing_ref(backing *b);
void backing_unref(backing *b);

/*
 * How a replica tells the mount that it changed files behind the kernel's
 * back (fs/ registers one).  Called without db->mu held, while the applier
 * holds SQLite's locks, so no local reader is inside a transaction.
 */
typedef struct database database;
typedef struct db_observer {
	void *ctx;
	/* [off, off+len) of file f changed; len 0: the whole file and its size */
	void (*inval)(void *ctx, database *db, enum db_file f, uint64_t off, uint64_t len);
	/* put bytes into the kernel's cache of file f (shared memory readers map) */
	void (*store)(void *ctx, database *db, enum db_file f, uint64_t off,
		      const void *buf, size_t len);
	/* files of the database appeared or disappeared */
	void (*names)(void *ctx, database *db);
	/* open the database's -shm through the mount (O_RDWR), so the replica
	 * maps the very pages its readers map; a descriptor or -errno */
	int (*shm_open)(void *ctx, database *db);
} db_observer;

/*
 * Synchronous replication's hold on the commits of applications
 * (replication.mode sync; replica/sync_commit.h implements it).  Only the
 * calls an application makes through the mount are gated; recovery,
 * snapshots and a replica's applier are not.
 */
typedef struct db_commit_gate {
	void *ctx;
	/* Before a transaction is logged at an application's commit point,
	 * db->mu held (must not block): 0 to go on, or -errno with a message:
	 * the commit fails before anything is logged. */
	int (*admit)(void *ctx, database *db, lx_err *err);
	/* After an application's call logged transactions up to `txid`, with
	 * db->mu released: returns 0 when the call may succeed, or -errno
	 * with a message (the call fails; what it logged stays committed). */
	int (*await)(void *ctx, database *db, uint64_t txid, lx_err *err);
} db_commit_gate;

/*
 * Shared by every database of a store: commit notifications (streams to
 * replicas wait on them), the observer and the commit gate.  Owned by the
 * store.
 */
typedef struct db_events {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t seq;                  /* bumped at every logged transaction */
	const db_observer *observer;   /* atomic; NULL until a mount registers */
	const db_commit_gate *gate;    /* atomic; NULL: commits do not wait */
} db_events;

/* Durability policy of the log (config key data.sync). */
enum db_sync_policy { DB_SYNC_APP = 0, DB_SYNC_ALWAYS = 1 };

typedef struct db_options {
	uint64_t node_id;
	uint64_t lease_epoch;
	enum db_sync_policy sync;
	log_syncer *syncer;   /* overlaps log syncs with the app's; NULL: in line */
	db_events *events;    /* NULL: nobody listens */
	int readonly;         /* a replica (db_set_readonly) */
	uint64_t segment_max; /* log segment size (0: the default) */
	uint64_t segment_max_age_ms; /* log segment age (0: no limit) */
	handle_cache *handles; /* bounds the open descriptors; NULL: never closed */
	size_t max_open_files; /* store_open: the cap of its handle cache (0: default) */
	int replica_wal;       /* a replica applies WAL-mode transactions as WAL
				  frames, never waiting for readers (db/replica_wal.h);
				  else under every reader's lock (data.replica-wal) */
} db_options;

/* Per-WAL capture state. */
typedef struct db_wal_state {
	int valid;               /* hdr was read and validated */
	wal_header hdr;
	uint64_t processed;      /* offset just past the last captured commit frame */
	wal_cksum chain;         /* running checksum at `processed` */
	uint64_t commit_frame_end;  /* end of a commit frame whose header was written, or 0 */
	int scanned;             /* no WAL write since a capture scanned to the end */
	uint32_t *frame_of;      /* [pgno-1] -> 1-based frame index of newest captured version */
	size_t frame_of_len;
	uint32_t *touched;       /* pgnos with frame_of set (to reset in O(touched)) */
	size_t n_touched, touched_cap;
} db_wal_state;

struct db_snapshot;

/* Transactions this node committed that the primary's history does not
 * hold (db_report_diverged): the last such event and the running total. */
typedef struct db_lost {
	uint64_t from, to;         /* TXIDs; from == 0: where the histories part
				      is unknown (older than either side keeps) */
	uint64_t count;            /* to - from + 1; 0 when from is unknown */
	int64_t at_ms;             /* wall clock of the report; 0: never */
	char kept[64];             /* the directory (under the database's) that
				      keeps their LTX records; "" if none */
	uint64_t total;            /* transactions over every report */
	uint64_t events;
} db_lost;

struct database {
	char *name;
	char *dir;                 /* data.dir/dbs/NAME */
	db_options opt;
	handle_link handles;       /* guarded by opt.handles->mu */

	pthread_mutex_t mu;
	/* Descriptors (dirfd, the log's, the backings') are open while
	 * files_open; an idle database closes them (db/handles.h).  Every
	 * function that uses one calls db_use_files_locked() first. */
	int dirfd;                 /* -1 while closed */
	int files_open;
	/* Deleted, its delete transaction logged, its directory removed: only
	 * this object stays (pointers to it stay valid); no file, no log, no
	 * descriptor.  Its name is created again on the same object
	 * (store_get_or_create), continuing its TXIDs. */
	int retired;
	int retire_wanted;         /* deleted: retire once nothing is in use */
	int log_users;             /* atomic: threads using the log outside mu */
	uint64_t list_seq;         /* store: when it was (re)listed; under the store's mutex */
	uint32_t incarnation;      /* atomic: times it was created again */
	backing *file[DBF_COUNT];  /* NULL when the backing file does not exist */
	lock_table locks[DBF_COUNT];
	txlog *log;
	int failed;                /* not served: see failure */
	char failure[LX_ERR_MSG_MAX];
	int recovery_pending;      /* failed because recovery met a storage error:
				      db_retry_logging() runs it again */
	int64_t recovery_tried_ms; /* monotonic ms of the last retry */
	int untracked;             /* content is not a valid SQLite database */
	int dir_dirty;             /* a file was created/removed since the last dir fsync */

	/* Logical state after the last logged transaction. */
	uint64_t txid;
	uint64_t checksum;         /* database checksum (FLAG set; FLAG alone = empty) */
	uint32_t page_size;        /* 0 while unknown (empty database) */
	uint32_t n_pages;
	uint64_t *page_ck;         /* [pgno-1]; the lock page is 0 */
	size_t page_ck_cap;
	int wal_mode;              /* page 1 says WAL */
	int64_t last_commit_ms;

	/* Rollback-journal transaction in progress. */
	int journal_hot;
	int txn_synced;            /* the application fsynced during it */
	int at_commit_point;       /* a commit point's capture runs: it passes
				      the commit gate's admit */
	uint64_t gate_txid;        /* the TXID the running call logged at a
				      commit point (0: none): awaited */
	uint64_t gate_failed_txid; /* atomic: the gate failed the call that logged
				      this TXID and nothing acknowledged it since
				      (0: none); see app_call_await() */
	uint64_t *dirty_bits;      /* bitmap by pgno */
	size_t dirty_words;
	uint32_t *dirty;           /* dirty pgnos in first-write order */
	size_t n_dirty, dirty_cap;
	int dirty_full;            /* a write did not align with page_size, or the size changed */

	db_wal_state wal;

	int readonly;              /* a replica: the mount may not change it */
	int64_t write_until;       /* atomic: monotonic ms after which writes are
				    * refused (the lease may be gone); 0: never */
	uint32_t shm_change;       /* iChange of the last shm header written (replica) */
	struct replica_wal *rwal;  /* a replica's WAL applier (db/replica_wal.h); NULL
				      until it first applies */
	struct db_snapshot *snapshots;  /* being read for replicas (db/snapshot.h) */
	db_lost lost;              /* the last report of db_report_diverged */
	uint64_t commits;          /* transactions committed or applied since start */
	uint64_t checksum_mismatches; /* damaged records, bad frames, positions off
				       * the history, since start */
	/* Why the last change of this database failed for the storage under
	 * data.dir (a full disk, a quota, an I/O error: the log could not take
	 * a transaction, or SQLite's own file could not be written), or "".
	 * Cleared by the next logged transaction, or once db_retry_logging()
	 * finds room again.  Commits fail meanwhile; none is lost. */
	char storage_error[LX_ERR_MSG_MAX];
	int64_t storage_error_ms;  /* wall clock of the first failure since it was set */
	uint64_t commits_refused;  /* requests failed for the storage, since start */
};

/*
 * Open the database NAME whose directory is `dir` (created if missing):
 * open its log, bring the files to exactly the state of the log (crash
 * recovery, see db/recovery.c) and load its checksums.  A database whose
 * files do not match its log is still returned, with `failed` set and the
 * reason in `failure`; it is not served.
 */
int db_open(database **out, const char *name, const char *dir,
	    const db_options *opt, lx_err *err);

/* Clean shutdown: checkpoint the WAL into the database file, persist the
 * page checksums so the next start need not read the database, close. */
void db_close(database *db);

/*
 * A deleted database gives everything back (db->mu held for all three):
 * db_retirable_locked() says whether it is deleted and nothing of it is in
 * use (no file exists, its delete transaction is logged, no snapshot is
 * being read, it is not failed); db_retire_locked() then closes its log and
 * descriptors and frees its page state, keeping only the object (its name
 * and last position) for the pointers others hold.  The caller removes its
 * directory.  db_revive_locked() makes a retired database a new, empty one
 * in `dir` again: its log starts at the deleted database's last position,
 * so TXIDs continue (a replica still at an older position of the deleted
 * one gets a snapshot, not a divergence).
 */
int db_retirable_locked(const database *db);
void db_retire_locked(database *db);
int db_revive_locked(database *db, const db_options *opt, lx_err *err);

/* Current position (TXID and database checksum; 0/0 before the first
 * transaction). */
void db_position(database *db, uint64_t *txid, uint64_t *checksum);

/* What /status and /metrics report of one database (a consistent copy). */
typedef struct db_status {
	uint64_t txid;
	uint64_t checksum;         /* 0 before the first transaction */
	uint32_t page_size;
	uint32_t n_pages;
	int exists;                /* the database file exists */
	int wal_mode;
	int failed;
	char failure[LX_ERR_MSG_MAX];
	int untracked;             /* the file is not a SQLite database (page 1 was
				      overwritten?): its changes are not logged;
				      txid is the last good state */
	uint64_t log_transactions; /* records in the log */
	uint64_t log_bytes;        /* LTX bytes in the log */
	int64_t last_commit_ms;    /* wall clock of the last commit; 0 if none */
	db_lost lost;
	uint64_t commits;          /* since start: committed here or applied */
	uint64_t checksum_mismatches; /* since start */
	char storage_error[LX_ERR_MSG_MAX]; /* commits are failing: why ("" if not) */
	int64_t storage_error_ms;
	uint64_t commits_refused;  /* since start */
} db_status;

void db_status_get(database *db, db_status *out);

/* A checksum disagreed: a damaged log record, a received file that fails
 * verification, a replica's position off this history (the metric
 * ltxfs_db_checksum_mismatches_total). */
void db_count_mismatch(database *db);

/*
 * A database whose changes failed for the storage (storage_error set):
 * capture what the WAL holds beyond the log and check that the data
 * directory has room again; clears storage_error when both hold, so a node
 * recovers from a full disk by itself.  A database whose recovery met a
 * storage error (recovery_pending) is recovered again, every few seconds
 * while there is room.  Called about once a second.
 */
void db_retry_logging(database *db);

/* 1 while the mount refuses changes to this database: a replica, or a
 * primary past its write deadline (db_set_write_until). */
int db_writes_refused(database *db);

/* 1 if the backing file exists. */
int db_file_exists(database *db, enum db_file f);

/* Open (and with O_CREAT create) a backing file; returns a reference. */
int db_open_file(database *db, enum db_file f, int flags, mode_t mode,
		 backing **out, lx_err *err);

int db_stat_file(database *db, enum db_file f, struct stat *st);

/* Pass a write through, capturing transactions (see the top of this file). */
ssize_t db_write(database *db, enum db_file f, backing *b, const void *buf,
		 size_t len, off_t off, lx_err *err);

int db_truncate(database *db, enum db_file f, backing *b, off_t size,
		lx_err *err);

int db_fsync(database *db, enum db_file f, backing *b, int datasync,
	     lx_err *err);

/* Remove a backing file; removing DBF_DB deletes the database (logged). */
int db_unlink(database *db, enum db_file f, lx_err *err);

/* POSIX record locks requested through the mount. */
int db_setlk(database *db, enum db_file f, uint64_t owner, pid_t pid,
	     uint64_t start, uint64_t end, enum lock_type type, lx_err *err);
int db_getlk(database *db, enum db_file f, uint64_t owner, uint64_t start,
	     uint64_t end, enum lock_type type, lock_range *conflict);

/* close()/flush of a file by lock owner `owner`: drop its locks. */
int db_flush(database *db, enum db_file f, uint64_t owner, lx_err *err);

/* fsync of the directory holding the database's files. */
int db_fsync_dir(database *db, lx_err *err);

/* ---- replicas ---------------------------------------------------------- */

/* A replica's databases are read-only through the mount: opening the
 * database for writing, creating a journal and writing the database or
 * the WAL fail with EROFS (SQLite then opens the file read-only and says
 * "attempt to write a readonly database").  -shm stays writable: it is
 * the local readers' shared memory. */
void db_set_readonly(database *db, int readonly);
int db_is_readonly(database *db);

/* The primary's lease: transactions from now on carry `epoch`, and the
 * mount refuses writes (EROFS) once the monotonic clock reaches
 * write_until (0: no limit), whether or not anyone noticed the lease
 * end.  The check is made at every write, so a transaction that is open
 * when the deadline passes cannot commit. */
void db_set_lease(database *db, uint64_t epoch, int64_t write_until);
void db_set_write_until(database *db, int64_t write_until);

/*
 * Apply one replicated LTX file (len bytes in `fd` at offset 0, fully
 * verified by the caller) that continues this database's position: wait
 * for SQLite's locks so no local reader is inside a transaction, append it
 * to the log, write its pages, update the kernel's caches and (WAL mode)
 * the shared-memory header so readers reload.
 *
 * `logged` (may be NULL) is called once the transaction is in the log,
 * before readers can see it, with db->mu released: a replica in sync mode
 * starts making it durable there (db_sync_log from another thread) while
 * this call publishes it, so the fsync and the apply overlap.  It is not
 * called when the file is refused before reaching the log.
 */
typedef struct db_logged_hook {
	void (*fn)(void *ctx, database *db, uint64_t txid, uint64_t checksum);
	void *ctx;
} db_logged_hook;
int db_apply_remote(database *db, int fd, uint64_t len, const db_logged_hook *logged,
		    lx_err *err);

/* A replica heard from its primary (a heartbeat): copy what waits in the
 * replica's WAL into the database file if its readers allow (never
 * waits). */
void db_replica_tick(database *db);

/*
 * Replace the database with a verified snapshot: `image_fd` holds the
 * complete database file (h->commit pages of h->page_size); page_ck[]
 * (h->commit entries, taken over) their checksums.  The log restarts at
 * the snapshot's position.
 */
int db_install_snapshot(database *db, int image_fd, const ltx_header *h,
			uint64_t post_checksum, uint64_t *page_ck, lx_err *err);

/* The primary has no such database: remove its files and history. */
int db_remove_remote(database *db, lx_err *err);

/* What a replica at a position needs next (the primary's stream). */
enum db_send_kind {
	SEND_NOTHING,      /* caught up (or the database has no history to send) */
	SEND_LTX,          /* the logged transaction that follows the position */
	SEND_SNAPSHOT,     /* the position is not on the retained history */
	SEND_DELETED,      /* the replica has it, the primary has no pages: remove */
};

typedef struct db_send {
	enum db_send_kind kind;
	const char *why;           /* SEND_SNAPSHOT: a static reason for the log */
	int diverged;              /* SEND_SNAPSHOT: the replica's position is not on
				      this history (ahead, or off it) */
	int fd;                    /* SEND_LTX: own descriptor of the log segment (close it) */
	uint64_t offset, length;   /* SEND_LTX: the LTX bytes in fd */
	int verified;              /* SEND_LTX: known good (see txlog_entry) */
	uint64_t txid, checksum;   /* the position after sending it */
} db_send;

/*
 * Decide what follows (txid, checksum) on this database's history:
 * the next logged transaction when the position is on the retained
 * history, a snapshot when it is not (replica ahead, same TXID with
 * another checksum, a pre-checksum mismatch, history trimmed), nothing
 * when it is current.  `known` says whether the replica has the database
 * at all (a TXID 0 position it did not report needs nothing until there
 * are pages).
 */
int db_next_send(database *db, uint64_t txid, uint64_t checksum, int known,
		 db_send *out, lx_err *err);

/* As db_next_send for a reader that keeps every transaction (the
 * backup): from TXID 0 the whole retained history is sent record by
 * record, never a snapshot for being long. */
int db_next_record(database *db, uint64_t txid, uint64_t checksum, db_send *out,
		   lx_err *err);

/* A position on a database's history: the state after `txid`. */
typedef struct db_point {
	uint64_t txid;
	uint64_t checksum;
} db_point;

/*
 * Up to `max` earlier positions of this node's own history, below its
 * current TXID and newest first: the newest 16 records one by one, then
 * older ones at doubling distances.  A replica sends them so that a primary
 * can tell where a diverged replica left the primary's history.
 */
size_t db_history_points(database *db, db_point *out, size_t max);

/* 1 and *checksum if `txid` is a position of this database's retained
 * history (the current one, the log's base, or a record's end); else 0. */
int db_checksum_at(database *db, uint64_t txid, uint64_t *checksum);

/* Make every logged transaction durable now (a backup ships only what a
 * crash cannot take back), whatever data.sync says. */
int db_sync_log(database *db, lx_err *err);

/* The TXID of the newest of `v` that lies on this database's retained
 * history; 0 when none does. */
uint64_t db_common_txid(database *db, const db_point *v, size_t n);

/* This database's positions (the state after each logged record, and the
 * current one) with after < TXID <= upto, ascending, the oldest `max`. */
size_t db_history_after(database *db, uint64_t after, uint64_t upto, db_point *out,
			size_t max);

/*
 * Replica: the primary says this database's position is not on its history;
 * `common` is the newest of the positions the replica reported that is on
 * it (0: none), and `later` (n, ascending) are the primary's positions after
 * it, from which the exact point where the histories part is found.  A
 * snapshot follows.  The transactions after `common` that this node holds
 * (it was primary once) are lost to the cluster: they are reported in the
 * log and in db_status, and their LTX records are copied to
 * `lost-<from>-<to>/` in the database's directory before the snapshot
 * replaces the log.  Never merged.  `primary` names the primary for the log.
 */
void db_report_diverged(database *db, uint64_t common, const db_point *later, size_t n,
			const char *primary);

/* The log record holding `txid` was verified in full (db_next_send). */
void db_mark_verified(database *db, uint64_t txid);

/* Trim the log to the retention bounds (0: none); the newest stays. */
void db_enforce_retention(database *db, int64_t now_ms, uint64_t max_age_ms,
			  uint64_t max_bytes);

/* Commit notifications (db_events). */
void db_events_init(db_events *ev);
void db_events_destroy(db_events *ev);
void db_events_notify(db_events *ev);
/* Wait until ev->seq != *seen or timeout_ms passed; updates *seen.
 * `stop` (may be NULL) is checked too (set it, then notify, to wake). */
void db_events_wait(db_events *ev, uint64_t *seen, int timeout_ms, const int *stop);

/* Read the logical content of one page (database file + captured WAL). */
int db_read_page_locked(database *db, uint32_t pgno, uint8_t *buf, lx_err *err);

#endif
