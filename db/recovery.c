/*
 * recovery.c - opening a database: bring its files to exactly the state of
 * its log, and closing it cleanly so the next open is fast.
 *
 * Clean start: the previous run checkpointed the WAL into the database file
 * and saved the page checksums in `state` along with the position and the
 * database file's identity (size, mtime, inode).  If all of that matches,
 * nothing is read.  The file is removed once loaded, so a crash later
 * cannot make a stale copy look valid.
 *
 * After a crash (docs/design.md, "Crash recovery"):
 *   1. a hot rollback journal is rolled back by SQLite itself;
 *   2. the database file's page checksums are computed (one full read);
 *   3. WAL frames the log already holds (up to the newest record's WAL
 *      anchor) are applied to that state in memory;
 *   4. the result must equal the log's newest position; if it equals an
 *      older one, the newer logged transactions are re-applied to the
 *      database file (the database lost writes the log kept); if it equals
 *      none, the database is reported and not served;
 *   5. committed WAL frames beyond the log are captured as new transactions
 *      (SQLite would treat them as committed, so we do too);
 *   6. the WAL is checkpointed into the database file and removed.
 * A database file with no log at all becomes TXID 1, a full snapshot.
 */
#include "db/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/bytes.h"
#include "base/log.h"
#include "db/apply.h"
#include "db/replica_wal.h"
#include "ltx/ltx.h"

#define STATE_MAGIC 0x4c545853u  /* "LTXS" */
#define STATE_VERSION 1u
#define CHECKSUM_CHUNK (4u << 20)

typedef struct state_header {
	uint32_t magic, version;
	uint64_t txid, checksum;
	uint32_t page_size, n_pages;
	uint32_t wal_mode, reserved;
	uint64_t db_size, db_mtime_ns, db_ino;
} state_header;

/* ---- page checksums of the database file ------------------------------- */

int db_checksum_file_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	uint8_t hdr[100], *chunk;
	struct stat st;
	uint32_t ps, n_in_header;
	uint64_t n;
	int fd;

	db->n_pages = 0;
	db->checksum = LTX_CHECKSUM_FLAG;
	db->wal_mode = 0;
	if (db->file[DBF_DB] == NULL)
		return 0;
	fd = db->file[DBF_DB]->fd;
	if (fstat(fd, &st) < 0)
		return lx_err_sys(err, errno, "db %s: fstat", db->name);
	if (st.st_size == 0)
		return 0;
	if (st.st_size < 100 || db_pread_page(fd, hdr, sizeof(hdr), 0) < 0 ||
	    db_parse_header(hdr, &ps, &n_in_header) < 0)
		return lx_err_set(err, EBADMSG, "db %s: not a SQLite database", db->name);
	n = n_in_header ? n_in_header : (uint64_t)st.st_size / ps;
	if (n > LTX_MAX_PGNO || db_page_ck_reserve_locked(db, (uint32_t)n) < 0)
		return lx_err_set(err, ENOMEM, "db %s: too many pages", db->name);
	chunk = malloc(CHECKSUM_CHUNK);
	if (chunk == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	db->page_size = ps;
	db->wal_mode = hdr[18] == 2;
	if (db->page_ck != NULL)
		memset(db->page_ck, 0, db->page_ck_cap * sizeof(uint64_t));
	for (uint64_t first = 1; first <= n;) {
		uint64_t count = CHECKSUM_CHUNK / ps;
		if (first + count - 1 > n)
			count = n - first + 1;
		if (db_pread_page(fd, chunk, (uint32_t)(count * ps), (first - 1) * ps) < 0) {
			free(chunk);
			return lx_err_sys(err, errno, "db %s: read", db->name);
		}
		db->checksum = ltx_checksum_pages(db->checksum, (uint32_t)first, chunk,
						  (uint32_t)count, ps, db->page_ck + first - 1);
		first += count;
	}
	free(chunk);
	db->n_pages = (uint32_t)n;
	return 0;
}

