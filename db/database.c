/*
 * database.c - file operations on a database's backing files, as forwarded
 * by the FUSE layer, and the triggers of commit capture (see database.h).
 * The state these operations share with the rest of the layer (descriptors,
 * backing files, page checksums) is in state.c, below this file and below
 * capture.c (db/internal.h draws the layers).
 */
#include "base/bytes.h"
#include "db/internal.h"
#include "db/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "db/wal_index.h"
#include "ltx/ltx.h"

static const uint8_t journal_magic[8] = { 0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7 };

/* ---- a full disk ------------------------------------------------------------ */

void db_note_storage_error_locked(database *db, long rc, const lx_err *err)
{
	db_assert_locked(db);
	if (rc >= 0 || !db_storage_errno((int)-rc))
		return;
	if (db->storage_error[0] == '\0') {
		db->storage_error_ms = db_now_ms();
		lx_error(db->name, "commits fail until data.dir can take them: %s", err->msg);
	}
	snprintf(db->storage_error, sizeof(db->storage_error), "%s", err->msg);
	db->commits_refused++;
}

int db_reserve_log_locked(database *db, uint64_t pending, lx_err *err)
{
	db_assert_locked(db);
	int rc;
	if (db->log == NULL)
		return 0;
	/* LTX framing: record and LTX headers, page headers, the trailer. */
	rc = txlog_reserve(db->log, pending + 4096, err);
	if (rc < 0)
		lx_err_wrap(err, "db %s: the log has no room for this transaction", db->name);
	return rc;
}

/* ---- dirty pages of a rollback transaction (cleared in state.c) ------------ */

