/*
 * history.c - what the primary sends a replica at a given position
 * (db_next_send in database.h).  The rules, in order:
 *   replica's TXID above ours                  -> snapshot (it diverged)
 *   same TXID: same checksum -> nothing, else  -> snapshot
 *   below: the next logged transaction, if the log still holds it and its
 *          pre-checksum equals the replica's    -> that transaction
 *          otherwise                            -> snapshot
 *   TXID 0 (the replica lacks the database)     -> snapshot, unless the whole
 *          history is in the log and no larger than the database
 * A database without pages (deleted on the primary) is never snapshotted:
 * a replica that has it and is not on the history is told to remove it.
 */
#include "db/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static void want_snapshot(database *db, db_send *out, const char *why, int diverged)
{
	if (diverged)
		db->checksum_mismatches++;   /* db->mu held */
	out->kind = db->n_pages ? SEND_SNAPSHOT : SEND_DELETED;
	out->why = why;
	out->diverged = diverged;
	out->txid = db->txid;
	out->checksum = db->checksum;
}

/* A replica without the database: replaying the whole history is cheaper
 * than a snapshot when the log holds it all and it is no larger than the
 * database (young databases, and tests that watch every transaction). */
static int whole_history_is_small(const database *db)
{
	uint64_t base_txid, base_ck;
	txlog_base(db->log, &base_txid, &base_ck);
	return base_txid == 0 && db->log->n > 0 && db->log->ents[0].hdr.min_txid == 1 &&
	       db->log->ltx_bytes <= (uint64_t)db->n_pages * db->page_size;
}

static int next_locked(database *db, uint64_t txid, uint64_t checksum, int known,
		       int whole_history, db_send *out, lx_err *err)
{
	db_assert_locked(db);
	const txlog_entry *e;
	int rc;
	if (db->retired) {
		/* deleted, and nothing of it is left: a replica that has it
		 * removes it (its delete transaction may not have been sent) */
		if (known)
			out->kind = SEND_DELETED;
		return 0;
	}
	if (db->failed || db->log == NULL || db->untracked)
		return 0;                              /* nothing trustworthy to send */
	if (db->txid == 0 || (!known && db->n_pages == 0))
		return 0;
	if (txid > db->txid) {
		want_snapshot(db, out, "replica is ahead of the primary", 1);
		return 0;
	}
	if (txid == db->txid) {
		if (checksum != db->checksum)
			want_snapshot(db, out, "same TXID, different checksum", 1);
		return 0;
	}
	if (txid == 0 && !whole_history && !whole_history_is_small(db)) {
		want_snapshot(db, out, "new database", 0);
		return 0;
	}
	e = txlog_find(db->log, txid + 1);
	if (e == NULL || e->hdr.min_txid != txid + 1) {
		want_snapshot(db, out, "history no longer retained", 0);
		return 0;
	}
	if (e->hdr.pre_checksum != checksum) {
		want_snapshot(db, out, "position is not on the primary's history", 1);
		return 0;
	}
	rc = db_use_files_locked(db, err);
	if (rc < 0)
		return rc;
	out->fd = fcntl(db->log->segs[e->seg].fd, F_DUPFD_CLOEXEC, 0);
	if (out->fd < 0)
		return lx_err_sys(err, errno, "db %s: open log segment", db->name);
	out->kind = SEND_LTX;
	out->verified = e->verified;
	out->offset = e->offset;
	out->length = e->length;
	out->txid = e->hdr.max_txid;
	out->checksum = e->post_checksum;
	return 0;
}

