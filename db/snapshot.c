/*
 * snapshot.c - copy-on-write images of a database for replicas (see
 * snapshot.h).
 */
#include "db/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "db/capture.h"
#include "db/state.h"

struct db_snapshot {
	database *db;
	struct db_snapshot *next;  /* in db->snapshots */
	uint32_t page_size;
	uint32_t n_pages;
	uint32_t lock_pgno;
	uint32_t next_pgno;        /* first page not read yet */
	uint32_t *frame;           /* [pgno-1]: 1-based WAL frame at begin, 0: database file */
	uint32_t wal_page_size;
	uint64_t wal_end;          /* end of the referenced frames; 0: none left unread */
	uint32_t *slot;            /* [pgno-1]: 1-based spill slot, 0: not preserved */
	uint32_t n_slots;
	int spill_fd;
	int failed;                /* preserving failed: the image is lost */
	lx_err fail;
	uint8_t *page;             /* scratch page for preserving */
};

/* The old content of page `pgno` from where it lives now. */
static int read_source(db_snapshot *s, uint32_t pgno, uint8_t *buf)
{
	database *db = s->db;
	uint32_t ps = s->page_size;
	if (s->slot[pgno - 1])
		return db_pread_page(s->spill_fd, buf, ps, (uint64_t)(s->slot[pgno - 1] - 1) * ps);
	if (s->frame && s->frame[pgno - 1]) {
		if (db->file[DBF_WAL] == NULL)
			return -ENOENT;
		return db_pread_page(db->file[DBF_WAL]->fd, buf, ps,
				     wal_frame_offset(s->wal_page_size, s->frame[pgno - 1] - 1) +
				     WAL_FRAME_HEADER_SIZE);
	}
	if (db->file[DBF_DB] == NULL) {
		memset(buf, 0, ps);
		return 0;
	}
	return db_pread_page(db->file[DBF_DB]->fd, buf, ps, (uint64_t)(pgno - 1) * ps);
}

static void preserve_page(db_snapshot *s, uint32_t pgno)
{
	uint32_t ps = s->page_size;
	int rc = read_source(s, pgno, s->page);
	if (rc == 0)
		rc = lx_pwrite_all(s->spill_fd, s->page, ps, (uint64_t)s->n_slots * ps);
	if (rc < 0) {
		lx_err_sys(&s->fail, -rc, "db %s: snapshot: keep page %u", s->db->name, pgno);
		s->failed = 1;
		return;
	}
	s->slot[pgno - 1] = ++s->n_slots;
}

static int lives_in_db_file(const db_snapshot *s, uint32_t pgno)
{
	return !s->slot[pgno - 1] && !(s->frame && s->frame[pgno - 1]) && pgno != s->lock_pgno;
}

static void preserve_db_range(db_snapshot *s, uint64_t off, uint64_t len)
{
	uint64_t first = off / s->page_size + 1, last = s->n_pages;
	if (len != UINT64_MAX && len > 0 && (off + len - 1) / s->page_size + 1 < last)
		last = (off + len - 1) / s->page_size + 1;
	if (first < s->next_pgno)
		first = s->next_pgno;
	for (uint64_t p = first; p <= last && !s->failed; p++)
		if (lives_in_db_file(s, (uint32_t)p))
			preserve_page(s, (uint32_t)p);
}

/* Any change of WAL bytes below wal_end is a restart, a truncate or a
 * removal: keep every unread page whose version lives in the WAL. */
static void preserve_wal(db_snapshot *s, uint64_t off)
{
	if (s->wal_end == 0 || off >= s->wal_end)
		return;
	for (uint32_t p = s->next_pgno; p <= s->n_pages && !s->failed; p++)
		if (s->frame[p - 1] && !s->slot[p - 1])
			preserve_page(s, p);
	s->wal_end = 0;
}

void db_snapshot_preserve_locked(database *db, enum db_file f, uint64_t off,
				 uint64_t len)
{
	db_assert_locked(db);
	for (db_snapshot *s = db->snapshots; s != NULL; s = s->next) {
		if (s->failed)
			continue;
		if (f == DBF_DB)
			preserve_db_range(s, off, len);
		else if (f == DBF_WAL && s->frame)
			preserve_wal(s, off);
	}
}

/* Where each page's newest captured WAL version is, as of now. */
static int copy_wal_sources(db_snapshot *s, database *db)
{
	const db_wal_state *w = &db->wal;
	uint32_t n = s->n_pages;
	if (!w->valid || w->frame_of == NULL || db->file[DBF_WAL] == NULL)
		return 0;
	if (w->frame_of_len < n)
		n = (uint32_t)w->frame_of_len;
	s->frame = calloc(s->n_pages, sizeof(*s->frame));
	if (s->frame == NULL)
		return -ENOMEM;
	s->wal_page_size = w->hdr.page_size;
	for (uint32_t p = 1; p <= n; p++) {
		uint64_t end;
		if (!w->frame_of[p - 1])
			continue;
		s->frame[p - 1] = w->frame_of[p - 1];
		end = wal_frame_offset(s->wal_page_size, w->frame_of[p - 1]);
		if (end > s->wal_end)
			s->wal_end = end;
	}
	return 0;
}

static int open_spill(db_snapshot *s, database *db, lx_err *err)
{
	s->spill_fd = openat(db->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->spill_fd < 0)
		return lx_err_sys(err, errno, "db %s: snapshot spill file", db->name);
	return 0;
}

