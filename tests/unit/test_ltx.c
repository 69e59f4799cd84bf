/*
 * test_ltx.c - unit tests of the LTX library (ltx/): checksums and sizes,
 * header rules, encoder, streaming decoder, verification and compaction.
 *
 * The fixed vectors in test_vectors() were computed independently by the
 * Python reference in docs/ltx-format.md (appendix), using the python3
 * xxhash module.  Corrupt files are built by raw_build(), which writes
 * frames without the encoder's rules but with a correct file checksum, so
 * each test reaches the rule it is about.
 */
#include "ltx/ltx.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define FLAG LTX_CHECKSUM_FLAG

/* ---- helpers: a growable buffer as write sink --------------------------- */

typedef struct mbuf {
	uint8_t *data;
	size_t len, cap;
	int fail_at_call;       /* > 0: that write call fails with EIO */
	int calls;
} mbuf;

static int mbuf_write(void *ctx, const void *buf, size_t len)
{
	mbuf *m = ctx;

	if (++m->calls == m->fail_at_call)
		return -EIO;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + len)
			cap *= 2;
		m->data = realloc(m->data, cap);
		if (m->data == NULL)
			abort();
		m->cap = cap;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

static void mbuf_free(mbuf *m)
{
	free(m->data);
	memset(m, 0, sizeof(*m));
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Rewrite the file checksum of a whole file in `m` after an edit. */
static void reseal(mbuf *m)
{
	uint64_t ck = XXH3_64bits(m->data, m->len - 8) | FLAG;
	put_be64(m->data + m->len - 8, ck);
}

static ltx_header txn_header(uint32_t ps, uint32_t commit, uint32_t count,
			     uint64_t txid)
{
	ltx_header h;

	memset(&h, 0, sizeof(h));
	h.page_size = ps;
	h.commit = commit;
	h.page_count = count;
	h.min_txid = h.max_txid = txid;
	h.timestamp_ms = 1700000000000;
	h.pre_checksum = txid == 1 ? 0 : FLAG | 0x1234;
	h.node_id = 42;
	h.lease_epoch = 3;
	return h;
}

/* A page frame for raw_build(): data is `fill` repeated. */
typedef struct raw_page {
	uint32_t pgno;
	uint32_t flags;
	uint64_t ck;            /* 0 = the correct checksum */
	uint8_t fill;
} raw_page;

/*
 * Build a file from `h` (as given, unvalidated), frames and `post`, with a
 * correct file checksum.
 */
static void raw_build(mbuf *m, const ltx_header *h, const raw_page *p,
		      size_t n, uint64_t post)
{
	uint8_t buf[LTX_HEADER_SIZE], *page = malloc(h->page_size);

	ltx_header_encode(h, buf);
	mbuf_write(m, buf, LTX_HEADER_SIZE);
	for (size_t i = 0; i < n; i++) {
		memset(page, p[i].fill, h->page_size);
		put_be32(buf, p[i].pgno);
		put_be32(buf + 4, p[i].flags);
		put_be64(buf + 8, p[i].ck ? p[i].ck :
			 ltx_page_checksum(p[i].pgno, page, h->page_size));
		mbuf_write(m, buf, LTX_PAGE_HEADER_SIZE);
		mbuf_write(m, page, h->page_size);
	}
	put_be64(buf, post);
	mbuf_write(m, buf, 16);
	reseal(m);
	free(page);
}

/* Checksum of the database made of `n` pages filled with fills[i]. */
static uint64_t db_checksum(uint32_t ps, const uint32_t *pgnos,
			    const uint8_t *fills, size_t n)
{
	uint8_t *page = malloc(ps);
	uint64_t db = FLAG;

	for (size_t i = 0; i < n; i++) {
		memset(page, fills[i], ps);
		db = ltx_checksum_update(db, 0, ltx_page_checksum(pgnos[i], page, ps));
	}
	free(page);
	return db;
}

/* Encode pages pgnos[i] filled with fills[i]; returns the encoder's rc. */
static int encode(mbuf *m, const ltx_header *h, const uint32_t *pgnos,
		  const uint8_t *fills, size_t n, uint64_t post, lx_err *err)
{
	ltx_encoder enc;
	uint8_t *page = malloc(h->page_size);
	int rc = ltx_encoder_begin(&enc, h, mbuf_write, m, err);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		memset(page, fills[i], h->page_size);
		rc = ltx_encoder_page(&enc, pgnos[i], page, 0, err);
	}
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, post, NULL, err);
	ltx_encoder_free(&enc);
	free(page);
	return rc;
}

/* The example transaction of the vectors: TXID 7, pages 1 and 3. */
static void build_txn7(mbuf *m)
{
	static const uint32_t all[] = { 1, 2, 3 }, pg[] = { 1, 3 };
	static const uint8_t old[] = { 1, 2, 3 }, now[] = { 0x11, 2, 0x33 },
		fills[] = { 0x11, 0x33 };
	ltx_header h = txn_header(512, 3, 2, 7);

	h.pre_checksum = db_checksum(512, all, old, 3);
	h.node_id = 0x0102030405060708ULL;
	h.lease_epoch = 9;
	if (encode(m, &h, pg, fills, 2, db_checksum(512, all, now, 3), NULL) != 0)
		abort();
}

/* ---- helpers: recording what the decoder reports ------------------------ */

#define MAX_GOT 64

typedef struct got {
	int headers, trailers;
	ltx_header h;
	ltx_trailer t;
	uint32_t n;
	uint32_t pgno[MAX_GOT];
	uint64_t ck[MAX_GOT];
	uint8_t first[MAX_GOT];
	int fail_page;          /* on_page returns -ECANCELED for this pgno */
} got;

static int got_header(void *ctx, const ltx_header *h)
{
	got *g = ctx;

	g->headers++;
	g->h = *h;
	return 0;
}

static int got_page(void *ctx, uint32_t pgno, const uint8_t *data,
		    uint64_t ck)
{
	got *g = ctx;

	if (g->fail_page != 0 && (uint32_t)g->fail_page == pgno)
		return -ECANCELED;
	if (g->n < MAX_GOT) {
		g->pgno[g->n] = pgno;
		g->ck[g->n] = ck;
		g->first[g->n] = data[0];
	}
	g->n++;
	return 0;
}

static int got_trailer(void *ctx, const ltx_trailer *t)
{
	got *g = ctx;

	g->trailers++;
	g->t = *t;
	return 0;
}

static ltx_decode_cb got_cb(got *g)
{
	ltx_decode_cb cb = { g, got_header, got_page, got_trailer };

	memset(g, 0, sizeof(*g));
	return cb;
}

