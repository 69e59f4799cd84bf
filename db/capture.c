/*
 * capture.c - turning SQLite's committed transactions into LTX records.
 *
 * Two producers, one consumer:
 *   db_capture_rollback_locked()  pages written to the database file during
 *                                 a rollback-journal transaction;
 *   db_capture_wal_locked()       transactions committed to the WAL;
 *   db_log_transaction_locked()   encodes either into the log and advances
 *                                 the in-memory position and checksums.
 *
 * A page whose new checksum equals its old one did not change and is left
 * out; a transaction with no net change (a rollback, a no-op) gets no TXID.
 */
#include "db/capture.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "ltx/ltx.h"

static uint64_t old_page_ck(const database *db, uint32_t pgno)
{
	return pgno <= db->n_pages ? db->page_ck[pgno - 1] : 0;
}

static int cmp_txn_page(const void *a, const void *b)
{
	const txn_page *x = a, *y = b;
	if (x->pgno != y->pgno)
		return x->pgno < y->pgno ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Read the new content of a transaction page into `buf`. */
static int read_txn_page(database *db, const txn_page *p, uint32_t page_size,
			 uint8_t *buf, lx_err *err)
{
	int rc;
	switch (p->src) {
	case SRC_DB_FILE:
		rc = db_pread_page(db->file[DBF_DB]->fd, buf, page_size, p->off);
		break;
	case SRC_WAL_FILE:
		rc = db_pread_page(db->file[DBF_WAL]->fd, buf, page_size, p->off);
		break;
	default:
		return db_read_page_locked(db, p->pgno, buf, err);
	}
	if (rc < 0)
		return lx_err_sys(err, -rc, "db %s: read page %u", db->name, p->pgno);
	return 0;
}

/* The database checksum after applying `t` to the current state. */
static uint64_t post_checksum(const database *db, const txn_build *t)
{
	uint64_t ck = LTX_CHECKSUM_FLAG;
	if (t->full_image) {
		for (size_t i = 0; i < t->n; i++)
			ck = ltx_checksum_update(ck, 0, t->pages[i].ck);
		return ck;
	}
	ck = db->checksum;
	for (size_t i = 0; i < t->n; i++)
		ck = ltx_checksum_update(ck, old_page_ck(db, t->pages[i].pgno),
					 t->pages[i].ck);
	for (uint32_t pgno = t->commit + 1; pgno <= db->n_pages; pgno++)
		ck = ltx_checksum_update(ck, db->page_ck[pgno - 1], 0);
	return ck;
}

static void apply_to_state(database *db, const txn_build *t, uint64_t post,
			   int wal_mode_seen, int wal_mode)
{
	if ((t->full_image || t->page_size != db->page_size) && db->page_ck != NULL)
		memset(db->page_ck, 0, db->page_ck_cap * sizeof(uint64_t));
	for (size_t i = 0; i < t->n; i++)
		db->page_ck[t->pages[i].pgno - 1] = t->pages[i].ck;
	for (uint32_t pgno = t->commit + 1; pgno <= db->n_pages; pgno++)
		db->page_ck[pgno - 1] = 0;
	db->page_size = t->commit ? t->page_size : db->page_size;
	db->n_pages = t->commit;
	db->checksum = post;
	db->txid++;
	db->commits++;
	db->last_commit_ms = db_now_ms();
	if (wal_mode_seen)
		db->wal_mode = wal_mode;
	if (t->commit == 0)
		db->wal_mode = 0;
}

static int encode_pages(database *db, const txn_build *t, ltx_encoder *enc,
			int *wal_mode_seen, int *wal_mode, lx_err *err)
{
	uint8_t *page = malloc(t->page_size);
	int rc = 0;
	if (page == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		rc = read_txn_page(db, &t->pages[i], t->page_size, page, err);
		if (rc == 0 && ltx_page_checksum(t->pages[i].pgno, page, t->page_size) != t->pages[i].ck)
			rc = lx_err_set(err, EIO, "db %s: page %u changed while it was being logged",
					db->name, t->pages[i].pgno);
		if (rc == 0)
			rc = ltx_encoder_page(enc, t->pages[i].pgno, page, t->pages[i].ck, err);
		if (rc == 0 && t->pages[i].pgno == 1) {
			*wal_mode_seen = 1;
			*wal_mode = page[18] == 2;
		}
	}
	free(page);
	return rc;
}

int db_log_transaction_locked(database *db, const txn_build *t, lx_err *err)
{
	db_assert_locked(db);
	ltx_header h;
	ltx_encoder enc;
	uint64_t post = post_checksum(db, t);
	int wal_mode_seen = 0, wal_mode = 0;
	int rc;

	if (db_page_ck_reserve_locked(db, t->commit) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = db_gate_admit_locked(db, err);
	if (rc < 0)
		return rc;
	memset(&h, 0, sizeof(h));
	h.page_size = t->page_size ? t->page_size : 4096;
	h.commit = t->commit;
	h.page_count = (uint32_t)t->n;
	h.min_txid = h.max_txid = db->txid + 1;
	h.timestamp_ms = db_now_ms();
	h.pre_checksum = db->txid == 0 ? 0 : db->checksum;
	h.node_id = db->opt.node_id;
	h.lease_epoch = db->opt.lease_epoch;

	rc = txlog_append_begin(db->log, ltx_file_size(&h), h.min_txid, &t->anchor, err);
	if (rc < 0)
		return rc;
	memset(&enc, 0, sizeof(enc));
	rc = ltx_encoder_begin(&enc, &h, txlog_append_write, db->log, err);
	if (rc == 0)
		rc = encode_pages(db, t, &enc, &wal_mode_seen, &wal_mode, err);
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, post, NULL, err);
	ltx_encoder_free(&enc);
	if (rc == 0)
		rc = txlog_append_end(db->log, &h, post, err);
	else
		txlog_append_abort(db->log);
	if (rc < 0)
		return lx_err_wrap(err, "db %s: log TXID %" PRIu64, db->name, h.min_txid);
	apply_to_state(db, t, post, wal_mode_seen, wal_mode);
	db->storage_error[0] = '\0';
	lx_debug(db->name, "TXID %" PRIu64 ": %zu pages, commit %u, checksum %016" PRIx64,
		 db->txid, t->n, t->commit, post);
	db_events_notify(db->opt.events);
	if (db->opt.sync == DB_SYNC_ALWAYS && txlog_sync(db->log, err) < 0) {
		/* The transaction is in the log and must stay in the database:
		 * a failed fsync leaves neither trustworthy. */
		db_fail_locked(db, "log fsync failed after TXID %" PRIu64 ": %s", db->txid, err->msg);
		return lx_err_wrap(err, "db %s: sync TXID %" PRIu64, db->name, db->txid);
	}
	return 0;
}

/* ---- rollback-journal transactions ---------------------------------------- */

/* Add page `pgno` read from the database file if it changed (always for a
 * full image). */
static int add_file_page(database *db, txn_build *t, uint8_t *page,
			 uint32_t pgno, lx_err *err)
{
	uint64_t off = (uint64_t)(pgno - 1) * t->page_size, ck;
	int rc = db_pread_page(db->file[DBF_DB]->fd, page, t->page_size, off);
	if (rc < 0)
		return lx_err_sys(err, -rc, "db %s: read page %u", db->name, pgno);
	ck = ltx_page_checksum(pgno, page, t->page_size);
	if (t->full_image || ck != old_page_ck(db, pgno))
		t->pages[t->n++] = (txn_page){ pgno, ck, SRC_DB_FILE, off };
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Collect the pages of a rollback transaction: the dirty pages up to
 * `commit` and the pages the file grew by (every page for a full image),
 * keeping those whose content changed.  O(dirty pages), not O(database).
 */
static int collect_rollback_pages(database *db, txn_build *t, lx_err *err)
{
	uint32_t lock = ltx_lock_pgno(t->page_size);
	uint32_t grow_from = t->full_image ? 1 : db->n_pages + 1;
	size_t cap = db->n_dirty + (t->commit >= grow_from ? t->commit - grow_from + 1 : 0);
	uint8_t *page = malloc(t->page_size);
	int rc = 0;

	t->pages = calloc(cap ? cap : 1, sizeof(txn_page));
	if (page == NULL || t->pages == NULL) {
		free(page);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	if (!t->full_image) {
		qsort(db->dirty, db->n_dirty, sizeof(uint32_t), cmp_u32);
		for (size_t i = 0; i < db->n_dirty && rc == 0; i++) {
			uint32_t pgno = db->dirty[i];
			if (pgno < grow_from && pgno != lock && pgno <= t->commit)
				rc = add_file_page(db, t, page, pgno, err);
		}
	}
	for (uint32_t pgno = grow_from; pgno <= t->commit && rc == 0; pgno++)
		if (pgno != lock)
			rc = add_file_page(db, t, page, pgno, err);
	free(page);
	return rc;
}

/*
 * Decide page size and commit size from the file: the header's in-header
 * size when valid, else the file size.  Returns 1 if the content is a
 * SQLite database (or empty), 0 if it is not.
 */
static int read_db_shape(database *db, uint32_t *page_size, uint32_t *commit,
			 lx_err *err)
{
	uint8_t hdr[100];
	struct stat st;
	int fd = db->file[DBF_DB]->fd, rc;

	if (fstat(fd, &st) < 0)
		return lx_err_sys(err, errno, "db %s: fstat", db->name);
	if (st.st_size == 0) {
		*page_size = db->page_size;
		*commit = 0;
		return 1;
	}
	if (st.st_size < 100)
		return 0;
	rc = db_pread_page(fd, hdr, sizeof(hdr), 0);
	if (rc < 0)
		return lx_err_sys(err, -rc, "db %s: read header", db->name);
	if (db_parse_header(hdr, page_size, commit) < 0)
		return 0;
	if (*commit == 0)
		*commit = (uint32_t)((uint64_t)st.st_size / *page_size);
	return 1;
}

int db_capture_rollback_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	txn_build t;
	int rc, shape;

	if (db->n_dirty == 0 && !db->dirty_full)
		return 0;
	if (db->file[DBF_DB] == NULL) {
		db_dirty_clear_locked(db);
		return 0;
	}
	memset(&t, 0, sizeof(t));
	shape = read_db_shape(db, &t.page_size, &t.commit, err);
	if (shape < 0)
		return shape;
	if (shape == 0) {
		if (!db->untracked)
			lx_warn(db->name, "content is not a SQLite database; its changes are "
				"not logged until it is one again (position stays at TXID %" PRIu64 ")",
				db->txid);
		db->untracked = 1;
		db_dirty_clear_locked(db);
		return 0;
	}
	t.full_image = db->dirty_full || db->untracked || db->txid == 0 ||
		       t.page_size != db->page_size;
	if (t.commit == 0)
		t.full_image = 0;
	rc = collect_rollback_pages(db, &t, err);
	if (rc == 0 && (t.full_image || t.n > 0 || t.commit != db->n_pages))
		rc = db_log_transaction_locked(db, &t, err);
	free(t.pages);
	if (rc == 0) {
		db_dirty_clear_locked(db);
		db->untracked = 0;
	}
	return rc;
}

/* ---- WAL transactions ----------------------------------------------------- */

typedef struct wal_scan {
	uint8_t *chunk;
	uint64_t chunk_off, chunk_len, chunk_cap;
	uint64_t next_len;    /* size of the next read: doubles, from one frame */
	txn_page *frames;     /* frames of the transaction being scanned */
	size_t n, cap;
} wal_scan;

#define WAL_SCAN_CHUNK (8u << 20)

static void wal_scan_free(wal_scan *s)
{
	free(s->chunk);
	free(s->frames);
}

/*
 * Make the frame at `off` available in the chunk; 0 past the end of the
 * file.  Reads start at one frame and double: a WAL that SQLite reuses is
 * megabytes of old frames past the newest commit, and a capture that finds
 * nothing new must cost one frame's read, not the rest of the file.
 */
static int wal_scan_frame(database *db, wal_scan *s, uint64_t off,
			  uint32_t frame_size, const uint8_t **frame)
{
	uint64_t len;
	ssize_t got;
	if (off >= s->chunk_off && off + frame_size <= s->chunk_off + s->chunk_len) {
		*frame = s->chunk + (off - s->chunk_off);
		return 1;
	}
	len = s->next_len < frame_size ? frame_size : s->next_len;
	len -= len % frame_size;
	s->next_len = len * 2 > WAL_SCAN_CHUNK ? len : len * 2;
	if (len > s->chunk_cap) {
		uint8_t *c = realloc(s->chunk, len);
		if (c == NULL)
			return -ENOMEM;
		s->chunk = c;
		s->chunk_cap = len;
	}
	got = pread(db->file[DBF_WAL]->fd, s->chunk, len, (off_t)off);
	if (got < 0)
		return -errno;
	s->chunk_off = off;
	s->chunk_len = (uint64_t)got;
	if ((uint64_t)got < frame_size)
		return 0;
	*frame = s->chunk;
	return 1;
}

static int wal_scan_add(wal_scan *s, const txn_page *p)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		txn_page *v = realloc(s->frames, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		s->frames = v;
		s->cap = cap;
	}
	s->frames[s->n++] = *p;
	return 0;
}

/* Sort the scanned frames by pgno and keep the newest version of each. */
static size_t newest_versions(txn_page *v, size_t n)
{
	size_t out = 0;
	qsort(v, n, sizeof(*v), cmp_txn_page);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && v[out - 1].pgno == v[i].pgno)
			v[out - 1] = v[i];
		else
			v[out++] = v[i];
	}
	return out;
}

