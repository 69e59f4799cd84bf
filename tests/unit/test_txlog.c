/*
 * test_txlog.c - the transaction log (db/txlog.c) in a temporary
 * directory: appending and reopening, the base position (txlog_reset_to,
 * the `base` file), retention (txlog_trim) by size and by age, logs that
 * start after TXID 1, and `ltxfs log verify|replay` on such a log.
 *
 * Records are real LTX files made by the encoder: a snapshot for TXID 1,
 * then transactions of PAGES pages whose checksums chain (the post-apply
 * checksum of one is the pre-apply checksum of the next).
 */
#include "cmd/log_cmd.h"
#include "db/txlog.h"
#include "ltx/ltx.h"
#include "tests/unit/unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_SIZE 4096
#define PAGES 4                 /* per record: about 16.5 KB of LTX */
#define SMALL_SEGMENT (64u << 10)
#define TS0 1700000000000LL

/* ---- helpers -------------------------------------------------------------- */

/* A log directory under a fresh temporary directory (laid out as a data
 * directory, dbs/t/log, so `ltxfs log` can read it). */
typedef struct fixture {
	char root[64];
	char dir[128];
	uint64_t post[256];     /* post-apply checksum of each TXID appended */
} fixture;

static void fixture_init(fixture *f)
{
	char path[128];
	memset(f, 0, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/ltxfs-test-txlog-XXXXXX");
	CHECK(mkdtemp(f->root) != NULL);
	snprintf(path, sizeof(path), "%s/dbs", f->root);
	CHECK_EQ_INT(0, mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/dbs/t", f->root);
	CHECK_EQ_INT(0, mkdir(path, 0755));
	snprintf(f->dir, sizeof(f->dir), "%s/dbs/t/log", f->root);
}

static void fixture_free(fixture *f)
{
	unit_remove_tree(f->root);
}

static txlog *open_log(const fixture *f)
{
	txlog *log = NULL;
	lx_err err;
	if (txlog_open(&log, f->dir, &err) < 0)
		unit_fail(__FILE__, __LINE__, "txlog_open: %s", err.msg);
	return log;
}

/*
 * Append TXID `txid` continuing checksum `pre` (ignored for TXID 1, a
 * snapshot), stamped `ts`.  Returns the append's result; on success
 * *post gets the new checksum.
 */
static int append_txn(txlog *log, uint64_t txid, uint64_t pre, int64_t ts,
		      uint64_t *post, lx_err *err)
{
	uint8_t page[PAGE_SIZE];
	ltx_header h;
	ltx_encoder enc;
	uint64_t ck = LTX_CHECKSUM_FLAG;
	int rc;

	memset(&h, 0, sizeof(h));
	h.page_size = PAGE_SIZE;
	h.commit = PAGES;
	h.page_count = PAGES;
	h.min_txid = h.max_txid = txid;
	h.timestamp_ms = ts;
	h.pre_checksum = txid == 1 ? 0 : pre;
	h.node_id = 1;
	for (uint32_t p = 1; p <= PAGES; p++) {
		memset(page, (int)(txid * 7 + p), sizeof(page));
		ck ^= ltx_page_checksum(p, page, PAGE_SIZE);
	}
	if (txid != 1)
		ck = (ck ^ pre) | LTX_CHECKSUM_FLAG;  /* any chained value will do */
	rc = txlog_append_begin(log, ltx_file_size(&h), txid, NULL, err);
	if (rc < 0)
		return rc;
	memset(&enc, 0, sizeof(enc));
	rc = ltx_encoder_begin(&enc, &h, txlog_append_write, log, err);
	for (uint32_t p = 1; p <= PAGES && rc == 0; p++) {
		memset(page, (int)(txid * 7 + p), sizeof(page));
		rc = ltx_encoder_page(&enc, p, page, 0, err);
	}
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, ck, NULL, err);
	ltx_encoder_free(&enc);
	if (rc < 0) {
		txlog_append_abort(log);
		return rc;
	}
	rc = txlog_append_end(log, &h, ck, err);
	if (rc == 0)
		*post = ck;
	return rc;
}

/* Append TXIDs from..to, each continuing the one before (f->post). */
static void append_range(fixture *f, txlog *log, uint64_t from, uint64_t to,
			 int64_t ts_step)
{
	for (uint64_t t = from; t <= to; t++) {
		lx_err err;
		if (append_txn(log, t, f->post[t - 1], TS0 + (int64_t)t * ts_step,
			       &f->post[t], &err) < 0) {
			unit_fail(__FILE__, __LINE__, "append TXID %llu: %s",
				  (unsigned long long)t, err.msg);
			return;
		}
	}
}

static void check_base(const txlog *log, uint64_t txid, uint64_t checksum)
{
	uint64_t t, c;
	txlog_base(log, &t, &c);
	CHECK_EQ_U64(txid, t);
	CHECK_EQ_U64(checksum, c);
}

/* Number of *.seg files in the log directory. */
static size_t count_segment_files(const fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *de;
	size_t n = 0;
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strlen(de->d_name) == 20 && strstr(de->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static int base_file_exists(const fixture *f)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/base", f->dir);
	return access(path, F_OK) == 0;
}

/* The records are contiguous from txlog_base and each TXID is found. */
static void check_chain(const fixture *f, const txlog *log)
{
	uint64_t txid, checksum;
	txlog_base(log, &txid, &checksum);
	for (size_t i = 0; i < log->n; i++) {
		const txlog_entry *e = &log->ents[i];
		CHECK_EQ_U64(txid + 1, e->hdr.min_txid);
		CHECK_EQ_U64(checksum, e->hdr.pre_checksum);
		CHECK_EQ_U64(f->post[e->hdr.max_txid], e->post_checksum);
		CHECK(txlog_find(log, e->hdr.min_txid) == e);
		txid = e->hdr.max_txid;
		checksum = e->post_checksum;
	}
}

/* Run `ltxfs log CMD` on the fixture's database, its output discarded. */
static int run_log_cmd(const fixture *f, const char *cmd)
{
	char out[128];
	char *argv[] = { "log", (char *)cmd, "-data", (char *)f->root, "-name", "t",
			 "-o", out, NULL };
	int saved[2], null = open("/dev/null", O_WRONLY), rc;
	snprintf(out, sizeof(out), "%s/replayed.db", f->root);
	fflush(stdout);
	fflush(stderr);
	saved[0] = dup(1);
	saved[1] = dup(2);
	dup2(null, 1);
	dup2(null, 2);
	rc = cmd_log(8, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved[0], 1);
	dup2(saved[1], 2);
	close(saved[0]);
	close(saved[1]);
	close(null);
	return rc;
}

/* ---- appending and reopening ---------------------------------------------- */

static void test_append_reopen(void)
{
	fixture f;
	txlog *log;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	append_range(&f, log, 1, 6, 1000);
	CHECK_EQ_INT(6, log->n);
	CHECK_EQ_U64(6 * 16560, log->ltx_bytes);
	txlog_close(log);

	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(6, log->n);
	CHECK_EQ_U64(6 * 16560, log->ltx_bytes);
	check_base(log, 0, 0);
	check_chain(&f, log);
	CHECK(txlog_find(log, 7) == NULL);
	CHECK(txlog_find(log, 0) == NULL);
	for (size_t i = 0; i < log->n; i++)
		CHECK_EQ_INT(0, txlog_verify_entry(log, &log->ents[i], NULL));
	txlog_close(log);
out:
	fixture_free(&f);
}

/* A record must continue the newest one: a gap or a wrong pre-checksum is
 * refused and leaves nothing behind. */
static void test_append_refuses_gaps(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	uint64_t post;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(-EINVAL, append_txn(log, 2, LTX_CHECKSUM_FLAG | 1, TS0, &post, &err));
	CHECK_STR_CONTAINS(err.msg, "does not follow");
	append_range(&f, log, 1, 3, 1000);
	CHECK_EQ_INT(-EINVAL, append_txn(log, 5, f.post[3], TS0, &post, &err));
	CHECK_STR_CONTAINS(err.msg, "TXID 5 does not follow the log's TXID 3");
	CHECK_EQ_INT(-EINVAL, append_txn(log, 1, 0, TS0, &post, &err));
	CHECK_EQ_INT(-EINVAL, append_txn(log, 4, f.post[2], TS0, &post, &err));
	CHECK_STR_CONTAINS(err.msg, "does not continue checksum");
	CHECK_EQ_INT(3, log->n);
	append_range(&f, log, 4, 4, 1000);
	txlog_close(log);
	log = open_log(&f);
	if (log != NULL) {
		CHECK_EQ_INT(4, log->n);
		check_chain(&f, log);
	}
	txlog_close(log);
out:
	fixture_free(&f);
}

/* ---- the base position ---------------------------------------------------- */

static void test_reset_to_then_continue(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	uint64_t post, base_ck = LTX_CHECKSUM_FLAG | 0xabcdef;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	append_range(&f, log, 1, 5, 1000);
	CHECK_EQ_INT(-EINVAL, txlog_reset_to(log, 10, 0x1234, &err));
	CHECK_EQ_INT(-EINVAL, txlog_reset_to(log, 0, base_ck, &err));
	CHECK_EQ_INT(5, log->n);
	CHECK_EQ_INT(0, txlog_reset_to(log, 10, base_ck, &err));
	CHECK_EQ_INT(0, log->n);
	CHECK_EQ_U64(0, log->ltx_bytes);
	CHECK_EQ_INT(0, count_segment_files(&f));
	CHECK(base_file_exists(&f));
	check_base(log, 10, base_ck);
	CHECK(txlog_last(log) == NULL);

	/* Not the next TXID, then the right TXID with the wrong checksum. */
	CHECK_EQ_INT(-EINVAL, append_txn(log, 12, base_ck, TS0, &post, &err));
	CHECK_STR_CONTAINS(err.msg, "TXID 12 does not follow the log's TXID 10");
	CHECK_EQ_INT(-EINVAL, append_txn(log, 11, base_ck ^ 1, TS0, &post, &err));
	CHECK_STR_CONTAINS(err.msg, "does not continue checksum");
	CHECK_EQ_INT(0, log->n);
	check_base(log, 10, base_ck);

	f.post[10] = base_ck;
	append_range(&f, log, 11, 13, 1000);
	CHECK_EQ_INT(3, log->n);
	check_base(log, 10, base_ck);
	txlog_close(log);

	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(3, log->n);
	check_base(log, 10, base_ck);
	check_chain(&f, log);
	CHECK(txlog_find(log, 10) == NULL);
	CHECK(txlog_find(log, 11) == &log->ents[0]);
	CHECK_EQ_INT(0, run_log_cmd(&f, "verify"));
	CHECK_EQ_INT(1, run_log_cmd(&f, "replay"));
	txlog_close(log);
out:
	fixture_free(&f);
}

/* A snapshot may start a log reset to any base; it then starts at 0/0. */
static void test_reset_to_then_snapshot(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(0, txlog_reset_to(log, 40, LTX_CHECKSUM_FLAG | 7, &err));
	append_range(&f, log, 1, 2, 1000);
	CHECK_EQ_INT(2, log->n);
	check_base(log, 0, 0);
	txlog_close(log);
	/* The stale base file is ignored while there are records. */
	log = open_log(&f);
	if (log != NULL) {
		CHECK_EQ_INT(2, log->n);
		check_base(log, 0, 0);
	}
	txlog_close(log);
out:
	fixture_free(&f);
}

static void test_reopen_empty_after_reset_to(void)
{
	fixture f;
	txlog *log, *ro = NULL;
	lx_err err;
	uint64_t ck = LTX_CHECKSUM_FLAG | 0x55;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	append_range(&f, log, 1, 2, 1000);
	CHECK_EQ_INT(0, txlog_reset_to(log, 7, ck, &err));
	txlog_close(log);

	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(0, log->n);
	check_base(log, 7, ck);
	CHECK_EQ_INT(0, txlog_open_readonly(&ro, f.dir, &err));
	if (ro != NULL) {
		check_base(ro, 7, ck);
		CHECK_EQ_INT(-EROFS, txlog_reset_to(ro, 8, ck, &err));
	}
	txlog_close(ro);
	CHECK_EQ_INT(0, run_log_cmd(&f, "verify"));

	/* txlog_reset() returns to 0/0 and removes the file. */
	CHECK_EQ_INT(0, txlog_reset(log, &err));
	check_base(log, 0, 0);
	CHECK(!base_file_exists(&f));
	txlog_close(log);
	log = open_log(&f);
	if (log != NULL)
		check_base(log, 0, 0);
	txlog_close(log);
out:
	fixture_free(&f);
}

static void test_corrupt_base_file(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	char path[256];
	uint8_t b[64];
	int fd;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(0, txlog_reset_to(log, 9, LTX_CHECKSUM_FLAG | 3, &err));
	txlog_close(log);
	snprintf(path, sizeof(path), "%s/base", f.dir);

	/* A flipped bit. */
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ_INT(32, pread(fd, b, sizeof(b), 0));
	b[12] ^= 0x10;
	CHECK_EQ_INT(32, pwrite(fd, b, 32, 0));
	close(fd);
	log = NULL;
	CHECK_EQ_INT(-EBADMSG, txlog_open(&log, f.dir, &err));
	CHECK(log == NULL);
	CHECK_STR_CONTAINS(err.msg, path);
	CHECK_STR_CONTAINS(err.msg, "checksum mismatch");
	CHECK_EQ_INT(-EBADMSG, txlog_open_readonly(&log, f.dir, &err));
	CHECK_STR_CONTAINS(err.msg, path);

	/* A short file. */
	CHECK_EQ_INT(0, truncate(path, 20));
	CHECK_EQ_INT(-EBADMSG, txlog_open(&log, f.dir, &err));
	CHECK_STR_CONTAINS(err.msg, "wrong size");
	CHECK_EQ_INT(1, run_log_cmd(&f, "verify"));
out:
	fixture_free(&f);
}

/* ---- retention ------------------------------------------------------------ */

static void test_segment_max(void)
{
	fixture f;
	txlog *log;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_U64(TXLOG_SEGMENT_MAX, log->segment_max);
	txlog_set_segment_max(log, 100);
	CHECK_EQ_U64(TXLOG_SEGMENT_MIN, log->segment_max);
	append_range(&f, log, 1, 12, 1000);
	/* 16600-byte records: the fourth crosses 64 KiB, the fifth rolls over. */
	CHECK_EQ_INT(3, log->nsegs);
	CHECK_EQ_INT(3, count_segment_files(&f));
	CHECK_EQ_U64(5, log->segs[1].first_txid);
	CHECK_EQ_INT(1, log->ents[4].seg);
	txlog_close(log);
out:
	fixture_free(&f);
}

static void test_trim_by_bytes(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	size_t removed = 99;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	txlog_set_segment_max(log, SMALL_SEGMENT);
	append_range(&f, log, 1, 40, 1000);
	CHECK_EQ_INT(10, log->nsegs);

	/* No limits, or limits not reached: nothing goes. */
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, 0, &removed, &err));
	CHECK_EQ_INT(0, removed);
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, log->ltx_bytes, &removed, &err));
	CHECK_EQ_INT(0, removed);
	CHECK_EQ_INT(40, log->n);

	/* 4 records of 16560 bytes a segment: 9 segments go to get under
	 * 100000 bytes, and the segments are exactly what is left.  The kept
	 * records are made durable first. */
	CHECK(txlog_unsynced(log));
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, 100000, &removed, &err));
	CHECK(!txlog_unsynced(log));
	CHECK_EQ_INT(36, removed);
	CHECK_EQ_INT(4, log->n);
	CHECK_EQ_U64(4 * 16560, log->ltx_bytes);
	CHECK_EQ_INT(1, log->nsegs);
	CHECK_EQ_INT(1, count_segment_files(&f));
	CHECK_EQ_U64(37, log->segs[0].first_txid);
	CHECK_EQ_INT(0, log->ents[0].seg);
	check_base(log, 36, f.post[36]);
	check_chain(&f, log);
	CHECK(txlog_find(log, 36) == NULL);
	CHECK_EQ_U64(40, txlog_last(log)->hdr.max_txid);
	for (size_t i = 0; i < log->n; i++)
		CHECK_EQ_INT(0, txlog_verify_entry(log, &log->ents[i], NULL));

	/* The segment holding the newest record always stays. */
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, 1, &removed, &err));
	CHECK_EQ_INT(0, removed);
	CHECK_EQ_INT(4, log->n);

	/* Appending goes on from there. */
	append_range(&f, log, 41, 45, 1000);
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, 1, &removed, &err));
	CHECK_EQ_INT(8, removed);
	CHECK_EQ_INT(1, log->n);
	CHECK_EQ_U64(45, log->ents[0].hdr.min_txid);
	check_base(log, 44, f.post[44]);
	txlog_close(log);
