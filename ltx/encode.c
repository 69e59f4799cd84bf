/*
 * encode.c - the streaming LTX encoder.
 *
 * The encoder writes header, page frames and trailer through the caller's
 * write callback as they come; it holds one 16-byte frame header at a time
 * and never the file.  It enforces on its input the rules the decoder
 * enforces on bytes (docs/ltx-format.md), so whatever it finishes decodes.
 *
 * A call rejected for a bad argument (EINVAL) writes nothing and leaves the
 * encoder as it was; a failed write makes it unusable (state -1).
 */
#include "base/bytes.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { ENC_NEW = 0, ENC_PAGES = 1, ENC_DONE = 2, ENC_FAILED = -1 };

/* Offset of the next page frame, or of the trailer after the last. */
static uint64_t enc_offset(const ltx_encoder *enc)
{
	return LTX_HEADER_SIZE + (uint64_t)enc->pages_written *
	       (LTX_PAGE_HEADER_SIZE + enc->hdr.page_size);
}

/*
 * Hash and write `len` bytes that go at offset `at` of the file; a failed
 * write fails the encoder.
 */
static int emit(ltx_encoder *enc, const void *buf, size_t len, uint64_t at,
		int hashed, lx_err *err)
{
	int rc;

	if (hashed)
		XXH3_64bits_update(enc->hash, buf, len);
	rc = enc->write(enc->ctx, buf, len);
	if (rc < 0) {
		enc->state = ENC_FAILED;
		return lx_err_sys(err, rc > -4096 ? -rc : EIO,
				  "ltx: write at offset %llu",
				  (unsigned long long)at);
	}
	return 0;
}

static int expect_state(const ltx_encoder *enc, int want, lx_err *err)
{
	static const char *const names[] = { "not begun", "writing pages",
					      "finished" };

	if (enc->state == want)
		return 0;
	if (enc->state == ENC_FAILED)
		return lx_err_set(err, EINVAL, "ltx: encoder failed earlier");
	return lx_err_set(err, EINVAL, "ltx: encoder is %s", names[enc->state]);
}

int ltx_encoder_begin(ltx_encoder *enc, const ltx_header *h, ltx_write_fn write,
		      void *ctx, lx_err *err)
{
	uint8_t buf[LTX_HEADER_SIZE];
	int rc;

	memset(enc, 0, sizeof(*enc));
	enc->state = ENC_FAILED;
	if (h == NULL || write == NULL)
		return lx_err_set(err, EINVAL, "ltx: encoder needs a header and "
				  "a write callback");
	rc = ltx_header_validate(h, err);
	if (rc != 0)
		return rc;
	enc->hash = XXH3_createState();
	if (enc->hash == NULL || XXH3_64bits_reset(enc->hash) != XXH_OK)
		return lx_err_set(err, ENOMEM, "ltx: out of memory");
	enc->hdr = *h;
	enc->write = write;
	enc->ctx = ctx;
	enc->state = ENC_PAGES;
	ltx_header_encode(h, buf);
	return emit(enc, buf, sizeof(buf), 0, 1, err);
}

/*
 * Is `pgno` acceptable as the next page?  A snapshot takes exactly the next
 * page of 1..commit, skipping the lock page; any other file takes a higher
 * page number within 1..commit that is not the lock page.
 */
static int check_pgno(const ltx_encoder *enc, uint32_t pgno, lx_err *err)
{
	const ltx_header *h = &enc->hdr;
	uint32_t lock = ltx_lock_pgno(h->page_size);

	if (enc->pages_written >= h->page_count)
		return lx_err_set(err, EINVAL, "ltx: page %u: all %u pages "
				  "already written", pgno, h->page_count);
	if (ltx_header_is_snapshot(h)) {
		uint32_t want = enc->last_pgno + 1;

		if (want == lock)
			want++;
		if (pgno != want)
			return lx_err_set(err, EINVAL, "ltx: snapshot page %u, "
					  "expected %u", pgno, want);
		return 0;
	}
	if (pgno == 0 || pgno > h->commit)
		return lx_err_set(err, EINVAL, "ltx: page %u outside 1..%u "
				  "(commit)", pgno, h->commit);
	if (pgno == lock)
		return lx_err_set(err, EINVAL, "ltx: page %u is the lock page",
				  pgno);
	if (pgno <= enc->last_pgno)
		return lx_err_set(err, EINVAL, "ltx: page %u after page %u "
				  "(pages must increase)", pgno, enc->last_pgno);
	return 0;
}

