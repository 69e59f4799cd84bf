/*
 * wal_index.c - the wal-index layout of SQLite's wal.c (see wal_index.h).
 */
#include "db/wal_index.h"

#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the wal-index is written in native little-endian order");

#define HASH_OFFSET (WI_FRAMES_REGION * 4u)   /* the hash table within a region */
#define HASH_MULT 383u

uint32_t wi_region_of(uint32_t frame)
{
	return (frame + WI_FRAMES_REGION - WI_FRAMES_REGION0 - 1) / WI_FRAMES_REGION;
}

uint32_t wi_regions_for(uint32_t mx_frame)
{
	return mx_frame ? wi_region_of(mx_frame) + 1 : 1;
}

/* The arrays of region r: page numbers (1-based by index) and hash slots,
 * and the frame number before the region's first. */
typedef struct wi_loc {
	uint32_t *pgno;
	uint16_t *hash;
	uint32_t zero;
} wi_loc;

static wi_loc loc_of(uint8_t *const *regions, uint32_t r)
{
	wi_loc l;
	l.hash = (uint16_t *)(void *)(regions[r] + HASH_OFFSET);
	if (r == 0) {
		l.pgno = (uint32_t *)(void *)(regions[0] + WI_HDR_SIZE);
		l.zero = 0;
	} else {
		l.pgno = (uint32_t *)(void *)regions[r];
		l.zero = WI_FRAMES_REGION0 + (r - 1) * WI_FRAMES_REGION;
	}
	return l;
}

static uint32_t hash_of(uint32_t pgno)
{
	return (pgno * HASH_MULT) & (WI_NSLOT - 1);
}

static uint32_t next_slot(uint32_t k)
{
	return (k + 1) & (WI_NSLOT - 1);
}

void wi_header_encode(const wi_header *h, uint8_t out[WI_HEADER_SIZE])
{
	uint32_t w[WI_HEADER_SIZE / 4];
	wal_cksum ck;
	memset(w, 0, sizeof(w));
	w[0] = WAL_FORMAT_VERSION;                       /* iVersion */
	w[2] = h->change;                                /* iChange */
	/* isInit = 1, bigEndCksum = 0, szPage (65536 is written as 1) */
	w[3] = 1u | (h->page_size == 65536 ? 1u : h->page_size) << 16;
	w[4] = h->mx_frame;
	w[5] = h->n_page;
	w[6] = h->frame_ck.s1;
	w[7] = h->frame_ck.s2;
	memcpy(out, w, 32);
	/* aSalt[] holds the WAL header's bytes as they are (big-endian). */
	out[32] = (uint8_t)(h->salt1 >> 24); out[33] = (uint8_t)(h->salt1 >> 16);
	out[34] = (uint8_t)(h->salt1 >> 8);  out[35] = (uint8_t)h->salt1;
	out[36] = (uint8_t)(h->salt2 >> 24); out[37] = (uint8_t)(h->salt2 >> 16);
	out[38] = (uint8_t)(h->salt2 >> 8);  out[39] = (uint8_t)h->salt2;
	ck = wal_checksum(0, out, 40, (wal_cksum){ 0, 0 });
	memcpy(out + 40, &ck.s1, 4);
	memcpy(out + 44, &ck.s2, 4);
}

static int header_decode(const uint8_t in[WI_HEADER_SIZE], wi_header *h)
{
	uint32_t w[WI_HEADER_SIZE / 4], ps;
	wal_cksum ck;
	memcpy(w, in, sizeof(w));
	if (w[0] != WAL_FORMAT_VERSION || (w[3] & 0xff) != 1 || (w[3] >> 8 & 0xff) != 0)
		return -1;
	ck = wal_checksum(0, in, 40, (wal_cksum){ 0, 0 });
	if (ck.s1 != w[10] || ck.s2 != w[11])
		return -1;
	ps = w[3] >> 16;
	h->change = w[2];
	h->page_size = ps == 1 ? 65536 : ps;
	h->mx_frame = w[4];
	h->n_page = w[5];
	h->frame_ck = (wal_cksum){ w[6], w[7] };
	h->salt1 = (uint32_t)in[32] << 24 | (uint32_t)in[33] << 16 | (uint32_t)in[34] << 8 | in[35];
	h->salt2 = (uint32_t)in[36] << 24 | (uint32_t)in[37] << 16 | (uint32_t)in[38] << 8 | in[39];
	return 0;
}

