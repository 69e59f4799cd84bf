/*
 * export.c - a database's file image at one TXID (see export.h).
 */
#include "db/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/snapshot.h"
#include "ltx/ltx.h"

#define EXPORT_BATCH 64            /* pages read per db_snapshot_read */

struct db_export {
	db_snapshot *snap;
	uint32_t page_size;
	uint32_t n_pages;
	uint32_t lock_pgno;
	uint64_t pos;              /* bytes handed out */
	uint8_t *pages;            /* the current batch */
	uint32_t pgnos[EXPORT_BATCH];
	uint32_t n_batch, next_in_batch;
};

int db_export_begin(database *db, db_export **out, uint64_t *txid, uint64_t *checksum,
		    uint64_t *size, lx_err *err)
{
	db_export *e = calloc(1, sizeof(*e));
	ltx_header h;
	int rc;
	*out = NULL;
	if (e == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = db_snapshot_begin(db, &e->snap, &h, checksum, err);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->page_size = h.page_size;
	e->n_pages = h.commit;
	e->lock_pgno = ltx_lock_pgno(h.page_size);
	e->pages = malloc((size_t)EXPORT_BATCH * h.page_size);
	if (e->pages == NULL) {
		db_export_end(e);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	*txid = h.max_txid;
	*size = (uint64_t)e->n_pages * e->page_size;
	*out = e;
	return 0;
}

/* The page `pgno` from the batch, reading the next batch when needed;
 * NULL with *rc set at an error. */
static const uint8_t *page_of(db_export *e, uint32_t pgno, int *rc, lx_err *err)
{
	if (e->next_in_batch == e->n_batch) {
		int n = db_snapshot_read(e->snap, e->pages, e->pgnos, EXPORT_BATCH, err);
		if (n <= 0) {
			*rc = n < 0 ? n : lx_err_set(err, EIO, "export: the snapshot ended "
						     "before page %u", pgno);
			return NULL;
		}
		e->n_batch = (uint32_t)n;
		e->next_in_batch = 0;
	}
	if (e->pgnos[e->next_in_batch] != pgno) {
		*rc = lx_err_set(err, EIO, "export: expected page %u, the snapshot gave %u", pgno,
				 e->pgnos[e->next_in_batch]);
		return NULL;
	}
	return e->pages + (size_t)e->next_in_batch * e->page_size;
}

ssize_t db_export_read(db_export *e, uint8_t *buf, size_t max, lx_err *err)
{
	uint64_t size = (uint64_t)e->n_pages * e->page_size;
	size_t done = 0;
	while (done < max && e->pos < size) {
		uint32_t pgno = (uint32_t)(e->pos / e->page_size) + 1;
		uint32_t in = (uint32_t)(e->pos % e->page_size);
		size_t n = e->page_size - in;
		int rc = 0;
		if (n > max - done)
			n = max - done;
		if (pgno == e->lock_pgno) {
			memset(buf + done, 0, n);
		} else {
			const uint8_t *p = page_of(e, pgno, &rc, err);
			if (p == NULL)
				return rc;
			memcpy(buf + done, p + in, n);
			if (in + n == e->page_size)
				e->next_in_batch++;
		}
		done += n;
		e->pos += n;
	}
	return (ssize_t)done;
}

void db_export_end(db_export *e)
{
	if (e == NULL)
		return;
	if (e->snap != NULL)
		db_snapshot_end(e->snap);
	free(e->pages);
	free(e);
}