/* Decode `len` bytes fed in pieces of `piece` bytes (0 = all at once). */
static int decode_pieces(const uint8_t *buf, size_t len, size_t piece,
			 got *g, const ltx_limits *lim, lx_err *err)
{
	ltx_decode_cb cb = got_cb(g);
	ltx_decoder dec;
	int rc = ltx_decoder_init(&dec, &cb, lim, err);

	if (piece == 0)
		piece = len ? len : 1;
	for (size_t off = 0; rc == 0 && off < len; off += piece)
		rc = ltx_decoder_feed(&dec, buf + off,
				      len - off < piece ? len - off : piece, err);
	if (rc == 0)
		rc = ltx_decoder_finish(&dec, err);
	ltx_decoder_free(&dec);
	return rc;
}

static int decode_all(const mbuf *m, lx_err *err)
{
	return ltx_verify_buffer(m->data, m->len, NULL, NULL, err);
}

/* ---- sizes and checksums ------------------------------------------------ */

static void test_sizes(void)
{
	ltx_header h = txn_header(4096, 10, 3, 5);

	CHECK(ltx_page_size_valid(512));
	CHECK(ltx_page_size_valid(4096));
	CHECK(ltx_page_size_valid(65536));
	CHECK(!ltx_page_size_valid(0));
	CHECK(!ltx_page_size_valid(256));
	CHECK(!ltx_page_size_valid(1000));
	CHECK(!ltx_page_size_valid(131072));
	CHECK_EQ_U64(2097153, ltx_lock_pgno(512));
	CHECK_EQ_U64(262145, ltx_lock_pgno(4096));
	CHECK_EQ_U64(16385, ltx_lock_pgno(65536));
	CHECK_EQ_U64(0, ltx_lock_pgno(1000));
	CHECK_EQ_U64(0, ltx_snapshot_page_count(65536, 0));
	CHECK_EQ_U64(16384, ltx_snapshot_page_count(65536, 16384));
	CHECK_EQ_U64(16384, ltx_snapshot_page_count(65536, 16385));
	CHECK_EQ_U64(16389, ltx_snapshot_page_count(65536, 16390));
	CHECK_EQ_U64(LTX_MAX_PGNO - 1,
		     ltx_snapshot_page_count(512, LTX_MAX_PGNO));
	CHECK_EQ_U64(96 + 3 * (16 + 4096) + 16, ltx_file_size(&h));
	h.page_size = 1000;
	CHECK_EQ_U64(0, ltx_file_size(&h));
	/* the largest legal file needs 64 bits */
	h = txn_header(65536, LTX_MAX_PGNO, LTX_MAX_PGNO - 1, 5);
	CHECK_EQ_U64(96 + (uint64_t)(LTX_MAX_PGNO - 1) * (16 + 65536) + 16,
		     ltx_file_size(&h));
	CHECK_EQ_U64(FLAG | 6, ltx_checksum_update(FLAG | 3, FLAG | 1, FLAG | 4));
}

/* Values computed by the Python reference (docs/ltx-format.md). */
static void test_vectors(void)
{
	static const uint32_t pg[] = { 1, 2, 3 };
	static const uint8_t fills[] = { 1, 2, 3 };
	uint8_t zero[4096] = { 0 };
	ltx_header h = txn_header(512, 3, 3, 1);
	ltx_trailer t;
	mbuf m = { 0 };

	CHECK_EQ_U64(0xeca1fdafb7b0bd2aULL, ltx_page_checksum(1, zero, 4096));
	CHECK_EQ_U64(0xc5416499a4768f1dULL, db_checksum(512, pg, fills, 3));

	build_txn7(&m);
	CHECK_EQ_U64(1168, m.len);
	CHECK_EQ_U64(0xabccc64712f674dcULL, get_be64(m.data + 1152));
	CHECK_EQ_U64(0xa438bd7c818ccd71ULL, get_be64(m.data + 1160));
	CHECK_EQ_INT(0, ltx_verify_buffer(m.data, m.len, NULL, &t, NULL));
	CHECK_EQ_U64(0xa438bd7c818ccd71ULL, t.file_checksum);
	mbuf_free(&m);

	h.timestamp_ms = 0;
	h.node_id = 1;
	h.lease_epoch = 1;
	CHECK_EQ_INT(0, encode(&m, &h, pg, fills, 3, 0xc5416499a4768f1dULL,
			       NULL));
	CHECK_EQ_U64(1696, m.len);
	CHECK_EQ_U64(0xe3628e8732a98120ULL, get_be64(m.data + m.len - 8));
	mbuf_free(&m);
}

/* ---- round trips -------------------------------------------------------- */

/* Encode, decode whole and in several piece sizes, compare everything. */
static void roundtrip(const ltx_header *h, const uint32_t *pg,
		      const uint8_t *fills, size_t n, uint64_t post)
{
	static const size_t pieces[] = { 0, 1, 7, 16, 97, 4096 };
	uint8_t *page = malloc(h->page_size);
	mbuf m = { 0 };
	lx_err err;
	got g;

	CHECK_EQ_INT(0, encode(&m, h, pg, fills, n, post, &err));
	CHECK_EQ_U64(ltx_file_size(h), m.len);
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		int rc = decode_pieces(m.data, m.len, pieces[k], &g, NULL, &err);

		CHECK_EQ_INT(0, rc);
		if (rc != 0)
			fprintf(stderr, "  piece %zu: %s\n", pieces[k], err.msg);
		CHECK_EQ_INT(1, g.headers);
		CHECK_EQ_INT(1, g.trailers);
		CHECK(memcmp(&g.h, h, sizeof(*h)) == 0);
		CHECK_EQ_U64(post, g.t.post_checksum);
		CHECK_EQ_U64(get_be64(m.data + m.len - 8), g.t.file_checksum);
		CHECK_EQ_U64(n, g.n);
		for (size_t i = 0; i < n && i < g.n; i++) {
			memset(page, fills[i], h->page_size);
			CHECK_EQ_U64(pg[i], g.pgno[i]);
			CHECK_EQ_U64(fills[i], g.first[i]);
			CHECK_EQ_U64(ltx_page_checksum(pg[i], page, h->page_size),
				     g.ck[i]);
		}
	}
	mbuf_free(&m);
	free(page);
}

static void test_roundtrip_txn(void)
{
	static const uint32_t pg[] = { 2, 5, 7 };
	static const uint8_t fills[] = { 0xa2, 0xa5, 0xa7 };
	ltx_header h = txn_header(4096, 10, 3, 9);

	roundtrip(&h, pg, fills, 3, FLAG | 0xabcdef);
	h.page_count = 0;       /* a transaction that only truncates */
	h.commit = 4;
	roundtrip(&h, pg, fills, 0, FLAG | 77);
}

static void test_roundtrip_snapshot(void)
{
	static const uint32_t pg[] = { 1, 2, 3, 4, 5 };
	static const uint8_t fills[] = { 9, 8, 7, 6, 5 };
	ltx_header h = txn_header(512, 5, 5, 1);

	roundtrip(&h, pg, fills, 5, db_checksum(512, pg, fills, 5));
	h.max_txid = 12;        /* snapshot of the database at TXID 12 */
	h.flags = LTX_FLAG_COMPACTED;
	roundtrip(&h, pg, fills, 5, db_checksum(512, pg, fills, 5));
}

