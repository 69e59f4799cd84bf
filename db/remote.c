/*
 * remote.c - a replica applying the primary's transactions and snapshots
 * (db_apply_remote, db_install_snapshot, db_remove_remote in database.h).
 *
 * Local readers must never see a torn state.  In WAL mode a transaction
 * is appended to the replica's WAL and published through the wal-index as
 * a local SQLite writer would (replica_wal.h): readers keep their
 * snapshots, the applier never waits for them.  Everything else (rollback
 * mode, snapshots, leaving WAL mode, a WAL that is not the applier's)
 * changes the database file.  Before it changes the database file, the
 * applier takes, as a lock owner of its own, the locks
 * a SQLite writer would need to exclude every reader:
 *   - shm bytes 120..127 (WRITE, CHECKPOINT, RECOVER, READ0..READ4): no
 *     WAL-mode reader is inside a read transaction, none can start one;
 *   - unless the database is in WAL mode, the database file's PENDING byte
 *     (no new rollback-mode reader) and then it waits until no rollback-mode
 *     reader holds SHARED.  WAL-mode connections hold SHARED for their whole
 *     life; they are told apart by their lock on the shm's DMS byte and
 *     excluded by the shm locks.
 * In WAL mode PENDING is not taken: every connection reads pages only
 * inside a read transaction on the shm, and a connection that is still
 * opening needs a moment of SHARED (PENDING free) to get there; an applier
 * under a backlog that held PENDING nearly all the time kept new readers
 * out for good.  A transaction that leaves WAL mode, a snapshot and a
 * removal take everything.
 * Each byte is kept as soon as it is free, and what it still waits for is
 * reserved in the lock table (no new locker gets it: writer preference), so
 * a stream of overlapping readers cannot starve the applier; readers meanwhile get SQLITE_BUSY and
 * retry through their busy handler.  With the locks held and the database
 * mutex released, the kernel's cached pages are invalidated and, in WAL
 * mode, a new wal-index header (mxFrame 0, a new change counter) is put
 * into the shm so every connection drops its page cache and reads the
 * database file (a wal-index header that changed is SQLite's signal that
 * another connection wrote: sqlite.org/walformat.html).
 */
#include "db/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "db/apply.h"
#include "db/replica_wal.h"

#define WALINDEX_HDR_SIZE 48
#define WALINDEX_SIZE 136

/* ---- locks ---------------------------------------------------------------- */

/* 1 if a connection that is not in WAL mode holds SHARED on the database. */
static int rollback_reader_present(const database *db)
{
	const lock_table *t = &db->locks[DBF_DB];
	for (size_t i = 0; i < t->n; i++) {
		const lock_range *r = &t->v[i];
		if (r->owner == APPLY_OWNER || r->end < SQLITE_SHARED_FIRST ||
		    r->start >= SQLITE_SHARED_FIRST + SQLITE_SHARED_SIZE)
			continue;
		if (lock_table_held(&db->locks[DBF_SHM], r->owner, SHM_DMS_BYTE) == LK_UNLOCK)
			return 1;
	}
	return 0;
}

/* Which locks an apply needs (see the comment at the top). */
enum apply_locks { LOCKS_WRITE, LOCKS_SHM, LOCKS_ALL };

/* Take what is free now; returns 1 once everything is held. */
static int take_locks_locked(database *db, enum apply_locks which, int prefer)
{
	db_assert_locked(db);
	int all = 1;
	uint64_t last = which == LOCKS_WRITE ? SHM_WRITE_LOCK : SHM_WRITE_LOCK + 7;
	/* Writer preference: no new reader gets in where the applier waits. */
	if (prefer) {
		lock_table_reserve(&db->locks[DBF_SHM], APPLY_OWNER, SHM_WRITE_LOCK, last);
		if (which == LOCKS_ALL)
			lock_table_reserve(&db->locks[DBF_DB], APPLY_OWNER, SQLITE_PENDING_BYTE,
					   SQLITE_PENDING_BYTE);
	}
	for (uint64_t b = SHM_WRITE_LOCK; b <= last; b++)
		if (lock_table_held(&db->locks[DBF_SHM], APPLY_OWNER, b) != LK_WRITE &&
		    lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, b, b, LK_WRITE) < 0)
			all = 0;
	if (which != LOCKS_ALL)
		return all;
	if (lock_table_held(&db->locks[DBF_DB], APPLY_OWNER, SQLITE_PENDING_BYTE) != LK_WRITE &&
	    lock_table_set(&db->locks[DBF_DB], APPLY_OWNER, 0, SQLITE_PENDING_BYTE,
			   SQLITE_PENDING_BYTE, LK_WRITE) < 0)
		all = 0;
	return all && !rollback_reader_present(db);
}

