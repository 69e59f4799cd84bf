/*
 * maintain.c - keeping a database's backup small to restore and small to
 * store: compaction into levels and retention (shipper_internal.h).
 *
 * Compaction.  l0 objects hold about a sync-interval of transactions each,
 * so a day of them is tens of thousands of objects.  Level k merges the
 * level k-1 objects that follow the newest level-k object into one LTX
 * file (ltx_compact: the newest version of each page), once the oldest of
 * them is as old as the level's interval (backup.l1-interval, 30 s;
 * l2, 5 min; l3, 1 h).  A restore then takes the largest steps that do not pass
 * its target (backup/catalog.h), about a dozen objects for any point of a
 * day, and l0 objects for the exact transaction at the end.  Compaction
 * deletes nothing: the finer objects keep every transaction restorable.
 * A run whose input would exceed COMPACT_INPUT_MAX is cut there (the next
 * pass goes on from it).
 *
 * Retention.  Everything that ends at or before the newest snapshot older
 * than backup.retention goes, whatever its level or epoch (superseded
 * objects too, once they are that old): that snapshot stays, so every
 * point inside the window stays restorable.
 */
#include "backup/shipper_internal.h"

#include "backup/catalog.h"
#include "base/clock.h"
#include "base/log.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPACT_INPUT_MAX (256u << 20)
#define COMPACT_RUN_MAX 4096


/* ---- compaction -------------------------------------------------------------- */

/* The level-`level` object that starts at `min` continuing checksum `pre`
 * (the newest epoch if several), or NULL. */
static const bk_object *next_at(const bk_catalog *c, int level, uint64_t min, uint64_t pre,
				int any_pre)
{
	const bk_object *best = NULL;
	for (size_t i = bk_catalog_find_min(c, min); i < c->n && c->obj[i].min_txid == min; i++) {
		const bk_object *o = &c->obj[i];
		if (o->level != level || o->superseded || (!any_pre && o->pre != pre))
			continue;
		if (best == NULL || o->epoch > best->epoch)
			best = o;
	}
	return best;
}

/* The run of level k-1 objects level k would merge next: from the first
 * one after the newest level-k object, as long as they continue each
 * other.  Returns its length. */
static size_t pick_run(const bk_catalog *c, int k, const bk_object **run)
{
	uint64_t after = 0, first_min = UINT64_MAX;
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		if (o->level == k && !o->superseded && o->max_txid > after)
			after = o->max_txid;
	}
	for (size_t i = 0; i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		if (o->level == k - 1 && !o->superseded && o->min_txid > after &&
		    o->min_txid < first_min)
			first_min = o->min_txid;
	}
	if (first_min == UINT64_MAX)
		return 0;
	run[n] = next_at(c, k - 1, first_min, 0, 1);
	while (run[n] != NULL && n + 1 < COMPACT_RUN_MAX) {
		const bk_object *o = run[n++];
		run[n] = next_at(c, k - 1, o->max_txid + 1, o->post, 0);
	}
	return n;
}

/* Download the objects of `run` and split them into their LTX files. */
static int fetch_run(backup_shipper *s, ship_db *d, const bk_object **run, size_t *n,
		     uint8_t **bufs, ltx_compact_input **in, size_t *n_in, lx_err *err)
{
	size_t cap = 0, total = 0;
	*in = NULL;
	*n_in = 0;
	for (size_t i = 0; i < *n; i++) {
		char key[BK_DIR_MAX + BK_KEY_MAX];
		uint8_t *obj;
		size_t len, plen;
		int rc;
		if (total + run[i]->size > COMPACT_INPUT_MAX && i >= 2) {
			*n = i;                 /* the rest waits for the next pass */
			break;
		}
		snprintf(key, sizeof(key), "%s%s", d->dir, run[i]->key);
		rc = backup_store_get(s->st, key, &obj, &len, err);
		if (rc == 0)
			rc = bk_codec_open_owned(s->o.codec, key, &obj, &len, err);
		if (rc < 0)
			return rc;
		bufs[i] = obj;
		plen = len;
		total += plen;
		for (size_t off = 0; off < plen;) {
			ltx_header h;
			uint64_t size;
			if (ltx_file_at(bufs[i] + off, plen - off, &h, &size, err) < 0)
				return lx_err_wrap(err, "%s", key);
			if (*n_in == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				ltx_compact_input *v = realloc(*in, ncap * sizeof(*v));
				if (v == NULL)
					return lx_err_set(err, ENOMEM, "out of memory");
				*in = v;
				cap = ncap;
			}
			(*in)[(*n_in)++] = (ltx_compact_input){ bufs[i] + off, (size_t)size };
			off += (size_t)size;
		}
	}
	return 0;
}

