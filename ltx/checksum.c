/*
 * checksum.c - page numbers, sizes and page checksums of the LTX format.
 *
 * Everything here is arithmetic on values: which page sizes are legal,
 * which page holds SQLite's PENDING_BYTE (the "lock page", never stored),
 * how many frames a snapshot holds, how long an encoded file is, and the
 * checksum of one page.  The database checksum is the XOR of the page
 * checksums (see ltx_checksum_update() in ltx.h).
 */
#include "ltx/ltx.h"

#include <xxhash.h>

int ltx_page_size_valid(uint32_t page_size)
{
	return page_size >= LTX_MIN_PAGE_SIZE &&
	       page_size <= LTX_MAX_PAGE_SIZE &&
	       (page_size & (page_size - 1)) == 0;
}

/*
 * The page that contains byte offset LTX_PENDING_BYTE of the database file.
 * Returns 0 for an invalid page size (0 is never a page number).
 */
uint32_t ltx_lock_pgno(uint32_t page_size)
{
	if (!ltx_page_size_valid(page_size))
		return 0;
	return (uint32_t)(LTX_PENDING_BYTE / page_size) + 1;
}

/*
 * Pages 1..commit except the lock page.  Returns 0 for an invalid page
 * size.
 */
uint32_t ltx_snapshot_page_count(uint32_t page_size, uint32_t commit)
{
	uint32_t lock = ltx_lock_pgno(page_size);

	if (lock == 0)
		return 0;
	return commit >= lock ? commit - 1 : commit;
}

/*
 * Header, page_count frames and trailer.  The product is computed in 64
 * bits: at most (2^32 - 1) * (16 + 65536) bytes, well below 2^49.
 */
uint64_t ltx_file_size(const ltx_header *h)
{
	uint64_t frame;

	if (h == NULL || ltx_header_validate(h, NULL) != 0)
		return 0;
	frame = (uint64_t)LTX_PAGE_HEADER_SIZE + h->page_size;
	return (uint64_t)LTX_HEADER_SIZE + (uint64_t)h->page_count * frame +
	       LTX_TRAILER_SIZE;
}

/*
 * XXH3-64 of the page seeded with its page number, so that identical
 * contents at different page numbers do not cancel out in the XOR of the
 * database checksum.  Bit 63 is forced on, so the result is never 0.
 */
uint64_t ltx_page_checksum(uint32_t pgno, const void *data, uint32_t page_size)
{
	return XXH3_64bits_withSeed(data, page_size, pgno) | LTX_CHECKSUM_FLAG;
}

uint64_t ltx_checksum_pages(uint64_t db, uint32_t first_pgno, const void *pages,
			    uint32_t count, uint32_t page_size, uint64_t *page_ck)
{
	uint32_t lock = ltx_lock_pgno(page_size);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t pgno = first_pgno + i;
		uint64_t ck = pgno == lock ? 0 : ltx_page_checksum(pgno, (const uint8_t *)pages +
								   (size_t)i * page_size, page_size);
		if (page_ck != NULL)
			page_ck[i] = ck;
		if (ck != 0)
			db = ltx_checksum_update(db, 0, ck);
	}
	return db;
}