static int frame_of_reserve(db_wal_state *w, uint32_t n)
{
	if (n <= w->frame_of_len)
		return 0;
	uint32_t *v = realloc(w->frame_of, (size_t)n * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	memset(v + w->frame_of_len, 0, (n - w->frame_of_len) * sizeof(*v));
	w->frame_of = v;
	w->frame_of_len = n;
	return 0;
}

int db_wal_remember_locked(database *db, const txn_page *v, size_t n)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	uint32_t frame_size = WAL_FRAME_HEADER_SIZE + w->hdr.page_size;
	for (size_t i = 0; i < n; i++) {
		uint32_t pgno = v[i].pgno;
		if (frame_of_reserve(w, pgno) < 0)
			return -ENOMEM;
		if (w->frame_of[pgno - 1] == 0) {
			if (w->n_touched == w->touched_cap) {
				size_t cap = w->touched_cap ? w->touched_cap * 2 : 256;
				uint32_t *t = realloc(w->touched, cap * sizeof(*t));
				if (t == NULL)
					return -ENOMEM;
				w->touched = t;
				w->touched_cap = cap;
			}
			w->touched[w->n_touched++] = pgno;
		}
		w->frame_of[pgno - 1] = (uint32_t)((v[i].off - WAL_HEADER_SIZE - WAL_FRAME_HEADER_SIZE) / frame_size) + 1;
	}
	return 0;
}