/* Merge level k's next run if its first object is old enough: 1 if it
 * did, 0 if there was nothing to do. */
static int compact_level(backup_shipper *s, ship_db *d, const bk_catalog *c, int k,
			 int64_t now_ms, lx_err *err)
{
	const bk_object **run = calloc(COMPACT_RUN_MAX, sizeof(*run));
	uint8_t **bufs = NULL;
	ltx_compact_input *in = NULL;
	size_t n = run ? pick_run(c, k, run) : 0, n_in = 0;
	membuf out = { 0 };
	ltx_header h;
	ltx_trailer t;
	char rel[BK_KEY_MAX];
	int rc = run ? 0 : lx_err_set(err, ENOMEM, "out of memory");
	if (rc < 0 || n < 2 || now_ms - run[0]->time_ms < s->o.level_interval_ms[k]) {
		free(run);
		return rc;
	}
	bufs = calloc(n, sizeof(*bufs));
	rc = bufs ? fetch_run(s, d, run, &n, bufs, &in, &n_in, err)
		  : lx_err_set(err, ENOMEM, "out of memory");
	if (rc == 0)
		rc = ltx_compact(in, n_in, membuf_write, &out, &h, &t, err);
	if (rc == 0) {
		bk_object_key(rel, k, d->epoch, h.min_txid, h.max_txid,
			      bk_codec_checksum(s->o.codec, h.pre_checksum),
			      bk_codec_checksum(s->o.codec, t.post_checksum), h.timestamp_ms);
		rc = ship_put(s, d, rel, out.p, out.len, err);
	}
	if (rc == 0) {
		lx_debug(d->name, "backup: l%d object of TXIDs %" PRIu64 "-%" PRIu64 " from %zu "
			 "objects (%zu bytes)", k, h.min_txid, h.max_txid, n, out.len);
		rc = 1;
	}
	for (size_t i = 0; bufs != NULL && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(in);
	free(out.p);
	free(run);
	return rc < 0 ? lx_err_wrap(err, "compaction into l%d", k) : rc;
}

/* ---- retention ---------------------------------------------------------------- */

/* Delete what no restore inside the retention window needs. */
static int apply_retention(backup_shipper *s, ship_db *d, const bk_catalog *c,
			   int64_t now_ms, lx_err *err)
{
	const bk_object *keep = NULL;
	const char **del = NULL;
	char (*keys)[BK_DIR_MAX + BK_KEY_MAX] = NULL;
	size_t n = 0;
	int64_t cutoff = now_ms - s->o.retention_ms;
	int rc = 0;
	for (size_t i = 0; i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		if (o->level == BK_LEVEL_SNAPSHOT && !o->superseded && o->time_ms <= cutoff &&
		    (keep == NULL || o->max_txid > keep->max_txid))
			keep = o;
	}
	if (keep == NULL)
		return 0;
	del = calloc(c->n, sizeof(*del));
	keys = calloc(c->n, sizeof(*keys));
	if (del == NULL || keys == NULL)
		rc = lx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		int old = o != keep && o->time_ms <= cutoff &&
			  (o->max_txid <= keep->max_txid || o->superseded);
		if (!old)
			continue;
		snprintf(keys[n], sizeof(keys[n]), "%s%s", d->dir, o->key);
		del[n] = keys[n];
		n++;
	}
	if (rc == 0 && n > 0 && (rc = ship_still_primary(d, err)) == 0)
		rc = backup_store_delete(s->st, del, n, err);
	if (rc == 0 && n > 0) {
		pthread_mutex_lock(&s->mu);
		s->totals.deleted += n;
		pthread_mutex_unlock(&s->mu);
		lx_debug(d->name, "backup: retention deleted %zu objects", n);
	}
	free(del);
	free(keys);
	return rc;
}

int ship_maintain(backup_shipper *s, ship_db *d, lx_err *err)
{
	bk_catalog c;
	int64_t now = lx_wall_ms();
	int rc = backup_store_read_catalog(s->st, d->dir, &c, err);
	for (int k = 1; rc >= 0 && k < BK_LEVELS; k++) {
		rc = compact_level(s, d, &c, k, now, err);
		if (rc > 0) {                  /* the next level sees the new object */
			bk_catalog_free(&c);
			rc = backup_store_read_catalog(s->st, d->dir, &c, err);
		}
	}
	if (rc == 0)
		rc = apply_retention(s, d, &c, now, err);
	bk_catalog_free(&c);
	return rc;
}
