/*
 * state.c - the state of one database that every file of the layer reads
 * and changes (see state.h): its descriptors and backing files, its page
 * checksums, the logical content of a page, the failure flag and the dirty
 * set of a rollback transaction.
 */
#include "db/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/log.h"
#include "db/apply.h"
#include "ltx/ltx.h"

const char *const db_file_names[DBF_COUNT] = {
	"database", "database-journal", "database-wal", "database-shm"
};

/* ---- the database's mutex and its checked contract (state.h) ------------- */

void db_mutex_init(pthread_mutex_t *mu)
{
#ifdef NDEBUG
	pthread_mutex_init(mu, NULL);
#else
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(mu, &a);
	pthread_mutexattr_destroy(&a);
#endif
}

#ifndef NDEBUG
void db_check_locked(const database *db, const char *func)
{
	static const struct timespec passed = { 0, 0 };  /* the epoch: long gone */
	pthread_mutex_t *mu = (pthread_mutex_t *)&db->mu;
	int rc = pthread_mutex_timedlock(mu, &passed);
	if (rc == EDEADLK)
		return;             /* held by this thread: the contract holds */
	if (rc == 0)
		pthread_mutex_unlock(mu);
	lx_error(db->name, "lock contract broken: %s() called without the database's mutex "
		 "(%s)", func, rc == 0 ? "nobody held it" : rc == ETIMEDOUT ?
		 "another thread holds it" : strerror(rc));
	abort();
}
#endif

/* ---- page state and small helpers ---------------------------------------- */

void db_apply_target_locked(database *db, apply_target *t)
{
	db_assert_locked(db);
	memset(t, 0, sizeof(*t));
	t->fd = db->file[DBF_DB]->fd;
	t->page_size = db->page_size;
	t->n_pages = db->n_pages;
	t->checksum = db->checksum;
	t->txid = db->txid;
	t->page_ck = db->page_ck;
	t->page_ck_cap = db->page_ck_cap;
}

void db_apply_target_taken(database *db, const apply_target *t)
{
	db->page_ck = t->page_ck;
	db->page_ck_cap = t->page_ck_cap;
}

int64_t db_now_ms(void)
{
	return lx_wall_ms();
}