/* ---- state file (clean shutdown) --------------------------------------- */

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

static void save_state_locked(database *db)
{
	db_assert_locked(db);
	state_header h;
	struct stat st;
	XXH64_hash_t sum;
	size_t bytes = (size_t)db->n_pages * sizeof(uint64_t);
	int fd;

	if (db->failed || db->log == NULL || db->untracked || db->file[DBF_DB] == NULL ||
	    fstat(db->file[DBF_DB]->fd, &st) < 0)
		return;
	memset(&h, 0, sizeof(h));
	h.magic = STATE_MAGIC;
	h.version = STATE_VERSION;
	h.txid = db->txid;
	h.checksum = db->checksum;
	h.page_size = db->page_size;
	h.n_pages = db->n_pages;
	h.wal_mode = (uint32_t)db->wal_mode;
	h.db_size = (uint64_t)st.st_size;
	h.db_mtime_ns = mtime_ns(&st);
	h.db_ino = (uint64_t)st.st_ino;
	sum = XXH3_64bits_withSeed(db->page_ck, bytes, XXH3_64bits(&h, sizeof(h)));
	fd = openat(db->dirfd, "state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
	    (bytes == 0 || write(fd, db->page_ck, bytes) == (ssize_t)bytes) &&
	    write(fd, &sum, sizeof(sum)) == (ssize_t)sizeof(sum) && fsync(fd) == 0 &&
	    renameat(db->dirfd, "state.tmp", db->dirfd, "state") == 0)
		fsync(db->dirfd);
	close(fd);
}

/*
 * Load `state` if it describes exactly the current log tail and database
 * file.  Returns 1 if loaded, 0 if not usable.  Removes it either way.
 */
static int load_state_locked(database *db)
{
	db_assert_locked(db);
	state_header h;
	struct stat st;
	const txlog_entry *tail = txlog_last(db->log);
	XXH64_hash_t sum, want;
	uint64_t log_txid, log_checksum;
	int fd = openat(db->dirfd, "state", O_RDONLY | O_CLOEXEC), ok = 0;

	if (fd < 0)
		return 0;
	if (tail != NULL) {
		log_txid = tail->hdr.max_txid;
		log_checksum = tail->post_checksum;
	} else {
		txlog_base(db->log, &log_txid, &log_checksum);   /* a replica's snapshot */
	}
	if (read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) && h.magic == STATE_MAGIC &&
	    h.version == STATE_VERSION && log_txid != 0 && log_txid == h.txid &&
	    log_checksum == h.checksum && db->file[DBF_DB] != NULL &&
	    fstat(db->file[DBF_DB]->fd, &st) == 0 && (uint64_t)st.st_size == h.db_size &&
	    mtime_ns(&st) == h.db_mtime_ns && (uint64_t)st.st_ino == h.db_ino &&
	    db_page_ck_reserve_locked(db, h.n_pages) == 0) {
		size_t bytes = (size_t)h.n_pages * sizeof(uint64_t);
		if ((bytes == 0 || read(fd, db->page_ck, bytes) == (ssize_t)bytes) &&
		    read(fd, &sum, sizeof(sum)) == (ssize_t)sizeof(sum)) {
			want = XXH3_64bits_withSeed(db->page_ck, bytes, XXH3_64bits(&h, sizeof(h)));
			ok = sum == want;
		}
	}
	close(fd);
	unlinkat(db->dirfd, "state", 0);
	fsync(db->dirfd);
	if (!ok) {
		if (db->page_ck != NULL)
		memset(db->page_ck, 0, db->page_ck_cap * sizeof(uint64_t));
		return 0;
	}
	db->txid = h.txid;
	db->checksum = h.checksum;
	db->page_size = h.page_size;
	db->n_pages = h.n_pages;
	db->wal_mode = (int)h.wal_mode;
	return 1;
}

/* ---- recovery steps ------------------------------------------------------ */

