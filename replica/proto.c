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
		size += 2 + strlen(v[i].name) + 16;
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
		p += 16;
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

static int decode_entries(const uint8_t *p, const uint8_t *end, proto_pos *v,
			  size_t n, lx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		size_t len;
		if (end - p < 2)
			return lx_err_set(err, EBADMSG, "position %zu: truncated", i);
		len = lx_get_be16(p);
		if ((size_t)(end - p) < 2 + len + 16)
			return lx_err_set(err, EBADMSG, "position %zu: truncated", i);
		if (!name_ok(p + 2, len))
			return lx_err_set(err, EBADMSG, "position %zu: invalid database name", i);
		memcpy(v[i].name, p + 2, len);
		v[i].name[len] = '\0';
		p += 2 + len;
		v[i].txid = lx_get_be64(p);
		v[i].checksum = lx_get_be64(p + 8);
		p += 16;
		if ((v[i].txid == 0) != (v[i].checksum == 0))
			return lx_err_set(err, EBADMSG, "position %zu (%s): TXID and checksum "
					  "must both be zero or both be set", i, v[i].name);
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
		return lx_err_set(err, EBADMSG, "position body: version %u, want %u",
				  lx_get_be32(buf + 4), PROTO_VERSION);
	if (lx_get_be64(buf + len - 8) != XXH3_64bits(buf, len - 8))
		return lx_err_set(err, EBADMSG, "position body: checksum mismatch");
	count = lx_get_be32(buf + 8);
	if (count > PROTO_POS_MAX_DBS)
		return lx_err_set(err, EBADMSG, "position body: %u databases", count);
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
	if (f->type < FRAME_LTX || f->type > FRAME_DELETED)
		return lx_err_set(err, EBADMSG, "frame type %u unknown", f->type);
	if (f->name_len > PROTO_NAME_MAX)
		return lx_err_set(err, EBADMSG, "frame name of %u bytes", f->name_len);
	if (f->payload_len > PROTO_PAYLOAD_MAX)
		return lx_err_set(err, EBADMSG, "frame payload of %llu bytes",
				  (unsigned long long)f->payload_len);
	if ((f->type == FRAME_LTX) != (f->payload_len != 0))
		return lx_err_set(err, EBADMSG, "frame type %u with %llu payload bytes", f->type,
				  (unsigned long long)f->payload_len);
	if ((f->type == FRAME_LTX || f->type == FRAME_DELETED) != (f->name_len != 0))
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
