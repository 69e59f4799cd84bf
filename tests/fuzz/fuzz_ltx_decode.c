/*
 * fuzz_ltx_decode.c - libFuzzer target for the LTX decoder (ltx/).
 *
 * Each input is decoded with small limits twice, once in one piece and
 * once in pieces of varying size; both runs must agree on the result and
 * the message.  An input that decodes must be reproduced byte for byte by
 * the encoder from what the decoder reported, and by compacting it alone.
 * ASan/UBSan/LeakSanitizer catch crashes and leaks.
 *
 * Checksums are hard to guess, so an input of odd length is taken as a
 * file plus one spare byte: the spare byte is dropped and every page
 * checksum and the file checksum are recomputed ("resealed") before
 * decoding.  That lets mutations reach the rules behind the checksums.
 *
 * Built with -DLTX_FUZZ_SEEDS, this file is instead a program that writes
 * a seed corpus of valid files into the directory named by argv[1]
 * (see tests/fuzz.mk).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ltx/ltx.h"

#define FUZZ_MAX_PAGES 64
#define FUZZ_MAX_FILE (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- byte helpers ------------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/*
 * Recompute page checksums and the file checksum of `buf` as far as its
 * header fields say frames go, without validating anything.
 */
static void reseal(uint8_t *buf, size_t len)
{
	uint32_t ps, count;
	size_t off = LTX_HEADER_SIZE;

	if (len < LTX_HEADER_SIZE + LTX_TRAILER_SIZE)
		return;
	ps = get_u32(buf + 12);
	count = get_u32(buf + 20);
	if (ltx_page_size_valid(ps)) {
		for (uint32_t i = 0; i < count; i++) {
			size_t frame = LTX_PAGE_HEADER_SIZE + (size_t)ps;

			if (len - LTX_TRAILER_SIZE - off < frame)
				break;
			put_u64(buf + off + 8, ltx_page_checksum(get_u32(buf + off),
				buf + off + LTX_PAGE_HEADER_SIZE, ps));
			off += frame;
		}
	}
	put_u64(buf + len - 8, XXH3_64bits(buf, len - 8) | LTX_CHECKSUM_FLAG);
}

/* ---- what a decode reported --------------------------------------------- */

typedef struct seen {
	ltx_header h;
	ltx_trailer t;
	int headers, trailers;
	uint32_t n;
	uint32_t pgno[FUZZ_MAX_PAGES];
	uint64_t ck[FUZZ_MAX_PAGES];
	uint8_t *pages;         /* n pages of h.page_size bytes */
} seen;

static int seen_header(void *ctx, const ltx_header *h)
{
	seen *s = ctx;

	if (s->headers++ != 0 || h->page_count > FUZZ_MAX_PAGES ||
	    !ltx_page_size_valid(h->page_size))
		abort();
	s->h = *h;
	if (h->page_count > 0) {
		s->pages = malloc((size_t)h->page_count * h->page_size);
		if (s->pages == NULL)
			return -ENOMEM;
	}
	return 0;
}

static int seen_page(void *ctx, uint32_t pgno, const uint8_t *data,
		     uint64_t ck)
{
	seen *s = ctx;

	if (s->headers != 1 || s->n >= s->h.page_count || pgno == 0 ||
	    pgno > s->h.commit || pgno == ltx_lock_pgno(s->h.page_size) ||
	    ck != ltx_page_checksum(pgno, data, s->h.page_size))
		abort();
	memcpy(s->pages + (size_t)s->n * s->h.page_size, data, s->h.page_size);
	s->pgno[s->n] = pgno;
	s->ck[s->n] = ck;
	s->n++;
	return 0;
}

static int seen_trailer(void *ctx, const ltx_trailer *t)
{
	seen *s = ctx;

	if (s->trailers++ != 0 || s->n != s->h.page_count)
		abort();
	s->t = *t;
	return 0;
}

/* Decode `len` bytes in pieces chosen by `piece_seed` (0 = in one piece). */
static int decode(const uint8_t *buf, size_t len, unsigned piece_seed,
		  seen *s, lx_err *err)
{
	static const ltx_limits lim = { FUZZ_MAX_PAGES, FUZZ_MAX_FILE };
	ltx_decode_cb cb = { s, seen_header, seen_page, seen_trailer };
	ltx_decoder dec;
	size_t off = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = ltx_decoder_init(&dec, &cb, &lim, err);
	while (rc == 0 && off < len) {
		size_t piece = len - off;

		if (piece_seed != 0) {
			piece_seed = piece_seed * 1103515245u + 12345u;
			piece = (piece_seed >> 16) % 700 + 1;
			if (piece > len - off)
				piece = len - off;
		}
		rc = ltx_decoder_feed(&dec, buf + off, piece, err);
		off += piece;
	}
	if (rc == 0)
		rc = ltx_decoder_finish(&dec, err);
	ltx_decoder_free(&dec);
	return rc;
}

/* ---- re-encoding ------------------------------------------------------- */

typedef struct sink {
	const uint8_t *want;
	size_t len, off;
} sink;

/* A write callback that compares with the original instead of storing. */
static int sink_write(void *ctx, const void *buf, size_t len)
{
	sink *k = ctx;

	if (len > k->len - k->off || memcmp(k->want + k->off, buf, len) != 0)
		abort();
	k->off += len;
	return 0;
}