static int open_existing_files_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	for (int f = 0; f < DBF_COUNT; f++) {
		struct stat st;
		if (db->file[f] != NULL)
			continue;
		if (fstatat(db->dirfd, db_file_names[f], &st, 0) < 0)
			continue;
		int rc = db_open_backing_locked(db, (enum db_file)f, 0, 0, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void close_file_locked(database *db, enum db_file f)
{
	db_assert_locked(db);
	backing_unref(db->file[f]);
	db->file[f] = NULL;
}

static int journal_is_hot(database *db)
{
	static const uint8_t magic[8] = { 0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7 };
	uint8_t buf[8];
	if (db->file[DBF_JOURNAL] == NULL)
		return 0;
	return pread(db->file[DBF_JOURNAL]->fd, buf, 8, 0) == 8 && memcmp(buf, magic, 8) == 0;
}

/* Let SQLite roll back a hot journal (it knows every journal format detail). */
static int rollback_hot_journal_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	char path[4096];
	sqlite3 *conn = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/database", db->dir);
	rc = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(conn, "PRAGMA schema_version", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int r = lx_err_set(err, EIO, "db %s: rolling back the hot journal: %s", db->name,
				   conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
		sqlite3_close(conn);
		return r;
	}
	sqlite3_close(conn);
	lx_info(db->name, "rolled back a hot journal");
	for (int f = 0; f < DBF_COUNT; f++)
		if (db->file[f] != NULL)
			close_file_locked(db, (enum db_file)f);
	return open_existing_files_locked(db, err);
}

/* The end of the WAL the log already holds: the newest record's anchor if
 * it names this WAL (same salts), else its first frame. */
static uint64_t logged_wal_end(const database *db)
{
	for (size_t i = db->log->n; i-- > 0;) {
		const txlog_anchor *a = &db->log->ents[i].anchor;
		if (!a->wal_end)
			continue;
		if (a->salt1 == db->wal.hdr.salt1 && a->salt2 == db->wal.hdr.salt2)
			return a->wal_end;
		break;
	}
	return WAL_HEADER_SIZE;
}

/* Apply one committed WAL transaction (frames in WAL order) to the state. */
static int apply_wal_txn_locked(database *db, const txn_page *v, size_t n,
				uint32_t commit)
{
	db_assert_locked(db);
	uint32_t lock = ltx_lock_pgno(db->wal.hdr.page_size), top = db->n_pages;
	for (size_t i = 0; i < n; i++) {
		uint32_t pgno = v[i].pgno;
		if (pgno == lock)
			continue;
		if (db_page_ck_reserve_locked(db, pgno) < 0)
			return -ENOMEM;
		db->checksum = ltx_checksum_update(db->checksum, db->page_ck[pgno - 1], v[i].ck);
		db->page_ck[pgno - 1] = v[i].ck;
		if (pgno > top)
			top = pgno;
	}
	for (uint32_t p = commit + 1; p <= top; p++) {
		db->checksum = ltx_checksum_update(db->checksum, db->page_ck[p - 1], 0);
		db->page_ck[p - 1] = 0;
	}
	db->n_pages = commit;
	return db_wal_remember_locked(db, v, n);
}

/*
 * Apply to the in-memory state the WAL's committed frames up to the newest
 * one the log holds.  Leaves the WAL capture state just past them, so
 * db_capture_wal_locked() continues with the frames the log lacks.
 */
static int apply_logged_wal_prefix_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	uint8_t hdr[WAL_HEADER_SIZE], *frame = NULL;
	txn_page *txn = NULL;
	size_t n = 0, cap = 0;
	uint64_t end;
	wal_cksum chain;
	uint32_t frame_size;
	int rc = 0;

	db_wal_reset_locked(db);
	if (db->file[DBF_WAL] == NULL ||
	    pread(db->file[DBF_WAL]->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    wal_header_parse(hdr, &w->hdr, NULL) < 0)
		return 0;
	if (db->page_size && db->n_pages && w->hdr.page_size != db->page_size)
		return lx_err_set(err, EBADMSG, "db %s: WAL page size %u != database page size %u",
				  db->name, w->hdr.page_size, db->page_size);
	db->page_size = w->hdr.page_size;
	w->valid = 1;
	w->processed = WAL_HEADER_SIZE;
	w->chain = chain = (wal_cksum){ w->hdr.cksum1, w->hdr.cksum2 };
	frame_size = WAL_FRAME_HEADER_SIZE + w->hdr.page_size;
	end = logged_wal_end(db);
	frame = malloc(frame_size);
	if (frame == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	for (uint64_t off = WAL_HEADER_SIZE; off + frame_size <= end && rc == 0; off += frame_size) {
		wal_frame_header f;
		if (db_pread_page(db->file[DBF_WAL]->fd, frame, frame_size, off) < 0 ||
		    !wal_frame_valid(&w->hdr, frame, &chain))
			break;
		wal_frame_header_parse(frame, &f);
		if (n == cap) {
			txn_page *v = realloc(txn, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (v == NULL) {
				rc = lx_err_set(err, ENOMEM, "out of memory");
				break;
			}
			txn = v;
		}
		txn[n++] = (txn_page){ f.pgno,
			ltx_page_checksum(f.pgno, frame + WAL_FRAME_HEADER_SIZE, w->hdr.page_size),
			SRC_WAL_FILE, off + WAL_FRAME_HEADER_SIZE };
		if (f.commit == 0)
			continue;
		if (apply_wal_txn_locked(db, txn, n, f.commit) < 0)
			rc = lx_err_set(err, ENOMEM, "out of memory");
		if (f.pgno == 1)
			db->wal_mode = frame[WAL_FRAME_HEADER_SIZE + 18] == 2;
		n = 0;
		w->processed = off + frame_size;
		w->chain = chain;
	}
	free(frame);
	free(txn);
	return rc;
}

/* Copy the WAL's captured pages into the database file, cut the file to
 * the logical size and make it durable. */
static int copy_wal_pages_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	uint8_t *page;
	int rc = 0;

	db_preserve_locked(db, DBF_DB, 0, UINT64_MAX);
	db_preserve_locked(db, DBF_WAL, 0, UINT64_MAX);
	if (db->file[DBF_DB] == NULL && w->n_touched > 0) {
		rc = db_open_backing_locked(db, DBF_DB, O_CREAT, 0644, err);
		if (rc < 0)
			return rc;
	}
	page = malloc(w->valid ? w->hdr.page_size : 1);
	if (page == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n_touched && rc == 0; i++) {
		uint32_t pgno = w->touched[i], ps = w->hdr.page_size;
		if (pgno > db->n_pages)
			continue;
		rc = db_read_page_locked(db, pgno, page, err);
		if (rc == 0) {
			int wrc = lx_pwrite_all(db->file[DBF_DB]->fd, page, ps, (uint64_t)(pgno - 1) * ps);
			if (wrc < 0)
				rc = lx_err_sys(err, -wrc, "db %s: checkpoint page %u", db->name, pgno);
		}
	}
	free(page);
	if (rc == 0 && db->file[DBF_DB] != NULL && db->page_size) {
		struct stat st;
		uint64_t size = (uint64_t)db->n_pages * db->page_size;
		if (fstat(db->file[DBF_DB]->fd, &st) == 0 && (uint64_t)st.st_size > size &&
		    ftruncate(db->file[DBF_DB]->fd, (off_t)size) < 0)
			rc = lx_err_sys(err, errno, "db %s: truncate", db->name);
		if (rc == 0 && fsync(db->file[DBF_DB]->fd) < 0)
			rc = lx_err_sys(err, errno, "db %s: fsync", db->name);
	}
	return rc;
}

/*
 * Copy the WAL's captured pages into the database file, cut the file to the
 * logical size, make it durable and remove the WAL and the shm.  Only while
 * no client can use the database (start-up, shutdown).
 */
int db_checkpoint_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	int rc;

	if (db->file[DBF_WAL] == NULL && db->file[DBF_SHM] == NULL)
		return 0;
	rc = copy_wal_pages_locked(db, err);
	/* A failed copy (a full disk) leaves the WAL, and what the capture
	 * knows of it, as they were: forgetting it would make the next
	 * capture log the whole WAL again. */
	if (rc < 0)
		return rc;
	for (int f = DBF_WAL; f <= DBF_SHM && rc == 0; f++) {
		if (db->file[f] == NULL)
			continue;
		if (unlinkat(db->dirfd, db_file_names[f], 0) < 0)
			rc = lx_err_sys(err, errno, "db %s: remove %s", db->name, db_file_names[f]);
		else
			close_file_locked(db, (enum db_file)f);
	}
	db_wal_reset_locked(db);
	if (rc == 0 && fsync(db->dirfd) < 0)
		rc = lx_err_sys(err, errno, "db %s: fsync directory", db->name);
	return rc;
}

int db_absorb_wal_locked(database *db, int keep_pages, lx_err *err)
{
	db_assert_locked(db);
	struct stat st;
	int rc = 0;
	if (db->file[DBF_WAL] == NULL ||
	    (fstat(db->file[DBF_WAL]->fd, &st) == 0 && st.st_size == 0 && !db->wal.n_touched))
		return 0;
	if (keep_pages)
		rc = copy_wal_pages_locked(db, err);
	else
		db_preserve_locked(db, DBF_WAL, 0, UINT64_MAX);
	if (rc == 0 && ftruncate(db->file[DBF_WAL]->fd, 0) < 0)
		rc = lx_err_sys(err, errno, "db %s: empty the WAL", db->name);
	db_wal_reset_locked(db);
	if (rc == 0)
		lx_info(db->name, "%s this node's WAL (it follows a primary now)",
			keep_pages ? "checkpointed and emptied" : "emptied");
	return rc;
}

/* Re-apply logged transactions after `index` to the database file. */
static int reapply_log_locked(database *db, size_t index, lx_err *err)
{
	db_assert_locked(db);
	apply_target t;
	uint64_t base_ck;
	int rc = db_checkpoint_locked(db, err);
	if (rc < 0)
		return rc;
	db_apply_target_locked(db, &t);
	if (index > 0)
		t.txid = db->log->ents[index - 1].hdr.max_txid;
	else
		txlog_base(db->log, &t.txid, &base_ck);
	for (size_t i = index; i < db->log->n && rc == 0; i++) {
		const txlog_entry *e = &db->log->ents[i];
		uint8_t *buf = malloc(e->length);
		if (buf == NULL)
			rc = lx_err_set(err, ENOMEM, "out of memory");
		else
			rc = txlog_read(db->log, e, buf, err);
		if (rc == 0)
			rc = apply_ltx(&t, buf, e->length, err);
		free(buf);
	}
	db_apply_target_taken(db, &t);
	if (rc < 0)
		return lx_err_wrap(err, "db %s: re-applying the log", db->name);
	db->page_size = t.page_size;
	db->n_pages = t.n_pages;
	db->checksum = t.checksum;
	db->txid = t.txid;
	if (fsync(t.fd) < 0)
		return lx_err_sys(err, errno, "db %s: fsync", db->name);
	lx_info(db->name, "re-applied TXID %" PRIu64 "..%" PRIu64 " from the log to the database file",
		db->log->ents[index].hdr.min_txid, t.txid);
	return 0;
}

/* Match the computed state with the log: sets db->txid or fails the db. */
static int reconcile_with_log_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	const txlog_entry *tail = txlog_last(db->log);
	uint64_t have = db->checksum, base_txid, base_checksum;

	txlog_base(db->log, &base_txid, &base_checksum);
	if (tail == NULL && base_txid != 0 && base_checksum != have) {
		db_fail_locked(db, "database checksum %016" PRIx64 " (%u pages) is not the "
			       "snapshot's %016" PRIx64 " at TXID %" PRIu64,
			       have, db->n_pages, base_checksum, base_txid);
		return 0;
	}
	if (tail == NULL) {
		db->txid = base_txid;
		return 0;
	}
	if (tail->post_checksum == have) {
		db->txid = tail->hdr.max_txid;
		return 0;
	}
	for (size_t i = db->log->n; i-- > 0;) {
		const txlog_entry *e = &db->log->ents[i];
		if (e->hdr.pre_checksum == have && (i == 0 || db->log->ents[i - 1].post_checksum == have)) {
			db->txid = i ? db->log->ents[i - 1].hdr.max_txid : base_txid;
			return reapply_log_locked(db, i, err);
		}
	}
	db_fail_locked(db, "database checksum %016" PRIx64 " (%u pages) matches no position in the log "
		       "(log at TXID %" PRIu64 ", checksum %016" PRIx64 ")",
		       have, db->n_pages, tail->hdr.max_txid, tail->post_checksum);
	return 0;
}

/* A database file that exists without any history: log it as TXID 1. */
static int import_unlogged_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	int rc;
	if (db->txid != 0 || db->n_pages == 0 || db->file[DBF_DB] == NULL || db->failed)
		return 0;
	if (db->readonly) {
		/* A replica's history comes from the primary only. */
		db_fail_locked(db, "the database file has no history on this replica");
		return 0;
	}
	db->dirty_full = 1;
	rc = db_capture_rollback_locked(db, err);
	if (rc == 0)
		lx_info(db->name, "existing database file logged as TXID %" PRIu64, db->txid);
	return rc;
}

