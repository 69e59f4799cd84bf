/*
 * proto.c - encoding and validation of the replication stream's request
 * body and frame headers (see proto.h).
 */
#include "replica/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/bytes.h"

static const uint8_t pos_magic[4] = { 'L', 'T', 'X', 'P' };

size_t proto_pos_size(const proto_pos *v, size_t n)
{
	size_t size = 4 + 4 + 4 + 8;
	for (size_t i = 0; i < n; i++)
		size += 2 + strlen(v[i].name) + 16 + 2 + (size_t)v[i].n_hist * 16;
	return size;
}

void proto_pos_encode(const proto_pos *v, size_t n, uint8_t *out)
{
	uint8_t *p = out;
	memcpy(p, pos_magic, 4);
	lx_put_be32(p + 4, PROTO_VERSION);
	lx_put_be32(p + 8, (uint32_t)n);
	p += 12;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i].name);
		lx_put_be16(p, (uint16_t)len);
		memcpy(p + 2, v[i].name, len);
		p += 2 + len;
		lx_put_be64(p, v[i].txid);
		lx_put_be64(p + 8, v[i].checksum);
		lx_put_be16(p + 16, v[i].n_hist);
		p += 18;
		for (uint16_t k = 0; k < v[i].n_hist; k++, p += 16) {
			lx_put_be64(p, v[i].hist[k].txid);
			lx_put_be64(p + 8, v[i].hist[k].checksum);
		}
	}
	lx_put_be64(p, XXH3_64bits(out, (size_t)(p - out)));
}

/* A database name as the stream carries it: no NUL, no '/', not empty. */
static int name_ok(const uint8_t *s, size_t len)
{
	if (len == 0 || len > PROTO_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '/')
			return 0;
	return 1;
}

/* The earlier positions of v (n_hist of them at p, length checked). */
static int decode_hist(const uint8_t *p, proto_pos *v, size_t i, lx_err *err)
{
	uint64_t above = v->txid;
	for (uint16_t k = 0; k < v->n_hist; k++, p += 16) {
		v->hist[k].txid = lx_get_be64(p);
		v->hist[k].checksum = lx_get_be64(p + 8);
		if (v->hist[k].txid >= above || v->hist[k].checksum == 0)
			return lx_err_set(err, EBADMSG, "position %zu (%s): earlier position %u "
					  "is out of order or has no checksum", i, v->name, k);
		above = v->hist[k].txid;
	}
	return 0;
}

static int decode_entries(const uint8_t *p, const uint8_t *end, proto_pos *v,
			  size_t n, lx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		size_t len;
		if (end - p < 2)
			return lx_err_set(err, EBADMSG, "position %zu: truncated", i);
		len = lx_get_be16(p);
		if ((size_t)(end - p) < 2 + len + 18)
			return lx_err_set(err, EBADMSG, "position %zu: truncated", i);
		if (!name_ok(p + 2, len))
			return lx_err_set(err, EBADMSG, "position %zu: invalid database name", i);
		memcpy(v[i].name, p + 2, len);
		v[i].name[len] = '\0';
		p += 2 + len;
		v[i].txid = lx_get_be64(p);
		v[i].checksum = lx_get_be64(p + 8);
		v[i].n_hist = lx_get_be16(p + 16);
		p += 18;
		if ((v[i].txid == 0) != (v[i].checksum == 0))
			return lx_err_set(err, EBADMSG, "position %zu (%s): TXID and checksum "
					  "must both be zero or both be set", i, v[i].name);
		if (v[i].n_hist > PROTO_HIST_MAX)
			return lx_err_set(err, EBADMSG, "position %zu (%s): %u earlier positions, "
					  "at most %d", i, v[i].name, v[i].n_hist, PROTO_HIST_MAX);
		if ((size_t)(end - p) < (size_t)v[i].n_hist * 16)
			return lx_err_set(err, EBADMSG, "position %zu: truncated", i);
		if (decode_hist(p, &v[i], i, err) < 0)
			return -EBADMSG;
		p += (size_t)v[i].n_hist * 16;
	}
	if (p != end)
		return lx_err_set(err, EBADMSG, "%zu bytes after the positions", (size_t)(end - p));
	return 0;
}

int proto_pos_decode(const uint8_t *buf, size_t len, proto_pos **out, size_t *n,
		     lx_err *err)
{
	uint32_t count;
	int rc;
	*out = NULL;
	*n = 0;
	if (len < 20 || len > PROTO_BODY_MAX)
		return lx_err_set(err, EBADMSG, "position body of %zu bytes", len);
	if (memcmp(buf, pos_magic, 4) != 0)
		return lx_err_set(err, EBADMSG, "position body: bad magic");
	if (lx_get_be32(buf + 4) != PROTO_VERSION)
		return lx_err_set(err, EPROTONOSUPPORT, "the replica speaks replication protocol "
				  "version %u, this node version %u: run one ltxfs version on every "
				  "node (docs/deployment.md, upgrades)", lx_get_be32(buf + 4),
				  PROTO_VERSION);
	if (lx_get_be64(buf + len - 8) != XXH3_64bits(buf, len - 8))
		return lx_err_set(err, EBADMSG, "position body: checksum mismatch");
	count = lx_get_be32(buf + 8);
	if (count > PROTO_POS_MAX_DBS || count > (len - 20) / PROTO_POS_MIN_SIZE)
		return lx_err_set(err, EBADMSG, "position body: %u databases in %zu bytes",
				  count, len);
	*out = calloc(count ? count : 1, sizeof(**out));
	if (*out == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = decode_entries(buf + 12, buf + len - 8, *out, count, err);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		return rc;
	}
	*n = count;
	return 0;
}

