/*
 * bytes.h - big-endian integer encoding and whole-buffer file I/O, shared
 * by every on-disk format ltxfs reads or writes (WAL, log records).
 * Header-only for the byte helpers; no state.
 */
#ifndef LTXFS_BASE_BYTES_H
#define LTXFS_BASE_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t lx_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void lx_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t lx_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t lx_get_be64(const uint8_t *p)
{
	return (uint64_t)lx_get_be32(p) << 32 | lx_get_be32(p + 4);
}

static inline void lx_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void lx_put_be64(uint8_t *p, uint64_t v)
{
	lx_put_be32(p, (uint32_t)(v >> 32));
	lx_put_be32(p + 4, (uint32_t)v);
}

/* pwrite(2) all `len` bytes at `off`, retrying short writes and EINTR.
 * Returns 0 or -errno. */
int lx_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* s[0..len) is 1 to 16 hex digits (either case; no sign, prefix or
 * space), as "%016x" writes TXIDs, checksums and node IDs: 0 and *out, or
 * -1. */
int lx_parse_hex64(const char *s, size_t len, uint64_t *out);

#endif