static int recover_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	int rc = 0;
	const txlog_entry *tail = txlog_last(db->log);

	if (!db->wal.valid && db->file[DBF_WAL] == NULL && !journal_is_hot(db) &&
	    load_state_locked(db))
		return 0;
	if (journal_is_hot(db))
		rc = rollback_hot_journal_locked(db, err);
	if (rc == 0) {
		rc = db_checksum_file_locked(db, err);
		if (rc == -EBADMSG) {
			db_fail_locked(db, "%s", err->msg);
			return 0;
		}
	}
	if (rc == 0)
		rc = apply_logged_wal_prefix_locked(db, err);
	if (rc == 0)
		rc = reconcile_with_log_locked(db, err);
	if (rc == 0 && !db->failed)
		rc = db_capture_wal_locked(db, err);
	if (rc == 0 && !db->failed) {
		rc = db_checkpoint_locked(db, err);
		if (rc < 0 && db_storage_errno(-rc) && db->file[DBF_WAL] != NULL) {
			/* Every committed frame is in the log, and SQLite reads
			 * the WAL as it is: serve it and checkpoint later. */
			lx_warn(db->name, "WAL kept, every frame logged: %s", err->msg);
			rc = 0;
		}
	}
	if (rc == 0 && !db->failed)
		rc = import_unlogged_locked(db, err);
	if (rc == 0 && db->file[DBF_DB] == NULL && tail && tail->hdr.commit > 0 && !db->failed)
		db_fail_locked(db, "database file is missing but the log holds %u pages at TXID %" PRIu64,
			       tail->hdr.commit, tail->hdr.max_txid);
	if (rc == 0)
		rc = txlog_sync(db->log, err);
	return rc;
}

