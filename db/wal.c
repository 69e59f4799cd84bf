/*
 * wal.c - SQLite WAL header/frame parsing and checksums (see wal.h).
 */
#include "base/bytes.h"
#include "db/wal.h"

#include <errno.h>
#include <string.h>

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | (uint32_t)p[0];
}

wal_cksum wal_checksum(int big_endian, const uint8_t *data, size_t len,
		       wal_cksum in)
{
	uint32_t s1 = in.s1, s2 = in.s2;
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint32_t x0, x1;
		if (big_endian) {
			x0 = lx_get_be32(data + i);
			x1 = lx_get_be32(data + i + 4);
		} else {
			x0 = get_le32(data + i);
			x1 = get_le32(data + i + 4);
		}
		s1 += x0 + s2;
		s2 += x1 + s1;
	}
	return (wal_cksum){ s1, s2 };
}

static int page_size_valid(uint32_t ps)
{
	return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

int wal_header_parse(const uint8_t buf[WAL_HEADER_SIZE], wal_header *h,
		     lx_err *err)
{
	uint32_t version, raw_ps;
	wal_cksum ck;

	h->magic = lx_get_be32(buf);
	if (h->magic != WAL_MAGIC_LE && h->magic != WAL_MAGIC_BE)
		return lx_err_set(err, EBADMSG, "wal: bad magic 0x%08x", h->magic);
	version = lx_get_be32(buf + 4);
	if (version != WAL_FORMAT_VERSION)
		return lx_err_set(err, EBADMSG, "wal: unsupported version %u", version);
	raw_ps = lx_get_be32(buf + 8);
	h->page_size = raw_ps == 1 ? 65536 : raw_ps;
	if (!page_size_valid(h->page_size))
		return lx_err_set(err, EBADMSG, "wal: bad page size %u", raw_ps);
	h->ckpt_seq = lx_get_be32(buf + 12);
	h->salt1 = lx_get_be32(buf + 16);
	h->salt2 = lx_get_be32(buf + 20);
	h->cksum1 = lx_get_be32(buf + 24);
	h->cksum2 = lx_get_be32(buf + 28);
	ck = wal_checksum(h->magic == WAL_MAGIC_BE, buf, 24, (wal_cksum){ 0, 0 });
	if (ck.s1 != h->cksum1 || ck.s2 != h->cksum2)
		return lx_err_set(err, EBADMSG, "wal: header checksum mismatch");
	return 0;
}

void wal_header_encode(wal_header *h, uint8_t buf[WAL_HEADER_SIZE])
{
	wal_cksum ck;
	lx_put_be32(buf, h->magic);
	lx_put_be32(buf + 4, WAL_FORMAT_VERSION);
	lx_put_be32(buf + 8, h->page_size == 65536 ? 1 : h->page_size);
	lx_put_be32(buf + 12, h->ckpt_seq);
	lx_put_be32(buf + 16, h->salt1);
	lx_put_be32(buf + 20, h->salt2);
	ck = wal_checksum(h->magic == WAL_MAGIC_BE, buf, 24, (wal_cksum){ 0, 0 });
	h->cksum1 = ck.s1;
	h->cksum2 = ck.s2;
	lx_put_be32(buf + 24, ck.s1);
	lx_put_be32(buf + 28, ck.s2);
}

void wal_frame_header_parse(const uint8_t buf[WAL_FRAME_HEADER_SIZE],
			    wal_frame_header *f)
{
	f->pgno = lx_get_be32(buf);
	f->commit = lx_get_be32(buf + 4);
	f->salt1 = lx_get_be32(buf + 8);
	f->salt2 = lx_get_be32(buf + 12);
	f->cksum1 = lx_get_be32(buf + 16);
	f->cksum2 = lx_get_be32(buf + 20);
}

int wal_frame_valid(const wal_header *h, const uint8_t *frame,
		    wal_cksum *chain)
{
	wal_frame_header f;
	wal_cksum ck;
	int be = h->magic == WAL_MAGIC_BE;

	wal_frame_header_parse(frame, &f);
	if (f.pgno == 0 || f.salt1 != h->salt1 || f.salt2 != h->salt2)
		return 0;
	ck = wal_checksum(be, frame, 8, *chain);
	ck = wal_checksum(be, frame + WAL_FRAME_HEADER_SIZE, h->page_size, ck);
	if (ck.s1 != f.cksum1 || ck.s2 != f.cksum2)
		return 0;
	*chain = ck;
	return 1;
}

void wal_frame_encode(const wal_header *h, uint32_t pgno, uint32_t commit,
		      uint8_t *frame, wal_cksum *chain)
{
	int be = h->magic == WAL_MAGIC_BE;
	wal_cksum ck;
	lx_put_be32(frame, pgno);
	lx_put_be32(frame + 4, commit);
	lx_put_be32(frame + 8, h->salt1);
	lx_put_be32(frame + 12, h->salt2);
	ck = wal_checksum(be, frame, 8, *chain);
	ck = wal_checksum(be, frame + WAL_FRAME_HEADER_SIZE, h->page_size, ck);
	lx_put_be32(frame + 16, ck.s1);
	lx_put_be32(frame + 20, ck.s2);
	*chain = ck;
}
