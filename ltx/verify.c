/*
 * verify.c - decoding and verifying whole LTX files: from a buffer in
 * memory, or from a byte range of a file descriptor read with pread().
 *
 * These are thin drivers of the streaming decoder (decode.c); they add no
 * rules of their own.
 */
#include "ltx/ltx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

int ltx_decode_buffer(const void *buf, size_t len, const ltx_decode_cb *cb,
		      lx_err *err)
{
	ltx_decoder dec;
	int rc = ltx_decoder_init(&dec, cb, NULL, err);

	if (rc == 0)
		rc = ltx_decoder_feed(&dec, buf, len, err);
	if (rc == 0)
		rc = ltx_decoder_finish(&dec, err);
	ltx_decoder_free(&dec);
	return rc;
}

/* Where ltx_verify_* store the header and trailer they saw. */
typedef struct verify_out {
	ltx_header *h;
	ltx_trailer *t;
} verify_out;

static int keep_header(void *ctx, const ltx_header *h)
{
	verify_out *out = ctx;

	if (out->h != NULL)
		*out->h = *h;
	return 0;
}

static int keep_trailer(void *ctx, const ltx_trailer *t)
{
	verify_out *out = ctx;

	if (out->t != NULL)
		*out->t = *t;
	return 0;
}

static ltx_decode_cb verify_callbacks(verify_out *out)
{
	ltx_decode_cb cb = { out, keep_header, NULL, keep_trailer };

	return cb;
}

int ltx_verify_buffer(const void *buf, size_t len, ltx_header *h,
		      ltx_trailer *t, lx_err *err)
{
	verify_out out = { h, t };
	ltx_decode_cb cb = verify_callbacks(&out);

	return ltx_decode_buffer(buf, len, &cb, err);
}

/*
 * The file ended after `got` of the `len` bytes to verify: report the
 * decoder's "truncated" error if the LTX is incomplete, else the short file.
 */
static int short_file(ltx_decoder *dec, uint64_t got, uint64_t len,
		      lx_err *err)
{
	int rc = ltx_decoder_finish(dec, err);

	if (rc != 0)
		return rc;
	return lx_err_set(err, EBADMSG, "ltx: offset %llu: file ends after "
			  "the LTX, %llu bytes short of the expected length "
			  "%llu", (unsigned long long)got,
			  (unsigned long long)(len - got),
			  (unsigned long long)len);
}

/* Read [offset, offset+len) of `fd` into the decoder, chunk by chunk. */
static int feed_fd(ltx_decoder *dec, int fd, uint64_t offset, uint64_t len,
		   lx_err *err)
{
	enum { CHUNK = 256 * 1024 };
	uint8_t *chunk = malloc(len < CHUNK ? (size_t)len + 1 : CHUNK);
	uint64_t done = 0;
	int rc = 0;

	if (chunk == NULL)
		return lx_err_set(err, ENOMEM, "ltx: out of memory");
	while (rc == 0 && done < len) {
		size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		ssize_t n = pread(fd, chunk, want, (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = lx_err_sys(err, errno, "ltx: pread at %llu",
					(unsigned long long)(offset + done));
			break;
		}
		if (n == 0) {
			rc = short_file(dec, done, len, err);
			break;
		}
		rc = ltx_decoder_feed(dec, chunk, (size_t)n, err);
		done += (uint64_t)n;
	}
	free(chunk);
	return rc;
}

int ltx_verify_fd(int fd, uint64_t offset, uint64_t len, ltx_header *h,
		  ltx_trailer *t, lx_err *err)
{
	verify_out out = { h, t };
	ltx_decode_cb cb = verify_callbacks(&out);
	ltx_decoder dec;
	int rc = ltx_decoder_init(&dec, &cb, NULL, err);

	if (rc == 0)
		rc = feed_fd(&dec, fd, offset, len, err);
	if (rc == 0)
		rc = ltx_decoder_finish(&dec, err);
	ltx_decoder_free(&dec);
	return rc;
}

int ltx_file_at(const uint8_t *buf, size_t len, ltx_header *h, uint64_t *size, lx_err *err)
{
	int rc;
	if (len < LTX_HEADER_SIZE)
		return lx_err_set(err, EBADMSG, "%zu bytes left: too short for an LTX header", len);
	rc = ltx_header_decode(buf, h, err);
	if (rc < 0)
		return rc;
	*size = ltx_file_size(h);
	if (*size == 0 || *size > len)
		return lx_err_set(err, EBADMSG, "an LTX file of %" PRIu64 " bytes in %zu bytes: "
				  "truncated", *size, len);
	return 0;
}