out:
	fixture_free(&f);
}

static void test_trim_by_age(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	size_t removed = 99;
	int64_t now = TS0 + 20 * 1000 + 100;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	txlog_set_segment_max(log, SMALL_SEGMENT);
	append_range(&f, log, 1, 20, 1000);  /* TXID t stamped TS0 + t s */
	CHECK_EQ_INT(5, log->nsegs);

	/* Nothing is older than 30 s; a clock behind the records removes nothing. */
	CHECK_EQ_INT(0, txlog_trim(log, now, 30000, 0, &removed, &err));
	CHECK_EQ_INT(0, removed);
	CHECK_EQ_INT(0, txlog_trim(log, TS0 - 5000, 1, 0, &removed, &err));
	CHECK_EQ_INT(0, removed);

	/* Older than 9.5 s: records up to TXID 10 (TS0 + 10.0 s < now - 9.5 s).
	 * Segments hold TXIDs 1-4, 5-8, 9-12: the third has TXID 12, too new. */
	CHECK_EQ_INT(0, txlog_trim(log, now, 9500, 0, &removed, &err));
	CHECK_EQ_INT(8, removed);
	CHECK_EQ_U64(9, log->ents[0].hdr.min_txid);
	check_base(log, 8, f.post[8]);
	CHECK_EQ_INT(3, log->nsegs);

	/* A segment whose newest record is exactly max_age old stays. */
	CHECK_EQ_INT(0, txlog_trim(log, TS0 + 12000 + 5000, 5000, 0, &removed, &err));
	CHECK_EQ_INT(0, removed);
	CHECK_EQ_INT(0, txlog_trim(log, TS0 + 12000 + 5001, 5000, 0, &removed, &err));
	CHECK_EQ_INT(4, removed);

	/* Everything is old: the newest segment stays. */
	CHECK_EQ_INT(0, txlog_trim(log, now + 3600000, 1, 0, &removed, &err));
	CHECK_EQ_INT(4, removed);
	CHECK_EQ_INT(4, log->n);
	CHECK_EQ_U64(17, log->ents[0].hdr.min_txid);
	CHECK_EQ_U64(20, txlog_last(log)->hdr.max_txid);
	check_chain(&f, log);
	txlog_close(log);
out:
	fixture_free(&f);
}