static int dirty_add(database *db, uint32_t pgno)
{
	size_t w = (pgno - 1) / 64;
	if (w >= db->dirty_words) {
		size_t words = db->dirty_words ? db->dirty_words : 64;
		uint64_t *bits;
		while (words <= w)
			words *= 2;
		bits = realloc(db->dirty_bits, words * sizeof(*bits));
		if (bits == NULL)
			return -ENOMEM;
		memset(bits + db->dirty_words, 0, (words - db->dirty_words) * sizeof(*bits));
		db->dirty_bits = bits;
		db->dirty_words = words;
	}
	if (db->dirty_bits[w] >> ((pgno - 1) % 64) & 1)
		return 0;
	if (db->n_dirty == db->dirty_cap) {
		size_t cap = db->dirty_cap ? db->dirty_cap * 2 : 64;
		uint32_t *v = realloc(db->dirty, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		db->dirty = v;
		db->dirty_cap = cap;
	}
	db->dirty[db->n_dirty++] = pgno;
	db->dirty_bits[w] |= 1ULL << ((pgno - 1) % 64);
	return 0;
}

/* Record that [off, off+len) of the database file changed. */
static int mark_dirty(database *db, uint64_t off, size_t len)
{
	uint32_t ps = db->page_size;
	if (len == 0)
		return 0;
	if (ps == 0 || off % ps != 0 || len % ps != 0) {
		db->dirty_full = 1;
		return 0;
	}
	for (uint64_t o = off; o < off + len; o += ps) {
		if (o / ps >= LTX_MAX_PGNO)
			return -EFBIG;
		if (dirty_add(db, (uint32_t)(o / ps) + 1) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- what a replica refuses --------------------------------------------------- */

enum replica_op { OP_CREATE, OP_WRITE, OP_REMOVE };

static int file_is_empty(const database *db, enum db_file f)
{
	struct stat st;
	return db->file[f] == NULL || (fstat(db->file[f]->fd, &st) == 0 && st.st_size == 0);
}

/*
 * On a replica, the database, its journal and the WAL's content belong to
 * the primary.  Local readers may still create the (empty) WAL and the shm,
 * use the shm, and remove an empty WAL when they close.
 */
static int refused_on_replica_locked(database *db, enum db_file f, enum replica_op op,
				     lx_err *err)
{
	db_assert_locked(db);
	int64_t until = __atomic_load_n(&db->write_until, __ATOMIC_ACQUIRE);
	if (f == DBF_SHM)
		return 0;
	if (!__atomic_load_n(&db->readonly, __ATOMIC_ACQUIRE)) {
		if (until == 0 || lx_mono_ms() < until)
			return 0;
		if (f == DBF_WAL && (op == OP_CREATE || (op == OP_REMOVE && file_is_empty(db, f))))
			return 0;
		return lx_err_set(err, EROFS, "db %s: this node's lease ran out: %s may not "
				  "change until it is primary again", db->name, db_file_names[f]);
	}
	if (f == DBF_WAL && (op == OP_CREATE || (op == OP_REMOVE && file_is_empty(db, f))))
		return 0;
	return lx_err_set(err, EROFS, "db %s: read-only replica: %s may not change",
			  db->name, db_file_names[f]);
}

int db_writes_refused(database *db)
{
	int64_t until = __atomic_load_n(&db->write_until, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&db->readonly, __ATOMIC_ACQUIRE) ||
	       (until != 0 && lx_mono_ms() >= until);
}

/* ---- opening backing files ------------------------------------------------ */

int db_file_exists(database *db, enum db_file f)
{
	int exists;
	pthread_mutex_lock(&db->mu);
	exists = db->file[f] != NULL;
	pthread_mutex_unlock(&db->mu);
	return exists;
}

int db_open_file(database *db, enum db_file f, int flags, mode_t mode,
		 backing **out, lx_err *err)
{
	int rc = db_lock_files(db, err);
	if (rc < 0) {
		/* no descriptor */
	} else if (db->retired) {
		/* created again through store_get_or_create only */
		rc = lx_err_set(err, ENOENT, "db %s: deleted", db->name);
	} else if (db->failed) {
		rc = lx_err_set(err, EIO, "db %s: not served: %s", db->name, db->failure);
	} else if ((flags & (O_CREAT | O_TRUNC)) &&
		   (rc = refused_on_replica_locked(db, f, OP_CREATE, err)) < 0) {
		/* refused */
	} else if (db->file[f] != NULL) {
		if ((flags & O_CREAT) && (flags & O_EXCL))
			rc = lx_err_set(err, EEXIST, "db %s: %s exists", db->name, db_file_names[f]);
	} else if (!(flags & O_CREAT)) {
		rc = lx_err_set(err, ENOENT, "db %s: no %s", db->name, db_file_names[f]);
	} else {
		rc = db_open_backing_locked(db, f, flags, mode, err);
	}
	if (rc == 0)
		*out = backing_ref(db->file[f]);
	pthread_mutex_unlock(&db->mu);
	if (rc == 0 && (flags & O_TRUNC))
		rc = db_truncate(db, f, *out, 0, err);
	return rc;
}

int db_stat_file(database *db, enum db_file f, struct stat *st)
{
	lx_err err;
	int rc = db_lock_files(db, &err);
	if (rc == 0)
		rc = -ENOENT;
	if (db->file[f] != NULL && db->file[f]->fd >= 0)
		rc = fstat(db->file[f]->fd, st) < 0 ? -errno : 0;
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* ---- writes ---------------------------------------------------------------- */

/* Pass a write through; returns `len` or -errno. */
static ssize_t pass_write(int fd, const void *buf, size_t len, off_t off)
{
	int rc = lx_pwrite_all(fd, buf, len, (uint64_t)off);
	return rc < 0 ? rc : (ssize_t)len;
}

/*
 * A write of the database file in WAL mode is a checkpoint.  It copies
 * committed frames, which were all captured before its CKPT lock was
 * granted (db_setlk), so it is passed through without capture.  It may copy
 * an older committed version of a page than the newest logged one (a
 * PASSIVE checkpoint works from its own snapshot while writers commit), so
 * comparing with the newest logged checksum would be wrong.
 */
static ssize_t write_database_locked(database *db, backing *b, const uint8_t *buf,
				     size_t len, off_t off, lx_err *err)
{
	db_assert_locked(db);
	ssize_t n;
	int aligned = db->page_size && off % db->page_size == 0 && len % db->page_size == 0;
	if (db->wal_mode && !db->journal_hot && aligned) {
		/* A checkpoint: it must never copy a frame the log does not hold
		 * (the CKPT lock says so too, but only when ltxfs keeps locks). */
		int rc = db_capture_wal_locked(db, err);
		if (rc < 0)
			return rc;
		db_preserve_locked(db, DBF_DB, (uint64_t)off, len);
		n = pass_write(b->fd, buf, len, off);
		return n < 0 ? lx_err_sys(err, (int)-n, "db %s: write", db->name) : n;
	}
	if (db->page_size) {
		/* The transaction's pages so far, plus this write's. */
		uint64_t pending = ((uint64_t)db->n_dirty + len / db->page_size + 1) *
				   (db->page_size + 64);
		int rc = db_reserve_log_locked(db, pending, err);
		if (rc < 0)
			return rc;
	}
	db_preserve_locked(db, DBF_DB, (uint64_t)off, len);
	n = pass_write(b->fd, buf, len, off);
	if (n < 0)
		return lx_err_sys(err, (int)-n, "db %s: write", db->name);
	if (mark_dirty(db, (uint64_t)off, len) < 0)
		db->dirty_full = 1;
	return n;
}

/* ---- the commit gate (replication.mode sync) ------------------------------- */

/*
 * The calls that reach a commit point (a WAL commit frame's write, a
 * rollback journal ceasing to be hot) mark it, so the gate's admit runs
 * there and the TXID it logged is awaited when the call returns.  Other
 * captures (recovery, journal-less writes, a scan at a lock) are not
 * gated: they are not an application's COMMIT returning.
 */
static int capture_at_commit_point_locked(database *db, int (*capture)(database *, lx_err *),
					  lx_err *err)
{
	uint64_t before = db->txid;
	int rc;
	db->at_commit_point = 1;
	rc = capture(db, err);
	db->at_commit_point = 0;
	if (rc == 0 && db->txid > before)
		db->gate_txid = db->txid;
	return rc;
}

/* An application's call begins (db->mu held). */
static void app_call_begin_locked(database *db)
{
	db->gate_txid = 0;
}

/* ... and ends (db->mu still held): the TXID a commit point of the call
 * logged, or 0. */
static uint64_t app_call_end_locked(database *db)
{
	uint64_t txid = db->gate_txid;
	db->gate_txid = 0;
	return txid;
}

/*
 * SQLite counts a WAL commit whose write failed as not made, but the frames
 * are in the WAL and the transaction in the log.  Clearing isInit in both
 * copies of the wal-index header makes SQLite's next reader rebuild the
 * index from the WAL (its own recovery), which then sees the commit, so
 * SQLite's view agrees with the log again.  The -shm is a cache of the WAL
 * by SQLite's design: any reader may rebuild it.
 */
static void wal_index_reload(database *db)
{
	static const uint8_t zero = 0;
	const db_observer *o = db_observer_of(db);
	pthread_mutex_lock(&db->mu);
	if (db->file[DBF_SHM] != NULL && db_use_files_locked(db, &(lx_err){ 0 }) == 0) {
		for (int copy = 0; copy < 2; copy++) {
			uint64_t off = (uint64_t)copy * WI_HEADER_SIZE + 12;   /* isInit */
			if (pwrite(db->file[DBF_SHM]->fd, &zero, 1, (off_t)off) != 1)
				lx_warn(db->name, "wal-index: %s", strerror(errno));
			if (o != NULL && o->store != NULL)
				o->store(o->ctx, db, DBF_SHM, off, &zero, 1);
		}
	}
	pthread_mutex_unlock(&db->mu);
}

/*
 * After an application's call, with db->mu released: a transaction it
 * logged at a commit point (`txid`, 0: none) returns to the application
 * only once the gate says so.  `rc` is the call's own result; a failure of
 * the gate replaces a success.
 *
 * A call that logged nothing may still finish a commit the gate failed:
 * the kernel splits a page write, the part that completed the commit frame
 * failed, and SQLite writes that part again, which then repeats logged
 * bytes.  Such a write (`rewrite`) waits for the failed TXID again, so the
 * commit is not reported made without its acknowledgements.
 */
static long app_call_await(database *db, enum db_file f, uint64_t txid, int rewrite,
			   long rc, lx_err *err)
{
	const db_commit_gate *g = db_gate_of(db);
	uint64_t failed = __atomic_load_n(&db->gate_failed_txid, __ATOMIC_ACQUIRE);
	int w;
	if (txid == 0 && rewrite)
		txid = failed;
	if (rc < 0 || txid == 0 || g == NULL)
		return rc;
	w = g->await(g->ctx, db, txid, err);
	if (w == 0) {
		if (txid >= failed)
			__atomic_compare_exchange_n(&db->gate_failed_txid, &failed, 0, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		return rc;
	}
	__atomic_store_n(&db->gate_failed_txid, txid, __ATOMIC_RELEASE);
	if (f == DBF_WAL)
		wal_index_reload(db);
	return w;
}

/* The journal stops being hot: the commit point of a rollback transaction. */
static int journal_finalized_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	int rc;
	if (!db->journal_hot)
		return 0;
	LX_FAILPOINT("rollback.commit.before_log");
	rc = capture_at_commit_point_locked(db, db_capture_rollback_locked, err);
	if (rc < 0)
		return rc;
	LX_FAILPOINT("rollback.commit.after_log");
	db->journal_hot = 0;
	return 0;
}

static ssize_t write_journal_locked(database *db, backing *b, const uint8_t *buf,
				    size_t len, off_t off, lx_err *err)
{
	db_assert_locked(db);
	ssize_t n;
	if (off == 0 && len >= sizeof(journal_magic)) {
		int magic = memcmp(buf, journal_magic, sizeof(journal_magic)) == 0;
		if (!magic) {
			/* PERSIST mode zeroes the header to commit. */
			int rc = journal_finalized_locked(db, err);
			if (rc < 0)
				return rc;
		}
		n = pass_write(b->fd, buf, len, off);
		if (n >= 0 && magic)
			db->journal_hot = 1;
	} else {
		n = pass_write(b->fd, buf, len, off);
	}
	return n < 0 ? lx_err_sys(err, (int)-n, "db %s: write journal", db->name) : n;
}

/*
 * Whether a write at `off` leaves the bytes below `limit` as they are.  A
 * write that starts inside captured WAL frames is harmless when it only
 * repeats them: a VFS or a block layer that writes whole sectors does so
 * when it appends the next frame.
 */
static int rewrites_same_bytes(int fd, const uint8_t *buf, size_t len, off_t off,
			       uint64_t limit)
{
	size_t n = (uint64_t)off + len < limit ? len : (size_t)(limit - (uint64_t)off);
	uint8_t *old = malloc(n ? n : 1);
	int same = old != NULL && db_pread_page(fd, old, (uint32_t)n, (uint64_t)off) == 0 &&
		   memcmp(old, buf, n) == 0;
	free(old);
	return same;
}

/*
 * What a WAL write means before it is passed through: 0 to pass it (with
 * *restart set when the WAL header is being replaced), or an error.
 */
static int check_wal_write(database *db, backing *b, const uint8_t *buf, size_t len,
			   off_t off, int *restart, lx_err *err)
{
	db_wal_state *w = &db->wal;
	*restart = 0;
	if (off == 0 && len >= WAL_HEADER_SIZE) {
		/* A new header: SQLite restarts the log (or a tool writes a
		 * whole file).  Everything committed in the old one was captured
		 * at its commit; make sure, then start over. */
		*restart = 1;
		return db_capture_wal_locked(db, err);
	}
	if (!w->valid || (uint64_t)off >= w->processed ||
	    rewrites_same_bytes(b->fd, buf, len, off, w->processed))
		return 0;
	if (off < WAL_HEADER_SIZE && w->processed == WAL_HEADER_SIZE) {
		/* A tool edits the header of a WAL none of whose frames is in
		 * the log yet: read the header again afterwards. */
		*restart = 1;
		return 0;
	}
	/* Refused, and the database stays served: the WAL keeps the frames
	 * the log has, so SQLite's next recovery agrees with it. */
	return lx_err_set(err, EIO, "db %s: write at WAL offset %lld would change committed "
			  "frames (captured up to %" PRIu64 "); refused",
			  db->name, (long long)off, w->processed);
}

/*
 * Which commit frame a WAL write completes.  SQLite writes a frame as two
 * writes, its 24-byte header then its page, and the kernel may split the
 * page write further.  Such a header write at a frame boundary arms
 * `commit_frame_end` (a commit frame) or disarms it (SQLite moved on to
 * another frame); the write that reaches the armed end completes the
 * commit.  Returns that end offset, or 0.
 *
 * Only SQLite's own pattern arms: bytes written any other way (a tool, a
 * test writing whole frames, patching checksums) may still be rewritten
 * and are judged as SQLite's WAL recovery judges them, when a connection
 * next locks or syncs (SQLite's own test suite writes WAL files so).
 */
static uint64_t commit_completed_by(db_wal_state *w, const uint8_t *buf, size_t len,
				    off_t off)
{
	uint64_t end = (uint64_t)off + len, frame_size, completed = 0;
	wal_frame_header f;
	if (!w->valid)
		return 0;
	if (w->commit_frame_end && (uint64_t)off < w->commit_frame_end &&
	    w->commit_frame_end <= end) {
		completed = w->commit_frame_end;
		w->commit_frame_end = 0;
	}
	frame_size = WAL_FRAME_HEADER_SIZE + w->hdr.page_size;
	if (len == WAL_FRAME_HEADER_SIZE && (uint64_t)off >= WAL_HEADER_SIZE &&
	    ((uint64_t)off - WAL_HEADER_SIZE) % frame_size == 0) {
		wal_frame_header_parse(buf, &f);
		w->commit_frame_end = f.commit ? end - WAL_FRAME_HEADER_SIZE + frame_size : 0;
	}
	return completed;
}

/*
 * The bytes a write is about to replace, so that a write whose commit
 * cannot be logged is undone whole: it fails, so SQLite does not count its
 * bytes as written, and the file must then be as if it never happened (a
 * complete commit frame left behind would be taken for a commit by the
 * next WAL recovery).  Bytes SQLite already counted are never touched.
 */
typedef struct write_undo {
	uint8_t *old;
	uint64_t off, len;      /* the old bytes that existed */
	uint64_t old_size;      /* the file's size before the write */
} write_undo;

static int undo_save(write_undo *u, int fd, uint64_t off, size_t len, lx_err *err)
{
	struct stat st;
	memset(u, 0, sizeof(*u));
	if (fstat(fd, &st) < 0)
		return lx_err_sys(err, errno, "fstat");
	u->off = off;
	u->old_size = (uint64_t)st.st_size;
	u->len = off >= u->old_size ? 0 : (off + len <= u->old_size ? len : u->old_size - off);
	if (u->len == 0)
		return 0;
	u->old = malloc(u->len);
	if (u->old == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	int rc = db_pread_page(fd, u->old, (uint32_t)u->len, off);
	if (rc < 0) {
		free(u->old);
		u->old = NULL;
		return lx_err_sys(err, -rc, "read");
	}
	return 0;
}

/* Put back the bytes at or above `keep_below` (bytes below it were logged
 * and stay); returns -errno when the file could not be restored. */
static int undo_restore(const write_undo *u, int fd, uint64_t keep_below)
{
	uint64_t from = u->off > keep_below ? u->off : keep_below;
	int rc = 0;
	if (from < u->off + u->len)
		rc = lx_pwrite_all(fd, u->old + (from - u->off), u->off + u->len - from, from);
	if (rc == 0 && u->old_size >= keep_below && ftruncate(fd, (off_t)u->old_size) < 0)
		rc = -errno;
	return rc;
}

/*
 * The write that completes a commit frame is the commit point: it is
 * passed through, the transaction is logged, and only then does the write
 * succeed.  If logging fails (a full disk, an I/O error), the write is
 * undone and fails, so SQLite's commit fails and nothing it counts as
 * written changes; the frame stays armed, so SQLite's retry of the same
 * bytes (a short write is retried) tries to log it again instead of
 * slipping through.
 */
static ssize_t write_wal_commit_locked(database *db, backing *b, const uint8_t *buf,
				       size_t len, off_t off, uint64_t commit_end, lx_err *err)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	write_undo u;
	ssize_t n;
	int rc = undo_save(&u, b->fd, (uint64_t)off, len, err);
	if (rc < 0)
		return lx_err_wrap(err, "db %s: before a WAL commit", db->name);
	n = pass_write(b->fd, buf, len, off);
	w->scanned = 0;
	if (n < 0) {
		free(u.old);
		w->commit_frame_end = commit_end;
		return lx_err_sys(err, (int)-n, "db %s: write wal", db->name);
	}
	LX_FAILPOINT("wal.commit.before_log");
	rc = capture_at_commit_point_locked(db, db_capture_wal_locked, err);
	if (rc == 0)
		LX_FAILPOINT("wal.commit.after_log");
	if (rc < 0) {
		int urc = undo_restore(&u, b->fd, w->processed);
		w->commit_frame_end = commit_end;
		w->scanned = 0;
		if (urc < 0)
			db_fail_locked(db, "a commit could not be logged (%s) and its WAL frame "
				       "could not be undone: %s", err->msg, strerror(-urc));
		n = rc;
	}
	free(u.old);
	return n;
}

static ssize_t write_wal_locked(database *db, backing *b, const uint8_t *buf,
				size_t len, off_t off, lx_err *err)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	uint64_t commit_end;
	int restart;
	ssize_t n;
	int rc;

	rc = check_wal_write(db, b, buf, len, off, &restart, err);
	if (rc < 0)
		return rc;
	if (restart)
		w->valid = 0;
	if (w->valid && (uint64_t)off + len > w->processed &&
	    (rc = db_reserve_log_locked(db, (uint64_t)off + len - w->processed, err)) < 0)
		return rc;
	db_preserve_locked(db, DBF_WAL, (uint64_t)off, len);
	commit_end = commit_completed_by(w, buf, len, off);
	if (commit_end)
		return write_wal_commit_locked(db, b, buf, len, off, commit_end, err);
	n = pass_write(b->fd, buf, len, off);
	w->scanned = 0;
	if (n < 0)
		return lx_err_sys(err, (int)-n, "db %s: write wal", db->name);
	if (!w->valid && off < WAL_HEADER_SIZE) {
		/* Load the new header now (only the header: frames count when a
		 * commit, a sync or a lock says so), so the first commit of this
		 * WAL is seen at its commit frame like every other one. */
		w->commit_frame_end = 0;
		db_wal_load_header_locked(db);
	}
	return n;
}

ssize_t db_write(database *db, enum db_file f, backing *b, const void *buf,
		 size_t len, off_t off, lx_err *err)
{
	ssize_t n = db_lock_files(db, err);
	uint64_t gated;
	/* a WAL write below the captured end repeats logged bytes */
	int rewrite = f == DBF_WAL && db->wal.valid && (uint64_t)off < db->wal.processed;
	app_call_begin_locked(db);
	if (n < 0) {
		/* no descriptor */
	} else if (db->failed) {
		n = lx_err_set(err, EIO, "db %s: not served: %s", db->name, db->failure);
	} else if ((n = refused_on_replica_locked(db, f, OP_WRITE, err)) < 0) {
		/* refused */
	} else if (db->retired) {
		/* a file removed while the application kept it open */
		n = pass_write(b->fd, buf, len, off);
		if (n < 0)
			n = lx_err_sys(err, (int)-n, "db %s: write %s", db->name, db_file_names[f]);
	} else if (f == DBF_DB) {
		n = write_database_locked(db, b, buf, len, off, err);
	} else if (f == DBF_JOURNAL && b == db->file[f]) {
		n = write_journal_locked(db, b, buf, len, off, err);
	} else if (f == DBF_WAL && b == db->file[f]) {
		n = write_wal_locked(db, b, buf, len, off, err);
	} else {
		n = pass_write(b->fd, buf, len, off);
		if (n < 0)
			n = lx_err_sys(err, (int)-n, "db %s: write %s", db->name, db_file_names[f]);
	}
	db_note_storage_error_locked(db, n, err);
	gated = app_call_end_locked(db);
	pthread_mutex_unlock(&db->mu);
	return app_call_await(db, f, gated, rewrite, n, err);
}

/* ---- truncate, fsync, unlink ----------------------------------------------- */

static int truncate_locked(database *db, enum db_file f, backing *b, off_t size,
			   lx_err *err)
{
	db_assert_locked(db);
	int rc = 0;
	if (f == DBF_JOURNAL && size == 0 && b == db->file[f])
		rc = journal_finalized_locked(db, err);          /* TRUNCATE mode commit */
	if (rc == 0 && f == DBF_DB && !db->journal_hot && db->page_size &&
	    (uint64_t)size < (uint64_t)db->n_pages * db->page_size && !db->wal_mode)
		db->dirty_full = 1;                            /* a change without a journal */
	if (rc == 0 && f == DBF_WAL && b == db->file[f] &&
	    (uint64_t)size < db->wal.processed) {
		rc = db_capture_wal_locked(db, err);
		db_wal_reset_locked(db);
	}
	if (rc == 0 && (f == DBF_DB || f == DBF_WAL) && b == db->file[f])
		db_preserve_locked(db, f, (uint64_t)size, UINT64_MAX);
	if (rc == 0 && ftruncate(b->fd, size) < 0)
		rc = lx_err_sys(err, errno, "db %s: truncate %s", db->name, db_file_names[f]);
	return rc;
}

int db_truncate(database *db, enum db_file f, backing *b, off_t size,
		lx_err *err)
{
	int rc = db_lock_files(db, err);
	uint64_t gated;
	app_call_begin_locked(db);
	if (rc < 0)
		/* no descriptor */;
	else if (db->failed)
		rc = lx_err_set(err, EIO, "db %s: not served: %s", db->name, db->failure);
	else if ((rc = refused_on_replica_locked(db, f, OP_REMOVE, err)) < 0)
		/* refused */;
	else if (db->retired)
		rc = ftruncate(b->fd, size) < 0 ? lx_err_sys(err, errno, "db %s: truncate %s",
							     db->name, db_file_names[f]) : 0;
	else
		rc = truncate_locked(db, f, b, size, err);
	db_note_storage_error_locked(db, rc, err);
	gated = app_call_end_locked(db);
	pthread_mutex_unlock(&db->mu);
	return (int)app_call_await(db, f, gated, 0, rc, err);
}

static int sync_file(database *db, enum db_file f, int fd, int datasync, lx_err *err)
{
	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		return lx_err_sys(err, errno, "db %s: fsync %s", db->name, db_file_names[f]);
	return 0;
}

/*
 * The application asked for durability of file `f`: the log is never less
 * durable.  With a syncer the log's sync runs on its thread while this one
 * syncs the file, so the two device flushes overlap.
 */
static int sync_file_and_log(database *db, enum db_file f, int fd, int datasync,
			     lx_err *err)
{
	sync_ticket t;
	int rc;
	if (db->log == NULL)
		return sync_file(db, f, fd, datasync, err);
	if (db->opt.syncer == NULL || !txlog_unsynced(db->log)) {
		rc = sync_file(db, f, fd, datasync, err);
		return rc < 0 ? rc : txlog_sync(db->log, err);
	}
	log_syncer_submit(db->opt.syncer, &t, db->log);
	rc = sync_file(db, f, fd, datasync, err);
	if (log_syncer_wait(db->opt.syncer, &t, rc < 0 ? NULL : err) < 0 && rc == 0)
		rc = -t.err.code;
	return rc;
}

int db_fsync(database *db, enum db_file f, backing *b, int datasync,
	     lx_err *err)
{
	int rc = db_lock_files(db, err);
	if (rc == 0 && db->retired) {
		pthread_mutex_unlock(&db->mu);
		return sync_file(db, f, b->fd, datasync, err);
	}
	if (rc == 0 && f == DBF_WAL && b == db->file[f])
		rc = db_capture_wal_locked(db, err);
	if (rc == 0 && f == DBF_DB && !db->journal_hot && (db->n_dirty || db->dirty_full))
		rc = db_capture_rollback_locked(db, err);   /* journal-less writes */
	if (db->journal_hot || f == DBF_JOURNAL)
		db->txn_synced = 1;
	db_note_storage_error_locked(db, rc, err);
	if (rc == 0)
		__atomic_add_fetch(&db->log_users, 1, __ATOMIC_ACQ_REL);  /* db->log outlives the unlock */
	pthread_mutex_unlock(&db->mu);
	if (rc < 0)
		return rc;
	rc = sync_file_and_log(db, f, b->fd, datasync, err);
	__atomic_sub_fetch(&db->log_users, 1, __ATOMIC_ACQ_REL);
	return rc;
}

int db_fsync_dir(database *db, lx_err *err)
{
	int fd = -1, rc = 0;
	pthread_mutex_lock(&db->mu);
	if (db->dir_dirty && !db->retired && (rc = db_use_files_locked(db, err)) == 0) {
		/* its own descriptor: the database's may be closed meanwhile */
		fd = fcntl(db->dirfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			rc = lx_err_sys(err, errno, "db %s: fsync directory", db->name);
		else
			db->dir_dirty = 0;
	}
	pthread_mutex_unlock(&db->mu);
	if (fd >= 0 && fsync(fd) < 0)
		rc = lx_err_sys(err, errno, "db %s: fsync directory", db->name);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Deleting the database file deletes the database: a transaction of its own. */
static int delete_database_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	txn_build t;
	int rc;
	db_dirty_clear_locked(db);
	db->journal_hot = 0;
	db->untracked = 0;
	if (db->txid == 0 || db->n_pages == 0)
		return 0;
	memset(&t, 0, sizeof(t));
	t.full_image = 1;                  /* the empty image: checksum is the flag */
	t.page_size = db->page_size;
	rc = db_log_transaction_locked(db, &t, err);
	if (rc == 0)
		db->page_size = 0;
	return rc;
}

/*
 * Deleting is the way out of a failed database: its history ends with a
 * delete transaction (the log's chain stays intact) and the name is
 * served again, as a new database, from the next TXID on.
 */
static int delete_failed_database_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	const txlog_entry *tail = db->log ? txlog_last(db->log) : NULL;
	int rc;
	if (db->log == NULL)
		return lx_err_set(err, EIO, "db %s: not served (%s) and its log is not open",
				  db->name, db->failure);
	/* The log, not the damaged file, is the history the deletion ends. */
	db->txid = tail ? tail->hdr.max_txid : 0;
	db->checksum = tail ? tail->post_checksum : LTX_CHECKSUM_FLAG;
	db->n_pages = tail ? tail->hdr.commit : 0;
	db->page_size = tail && tail->hdr.commit ? tail->hdr.page_size : 0;
	if (db_page_ck_reserve_locked(db, db->n_pages) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	db_wal_reset_locked(db);
	rc = delete_database_locked(db, err);
	if (rc < 0)
		return lx_err_wrap(err, "db %s: delete after failure (%s)", db->name, db->failure);
	lx_warn(db->name, "deleted; it was not served: %s", db->failure);
	db->failed = 0;
	db->failure[0] = '\0';
	return 0;
}

/* Release db->mu; then, if `sync`, fsync the log (log_users keeps db->log
 * from being closed meanwhile). */
static int unlock_then_sync_log(database *db, int sync, lx_err *err)
{
	int rc = 0;
	if (sync)
		__atomic_add_fetch(&db->log_users, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&db->mu);
	if (sync) {
		rc = txlog_sync(db->log, err);
		__atomic_sub_fetch(&db->log_users, 1, __ATOMIC_ACQ_REL);
	}
	return rc;
}

/*
 * Sync mode, DELETE journal: the journal's unlink is the commit point, and
 * it is awaited before it is passed through, with db->mu released (SQLite
 * holds its EXCLUSIVE lock meanwhile, so no connection reads the database).
 * A commit the replicas do not acknowledge then fails with its journal
 * still hot: SQLite rolls it back, and its rollback is logged as the next
 * transaction.  (Failing an unlink that was done would leave the kernel
 * with a name the file system no longer has.)  Returns with db->mu held.
 */
static int await_journal_commit_locked(database *db, int synced, lx_err *err)
{
	uint64_t txid = app_call_end_locked(db);
	int rc = unlock_then_sync_log(db, synced && db->log != NULL, err);
	rc = (int)app_call_await(db, DBF_JOURNAL, txid, 0, rc, err);
	pthread_mutex_lock(&db->mu);
	if (rc == 0)
		rc = db_use_files_locked(db, err);
	return rc;
}

int db_unlink(database *db, enum db_file f, lx_err *err)
{
	int rc = db_lock_files(db, err), synced, sync_log;
	uint64_t gated;
	app_call_begin_locked(db);
	synced = db->txn_synced;   /* of the transaction the unlink may commit */
	if (rc < 0) {
		/* no descriptor */
	} else if (db->file[f] == NULL) {
		rc = lx_err_set(err, ENOENT, "db %s: no %s", db->name, db_file_names[f]);
	} else if ((rc = refused_on_replica_locked(db, f, OP_REMOVE, err)) < 0) {
		/* refused */
	} else if (db->failed && f == DBF_DB) {
		rc = delete_failed_database_locked(db, err);
	} else if (f == DBF_JOURNAL) {
		rc = journal_finalized_locked(db, err);        /* DELETE mode commit */
		if (rc == 0 && db->gate_txid != 0 && db_gate_of(db) != NULL) {
			rc = await_journal_commit_locked(db, synced, err);
			synced = 0;                            /* the log was synced */
		}
	} else if (f == DBF_WAL) {
		rc = db_capture_wal_locked(db, err);
		db_wal_reset_locked(db);
	} else if (f == DBF_DB) {
		rc = delete_database_locked(db, err);
	}
	if (rc == 0 && db->file[f] == NULL)     /* gone while the commit was awaited */
		rc = lx_err_set(err, ENOENT, "db %s: no %s", db->name, db_file_names[f]);
	if (rc == 0)
		db_preserve_locked(db, f, 0, UINT64_MAX);
	if (rc == 0 && unlinkat(db->dirfd, db_file_names[f], 0) < 0)
		rc = lx_err_sys(err, errno, "db %s: unlink %s", db->name, db_file_names[f]);
	if (rc == 0) {
		backing_unref(db->file[f]);
		db->file[f] = NULL;
		db->dir_dirty = 1;
	}
	if (rc == 0 && f == DBF_DB)
		db->retire_wanted = 1;             /* store_retire() frees the rest */
	db_note_storage_error_locked(db, rc, err);
	/* DELETE mode's commit: durable in the log when the application
	 * fsynced the transaction (synchronous=OFF never pays a sync). */
	sync_log = rc == 0 && f == DBF_JOURNAL && synced && db->log != NULL;
	gated = app_call_end_locked(db);
	if (sync_log)
		rc = unlock_then_sync_log(db, 1, err);
	else
		pthread_mutex_unlock(&db->mu);
	return (int)app_call_await(db, f, gated, 0, rc, err);
}

int db_sync_log(database *db, lx_err *err)
{
	pthread_mutex_lock(&db->mu);
	return unlock_then_sync_log(db, db->log != NULL && txlog_unsynced(db->log), err);
}

/* ---- a deleted database gives everything back ------------------------------- */

int db_retirable_locked(const database *db)
{
	db_assert_locked(db);
	if (db->retired || db->failed || db->recovery_pending || db->untracked ||
	    db->snapshots != NULL || db->log == NULL || db->log->appending || db->n_pages != 0 ||
	    __atomic_load_n(&db->log_users, __ATOMIC_ACQUIRE) != 0)
		return 0;
	for (int f = 0; f < DBF_COUNT; f++)
		if (db->file[f] != NULL)
			return 0;
	return 1;
}

void db_retire_locked(database *db)
{
	db_assert_locked(db);
	lx_err err;
	if (txlog_unsynced(db->log) && txlog_sync(db->log, &err) < 0)
		lx_warn(db->name, "retire: %s", err.msg);
	txlog_close(db->log);
	db->log = NULL;
	if (db->opt.handles != NULL)
		handle_cache_forget(db->opt.handles, db);
	if (db->dirfd >= 0)
		close(db->dirfd);
	db->dirfd = -1;
	db->files_open = 0;
	db_wal_reset_locked(db);
	db_dirty_clear_locked(db);
	free(db->page_ck);
	free(db->dirty_bits);
	free(db->dirty);
	free(db->wal.frame_of);
	free(db->wal.touched);
	db->page_ck = NULL;
	db->page_ck_cap = 0;
	db->dirty_bits = NULL;
	db->dirty_words = 0;
	db->dirty = NULL;
	db->dirty_cap = 0;
	memset(&db->wal, 0, sizeof(db->wal));
	db->page_size = 0;
	db->n_pages = 0;
	db->wal_mode = 0;
	db->journal_hot = 0;
	db->storage_error[0] = '\0';
	db->retire_wanted = 0;
	db->retired = 1;
}

int db_revive_locked(database *db, const db_options *opt, lx_err *err)
{
	db_assert_locked(db);
	char logdir[4096];
	int rc = 0;
	if (mkdir(db->dir, 0755) < 0 && errno != EEXIST)
		return lx_err_sys(err, errno, "db %s: create %s", db->name, db->dir);
	db->dirfd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (db->dirfd < 0)
		return lx_err_sys(err, errno, "db %s: open %s", db->name, db->dir);
	snprintf(logdir, sizeof(logdir), "%s/log", db->dir);
	rc = txlog_open(&db->log, logdir, err);
	/* The deleted database's position is the base: TXIDs continue. */
	if (rc == 0 && db->txid != 0)
		rc = txlog_reset_to(db->log, db->txid, db->checksum, err);
	if (rc < 0) {
		txlog_close(db->log);
		db->log = NULL;
		close(db->dirfd);
		db->dirfd = -1;
		return rc;
	}
	db->opt = *opt;
	__atomic_store_n(&db->readonly, opt->readonly, __ATOMIC_RELEASE);
	if (opt->segment_max)
		txlog_set_segment_max(db->log, opt->segment_max);
	txlog_set_segment_max_age(db->log, opt->segment_max_age_ms);
	db->retired = 0;
	__atomic_add_fetch(&db->incarnation, 1, __ATOMIC_ACQ_REL);
	db->files_open = 1;
	db->dir_dirty = 1;
	return db_use_files_locked(db, err);
}

/* ---- locks ----------------------------------------------------------------- */

/* SQLite's EXCLUSIVE lock: a write lock on the SHARED range (owner 0 is
 * never a real FUSE lock owner, so every write lock conflicts with it). */
static int exclusive_held(const database *db)
{
	return lock_table_conflict(&db->locks[DBF_DB], 0, SQLITE_SHARED_FIRST,
				   SQLITE_SHARED_FIRST, LK_READ, NULL);
}

/* After the locks of a file changed: capture what just finished. */
static int after_lock_change_locked(database *db, enum db_file f,
				    int held_wal_write, uint64_t owner, lx_err *err)
{
	db_assert_locked(db);
	if (f == DBF_SHM && held_wal_write &&
	    lock_table_held(&db->locks[DBF_SHM], owner, SHM_WRITE_LOCK) != LK_WRITE)
		return db_capture_wal_locked(db, err);
	if (f == DBF_DB && !db->journal_hot && (db->n_dirty || db->dirty_full) &&
	    !exclusive_held(db))
		return db_capture_rollback_locked(db, err);   /* journal-less writes */
	return 0;
}

int db_setlk(database *db, enum db_file f, uint64_t owner, pid_t pid,
	     uint64_t start, uint64_t end, enum lock_type type, lx_err *err)
{
	int held_wal_write, rc = db_lock_files(db, err);
	held_wal_write = f == DBF_SHM &&
		lock_table_held(&db->locks[f], owner, SHM_WRITE_LOCK) == LK_WRITE;
	/* A checkpoint must never copy frames the log does not hold yet. */
	if (rc == 0 && f == DBF_SHM && type != LK_UNLOCK && start <= SHM_CKPT_LOCK && SHM_CKPT_LOCK <= end)
		rc = db_capture_wal_locked(db, err);
	if (rc == 0)
		rc = lock_table_set(&db->locks[f], owner, pid, start, end, type);
	if (rc == 0)
		rc = after_lock_change_locked(db, f, held_wal_write, owner, err);
	else if (rc == -EAGAIN || rc == -ENOMEM)
		lx_err_set(err, -rc, "db %s: lock", db->name);
	db_note_storage_error_locked(db, rc, err);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int db_getlk(database *db, enum db_file f, uint64_t owner, uint64_t start,
	     uint64_t end, enum lock_type type, lock_range *conflict)
{
	int r;
	pthread_mutex_lock(&db->mu);
	r = lock_table_conflict(&db->locks[f], owner, start, end, type, conflict);
	pthread_mutex_unlock(&db->mu);
	return r;
}

int db_flush(database *db, enum db_file f, uint64_t owner, lx_err *err)
{
	int held_wal_write, rc = db_lock_files(db, err);
	held_wal_write = f == DBF_SHM &&
		lock_table_held(&db->locks[f], owner, SHM_WRITE_LOCK) == LK_WRITE;
	lock_table_release_owner(&db->locks[f], owner);
	if (rc == 0)
		rc = after_lock_change_locked(db, f, held_wal_write, owner, err);
	db_note_storage_error_locked(db, rc, err);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void db_status_get(database *db, db_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&db->mu);
	out->txid = db->txid;
	out->checksum = db->txid ? db->checksum : 0;
	out->page_size = db->page_size;
	out->n_pages = db->n_pages;
	out->exists = db->file[DBF_DB] != NULL;
	out->wal_mode = db->wal_mode;
	out->failed = db->failed;
	out->untracked = db->untracked && db->file[DBF_DB] != NULL;
	if (db->failed)
		snprintf(out->failure, sizeof(out->failure), "%s", db->failure);
	if (db->log != NULL) {
		out->log_transactions = db->log->n;
		out->log_bytes = db->log->ltx_bytes;
	}
	out->last_commit_ms = db->last_commit_ms;
	out->lost = db->lost;
	out->commits = db->commits;
	out->checksum_mismatches = db->checksum_mismatches;
	snprintf(out->storage_error, sizeof(out->storage_error), "%s", db->storage_error);
	out->storage_error_ms = db->storage_error_ms;
	out->commits_refused = db->commits_refused;
	pthread_mutex_unlock(&db->mu);
}

/* Room the data directory must have again before refused commits are
 * considered over: a transaction of a few pages, and the log's slack. */
#define LOG_ROOM_AGAIN (2u << 20)

/* Seconds between recovery attempts of a database waiting for space. */
#define RECOVERY_RETRY_MS 5000

static int has_room(database *db)
{
	struct statvfs sv;
	return statvfs(db->dir, &sv) == 0 &&
	       (uint64_t)sv.f_bavail * sv.f_frsize >= LOG_ROOM_AGAIN;
}

void db_retry_logging(database *db)
{
	lx_err err;
	pthread_mutex_lock(&db->mu);
	if (db->recovery_pending && lx_mono_ms() - db->recovery_tried_ms >= RECOVERY_RETRY_MS &&
	    has_room(db)) {
		db->recovery_tried_ms = lx_mono_ms();
		if (db_use_files_locked(db, &err) == 0)
			db_retry_recovery_locked(db, &err);
	}
	if (db->storage_error[0] == '\0' || db->failed) {
		pthread_mutex_unlock(&db->mu);
		return;
	}
	/* Frames SQLite counts as committed that a lock or sync trigger could
	 * not log are still in the WAL: log them now. */
	db->wal.scanned = 0;
	if (db_use_files_locked(db, &err) < 0 || db_capture_wal_locked(db, &err) < 0) {
		snprintf(db->storage_error, sizeof(db->storage_error), "%s", err.msg);
	} else if (has_room(db)) {
		lx_info(db->name, "the log has room again: commits are accepted (%" PRIu64
			" refused since start)", db->commits_refused);
		db->storage_error[0] = '\0';
	}
	pthread_mutex_unlock(&db->mu);
}

void db_count_mismatch(database *db)
{
	pthread_mutex_lock(&db->mu);
	db->checksum_mismatches++;
	pthread_mutex_unlock(&db->mu);
}

void db_position(database *db, uint64_t *txid, uint64_t *checksum)
{
	pthread_mutex_lock(&db->mu);
	*txid = db->txid;
	*checksum = db->txid ? db->checksum : 0;
	pthread_mutex_unlock(&db->mu);
}

/* ---- replicas and commit notifications ------------------------------------ */

void db_set_readonly(database *db, int readonly)
{
	__atomic_store_n(&db->readonly, readonly, __ATOMIC_RELEASE);
}

void db_set_lease(database *db, uint64_t epoch, int64_t write_until)
{
	pthread_mutex_lock(&db->mu);
	db->opt.lease_epoch = epoch;
	pthread_mutex_unlock(&db->mu);
	db_set_write_until(db, write_until);
}

void db_set_write_until(database *db, int64_t write_until)
{
	__atomic_store_n(&db->write_until, write_until, __ATOMIC_RELEASE);
}

int db_is_readonly(database *db)
{
	return __atomic_load_n(&db->readonly, __ATOMIC_ACQUIRE);
}

void db_enforce_retention(database *db, int64_t now_ms, uint64_t max_age_ms,
			  uint64_t max_bytes)
{
	size_t removed = 0;
	lx_err err;
	pthread_mutex_lock(&db->mu);
	/* Only a log that has something to trim opens its descriptors: this
	 * runs over every database once a second. */
	if (db->log != NULL && txlog_trim_due(db->log, now_ms, max_age_ms, max_bytes) &&
	    (db_use_files_locked(db, &err) < 0 ||
	     txlog_trim(db->log, now_ms, max_age_ms, max_bytes, &removed, &err) < 0))
		lx_warn(db->name, "retention: %s", err.msg);
	pthread_mutex_unlock(&db->mu);
	if (removed)
		lx_debug(db->name, "retention removed %zu transactions from the log", removed);
}
