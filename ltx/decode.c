/*
 * decode.c - the streaming (push) LTX decoder.
 *
 * The caller feeds bytes in pieces of any size; the decoder moves through
 * the file one unit at a time (header, frame header, page data, trailer),
 * collecting a unit in `head` or `buf` until it is complete and then
 * checking it against the rules of docs/ltx-format.md.  Page data that
 * arrives whole in one piece is checked in place, without copying.
 *
 * Invariants: `offset` counts the bytes consumed; `buf_len` bytes of the
 * current unit are collected; the XXH3 state has seen every consumed byte
 * of the file except the file checksum itself.  Once a check fails,
 * `failed` holds the errno and every later call fails with it.  Nothing is
 * allocated (hash state, page buffer) until the header has passed the
 * limits.
 */
#include "base/bytes.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* dec->state: the unit being collected. */
enum {
	ST_HEADER = 0,  /* into head, LTX_HEADER_SIZE bytes */
	ST_FRAME,       /* into head, LTX_PAGE_HEADER_SIZE bytes */
	ST_DATA,        /* into buf, page_size bytes */
	ST_TRAILER,     /* into head, LTX_TRAILER_SIZE bytes */
	ST_DONE         /* trailer verified; nothing more may follow */
};

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

int ltx_decoder_init(ltx_decoder *dec, const ltx_decode_cb *cb,
		     const ltx_limits *limits, lx_err *err)
{
	memset(dec, 0, sizeof(*dec));
	if (cb != NULL)
		dec->cb = *cb;
	if (limits != NULL)
		dec->limits = *limits;
	dec->state = ST_HEADER;
	(void)err;              /* nothing can fail before the header */
	return 0;
}

void ltx_decoder_free(ltx_decoder *dec)
{
	if (dec == NULL)
		return;
	XXH3_freeState(dec->hash);
	free(dec->buf);
	dec->hash = NULL;
	dec->buf = NULL;
	dec->buf_cap = 0;
}

const ltx_header *ltx_decoder_header(const ltx_decoder *dec)
{
	return dec->state > ST_HEADER ? &dec->hdr : NULL;
}

/* Offset of the first byte of a just-completed unit of `size` bytes. */
static uint64_t unit_start(const ltx_decoder *dec, size_t size)
{
	return dec->offset - size;
}

/*
 * A consumer callback returned `rc` < 0: abort with its code (EIO if it is
 * not a plausible errno).
 */
static int callback_failed(const ltx_decoder *dec, const char *what, int rc,
			   lx_err *err)
{
	int code = rc > -4096 ? -rc : EIO;

	return lx_err_sys(err, code, "ltx: offset %llu: %s callback failed",
			  ull(dec->offset), what);
}

/* ---- header ----------------------------------------------------------- */

/* The limits of ltx_limits, checked before anything is allocated. */
static int check_limits(const ltx_decoder *dec, lx_err *err)
{
	const ltx_limits *l = &dec->limits;
	uint64_t size = ltx_file_size(&dec->hdr);

	if (l->max_page_count != 0 && dec->hdr.page_count > l->max_page_count)
		return lx_err_set(err, EOVERFLOW, "ltx: offset 20: page_count "
				  "%u exceeds the limit %u", dec->hdr.page_count,
				  l->max_page_count);
	if (l->max_file_size != 0 && size > l->max_file_size)
		return lx_err_set(err, EOVERFLOW, "ltx: offset 0: file size "
				  "%llu (per header) exceeds the limit %llu",
				  ull(size), ull(l->max_file_size));
	return 0;
}

static int on_header(ltx_decoder *dec, lx_err *err)
{
	int rc = ltx_header_decode(dec->head, &dec->hdr, err);

	if (rc == 0)
		rc = check_limits(dec, err);
	if (rc != 0)
		return rc;
	dec->hash = XXH3_createState();
	if (dec->hash == NULL || XXH3_64bits_reset(dec->hash) != XXH_OK)
		return lx_err_set(err, ENOMEM, "ltx: out of memory");
	if (dec->hdr.page_count > 0) {
		dec->buf = malloc(dec->hdr.page_size);
		if (dec->buf == NULL)
			return lx_err_set(err, ENOMEM, "ltx: out of memory");
		dec->buf_cap = dec->hdr.page_size;
	}
	XXH3_64bits_update(dec->hash, dec->head, LTX_HEADER_SIZE);
	dec->state = dec->hdr.page_count > 0 ? ST_FRAME : ST_TRAILER;
	if (dec->cb.on_header != NULL) {
		rc = dec->cb.on_header(dec->cb.ctx, &dec->hdr);
		if (rc < 0)
			return callback_failed(dec, "header", rc, err);
	}
	return 0;
}

/* ---- page frames -------------------------------------------------------- */