int wi_header_load(const uint8_t *region0, wi_header *h)
{
	uint8_t a[WI_HEADER_SIZE], b[WI_HEADER_SIZE];
	memcpy(a, region0, sizeof(a));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(b, region0 + WI_HEADER_SIZE, sizeof(b));
	if (memcmp(a, b, sizeof(a)) != 0)
		return -1;
	return header_decode(a, h);
}

void wi_header_store(uint8_t *region0, const wi_header *h)
{
	uint8_t raw[WI_HEADER_SIZE];
	wi_header_encode(h, raw);
	memcpy(region0 + WI_HEADER_SIZE, raw, sizeof(raw));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(region0, raw, sizeof(raw));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static uint32_t *info_word(const uint8_t *region0, unsigned i)
{
	return (uint32_t *)(void *)(uintptr_t)(region0 + WI_INFO_OFFSET + 4 * i);
}

uint32_t wi_backfill(const uint8_t *region0)
{
	return __atomic_load_n(info_word(region0, 0), __ATOMIC_ACQUIRE);
}

void wi_set_backfill(uint8_t *region0, uint32_t n)
{
	__atomic_store_n(info_word(region0, 0), n, __ATOMIC_RELEASE);
}

uint32_t wi_read_mark(const uint8_t *region0, int i)
{
	return __atomic_load_n(info_word(region0, 1u + (unsigned)i), __ATOMIC_ACQUIRE);
}

void wi_set_read_mark(uint8_t *region0, int i, uint32_t v)
{
	__atomic_store_n(info_word(region0, 1u + (unsigned)i), v, __ATOMIC_RELEASE);
}

void wi_reset_info(uint8_t *region0)
{
	wi_set_backfill(region0, 0);
	__atomic_store_n(info_word(region0, 8), 0u, __ATOMIC_RELEASE);   /* nBackfillAttempted */
	wi_set_read_mark(region0, 1, 0);
	for (int i = 2; i < WI_NREADER; i++)
		wi_set_read_mark(region0, i, WI_READMARK_UNUSED);
}

void wi_cleanup(uint8_t *const *regions, uint32_t mx_frame)
{
	uint32_t r = wi_region_of(mx_frame + 1), limit;
	wi_loc l = loc_of(regions, r);
	uint32_t n = r == 0 ? WI_FRAMES_REGION0 : WI_FRAMES_REGION;
	limit = mx_frame - l.zero;   /* entries 1..limit stay */
	for (uint32_t k = 0; k < WI_NSLOT; k++)
		if (l.hash[k] > limit)
			__atomic_store_n(&l.hash[k], (uint16_t)0, __ATOMIC_RELAXED);
	if (limit < n)
		memset(&l.pgno[limit], 0, (n - limit) * sizeof(uint32_t));
}

int wi_append(uint8_t *const *regions, uint32_t frame, uint32_t pgno)
{
	uint32_t r = wi_region_of(frame);
	wi_loc l = loc_of(regions, r);
	uint32_t idx = frame - l.zero, k;
	int collide = (int)idx;
	if (idx == 1) {
		/* The region's first frame: clear both arrays (they may hold the
		 * entries of an older WAL generation). */
		memset(l.pgno, 0, (size_t)((uint8_t *)(l.hash + WI_NSLOT) - (uint8_t *)l.pgno));
	}
	if (l.pgno[idx - 1] != 0)
		wi_cleanup(regions, frame - 1);
	for (k = hash_of(pgno); __atomic_load_n(&l.hash[k], __ATOMIC_RELAXED) != 0; k = next_slot(k))
		if (collide-- == 0)
			return -1;
	l.pgno[idx - 1] = pgno;
	__atomic_store_n(&l.hash[k], (uint16_t)idx, __ATOMIC_RELEASE);
	return 0;
}

uint32_t wi_find(uint8_t *const *regions, uint32_t pgno, uint32_t min_frame,
		 uint32_t max_frame)
{
	if (max_frame == 0 || min_frame > max_frame)
		return 0;
	for (int64_t r = wi_region_of(max_frame); r >= (int64_t)wi_region_of(min_frame); r--) {
		wi_loc l = loc_of(regions, (uint32_t)r);
		uint32_t found = 0, k = hash_of(pgno), h;
		int collide = WI_NSLOT;
		while ((h = __atomic_load_n(&l.hash[k], __ATOMIC_ACQUIRE)) != 0) {
			uint32_t f = h + l.zero;
			if (f <= max_frame && f >= min_frame && l.pgno[h - 1] == pgno)
				found = f;
			if (collide-- == 0)
				return 0;
			k = next_slot(k);
		}
		if (found)
			return found;
	}
	return 0;
}
