/*
 * apply.c - write a verified LTX file's pages into a database file (see
 * apply.h).
 */
#include "db/apply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "ltx/ltx.h"

typedef struct apply_ctx {
	apply_target *t;
	const ltx_header *h;
	int full_image;
	uint64_t checksum;
	lx_err *err;
} apply_ctx;

static int page_ck_reserve(apply_target *t, uint32_t n)
{
	size_t cap = t->page_ck_cap ? t->page_ck_cap : 64;
	uint64_t *v;
	if (t->page_ck == NULL && t->page_ck_cap == 0 && n == 0)
		return 0;
	if (n <= t->page_ck_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	v = realloc(t->page_ck, cap * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	memset(v + t->page_ck_cap, 0, (cap - t->page_ck_cap) * sizeof(*v));
	t->page_ck = v;
	t->page_ck_cap = cap;
	return 0;
}

static int on_header(void *arg, const ltx_header *h)
{
	apply_ctx *c = arg;
	apply_target *t = c->t;
	c->h = h;
	c->full_image = ltx_header_is_snapshot(h) ||
		h->page_count == ltx_snapshot_page_count(h->page_size, h->commit);
	if (!ltx_header_is_snapshot(h) && h->pre_checksum != t->checksum)
		return lx_err_set(c->err, EBADMSG,
			"TXID %" PRIu64 " expects checksum %016" PRIx64 ", database has %016" PRIx64,
			h->min_txid, h->pre_checksum, t->checksum);
	if (!ltx_header_is_snapshot(h) && h->min_txid != t->txid + 1)
		return lx_err_set(c->err, EBADMSG, "TXID %" PRIu64 " does not follow %" PRIu64,
				  h->min_txid, t->txid);
	if (t->page_size && h->commit && h->page_size != t->page_size && t->n_pages && !c->full_image)
		return lx_err_set(c->err, EBADMSG, "page size changes from %u to %u without a full image",
				  t->page_size, h->page_size);
	if (page_ck_reserve(t, h->commit) < 0)
		return -ENOMEM;
	if (c->full_image && t->page_ck)
		memset(t->page_ck, 0, t->page_ck_cap * sizeof(uint64_t));
	c->checksum = c->full_image ? LTX_CHECKSUM_FLAG : t->checksum;
	return 0;
}

static int on_page(void *arg, uint32_t pgno, const uint8_t *data, uint64_t ck)
{
	apply_ctx *c = arg;
	apply_target *t = c->t;
	uint32_t ps = c->h->page_size;
	uint64_t old = 0;
	size_t done = 0;

	if (!c->full_image && t->page_ck && pgno <= t->n_pages)
		old = t->page_ck[pgno - 1];
	if (t->put != NULL) {
		int rc = t->put(t->put_ctx, pgno, data, ck, c->err);
		if (rc < 0)
			return rc;
		done = ps;
	}
	while (done < ps) {
		ssize_t n = pwrite(t->fd, data + done, ps - done,
				   (off_t)(pgno - 1) * ps + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return lx_err_sys(c->err, errno, "write page %u", pgno);
		}
		done += (size_t)n;
	}
	if (t->page_ck)
		t->page_ck[pgno - 1] = ck;
	if (t->written)
		t->written(t->written_ctx, pgno);
	c->checksum = ltx_checksum_update(c->checksum, old, ck);
	return 0;
}

/* After every page was written: cut the file, check and take the position. */
static int finish(apply_target *t, apply_ctx *c, const ltx_header *h,
		  const ltx_trailer *tr, lx_err *err)
{
	/* Pages beyond the new size leave the checksum. */
	if (!c->full_image && t->page_ck)
		for (uint32_t p = h->commit + 1; p <= t->n_pages; p++) {
			c->checksum = ltx_checksum_update(c->checksum, t->page_ck[p - 1], 0);
			t->page_ck[p - 1] = 0;
		}
	if (t->put == NULL && ftruncate(t->fd, (off_t)h->commit * h->page_size) < 0)
		return lx_err_sys(err, errno, "truncate to %u pages", h->commit);
	if (t->page_ck && c->checksum != tr->post_checksum)
		return lx_err_set(err, EBADMSG,
			"TXID %" PRIu64 ": database checksum after apply %016" PRIx64 " != %016" PRIx64,
			h->max_txid, c->checksum, tr->post_checksum);
	t->page_size = h->commit ? h->page_size : 0;
	t->n_pages = h->commit;
	t->checksum = tr->post_checksum;
	t->txid = h->max_txid;
	return 0;
}

int apply_ltx(apply_target *t, const uint8_t *ltx, size_t len, lx_err *err)
{
	ltx_header h;
	ltx_trailer tr;
	apply_ctx c = { t, NULL, 0, 0, err };
	ltx_decode_cb cb = { &c, on_header, on_page, NULL };
	int rc = ltx_verify_buffer(ltx, len, &h, &tr, err);

	if (rc < 0)
		return rc;
	rc = ltx_decode_buffer(ltx, len, &cb, err);
	if (rc < 0)
		return rc;
	return finish(t, &c, &h, &tr, err);
}

/* Header and trailer of an LTX file already verified as a whole. */
static int ltx_verify_header_trailer_fd(int fd, uint64_t len, ltx_header *h, ltx_trailer *t,
					lx_err *err)
{
	uint8_t raw[LTX_HEADER_SIZE];
	if (len < LTX_HEADER_SIZE + LTX_TRAILER_SIZE ||
	    pread(fd, raw, LTX_HEADER_SIZE, 0) != LTX_HEADER_SIZE)
		return lx_err_set(err, EBADMSG, "LTX file of %" PRIu64 " bytes is short", len);
	if (ltx_header_decode(raw, h, err) < 0)
		return -EBADMSG;
	if (pread(fd, raw, LTX_TRAILER_SIZE, (off_t)(len - LTX_TRAILER_SIZE)) != LTX_TRAILER_SIZE)
		return lx_err_set(err, EBADMSG, "LTX trailer unreadable");
	t->post_checksum = lx_get_be64(raw);
	t->file_checksum = lx_get_be64(raw + 8);
	return 0;
}

int apply_ltx_fd(apply_target *t, int fd, uint64_t len, lx_err *err)
{
	enum { CHUNK = 256 * 1024 };
	ltx_header h;
	ltx_trailer tr;
	ltx_decoder dec;
	apply_ctx c = { t, NULL, 0, 0, err };
	ltx_decode_cb cb = { &c, on_header, on_page, NULL };
	uint8_t *buf;
	int rc = t->verified ? ltx_verify_header_trailer_fd(fd, len, &h, &tr, err)
			     : ltx_verify_fd(fd, 0, len, &h, &tr, err);

	if (rc < 0)
		return rc;
	buf = malloc(len < CHUNK ? (size_t)len : CHUNK);
	if (buf == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = ltx_decoder_init(&dec, &cb, NULL, err);
	for (uint64_t off = 0; rc == 0 && off < len;) {
		size_t n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
		ssize_t got = pread(fd, buf, n, (off_t)off);
		if (got <= 0)
			rc = got < 0 ? lx_err_sys(err, errno, "read LTX") :
				       lx_err_set(err, EIO, "LTX file shorter than %" PRIu64, len);
		else
			rc = ltx_decoder_feed(&dec, buf, (size_t)got, err);
		off += got > 0 ? (uint64_t)got : 0;
	}
	if (rc == 0)
		rc = ltx_decoder_finish(&dec, err);
	ltx_decoder_free(&dec);
	free(buf);
	return rc < 0 ? rc : finish(t, &c, &h, &tr, err);
}
