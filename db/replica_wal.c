/*
 * replica_wal.c - a replica's WAL applier (see replica_wal.h).
 */
#include "db/replica_wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/log.h"
#include "db/wal_index.h"

/* Pages copied per hold of db->mu during a checkpoint. */
#define CKPT_BATCH 64

typedef struct replica_wal {
	int active;            /* the WAL holds this applier's generation */
	int fresh;             /* its header is not written yet */
	wal_header whdr;       /* of the generation (checksum filled when written) */
	wi_header ih;          /* what the index says, or will after recovery */
	uint32_t *pgno_of;     /* [frame - 1] */
	size_t pgno_cap;
	uint32_t backfill;     /* frames copied into the database file */
	int db_unsynced;       /* the database file changed since its last fsync */
	/* the shm, mapped through the mount */
	int fd;
	backing *shm;          /* the backing file it was opened on (a reference) */
	uint8_t *map;
	size_t map_len;
	uint8_t **reg;         /* region pointers into map */
	int warned;
} replica_wal;

/* ---- small helpers ------------------------------------------------------- */


/*
 * Put [off, off+len) of backing file f, as it now is, into the kernel's
 * cache.  Not an invalidation: that also drops the cached attributes, and a
 * reader's size refresh in flight meanwhile is discarded by the kernel, so
 * it would read a new frame or page past a stale end (a short read).  A
 * store sets the size and the bytes at once.  db->mu not held.
 */
static void store_range(database *db, enum db_file f, uint64_t off, uint64_t len)
{
	enum { CHUNK = 128 * 1024, KPAGE = 4096 };
	const db_observer *o = db_observer_of(db);
	uint64_t end;
	uint8_t *buf;
	backing *b;

	if (o == NULL || o->store == NULL || len == 0) {
		db_tell_inval(db, f, off, len ? len : 1);
		return;
	}
	db_lock_files_or_fail_later(db);
	b = db->file[f] ? backing_ref(db->file[f]) : NULL;
	pthread_mutex_unlock(&db->mu);
	/* Whole kernel pages, taken fresh from the file: a page that holds the
	 * end of the previous frame also holds the start of this one, and a
	 * store of only the new bytes was seen to leave zeros there (a reader
	 * then read a frame whose page began with zeros: "malformed"). */
	end = (off + len + KPAGE - 1) / KPAGE * KPAGE;
	off = off / KPAGE * KPAGE;
	len = end - off;
	buf = malloc(CHUNK);
	for (uint64_t at = off; b != NULL && buf != NULL && at < off + len;) {
		size_t n = off + len - at < CHUNK ? (size_t)(off + len - at) : CHUNK;
		ssize_t got = pread(b->fd, buf, n, (off_t)at);
		if (got <= 0)
			break;
		o->store(o->ctx, db, f, at, buf, (size_t)got);
		at += (uint64_t)got;
	}
	if (b == NULL || buf == NULL)
		db_tell_inval(db, f, off, len);
	free(buf);
	backing_unref(b);
}

int rwal_trylock(database *db, uint64_t byte)
{
	int rc;
	db_lock_files_or_fail_later(db);
	rc = lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, byte, byte, LK_WRITE);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void rwal_unlock(database *db, uint64_t byte)
{
	db_lock_files_or_fail_later(db);
	lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, byte, byte, LK_UNLOCK);
	pthread_mutex_unlock(&db->mu);
}

static replica_wal *get(database *db)
{
	if (db->rwal == NULL) {
		replica_wal *w = calloc(1, sizeof(*w));
		if (w == NULL)
			return NULL;
		w->fd = -1;
		db->rwal = w;
	}
	return db->rwal;
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)lx_mono_ms() * 2654435761u;
	return v;
}

/* ---- the shm mapping ------------------------------------------------------ */

/* Give up the DMS byte held shared and the reference to the shm's backing
 * file, taken when the shm was attached. */