/*
 * Is `pgno` legal for the next frame, which starts at `at`?  Snapshots hold
 * exactly pages 1..commit minus the lock page in order; other files any
 * increasing subset of 1..commit without the lock page.
 */
static int check_pgno(const ltx_decoder *dec, uint32_t pgno, uint64_t at,
		      lx_err *err)
{
	const ltx_header *h = &dec->hdr;
	uint32_t lock = ltx_lock_pgno(h->page_size);
	uint32_t n = dec->pages_read + 1;

	if (ltx_header_is_snapshot(h)) {
		uint32_t want = dec->last_pgno + 1;

		if (want == lock)
			want++;
		if (pgno != want)
			return lx_err_set(err, EBADMSG, "ltx: offset %llu: frame "
					  "%u: snapshot page %u, expected %u",
					  ull(at), n, pgno, want);
		return 0;
	}
	if (pgno == 0 || pgno > h->commit)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: frame %u: "
				  "page %u outside 1..%u (commit)", ull(at), n,
				  pgno, h->commit);
	if (pgno == lock)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: frame %u: "
				  "page %u is the lock page", ull(at), n, pgno);
	if (pgno <= dec->last_pgno)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: frame %u: "
				  "page %u after page %u (pages must increase)",
				  ull(at), n, pgno, dec->last_pgno);
	return 0;
}

static int on_frame(ltx_decoder *dec, lx_err *err)
{
	uint64_t at = unit_start(dec, LTX_PAGE_HEADER_SIZE);
	uint32_t pgno = lx_get_be32(dec->head);
	uint32_t flags = lx_get_be32(dec->head + 4);
	int rc = check_pgno(dec, pgno, at, err);

	if (rc != 0)
		return rc;
	if (flags != 0)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: page %u: "
				  "frame flags 0x%x must be 0", ull(at + 4),
				  pgno, flags);
	dec->frame_pgno = pgno;
	dec->frame_checksum = lx_get_be64(dec->head + 8);
	XXH3_64bits_update(dec->hash, dec->head, LTX_PAGE_HEADER_SIZE);
	dec->state = ST_DATA;
	return 0;
}

/* The page data of the current frame is complete at `data`. */
static int on_data(ltx_decoder *dec, const uint8_t *data, lx_err *err)
{
	uint32_t ps = dec->hdr.page_size;
	uint64_t ck = ltx_page_checksum(dec->frame_pgno, data, ps);
	int rc;

	if (ck != dec->frame_checksum)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: page %u: "
				  "checksum mismatch (stored 0x%016llx, "
				  "computed 0x%016llx)", ull(unit_start(dec, ps)),
				  dec->frame_pgno, ull(dec->frame_checksum),
				  ull(ck));
	XXH3_64bits_update(dec->hash, data, ps);
	dec->snapshot_checksum ^= ck;
	dec->pages_read++;
	dec->last_pgno = dec->frame_pgno;
	dec->state = dec->pages_read < dec->hdr.page_count ? ST_FRAME :
							     ST_TRAILER;
	if (dec->cb.on_page != NULL) {
		rc = dec->cb.on_page(dec->cb.ctx, dec->frame_pgno, data, ck);
		if (rc < 0)
			return callback_failed(dec, "page", rc, err);
	}
	return 0;
}

/* ---- trailer ------------------------------------------------------------ */

/* Checksums of the trailer starting at `at`; see docs/ltx-format.md. */
static int check_trailer(ltx_decoder *dec, const ltx_trailer *t, uint64_t at,
			 lx_err *err)
{
	const ltx_header *h = &dec->hdr;
	uint64_t fck, pages = dec->snapshot_checksum | LTX_CHECKSUM_FLAG;

	XXH3_64bits_update(dec->hash, dec->head, 8);
	fck = XXH3_64bits_digest(dec->hash) | LTX_CHECKSUM_FLAG;
	if (t->file_checksum != fck)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: file checksum "
				  "mismatch (stored 0x%016llx, computed "
				  "0x%016llx)", ull(at + 8),
				  ull(t->file_checksum), ull(fck));
	if (!(t->post_checksum & LTX_CHECKSUM_FLAG))
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: post_checksum "
				  "0x%016llx lacks bit 63", ull(at),
				  ull(t->post_checksum));
	if (h->commit == 0 && t->post_checksum != LTX_CHECKSUM_FLAG)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: deletion "
				  "(commit 0) has post_checksum 0x%016llx, must "
				  "be 0x%016llx", ull(at), ull(t->post_checksum),
				  ull(LTX_CHECKSUM_FLAG));
	if (ltx_header_is_snapshot(h) && t->post_checksum != pages)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: snapshot "
				  "post_checksum 0x%016llx, its pages sum to "
				  "0x%016llx", ull(at), ull(t->post_checksum),
				  ull(pages));
	return 0;
}

/*
 * The trailer is complete; `more` says whether input follows it in the
 * same feed, which is rejected before the consumer hears of the trailer.
 */
