/*
 * compact.c - merging contiguous LTX files into one.
 *
 * The inputs are complete files in memory.  Each is verified in full, so
 * afterwards its frames can be read in place: frame i starts at
 * LTX_HEADER_SIZE + i * (LTX_PAGE_HEADER_SIZE + page_size) and frames are
 * in increasing pgno order.  A k-way merge over the inputs visits each page
 * number once, taking the version of the latest input that holds it.  The
 * merge runs twice: once to count the output pages (the header comes
 * first), once to encode them.
 *
 * A version from input i survives only if no later input truncated the
 * database below it (pgno <= min commit of inputs i..n-1); in particular
 * pages beyond the final commit are dropped.
 */
#include "base/bytes.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cursor {
	const uint8_t *base;    /* the input file */
	ltx_header h;
	ltx_trailer t;
	uint32_t next;          /* index of its next frame */
	uint32_t min_commit;    /* min commit of this and every later input */
} cursor;

/* Called for each surviving page; a negative return stops the merge. */
typedef int (*visit_fn)(void *ctx, uint32_t pgno, const uint8_t *data,
			uint64_t page_checksum, lx_err *err);

/* Add context to the message of a failure `rc`, keeping its code. */
static int wrap(lx_err *err, int rc, const char *what, ...)
	__attribute__((format(printf, 3, 4)));