static void reencode(const seen *s, const uint8_t *buf, size_t len)
{
	sink k = { buf, len, 0 };
	ltx_encoder enc;
	uint64_t fck = 0;
	int rc = ltx_encoder_begin(&enc, &s->h, sink_write, &k, NULL);

	for (uint32_t i = 0; rc == 0 && i < s->n; i++)
		rc = ltx_encoder_page(&enc, s->pgno[i],
				      s->pages + (size_t)i * s->h.page_size,
				      i % 2 ? s->ck[i] : 0, NULL);
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, s->t.post_checksum, &fck, NULL);
	ltx_encoder_free(&enc);
	if (rc != 0 || k.off != len || fck != s->t.file_checksum)
		abort();
}

static void recompact(const uint8_t *buf, size_t len)
{
	ltx_compact_input in = { buf, len };
	sink k = { buf, len, 0 };

	if (ltx_compact(&in, 1, sink_write, &k, NULL, NULL, NULL) != 0 ||
	    k.off != len)
		abort();
}

/* ---- the target ------------------------------------------------------- */

static void check(const uint8_t *buf, size_t len)
{
	lx_err e1, e2;
	seen s1, s2;
	int rc1 = decode(buf, len, 0, &s1, &e1);
	int rc2 = decode(buf, len, (unsigned)len | 1, &s2, &e2);

	if (rc1 != rc2 || (rc1 != 0 && strcmp(e1.msg, e2.msg) != 0))
		abort();
	if (rc1 == 0 && (s1.n != s2.n || s1.trailers != 1 || s2.trailers != 1 ||
			 memcmp(&s1.t, &s2.t, sizeof(s1.t)) != 0))
		abort();
	if (rc1 == 0) {
		reencode(&s1, buf, len);
		recompact(buf, len);
	}
	free(s1.pages);
	free(s2.pages);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size % 2 == 0) {
		check(data, size);
		return 0;
	}
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size - 1);
	reseal(copy, size - 1);
	check(copy, size - 1);
	free(copy);
	return 0;
}

#ifdef LTX_FUZZ_SEEDS
/* ---- seed corpus -------------------------------------------------------- */

typedef struct file_out {
	FILE *f;
} file_out;

static int file_write(void *ctx, const void *buf, size_t len)
{
	file_out *o = ctx;

	return fwrite(buf, 1, len, o->f) == len ? 0 : -EIO;
}

/*
 * Write seed `name`: pages pg[i] filled with pg[i] * 3; `extra` appends the
 * spare byte that selects reseal mode.
 */
static int seed(const char *dir, const char *name, ltx_header h,
		const uint32_t *pg, uint32_t n, int extra)
{
	char path[4096];
	uint8_t page[LTX_MAX_PAGE_SIZE];
	uint64_t db = LTX_CHECKSUM_FLAG;
	file_out o;
	ltx_encoder enc;
	lx_err err;
	int rc;

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, extra ? "-x" : "");
	o.f = fopen(path, "wb");
	if (o.f == NULL)
		return -1;
	h.page_count = n;
	rc = ltx_encoder_begin(&enc, &h, file_write, &o, &err);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		uint64_t ck;

		memset(page, (int)(pg[i] * 3), h.page_size);
		ck = ltx_page_checksum(pg[i], page, h.page_size);
		db = ltx_checksum_update(db, 0, ck);
		rc = ltx_encoder_page(&enc, pg[i], page, ck, &err);
	}
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, h.commit == 0 ? LTX_CHECKSUM_FLAG : db,
					NULL, &err);
	ltx_encoder_free(&enc);
	if (rc == 0 && extra)
		rc = fputc('x', o.f) == EOF ? -EIO : 0;
	if (fclose(o.f) != 0 && rc == 0)
		rc = -EIO;
	if (rc != 0)
		fprintf(stderr, "seed %s: %s\n", path, err.msg);
	return rc;
}

int main(int argc, char **argv)
{
	static const uint32_t pg[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint32_t some[] = { 2, 5, 7 }, near_lock[] = { 16386 },
		near_lock512[] = { 2097152, 2097154 };
	ltx_header snap, txn, del, big, huge, tall;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	memset(&snap, 0, sizeof(snap));
	snap.page_size = 512;
	snap.commit = 3;
	snap.min_txid = snap.max_txid = 1;
	snap.timestamp_ms = 1700000000000;
	snap.node_id = 1;
	snap.lease_epoch = 1;
	txn = snap;
	txn.commit = 8;
	txn.min_txid = txn.max_txid = 7;
	txn.pre_checksum = LTX_CHECKSUM_FLAG | 0x1234;
	del = txn;
	del.commit = 0;
	big = txn;
	big.page_size = 4096;
	big.commit = 1;
	huge = txn;             /* one 64 KiB page just past the lock page */
	huge.page_size = 65536;
	huge.commit = 16390;
	tall = txn;             /* the pages around the lock page at 512 */
	tall.commit = 2097160;
	for (int extra = 0; extra <= 1; extra++) {
		ltx_header comp = txn;

		comp.max_txid = 9;
		comp.flags = LTX_FLAG_COMPACTED;
		rc |= seed(argv[1], "snapshot", snap, pg, 3, extra);
		rc |= seed(argv[1], "txn", txn, some, 3, extra);
		rc |= seed(argv[1], "compacted", comp, pg, 8, extra);
		rc |= seed(argv[1], "deletion", del, pg, 0, extra);
		rc |= seed(argv[1], "page4096", big, pg, 1, extra);
		rc |= seed(argv[1], "page65536", huge, near_lock, 1, extra);
		rc |= seed(argv[1], "lockpage512", tall, near_lock512, 2, extra);
		snap.commit = 0;
		rc |= seed(argv[1], "snapshot-empty", snap, pg, 0, extra);
		snap.commit = 3;
	}
	return rc == 0 ? 0 : 1;
}
#endif