static void test_roundtrip_deletion(void)
{
	ltx_header h = txn_header(4096, 0, 0, 4);

	roundtrip(&h, NULL, NULL, 0, FLAG);
	h = txn_header(4096, 0, 0, 1);  /* snapshot of an empty database */
	roundtrip(&h, NULL, NULL, 0, FLAG);
}

static void test_roundtrip_compacted(void)
{
	static const uint32_t pg[] = { 1, 2 };
	static const uint8_t fills[] = { 1, 2 };
	ltx_header h = txn_header(1024, 2, 2, 3);

	h.max_txid = 8;
	h.flags = LTX_FLAG_COMPACTED;
	roundtrip(&h, pg, fills, 2, FLAG | 5);
}

/*
 * A snapshot of page size 512 crossing the lock page (2097153): 2097154
 * frames, 1.1 GB, streamed from the encoder straight into the decoder.
 * Too slow under valgrind, where it is skipped.
 */
typedef struct pipe_state {
	ltx_decoder dec;
	lx_err err;
	uint32_t pages, saw_lock;
} pipe_state;

static int pipe_write(void *ctx, const void *buf, size_t len)
{
	pipe_state *p = ctx;

	return ltx_decoder_feed(&p->dec, buf, len, &p->err);
}

static int pipe_page(void *ctx, uint32_t pgno, const uint8_t *data,
		     uint64_t ck)
{
	pipe_state *p = ctx;

	(void)data;
	(void)ck;
	p->pages++;
	if (pgno == ltx_lock_pgno(512))
		p->saw_lock++;
	return 0;
}

static void test_snapshot_across_lock_page(void)
{
	const uint32_t lock = ltx_lock_pgno(512), commit = lock + 2;
	ltx_header h = txn_header(512, commit, 0, 1);
	uint8_t page[512] = { 0 };
	uint64_t db = FLAG;
	ltx_encoder enc;
	pipe_state p;
	ltx_decode_cb cb = { &p, NULL, pipe_page, NULL };
	lx_err err;
	int rc;

	if (RUNNING_ON_VALGRIND)
		return;
	h.page_count = ltx_snapshot_page_count(512, commit);
	CHECK_EQ_U64(commit - 1, h.page_count);
	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(0, ltx_decoder_init(&p.dec, &cb, NULL, NULL));
	rc = ltx_encoder_begin(&enc, &h, pipe_write, &p, &err);
	for (uint32_t pgno = 1; rc == 0 && pgno <= commit; pgno++) {
		uint64_t ck;

		if (pgno == lock) {
			/* the lock page is refused in a snapshot too */
			CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, pgno, page,
							       0, NULL));
			continue;
		}
		put_be32(page, pgno);
		ck = ltx_page_checksum(pgno, page, 512);
		db = ltx_checksum_update(db, 0, ck);
		rc = ltx_encoder_page(&enc, pgno, page, ck, &err);
	}
	CHECK_EQ_INT(0, rc);
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, db ^ 1, NULL, NULL));
	CHECK_EQ_INT(0, ltx_encoder_finish(&enc, db, NULL, &err));
	ltx_encoder_free(&enc);
	CHECK_EQ_INT(0, ltx_decoder_finish(&p.dec, &err));
	CHECK_EQ_U64(ltx_file_size(&h), p.dec.offset);
	CHECK_EQ_U64(commit - 1, p.pages);
	CHECK_EQ_U64(0, p.saw_lock);
	ltx_decoder_free(&p.dec);
}

/* ---- streaming ---------------------------------------------------------- */

static void test_one_byte_at_a_time(void)
{
	mbuf m = { 0 };
	got whole, bytes;
	lx_err err;

	build_txn7(&m);
	CHECK_EQ_INT(0, decode_pieces(m.data, m.len, 0, &whole, NULL, &err));
	CHECK_EQ_INT(0, decode_pieces(m.data, m.len, 1, &bytes, NULL, &err));
	CHECK(memcmp(&whole, &bytes, sizeof(whole)) == 0);
	CHECK_EQ_U64(2, bytes.n);
	mbuf_free(&m);
}

static void test_every_truncation(void)
{
	mbuf m = { 0 };
	lx_err err;

	build_txn7(&m);
	for (size_t len = 0; len < m.len; len++) {
		int rc = ltx_verify_buffer(m.data, len, NULL, NULL, &err);

		CHECK_EQ_INT(-EBADMSG, rc);
		if (rc != 0)
			CHECK_STR_CONTAINS(err.msg, "truncated");
	}
	ltx_verify_buffer(m.data, 40, NULL, NULL, &err);
	CHECK_STR_CONTAINS(err.msg, "ltx: truncated: 40 of 96 header bytes");
	ltx_verify_buffer(m.data, 100, NULL, NULL, &err);
	CHECK_STR_CONTAINS(err.msg, "frame 1 of 2: 4 of 16 frame header bytes");
	ltx_verify_buffer(m.data, 700, NULL, NULL, &err);
	CHECK_STR_CONTAINS(err.msg, "page 3 (frame 2 of 2, data at 640): 60 of "
			   "512 data bytes (file is 1168 bytes)");
	ltx_verify_buffer(m.data, 1160, NULL, NULL, &err);
	CHECK_STR_CONTAINS(err.msg, "8 of 16 trailer bytes");
	mbuf_free(&m);
}

