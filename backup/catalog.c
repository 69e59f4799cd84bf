/*
 * catalog.c - parsing object names, superseding by epoch markers, and
 * planning restores (catalog.h).
 */
#include "backup/catalog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bk_catalog_init(bk_catalog *c)
{
	memset(c, 0, sizeof(*c));
}

void bk_catalog_free(bk_catalog *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->obj[i].key);
	for (size_t i = 0; i < c->n_mark; i++)
		free(c->mark[i].key);
	free(c->obj);
	free(c->mark);
	memset(c, 0, sizeof(*c));
}

/* Parse `count` fields of 16 hex digits separated by '-' from s; the rest
 * of s must equal `tail`. */
static int parse_fields(const char *s, uint64_t *v, int count, const char *tail)
{
	for (int i = 0; i < count; i++) {
		uint64_t x = 0;
		for (int d = 0; d < 16; d++, s++) {
			int h;
			if (*s >= '0' && *s <= '9')
				h = *s - '0';
			else if (*s >= 'a' && *s <= 'f')
				h = *s - 'a' + 10;
			else
				return -1;
			x = x << 4 | (uint64_t)h;
		}
		v[i] = x;
		if (i + 1 < count && *s++ != '-')
			return -1;
	}
	return strcmp(s, tail) == 0 ? 0 : -1;
}

/* "l0/" .. "l3/", "snap/": the level, and the name after the slash. */
static int parse_level(const char *key, const char **rest)
{
	if (key[0] == 'l' && key[1] >= '0' && key[1] < '0' + BK_LEVELS && key[2] == '/') {
		*rest = key + 3;
		return key[1] - '0';
	}
	if (strncmp(key, "snap/", 5) == 0) {
		*rest = key + 5;
		return BK_LEVEL_SNAPSHOT;
	}
	return -1;
}

static int add_marker(bk_catalog *c, const char *key, const uint64_t v[3])
{
	if (c->n_mark == c->mark_cap) {
		size_t cap = c->mark_cap ? c->mark_cap * 2 : 8;
		bk_marker *m = realloc(c->mark, cap * sizeof(*m));
		if (m == NULL)
			return -ENOMEM;
		c->mark = m;
		c->mark_cap = cap;
	}
	bk_marker *m = &c->mark[c->n_mark];
	if ((m->key = strdup(key)) == NULL)
		return -ENOMEM;
	m->epoch = v[0];
	m->txid = v[1];
	m->checksum = v[2];
	c->n_mark++;
	return 0;
}

static int add_object(bk_catalog *c, const char *key, int level, const uint64_t v[6],
		      uint64_t size)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		bk_object *o = realloc(c->obj, cap * sizeof(*o));
		if (o == NULL)
			return -ENOMEM;
		c->obj = o;
		c->cap = cap;
	}
	bk_object *o = &c->obj[c->n];
	memset(o, 0, sizeof(*o));
	if ((o->key = strdup(key)) == NULL)
		return -ENOMEM;
	o->level = level;
	o->epoch = v[0];
	o->min_txid = v[1];
	o->max_txid = v[2];
	o->pre = v[3];
	o->post = v[4];
	o->time_ms = (int64_t)v[5];
	o->size = size;
	c->n++;
	c->bytes += size;
	return 0;
}

int bk_catalog_add(bk_catalog *c, const char *key, uint64_t size)
{
	uint64_t v[6];
	const char *rest;
	int level;

	if (strncmp(key, "epoch/", 6) == 0 && parse_fields(key + 6, v, 3, "") == 0)
		return add_marker(c, key, v);
	level = parse_level(key, &rest);
	if (level >= 0 && parse_fields(rest, v, 6, ".ltx") == 0 && v[1] >= 1 &&
	    v[1] <= v[2] && (int64_t)v[5] >= 0 &&
	    (level != BK_LEVEL_SNAPSHOT || (v[1] == 1 && v[3] == 0)))
		return add_object(c, key, level, v, size);
	c->unknown++;
	return 0;
}

