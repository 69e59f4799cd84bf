/*
 * test_wal.c - WAL parsing against WAL files written by the real SQLite
 * library, and against hand-built frames.
 */
#include "db/wal.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read a whole file into a malloc'd buffer. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Count valid frames and commit frames of a WAL image. */
static void scan(const uint8_t *wal, size_t len, int *frames, int *commits,
		 uint32_t *last_commit)
{
	wal_header h;
	wal_cksum chain;
	*frames = *commits = 0;
	*last_commit = 0;
	if (len < WAL_HEADER_SIZE || wal_header_parse(wal, &h, NULL) != 0)
		return;
	chain = (wal_cksum){ h.cksum1, h.cksum2 };
	for (uint64_t i = 0;; i++) {
		uint64_t off = wal_frame_offset(h.page_size, i);
		wal_frame_header f;
		if (off + WAL_FRAME_HEADER_SIZE + h.page_size > len)
			break;
		if (!wal_frame_valid(&h, wal + off, &chain))
			break;
		wal_frame_header_parse(wal + off, &f);
		(*frames)++;
		if (f.commit) {
			(*commits)++;
			*last_commit = f.commit;
		}
	}
}

static void test_real_sqlite_wal(void)
{
	char dir[] = "/tmp/ltxfs-test-wal-XXXXXX";
	char db_path[256], wal_path[256];
	sqlite3 *db;
	uint8_t *wal;
	size_t len = 0;
	int frames, commits;
	uint32_t last;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(db_path, sizeof(db_path), "%s/t.db", dir);
	snprintf(wal_path, sizeof(wal_path), "%s/t.db-wal", dir);
	CHECK_EQ_INT(SQLITE_OK, sqlite3_open(db_path, &db));
	CHECK_EQ_INT(SQLITE_OK, sqlite3_exec(db,
		"PRAGMA page_size=1024; PRAGMA journal_mode=wal;"
		"PRAGMA wal_autocheckpoint=0;"
		"CREATE TABLE t(x);"
		"INSERT INTO t VALUES(randomblob(3000));"
		"INSERT INTO t VALUES(1);"
		"BEGIN; INSERT INTO t VALUES(2); ROLLBACK;", NULL, NULL, NULL));
	wal = slurp(wal_path, &len);
	CHECK(wal != NULL);
	scan(wal, len, &frames, &commits, &last);
	CHECK_EQ_INT(3, commits);
	CHECK(frames >= 3);
	CHECK(last >= 4);

	/* A flipped bit in the last frame's data ends the valid log before it. */
	if (wal != NULL) {
		int f2, c2;
		uint32_t l2;
		wal[len - 1] ^= 1;
		scan(wal, len, &f2, &c2, &l2);
		CHECK_EQ_INT(frames - 1, f2);
		free(wal);
	}
	sqlite3_close(db);
	unlink(wal_path);
	snprintf(wal_path, sizeof(wal_path), "%s/t.db-shm", dir);
	unlink(wal_path);
	unlink(db_path);
	rmdir(dir);
}

static void test_encode_roundtrip_both_endians(void)
{
	for (int be = 0; be < 2; be++) {
		wal_header h = { be ? WAL_MAGIC_BE : WAL_MAGIC_LE, 512, 3, 0x11, 0x22, 0, 0 };
		uint8_t buf[WAL_HEADER_SIZE + 2 * (WAL_FRAME_HEADER_SIZE + 512)];
		wal_header parsed;
		wal_cksum chain, verify;
		memset(buf, 0xab, sizeof(buf));
		wal_header_encode(&h, buf);
		CHECK_EQ_INT(0, wal_header_parse(buf, &parsed, NULL));
		CHECK_EQ_U64(0x22, parsed.salt2);
		chain = (wal_cksum){ h.cksum1, h.cksum2 };
		wal_frame_encode(&h, 1, 0, buf + wal_frame_offset(512, 0), &chain);
		wal_frame_encode(&h, 2, 2, buf + wal_frame_offset(512, 1), &chain);
		verify = (wal_cksum){ parsed.cksum1, parsed.cksum2 };
		CHECK(wal_frame_valid(&parsed, buf + wal_frame_offset(512, 0), &verify));
		CHECK(wal_frame_valid(&parsed, buf + wal_frame_offset(512, 1), &verify));
		/* Wrong salt is rejected. */
		parsed.salt1 ^= 1;
		verify = (wal_cksum){ parsed.cksum1, parsed.cksum2 };
		CHECK(!wal_frame_valid(&parsed, buf + wal_frame_offset(512, 0), &verify));
	}
}

static void test_bad_headers(void)
{
	uint8_t buf[WAL_HEADER_SIZE] = { 0 };
	wal_header h = { WAL_MAGIC_LE, 4096, 0, 1, 2, 0, 0 }, out;
	lx_err err;
	CHECK_EQ_INT(-EBADMSG, wal_header_parse(buf, &out, &err));
	CHECK_STR_CONTAINS(err.msg, "magic");
	wal_header_encode(&h, buf);
	buf[27] ^= 1;
	CHECK_EQ_INT(-EBADMSG, wal_header_parse(buf, &out, &err));
	CHECK_STR_CONTAINS(err.msg, "checksum");
	h.page_size = 1000;
	wal_header_encode(&h, buf);
	CHECK_EQ_INT(-EBADMSG, wal_header_parse(buf, &out, &err));
	CHECK_STR_CONTAINS(err.msg, "page size");
}

UNIT_TESTS(TEST(test_real_sqlite_wal), TEST(test_encode_roundtrip_both_endians),
	   TEST(test_bad_headers))
