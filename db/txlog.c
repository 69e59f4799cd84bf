/*
 * txlog.c - segment files holding a database's LTX transactions (see
 * txlog.h for the contract and the on-disk layout).
 */
#include "base/bytes.h"
#include "base/failpoint.h"
#include "db/txlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define RECORD_MAGIC 0x4c545852u  /* "LTXR" */
#define RECORD_FLAG_ANCHOR 0x1u
#define APPEND_FLUSH_SIZE (1u << 20)
#define PREZERO_AHEAD (1u << 20)       /* zeroed space kept past the records, at most */
#define PREZERO_MIN (4u << 10)         /* ... and at least (a small log's own size otherwise) */
#define RESERVE_STEP (64u << 10)       /* txlog_reserve allocates in steps of this, */
#define RESERVE_STEP_SMALL (4u << 10)  /* ... or this while the segment is smaller */
#define BASE_MAGIC 0x4c545842u    /* "LTXB" */
#define BASE_VERSION 1u
#define BASE_SIZE 32

/* ---- small helpers -------------------------------------------------------- */

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

static void encode_record_header(uint8_t out[TXLOG_RECORD_HEADER_SIZE],
				 uint64_t ltx_len, const txlog_anchor *a)
{
	uint32_t flags = a && a->wal_end ? RECORD_FLAG_ANCHOR : 0;
	lx_put_be32(out, RECORD_MAGIC);
	lx_put_be32(out + 4, flags);
	lx_put_be64(out + 8, ltx_len);
	lx_put_be32(out + 16, flags ? a->salt1 : 0);
	lx_put_be32(out + 20, flags ? a->salt2 : 0);
	lx_put_be64(out + 24, flags ? a->wal_end : 0);
	lx_put_be64(out + 32, XXH3_64bits(out, 32) | LTX_CHECKSUM_FLAG);
}

/* Returns 0 and fills len/anchor, or -EBADMSG. */
static int decode_record_header(const uint8_t in[TXLOG_RECORD_HEADER_SIZE],
				uint64_t *ltx_len, txlog_anchor *a)
{
	uint32_t flags;
	if (lx_get_be32(in) != RECORD_MAGIC)
		return -EBADMSG;
	if (lx_get_be64(in + 32) != (XXH3_64bits(in, 32) | LTX_CHECKSUM_FLAG))
		return -EBADMSG;
	flags = lx_get_be32(in + 4);
	if (flags & ~RECORD_FLAG_ANCHOR)
		return -EBADMSG;
	*ltx_len = lx_get_be64(in + 8);
	a->salt1 = lx_get_be32(in + 16);
	a->salt2 = lx_get_be32(in + 20);
	a->wal_end = lx_get_be64(in + 24);
	return 0;
}

static int is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* ---- the base file -------------------------------------------------------- */

/* A base is 0/0 (history from TXID 1) or a TXID with a real checksum. */
static int base_valid(uint64_t txid, uint64_t checksum)
{
	return txid == 0 ? checksum == 0 : (checksum & LTX_CHECKSUM_FLAG) != 0;
}

/* NULL and the position, or what is wrong with the bytes. */
static const char *decode_base(const uint8_t in[BASE_SIZE], uint64_t *txid,
			       uint64_t *checksum)
{
	if (lx_get_be32(in) != BASE_MAGIC)
		return "bad magic";
	if (lx_get_be32(in + 4) != BASE_VERSION)
		return "unknown version";
	if (lx_get_be64(in + 24) != XXH3_64bits(in, 24))
		return "checksum mismatch";
	*txid = lx_get_be64(in + 8);
	*checksum = lx_get_be64(in + 16);
	if (!base_valid(*txid, *checksum))
		return "invalid position";
	return NULL;
}

/* Load the `base` file into log->base_*: none is 0/0, a damaged one an error. */
static int load_base(txlog *log, lx_err *err)
{
	uint8_t b[BASE_SIZE];
	struct stat st;
	const char *bad = "wrong size";
	int rc = 0, fd = openat(log->dirfd, "base", O_RDONLY | O_CLOEXEC);

	log->base_txid = log->base_checksum = 0;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		rc = lx_err_sys(err, errno, "base file %s/base", log->dir);
	else if (st.st_size == BASE_SIZE && (rc = pread_full(fd, b, sizeof(b), 0)) < 0)
		rc = lx_err_sys(err, -rc, "base file %s/base: read", log->dir);
	else if (st.st_size == BASE_SIZE)
		bad = decode_base(b, &log->base_txid, &log->base_checksum);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && bad != NULL)
		rc = lx_err_set(err, EBADMSG, "base file %s/base is corrupt: %s", log->dir, bad);
	return rc;
}

/*
 * Make (txid, checksum) the stored base durably: write base.tmp, fsync,
 * rename over `base`, fsync the directory.  A 0/0 base removes the file.
 */