static int cmp_object(const void *a, const void *b)
{
	const bk_object *x = a, *y = b;
	if (x->min_txid != y->min_txid)
		return x->min_txid < y->min_txid ? -1 : 1;
	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	if (x->max_txid != y->max_txid)
		return x->max_txid < y->max_txid ? -1 : 1;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int cmp_marker(const void *a, const void *b)
{
	const bk_marker *x = a, *y = b;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return x->txid < y->txid ? -1 : x->txid > y->txid;
}

void bk_catalog_finish(bk_catalog *c)
{
	if (c->n > 1)
		qsort(c->obj, c->n, sizeof(*c->obj), cmp_object);
	if (c->n_mark > 1)
		qsort(c->mark, c->n_mark, sizeof(*c->mark), cmp_marker);
	/* Markers are few (one per shipper start): O(objects x markers). */
	for (size_t i = 0; i < c->n; i++) {
		bk_object *o = &c->obj[i];
		o->superseded = 0;
		for (size_t m = 0; m < c->n_mark && !o->superseded; m++)
			o->superseded = c->mark[m].epoch > o->epoch &&
					o->max_txid > c->mark[m].txid;
	}
}

uint64_t bk_catalog_max_epoch(const bk_catalog *c)
{
	uint64_t e = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->obj[i].epoch > e)
			e = c->obj[i].epoch;
	for (size_t i = 0; i < c->n_mark; i++)
		if (c->mark[i].epoch > e)
			e = c->mark[i].epoch;
	return e;
}

void bk_object_key(char out[BK_KEY_MAX], int level, uint64_t epoch, uint64_t min_txid,
		   uint64_t max_txid, uint64_t pre, uint64_t post, int64_t time_ms)
{
	char dir[8];
	if (level == BK_LEVEL_SNAPSHOT)
		snprintf(dir, sizeof(dir), "snap");
	else
		snprintf(dir, sizeof(dir), "l%d", level);
	snprintf(out, BK_KEY_MAX, "%s/%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64
		 "-%016" PRIx64 "-%016" PRIx64 ".ltx", dir, epoch, min_txid, max_txid, pre,
		 post, (uint64_t)(time_ms < 0 ? 0 : time_ms));
}

void bk_marker_key(char out[BK_KEY_MAX], uint64_t epoch, uint64_t txid, uint64_t checksum)
{
	snprintf(out, BK_KEY_MAX, "epoch/%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64, epoch,
		 txid, checksum);
}

/* ---- planning ---------------------------------------------------------------- */

/* Where a chain can start: a snapshot, or an object from TXID 1 (a new
 * database's whole history: its first LTX file is a snapshot). */
static int is_start(const bk_object *o)
{
	return !o->superseded && (o->level == BK_LEVEL_SNAPSHOT || o->min_txid == 1);
}

/* How far towards `t` a start object gets on its own. */
static uint64_t start_reach(const bk_object *o, const bk_target *t)
{
	return o->max_txid < t->txid ? o->max_txid : t->txid;
}

/* The start of a plan to `t`: the usable start that gets closest to the
 * target (a snapshot at or before it, or an l0 object from TXID 1, cut
 * if it passes the target), the newest epoch on a tie. */
static const bk_object *pick_snapshot(const bk_catalog *c, const bk_target *t)
{
	const bk_object *best = NULL;
	for (size_t i = 0; i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		/* only an l0 object can be cut short of its end */
		if (!is_start(o) || (o->level != 0 &&
				     (o->max_txid > t->txid || o->time_ms > t->time_ms)))
			continue;
		if (best == NULL || start_reach(o, t) > start_reach(best, t) ||
		    (start_reach(o, t) == start_reach(best, t) && o->epoch > best->epoch))
			best = o;
	}
	return best;
}

/* Is `o` a better next step than `best`?  Going further wins; then the
 * newer epoch. */
static int better_step(const bk_object *o, const bk_object *best)
{
	if (best == NULL)
		return 1;
	if (o->max_txid != best->max_txid)
		return o->max_txid > best->max_txid;
	return o->epoch > best->epoch;
}

size_t bk_catalog_find_min(const bk_catalog *c, uint64_t min)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->obj[mid].min_txid < min)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The next step after (txid, post) towards `t`: the object that goes
 * furthest without passing the target, else an l0 object that passes it
 * (to be cut), else NULL.  *passes says which.
 */
