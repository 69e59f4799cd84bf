/*
 * catalog.h - what a backup holds of one database, read from object names
 * alone, and which objects a restore to a point uses.
 *
 * The objects of one database live under its directory in the storage
 * (the database's name, or with encryption a keyed hash of it):
 *
 *   l0/EPOCH-MIN-MAX-PRE-POST-TIME.ltx    LTX files of transactions MIN..MAX,
 *                                          one after another (not merged), so
 *                                          a restore can stop after any of them
 *   l1/ l2/ l3/ (same name)                one merged LTX file (compaction)
 *   snap/EPOCH-0000000000000001-MAX-0000000000000000-POST-TIME.ltx
 *                                          a snapshot: the database at MAX
 *   epoch/EPOCH-TXID-CHECKSUM              a shipper of EPOCH starts at TXID
 *   name                                   (encrypted) the database's name
 *
 * Every number is 16 lower-case hex digits.  EPOCH is the shipping epoch
 * (backup/shipper.c: larger than every epoch already in the storage and
 * at least the lease epoch); PRE and POST the database checksums before
 * and after (with encryption, keyed hashes of them, which keep equality);
 * TIME the wall clock of the last commit, in ms.
 *
 * Failovers.  A shipper writes its epoch marker before any object of its
 * epoch.  The marker (E, T) says: from T on, the history is epoch E's.  An
 * object of an older epoch that ends after T is superseded: a deposed
 * primary shipped it, the cluster lost it, and no restore uses it (the
 * catalog keeps it, reported as superseded, until retention deletes it).
 *
 * A restore plan: the newest usable snapshot at or before the target,
 * then a chain of objects each starting right after the previous one
 * (MIN == previous MAX + 1) from the same checksum (PRE == previous POST),
 * taking at each step the object that goes furthest without passing the
 * target, the newest epoch on a tie; the last object may be an l0 object
 * that passes the target, cut by the restore.
 *
 * Pure logic: no I/O, no global state.  A catalog is used by one thread.
 */
#ifndef LTXFS_BACKUP_CATALOG_H
#define LTXFS_BACKUP_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BK_LEVEL_SNAPSHOT 9   /* the level number of snapshots */
#define BK_LEVELS 4           /* l0 .. l3 */
#define BK_KEY_MAX 512        /* longest object key the catalog makes */

typedef struct bk_object {
	char *key;            /* relative to the database's directory */
	int level;            /* 0..3, or BK_LEVEL_SNAPSHOT */
	uint64_t epoch;
	uint64_t min_txid, max_txid;
	uint64_t pre, post;   /* checksums (or their keyed hashes) */
	int64_t time_ms;      /* of the last commit */
	uint64_t size;
	int superseded;       /* an older epoch's, after a newer epoch's start */
} bk_object;

typedef struct bk_marker {
	uint64_t epoch, txid, checksum;
	char *key;
} bk_marker;

typedef struct bk_catalog {
	bk_object *obj;       /* sorted by (min_txid, level, max_txid, epoch) */
	size_t n, cap;
	bk_marker *mark;      /* sorted by epoch */
	size_t n_mark, mark_cap;
	size_t unknown;       /* keys that are none of the above */
	uint64_t bytes;       /* sum of every object's size */
} bk_catalog;

void bk_catalog_init(bk_catalog *c);
void bk_catalog_free(bk_catalog *c);

/* Classify one key (relative to the database's directory) of `size`
 * bytes; keys that are not the catalog's are counted in `unknown`.
 * Returns 0 or -ENOMEM. */
int bk_catalog_add(bk_catalog *c, const char *key, uint64_t size);

/* Sort, and mark what the epoch markers supersede.  Call once after the
 * last add, before any query. */
void bk_catalog_finish(bk_catalog *c);

/* The index of the first object whose min_txid is at least `min` (they
 * are sorted by it), c->n if none. */
size_t bk_catalog_find_min(const bk_catalog *c, uint64_t min);

/* The highest epoch of any object or marker (0 for an empty catalog). */
uint64_t bk_catalog_max_epoch(const bk_catalog *c);

/* Names (relative to the database's directory) of an object and a marker. */
void bk_object_key(char out[BK_KEY_MAX], int level, uint64_t epoch, uint64_t min_txid,
		   uint64_t max_txid, uint64_t pre, uint64_t post, int64_t time_ms);
void bk_marker_key(char out[BK_KEY_MAX], uint64_t epoch, uint64_t txid, uint64_t checksum);

/* A restore target: the newest point at or before `txid` and `time_ms`
 * (UINT64_MAX / INT64_MAX: the newest there is). */
typedef struct bk_target {
	uint64_t txid;
	int64_t time_ms;
} bk_target;

typedef struct bk_plan {
	const bk_object **step;  /* step[0] is the snapshot; into the catalog */
	size_t n;
	uint64_t txid;           /* where the plan ends, at most (an l0 last step
				    may be cut earlier by time) */
	int cut;                 /* the last step passes the target: stop inside it */
} bk_plan;

/*
 * Plan a restore to `t`.  -ENOENT with a message when no snapshot is at or
 * before the target, or the chain stops before a TXID target (naming the
 * newest TXID the backup can reach); a time target past the newest point
 * plans to the newest point.  Free with bk_plan_free().
 */
int bk_catalog_plan(const bk_catalog *c, const bk_target *t, bk_plan *out, lx_err *err);
void bk_plan_free(bk_plan *p);

/* The restorable range: the oldest and newest point a plan can reach
 * (TXIDs and times), from the oldest usable snapshot to the end of the
 * newest chain.  0 if the catalog has a snapshot, else -ENOENT. */
typedef struct bk_range {
	uint64_t first_txid, last_txid;
	int64_t first_ms, last_ms;
	uint64_t last_post;      /* the checksum (hash) at last_txid */
	uint64_t last_epoch;
	size_t snapshots, objects, superseded;
} bk_range;

int bk_catalog_range(const bk_catalog *c, bk_range *out);

/*
 * The positions at the end of each step of the newest chain (its
 * snapshot's, then after every object), ascending, for a shipper to find
 * the newest one on its own history.  *out malloc'd; *n 0 when there is no
 * snapshot.  Returns 0 or -ENOMEM.
 */
typedef struct bk_position {
	uint64_t txid;
	uint64_t post;           /* checksum (or hash) */
	int64_t time_ms;
} bk_position;

int bk_catalog_chain(const bk_catalog *c, bk_position **out, size_t *n);

#endif