static int store_base(txlog *log, uint64_t txid, uint64_t checksum, lx_err *err)
{
	uint8_t b[BASE_SIZE];
	int fd, rc;

	if (txid == 0 && unlinkat(log->dirfd, "base", 0) < 0 && errno != ENOENT)
		return lx_err_sys(err, errno, "log %s: remove base", log->dir);
	if (txid != 0) {
		lx_put_be32(b, BASE_MAGIC);
		lx_put_be32(b + 4, BASE_VERSION);
		lx_put_be64(b + 8, txid);
		lx_put_be64(b + 16, checksum);
		lx_put_be64(b + 24, XXH3_64bits(b, 24));
		fd = openat(log->dirfd, "base.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return lx_err_sys(err, errno, "log %s: create base.tmp", log->dir);
		rc = lx_pwrite_all(fd, b, sizeof(b), 0);
		if (rc == 0 && fsync(fd) < 0)
			rc = -errno;
		close(fd);
		if (rc == 0 && renameat(log->dirfd, "base.tmp", log->dirfd, "base") < 0)
			rc = -errno;
		if (rc < 0) {
			unlinkat(log->dirfd, "base.tmp", 0);
			return lx_err_sys(err, -rc, "log %s: write base", log->dir);
		}
	}
	if (fsync(log->dirfd) < 0)
		return lx_err_sys(err, errno, "log %s: fsync directory", log->dir);
	log->base_txid = txid;
	log->base_checksum = checksum;
	return 0;
}

void txlog_base(const txlog *log, uint64_t *txid, uint64_t *checksum)
{
	if (log->n > 0) {
		*txid = log->ents[0].hdr.min_txid - 1;
		*checksum = log->ents[0].hdr.pre_checksum;
	} else {
		*txid = log->base_txid;
		*checksum = log->base_checksum;
	}
}

/* The position the next record must continue: the newest record's, or the base. */
static void tail_position(const txlog *log, uint64_t *txid, uint64_t *checksum)
{
	const txlog_entry *e = txlog_last(log);
	if (e == NULL) {
		txlog_base(log, txid, checksum);
		return;
	}
	*txid = e->hdr.max_txid;
	*checksum = e->post_checksum;
}

/* ---- opening and scanning ------------------------------------------------- */

static int add_entry(txlog *log, const txlog_entry *e)
{
	if (log->n == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 64;
		txlog_entry *v = realloc(log->ents, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		log->ents = v;
		log->cap = cap;
	}
	log->ents[log->n++] = *e;
	log->ltx_bytes += e->length;
	return 0;
}

static int add_segment(txlog *log, uint64_t first_txid, int fd, uint64_t size)
{
	if (log->nsegs == log->segs_cap) {
		size_t cap = log->segs_cap ? log->segs_cap * 2 : 8;
		txlog_segment *v = realloc(log->segs, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		log->segs = v;
		log->segs_cap = cap;
	}
	log->segs[log->nsegs++] = (txlog_segment){ first_txid, fd, size, size, 0 };
	__atomic_store_n(&log->sync_fd, fd, __ATOMIC_RELEASE);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Collect the first TXIDs of the segment files in `dir`, sorted. */
static int list_segments(txlog *log, uint64_t **ids, size_t *n, lx_err *err)
{
	DIR *d = fdopendir(dup(log->dirfd));
	struct dirent *de;
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return lx_err_sys(err, errno, "log %s: opendir", log->dir);
	while ((de = readdir(d)) != NULL) {
		char *end;
		uint64_t id;
		if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg") != 0)
			continue;
		id = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16)
			continue;
		if (*n == cap) {
			uint64_t *v;
			cap = cap ? cap * 2 : 16;
			v = realloc(*ids, cap * sizeof(*v));
			if (v == NULL) {
				closedir(d);
				return lx_err_set(err, ENOMEM, "log %s: out of memory", log->dir);
			}
			*ids = v;
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (*n > 0)
		qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return 0;
}

/*
 * Read the record at `off` of segment `seg` into *e.  Returns 0, -ENODATA
 * at a clean end of segment, or -EBADMSG for a damaged/torn record.
 */
static int read_record(txlog *log, uint32_t seg, uint64_t off, txlog_entry *e,
		       lx_err *err)
{
	txlog_segment *s = &log->segs[seg];
	uint8_t rh[TXLOG_RECORD_HEADER_SIZE], lh[LTX_HEADER_SIZE], tr[LTX_TRAILER_SIZE];
	uint64_t len;
	int rc;

	if (off == s->size)
		return -ENODATA;
	if (off + TXLOG_RECORD_HEADER_SIZE > s->size)
		return lx_err_set(err, EBADMSG, "offset %" PRIu64 ": truncated record header", off);
	rc = pread_full(s->fd, rh, sizeof(rh), off);
	if (rc < 0)
		return lx_err_sys(err, -rc, "read record header at %" PRIu64, off);
	memset(e, 0, sizeof(*e));
	if (is_zero(rh, sizeof(rh)))
		return -ENODATA;           /* zeroed space ahead of the records */
	if (decode_record_header(rh, &len, &e->anchor) < 0)
		return lx_err_set(err, EBADMSG, "offset %" PRIu64 ": bad record header", off);
	if (len < LTX_HEADER_SIZE + LTX_TRAILER_SIZE ||
	    off + TXLOG_RECORD_HEADER_SIZE + len > s->size)
		return lx_err_set(err, EBADMSG, "offset %" PRIu64 ": truncated record (%" PRIu64 " bytes)", off, len);
	e->seg = seg;
	e->offset = off + TXLOG_RECORD_HEADER_SIZE;
	e->length = len;
	if ((rc = pread_full(s->fd, lh, sizeof(lh), e->offset)) < 0 ||
	    (rc = pread_full(s->fd, tr, sizeof(tr), e->offset + len - LTX_TRAILER_SIZE)) < 0)
		return lx_err_sys(err, -rc, "read record at %" PRIu64, off);
	rc = ltx_header_decode(lh, &e->hdr, err);
	if (rc < 0)
		return lx_err_wrap(err, "offset %" PRIu64, off);
	if (ltx_file_size(&e->hdr) != len)
		return lx_err_set(err, EBADMSG, "offset %" PRIu64 ": LTX size %" PRIu64 " does not match its header", off, len);
	e->post_checksum = lx_get_be64(tr);
	return 0;
}

static int check_contiguous(const txlog *log, const txlog_entry *e, lx_err *err)
{
	const txlog_entry *prev = txlog_last(log);
	if (prev == NULL)
		return 0;
	if (e->hdr.min_txid != prev->hdr.max_txid + 1 ||
	    e->hdr.pre_checksum != prev->post_checksum)
		return lx_err_set(err, EBADMSG,
			"TXID %" PRIu64 " (pre-checksum %016" PRIx64 ") does not follow TXID %" PRIu64 " (checksum %016" PRIx64 ")",
			e->hdr.min_txid, e->hdr.pre_checksum, prev->hdr.max_txid, prev->post_checksum);
	return 0;
}

/* Scan one segment; a bad record in the last segment ends the log there. */
static int scan_segment(txlog *log, uint32_t seg, int last, lx_err *err)
{
	uint64_t off = 0;
	for (;;) {
		txlog_entry e;
		int rc = read_record(log, seg, off, &e, err);
		if (rc == -ENODATA) {
			log->segs[seg].size = off;
			return 0;
		}
		if (rc == 0)
			rc = check_contiguous(log, &e, err);
		if (rc == -EBADMSG && last && log->readonly) {
			/* An append in progress, or a torn one: the log ends here. */
			log->segs[seg].size = off;
			lx_err_clear(err);
			return 1;
		}
		if (rc == -EBADMSG && last) {
			/* A crash in the middle of an append: cut the torn tail. */
			if (ftruncate(log->segs[seg].fd, (off_t)off) < 0)
				return lx_err_sys(err, errno, "truncate torn tail");
			log->segs[seg].size = log->segs[seg].file_size = off;
			lx_err_clear(err);
			return 1;
		}
		if (rc < 0)
			return lx_err_wrap(err, "segment %016" PRIx64, log->segs[seg].first_txid);
		rc = add_entry(log, &e);
		if (rc < 0)
			return lx_err_set(err, -rc, "out of memory");
		off = e.offset + e.length;
	}
}

static int open_segments(txlog *log, lx_err *err)
{
	uint64_t *ids;
	size_t n;
	int rc = list_segments(log, &ids, &n, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		char name[32];
		struct stat st;
		int fd;
		snprintf(name, sizeof(name), "%016" PRIx64 ".seg", ids[i]);
		fd = openat(log->dirfd, name, (log->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = lx_err_sys(err, errno, "open segment %s/%s", log->dir, name);
			if (fd >= 0)
				close(fd);
			break;
		}
		rc = add_segment(log, ids[i], fd, (uint64_t)st.st_size);
		if (rc < 0) {
			close(fd);
			rc = lx_err_set(err, ENOMEM, "out of memory");
			break;
		}
		rc = scan_segment(log, (uint32_t)(log->nsegs - 1), i + 1 == n, err);
	}
	free(ids);
	return rc < 0 ? rc : 0;
}

/*
 * The newest record may be a torn append whose length fits in the segment:
 * the space ahead of the records is written with zeros, so a record cut
 * short by a crash reads as complete, its missing bytes zero.  Its trailer
 * then is zero too, which a complete record's never is (its checksums carry
 * bit 63): drop it, as a torn tail (the transaction was never acknowledged:
 * the WAL frames or the hot journal it came from are still there, and
 * recovery takes them from there).  A newest record that fails otherwise is
 * damage, reported.
 */
static int verify_tail(txlog *log, lx_err *err)
{
	const txlog_entry *e = txlog_last(log);
	uint8_t tr[LTX_TRAILER_SIZE];
	lx_err verr;
	int rc;
	if (e == NULL)
		return 0;
	if (txlog_verify_entry(log, e, &verr) == 0) {
		log->ents[log->n - 1].verified = 1;
		return 0;
	}
	rc = pread_full(log->segs[e->seg].fd, tr, sizeof(tr), e->offset + e->length - sizeof(tr));
	if (rc == 0 && is_zero(tr, sizeof(tr)) && e->seg == log->nsegs - 1)
		return txlog_truncate_from(log, log->n - 1, err);
	return lx_err_set(err, EBADMSG, "newest transaction TXID %" PRIu64 " is corrupt: %s",
			  e->hdr.max_txid, verr.msg);
}

static int open_log(txlog **out, const char *dir, int readonly, lx_err *err)
{
	txlog *log = calloc(1, sizeof(*log));
	int rc;

	*out = NULL;
	if (log == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	log->dirfd = -1;
	log->sync_fd = -1;
	log->readonly = readonly;
	log->segment_max = TXLOG_SEGMENT_MAX;
	pthread_mutex_init(&log->sync_lock, NULL);
	log->dir = strdup(dir);
	if (log->dir == NULL) {
		txlog_close(log);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	if (!readonly && mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = lx_err_sys(err, errno, "mkdir %s", dir);
		txlog_close(log);
		return rc;
	}
	log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dirfd < 0) {
		rc = lx_err_sys(err, errno, "open %s", dir);
		txlog_close(log);
		return rc;
	}
	rc = load_base(log, err);
	if (rc == 0)
		rc = open_segments(log, err);
	if (rc == 0 && !readonly)
		rc = verify_tail(log, err);
	if (rc < 0) {
		lx_err_wrap(err, "log %s", dir);
		txlog_close(log);
		return rc;
	}
	*out = log;
	return 0;
}

int txlog_open(txlog **out, const char *dir, lx_err *err)
{
	return open_log(out, dir, 0, err);
}

int txlog_open_readonly(txlog **out, const char *dir, lx_err *err)
{
	return open_log(out, dir, 1, err);
}

/*
 * An idle or closing log gives back the zeros written ahead and the space
 * reserved past its records: they only speed up appends that are not
 * coming, and 10,000 idle databases must cost their own size on disk.
 */
static void release_slack(txlog *log)
{
	txlog_segment *s = log->nsegs ? &log->segs[log->nsegs - 1] : NULL;
	if (log->readonly || s == NULL || s->fd < 0 || log->appending ||
	    (s->file_size <= s->size && s->reserved <= s->size))
		return;
	if (ftruncate(s->fd, (off_t)s->size) == 0) {
		s->file_size = s->size;
		s->reserved = 0;
	}
}

void txlog_close(txlog *log)
{
	if (log == NULL)
		return;
	release_slack(log);
	for (size_t i = 0; i < log->nsegs; i++)
		if (log->segs[i].fd >= 0)
			close(log->segs[i].fd);
	if (log->dirfd >= 0)
		close(log->dirfd);
	pthread_mutex_destroy(&log->sync_lock);
	free(log->segs);
	free(log->ents);
	free(log->buf);
	free(log->dir);
	free(log);
}

/* ---- descriptors of an idle log ---------------------------------------------- */

int txlog_close_fds(txlog *log)
{
	if (log->fds_closed)
		return 0;
	if (log->appending || pthread_mutex_trylock(&log->sync_lock) != 0)
		return -EBUSY;
	release_slack(log);
	log->closed_has_seg = log->nsegs > 0;
	log->closed_seg_txid = log->nsegs ? log->segs[log->nsegs - 1].first_txid : 0;
	__atomic_store_n(&log->sync_fd, -1, __ATOMIC_RELEASE);
	for (size_t i = 0; i < log->nsegs; i++) {
		close(log->segs[i].fd);
		log->segs[i].fd = -1;
	}
	close(log->dirfd);
	log->dirfd = -1;
	log->fds_closed = 1;
	pthread_mutex_unlock(&log->sync_lock);
	return 0;
}

int txlog_open_fds(txlog *log, lx_err *err)
{
	int dirfd, rc = 0;
	size_t i = 0;
	if (!log->fds_closed)
		return 0;
	dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return lx_err_sys(err, errno, "log %s: open", log->dir);
	for (; i < log->nsegs; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%016" PRIx64 ".seg", log->segs[i].first_txid);
		log->segs[i].fd = openat(dirfd, name, (log->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (log->segs[i].fd < 0) {
			rc = lx_err_sys(err, errno, "log %s: open segment %s", log->dir, name);
			break;
		}
	}
	if (rc < 0) {
		while (i > 0) {
			close(log->segs[--i].fd);
			log->segs[i].fd = -1;
		}
		close(dirfd);
		return rc;
	}
	pthread_mutex_lock(&log->sync_lock);
	log->dirfd = dirfd;
	__atomic_store_n(&log->sync_fd, log->nsegs ? log->segs[log->nsegs - 1].fd : -1,
			 __ATOMIC_RELEASE);
	log->fds_closed = 0;
	pthread_mutex_unlock(&log->sync_lock);
	return 0;
}

size_t txlog_fd_count(const txlog *log)
{
	return log->fds_closed ? 0 : 1 + log->nsegs;
}

const txlog_entry *txlog_find(const txlog *log, uint64_t txid)
{
	size_t lo = 0, hi = log->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const txlog_entry *e = &log->ents[mid];
		if (txid < e->hdr.min_txid)
			hi = mid;
		else if (txid > e->hdr.max_txid)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

void txlog_set_segment_max_age(txlog *log, uint64_t ms)
{
	log->segment_max_age_ms = ms;
}

/* The newest segment is full, or (with an age limit) old enough. */
static int newest_segment_done(const txlog *log)
{
	const txlog_segment *seg = &log->segs[log->nsegs - 1];
	const txlog_entry *first;
	struct timespec now;
	if (seg->size >= log->segment_max)
		return 1;
	if (log->segment_max_age_ms == 0 || (first = txlog_find(log, seg->first_txid)) == NULL ||
	    first->seg != log->nsegs - 1)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - first->hdr.timestamp_ms >=
	       (int64_t)log->segment_max_age_ms;
}

void txlog_set_segment_max(txlog *log, uint64_t bytes)
{
	log->segment_max = bytes < TXLOG_SEGMENT_MIN ? TXLOG_SEGMENT_MIN : bytes;
}

/* ---- appending ------------------------------------------------------------ */

/*
 * Keep zeros written past the records: as many bytes as the segment holds,
 * between PREZERO_MIN and PREZERO_AHEAD, refilled when half is used.  A busy
 * log gets the full megabyte that makes its appends cheap to sync; a small
 * database's log stays near its own size (10,000 one-row databases must not
 * take 10 GB).  Only an optimisation: a failure (a full disk) leaves
 * appends extending the file, as they would without it.
 */
static void prezero_ahead(txlog_segment *s, uint64_t segment_max)
{
	static const uint8_t zeros[64 << 10];
	uint64_t ahead = s->size < PREZERO_MIN ? PREZERO_MIN :
			 s->size > PREZERO_AHEAD ? PREZERO_AHEAD : s->size;
	uint64_t want = s->size + ahead;
	if (s->file_size >= s->size + ahead / 2 || s->size >= segment_max)
		return;
	if (want > segment_max)
		want = segment_max;
	while (s->file_size < want) {
		size_t n = want - s->file_size < sizeof(zeros) ? (size_t)(want - s->file_size) : sizeof(zeros);
		if (lx_pwrite_all(s->fd, zeros, n, s->file_size) < 0)
			return;
		s->file_size += n;
	}
}

int txlog_reserve(txlog *log, uint64_t bytes, lx_err *err)
{
	txlog_segment *s;
	uint64_t from, want, step;
	if (log->readonly || log->no_fallocate || log->nsegs == 0 || newest_segment_done(log))
		return 0;
	s = &log->segs[log->nsegs - 1];
	want = s->size + bytes;
	from = s->reserved > s->file_size ? s->reserved : s->file_size;
	if (want <= from)
		return 0;
	/* Small steps for a small log: 10,000 one-row databases must not each
	 * keep 64 KiB reserved. */
	step = s->size < RESERVE_STEP ? RESERVE_STEP_SMALL : RESERVE_STEP;
	want = (want + bytes / 8 + step - 1) / step * step;
	if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(want - from)) < 0) {
		if (errno == EOPNOTSUPP || errno == ENOSYS) {
			log->no_fallocate = 1;
			return 0;
		}
		return lx_err_sys(err, errno, "log %s: reserve %" PRIu64 " bytes", log->dir, want - from);
	}
	s->reserved = want;
	return 0;
}

static int create_segment(txlog *log, uint64_t first_txid, lx_err *err)
{
	char name[32];
	int fd, rc;
	snprintf(name, sizeof(name), "%016" PRIx64 ".seg", first_txid);
	fd = openat(log->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return lx_err_sys(err, errno, "create segment %s/%s", log->dir, name);
	rc = add_segment(log, first_txid, fd, 0);
	if (rc < 0) {
		close(fd);
		unlinkat(log->dirfd, name, 0);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	prezero_ahead(&log->segs[log->nsegs - 1], log->segment_max);
	__atomic_store_n(&log->dir_dirty, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Make the previous segment durable before a new one takes its place, so
 * txlog_sync() only ever needs to sync the newest segment. */
static int rotate_segment(txlog *log, uint64_t first_txid, lx_err *err)
{
	if (log->nsegs > 0) {
		txlog_segment *s = &log->segs[log->nsegs - 1];
		if (fdatasync(s->fd) < 0)
			return lx_err_sys(err, errno, "sync segment before rotation");
		/* Its zeros and reserved blocks are of no more use. */
		if (ftruncate(s->fd, (off_t)s->size) == 0) {
			s->file_size = s->size;
			s->reserved = 0;
		}
	}
	return create_segment(log, first_txid, err);
}

static int buf_reserve(txlog *log, size_t extra)
{
	size_t want = log->buf_len + extra;
	if (want <= log->buf_cap)
		return 0;
	want = want < 65536 ? 65536 : want * 2;
	uint8_t *b = realloc(log->buf, want);
	if (b == NULL)
		return -ENOMEM;
	log->buf = b;
	log->buf_cap = want;
	return 0;
}

static int flush_append_buffer(txlog *log)
{
	txlog_segment *s = &log->segs[log->nsegs - 1];
	int rc;
	if (log->buf_len == 0)
		return 0;
	if (lx_failpoints_on && lx_failpoint_due("log.append.torn")) {
		if (lx_pwrite_all(s->fd, log->buf, log->buf_len / 2, log->rec_offset + log->rec_written) == 0)
			fdatasync(s->fd);
		lx_failpoint_kill("log.append.torn");
	}
	rc = lx_pwrite_all(s->fd, log->buf, log->buf_len,
			 log->rec_offset + log->rec_written);
	if (rc < 0)
		return rc;
	log->rec_written += log->buf_len;
	log->buf_len = 0;
	return 0;
}

/* A record starting at `first_txid` must continue the log (a snapshot may
 * start an empty one).  Checked before a segment is named after it. */
static int check_next_txid(const txlog *log, uint64_t first_txid, lx_err *err)
{
	uint64_t txid, checksum;
	tail_position(log, &txid, &checksum);
	if (first_txid == txid + 1 || (first_txid == 1 && log->n == 0))
		return 0;
	return lx_err_set(err, EINVAL, "log %s: TXID %" PRIu64 " does not follow the log's TXID %" PRIu64,
			  log->dir, first_txid, txid);
}

/* The header append_end receives must match append_begin and continue the
 * log's checksum. */
static int check_continues(const txlog *log, const ltx_header *hdr, lx_err *err)
{
	uint64_t txid, checksum;
	tail_position(log, &txid, &checksum);
	if (hdr->min_txid != log->rec_first_txid)
		return lx_err_set(err, EINVAL, "log %s: LTX starts at TXID %" PRIu64 ", append began at %" PRIu64,
				  log->dir, hdr->min_txid, log->rec_first_txid);
	if (!ltx_header_is_snapshot(hdr) && hdr->pre_checksum != checksum)
		return lx_err_set(err, EINVAL,
			"log %s: TXID %" PRIu64 " pre-checksum %016" PRIx64 " does not continue checksum %016" PRIx64 " of TXID %" PRIu64,
			log->dir, hdr->min_txid, hdr->pre_checksum, checksum, txid);
	return 0;
}

int txlog_append_begin(txlog *log, uint64_t ltx_len, uint64_t first_txid,
		       const txlog_anchor *anchor, lx_err *err)
{
	int rc;
	if (log->readonly)
		return lx_err_set(err, EROFS, "log %s: opened read-only", log->dir);
	if (log->appending)
		return lx_err_set(err, EINVAL, "log %s: append already in progress", log->dir);
	rc = check_next_txid(log, first_txid, err);
	if (rc < 0)
		return rc;
	if (log->nsegs == 0 || newest_segment_done(log)) {
		rc = rotate_segment(log, first_txid, err);
		if (rc < 0)
			return rc;
	}
	log->buf_len = 0;
	if (buf_reserve(log, TXLOG_RECORD_HEADER_SIZE) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	encode_record_header(log->buf, ltx_len, anchor);
	log->buf_len = TXLOG_RECORD_HEADER_SIZE;
	log->rec_offset = log->segs[log->nsegs - 1].size;
	log->rec_written = 0;
	log->rec_ltx_len = ltx_len;
	log->rec_first_txid = first_txid;
	if (anchor != NULL && anchor->wal_end != 0)
		log->rec_anchor = *anchor;
	else
		memset(&log->rec_anchor, 0, sizeof(log->rec_anchor));
	log->appending = 1;
	return 0;
}

int txlog_append_write(void *ctx, const void *buf, size_t len)
{
	txlog *log = ctx;
	if (buf_reserve(log, len) < 0)
		return -ENOMEM;
	memcpy(log->buf + log->buf_len, buf, len);
	log->buf_len += len;
	if (log->buf_len >= APPEND_FLUSH_SIZE)
		return flush_append_buffer(log);
	return 0;
}

int txlog_append_end(txlog *log, const ltx_header *hdr, uint64_t post_checksum,
		     lx_err *err)
{
	txlog_segment *s = &log->segs[log->nsegs - 1];
	txlog_entry e;
	int rc = flush_append_buffer(log);

	if (rc < 0) {
		txlog_append_abort(log);
		return lx_err_sys(err, -rc, "log %s: write", log->dir);
	}
	rc = check_continues(log, hdr, err);
	if (rc < 0) {
		txlog_append_abort(log);
		return rc;
	}
	memset(&e, 0, sizeof(e));
	e.hdr = *hdr;
	e.post_checksum = post_checksum;
	e.anchor = log->rec_anchor;
	e.seg = (uint32_t)(log->nsegs - 1);
	e.offset = log->rec_offset + TXLOG_RECORD_HEADER_SIZE;
	e.length = log->rec_ltx_len;
	e.verified = 1;
	if (log->rec_written != TXLOG_RECORD_HEADER_SIZE + e.length ||
	    ltx_file_size(hdr) != e.length) {
		txlog_append_abort(log);
		return lx_err_set(err, EIO, "log %s: LTX length mismatch", log->dir);
	}
	if (add_entry(log, &e) < 0) {
		txlog_append_abort(log);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	s->size = log->rec_offset + log->rec_written;
	if (s->file_size < s->size)
		s->file_size = s->size;
	log->appending = 0;
	prezero_ahead(s, log->segment_max);
	__atomic_add_fetch(&log->append_seq, 1, __ATOMIC_RELEASE);
	return 0;
}

void txlog_append_abort(txlog *log)
{
	if (!log->appending)
		return;
	log->appending = 0;
	log->buf_len = 0;
	if (log->rec_written > 0) {
		txlog_segment *s = &log->segs[log->nsegs - 1];
		if (ftruncate(s->fd, (off_t)log->rec_offset) < 0) {
			/* The torn record is cut at the next open. */
		} else {
			s->file_size = log->rec_offset;
		}
	}
}

/* ---- durability ----------------------------------------------------------- */

/* txlog_sync() of a log whose descriptors are closed (sync_lock held):
 * what was appended before they were closed is synced through new ones. */
static int sync_closed(txlog *log, lx_err *err)
{
	char path[4096];
	int fd, rc = 0;
	if (log->closed_has_seg) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".seg", log->dir, log->closed_seg_txid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fdatasync(fd) < 0)
			rc = lx_err_sys(err, errno, "log %s: fdatasync", log->dir);
		if (fd >= 0)
			close(fd);
	}
	if (rc == 0 && __atomic_exchange_n(&log->dir_dirty, 0, __ATOMIC_ACQ_REL)) {
		fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			rc = lx_err_sys(err, errno, "log %s: fsync directory", log->dir);
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

int txlog_sync(txlog *log, lx_err *err)
{
	uint64_t target;
	int fd, rc = 0;

	pthread_mutex_lock(&log->sync_lock);
	target = __atomic_load_n(&log->append_seq, __ATOMIC_ACQUIRE);
	if (log->synced_seq >= target) {
		pthread_mutex_unlock(&log->sync_lock);
		return 0;
	}
	if (log->fds_closed) {
		rc = sync_closed(log, err);
		if (rc == 0)
			__atomic_store_n(&log->synced_seq, target, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&log->sync_lock);
		return rc;
	}
	/* Rotation syncs older segments, so the newest is all we need. */
	fd = __atomic_load_n(&log->sync_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0 && fdatasync(fd) < 0)
		rc = lx_err_sys(err, errno, "log %s: fdatasync", log->dir);
	if (rc == 0 && __atomic_exchange_n(&log->dir_dirty, 0, __ATOMIC_ACQ_REL) &&
	    fsync(log->dirfd) < 0)
		rc = lx_err_sys(err, errno, "log %s: fsync directory", log->dir);
	if (rc == 0)
		__atomic_store_n(&log->synced_seq, target, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&log->sync_lock);
	return rc;
}

/* ---- truncation, reading, verification ------------------------------------ */

static void segment_name(const txlog *log, size_t i, char name[32])
{
	snprintf(name, 32, "%016" PRIx64 ".seg", log->segs[i].first_txid);
}

static void remove_segment_file(txlog *log, size_t i)
{
	char name[32];
	segment_name(log, i, name);
	close(log->segs[i].fd);
	unlinkat(log->dirfd, name, 0);
}

int txlog_truncate_from(txlog *log, size_t index, lx_err *err)
{
	uint32_t seg;
	uint64_t cut;
	if (index >= log->n)
		return 0;
	if (index == 0) {
		/* The log becomes empty: keep its base in the base file. */
		uint64_t txid, checksum;
		int rc;
		txlog_base(log, &txid, &checksum);
		rc = store_base(log, txid, checksum, err);
		if (rc < 0)
			return rc;
	}
	seg = log->ents[index].seg;
	cut = log->ents[index].offset - TXLOG_RECORD_HEADER_SIZE;
	/* No txlog_sync() may be syncing a segment while it is closed. */
	pthread_mutex_lock(&log->sync_lock);
	__atomic_store_n(&log->sync_fd, log->segs[seg].fd, __ATOMIC_RELEASE);
	while (log->nsegs > seg + 1)
		remove_segment_file(log, --log->nsegs);
	pthread_mutex_unlock(&log->sync_lock);
	if (ftruncate(log->segs[seg].fd, (off_t)cut) < 0 ||
	    fdatasync(log->segs[seg].fd) < 0)
		return lx_err_sys(err, errno, "log %s: truncate", log->dir);
	log->segs[seg].size = log->segs[seg].file_size = cut;
	while (log->n > index)
		log->ltx_bytes -= log->ents[--log->n].length;
	__atomic_store_n(&log->dir_dirty, 1, __ATOMIC_RELEASE);
	return 0;
}

int txlog_reset_to(txlog *log, uint64_t txid, uint64_t checksum, lx_err *err)
{
	int rc;
	if (log->readonly)
		return lx_err_set(err, EROFS, "log %s: opened read-only", log->dir);
	if (log->appending)
		return lx_err_set(err, EINVAL, "log %s: append in progress", log->dir);
	if (!base_valid(txid, checksum))
		return lx_err_set(err, EINVAL, "log %s: invalid base TXID %" PRIu64 ", checksum %016" PRIx64,
				  log->dir, txid, checksum);
	rc = store_base(log, txid, checksum, err);
	if (rc < 0)
		return rc;
	/* Oldest first: a crash part-way leaves a shorter log, not a gap. */
	pthread_mutex_lock(&log->sync_lock);
	__atomic_store_n(&log->sync_fd, -1, __ATOMIC_RELEASE);
	for (size_t i = 0; i < log->nsegs; i++)
		remove_segment_file(log, i);
	log->nsegs = 0;
	pthread_mutex_unlock(&log->sync_lock);
	log->n = 0;
	log->ltx_bytes = 0;
	if (fsync(log->dirfd) < 0)
		return lx_err_sys(err, errno, "log %s: fsync directory", log->dir);
	return 0;
}

int txlog_reset(txlog *log, lx_err *err)
{
	return txlog_reset_to(log, 0, 0, err);
}

/* ---- retention ------------------------------------------------------------ */

/* Whether a record stamped `ts` is more than max_age_ms (0: no limit) old. */
static int too_old(int64_t ts, int64_t now_ms, uint64_t max_age_ms)
{
	return max_age_ms != 0 && ts < now_ms &&
	       (uint64_t)now_ms - (uint64_t)ts > max_age_ms;
}

/*
 * How many segments from the oldest end txlog_trim() may remove (see
 * txlog.h).  Only the newest segment should ever lack records; one before
 * the newest record's would go regardless of the limits.
 */
static size_t trimmable_segments(const txlog *log, int64_t now_ms,
				 uint64_t max_age_ms, uint64_t max_bytes)
{
	uint64_t bytes = log->ltx_bytes;
	size_t seg = 0, i = 0;
	if (log->n == 0)
		return 0;
	for (; seg < log->ents[log->n - 1].seg; seg++) {
		size_t end = i;
		while (end < log->n && log->ents[end].seg == seg)
			end++;
		if (end > i && !too_old(log->ents[end - 1].hdr.timestamp_ms, now_ms, max_age_ms) &&
		    !(max_bytes != 0 && bytes > max_bytes))
			break;
		for (; i < end; i++)
			bytes -= log->ents[i].length;
	}
	return seg;
}

/* Forget the first `k` segments (closed and unlinked) and their records;
 * returns the number of records forgotten. */
static size_t forget_front_segments(txlog *log, size_t k)
{
	size_t r = 0;
	while (r < log->n && log->ents[r].seg < k)
		log->ltx_bytes -= log->ents[r++].length;
	log->n -= r;
	memmove(log->ents, log->ents + r, log->n * sizeof(*log->ents));
	for (size_t i = 0; i < log->n; i++)
		log->ents[i].seg -= (uint32_t)k;
	log->nsegs -= k;
	memmove(log->segs, log->segs + k, log->nsegs * sizeof(*log->segs));
	return r;
}

int txlog_trim_due(const txlog *log, int64_t now_ms, uint64_t max_age_ms, uint64_t max_bytes)
{
	return !log->readonly && trimmable_segments(log, now_ms, max_age_ms, max_bytes) > 0;
}

int txlog_trim(txlog *log, int64_t now_ms, uint64_t max_age_ms,
	       uint64_t max_bytes, size_t *removed, lx_err *err)
{
	size_t k, done = 0;
	int rc;

	*removed = 0;
	if (log->readonly)
		return lx_err_set(err, EROFS, "log %s: opened read-only", log->dir);
	k = trimmable_segments(log, now_ms, max_age_ms, max_bytes);
	if (k == 0)
		return 0;
	rc = txlog_sync(log, err);
	/* Oldest first, each removal durable before the next: never a gap. */
	for (; rc == 0 && done < k; done++) {
		char name[32];
		segment_name(log, done, name);
		if (unlinkat(log->dirfd, name, 0) < 0 && errno != ENOENT) {
			rc = lx_err_sys(err, errno, "log %s: remove segment %s", log->dir, name);
			break;
		}
		close(log->segs[done].fd);
		if (fsync(log->dirfd) < 0)
			rc = lx_err_sys(err, errno, "log %s: fsync directory", log->dir);
	}
	*removed = forget_front_segments(log, done);
	return rc;
}

int txlog_read(const txlog *log, const txlog_entry *e, void *buf, lx_err *err)
{
	int rc = pread_full(log->segs[e->seg].fd, buf, e->length, e->offset);
	if (rc < 0)
		return lx_err_sys(err, -rc, "log %s: read TXID %" PRIu64, log->dir, e->hdr.max_txid);
	return 0;
}

int txlog_verify_entry(const txlog *log, const txlog_entry *e, lx_err *err)
{
	ltx_trailer t;
	int rc = ltx_verify_fd(log->segs[e->seg].fd, e->offset, e->length, NULL, &t, err);
	if (rc < 0)
		return lx_err_wrap(err, "TXID %" PRIu64, e->hdr.max_txid);
	if (t.post_checksum != e->post_checksum)
		return lx_err_set(err, EBADMSG, "TXID %" PRIu64 ": trailer changed", e->hdr.max_txid);
	return 0;
}
