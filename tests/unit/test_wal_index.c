/*
 * test_wal_index.c - the wal-index writer (db/wal_index.c) against the real
 * SQLite library: a connection that holds the shm open reads frames this
 * module appended and published, without running recovery; and the hash
 * layout against a brute-force model across region boundaries.
 */
#include "db/wal_index.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_hash_matches_a_model(void)
{
	enum { FRAMES = 3 * WI_FRAMES_REGION + 100, REGIONS = 5 };
	uint8_t *mem = calloc(REGIONS, WI_REGION_SIZE), *reg[REGIONS];
	uint32_t *pg = malloc(FRAMES * sizeof(uint32_t)), seed = 7;
	for (int r = 0; r < REGIONS; r++)
		reg[r] = mem + (size_t)r * WI_REGION_SIZE;
	CHECK_EQ_INT(0, (int)wi_region_of(WI_FRAMES_REGION0));
	CHECK_EQ_INT(1, (int)wi_region_of(WI_FRAMES_REGION0 + 1));
	for (uint32_t f = 1; f <= FRAMES; f++) {
		seed = seed * 1103515245u + 12345u;
		pg[f - 1] = 1 + (seed >> 8) % 3000;
		CHECK_EQ_INT(0, wi_append(reg, f, pg[f - 1]));
	}
	for (uint32_t p = 1; p <= 3000; p += 7) {
		uint32_t want = 0, lo = 1000, hi = FRAMES - 5;
		for (uint32_t f = lo; f <= hi; f++)
			if (pg[f - 1] == p)
				want = f;
		CHECK_EQ_U64(want, wi_find(reg, p, lo, hi));
	}
	/* A restart: frame 1 again clears region 0's old entries. */
	CHECK_EQ_INT(0, wi_append(reg, 1, 42));
	CHECK_EQ_U64(1, wi_find(reg, 42, 1, 1));
	CHECK_EQ_U64(0, wi_find(reg, pg[1], 1, 1) == 1 && pg[1] != 42 ? 1 : 0);
	free(pg);
	free(mem);
}