static void release_shm(database *db, replica_wal *w)
{
	db_lock_files_or_fail_later(db);
	lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, SHM_DMS_BYTE, SHM_DMS_BYTE, LK_UNLOCK);
	backing_unref(w->shm);
	w->shm = NULL;
	pthread_mutex_unlock(&db->mu);
}

void rwal_detach(database *db)
{
	replica_wal *w = db->rwal;
	if (w == NULL || w->fd < 0)
		return;
	if (w->map != NULL)
		munmap(w->map, w->map_len);
	close(w->fd);
	free(w->reg);
	w->map = NULL;
	w->map_len = 0;
	w->reg = NULL;
	w->fd = -1;
	release_shm(db, w);
}

/* Map at least `regions` regions, growing the file (through the mount, so
 * the kernel knows the size) when it is shorter.  WRITE held. */
static int map_regions(database *db, replica_wal *w, uint32_t regions)
{
	size_t want = (size_t)regions * WI_REGION_SIZE;
	struct stat st;
	uint8_t *m, **reg;
	if (w->map_len >= want)
		return 0;
	if (fstat(w->shm->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < want && ftruncate(w->fd, (off_t)want) < 0)
		return -errno;
	m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	reg = malloc(regions * sizeof(*reg));
	if (reg == NULL) {
		munmap(m, want);
		return -ENOMEM;
	}
	/* Resident, so that a page fault never needs the FUSE loop (which may
	 * be stopping while this thread still applies). */
	if (mlock(m, want) < 0 && !w->warned) {
		lx_debug(db->name, "replica: mlock shm: %s", strerror(errno));
		w->warned = 1;
	}
	for (uint32_t r = 0; r < regions; r++)
		reg[r] = m + (size_t)r * WI_REGION_SIZE;
	if (w->map != NULL)
		munmap(w->map, w->map_len);
	free(w->reg);
	w->map = m;
	w->map_len = want;
	w->reg = reg;
	return 0;
}

/* 1: mapped; 0: there is no shm (no reader has one); -1: cannot map. */
static int attach(database *db, replica_wal *w)
{
	const db_observer *o = db_observer_of(db);
	backing *cur;
	int fd, rc;

	db_lock_files_or_fail_later(db);
	cur = db->file[DBF_SHM];
	pthread_mutex_unlock(&db->mu);
	if (w->fd >= 0 && cur == w->shm)
		return 1;
	rwal_detach(db);
	if (cur == NULL)
		return 0;
	if (o == NULL || o->shm_open == NULL)
		return -1;
	db_lock_files_or_fail_later(db);
	/* DMS shared: a reader that opens the shm never truncates it now. */
	rc = lock_table_set(&db->locks[DBF_SHM], APPLY_OWNER, 0, SHM_DMS_BYTE, SHM_DMS_BYTE, LK_READ);
	cur = db->file[DBF_SHM];
	if (rc == 0 && cur != NULL)
		w->shm = backing_ref(cur);
	pthread_mutex_unlock(&db->mu);
	if (rc < 0 || w->shm == NULL) {
		rwal_unlock(db, SHM_DMS_BYTE);
		return rc < 0 ? -1 : 0;
	}
	fd = o->shm_open(o->ctx, db);
	if (fd < 0) {
		lx_warn(db->name, "replica: cannot open the shm through the mount: %s", strerror(-fd));
		w->fd = -1;
		release_shm(db, w);
		return -1;
	}
	w->fd = fd;
	rc = map_regions(db, w, 1);
	if (rc < 0) {
		lx_warn(db->name, "replica: cannot map the shm: %s", strerror(-rc));
		rwal_detach(db);
		return -1;
	}
	return 1;
}

/* ---- generations ---------------------------------------------------------- */

/* A new WAL generation, written from frame 1 at the next append. */
static void new_generation(database *db, replica_wal *w, uint32_t ckpt_seq, uint32_t salt1)
{
	uint8_t raw[WAL_HEADER_SIZE];
	w->whdr.magic = WAL_MAGIC_LE;
	w->whdr.page_size = db->page_size;
	w->whdr.ckpt_seq = ckpt_seq;
	w->whdr.salt1 = salt1;
	w->whdr.salt2 = random_u32();
	wal_header_encode(&w->whdr, raw);   /* fills the checksum */
	w->ih.page_size = db->page_size;
	w->ih.mx_frame = 0;
	w->ih.n_page = db->n_pages;
	w->ih.frame_ck = (wal_cksum){ w->whdr.cksum1, w->whdr.cksum2 };
	w->ih.salt1 = w->whdr.salt1;
	w->ih.salt2 = w->whdr.salt2;
	w->backfill = 0;
	w->fresh = 1;
	w->active = 1;
}

/* db->wal is still what this applier wrote (no promotion in between). */
static int capture_state_is_ours_locked(database *db, replica_wal *w)
{
	db_assert_locked(db);
	const db_wal_state *s = &db->wal;
	if (w->fresh)
		return !s->valid || s->processed <= WAL_HEADER_SIZE || w->ih.mx_frame == 0;
	return s->valid && s->hdr.salt1 == w->whdr.salt1 && s->hdr.salt2 == w->whdr.salt2 &&
	       s->processed == wal_frame_offset(w->whdr.page_size, w->ih.mx_frame);
}

static int wal_is_empty_locked(database *db)
{
	db_assert_locked(db);
	struct stat st;
	if (db->file[DBF_WAL] == NULL)
		return 1;
	return fstat(db->file[DBF_WAL]->fd, &st) == 0 && st.st_size == 0 && !db->wal.n_touched;
}

/* Restart the WAL when every frame is in the database file and no reader
 * uses the WAL (walRestartLog).  WRITE held, db->mu not held. */
static void try_restart(database *db, replica_wal *w, int mapped_valid)
{
	uint32_t bf = mapped_valid ? wi_backfill(w->reg[0]) : w->backfill;
	int i, got = 0;
	backing *b = NULL;

	if (w->fresh || w->ih.mx_frame == 0 || bf < w->ih.mx_frame)
		return;
	for (i = 1; i < WI_NREADER; i++, got++)
		if (rwal_trylock(db, SHM_READ_LOCK(i)) < 0)
			break;
	if (got == WI_NREADER - 1) {
		db_lock_files_or_fail_later(db);
		if (w->db_unsynced && db->file[DBF_DB] != NULL)
			b = backing_ref(db->file[DBF_DB]);
		pthread_mutex_unlock(&db->mu);
		/* The frames are overwritten next: the database file must hold them. */
		if (b == NULL || fdatasync(b->fd) == 0) {
			w->db_unsynced = 0;
			new_generation(db, w, w->whdr.ckpt_seq + 1, w->whdr.salt1 + 1);
			if (mapped_valid) {
				db_lock_files_or_fail_later(db);
				w->ih.change = ++db->shm_change;
				pthread_mutex_unlock(&db->mu);
				wi_header_store(w->reg[0], &w->ih);
				wi_reset_info(w->reg[0]);
			}
			db_lock_files_or_fail_later(db);
			db_preserve_locked(db, DBF_WAL, 0, UINT64_MAX);
			db_wal_reset_locked(db);
			pthread_mutex_unlock(&db->mu);
		} else {
			lx_warn(db->name, "replica: fsync before restarting the WAL: %s", strerror(errno));
		}
		backing_unref(b);
	}
	for (i = 1; i <= got; i++)
		rwal_unlock(db, SHM_READ_LOCK(i));
}

int rwal_prepare(database *db)
{
	replica_wal *w = get(db);
	wi_header cur;
	int mapped, valid = 0, ours;

	if (w == NULL)
		return -1;
	mapped = attach(db, w);
	if (mapped < 0)
		return -1;
	if (mapped)
		valid = wi_header_load(w->reg[0], &cur) == 0;
	db_lock_files_or_fail_later(db);
	if (!w->active) {
		/* Start only on an empty WAL that no index describes. */
		ours = wal_is_empty_locked(db) && db->page_size != 0 && !(valid && cur.mx_frame != 0);
		if (ours) {
			db_wal_reset_locked(db);
			new_generation(db, w, 0, random_u32());
		}
	} else {
		ours = capture_state_is_ours_locked(db, w) && w->whdr.page_size == db->page_size &&
		       !(valid && (cur.mx_frame != w->ih.mx_frame || cur.salt1 != w->ih.salt1 ||
				   cur.salt2 != w->ih.salt2));
	}
	pthread_mutex_unlock(&db->mu);
	if (!ours)
		return -1;
	/* An invalid header (a new shm): readers recover from the WAL itself
	 * once WRITE is free, so the frames need not be indexed now. */
	try_restart(db, w, valid);
	return 0;
}

/* ---- appending ------------------------------------------------------------ */

static int write_frame_locked(rwal_txn *x, uint32_t commit, lx_err *err)
{
	database *db = x->db;
	db_assert_locked(db);
	replica_wal *w = db->rwal;
	uint32_t ps = w->whdr.page_size;
	uint64_t off = wal_frame_offset(ps, x->next - 1);
	int rc;

	if (!x->header_written && w->fresh) {
		uint8_t raw[WAL_HEADER_SIZE];
		wal_header_encode(&w->whdr, raw);
		db_preserve_locked(db, DBF_WAL, 0, WAL_HEADER_SIZE);
		rc = lx_pwrite_all(db->file[DBF_WAL]->fd, raw, sizeof(raw), 0);
		if (rc < 0)
			return lx_err_sys(err, -rc, "db %s: write the WAL header", db->name);
		x->header_written = 1;
	}
	wal_frame_encode(&w->whdr, x->pending, commit, x->frame, &x->chain);
	db_preserve_locked(db, DBF_WAL, off, WAL_FRAME_HEADER_SIZE + ps);
	rc = lx_pwrite_all(db->file[DBF_WAL]->fd, x->frame, WAL_FRAME_HEADER_SIZE + ps, off);
	if (rc < 0)
		return lx_err_sys(err, -rc, "db %s: append to the WAL", db->name);
	if (x->next > w->pgno_cap) {
		size_t cap = w->pgno_cap ? w->pgno_cap * 2 : 1024;
		uint32_t *v;
		while (cap < x->next)
			cap *= 2;
		v = realloc(w->pgno_of, cap * sizeof(*v));
		if (v == NULL)
			return lx_err_set(err, ENOMEM, "out of memory");
		w->pgno_of = v;
		w->pgno_cap = cap;
	}
	w->pgno_of[x->next - 1] = x->pending;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		txn_page *v = realloc(x->pages, cap * sizeof(*v));
		if (v == NULL)
			return lx_err_set(err, ENOMEM, "out of memory");
		x->pages = v;
		x->cap = cap;
	}
	x->pages[x->n++] = (txn_page){ x->pending, x->pending_ck, SRC_WAL_FILE,
				       off + WAL_FRAME_HEADER_SIZE };
	x->next++;
	x->pending = 0;
	return 0;
}