static void test_reopen_after_trim(void)
{
	fixture f;
	txlog *log, *ro = NULL;
	lx_err err;
	size_t removed = 0;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	txlog_set_segment_max(log, SMALL_SEGMENT);
	append_range(&f, log, 1, 30, 1000);
	CHECK_EQ_INT(0, txlog_trim(log, TS0, 0, 150000, &removed, &err));
	CHECK_EQ_INT(24, removed);
	txlog_close(log);

	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(6, log->n);
	CHECK_EQ_U64(25, log->ents[0].hdr.min_txid);
	check_base(log, 24, f.post[24]);
	check_chain(&f, log);
	CHECK(txlog_find(log, 1) == NULL);
	CHECK(txlog_find(log, 24) == NULL);
	CHECK(txlog_find(log, 27) == &log->ents[2]);
	CHECK(txlog_find(log, 30) == &log->ents[5]);
	CHECK(txlog_find(log, 31) == NULL);
	CHECK_EQ_INT(0, txlog_open_readonly(&ro, f.dir, &err));
	if (ro != NULL) {
		CHECK_EQ_INT(6, ro->n);
		check_base(ro, 24, f.post[24]);
		CHECK(txlog_find(ro, 25) == &ro->ents[0]);
		CHECK_EQ_INT(-EROFS, txlog_trim(ro, TS0, 0, 1, &removed, &err));
	}
	txlog_close(ro);
	CHECK_EQ_INT(0, run_log_cmd(&f, "verify"));
	CHECK_EQ_INT(1, run_log_cmd(&f, "replay"));

	/* Appends continue the trimmed log; emptying it keeps the base. */
	append_range(&f, log, 31, 32, 1000);
	CHECK_EQ_INT(0, txlog_truncate_from(log, 0, &err));
	CHECK_EQ_INT(0, log->n);
	check_base(log, 24, f.post[24]);
	txlog_close(log);
	log = open_log(&f);
	if (log != NULL) {
		check_base(log, 24, f.post[24]);
		append_range(&f, log, 25, 25, 1000);
		CHECK_EQ_INT(1, log->n);
	}
	txlog_close(log);
out:
	fixture_free(&f);
}

