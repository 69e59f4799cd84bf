/*
 * locks.c - POSIX record-lock table (see locks.h).
 *
 * The table is a flat array sorted by (owner, start).  SQLite holds a
 * handful of locks per connection, so linear scans beat anything fancier.
 * Invariant: the ranges of one owner are disjoint and adjacent ranges of
 * the same type are merged.
 */
#include "db/locks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void lock_table_init(lock_table *t)
{
	memset(t, 0, sizeof(*t));
}

void lock_table_free(lock_table *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int ranges_overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

int lock_table_conflict(const lock_table *t, uint64_t owner, uint64_t start,
			uint64_t end, enum lock_type type, lock_range *conflict)
{
	for (size_t i = 0; i < t->n; i++) {
		const lock_range *r = &t->v[i];
		if (r->owner == owner)
			continue;
		if (!ranges_overlap(r->start, r->end, start, end))
			continue;
		if (type == LK_WRITE || r->type == LK_WRITE) {
			if (conflict)
				*conflict = *r;
			return 1;
		}
	}
	return 0;
}

static int reserve(lock_table *t, size_t extra)
{
	size_t want = t->n + extra;
	lock_range *v;
	if (want <= t->cap)
		return 0;
	want = want < 8 ? 8 : want * 2;
	v = realloc(t->v, want * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	t->v = v;
	t->cap = want;
	return 0;
}

static void remove_at(lock_table *t, size_t i)
{
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
	t->n--;
}

static void insert_sorted(lock_table *t, const lock_range *r)
{
	size_t i = 0;
	while (i < t->n && (t->v[i].owner < r->owner ||
			    (t->v[i].owner == r->owner && t->v[i].start < r->start)))
		i++;
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(t->v[0]));
	t->v[i] = *r;
	t->n++;
}

/*
 * Remove [start, end] from the ranges of `owner`, splitting a range that
 * straddles it.  Needs room for one extra entry (reserved by the caller).
 */
static void carve_owner_range(lock_table *t, uint64_t owner, uint64_t start,
			      uint64_t end)
{
	for (size_t i = 0; i < t->n;) {
		lock_range *r = &t->v[i];
		if (r->owner != owner || !ranges_overlap(r->start, r->end, start, end)) {
			i++;
			continue;
		}
		if (r->start < start && r->end > end) {
			lock_range tail = *r;
			tail.start = end + 1;
			r->end = start - 1;
			insert_sorted(t, &tail);
			return;
		}
		if (r->start < start) {
			r->end = start - 1;
			i++;
		} else if (r->end > end) {
			r->start = end + 1;
			i++;
		} else {
			remove_at(t, i);
		}
	}
}

/* Merge ranges of `owner` that touch and have the same type. */
static void merge_owner(lock_table *t, uint64_t owner)
{
	for (size_t i = 0; i + 1 < t->n;) {
		lock_range *a = &t->v[i], *b = &t->v[i + 1];
		if (a->owner == owner && b->owner == owner && a->type == b->type &&
		    a->end != LK_EOF && a->end + 1 == b->start) {
			a->end = b->end;
			remove_at(t, i + 1);
		} else {
			i++;
		}
	}
}

int lock_table_set(lock_table *t, uint64_t owner, pid_t pid, uint64_t start,
		   uint64_t end, enum lock_type type)
{
	lock_range r;
	int rc;

	if (end < start)
		return -EINVAL;
	if (type != LK_UNLOCK &&
	    lock_table_conflict(t, owner, start, end, type, NULL))
		return -EAGAIN;
	if (type != LK_UNLOCK && t->res_owner != 0 && owner != t->res_owner &&
	    ranges_overlap(start, end, t->res_start, t->res_end))
		return -EAGAIN;   /* a writer waits there */
	rc = reserve(t, 2);
	if (rc < 0)
		return rc;
	carve_owner_range(t, owner, start, end);
	if (type == LK_UNLOCK)
		return 0;
	r.owner = owner;
	r.start = start;
	r.end = end;
	r.type = type;
	r.pid = pid;
	insert_sorted(t, &r);
	merge_owner(t, owner);
	return 0;
}

void lock_table_reserve(lock_table *t, uint64_t owner, uint64_t start, uint64_t end)
{
	t->res_owner = owner;
	t->res_start = start;
	t->res_end = end;
}

void lock_table_release_owner(lock_table *t, uint64_t owner)
{
	for (size_t i = 0; i < t->n;) {
		if (t->v[i].owner == owner)
			remove_at(t, i);
		else
			i++;
	}
}

enum lock_type lock_table_held(const lock_table *t, uint64_t owner,
			       uint64_t off)
{
	for (size_t i = 0; i < t->n; i++) {
		const lock_range *r = &t->v[i];
		if (r->owner == owner && r->start <= off && off <= r->end)
			return r->type;
	}
	return LK_UNLOCK;
}

int lock_table_byte_locked(const lock_table *t, uint64_t off, uint64_t except)
{
	for (size_t i = 0; i < t->n; i++) {
		const lock_range *r = &t->v[i];
		if (r->owner != except && r->start <= off && off <= r->end)
			return 1;
	}
	return 0;
}