int db_next_send(database *db, uint64_t txid, uint64_t checksum, int known,
		 db_send *out, lx_err *err)
{
	int rc;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	pthread_mutex_lock(&db->mu);
	rc = next_locked(db, txid, checksum, known, 0, out, err);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int db_next_record(database *db, uint64_t txid, uint64_t checksum, db_send *out,
		   lx_err *err)
{
	int rc;
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	pthread_mutex_lock(&db->mu);
	rc = next_locked(db, txid, checksum, 1, 1, out, err);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void db_mark_verified(database *db, uint64_t txid)
{
	const txlog_entry *e;
	pthread_mutex_lock(&db->mu);
	e = db->log ? txlog_find(db->log, txid) : NULL;
	if (e != NULL)
		db->log->ents[e - db->log->ents].verified = 1;
	pthread_mutex_unlock(&db->mu);
}

/* ---- where two histories part ------------------------------------------------ */

/* Newest records sent one by one; older ones at doubling TXID distances. */
#define POINTS_DENSE 16

size_t db_history_points(database *db, db_point *out, size_t max)
{
	size_t n = 0;
	uint64_t gap = 1, last;
	pthread_mutex_lock(&db->mu);
	last = db->txid;
	for (size_t i = db->log && !db->failed ? db->log->n : 0; i > 0 && n < max; i--) {
		const txlog_entry *e = &db->log->ents[i - 1];
		uint64_t t = e->hdr.min_txid - 1;
		if (t == 0 || e->hdr.pre_checksum == 0)
			break;                     /* a snapshot: nothing earlier */
		if (t >= last || (n >= POINTS_DENSE && last - t < gap))
			continue;
		out[n].txid = t;
		out[n].checksum = e->hdr.pre_checksum;
		last = t;
		if (++n >= POINTS_DENSE)
			gap *= 2;
	}
	pthread_mutex_unlock(&db->mu);
	return n;
}

int db_on_history_locked(const database *db, uint64_t txid, uint64_t checksum)
{
	db_assert_locked(db);
	const txlog_entry *e;
	uint64_t base_txid, base_ck;
	if (txid == db->txid)
		return checksum == db->checksum;
	if (db->log == NULL || txid > db->txid)
		return 0;
	txlog_base(db->log, &base_txid, &base_ck);
	if (txid == base_txid)
		return checksum == base_ck;
	e = txlog_find(db->log, txid);
	if (e != NULL && e->hdr.max_txid == txid)
		return checksum == e->post_checksum;
	e = txlog_find(db->log, txid + 1);
	return e != NULL && e->hdr.min_txid == txid + 1 && checksum == e->hdr.pre_checksum;
}

int db_checksum_at(database *db, uint64_t txid, uint64_t *checksum)
{
	const txlog_entry *e;
	uint64_t base_txid, base_ck;
	int found = 0;
	pthread_mutex_lock(&db->mu);
	if (txid == db->txid) {
		*checksum = db->checksum;
		found = 1;
	} else if (db->log != NULL && txid < db->txid) {
		txlog_base(db->log, &base_txid, &base_ck);
		if (txid == base_txid) {        /* 0/0: the log holds TXID 1 on */
			*checksum = base_ck;
			found = 1;
		} else if ((e = txlog_find(db->log, txid)) != NULL && e->hdr.max_txid == txid) {
			*checksum = e->post_checksum;
			found = 1;
		} else if ((e = txlog_find(db->log, txid + 1)) != NULL &&
			   e->hdr.min_txid == txid + 1) {
			*checksum = e->hdr.pre_checksum;
			found = 1;
		}
	}
	pthread_mutex_unlock(&db->mu);
	return found;
}

size_t db_history_after(database *db, uint64_t after, uint64_t upto, db_point *out,
			size_t max)
{
	size_t n = 0, first = 0;
	pthread_mutex_lock(&db->mu);
	if (upto > db->txid)
		upto = db->txid;
	if (db->log != NULL) {     /* records ascend by TXID: skip to the first after `after` */
		size_t hi = db->log->n;
		while (first < hi) {
			size_t mid = first + (hi - first) / 2;
			if (db->log->ents[mid].hdr.max_txid <= after)
				first = mid + 1;
			else
				hi = mid;
		}
	}
	for (size_t i = first; db->log != NULL && i < db->log->n && n < max; i++) {
		const txlog_entry *e = &db->log->ents[i];
		if (e->hdr.max_txid > after && e->hdr.max_txid <= upto &&
		    (n == 0 || e->hdr.max_txid > out[n - 1].txid)) {
			out[n].txid = e->hdr.max_txid;
			out[n++].checksum = e->post_checksum;
		}
	}
	if (n < max && db->txid > after && db->txid <= upto && (n == 0 || out[n - 1].txid < db->txid)) {
		out[n].txid = db->txid;
		out[n++].checksum = db->checksum;
	}
	pthread_mutex_unlock(&db->mu);
	return n;
}

uint64_t db_common_txid(database *db, const db_point *v, size_t n)
{
	uint64_t found = 0;
	pthread_mutex_lock(&db->mu);
	for (size_t i = 0; i < n && found == 0; i++)
		if (v[i].txid > 0 && db_on_history_locked(db, v[i].txid, v[i].checksum))
			found = v[i].txid;
	pthread_mutex_unlock(&db->mu);
	return found;
}