/* txlog_sync() runs without the mutex, concurrently with trimming. */
typedef struct syncer_arg {
	txlog *log;
	int stop;
	int failures;
	char msg[LX_ERR_MSG_MAX];
} syncer_arg;

static void *sync_loop(void *p)
{
	syncer_arg *a = p;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		lx_err err;
		if (txlog_sync(a->log, &err) < 0 && a->failures++ == 0)
			memcpy(a->msg, err.msg, sizeof(a->msg));
	}
	return NULL;
}

static void test_trim_with_concurrent_sync(void)
{
	fixture f;
	syncer_arg a;
	pthread_t th;
	size_t removed, total = 0;
	lx_err err;
	fixture_init(&f);
	memset(&a, 0, sizeof(a));
	a.log = open_log(&f);
	if (a.log == NULL)
		goto out;
	txlog_set_segment_max(a.log, SMALL_SEGMENT);
	CHECK_EQ_INT(0, pthread_create(&th, NULL, sync_loop, &a));
	for (uint64_t t = 1; t <= 60; t += 3) {
		append_range(&f, a.log, t, t + 2, 1000);
		CHECK_EQ_INT(0, txlog_trim(a.log, TS0, 0, 40000, &removed, &err));
		total += removed;
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ_INT(0, a.failures);
	if (a.failures)
		fprintf(stderr, "  txlog_sync: %s\n", a.msg);
	CHECK(total > 40);
	CHECK_EQ_INT(60, total + a.log->n);
	CHECK_EQ_U64(60, txlog_last(a.log)->hdr.max_txid);
	check_chain(&f, a.log);
	txlog_close(a.log);
out:
	fixture_free(&f);
}

/* Zero (tail != 0) or flip (tail == 0) bytes of the newest record. */
static void damage_newest(txlog *log, uint64_t from_end, int zero)
{
	const txlog_entry *e = txlog_last(log);
	int fd = log->segs[e->seg].fd;
	uint64_t off = e->offset + e->length - from_end;
	uint8_t b[4096];
	memset(b, 0, sizeof(b));
	if (zero) {
		CHECK(from_end <= sizeof(b));
		CHECK(pwrite(fd, b, from_end, (off_t)off) == (ssize_t)from_end);
	} else {
		CHECK(pread(fd, b, 1, (off_t)off) == 1);
		b[0] ^= 0x55;
		CHECK(pwrite(fd, b, 1, (off_t)off) == 1);
	}
}

/* A crash in the middle of an append leaves a record whose tail is the
 * zeros written ahead: it is cut at the next open (and the log goes on); a
 * complete newest record with damaged bytes is an error, not cut. */
static void test_torn_newest_record_is_cut(void)
{
	fixture f;
	txlog *log;
	lx_err err;
	fixture_init(&f);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	append_range(&f, log, 1, 3, 1000);
	damage_newest(log, 3000, 1);
	txlog_close(log);
	log = open_log(&f);
	if (log == NULL)
		goto out;
	CHECK_EQ_INT(2, log->n);
	check_chain(&f, log);
	append_range(&f, log, 3, 4, 1000);
	CHECK_EQ_INT(4, log->n);
	damage_newest(log, 3000, 0);
	txlog_close(log);
	log = NULL;
	CHECK(txlog_open(&log, f.dir, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "newest transaction TXID 4 is corrupt");
	txlog_close(log);
out:
	fixture_free(&f);
}

UNIT_TESTS(TEST(test_append_reopen), TEST(test_torn_newest_record_is_cut), TEST(test_append_refuses_gaps),
	   TEST(test_reset_to_then_continue), TEST(test_reset_to_then_snapshot),
	   TEST(test_reopen_empty_after_reset_to), TEST(test_corrupt_base_file),
	   TEST(test_segment_max), TEST(test_trim_by_bytes), TEST(test_trim_by_age),
	   TEST(test_reopen_after_trim), TEST(test_trim_with_concurrent_sync))