static void test_header_roundtrip(void)
{
	uint8_t r0[WI_REGION_SIZE] = { 0 };
	wi_header h = { 5, 4096, 17, 33, { 1, 2 }, 0x01020304, 0xa0b0c0d0 }, g;
	CHECK_EQ_INT(-1, wi_header_load(r0, &g));
	wi_header_store(r0, &h);
	CHECK_EQ_INT(0, wi_header_load(r0, &g));
	CHECK_EQ_U64(17, g.mx_frame);
	CHECK_EQ_U64(0xa0b0c0d0, g.salt2);
	CHECK_EQ_U64(4096, g.page_size);
	r0[WI_HEADER_SIZE + 16] ^= 1;   /* copies differ: a reader recovers */
	CHECK_EQ_INT(-1, wi_header_load(r0, &g));
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int count(sqlite3 *db)
{
	sqlite3_stmt *st;
	int n = -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *b = NULL;
	if (fd >= 0 && fstat(fd, &st) == 0 && (b = malloc((size_t)st.st_size + 1)) != NULL &&
	    pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
		free(b);
		b = NULL;
	}
	if (fd >= 0)
		close(fd);
	*len = b ? (size_t)st.st_size : 0;
	return b;
}

/*
 * a.db (WAL mode, 10 rows, empty WAL) is open in `reader`, which keeps the
 * shm alive.  b.db is a copy that got 90 more rows.  Its changed pages are
 * appended to a.db-wal as one transaction and published in a.db-shm by
 * this module: `reader` and a new connection see 100 rows.
 */
static void test_sqlite_reads_what_we_publish(void)
{
	char dir[] = "/tmp/ltxfs-wi-XXXXXX", a[64], b[64], wal[64], shm[64];
	sqlite3 *w, *reader, *fresh;
	uint8_t *A, *B, *frame, *map;
	size_t alen, blen;
	uint32_t ps = 4096, mx = 0, npages;
	wal_header h = { WAL_MAGIC_LE, 4096, 0, 0x11111111, 0x22222222, 0, 0 };
	uint8_t raw[WAL_HEADER_SIZE];
	wal_cksum chain;
	wi_header ih;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a.db", dir);
	snprintf(b, sizeof(b), "%s/b.db", dir);
	snprintf(wal, sizeof(wal), "%s/a.db-wal", dir);
	snprintf(shm, sizeof(shm), "%s/a.db-shm", dir);
	CHECK_EQ_INT(SQLITE_OK, sqlite3_open(a, &w));
	CHECK_EQ_INT(SQLITE_OK, exec(w, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);"
				    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<10)"
				    " INSERT INTO t SELECT randomblob(300) FROM c;"
				    "PRAGMA wal_checkpoint(TRUNCATE);"));
	sqlite3_close(w);
	A = read_file(a, &alen);
	fd = open(b, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, A, alen) == (ssize_t)alen);
	close(fd);
	CHECK_EQ_INT(SQLITE_OK, sqlite3_open(b, &w));
	CHECK_EQ_INT(SQLITE_OK, exec(w, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c "
				    "WHERE i<90) INSERT INTO t SELECT randomblob(300) FROM c;"
				    "PRAGMA wal_checkpoint(TRUNCATE);"));
	sqlite3_close(w);
	B = read_file(b, &blen);
	npages = (uint32_t)(blen / ps);

	CHECK_EQ_INT(SQLITE_OK, sqlite3_open_v2(a, &reader, SQLITE_OPEN_READONLY, NULL));
	CHECK_EQ_INT(10, count(reader));   /* the shm now exists, mxFrame 0 */

	wal_header_encode(&h, raw);
	fd = open(wal, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && pwrite(fd, raw, sizeof(raw), 0) == (ssize_t)sizeof(raw));
	chain = (wal_cksum){ h.cksum1, h.cksum2 };
	frame = malloc(WAL_FRAME_HEADER_SIZE + ps);
	map = NULL;
	{
		int sfd = open(shm, O_RDWR);
		CHECK(sfd >= 0);
		map = mmap(NULL, WI_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
		close(sfd);
	}
	CHECK(map != MAP_FAILED);
	{
		uint8_t *reg[1] = { map };
		uint32_t changed[4096], n = 0;
		for (uint32_t p = 1; p <= npages; p++)
			if ((size_t)p * ps > alen || memcmp(A + (size_t)(p - 1) * ps, B + (size_t)(p - 1) * ps, ps))
				changed[n++] = p;
		CHECK(n > 1);
		for (uint32_t i = 0; i < n; i++) {
			memcpy(frame + WAL_FRAME_HEADER_SIZE, B + (size_t)(changed[i] - 1) * ps, ps);
			wal_frame_encode(&h, changed[i], i + 1 == n ? npages : 0, frame, &chain);
			CHECK(pwrite(fd, frame, WAL_FRAME_HEADER_SIZE + ps,
				     (off_t)wal_frame_offset(ps, mx)) == (ssize_t)(WAL_FRAME_HEADER_SIZE + ps));
			mx++;
			CHECK_EQ_INT(0, wi_append(reg, mx, changed[i]));
		}
		CHECK_EQ_INT(0, wi_header_load(map, &ih));   /* SQLite's own header */
		ih.change++;
		ih.page_size = ps;
		ih.mx_frame = mx;
		ih.n_page = npages;
		ih.frame_ck = chain;
		ih.salt1 = h.salt1;
		ih.salt2 = h.salt2;
		wi_header_store(map, &ih);
	}
	close(fd);
	CHECK_EQ_INT(100, count(reader));
	CHECK_EQ_INT(SQLITE_OK, sqlite3_open_v2(a, &fresh, SQLITE_OPEN_READONLY, NULL));
	CHECK_EQ_INT(100, count(fresh));
	{
		sqlite3_stmt *st;
		CHECK_EQ_INT(SQLITE_OK, sqlite3_prepare_v2(fresh, "PRAGMA integrity_check", -1, &st, NULL));
		CHECK_EQ_INT(SQLITE_ROW, sqlite3_step(st));
		CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(fresh);
	sqlite3_close(reader);
	munmap(map, WI_REGION_SIZE);
	free(frame);
	free(A);
	free(B);
	unlink(wal);
	unlink(shm);
	unlink(a);
	unlink(b);
	rmdir(dir);
}

UNIT_TESTS(TEST(test_hash_matches_a_model), TEST(test_header_roundtrip),
	   TEST(test_sqlite_reads_what_we_publish))
