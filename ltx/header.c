/*
 * header.c - the 96-byte LTX header: serialisation, parsing, validation.
 *
 * All integers are big-endian; the byte layout and every rule checked here
 * are in docs/ltx-format.md.  Parsing checks the bytes that do not survive
 * into ltx_header (magic, version, reserved) and then the same rules as
 * ltx_header_validate(); its messages name the byte offset of the offending
 * field, because a parsed header sits at offset 0 of its file.
 */
#include "base/bytes.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Field offsets. */
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_RESERVED 6
#define OFF_FLAGS 8
#define OFF_PAGE_SIZE 12
#define OFF_COMMIT 16
#define OFF_PAGE_COUNT 20
#define OFF_MIN_TXID 24
#define OFF_MAX_TXID 32
#define OFF_TIMESTAMP 40
#define OFF_PRE_CHECKSUM 48
#define OFF_NODE_ID 56
#define OFF_LEASE_EPOCH 64
#define OFF_TAIL 72

/*
 * Where a rule violation is reported: a parsed header names the field's
 * byte offset, a header given as a struct (to the encoder) says "header".
 */
typedef struct where {
	int code;        /* EBADMSG for parsed bytes, EINVAL for arguments */
	int parsed;
} where;

static int fail(lx_err *err, const where *w, unsigned off,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(lx_err *err, const where *w, unsigned off,
		const char *fmt, ...)
{
	char msg[LX_ERR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return -w->code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->parsed)
		return lx_err_set(err, w->code, "ltx: offset %u: %s", off, msg);
	return lx_err_set(err, w->code, "ltx: header: %s", msg);
}

/* Flags, page size and the TXID range. */
static int check_ids(const ltx_header *h, const where *w, lx_err *err)
{
	int compacted = (h->flags & LTX_FLAG_COMPACTED) != 0;

	if (h->flags & ~LTX_FLAGS_MASK)
		return fail(err, w, OFF_FLAGS, "unknown flags 0x%x (known 0x%x)",
			    h->flags & ~LTX_FLAGS_MASK, LTX_FLAGS_MASK);
	if (!ltx_page_size_valid(h->page_size))
		return fail(err, w, OFF_PAGE_SIZE,
			    "page_size %u is not a power of two in %u..%u",
			    h->page_size, LTX_MIN_PAGE_SIZE, LTX_MAX_PAGE_SIZE);
	if (h->min_txid == 0)
		return fail(err, w, OFF_MIN_TXID, "min_txid must be >= 1");
	if (h->max_txid < h->min_txid)
		return fail(err, w, OFF_MAX_TXID,
			    "max_txid %llu < min_txid %llu",
			    (unsigned long long)h->max_txid,
			    (unsigned long long)h->min_txid);
	if (compacted != (h->min_txid < h->max_txid))
		return fail(err, w, OFF_FLAGS,
			    "COMPACTED flag %s but TXID range is %llu..%llu "
			    "(the flag is set iff min_txid < max_txid)",
			    compacted ? "set" : "clear",
			    (unsigned long long)h->min_txid,
			    (unsigned long long)h->max_txid);
	return 0;
}

/* commit, pre_checksum and page_count, which depend on the file kind. */
static int check_pages(const ltx_header *h, const where *w, lx_err *err)
{
	uint32_t max_pages;

	if (h->commit > LTX_MAX_PGNO)
		return fail(err, w, OFF_COMMIT, "commit %u > %u", h->commit,
			    LTX_MAX_PGNO);
	max_pages = ltx_snapshot_page_count(h->page_size, h->commit);
	if (ltx_header_is_snapshot(h)) {
		if (h->pre_checksum != 0)
			return fail(err, w, OFF_PRE_CHECKSUM,
				    "snapshot pre_checksum 0x%016llx must be 0",
				    (unsigned long long)h->pre_checksum);
		if (h->page_count != max_pages)
			return fail(err, w, OFF_PAGE_COUNT,
				    "snapshot page_count %u, must be %u "
				    "(pages 1..%u except the lock page)",
				    h->page_count, max_pages, h->commit);
		return 0;
	}
	if (!(h->pre_checksum & LTX_CHECKSUM_FLAG))
		return fail(err, w, OFF_PRE_CHECKSUM,
			    "pre_checksum 0x%016llx lacks bit 63",
			    (unsigned long long)h->pre_checksum);
	if (h->page_count > max_pages)
		return fail(err, w, OFF_PAGE_COUNT,
			    "page_count %u > %u pages of a %u-page database",
			    h->page_count, max_pages, h->commit);
	return 0;
}

static int check(const ltx_header *h, const where *w, lx_err *err)
{
	int rc = check_ids(h, w, err);

	if (rc == 0)
		rc = check_pages(h, w, err);
	return rc;
}

int ltx_header_validate(const ltx_header *h, lx_err *err)
{
	const where w = { EINVAL, 0 };

	return check(h, &w, err);
}

/* Every field big-endian at its offset; the reserved bytes zero. */
void ltx_header_encode(const ltx_header *h, uint8_t out[LTX_HEADER_SIZE])
{
	memset(out, 0, LTX_HEADER_SIZE);
	memcpy(out + OFF_MAGIC, LTX_MAGIC, 4);
	lx_put_be16(out + OFF_VERSION, LTX_VERSION);
	lx_put_be32(out + OFF_FLAGS, h->flags);
	lx_put_be32(out + OFF_PAGE_SIZE, h->page_size);
	lx_put_be32(out + OFF_COMMIT, h->commit);
	lx_put_be32(out + OFF_PAGE_COUNT, h->page_count);
	lx_put_be64(out + OFF_MIN_TXID, h->min_txid);
	lx_put_be64(out + OFF_MAX_TXID, h->max_txid);
	lx_put_be64(out + OFF_TIMESTAMP, (uint64_t)h->timestamp_ms);
	lx_put_be64(out + OFF_PRE_CHECKSUM, h->pre_checksum);
	lx_put_be64(out + OFF_NODE_ID, h->node_id);
	lx_put_be64(out + OFF_LEASE_EPOCH, h->lease_epoch);
}

/* Magic, version and the reserved bytes, which ltx_header does not keep. */
static int check_frame(const uint8_t *in, const where *w, lx_err *err)
{
	if (memcmp(in + OFF_MAGIC, LTX_MAGIC, 4) != 0)
		return fail(err, w, OFF_MAGIC,
			    "bad magic %02x %02x %02x %02x (want \"%s\")",
			    in[0], in[1], in[2], in[3], LTX_MAGIC);
	if (lx_get_be16(in + OFF_VERSION) != LTX_VERSION)
		return fail(err, w, OFF_VERSION, "version %u, want %u",
			    lx_get_be16(in + OFF_VERSION), LTX_VERSION);
	if (lx_get_be16(in + OFF_RESERVED) != 0)
		return fail(err, w, OFF_RESERVED, "reserved field 0x%04x is not 0",
			    lx_get_be16(in + OFF_RESERVED));
	for (unsigned i = OFF_TAIL; i < LTX_HEADER_SIZE; i++)
		if (in[i] != 0)
			return fail(err, w, i, "reserved byte 0x%02x is not 0",
				    in[i]);
	return 0;
}

int ltx_header_decode(const uint8_t in[LTX_HEADER_SIZE], ltx_header *h,
		      lx_err *err)
{
	const where w = { EBADMSG, 1 };
	int rc = check_frame(in, &w, err);

	if (rc != 0)
		return rc;
	h->flags = lx_get_be32(in + OFF_FLAGS);
	h->page_size = lx_get_be32(in + OFF_PAGE_SIZE);
	h->commit = lx_get_be32(in + OFF_COMMIT);
	h->page_count = lx_get_be32(in + OFF_PAGE_COUNT);
	h->min_txid = lx_get_be64(in + OFF_MIN_TXID);
	h->max_txid = lx_get_be64(in + OFF_MAX_TXID);
	h->timestamp_ms = (int64_t)lx_get_be64(in + OFF_TIMESTAMP);
	h->pre_checksum = lx_get_be64(in + OFF_PRE_CHECKSUM);
	h->node_id = lx_get_be64(in + OFF_NODE_ID);
	h->lease_epoch = lx_get_be64(in + OFF_LEASE_EPOCH);
	return check(h, &w, err);
}