static int on_trailer(ltx_decoder *dec, int more, lx_err *err)
{
	uint64_t at = unit_start(dec, LTX_TRAILER_SIZE);
	ltx_trailer t;
	int rc;

	t.post_checksum = lx_get_be64(dec->head);
	t.file_checksum = lx_get_be64(dec->head + 8);
	rc = check_trailer(dec, &t, at, err);
	if (rc != 0)
		return rc;
	if (more)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: trailing "
				  "bytes after the trailer", ull(dec->offset));
	dec->state = ST_DONE;
	if (dec->cb.on_trailer != NULL) {
		rc = dec->cb.on_trailer(dec->cb.ctx, &t);
		if (rc < 0)
			return callback_failed(dec, "trailer", rc, err);
	}
	return 0;
}

/* ---- feeding ------------------------------------------------------------ */

static size_t unit_size(const ltx_decoder *dec)
{
	switch (dec->state) {
	case ST_HEADER:
		return LTX_HEADER_SIZE;
	case ST_FRAME:
		return LTX_PAGE_HEADER_SIZE;
	case ST_DATA:
		return dec->hdr.page_size;
	default:
		return LTX_TRAILER_SIZE;
	}
}

/* The current unit is complete (in `unit`); check and consume it. */
static int on_unit(ltx_decoder *dec, const uint8_t *unit, int more,
		   lx_err *err)
{
	int state = dec->state;

	dec->buf_len = 0;
	switch (state) {
	case ST_HEADER:
		return on_header(dec, err);
	case ST_FRAME:
		return on_frame(dec, err);
	case ST_DATA:
		return on_data(dec, unit, err);
	default:
		return on_trailer(dec, more, err);
	}
}

/*
 * Consume up to `len` bytes of the current unit from `p`; set *used.
 * Page data that is entirely in `p` is checked where it is.
 */
static int step(ltx_decoder *dec, const uint8_t *p, size_t len, size_t *used,
		lx_err *err)
{
	size_t need = unit_size(dec) - dec->buf_len;
	uint8_t *dst = dec->state == ST_DATA ? dec->buf : dec->head;

	if (dec->state == ST_DONE)
		return lx_err_set(err, EBADMSG, "ltx: offset %llu: trailing "
				  "bytes after the trailer", ull(dec->offset));
	*used = len < need ? len : need;
	dec->offset += *used;
	if (dec->state == ST_DATA && dec->buf_len == 0 && len >= need)
		return on_unit(dec, p, len > need, err);
	memcpy(dst + dec->buf_len, p, *used);
	dec->buf_len += *used;
	if (*used < need)
		return 0;
	return on_unit(dec, dst, len > need, err);
}

int ltx_decoder_feed(ltx_decoder *dec, const void *buf, size_t len,
		     lx_err *err)
{
	const uint8_t *p = buf;

	if (dec->failed != 0)
		return lx_err_set(err, dec->failed, "ltx: decoder failed earlier");
	while (len > 0) {
		size_t used = 0;
		int rc = step(dec, p, len, &used, err);

		if (rc != 0) {
			dec->failed = -rc;
			return rc;
		}
		p += used;
		len -= used;
	}
	return 0;
}

/* ---- end of input ------------------------------------------------------- */

int ltx_decoder_finish(ltx_decoder *dec, lx_err *err)
{
	uint64_t at = dec->offset - dec->buf_len;
	uint64_t size = ltx_file_size(&dec->hdr);
	uint32_t n = dec->pages_read + 1, pc = dec->hdr.page_count;
	size_t have = dec->buf_len;

	if (dec->failed != 0)
		return lx_err_set(err, dec->failed, "ltx: decoder failed earlier");
	switch (dec->state) {
	case ST_DONE:
		return 0;
	case ST_HEADER:
		return lx_err_set(err, EBADMSG, "ltx: truncated: %zu of %u "
				  "header bytes", have, LTX_HEADER_SIZE);
	case ST_FRAME:
		return lx_err_set(err, EBADMSG, "ltx: truncated at offset %llu: "
				  "frame %u of %u: %zu of %u frame header bytes "
				  "(file is %llu bytes)", ull(dec->offset), n, pc,
				  have, LTX_PAGE_HEADER_SIZE, ull(size));
	case ST_DATA:
		return lx_err_set(err, EBADMSG, "ltx: truncated at offset %llu: "
				  "page %u (frame %u of %u, data at %llu): %zu of "
				  "%u data bytes (file is %llu bytes)",
				  ull(dec->offset), dec->frame_pgno, n, pc,
				  ull(at), have, dec->hdr.page_size, ull(size));
	default:
		return lx_err_set(err, EBADMSG, "ltx: truncated at offset %llu: "
				  "%zu of %u trailer bytes (file is %llu bytes)",
				  ull(dec->offset), have, LTX_TRAILER_SIZE,
				  ull(size));
	}
}