/*
 * Wait for the locks.  For the first PREFER_AFTER_MS the applier competes
 * like any connection, so readers that its previous apply held off (they
 * sleep in their busy handlers) get a turn between two applies; after
 * that it reserves what it waits for, so it gets in as soon as the readers
 * inside finish: bounded waits both ways.
 */
#define PREFER_AFTER_MS 0

static void acquire_locks(database *db, enum apply_locks which)
{
	useconds_t pause = 50;
	int64_t start = db_now_ms(), warned = 0;
	for (;;) {
		int done;
		pthread_mutex_lock(&db->mu);
		done = take_locks_locked(db, which, db_now_ms() - start >= PREFER_AFTER_MS);
		pthread_mutex_unlock(&db->mu);
		if (done)
			return;
		if (!warned && db_now_ms() - start > 5000) {
			lx_warn(db->name, "replication waits for local readers to finish (5 s so far)");
			warned = 1;
		}
		usleep(pause);
		if (pause < 1000)
			pause *= 2;
	}
}

/* Every lock but the shm's DMS byte, which the applier holds while it
 * maps the shm (replica_wal.h). */
static void release_locks_locked(database *db)
{
	db_assert_locked(db);
	lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, SHM_WRITE_LOCK, SHM_WRITE_LOCK + 7,
		       LK_UNLOCK);
	lock_table_release_owner(&db->locks[DBF_DB], APPLY_OWNER);
	lock_table_reserve(&db->locks[DBF_SHM], 0, 0, 0);
	lock_table_reserve(&db->locks[DBF_DB], 0, 0, 0);
}

/* ---- telling the mount ---------------------------------------------------- */


static void tell_names(database *db)
{
	const db_observer *o = db_observer_of(db);
	if (o != NULL && o->names != NULL)
		o->names(o->ctx, db);
}

/* A wal-index header that makes every reader drop its cache and read the
 * database file: mxFrame 0, nPage, a change counter no reader has seen. */