size_t proto_points_size(size_t n)
{
	return n * 16 + 8;
}

void proto_points_encode(const proto_point *v, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		lx_put_be64(out + i * 16, v[i].txid);
		lx_put_be64(out + i * 16 + 8, v[i].checksum);
	}
	lx_put_be64(out + n * 16, XXH3_64bits(out, n * 16));
}

int proto_points_decode(const uint8_t *buf, size_t len, proto_point **out, size_t *n,
			lx_err *err)
{
	size_t count = len >= 8 ? (len - 8) / 16 : 0;
	*out = NULL;
	*n = 0;
	if (len < 8 || (len - 8) % 16 != 0 || count > PROTO_POINTS_MAX)
		return lx_err_set(err, EBADMSG, "position list of %zu bytes", len);
	if (lx_get_be64(buf + len - 8) != XXH3_64bits(buf, len - 8))
		return lx_err_set(err, EBADMSG, "position list: checksum mismatch");
	*out = calloc(count ? count : 1, sizeof(**out));
	if (*out == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		(*out)[i].txid = lx_get_be64(buf + i * 16);
		(*out)[i].checksum = lx_get_be64(buf + i * 16 + 8);
		if ((*out)[i].txid == 0 || (i > 0 && (*out)[i].txid <= (*out)[i - 1].txid)) {
			free(*out);
			*out = NULL;
			return lx_err_set(err, EBADMSG, "position list: entry %zu out of order", i);
		}
	}
	*n = count;
	return 0;
}

static uint64_t frame_check(const uint8_t in[PROTO_FRAME_HEADER_SIZE], const char *name,
			    size_t name_len)
{
	uint8_t buf[24 + PROTO_NAME_MAX];
	if (name_len > PROTO_NAME_MAX)
		name_len = PROTO_NAME_MAX;   /* refused by proto_frame_decode anyway */
	memcpy(buf, in, 24);
	memcpy(buf + 24, name, name_len);
	return XXH3_64bits(buf, 24 + name_len);
}

void proto_frame_encode(const proto_frame *f, const char *name,
			uint8_t out[PROTO_FRAME_HEADER_SIZE])
{
	lx_put_be32(out, f->type);
	lx_put_be32(out + 4, f->name_len);
	lx_put_be64(out + 8, f->payload_len);
	lx_put_be64(out + 16, f->arg);
	lx_put_be64(out + 24, frame_check(out, name ? name : "", f->name_len));
}

int proto_frame_decode(const uint8_t in[PROTO_FRAME_HEADER_SIZE], proto_frame *f,
		       lx_err *err)
{
	f->type = lx_get_be32(in);
	f->name_len = lx_get_be32(in + 4);
	f->payload_len = lx_get_be64(in + 8);
	f->arg = lx_get_be64(in + 16);
	if (f->type < FRAME_LTX || f->type > FRAME_DIVERGED)
		return lx_err_set(err, EBADMSG, "frame type %u unknown", f->type);
	if (f->name_len > PROTO_NAME_MAX)
		return lx_err_set(err, EBADMSG, "frame name of %u bytes", f->name_len);
	if (f->payload_len > PROTO_PAYLOAD_MAX)
		return lx_err_set(err, EBADMSG, "frame payload of %llu bytes",
				  (unsigned long long)f->payload_len);
	if (f->type == FRAME_DIVERGED ?
	    f->payload_len > proto_points_size(PROTO_POINTS_MAX) :
	    (f->type == FRAME_LTX) != (f->payload_len != 0))
		return lx_err_set(err, EBADMSG, "frame type %u with %llu payload bytes", f->type,
				  (unsigned long long)f->payload_len);
	if ((f->type == FRAME_LTX || f->type == FRAME_DELETED || f->type == FRAME_DIVERGED) !=
	    (f->name_len != 0))
		return lx_err_set(err, EBADMSG, "frame type %u with a name of %u bytes", f->type,
				  f->name_len);
	return 0;
}

int proto_frame_check(const uint8_t in[PROTO_FRAME_HEADER_SIZE], const char *name,
		      lx_err *err)
{
	uint32_t name_len = lx_get_be32(in + 4);
	if (lx_get_be64(in + 24) != frame_check(in, name, name_len))
		return lx_err_set(err, EBADMSG, "frame header checksum mismatch");
	if (name_len && !name_ok((const uint8_t *)name, name_len))
		return lx_err_set(err, EBADMSG, "frame names an invalid database");
	return 0;
}