static const bk_object *pick_step(const bk_catalog *c, uint64_t txid, uint64_t post,
				  const bk_target *t, int *passes)
{
	const bk_object *within = NULL, *over = NULL;
	for (size_t i = bk_catalog_find_min(c, txid + 1); i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		if (o->min_txid != txid + 1)
			break;
		if (o->level == BK_LEVEL_SNAPSHOT || o->superseded || o->pre != post)
			continue;
		if (o->max_txid <= t->txid && o->time_ms <= t->time_ms) {
			if (better_step(o, within))
				within = o;
		} else if (o->level == 0 && (over == NULL || o->epoch > over->epoch)) {
			over = o;
		}
	}
	*passes = within == NULL && over != NULL;
	return within != NULL ? within : over;
}

static int plan_push(bk_plan *p, size_t *cap, const bk_object *o)
{
	if (p->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		const bk_object **s = realloc(p->step, ncap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		p->step = s;
		*cap = ncap;
	}
	p->step[p->n++] = o;
	return 0;
}

int bk_catalog_plan(const bk_catalog *c, const bk_target *t, bk_plan *out, lx_err *err)
{
	const bk_object *snap = pick_snapshot(c, t), *o = snap;
	size_t cap = 0;
	memset(out, 0, sizeof(*out));
	if (snap == NULL)
		return lx_err_set(err, ENOENT, "no snapshot at or before the target "
				  "(the backup holds %zu objects)", c->n);
	if (plan_push(out, &cap, snap) < 0)
		goto nomem;
	out->cut = snap->level == 0 && (snap->max_txid > t->txid || snap->time_ms > t->time_ms);
	while (!out->cut && o->max_txid < t->txid) {
		const bk_object *next = pick_step(c, o->max_txid, o->post, t, &out->cut);
		if (next == NULL)
			break;
		if (plan_push(out, &cap, next) < 0)
			goto nomem;
		o = next;
	}
	out->txid = out->cut ? t->txid : o->max_txid;
	if (out->cut && out->txid > o->max_txid)
		out->txid = o->max_txid;
	if (t->txid != UINT64_MAX && out->txid < t->txid && t->time_ms == INT64_MAX) {
		uint64_t newest = o->max_txid;
		bk_plan_free(out);
		return lx_err_set(err, ENOENT, "TXID %" PRIu64 " is not in the backup: its "
				  "history reaches TXID %" PRIu64, t->txid, newest);
	}
	return 0;
nomem:
	bk_plan_free(out);
	return lx_err_set(err, ENOMEM, "out of memory");
}

void bk_plan_free(bk_plan *p)
{
	free(p->step);
	memset(p, 0, sizeof(*p));
}

int bk_catalog_chain(const bk_catalog *c, bk_position **out, size_t *n)
{
	static const bk_target newest = { UINT64_MAX, INT64_MAX };
	bk_plan p;
	*out = NULL;
	*n = 0;
	if (bk_catalog_plan(c, &newest, &p, NULL) < 0)
		return pick_snapshot(c, &newest) == NULL ? 0 : -ENOMEM;
	*out = malloc(p.n * sizeof(**out));
	if (*out == NULL) {
		bk_plan_free(&p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p.n; i++) {
		(*out)[i].txid = p.step[i]->max_txid;
		(*out)[i].post = p.step[i]->post;
		(*out)[i].time_ms = p.step[i]->time_ms;
	}
	*n = p.n;
	bk_plan_free(&p);
	return 0;
}

int bk_catalog_range(const bk_catalog *c, bk_range *out)
{
	static const bk_target newest = { UINT64_MAX, INT64_MAX };
	const bk_object *oldest = NULL;
	bk_plan p;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < c->n; i++) {
		const bk_object *o = &c->obj[i];
		out->superseded += o->superseded != 0;
		if (o->level == BK_LEVEL_SNAPSHOT)
			out->snapshots++;
		else
			out->objects++;
		if (is_start(o) && (oldest == NULL || o->min_txid < oldest->min_txid ||
				    (o->min_txid == oldest->min_txid && o->max_txid < oldest->max_txid)))
			oldest = o;
	}
	if (oldest == NULL || bk_catalog_plan(c, &newest, &p, NULL) < 0)
		return -ENOENT;
	/* an l0 start is restorable from its first transaction on */
	out->first_txid = oldest->level == 0 ? oldest->min_txid : oldest->max_txid;
	out->first_ms = oldest->time_ms;
	out->last_txid = p.step[p.n - 1]->max_txid;
	out->last_ms = p.step[p.n - 1]->time_ms;
	out->last_post = p.step[p.n - 1]->post;
	out->last_epoch = p.step[p.n - 1]->epoch;
	bk_plan_free(&p);
	return 0;
}