static void encode_walindex(uint8_t out[WALINDEX_SIZE], uint32_t change, uint32_t page_size,
			    uint32_t n_pages)
{
	uint32_t hdr[WALINDEX_HDR_SIZE / 4], info[10];
	wal_cksum ck;
	memset(hdr, 0, sizeof(hdr));
	hdr[0] = WAL_FORMAT_VERSION;                    /* iVersion */
	hdr[2] = change;                                /* iChange */
	/* isInit = 1, bigEndCksum = 0 (native little-endian), szPage */
	hdr[3] = 1u | (uint32_t)(page_size == 65536 ? 1 : page_size) << 16;
	hdr[5] = n_pages;                               /* nPage; mxFrame (hdr[4]) = 0 */
	hdr[8] = change;                                /* aSalt: never used with no frames */
	hdr[9] = ~change;
	ck = wal_checksum(0, (const uint8_t *)hdr, 40, (wal_cksum){ 0, 0 });
	hdr[10] = ck.s1;
	hdr[11] = ck.s2;
	memcpy(out, hdr, WALINDEX_HDR_SIZE);
	memcpy(out + WALINDEX_HDR_SIZE, hdr, WALINDEX_HDR_SIZE);
	memset(info, 0, sizeof(info));                  /* nBackfill 0, aReadMark[0] 0 */
	for (int i = 2; i <= 5; i++)
		info[i] = 0xffffffffu;                  /* aReadMark[1..4] unused */
	memcpy(out + 2 * WALINDEX_HDR_SIZE, info, sizeof(info));
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the wal-index header is written in native little-endian order");

/* WAL mode: the readers' shared memory says "reload".  db->mu not held;
 * the shm backing only changes under the locks the applier holds. */
static void reset_walindex(database *db, uint32_t page_size, uint32_t n_pages)
{
	const db_observer *o = db_observer_of(db);
	uint8_t hdr[WALINDEX_SIZE];
	struct stat st;
	backing *b;

	uint32_t change;
	lx_err err;

	if (db_lock_files(db, &err) < 0)
		lx_warn(db->name, "replica: shm header: %s", err.msg);
	b = db->file[DBF_SHM] ? backing_ref(db->file[DBF_SHM]) : NULL;
	change = ++db->shm_change;
	encode_walindex(hdr, change, page_size, n_pages);
	pthread_mutex_unlock(&db->mu);
	/* Through the applier's mapping when it has one: the very pages the
	 * readers map, never overtaken by the kernel writing back theirs. */
	if (b != NULL && rwal_reset_index(db, page_size, n_pages, change) == 0) {
		backing_unref(b);
		return;
	}
	if (b == NULL)
		return;   /* no reader has shared memory: it starts fresh */
	if (fstat(b->fd, &st) == 0 && st.st_size >= WALINDEX_SIZE) {
		if (lx_pwrite_all(b->fd, hdr, sizeof(hdr), 0) < 0)
			lx_warn(db->name, "replica: rewrite shm header: %s", strerror(errno));
		if (o != NULL && o->store != NULL)
			o->store(o->ctx, db, DBF_SHM, 0, hdr, sizeof(hdr));
	}
	backing_unref(b);
}

/* Changed pages, to invalidate in the kernel's cache once the mutex is out. */
typedef struct page_set {
	uint32_t *v;
	size_t n, cap;
	int oom;
} page_set;

static void page_set_add(void *ctx, uint32_t pgno)
{
	page_set *s = ctx;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL) {
			s->oom = 1;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = pgno;
}

/* Invalidate runs of consecutive pages (the LTX has them in order). */
static void inval_pages(database *db, const page_set *s, uint32_t page_size)
{
	for (size_t i = 0; i < s->n;) {
		size_t j = i + 1;
		while (j < s->n && s->v[j] == s->v[j - 1] + 1)
			j++;
		db_tell_inval(db, DBF_DB, (uint64_t)(s->v[i] - 1) * page_size,
			   (uint64_t)(j - i) * page_size);
		i = j;
	}
}

/* ---- applying ------------------------------------------------------------- */

static int read_wal_mode(database *db)
{
	uint8_t b[2];
	if (db->file[DBF_DB] == NULL || pread(db->file[DBF_DB]->fd, b, 2, 18) != 2)
		return 0;
	return b[0] == 2 && b[1] == 2;
}

static int copy_into_log(database *db, int fd, uint64_t len, const ltx_header *h,
			 uint64_t post, const txlog_anchor *anchor, lx_err *err)
{
	enum { CHUNK = 256 * 1024 };
	uint8_t *buf = malloc(len < CHUNK ? (size_t)len : CHUNK);
	int rc;
	if (buf == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = txlog_append_begin(db->log, len, h->min_txid, anchor, err);
	for (uint64_t off = 0; rc == 0 && off < len;) {
		size_t n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
		ssize_t got = pread(fd, buf, n, (off_t)off);
		if (got <= 0) {
			rc = lx_err_sys(err, got < 0 ? errno : EIO, "read received LTX");
			break;
		}
		rc = txlog_append_write(db->log, buf, (size_t)got);
		if (rc < 0)
			rc = lx_err_sys(err, -rc, "db %s: append to log", db->name);
		off += (uint64_t)got;
	}
	if (rc == 0)
		rc = txlog_append_end(db->log, h, post, err);
	else
		txlog_append_abort(db->log);
	free(buf);
	return rc;
}

/* Append the received file to this replica's log. */
static int log_received(database *db, int fd, uint64_t len, const ltx_header *h,
			const txlog_anchor *anchor, lx_err *err)
{
	uint8_t raw[LTX_TRAILER_SIZE];
	if (pread(fd, raw, sizeof(raw), (off_t)(len - LTX_TRAILER_SIZE)) != (ssize_t)sizeof(raw))
		return lx_err_sys(err, errno ? errno : EIO, "read received LTX trailer");
	return copy_into_log(db, fd, len, h, lx_get_be64(raw), anchor, err);
}

static int check_continues(const database *db, const ltx_header *h, lx_err *err)
{
	if (db->failed)
		return lx_err_set(err, EIO, "db %s: not served: %s", db->name, db->failure);
	if (ltx_header_is_snapshot(h))
		return lx_err_set(err, EINVAL, "db %s: a snapshot is installed, not applied", db->name);
	if (h->min_txid != db->txid + 1 || h->pre_checksum != (db->txid ? db->checksum : 0))
		return lx_err_set(err, EBADMSG, "db %s: TXID %" PRIu64 " (pre-checksum %016" PRIx64
				  ") does not continue the position %" PRIu64 "/%016" PRIx64,
				  db->name, h->min_txid, h->pre_checksum, db->txid, db->checksum);
	return 0;
}

/* The primary deleted the database: its files go, its history stays. */
static void remove_files_locked(database *db)
{
	db_assert_locked(db);
	for (int f = 0; f < DBF_COUNT; f++) {
		if (db->file[f] == NULL)
			continue;
		db_preserve_locked(db, (enum db_file)f, 0, UINT64_MAX);
		if (unlinkat(db->dirfd, db_file_names[f], 0) < 0 && errno != ENOENT)
			lx_warn(db->name, "remove %s: %s", db_file_names[f], strerror(errno));
		backing_unref(db->file[f]);
		db->file[f] = NULL;
	}
	db->dir_dirty = 1;
	db_wal_reset_locked(db);
}

static void take_position_locked(database *db, const apply_target *t, const ltx_header *h)
{
	db_assert_locked(db);
	db->commits += t->txid - db->txid;
	db->txid = t->txid;
	db->checksum = t->checksum;
	db->page_size = t->page_size;
	db->n_pages = t->n_pages;
	db->last_commit_ms = h->timestamp_ms;
}

static int apply_locked(database *db, int fd, uint64_t len, const ltx_header *h,
			page_set *changed, int *created, lx_err *err)
{
	db_assert_locked(db);
	apply_target t;
	int rc = check_continues(db, h, err);

	if (rc == 0 && db->log == NULL)
		rc = lx_err_set(err, EIO, "db %s: its log is not open", db->name);
	if (rc == 0)
		rc = db_absorb_wal_locked(db, 1, err);
	if (rc == 0)
		rwal_forget(db);   /* the WAL was absorbed: the file is the state */
	if (rc == 0 && db->file[DBF_DB] == NULL) {
		rc = db_open_backing_locked(db, DBF_DB, O_CREAT, 0644, err);
		*created = rc == 0;
	}
	if (rc == 0) {
		txlog_anchor none = { 0, 0, 0 };
		rc = log_received(db, fd, len, h, &none, err);
	}
	if (rc < 0)
		return rc;
	LX_FAILPOINT("replica.apply.after_log");
	/* A snapshot being read here (an export, a catch-up stream) keeps the
	 * pages it has not read yet: the apply writes the file directly. */
	db_preserve_locked(db, DBF_DB, 0, UINT64_MAX);
	db_apply_target_locked(db, &t);
	t.written = page_set_add;
	t.written_ctx = changed;
	t.verified = 1;              /* the receiver verified every byte */
	rc = apply_ltx_fd(&t, fd, len, err);
	db_apply_target_taken(db, &t);
	if (rc < 0) {
		/* The log has it and the file does not: the next start re-applies
		 * it, or the primary sends a snapshot. */
		db_fail_locked(db, "applying TXID %" PRIu64 ": %s", h->min_txid, err->msg);
		return rc;
	}
	take_position_locked(db, &t, h);
	db->wal_mode = read_wal_mode(db);
	if (h->commit == 0) {
		remove_files_locked(db);
		db->retire_wanted = 1;      /* the store frees the rest (store_retire) */
	}
	return 0;
}

static int read_header(int fd, ltx_header *h, lx_err *err)
{
	uint8_t raw[LTX_HEADER_SIZE];
	if (pread(fd, raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return lx_err_set(err, EBADMSG, "received LTX shorter than its header");
	return ltx_header_decode(raw, h, err);
}

/* After the files changed: caches, shm, locks, listeners. */
static void publish(database *db, const page_set *changed, int whole, int names)
{
	uint32_t page_size, n_pages;
	int wal_mode;
	pthread_mutex_lock(&db->mu);
	page_size = db->page_size;
	n_pages = db->n_pages;
	wal_mode = db->wal_mode;
	pthread_mutex_unlock(&db->mu);
	if (names)
		tell_names(db);
	if (whole || changed == NULL || changed->oom)
		db_tell_inval(db, DBF_DB, 0, 0);
	else
		inval_pages(db, changed, page_size);
	/* An absorbed WAL was emptied behind the kernel's cached size. */
	db_tell_inval(db, DBF_WAL, 0, 0);
	if (wal_mode)
		reset_walindex(db, page_size, n_pages);
	pthread_mutex_lock(&db->mu);
	release_locks_locked(db);
	pthread_mutex_unlock(&db->mu);
	db_events_notify(db->opt.events);
}

/* 1 if the received file rewrites page 1 out of WAL mode.  Pages are in
 * ascending order, so page 1, when present, is the first frame. */
static int leaves_wal_mode(int fd)
{
	uint8_t frame[LTX_PAGE_HEADER_SIZE + 19];
	if (pread(fd, frame, sizeof(frame), LTX_HEADER_SIZE) != (ssize_t)sizeof(frame))
		return 1;   /* cannot tell: take every lock */
	return lx_get_be32(frame) == 1 && frame[LTX_PAGE_HEADER_SIZE + 18] != 2;
}

/* The transaction can go to the WAL: the database is in WAL mode and stays
 * so, with its page size. */
static int wal_path(database *db, int fd, const ltx_header *h)
{
	int ok;
	if (h->commit == 0 || ltx_header_is_snapshot(h) || leaves_wal_mode(fd))
		return 0;
	pthread_mutex_lock(&db->mu);
	ok = db->opt.replica_wal && db->wal_mode && !db->failed && db->log != NULL &&
	     db->file[DBF_DB] != NULL &&
	     db->page_size == h->page_size && db->n_pages > 0;
	pthread_mutex_unlock(&db->mu);
	return ok;
}

static void release_write_lock(database *db)
{
	pthread_mutex_lock(&db->mu);
	release_locks_locked(db);
	pthread_mutex_unlock(&db->mu);
}

/*
 * WAL mode: append the transaction to the replica's WAL as a local SQLite
 * writer would (replica_wal.h); readers keep their snapshots and the
 * applier waits only for the WRITE lock, which readers take only to
 * rebuild a lost index.  Returns 1 when the WAL cannot take it (the caller
 * applies it to the database file under every lock).
 */
static int apply_to_wal(database *db, int fd, uint64_t len, const ltx_header *h,
			const db_logged_hook *logged, lx_err *err)
{
	apply_target t;
	rwal_txn x;
	txlog_anchor anchor;
	int rc, had_wal;

	acquire_locks(db, LOCKS_WRITE);
	if (rwal_prepare(db) < 0) {
		release_write_lock(db);
		return 1;
	}
	rc = db_lock_files(db, err);
	had_wal = db->file[DBF_WAL] != NULL;
	if (rc == 0 && db->retired)
		rc = lx_err_set(err, ENOENT, "db %s: deleted while its transaction arrived", db->name);
	if (rc == 0)
		rc = check_continues(db, h, err);
	if (rc == 0) {
		db_apply_target_locked(db, &t);
		rc = rwal_begin_locked(db, &x, &t, err);
	} else {
		memset(&x, 0, sizeof(x));
	}
	if (rc == 0) {
		anchor = rwal_anchor(db, h->page_count);
		rc = log_received(db, fd, len, h, &anchor, err);
	}
	if (rc == 0) {
		LX_FAILPOINT("replica.apply.after_log");
		t.verified = 1;      /* the receiver verified every byte */
		rc = apply_ltx_fd(&t, fd, len, err);
		db_apply_target_taken(db, &t);
		if (rc == 0)
			rc = rwal_commit_locked(&x, h->commit, err);
		if (rc < 0) {
			/* The log has it, the WAL holds no commit of it: the next
			 * start re-applies it, or the primary sends a snapshot. */
			db_fail_locked(db, "applying TXID %" PRIu64 " to the WAL: %s", h->min_txid,
				       err->msg);
			rwal_forget(db);
		} else {
			take_position_locked(db, &t, h);
		}
	}
	pthread_mutex_unlock(&db->mu);
	if (rc == 0 && logged != NULL)
		logged->fn(logged->ctx, db, t.txid, t.checksum);
	if (rc == 0)
		rwal_publish(&x);
	else
		rwal_abort(&x);
	release_write_lock(db);
	if (rc == 0)
		rwal_checkpoint(db, RWAL_CKPT_FRAMES);
	if (!had_wal)
		tell_names(db);
	db_events_notify(db->opt.events);
	return rc;
}

int db_apply_remote(database *db, int fd, uint64_t len, const db_logged_hook *logged,
		    lx_err *err)
{
	ltx_header h;
	uint64_t txid = 0, checksum = 0;
	page_set changed = { 0 };
	uint32_t old_pages;
	enum apply_locks which;
	int created = 0, whole = 0, rc = read_header(fd, &h, err);

	if (rc < 0)
		return rc;
	if (wal_path(db, fd, &h)) {
		rc = apply_to_wal(db, fd, len, &h, logged, err);
		if (rc != 1)
			return rc;
		lx_debug(db->name, "replica: TXID %" PRIu64 " goes to the database file under every lock",
			 h.min_txid);
		whole = 1;   /* the WAL's pages are copied into the file too */
	}
	which = leaves_wal_mode(fd) ? LOCKS_ALL : LOCKS_SHM;   /* the file, not db->mu */
	pthread_mutex_lock(&db->mu);
	if (!db->wal_mode)
		which = LOCKS_ALL;
	pthread_mutex_unlock(&db->mu);
	acquire_locks(db, which);
	rc = db_lock_files(db, err);
	old_pages = db->n_pages;
	if (rc == 0 && db->retired)
		rc = lx_err_set(err, ENOENT, "db %s: deleted while its transaction arrived", db->name);
	if (rc == 0)
		rc = apply_locked(db, fd, len, &h, &changed, &created, err);
	if (rc == 0) {
		txid = db->txid;
		checksum = db->checksum;
	}
	pthread_mutex_unlock(&db->mu);
	if (rc == 0 && logged != NULL)
		logged->fn(logged->ctx, db, txid, checksum);
	publish(db, &changed, whole || rc < 0 || h.commit != old_pages, created || h.commit == 0);
	free(changed.v);
	return rc;
}

/* ---- snapshots ------------------------------------------------------------ */

static int take_image_locked(database *db, int image_fd, lx_err *err)
{
	db_assert_locked(db);
	backing *b;
	if (renameat(db->dirfd, "snapshot.tmp", db->dirfd, db_file_names[DBF_DB]) < 0)
		return lx_err_sys(err, errno, "db %s: install snapshot", db->name);
	db->dir_dirty = 1;
	if (db->file[DBF_DB] != NULL) {
		/* Every open handle shares this descriptor: point it at the new
		 * file in one step. */
		if (dup3(image_fd, db->file[DBF_DB]->fd, O_CLOEXEC) < 0)
			return lx_err_sys(err, errno, "db %s: install snapshot", db->name);
		return 0;
	}
	b = malloc(sizeof(*b));
	if (b == NULL || (b->fd = fcntl(image_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(b);
		return lx_err_sys(err, errno ? errno : ENOMEM, "db %s: install snapshot", db->name);
	}
	b->refs = 1;
	db->file[DBF_DB] = b;
	db_recount_files_locked(db);
	return 0;
}

static int install_locked(database *db, int image_fd, const ltx_header *h, uint64_t post,
			  uint64_t *page_ck, lx_err *err)
{
	db_assert_locked(db);
	int rc = db_absorb_wal_locked(db, 0, err);
	rwal_forget(db);
	db_preserve_locked(db, DBF_DB, 0, UINT64_MAX);   /* the file is replaced */
	if (rc == 0)
		rc = take_image_locked(db, image_fd, err);
	if (rc == 0)
		rc = txlog_reset_to(db->log, h->max_txid, post, err);
	if (rc == 0 && fsync(db->dirfd) < 0)
		rc = lx_err_sys(err, errno, "db %s: fsync directory", db->name);
	if (rc < 0) {
		free(page_ck);
		db_fail_locked(db, "installing a snapshot: %s", err->msg);
		return rc;
	}
	free(db->page_ck);
	db->page_ck = page_ck;
	db->page_ck_cap = h->commit;
	db->txid = h->max_txid;
	db->checksum = post;
	db->page_size = h->page_size;
	db->n_pages = h->commit;
	db->last_commit_ms = h->timestamp_ms;
	db->wal_mode = read_wal_mode(db);
	db->failed = 0;
	db->failure[0] = '\0';
	db->untracked = 0;
	db_dirty_clear_locked(db);
	db_wal_reset_locked(db);
	return 0;
}

int db_install_snapshot(database *db, int image_fd, const ltx_header *h,
			uint64_t post_checksum, uint64_t *page_ck, lx_err *err)
{
	int rc;
	acquire_locks(db, LOCKS_ALL);
	rc = db_lock_files(db, err);
	if (rc == 0 && db->retired)
		rc = lx_err_set(err, ENOENT, "db %s: deleted while its snapshot arrived", db->name);
	if (rc == 0)
		rc = install_locked(db, image_fd, h, post_checksum, page_ck, err);
	else
		free(page_ck);
	pthread_mutex_unlock(&db->mu);
	publish(db, NULL, 1, 1);
	if (rc == 0)
		lx_info(db->name, "installed snapshot at TXID %" PRIu64 " (%u pages, checksum %016" PRIx64 ")",
			h->max_txid, h->commit, post_checksum);
	return rc;
}

int db_remove_remote(database *db, lx_err *err)
{
	int rc, retired;
	acquire_locks(db, LOCKS_ALL);
	rc = db_lock_files(db, err);
	retired = db->retired;               /* nothing of it is left */
	if (rc == 0 && !retired) {
		remove_files_locked(db);
		rc = db->log ? txlog_reset_to(db->log, 0, 0, err) :
			       lx_err_set(err, EIO, "db %s: its log is not open", db->name);
		db->txid = 0;
		db->checksum = LTX_CHECKSUM_FLAG;
		db->page_size = 0;
		db->n_pages = 0;
		db->wal_mode = 0;
		db->failed = 0;
		db->failure[0] = '\0';
		if (rc == 0 && fsync(db->dirfd) < 0)
			rc = lx_err_sys(err, errno, "db %s: fsync directory", db->name);
		db->retire_wanted = rc == 0;   /* the store frees the rest (store_retire) */
	}
	pthread_mutex_unlock(&db->mu);
	publish(db, NULL, 1, 1);
	rwal_forget(db);
	rwal_detach(db);   /* its shm is gone */
	if (rc == 0 && !retired)
		lx_info(db->name, "removed: the primary has no such database");
	return rc;
}

void db_replica_tick(database *db)
{
	rwal_checkpoint(db, 1);
}