static int cmp_pgno(const void *a, const void *b)
{
	const txn_page *x = a, *y = b;
	return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

static int add_logical_page(database *db, txn_page *out, uint32_t pgno,
			    uint32_t ps, lx_err *err)
{
	uint8_t *page = malloc(ps);
	int rc;
	if (page == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = db_read_page_locked(db, pgno, page, err);
	if (rc == 0)
		*out = (txn_page){ pgno, ltx_page_checksum(pgno, page, ps), SRC_LOGICAL, 0 };
	free(page);
	return rc;
}

/*
 * Build and log one committed WAL transaction from its frames (newest
 * version of each page).  `frames` is rewritten in place.
 */
static int log_wal_transaction(database *db, wal_scan *s, uint32_t commit,
			       uint64_t end, lx_err *err)
{
	uint32_t ps = db->wal.hdr.page_size, lock = ltx_lock_pgno(ps);
	size_t n = newest_versions(s->frames, s->n), out = 0, fi;
	txn_build t;
	int rc = 0;

	if (db_wal_remember_locked(db, s->frames, n) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	memset(&t, 0, sizeof(t));
	t.page_size = ps;
	t.commit = commit;
	/* A WAL whose page size differs from the database's (SQLite then reads
	 * the database file in the WAL's page size) changes every page. */
	t.full_image = commit > 0 &&
		       (db->txid == 0 || (db->n_pages > 0 && ps != db->page_size));
	t.anchor = (txlog_anchor){ db->wal.hdr.salt1, db->wal.hdr.salt2, end };
	t.pages = calloc(t.full_image ? commit : n + (commit > db->n_pages ? commit - db->n_pages : 0) + 1,
			 sizeof(txn_page));
	if (t.pages == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	/* Changed pages from the frames; then pages read from the logical state:
	 * every other page for a full image, else only pages the database grew
	 * by without a frame (SQLite writes those, but be exact). */
	for (fi = 0; fi < n; fi++) {
		txn_page *p = &s->frames[fi];
		if (p->pgno <= commit && p->pgno != lock &&
		    (t.full_image || p->ck != old_page_ck(db, p->pgno)))
			t.pages[out++] = *p;
	}
	for (uint32_t pgno = t.full_image ? 1 : db->n_pages + 1; pgno <= commit && rc == 0; pgno++) {
		txn_page key = { .pgno = pgno };
		if (pgno == lock || bsearch(&key, s->frames, n, sizeof(key), cmp_pgno))
			continue;
		rc = add_logical_page(db, &t.pages[out], pgno, ps, err);
		out++;
	}
	qsort(t.pages, out, sizeof(txn_page), cmp_txn_page);
	t.n = out;
	if (rc == 0 && (t.full_image || t.n > 0 || commit != db->n_pages))
		rc = db_log_transaction_locked(db, &t, err);
	free(t.pages);
	return rc;
}

/* Read and validate the WAL header; start over when the WAL was restarted. */
int db_wal_load_header_locked(database *db)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	uint8_t buf[WAL_HEADER_SIZE];
	wal_header h;
	ssize_t got = pread(db->file[DBF_WAL]->fd, buf, sizeof(buf), 0);
	if (got != (ssize_t)sizeof(buf) || wal_header_parse(buf, &h, NULL) < 0)
		return 0;
	if (!(w->processed >= WAL_HEADER_SIZE && h.salt1 == w->hdr.salt1 &&
	      h.salt2 == w->hdr.salt2 && h.page_size == w->hdr.page_size)) {
		db_wal_reset_locked(db);
		w->processed = WAL_HEADER_SIZE;
		w->chain = (wal_cksum){ h.cksum1, h.cksum2 };
	}
	w->hdr = h;
	w->valid = 1;
	return 1;
}

int db_capture_wal_locked(database *db, lx_err *err)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	wal_scan s;
	uint64_t off;
	wal_cksum chain;
	uint32_t frame_size;
	int rc = 0;

	if (db->file[DBF_WAL] == NULL || db->failed)
		return 0;
	if (!w->valid && !db_wal_load_header_locked(db))
		return 0;
	/* The lock, sync and checkpoint triggers mostly follow a commit that
	 * was captured at its frame: nothing written since, nothing to read. */
	if (w->scanned)
		return 0;
	frame_size = WAL_FRAME_HEADER_SIZE + w->hdr.page_size;
	memset(&s, 0, sizeof(s));
	off = w->processed;
	chain = w->chain;
	for (;;) {
		const uint8_t *frame = NULL;
		wal_frame_header f;
		int have = wal_scan_frame(db, &s, off, frame_size, &frame);
		if (have < 0) {
			rc = lx_err_sys(err, -have, "db %s: read wal", db->name);
			break;
		}
		if (have == 0 || !wal_frame_valid(&w->hdr, frame, &chain)) {
			w->scanned = 1;
			break;
		}
		wal_frame_header_parse(frame, &f);
		if (wal_scan_add(&s, &(txn_page){ f.pgno,
				 ltx_page_checksum(f.pgno, frame + WAL_FRAME_HEADER_SIZE, w->hdr.page_size),
				 SRC_WAL_FILE, off + WAL_FRAME_HEADER_SIZE }) < 0) {
			rc = lx_err_set(err, ENOMEM, "out of memory");
			break;
		}
		off += frame_size;
		if (f.commit == 0)
			continue;
		rc = log_wal_transaction(db, &s, f.commit, off, err);
		if (rc < 0)
			break;
		w->processed = off;
		w->chain = chain;
		s.n = 0;
	}
	wal_scan_free(&s);
	return rc;
}

void db_wal_reset_locked(database *db)
{
	db_assert_locked(db);
	db_wal_state *w = &db->wal;
	for (size_t i = 0; i < w->n_touched; i++)
		if (w->touched[i] <= w->frame_of_len)
			w->frame_of[w->touched[i] - 1] = 0;
	w->n_touched = 0;
	w->valid = 0;
	w->processed = 0;
	w->commit_frame_end = 0;
	w->scanned = 0;
}
