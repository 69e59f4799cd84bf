/*
 * locks.h - POSIX byte-range record locks, kept by ltxfs itself.
 *
 * SQLite coordinates its connections with fcntl(F_SETLK) locks on the
 * database file and on the -shm file.  ltxfs answers those requests itself
 * (the kernel forwards them through FUSE) so that it can see when a writer
 * finishes and, later, exclude readers and writers while it applies
 * replicated data.  A lock_table holds the locks of one file with exact
 * POSIX semantics: locks belong to an owner (the FUSE lock owner, one per
 * process); a request replaces the owner's own locks over its range
 * (splitting and merging ranges); read locks of different owners share;
 * a write lock conflicts with any lock of another owner.
 *
 * Pure data structure: no locking of its own (the caller serialises access,
 * see db/database.h), no I/O, no global state.
 */
#ifndef LTXFS_DB_LOCKS_H
#define LTXFS_DB_LOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LK_EOF UINT64_MAX  /* `end` of a range that runs to end of file */

enum lock_type { LK_UNLOCK = 0, LK_READ = 1, LK_WRITE = 2 };

typedef struct lock_range {
	uint64_t owner;
	uint64_t start;
	uint64_t end;    /* inclusive */
	enum lock_type type;
	pid_t pid;       /* reported by F_GETLK */
} lock_range;

typedef struct lock_table {
	lock_range *v;   /* sorted by (owner, start); ranges of one owner never overlap */
	size_t n, cap;
	/* A writer waiting for [res_start, res_end] (res_owner != 0): other
	 * owners may keep and release their locks there but take no new
	 * ones, so the waiter gets in once the current holders finish
	 * (SQLite's PENDING lock gives a local writer the same preference). */
	uint64_t res_owner, res_start, res_end;
} lock_table;

void lock_table_init(lock_table *t);
void lock_table_free(lock_table *t);

/*
 * Is [start, end] lockable with `type` by `owner`?  Returns 1 and fills
 * *conflict (if non-NULL) with the first conflicting lock of another
 * owner, or 0 if there is no conflict.
 */
int lock_table_conflict(const lock_table *t, uint64_t owner, uint64_t start,
			uint64_t end, enum lock_type type, lock_range *conflict);

/*
 * Set (LK_READ/LK_WRITE) or release (LK_UNLOCK) [start, end] for
 * `owner`.  Returns 0, -EAGAIN on conflict (the table is unchanged), or
 * -ENOMEM.
 */
int lock_table_set(lock_table *t, uint64_t owner, pid_t pid, uint64_t start,
		   uint64_t end, enum lock_type type);

/* Reserve [start, end] for `owner` (see lock_table), or drop the
 * reservation (owner 0).  One reservation per table. */
void lock_table_reserve(lock_table *t, uint64_t owner, uint64_t start, uint64_t end);

/* Release every lock of `owner` (close/flush of a file by that process). */
void lock_table_release_owner(lock_table *t, uint64_t owner);

/* The strongest lock `owner` holds on byte `off` (LK_UNLOCK if none). */
enum lock_type lock_table_held(const lock_table *t, uint64_t owner,
			       uint64_t off);

/* 1 if any owner other than `except` holds a lock on byte `off`. */
int lock_table_byte_locked(const lock_table *t, uint64_t off, uint64_t except);

#endif