static void fill_header(const database *db, ltx_header *h)
{
	memset(h, 0, sizeof(*h));
	h->page_size = db->page_size;
	h->commit = db->n_pages;
	h->page_count = ltx_snapshot_page_count(db->page_size, db->n_pages);
	h->min_txid = 1;
	h->max_txid = db->txid;
	h->flags = h->max_txid > 1 ? LTX_FLAG_COMPACTED : 0;   /* covers 1..txid */
	h->timestamp_ms = db->last_commit_ms ? db->last_commit_ms : db_now_ms();
	h->node_id = db->opt.node_id;
	h->lease_epoch = db->opt.lease_epoch;
}

/* The position is the logical state only between transactions. */
static int between_transactions(const database *db)
{
	return !db->journal_hot && db->n_dirty == 0 && !db->dirty_full;
}

static int begin_locked(database *db, db_snapshot *s, ltx_header *h, uint64_t *post,
			lx_err *err)
{
	db_assert_locked(db);
	int rc;
	if (db->failed)
		return lx_err_set(err, EIO, "db %s: not served: %s", db->name, db->failure);
	if (db->txid == 0 || db->n_pages == 0 || db->untracked)
		return lx_err_set(err, ENOENT, "db %s: no pages to snapshot", db->name);
	if (!between_transactions(db))
		return -EAGAIN;
	rc = db_capture_wal_locked(db, err);
	if (rc < 0)
		return rc;
	s->page_size = db->page_size;
	s->n_pages = db->n_pages;
	s->lock_pgno = ltx_lock_pgno(db->page_size);
	s->next_pgno = 1;
	s->slot = calloc(s->n_pages, sizeof(*s->slot));
	s->page = malloc(s->page_size);
	if (s->slot == NULL || s->page == NULL || copy_wal_sources(s, db) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = open_spill(s, db, err);
	if (rc < 0)
		return rc;
	fill_header(db, h);
	*post = db->checksum;
	s->next = db->snapshots;
	db->snapshots = s;
	return 0;
}

static void snapshot_free(db_snapshot *s)
{
	if (s->spill_fd >= 0)
		close(s->spill_fd);
	free(s->frame);
	free(s->slot);
	free(s->page);
	free(s);
}

int db_snapshot_begin(database *db, db_snapshot **out, ltx_header *h,
		      uint64_t *post, lx_err *err)
{
	db_snapshot *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->db = db;
	s->spill_fd = -1;
	/* A write transaction in progress has put uncommitted pages into the
	 * database file: start between two transactions (they last ms). */
	for (int tries = 0;; tries++) {
		rc = db_lock_files(db, err);
		if (rc == 0)
			rc = begin_locked(db, s, h, post, err);
		pthread_mutex_unlock(&db->mu);
		if (rc != -EAGAIN)
			break;
		if (tries == 20000) {
			rc = lx_err_set(err, EAGAIN, "db %s: snapshot: a write transaction "
					"stayed open for 20 s", db->name);
			break;
		}
		usleep(1000);
	}
	if (rc < 0) {
		snapshot_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Pages from `first` on that still live in the database file, in a row
 * (at most max, never the lock page). */
static uint32_t db_file_run(const db_snapshot *s, uint32_t first, uint32_t max)
{
	uint32_t n = 0;
	while (n < max && first + n <= s->n_pages && lives_in_db_file(s, first + n))
		n++;
	return n;
}

int db_snapshot_read(db_snapshot *s, uint8_t *buf, uint32_t *pgnos, uint32_t max,
		     lx_err *err)
{
	database *db = s->db;
	uint32_t n = 0, ps = s->page_size;
	int rc = db_lock_files(db, err);
	if (rc == 0 && s->failed)
		rc = lx_err_set(err, s->fail.code, "%s", s->fail.msg);
	while (rc == 0 && n < max && s->next_pgno <= s->n_pages) {
		uint32_t p = s->next_pgno, run;
		if (p == s->lock_pgno) {
			s->next_pgno++;
			continue;
		}
		/* One read for a run of pages in the file (the common case). */
		run = db->file[DBF_DB] ? db_file_run(s, p, max - n) : 0;
		if (run > 1)
			rc = db_pread_page(db->file[DBF_DB]->fd, buf + (size_t)n * ps, run * ps,
					   (uint64_t)(p - 1) * ps);
		else
			rc = read_source(s, p, buf + (size_t)n * ps);
		if (run < 1)
			run = 1;
		if (rc < 0) {
			rc = lx_err_sys(err, -rc, "db %s: snapshot: read page %u", db->name, p);
			break;
		}
		for (uint32_t i = 0; i < run; i++)
			pgnos[n++] = p + i;
		s->next_pgno = p + run;
	}
	pthread_mutex_unlock(&db->mu);
	return rc < 0 ? rc : (int)n;
}

void db_snapshot_end(db_snapshot *s)
{
	database *db;
	if (s == NULL)
		return;
	db = s->db;
	pthread_mutex_lock(&db->mu);
	for (db_snapshot **pp = &db->snapshots; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&db->mu);
	if (s->n_slots)
		lx_debug(db->name, "snapshot kept %u pages overwritten while it was read", s->n_slots);
	snapshot_free(s);
}