backing *backing_ref(backing *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

void backing_unref(backing *b)
{
	if (b != NULL && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		if (b->fd >= 0)
			close(b->fd);
		free(b);
	}
}

void db_fail_locked(database *db, const char *fmt, ...)
{
	db_assert_locked(db);
	va_list ap;
	if (db->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(db->failure, sizeof(db->failure), fmt, ap);
	va_end(ap);
	db->failed = 1;
	lx_error(db->name, "database is no longer served: %s", db->failure);
}

int db_page_ck_reserve_locked(database *db, uint32_t n)
{
	db_assert_locked(db);
	uint64_t *v;
	size_t cap;
	if (n <= db->page_ck_cap)
		return 0;
	cap = db->page_ck_cap ? db->page_ck_cap : 64;
	while (cap < n)
		cap *= 2;
	v = realloc(db->page_ck, cap * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	memset(v + db->page_ck_cap, 0, (cap - db->page_ck_cap) * sizeof(*v));
	db->page_ck = v;
	db->page_ck_cap = cap;
	return 0;
}

int db_pread_page(int fd, uint8_t *buf, uint32_t len, uint64_t off)
{
	uint32_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(buf + done, 0, len - done);
			break;
		}
		done += (uint32_t)n;
	}
	return 0;
}

int db_parse_header(const uint8_t *hdr, uint32_t *page_size, uint32_t *n_pages)
{
	uint32_t ps;
	if (memcmp(hdr, "SQLite format 3", 16) != 0)
		return -EBADMSG;
	ps = (uint32_t)hdr[16] << 8 | hdr[17];
	if (ps == 1)
		ps = 65536;
	if (!ltx_page_size_valid(ps))
		return -EBADMSG;
	*page_size = ps;
	/* The in-header size is valid when "version-valid-for" matches the
	 * change counter (SQLite >= 3.7.0 always keeps it so). */
	*n_pages = lx_get_be32(hdr + 24) == lx_get_be32(hdr + 92) ? lx_get_be32(hdr + 28) : 0;
	return 0;
}

int db_read_page_locked(database *db, uint32_t pgno, uint8_t *buf, lx_err *err)
{
	db_assert_locked(db);
	/* While a WAL is valid SQLite reads everything in its page size. */
	uint32_t ps = db->wal.valid && db->wal.hdr.page_size ? db->wal.hdr.page_size : db->page_size;
	int rc;
	if (db->wal.valid && pgno <= db->wal.frame_of_len && db->wal.frame_of[pgno - 1] &&
	    db->file[DBF_WAL] != NULL) {
		uint64_t off = wal_frame_offset(db->wal.hdr.page_size, db->wal.frame_of[pgno - 1] - 1) +
			       WAL_FRAME_HEADER_SIZE;
		rc = db_pread_page(db->file[DBF_WAL]->fd, buf, db->wal.hdr.page_size, off);
	} else if (db->file[DBF_DB] != NULL) {
		rc = db_pread_page(db->file[DBF_DB]->fd, buf, ps, (uint64_t)(pgno - 1) * ps);
	} else {
		memset(buf, 0, ps);
		rc = 0;
	}
	if (rc < 0)
		return lx_err_sys(err, -rc, "db %s: read page %u", db->name, pgno);
	return 0;
}

/* ---- dirty pages of a rollback transaction ------------------------------- */

void db_dirty_clear_locked(database *db)
{
	db_assert_locked(db);
	for (size_t i = 0; i < db->n_dirty; i++) {
		uint32_t p = db->dirty[i] - 1;
		db->dirty_bits[p / 64] &= ~(1ULL << (p % 64));
	}
	db->n_dirty = 0;
	db->dirty_full = 0;
	db->txn_synced = 0;
}

/* ---- descriptors of an idle database (db/handles.h) ------------------------ */

static int open_backing_fd(database *db, enum db_file f, int flags, mode_t mode)
{
	int fd = openat(db->dirfd, db_file_names[f],
			O_RDWR | O_CLOEXEC | (flags & (O_CREAT | O_EXCL)), mode);
	if (fd < 0 && errno == EACCES)
		fd = openat(db->dirfd, db_file_names[f], O_RDONLY | O_CLOEXEC);
	return fd;
}

/* The descriptors it holds, and the log's first segment before the first
 * append creates it (counted ahead, so the operation that follows a use
 * cannot take the store past its bound unseen). */
static size_t fd_count_locked(const database *db)
{
	db_assert_locked(db);
	size_t n = (db->dirfd >= 0) + (db->log ? txlog_fd_count(db->log) : 0);
	if (db->log != NULL && db->log->nsegs == 0 && !db->log->fds_closed)
		n++;
	for (int f = 0; f < DBF_COUNT; f++)
		n += db->file[f] != NULL && db->file[f]->fd >= 0;
	return n;
}

void db_recount_files_locked(database *db)
{
	db_assert_locked(db);
	if (db->files_open && db->opt.handles != NULL)
		handle_cache_use(db->opt.handles, db, fd_count_locked(db));
}

int db_use_files_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	if (db->retired)
		return 0;
	if (!db->files_open) {
		int rc = 0;
		if (db->dirfd < 0 &&
		    (db->dirfd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return lx_err_sys(err, errno, "db %s: open %s", db->name, db->dir);
		if (db->log != NULL)
			rc = txlog_open_fds(db->log, err);
		for (int f = 0; rc == 0 && f < DBF_COUNT; f++) {
			backing *b = db->file[f];
			/* Only the database holds it (a FUSE handle's reference
			 * keeps it open), so nobody reads fd meanwhile. */
			if (b != NULL && b->fd < 0 && (b->fd = open_backing_fd(db, f, 0, 0)) < 0)
				rc = lx_err_sys(err, errno, "db %s: open %s", db->name,
						db_file_names[f]);
		}
		if (rc < 0)
			return rc;
		db->files_open = 1;
	}
	if (db->opt.handles != NULL)
		handle_cache_use(db->opt.handles, db, fd_count_locked(db));
	return 0;
}

int db_close_files_locked(database *db)
{
	db_assert_locked(db);
	if (!db->files_open)
		return 0;
	if (db->log != NULL && txlog_close_fds(db->log) < 0)
		return -EBUSY;
	for (int f = 0; f < DBF_COUNT; f++) {
		backing *b = db->file[f];
		if (b != NULL && b->fd >= 0 && __atomic_load_n(&b->refs, __ATOMIC_ACQUIRE) == 1) {
			close(b->fd);
			b->fd = -1;
		}
	}
	if (db->dirfd >= 0)
		close(db->dirfd);
	db->dirfd = -1;
	db->files_open = 0;
	return 0;
}

/* ---- opening backing files ------------------------------------------------ */

int db_open_backing_locked(database *db, enum db_file f, int flags,
			   mode_t mode, lx_err *err)
{
	db_assert_locked(db);
	backing *b;
	int fd = open_backing_fd(db, f, flags, mode);
	if (fd < 0)
		return lx_err_sys(err, errno, "db %s: open %s", db->name, db_file_names[f]);
	b = malloc(sizeof(*b));
	if (b == NULL) {
		close(fd);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	b->fd = fd;
	b->refs = 1;
	db->file[f] = b;
	if (flags & O_CREAT)
		db->dir_dirty = 1;
	db_recount_files_locked(db);
	return 0;
}