static int put_page(void *ctx, uint32_t pgno, const uint8_t *data, uint64_t ck, lx_err *err)
{
	rwal_txn *x = ctx;
	uint32_t ps = x->db->rwal->whdr.page_size;
	if (x->pending != 0) {
		int rc = write_frame_locked(x, 0, err);
		if (rc < 0)
			return rc;
	}
	memcpy(x->frame + WAL_FRAME_HEADER_SIZE, data, ps);
	x->pending = pgno;
	x->pending_ck = ck;
	return 0;
}

int rwal_begin_locked(database *db, rwal_txn *x, apply_target *t, lx_err *err)
{
	db_assert_locked(db);
	replica_wal *w = db->rwal;
	memset(x, 0, sizeof(*x));
	x->db = db;
	if (db->file[DBF_WAL] == NULL) {
		int rc = db_open_backing_locked(db, DBF_WAL, O_CREAT, 0644, err);
		if (rc < 0)
			return rc;
	}
	x->first = x->next = w->ih.mx_frame + 1;
	x->chain = w->ih.frame_ck;
	x->frame = malloc(WAL_FRAME_HEADER_SIZE + w->whdr.page_size);
	if (x->frame == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	t->put = put_page;
	t->put_ctx = x;
	return 0;
}

txlog_anchor rwal_anchor(database *db, uint32_t n_pages)
{
	replica_wal *w = db->rwal;
	uint32_t frames = n_pages ? n_pages : 1;
	return (txlog_anchor){ w->whdr.salt1, w->whdr.salt2,
			       wal_frame_offset(w->whdr.page_size, (uint64_t)w->ih.mx_frame + frames) };
}

int rwal_commit_locked(rwal_txn *x, uint32_t commit, lx_err *err)
{
	database *db = x->db;
	db_assert_locked(db);
	replica_wal *w = db->rwal;
	db_wal_state *s = &db->wal;
	int rc;

	if (x->pending == 0) {
		/* No page changed (the database only shrank): a WAL transaction
		 * still needs a frame; page 1 as it is. */
		rc = db_read_page_locked(db, 1, x->frame + WAL_FRAME_HEADER_SIZE, err);
		if (rc < 0)
			return rc;
		x->pending = 1;
		x->pending_ck = ltx_page_checksum(1, x->frame + WAL_FRAME_HEADER_SIZE, w->whdr.page_size);
	}
	rc = write_frame_locked(x, commit, err);
	if (rc < 0)
		return rc;
	/* The capture state, exactly as a capture of these frames leaves it. */
	if (w->fresh) {
		uint8_t raw[WAL_HEADER_SIZE];
		wal_header_encode(&w->whdr, raw);
		db_wal_reset_locked(db);
		s->hdr = w->whdr;
		s->valid = 1;
	}
	s->processed = wal_frame_offset(w->whdr.page_size, x->next - 1);
	s->chain = x->chain;
	s->scanned = 1;
	s->commit_frame_end = 0;
	if (db_wal_remember_locked(db, x->pages, x->n) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	return 0;
}

void rwal_abort(rwal_txn *x)
{
	free(x->frame);
	free(x->pages);
	memset(x, 0, sizeof(*x));
}

void rwal_publish(rwal_txn *x)
{
	database *db = x->db;
	replica_wal *w = db->rwal;
	uint32_t last = x->next - 1, ps = w->whdr.page_size;
	uint64_t from = x->header_written ? 0 : wal_frame_offset(ps, x->first - 1);
	uint64_t to = wal_frame_offset(ps, last);
	wi_header cur;
	int valid;

	/* Readers may hold pages of an older generation at these offsets,
	 * and a size from before these frames. */
	store_range(db, DBF_WAL, from, to - from);
	w->fresh = 0;
	w->ih.mx_frame = last;
	w->ih.frame_ck = x->chain;
	db_lock_files_or_fail_later(db);
	w->ih.n_page = db->n_pages;
	w->ih.change = ++db->shm_change;
	pthread_mutex_unlock(&db->mu);
	valid = w->fd >= 0 && wi_header_load(w->reg[0], &cur) == 0;
	if (valid && map_regions(db, w, wi_regions_for(last)) == 0) {
		int bad = 0;
		for (uint32_t f = x->first; f <= last && !bad; f++)
			bad = wi_append(w->reg, f, w->pgno_of[f - 1]) < 0;
		if (!bad) {
			wi_header_store(w->reg[0], &w->ih);
		} else {
			/* Readers recover the index from the WAL itself. */
			lx_warn(db->name, "replica: wal-index hash table full; readers rebuild it");
			memset(w->reg[0], 0, 2 * WI_HEADER_SIZE);
		}
	} else if (valid) {
		memset(w->reg[0], 0, 2 * WI_HEADER_SIZE);   /* cannot grow: readers recover */
	}
	rwal_abort(x);
}

/* ---- checkpoint ----------------------------------------------------------- */

typedef struct frame_ref {
	uint32_t pgno, frame;
} frame_ref;

static int cmp_ref(const void *a, const void *b)
{
	const frame_ref *x = a, *y = b;
	if (x->pgno != y->pgno)
		return x->pgno < y->pgno ? -1 : 1;
	return x->frame > y->frame ? -1 : x->frame < y->frame;   /* newest first */
}

/*
 * Sort v by page and keep only the newest frame of each page; returns the
 * new length.  Done once for the whole range, not per batch: a batch that
 * began with an older duplicate of the previous batch's last page used to
 * copy that older version over the newer one, and readers then read a
 * stale page from the database file (torn rows, "malformed").
 */
static size_t newest_versions(frame_ref *v, size_t n)
{
	size_t kept = 0;
	qsort(v, n, sizeof(*v), cmp_ref);
	for (size_t i = 0; i < n; i++)
		if (kept == 0 || v[i].pgno != v[kept - 1].pgno)
			v[kept++] = v[i];   /* newest first within a page */
	return kept;
}

/* Copy the newest version of each page in frames (from, to] into the
 * database file; READ(0) and CKPT held.  Returns 0 or -errno. */
static int backfill(database *db, replica_wal *w, uint32_t from, uint32_t to, int whole)
{
	uint32_t ps = w->whdr.page_size;
	size_t n = 0, nref = to - from;
	frame_ref *v = malloc(nref * sizeof(*v));
	uint8_t *page = malloc(ps);
	int rc = 0;

	if (v == NULL || page == NULL) {
		free(v);
		free(page);
		return -ENOMEM;
	}
	for (uint32_t f = from + 1; f <= to; f++)
		v[n++] = (frame_ref){ w->pgno_of[f - 1], f };
	n = newest_versions(v, n);
	for (size_t i = 0; i < n && rc == 0;) {
		size_t end = i;
		db_lock_files_or_fail_later(db);
		if (db->file[DBF_DB] == NULL || db->file[DBF_WAL] == NULL)
			rc = -ENOENT;
		for (size_t done = 0; rc == 0 && end < n && done < CKPT_BATCH; end++) {
			uint64_t at = (uint64_t)(v[end].pgno - 1) * ps;
			if (v[end].pgno > w->ih.n_page && whole)
				continue;   /* cut below */
			rc = db_pread_page(db->file[DBF_WAL]->fd, page, ps,
					   wal_frame_offset(ps, v[end].frame - 1) + WAL_FRAME_HEADER_SIZE);
			if (rc == 0) {
				db_preserve_locked(db, DBF_DB, at, ps);
				rc = lx_pwrite_all(db->file[DBF_DB]->fd, page, ps, at);
			}
			done++;
		}
		pthread_mutex_unlock(&db->mu);
		/* Runs of consecutive pages go into the kernel's cache as they
		 * now are (before nBackfill says readers may read them there). */
		for (size_t j = i; j < end;) {
			size_t k = j + 1;
			while (k < end && v[k].pgno <= v[k - 1].pgno + 1)
				k++;
			if (v[j].pgno <= w->ih.n_page || !whole)
				store_range(db, DBF_DB, (uint64_t)(v[j].pgno - 1) * ps,
					    (uint64_t)(v[k - 1].pgno - v[j].pgno + 1) * ps);
			j = k;
		}
		i = end;
	}
	if (rc == 0 && whole) {
		uint64_t size = (uint64_t)w->ih.n_page * ps;
		struct stat st;
		db_lock_files_or_fail_later(db);
		if (db->file[DBF_DB] != NULL && fstat(db->file[DBF_DB]->fd, &st) == 0 &&
		    (uint64_t)st.st_size > size) {
			db_preserve_locked(db, DBF_DB, size, UINT64_MAX);
			if (ftruncate(db->file[DBF_DB]->fd, (off_t)size) < 0)
				rc = -errno;
		}
		pthread_mutex_unlock(&db->mu);
		db_tell_inval(db, DBF_DB, size, 0);
	}
	free(v);
	free(page);
	return rc;
}

void rwal_checkpoint(database *db, uint32_t min_frames)
{
	replica_wal *w = db->rwal;
	uint32_t mx, safe, bf;
	int mapped, rc;
	wi_header cur;

	if (w == NULL || !w->active || w->fresh || w->ih.mx_frame == 0)
		return;
	mapped = attach(db, w);   /* a reader may have created the shm since */
	if (mapped < 0)
		return;
	if (mapped && (wi_header_load(w->reg[0], &cur) < 0 || cur.mx_frame != w->ih.mx_frame))
		return;   /* readers are rebuilding the index */
	bf = mapped ? wi_backfill(w->reg[0]) : w->backfill;
	mx = w->ih.mx_frame;
	if (bf >= mx || mx - bf < min_frames)
		return;
	if (rwal_trylock(db, SHM_CKPT_LOCK) < 0)
		return;
	safe = mx;
	for (int i = 1; mapped && i < WI_NREADER; i++) {
		uint32_t y = wi_read_mark(w->reg[0], i);
		if (safe <= y)
			continue;
		if (rwal_trylock(db, SHM_READ_LOCK(i)) == 0) {
			wi_set_read_mark(w->reg[0], i, i == 1 ? safe : WI_READMARK_UNUSED);
			rwal_unlock(db, SHM_READ_LOCK(i));
		} else {
			safe = y;   /* a reader still reads up to its mark */
		}
	}
	if (bf < safe && rwal_trylock(db, SHM_READ_LOCK(0)) == 0) {
		rc = backfill(db, w, bf, safe, safe == mx);
		if (rc == 0) {
			w->db_unsynced = 1;
			w->backfill = safe;
			if (mapped)
				wi_set_backfill(w->reg[0], safe);
		} else {
			lx_warn(db->name, "replica: checkpoint: %s", strerror(-rc));
		}
		rwal_unlock(db, SHM_READ_LOCK(0));
	}
	rwal_unlock(db, SHM_CKPT_LOCK);
}

/* ---- leaving the WAL ------------------------------------------------------ */

void rwal_forget(database *db)
{
	replica_wal *w = db->rwal;
	if (w == NULL)
		return;
	w->active = 0;
	w->fresh = 0;
	w->backfill = 0;
	w->ih.mx_frame = 0;
}

int rwal_reset_index(database *db, uint32_t page_size, uint32_t n_pages, uint32_t change)
{
	replica_wal *w = db->rwal;
	wi_header h;
	if (w == NULL || attach(db, w) != 1)
		return -1;
	memset(&h, 0, sizeof(h));
	h.change = change;
	h.page_size = page_size;
	h.n_page = n_pages;
	h.salt1 = change;
	h.salt2 = ~change;
	wi_header_store(w->reg[0], &h);
	wi_set_backfill(w->reg[0], 0);
	wi_set_read_mark(w->reg[0], 0, 0);
	for (int i = 1; i < WI_NREADER; i++)
		wi_set_read_mark(w->reg[0], i, WI_READMARK_UNUSED);
	return 0;
}

void rwal_free(database *db)
{
	replica_wal *w = db->rwal;
	if (w == NULL)
		return;
	rwal_detach(db);
	free(w->pgno_of);
	free(w);
	db->rwal = NULL;
}