static int wrap(lx_err *err, int rc, const char *what, ...)
{
	char prefix[LX_ERR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return rc;
	va_start(ap, what);
	vsnprintf(prefix, sizeof(prefix), what, ap);
	va_end(ap);
	lx_err_wrap(err, "%s", prefix);
	return rc;
}

static const uint8_t *cursor_frame(const cursor *c)
{
	size_t frame = LTX_PAGE_HEADER_SIZE + (size_t)c->h.page_size;

	return c->base + LTX_HEADER_SIZE + (size_t)c->next * frame;
}

/* pgno of the cursor's next frame, or 0 when it is exhausted. */
static uint32_t cursor_pgno(const cursor *c)
{
	if (c->next >= c->h.page_count)
		return 0;
	return lx_get_be32(cursor_frame(c));
}

/* Visit, in increasing order, the winning version of every page. */
static int merge(cursor *cs, size_t n, visit_fn visit, void *ctx, lx_err *err)
{
	for (size_t i = 0; i < n; i++)
		cs[i].next = 0;
	for (;;) {
		uint32_t pgno = 0;
		size_t win = n;
		const uint8_t *f;
		int rc;

		for (size_t i = 0; i < n; i++) {
			uint32_t p = cursor_pgno(&cs[i]);

			if (p != 0 && (pgno == 0 || p <= pgno)) {
				pgno = p;
				win = i;
			}
		}
		if (win == n)
			return 0;
		f = cursor_frame(&cs[win]);
		for (size_t i = 0; i < n; i++)
			if (cursor_pgno(&cs[i]) == pgno)
				cs[i].next++;
		if (pgno > cs[win].min_commit)
			continue;
		rc = visit(ctx, pgno, f + LTX_PAGE_HEADER_SIZE, lx_get_be64(f + 8),
			   err);
		if (rc != 0)
			return rc;
	}
}

static int count_page(void *ctx, uint32_t pgno, const uint8_t *data,
		      uint64_t page_checksum, lx_err *err)
{
	(void)pgno;
	(void)data;
	(void)page_checksum;
	(void)err;
	(*(uint32_t *)ctx)++;
	return 0;
}

static int encode_page(void *ctx, uint32_t pgno, const uint8_t *data,
		       uint64_t page_checksum, lx_err *err)
{
	return ltx_encoder_page(ctx, pgno, data, page_checksum, err);
}

/* Verify input i and check that it continues input i-1. */
static int load_input(cursor *cs, size_t i, const ltx_compact_input *in,
		      lx_err *err)
{
	cursor *c = &cs[i];
	const cursor *prev = i > 0 ? &cs[i - 1] : NULL;
	int rc = ltx_verify_buffer(in->buf, in->len, &c->h, &c->t, err);

	if (rc != 0)
		return wrap(err, rc, "ltx compact: input %zu", i);
	c->base = in->buf;
	if (prev == NULL)
		return 0;
	if (c->h.page_size != prev->h.page_size)
		return lx_err_set(err, EINVAL, "ltx compact: input %zu: page size "
				  "%u, input 0 has %u", i, c->h.page_size,
				  cs[0].h.page_size);
	if (c->h.min_txid != prev->h.max_txid + 1)
		return lx_err_set(err, EINVAL, "ltx compact: input %zu: min_txid "
				  "%llu does not follow max_txid %llu", i,
				  (unsigned long long)c->h.min_txid,
				  (unsigned long long)prev->h.max_txid);
	if (c->h.pre_checksum != prev->t.post_checksum)
		return lx_err_set(err, EINVAL, "ltx compact: input %zu: "
				  "pre_checksum 0x%016llx != previous "
				  "post_checksum 0x%016llx", i,
				  (unsigned long long)c->h.pre_checksum,
				  (unsigned long long)prev->t.post_checksum);
	return 0;
}

/* The output header: see ltx_compact() in ltx.h. */
static ltx_header output_header(const cursor *cs, size_t n, uint32_t pages)
{
	const ltx_header *first = &cs[0].h, *last = &cs[n - 1].h;
	ltx_header h = *last;

	h.min_txid = first->min_txid;
	h.pre_checksum = first->pre_checksum;
	h.page_count = pages;
	h.flags = h.min_txid < h.max_txid ? LTX_FLAG_COMPACTED : 0;
	return h;
}

static int compact(cursor *cs, size_t n, ltx_write_fn write, void *ctx,
		   ltx_header *out_h, ltx_trailer *out_t, lx_err *err)
{
	ltx_encoder enc;
	ltx_header h;
	uint32_t pages = 0;
	uint64_t post = cs[n - 1].t.post_checksum, fck = 0;
	int rc;

	(void)merge(cs, n, count_page, &pages, err);
	h = output_header(cs, n, pages);
	if (ltx_header_is_snapshot(&h) &&
	    pages != ltx_snapshot_page_count(h.page_size, h.commit))
		return lx_err_set(err, EBADMSG, "ltx compact: merged snapshot "
				  "has %u pages, a %u-page database needs %u",
				  pages, h.commit,
				  ltx_snapshot_page_count(h.page_size, h.commit));
	rc = ltx_encoder_begin(&enc, &h, write, ctx, err);
	if (rc == 0)
		rc = merge(cs, n, encode_page, &enc, err);
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, post, &fck, err);
	ltx_encoder_free(&enc);
	if (rc != 0)
		return wrap(err, rc, "ltx compact");
	if (out_h != NULL)
		*out_h = h;
	if (out_t != NULL) {
		out_t->post_checksum = post;
		out_t->file_checksum = fck;
	}
	return 0;
}

int ltx_compact(const ltx_compact_input *in, size_t n, ltx_write_fn write,
		void *ctx, ltx_header *out_h, ltx_trailer *out_t, lx_err *err)
{
	cursor *cs;
	int rc = 0;

	if (in == NULL || n == 0 || write == NULL)
		return lx_err_set(err, EINVAL, "ltx compact: no input or no "
				  "write callback");
	cs = calloc(n, sizeof(*cs));
	if (cs == NULL)
		return lx_err_set(err, ENOMEM, "ltx compact: out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = load_input(cs, i, &in[i], err);
	for (size_t i = n; rc == 0 && i-- > 0;) {
		uint32_t later = i + 1 < n ? cs[i + 1].min_commit : UINT32_MAX;

		cs[i].min_commit = later < cs[i].h.commit ? later : cs[i].h.commit;
	}
	if (rc == 0)
		rc = compact(cs, n, write, ctx, out_h, out_t, err);
	free(cs);
	return rc;
}