int db_retry_recovery_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	char was[sizeof(db->failure)];
	int rc;
	snprintf(was, sizeof(was), "%s", db->failure);
	db->failed = 0;
	db->failure[0] = '\0';
	rc = recover_locked(db, err);
	if (rc < 0) {
		/* Still failing: not served, and said once already. */
		db->failed = 1;
		snprintf(db->failure, sizeof(db->failure), "recovery: %.480s", err->msg);
		return rc;
	}
	db->recovery_pending = 0;
	if (!db->failed)
		lx_info(db->name, "recovered at TXID %" PRIu64 ", served again (it was not: %s)",
			db->txid, was);
	return 0;
}

/* ---- open / close -------------------------------------------------------- */

int db_open(database **out, const char *name, const char *dir,
	    const db_options *opt, lx_err *err)
{
	database *db = calloc(1, sizeof(*db));
	char logdir[4096];
	lx_err lerr;
	int rc;

	*out = NULL;
	if (db == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	db_mutex_init(&db->mu);
	for (int f = 0; f < DBF_COUNT; f++)
		lock_table_init(&db->locks[f]);
	db->dirfd = -1;
	db->opt = *opt;
	db->readonly = opt->readonly;
	db->checksum = LTX_CHECKSUM_FLAG;
	db->name = strdup(name);
	db->dir = strdup(dir);
	if (db->name == NULL || db->dir == NULL) {
		db_close(db);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
	    (db->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = lx_err_sys(err, errno, "db %s: open %s", name, dir);
		db_close(db);
		return rc;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	pthread_mutex_lock(&db->mu);
	db->files_open = 1;
	rc = open_existing_files_locked(db, err);
	if (rc == 0 && txlog_open(&db->log, logdir, &lerr) < 0)
		db_fail_locked(db, "%s", lerr.msg);
	if (db->log != NULL && opt->segment_max)
		txlog_set_segment_max(db->log, opt->segment_max);
	if (db->log != NULL)
		txlog_set_segment_max_age(db->log, opt->segment_max_age_ms);
	if (rc == 0 && db->log != NULL) {
		rc = recover_locked(db, err);
		if (rc < 0 && db_storage_errno(-rc)) {
			/* A full or failing disk must not keep the node from
			 * starting: this database waits, unserved, and
			 * db_retry_logging() runs the recovery again. */
			db_fail_locked(db, "recovery: %s", err->msg);
			db->recovery_pending = 1;
			rc = 0;
		}
	}
	if (rc == 0)    /* counted from now on; may close it again at once */
		rc = db_use_files_locked(db, err);
	pthread_mutex_unlock(&db->mu);
	if (rc < 0) {
		db_close(db);
		return rc;
	}
	if (!db->failed)
		lx_info(db->name, "open at TXID %" PRIu64 ", %u pages of %u bytes, checksum %016" PRIx64,
			db->txid, db->n_pages, db->page_size, db->checksum);
	*out = db;
	return 0;
}

void db_close(database *db)
{
	lx_err err;
	if (db == NULL)
		return;
	rwal_free(db);   /* a replica's shm mapping; the WAL is checkpointed below */
	pthread_mutex_lock(&db->mu);
	if (db->log != NULL && !db->failed && db_use_files_locked(db, &err) < 0)
		lx_error(db->name, "clean shutdown: %s", err.msg);
	else if (db->log != NULL && !db->failed) {
		if (db_capture_wal_locked(db, &err) < 0 || db_checkpoint_locked(db, &err) < 0 ||
		    txlog_sync(db->log, &err) < 0)
			lx_error(db->name, "clean shutdown: %s", err.msg);
		else
			save_state_locked(db);
	}
	for (int f = 0; f < DBF_COUNT; f++) {
		backing_unref(db->file[f]);
		lock_table_free(&db->locks[f]);
	}
	txlog_close(db->log);
	if (db->opt.handles != NULL)
		handle_cache_forget(db->opt.handles, db);
	pthread_mutex_unlock(&db->mu);
	pthread_mutex_destroy(&db->mu);
	if (db->dirfd >= 0)
		close(db->dirfd);
	free(db->page_ck);
	free(db->dirty_bits);
	free(db->dirty);
	free(db->wal.frame_of);
	free(db->wal.touched);
	free(db->name);
	free(db->dir);
	free(db);
}