static void test_every_bit_flip(void)
{
	mbuf m = { 0 };
	int undetected = 0;

	build_txn7(&m);
	for (size_t i = 0; i < m.len * 8; i++) {
		m.data[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (ltx_verify_buffer(m.data, m.len, NULL, NULL, NULL) == 0)
			undetected++;
		m.data[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK_EQ_INT(0, undetected);
	CHECK_EQ_INT(0, decode_all(&m, NULL));
	mbuf_free(&m);
}

/* ---- corrupt and invalid files ----------------------------------------- */

/* Expect `m` to fail verification with `code` and `msg` in the message. */
static void expect_bad(const mbuf *m, int code, const char *msg)
{
	lx_err err;
	int rc = decode_all(m, &err);

	CHECK_EQ_INT(-code, rc);
	if (rc != 0)
		CHECK_STR_CONTAINS(err.msg, msg);
}

/* A run of pages folds into the database checksum page by page; the
 * lock page counts for nothing and gets checksum 0. */
static void test_checksum_pages(void)
{
	uint32_t ps = 512, lock = ltx_lock_pgno(ps), first = lock - 1;
	uint8_t pages[3 * 512];
	uint64_t ck[3], want = LTX_CHECKSUM_FLAG;
	for (size_t i = 0; i < sizeof(pages); i++)
		pages[i] = (uint8_t)(i * 7 + 3);
	want = ltx_checksum_update(want, 0, ltx_page_checksum(first, pages, ps));
	want = ltx_checksum_update(want, 0, ltx_page_checksum(first + 2, pages + 2 * ps, ps));
	CHECK_EQ_U64(want, ltx_checksum_pages(LTX_CHECKSUM_FLAG, first, pages, 3, ps, ck));
	CHECK_EQ_U64(ltx_page_checksum(first, pages, ps), ck[0]);
	CHECK_EQ_U64(0, ck[1]);
	CHECK_EQ_U64(ltx_page_checksum(first + 2, pages + 2 * ps, ps), ck[2]);
	/* one page at a time gives the same */
	uint64_t one = LTX_CHECKSUM_FLAG;
	for (uint32_t i = 0; i < 3; i++)
		one = ltx_checksum_pages(one, first + i, pages + i * ps, 1, ps, NULL);
	CHECK_EQ_U64(want, one);
}

static void test_bad_page_checksum(void)
{
	ltx_header h = txn_header(512, 3, 2, 7);
	raw_page p[] = { { 1, 0, 0, 1 }, { 3, 0, FLAG | 99, 3 } };
	mbuf m = { 0 };

	raw_build(&m, &h, p, 2, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 640: page 3: checksum mismatch "
		   "(stored 0x8000000000000063, computed 0x");
	mbuf_free(&m);
}

static void test_bad_file_checksum(void)
{
	mbuf m = { 0 };

	build_txn7(&m);
	m.data[m.len - 1] ^= 1;
	expect_bad(&m, EBADMSG, "ltx: offset 1160: file checksum mismatch "
		   "(stored 0xa438bd7c818ccd70, computed 0xa438bd7c818ccd71)");
	mbuf_free(&m);
}

static void test_trailing_bytes(void)
{
	ltx_decode_cb cb;
	ltx_decoder dec;
	mbuf m = { 0 };
	got g;
	lx_err err;

	build_txn7(&m);
	mbuf_write(&m, "x", 1);
	expect_bad(&m, EBADMSG, "ltx: offset 1168: trailing bytes");
	/* in the same feed, the trailer is not reported to the consumer */
	cb = got_cb(&g);
	CHECK_EQ_INT(0, ltx_decoder_init(&dec, &cb, NULL, NULL));
	CHECK_EQ_INT(-EBADMSG, ltx_decoder_feed(&dec, m.data, m.len, &err));
	CHECK_EQ_INT(0, g.trailers);
	CHECK_EQ_INT(-EBADMSG, ltx_decoder_finish(&dec, &err));
	ltx_decoder_free(&dec);
	/* in a later feed */
	CHECK_EQ_INT(0, ltx_decoder_init(&dec, NULL, NULL, NULL));
	CHECK_EQ_INT(0, ltx_decoder_feed(&dec, m.data, m.len - 1, &err));
	CHECK_EQ_INT(0, ltx_decoder_feed(&dec, m.data, 0, &err));
	CHECK_EQ_INT(-EBADMSG, ltx_decoder_feed(&dec, "y", 1, &err));
	CHECK_STR_CONTAINS(err.msg, "trailing bytes");
	CHECK_EQ_INT(-EBADMSG, ltx_decoder_feed(&dec, "y", 1, &err));
	CHECK_STR_CONTAINS(err.msg, "failed earlier");
	ltx_decoder_free(&dec);
	mbuf_free(&m);
}

static void test_bad_page_order(void)
{
	ltx_header h = txn_header(512, 10, 3, 7);
	raw_page unsorted[] = { { 2, 0, 0, 1 }, { 5, 0, 0, 1 }, { 4, 0, 0, 1 } };
	raw_page dup[] = { { 2, 0, 0, 1 }, { 2, 0, 0, 1 }, { 4, 0, 0, 1 } };
	raw_page high[] = { { 2, 0, 0, 1 }, { 11, 0, 0, 1 }, { 12, 0, 0, 1 } };
	raw_page zero[] = { { 0, 0, 0, 1 }, { 1, 0, 0, 1 }, { 2, 0, 0, 1 } };
	raw_page flags[] = { { 1, 0, 0, 1 }, { 2, 4, 0, 1 }, { 3, 0, 0, 1 } };
	mbuf m = { 0 };

	raw_build(&m, &h, unsorted, 3, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 1152: frame 3: page 4 after "
		   "page 5 (pages must increase)");
	mbuf_free(&m);
	raw_build(&m, &h, dup, 3, FLAG);
	expect_bad(&m, EBADMSG, "page 2 after page 2");
	mbuf_free(&m);
	raw_build(&m, &h, high, 3, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 624: frame 2: page 11 outside "
		   "1..10 (commit)");
	mbuf_free(&m);
	raw_build(&m, &h, zero, 3, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 96: frame 1: page 0 outside");
	mbuf_free(&m);
	raw_build(&m, &h, flags, 3, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 628: page 2: frame flags 0x4 "
		   "must be 0");
	mbuf_free(&m);
}

static void test_lock_page_present(void)
{
	ltx_header h = txn_header(65536, 16390, 1, 7);
	raw_page p[] = { { 16385, 0, 0, 1 } };
	mbuf m = { 0 };

	raw_build(&m, &h, p, 1, FLAG);
	expect_bad(&m, EBADMSG, "ltx: offset 96: frame 1: page 16385 is the "
		   "lock page");
	mbuf_free(&m);
}

static void test_bad_snapshot(void)
{
	static const uint32_t pg[] = { 1, 2, 3 };
	static const uint8_t fills[] = { 1, 2, 3 };
	uint64_t good = db_checksum(512, pg, fills, 3);
	ltx_header h = txn_header(512, 3, 3, 1);
	raw_page ok[] = { { 1, 0, 0, 1 }, { 2, 0, 0, 2 }, { 3, 0, 0, 3 } };
	raw_page gap[] = { { 1, 0, 0, 1 }, { 3, 0, 0, 3 }, { 3, 0, 0, 3 } };
	mbuf m = { 0 };

	raw_build(&m, &h, ok, 3, good);
	CHECK_EQ_INT(0, decode_all(&m, NULL));
	mbuf_free(&m);
	raw_build(&m, &h, ok, 3, good ^ 2);
	expect_bad(&m, EBADMSG, "ltx: offset 1680: snapshot post_checksum "
		   "0xc5416499a4768f1f, its pages sum to 0xc5416499a4768f1d");
	mbuf_free(&m);
	raw_build(&m, &h, gap, 3, good);
	expect_bad(&m, EBADMSG, "ltx: offset 624: frame 2: snapshot page 3, "
		   "expected 2");
	mbuf_free(&m);
}

static void test_bad_post_checksum(void)
{
	ltx_header h = txn_header(512, 0, 0, 7);
	mbuf m = { 0 };

	raw_build(&m, &h, NULL, 0, FLAG | 1);
	expect_bad(&m, EBADMSG, "ltx: offset 96: deletion (commit 0) has "
		   "post_checksum 0x8000000000000001");
	mbuf_free(&m);
	h.commit = 5;
	raw_build(&m, &h, NULL, 0, 5);
	expect_bad(&m, EBADMSG, "ltx: offset 96: post_checksum "
		   "0x0000000000000005 lacks bit 63");
	mbuf_free(&m);
}

/* Each entry breaks one header rule; ltx_header_validate() must say so. */
static void test_header_rules(void)
{
	static const struct {
		const char *msg;
		int field;
		uint64_t value;
	} cases[] = {
		{ "unknown flags 0x2", 0, 3 },
		{ "page_size 1000 is not a power of two", 1, 1000 },
		{ "page_size 256", 1, 256 },
		{ "min_txid must be >= 1", 2, 0 },
		{ "max_txid 6 < min_txid 7", 3, 6 },
		{ "COMPACTED flag clear but TXID range is 7..8", 3, 8 },
		{ "COMPACTED flag set but TXID range is 7..7", 0, 1 },
		{ "commit 4294967295 > 4294967294", 4, 0xffffffffULL },
		{ "pre_checksum 0x0000000000001234 lacks bit 63", 5, 0x1234 },
		{ "page_count 11 > 10 pages of a 10-page database", 6, 11 },
	};
	lx_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ltx_header h = txn_header(4096, 10, 2, 7);

		switch (cases[i].field) {
		case 0: h.flags = (uint32_t)cases[i].value; break;
		case 1: h.page_size = (uint32_t)cases[i].value; break;
		case 2: h.min_txid = cases[i].value; break;
		case 3: h.max_txid = cases[i].value; break;
		case 4: h.commit = (uint32_t)cases[i].value; break;
		case 5: h.pre_checksum = cases[i].value; break;
		case 6: h.page_count = (uint32_t)cases[i].value; break;
		}
		CHECK_EQ_INT(-EINVAL, ltx_header_validate(&h, &err));
		CHECK_STR_CONTAINS(err.msg, "ltx: header: ");
		CHECK_STR_CONTAINS(err.msg, cases[i].msg);
	}
}

static void test_header_rules_snapshot(void)
{
	ltx_header h = txn_header(65536, 16390, 16389, 1);
	lx_err err;

	CHECK_EQ_INT(0, ltx_header_validate(&h, &err));
	h.page_count = 16390;   /* would include the lock page */
	CHECK_EQ_INT(-EINVAL, ltx_header_validate(&h, &err));
	CHECK_STR_CONTAINS(err.msg, "snapshot page_count 16390, must be 16389");
	h.page_count = 16389;
	h.pre_checksum = FLAG;
	CHECK_EQ_INT(-EINVAL, ltx_header_validate(&h, &err));
	CHECK_STR_CONTAINS(err.msg, "snapshot pre_checksum 0x8000000000000000 "
			   "must be 0");
	/* a non-snapshot may hold every page but the lock page, no more */
	h = txn_header(65536, 16390, 16389, 2);
	CHECK_EQ_INT(0, ltx_header_validate(&h, &err));
	h.page_count = 16390;
	CHECK_EQ_INT(-EINVAL, ltx_header_validate(&h, &err));
	/* deletion */
	h = txn_header(4096, 0, 1, 2);
	CHECK_EQ_INT(-EINVAL, ltx_header_validate(&h, &err));
	CHECK_STR_CONTAINS(err.msg, "page_count 1 > 0 pages of a 0-page");
}

/* Header bytes the struct does not hold, and the offsets in messages. */
static void test_header_bytes(void)
{
	ltx_header h = txn_header(4096, 10, 2, 7), back;
	uint8_t b[LTX_HEADER_SIZE];
	lx_err err;

	h.timestamp_ms = -5;
	ltx_header_encode(&h, b);
	CHECK(memcmp(b, "LTXF\0\1\0\0", 8) == 0);
	CHECK_EQ_INT(0, ltx_header_decode(b, &back, &err));
	CHECK(memcmp(&h, &back, sizeof(h)) == 0);

	b[3] = 'X';
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 0: bad magic");
	b[3] = 'F';
	b[5] = 2;
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 4: version 2, want 1");
	b[5] = 1;
	b[7] = 1;
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 6: reserved field");
	b[7] = 0;
	b[90] = 1;
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 90: reserved byte 0x01");
	b[90] = 0;
	b[14] = 0x11;            /* page size 0x1100 */
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 12: page_size 4352");
	b[14] = 0x10;
	b[20 + 3] = 11;         /* page_count 11 */
	CHECK_EQ_INT(-EBADMSG, ltx_header_decode(b, &back, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 20: page_count 11");
}

static void test_limits(void)
{
	ltx_limits lim = { 2, 0 };
	ltx_decoder dec;
	mbuf m = { 0 };
	lx_err err;
	got g;

	build_txn7(&m);         /* 2 pages, 1168 bytes */
	CHECK_EQ_INT(0, decode_pieces(m.data, m.len, 0, &g, &lim, &err));
	lim.max_page_count = 1;
	CHECK_EQ_INT(-EOVERFLOW, decode_pieces(m.data, m.len, 0, &g, &lim,
					       &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 20: page_count 2 exceeds the "
			   "limit 1");
	CHECK_EQ_INT(0, g.headers);
	lim.max_page_count = 0;
	lim.max_file_size = 1168;
	CHECK_EQ_INT(0, decode_pieces(m.data, m.len, 0, &g, &lim, &err));
	lim.max_file_size = 1167;
	CHECK_EQ_INT(-EOVERFLOW, decode_pieces(m.data, m.len, 0, &g, &lim,
					       &err));
	CHECK_STR_CONTAINS(err.msg, "file size 1168 (per header) exceeds the "
			   "limit 1167");
	/* nothing allocated for pages, no header exposed */
	CHECK_EQ_INT(0, ltx_decoder_init(&dec, NULL, &lim, NULL));
	CHECK_EQ_INT(-EOVERFLOW, ltx_decoder_feed(&dec, m.data, 100, NULL));
	CHECK(dec.buf == NULL && dec.hash == NULL);
	CHECK(ltx_decoder_header(&dec) == NULL);
	ltx_decoder_free(&dec);
	mbuf_free(&m);
}

static int refuse_header(void *ctx, const ltx_header *h)
{
	(void)ctx;
	(void)h;
	return -EPERM;
}

static int refuse_trailer(void *ctx, const ltx_trailer *t)
{
	(void)ctx;
	(void)t;
	return -EPERM;
}

static void test_decoder_state(void)
{
	ltx_decoder dec;
	mbuf m = { 0 };
	lx_err err;
	got g;

	build_txn7(&m);
	CHECK_EQ_INT(0, ltx_decoder_init(&dec, NULL, NULL, NULL));
	CHECK(ltx_decoder_header(&dec) == NULL);
	CHECK_EQ_INT(0, ltx_decoder_feed(&dec, m.data, 95, NULL));
	CHECK(ltx_decoder_header(&dec) == NULL);
	CHECK_EQ_INT(0, ltx_decoder_feed(&dec, m.data + 95, 1, NULL));
	CHECK(ltx_decoder_header(&dec) != NULL);
	CHECK_EQ_U64(7, ltx_decoder_header(&dec)->min_txid);
	ltx_decoder_free(&dec);

	/* a callback's error aborts decoding with its code */
	memset(&g, 0, sizeof(g));
	{
		ltx_decode_cb cb = got_cb(&g);

		g.fail_page = 3;
		CHECK_EQ_INT(-ECANCELED, ltx_decode_buffer(m.data, m.len, &cb,
							   &err));
		CHECK_STR_CONTAINS(err.msg, "page callback failed");
		CHECK_EQ_U64(1, g.n);
		CHECK_EQ_INT(0, g.trailers);
	}
	/* so does the header's or the trailer's callback */
	{
		ltx_decode_cb cb = { NULL, refuse_header, NULL, NULL };

		CHECK_EQ_INT(-EPERM, ltx_decode_buffer(m.data, m.len, &cb, &err));
		CHECK_STR_CONTAINS(err.msg, "ltx: offset 96: header callback "
				   "failed");
		cb.on_header = NULL;
		cb.on_trailer = refuse_trailer;
		CHECK_EQ_INT(-EPERM, ltx_decode_buffer(m.data, m.len, &cb, &err));
		CHECK_STR_CONTAINS(err.msg, "ltx: offset 1168: trailer callback "
				   "failed");
	}
	/* decode_buffer with no callbacks at all */
	CHECK_EQ_INT(0, ltx_decode_buffer(m.data, m.len, NULL, NULL));
	mbuf_free(&m);
}

static void test_verify_fd(void)
{
	char path[] = "/tmp/test_ltx_XXXXXX";
	int fd = mkstemp(path);
	ltx_header h;
	ltx_trailer t;
	mbuf m = { 0 };
	lx_err err;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	build_txn7(&m);
	CHECK_EQ_INT(5, write(fd, "junk!", 5));
	CHECK_EQ_INT((long long)m.len, write(fd, m.data, m.len));
	CHECK_EQ_INT(0, ltx_verify_fd(fd, 5, m.len, &h, &t, &err));
	CHECK_EQ_U64(7, h.max_txid);
	CHECK_EQ_U64(0xa438bd7c818ccd71ULL, t.file_checksum);
	CHECK_EQ_INT(-EBADMSG, ltx_verify_fd(fd, 5, m.len - 1, &h, &t, &err));
	CHECK_STR_CONTAINS(err.msg, "truncated");
	CHECK_EQ_INT(-EBADMSG, ltx_verify_fd(fd, 5, m.len + 10, &h, &t, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: offset 1168: file ends after the LTX");
	CHECK_EQ_INT(-EBADMSG, ltx_verify_fd(fd, 0, m.len + 5, &h, &t, &err));
	CHECK_STR_CONTAINS(err.msg, "bad magic");
	CHECK_EQ_INT(0, ftruncate(fd, 5 + 100));
	CHECK_EQ_INT(-EBADMSG, ltx_verify_fd(fd, 5, m.len, &h, &t, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: truncated at offset 100: frame 1 of 2");
	CHECK_EQ_INT(-EBADF, ltx_verify_fd(-1, 0, 10, &h, &t, &err));
	close(fd);
	mbuf_free(&m);
}

/* ---- encoder ------------------------------------------------------------ */

static void test_encoder_rules(void)
{
	ltx_header h = txn_header(512, 10, 3, 7);
	uint8_t page[512] = { 0 };
	ltx_encoder enc;
	mbuf m = { 0 };
	lx_err err;

	CHECK_EQ_INT(-EINVAL, ltx_encoder_begin(&enc, &h, NULL, &m, &err));
	ltx_encoder_free(&enc);
	CHECK_EQ_INT(-EINVAL, ltx_encoder_begin(&enc, NULL, mbuf_write, &m, &err));
	ltx_encoder_free(&enc);
	h.page_size = 1000;
	CHECK_EQ_INT(-EINVAL, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: header: page_size 1000");
	ltx_encoder_free(&enc);
	CHECK_EQ_U64(0, m.len);
	h.page_size = 512;

	CHECK_EQ_INT(0, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, FLAG, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "0 of 3 pages written");
	CHECK_EQ_INT(0, ltx_encoder_page(&enc, 4, page, 0, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 4, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "page 4 after page 4");
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 3, page, 0, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 11, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "page 11 outside 1..10");
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 5, NULL, 0, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 5, page, 12, &err));
	CHECK_STR_CONTAINS(err.msg, "lacks bit 63");
	/* rejected pages wrote nothing; the encoder goes on */
	CHECK_EQ_U64(96 + 528, m.len);
	CHECK_EQ_INT(0, ltx_encoder_page(&enc, 5, page, 0, &err));
	CHECK_EQ_INT(0, ltx_encoder_page(&enc, 10, page, 0, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 10, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "all 3 pages already written");
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, 77, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "lacks bit 63");
	CHECK_EQ_INT(0, ltx_encoder_finish(&enc, FLAG | 77, NULL, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, FLAG | 77, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "encoder is finished");
	ltx_encoder_free(&enc);
	CHECK_EQ_INT(0, decode_all(&m, &err));
	mbuf_free(&m);
}

static void test_encoder_lock_page(void)
{
	ltx_header h = txn_header(65536, 16390, 2, 7);
	uint8_t *page = calloc(1, 65536);
	ltx_encoder enc;
	mbuf m = { 0 };
	lx_err err;

	CHECK_EQ_INT(0, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 16385, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "page 16385 is the lock page");
	CHECK_EQ_INT(0, ltx_encoder_page(&enc, 16384, page, 0, &err));
	CHECK_EQ_INT(0, ltx_encoder_page(&enc, 16386, page, 0, &err));
	CHECK_EQ_INT(0, ltx_encoder_finish(&enc, FLAG, NULL, &err));
	ltx_encoder_free(&enc);
	CHECK_EQ_INT(0, decode_all(&m, &err));
	mbuf_free(&m);
	free(page);
}

static void test_encoder_snapshot_rules(void)
{
	ltx_header h = txn_header(512, 3, 3, 1);
	uint8_t page[512] = { 0 };
	ltx_encoder enc;
	mbuf m = { 0 };
	lx_err err;

	CHECK_EQ_INT(0, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 2, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "snapshot page 2, expected 1");
	ltx_encoder_free(&enc);
	mbuf_free(&m);

	h = txn_header(512, 0, 0, 3);
	CHECK_EQ_INT(0, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, FLAG | 1, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "deletion (commit 0) needs post_checksum");
	ltx_encoder_free(&enc);
	mbuf_free(&m);
}

static void test_encoder_write_failure(void)
{
	ltx_header h = txn_header(512, 3, 1, 7);
	uint8_t page[512] = { 0 };
	ltx_encoder enc;
	mbuf m = { 0 };
	lx_err err;

	m.fail_at_call = 1;
	CHECK_EQ_INT(-EIO, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx: write at offset 0");
	CHECK_EQ_INT(-EINVAL, ltx_encoder_page(&enc, 1, page, 0, &err));
	CHECK_STR_CONTAINS(err.msg, "encoder failed earlier");
	ltx_encoder_free(&enc);
	mbuf_free(&m);

	m.fail_at_call = 3;     /* header, frame header, page data */
	CHECK_EQ_INT(0, ltx_encoder_begin(&enc, &h, mbuf_write, &m, &err));
	CHECK_EQ_INT(-EIO, ltx_encoder_page(&enc, 1, page, 0, &err));
	CHECK_EQ_INT(-EINVAL, ltx_encoder_finish(&enc, FLAG, NULL, &err));
	ltx_encoder_free(&enc);
	ltx_encoder_free(&enc); /* idempotent */
	mbuf_free(&m);
}

/* ---- compaction --------------------------------------------------------- */

/*
 * A simulated database that emits one LTX file per transaction, with
 * consistent pre/post checksums.  Pages that appear without being written
 * (growth) hold zeros.
 */
#define SIM_PS 512
#define SIM_MAX 16

typedef struct sim {
	uint32_t commit;
	uint8_t fill[SIM_MAX + 1];      /* by pgno; content is fill repeated */
	uint64_t db;
	uint64_t txid;
} sim;

static uint64_t sim_page_ck(uint32_t pgno, uint8_t fill)
{
	uint8_t page[SIM_PS];

	memset(page, fill, sizeof(page));
	return ltx_page_checksum(pgno, page, SIM_PS);
}

static void sim_set_commit(sim *s, uint32_t commit)
{
	for (uint32_t p = commit + 1; p <= s->commit; p++)
		s->db = ltx_checksum_update(s->db, sim_page_ck(p, s->fill[p]), 0);
	for (uint32_t p = s->commit + 1; p <= commit; p++) {
		s->fill[p] = 0;
		s->db = ltx_checksum_update(s->db, 0, sim_page_ck(p, 0));
	}
	s->commit = commit;
}

/* Apply a transaction and encode it into `m` (a snapshot when txid 1). */
static void sim_txn(sim *s, uint32_t commit, const uint32_t *pg,
		    const uint8_t *fills, size_t n, mbuf *m)
{
	ltx_header h = txn_header(SIM_PS, commit, (uint32_t)n, ++s->txid);

	h.pre_checksum = s->txid == 1 ? 0 : s->db;
	h.timestamp_ms = (int64_t)s->txid * 1000;
	h.node_id = s->txid;
	if (s->txid == 1)
		s->db = FLAG;
	sim_set_commit(s, commit);
	for (size_t i = 0; i < n; i++) {
		s->db = ltx_checksum_update(s->db, sim_page_ck(pg[i], s->fill[pg[i]]),
					    sim_page_ck(pg[i], fills[i]));
		s->fill[pg[i]] = fills[i];
	}
	if (encode(m, &h, pg, fills, n, s->db, NULL) != 0)
		abort();
}

static int compact(const mbuf *files, size_t n, mbuf *out, ltx_header *h,
		   ltx_trailer *t, lx_err *err)
{
	ltx_compact_input in[8];

	for (size_t i = 0; i < n; i++) {
		in[i].buf = files[i].data;
		in[i].len = files[i].len;
	}
	return ltx_compact(in, n, mbuf_write, out, h, t, err);
}

static void free_files(mbuf *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mbuf_free(&f[i]);
}

/* f[0] snapshot of 4 pages; f[1..3] change pages, f[3] truncates to 3. */
static void build_history(sim *s, mbuf *f)
{
	static const uint32_t all[] = { 1, 2, 3, 4 }, a[] = { 1, 3 },
		b[] = { 3, 4 }, c[] = { 2 };
	static const uint8_t fa[] = { 0x11, 0x13 }, fb[] = { 0x23, 0x24 },
		fc[] = { 0x32 }, fall[] = { 1, 2, 3, 4 };

	memset(s, 0, sizeof(*s));
	memset(f, 0, 4 * sizeof(*f));
	sim_txn(s, 4, all, fall, 4, &f[0]);
	sim_txn(s, 4, a, fa, 2, &f[1]);
	sim_txn(s, 4, b, fb, 2, &f[2]);
	sim_txn(s, 3, c, fc, 1, &f[3]);
}

static void test_compact_txns(void)
{
	static const uint32_t want_pg[] = { 1, 2, 3 };
	static const uint8_t want_fill[] = { 0x11, 0x32, 0x23 };
	mbuf f[4], out = { 0 };
	ltx_header h, first;
	ltx_trailer t, last;
	lx_err err;
	got g;
	sim s;

	build_history(&s, f);
	CHECK_EQ_INT(0, ltx_verify_buffer(f[1].data, f[1].len, &first, NULL,
					  NULL));
	CHECK_EQ_INT(0, ltx_verify_buffer(f[3].data, f[3].len, NULL, &last,
					  NULL));
	CHECK_EQ_INT(0, compact(f + 1, 3, &out, &h, &t, &err));
	CHECK_EQ_U64(2, h.min_txid);
	CHECK_EQ_U64(4, h.max_txid);
	CHECK_EQ_U64(LTX_FLAG_COMPACTED, h.flags);
	CHECK_EQ_U64(3, h.commit);
	CHECK_EQ_U64(3, h.page_count);
	CHECK_EQ_U64(first.pre_checksum, h.pre_checksum);
	CHECK_EQ_U64(last.post_checksum, t.post_checksum);
	CHECK_EQ_U64(4000, h.timestamp_ms);
	CHECK_EQ_U64(4, h.node_id);
	CHECK_EQ_INT(0, decode_pieces(out.data, out.len, 0, &g, NULL, &err));
	CHECK(memcmp(&g.h, &h, sizeof(h)) == 0);
	CHECK(memcmp(&g.t, &t, sizeof(t)) == 0);
	CHECK_EQ_U64(3, g.n);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_U64(want_pg[i], g.pgno[i]);
		CHECK_EQ_U64(want_fill[i], g.first[i]);
	}
	free_files(f, 4);
	mbuf_free(&out);
}

static void test_compact_snapshot(void)
{
	mbuf f[4], out = { 0 };
	ltx_header h;
	ltx_trailer t;
	lx_err err;
	got g;
	sim s;

	build_history(&s, f);
	CHECK_EQ_INT(0, compact(f, 4, &out, &h, &t, &err));
	CHECK(ltx_header_is_snapshot(&h));
	CHECK_EQ_U64(0, h.pre_checksum);
	CHECK_EQ_U64(4, h.max_txid);
	CHECK_EQ_U64(LTX_FLAG_COMPACTED, h.flags);
	CHECK_EQ_U64(s.db, t.post_checksum);
	CHECK_EQ_INT(0, decode_pieces(out.data, out.len, 0, &g, NULL, &err));
	CHECK_EQ_U64(s.commit, g.n);
	for (uint32_t i = 0; i < g.n && i < s.commit; i++) {
		CHECK_EQ_U64(i + 1, g.pgno[i]);
		CHECK_EQ_U64(s.fill[i + 1], g.first[i]);
	}
	free_files(f, 4);
	mbuf_free(&out);
}

/* A version truncated away by a later transaction is not resurrected. */
static void test_compact_truncate_regrow(void)
{
	static const uint32_t all[] = { 1, 2, 3, 4, 5 }, a[] = { 5 },
		c[] = { 4, 6 };
	static const uint8_t fall[] = { 1, 2, 3, 4, 5 }, fa[] = { 0x55 },
		fc[] = { 0x44, 0x66 };
	mbuf f[4], out = { 0 };
	ltx_header h;
	lx_err err;
	got g;
	sim s;

	memset(&s, 0, sizeof(s));
	memset(f, 0, sizeof(f));
	sim_txn(&s, 5, all, fall, 5, &f[0]);
	sim_txn(&s, 5, a, fa, 1, &f[1]);        /* write page 5 */
	sim_txn(&s, 3, NULL, NULL, 0, &f[2]);   /* truncate to 3 */
	sim_txn(&s, 6, c, fc, 2, &f[3]);        /* regrow; page 5 zeros */
	CHECK_EQ_INT(0, compact(f + 1, 3, &out, &h, NULL, &err));
	CHECK_EQ_INT(0, decode_pieces(out.data, out.len, 0, &g, NULL, &err));
	CHECK_EQ_U64(2, g.n);
	CHECK_EQ_U64(4, g.pgno[0]);
	CHECK_EQ_U64(6, g.pgno[1]);
	mbuf_free(&out);
	/* as a snapshot, page 5 is missing altogether: refused */
	CHECK_EQ_INT(-EBADMSG, compact(f, 4, &out, &h, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "merged snapshot has 5 pages, a 6-page "
			   "database needs 6");
	free_files(f, 4);
	mbuf_free(&out);
}

static void test_compact_single(void)
{
	mbuf f[4], out = { 0 };
	sim s;

	build_history(&s, f);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(0, compact(f + i, 1, &out, NULL, NULL, NULL));
		CHECK_EQ_U64(f[i].len, out.len);
		CHECK(out.len == f[i].len && memcmp(out.data, f[i].data,
						    out.len) == 0);
		mbuf_free(&out);
	}
	free_files(f, 4);
}

static void test_compact_errors(void)
{
	mbuf f[4], other[4], out = { 0 }, g[2];
	ltx_header h = txn_header(1024, 1, 1, 5);
	uint32_t one = 1;
	uint8_t fill = 0;
	lx_err err;
	sim s, s2;

	build_history(&s, f);
	CHECK_EQ_INT(-EINVAL, ltx_compact(NULL, 0, mbuf_write, &out, NULL,
					  NULL, &err));
	g[0] = f[1];
	g[1] = f[3];
	CHECK_EQ_INT(-EINVAL, compact(g, 2, &out, NULL, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "input 1: min_txid 4 does not follow "
			   "max_txid 2");
	/* same TXIDs, different history: checksums do not chain */
	build_history(&s2, other);
	other[2].data[112] ^= 1;  /* damage page data of txn 3 */
	CHECK_EQ_INT(-EBADMSG, compact(other + 1, 3, &out, NULL, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx compact: input 1: ltx: offset 112: "
			   "page 3: checksum mismatch");
	free_files(other, 4);
	memset(&s2, 0, sizeof(s2));
	memset(other, 0, sizeof(other));
	{
		static const uint32_t pg[] = { 1, 2, 3, 4 };
		static const uint8_t fl[] = { 9, 9, 9, 9 };

		sim_txn(&s2, 4, pg, fl, 4, &other[0]);
		sim_txn(&s2, 4, pg, fl, 1, &other[1]);
	}
	g[0] = f[0];
	g[1] = other[1];
	CHECK_EQ_INT(-EINVAL, compact(g, 2, &out, NULL, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "input 1: pre_checksum 0x");
	CHECK_STR_CONTAINS(err.msg, "!= previous post_checksum");
	/* page sizes differ */
	h.pre_checksum = s.db;
	CHECK_EQ_INT(0, encode(&out, &h, &one, &fill, 1, FLAG | 1, &err));
	g[0] = f[3];
	g[1] = out;
	memset(&out, 0, sizeof(out));
	CHECK_EQ_INT(-EINVAL, compact(g, 2, &out, NULL, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "input 1: page size 1024, input 0 has 512");
	/* a failing sink */
	out.fail_at_call = 2;
	CHECK_EQ_INT(-EIO, compact(f, 4, &out, NULL, NULL, &err));
	CHECK_STR_CONTAINS(err.msg, "ltx compact: ltx: write at offset 96");
	mbuf_free(&out);
	mbuf_free(&g[1]);
	free_files(other, 4);
	free_files(f, 4);
}

UNIT_TESTS(
	TEST(test_sizes),
	TEST(test_vectors),
	TEST(test_roundtrip_txn),
	TEST(test_roundtrip_snapshot),
	TEST(test_roundtrip_deletion),
	TEST(test_roundtrip_compacted),
	TEST(test_snapshot_across_lock_page),
	TEST(test_one_byte_at_a_time),
	TEST(test_every_truncation),
	TEST(test_every_bit_flip),
	TEST(test_checksum_pages),
	TEST(test_bad_page_checksum),
	TEST(test_bad_file_checksum),
	TEST(test_trailing_bytes),
	TEST(test_bad_page_order),
	TEST(test_lock_page_present),
	TEST(test_bad_snapshot),
	TEST(test_bad_post_checksum),
	TEST(test_header_rules),
	TEST(test_header_rules_snapshot),
	TEST(test_header_bytes),
	TEST(test_limits),
	TEST(test_decoder_state),
	TEST(test_verify_fd),
	TEST(test_encoder_rules),
	TEST(test_encoder_lock_page),
	TEST(test_encoder_snapshot_rules),
	TEST(test_encoder_write_failure),
	TEST(test_compact_txns),
	TEST(test_compact_snapshot),
	TEST(test_compact_truncate_regrow),
	TEST(test_compact_single),
	TEST(test_compact_errors)
)