int ltx_encoder_page(ltx_encoder *enc, uint32_t pgno, const void *data,
		     uint64_t page_checksum, lx_err *err)
{
	uint8_t fh[LTX_PAGE_HEADER_SIZE];
	int rc = expect_state(enc, ENC_PAGES, err);

	if (rc == 0)
		rc = check_pgno(enc, pgno, err);
	if (rc != 0)
		return rc;
	if (data == NULL)
		return lx_err_set(err, EINVAL, "ltx: page %u: no data", pgno);
	if (page_checksum == 0)
		page_checksum = ltx_page_checksum(pgno, data, enc->hdr.page_size);
	else if (!(page_checksum & LTX_CHECKSUM_FLAG))
		return lx_err_set(err, EINVAL, "ltx: page %u: checksum 0x%016llx "
				  "lacks bit 63", pgno,
				  (unsigned long long)page_checksum);
	lx_put_be32(fh, pgno);
	lx_put_be32(fh + 4, 0);
	lx_put_be64(fh + 8, page_checksum);
	rc = emit(enc, fh, sizeof(fh), enc_offset(enc), 1, err);
	if (rc == 0)
		rc = emit(enc, data, enc->hdr.page_size,
			  enc_offset(enc) + sizeof(fh), 1, err);
	if (rc != 0)
		return rc;
	enc->pages_written++;
	enc->last_pgno = pgno;
	enc->snapshot_checksum ^= page_checksum;
	return 0;
}

/* The trailer rules that depend on what was written. */
static int check_post(const ltx_encoder *enc, uint64_t post, lx_err *err)
{
	const ltx_header *h = &enc->hdr;
	uint64_t pages = enc->snapshot_checksum | LTX_CHECKSUM_FLAG;

	if (enc->pages_written != h->page_count)
		return lx_err_set(err, EINVAL, "ltx: %u of %u pages written",
				  enc->pages_written, h->page_count);
	if (!(post & LTX_CHECKSUM_FLAG))
		return lx_err_set(err, EINVAL, "ltx: post_checksum 0x%016llx "
				  "lacks bit 63", (unsigned long long)post);
	if (h->commit == 0 && post != LTX_CHECKSUM_FLAG)
		return lx_err_set(err, EINVAL, "ltx: deletion (commit 0) needs "
				  "post_checksum 0x%016llx, got 0x%016llx",
				  (unsigned long long)LTX_CHECKSUM_FLAG,
				  (unsigned long long)post);
	if (ltx_header_is_snapshot(h) && post != pages)
		return lx_err_set(err, EINVAL, "ltx: snapshot post_checksum "
				  "0x%016llx, its pages sum to 0x%016llx",
				  (unsigned long long)post,
				  (unsigned long long)pages);
	return 0;
}

int ltx_encoder_finish(ltx_encoder *enc, uint64_t post_checksum,
		       uint64_t *file_checksum, lx_err *err)
{
	uint8_t tr[LTX_TRAILER_SIZE];
	uint64_t fck;
	int rc = expect_state(enc, ENC_PAGES, err);

	if (rc == 0)
		rc = check_post(enc, post_checksum, err);
	if (rc != 0)
		return rc;
	lx_put_be64(tr, post_checksum);
	XXH3_64bits_update(enc->hash, tr, 8);
	fck = XXH3_64bits_digest(enc->hash) | LTX_CHECKSUM_FLAG;
	lx_put_be64(tr + 8, fck);
	rc = emit(enc, tr, sizeof(tr), enc_offset(enc), 0, err);
	if (rc != 0)
		return rc;
	enc->state = ENC_DONE;
	if (file_checksum != NULL)
		*file_checksum = fck;
	return 0;
}

void ltx_encoder_free(ltx_encoder *enc)
{
	if (enc == NULL)
		return;
	XXH3_freeState(enc->hash);
	enc->hash = NULL;
	enc->state = ENC_FAILED;
}
