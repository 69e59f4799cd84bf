/*
 * handles.h - a bound on the file descriptors a store's databases keep
 * open (config key data.max-open-files).
 *
 * A database in use needs descriptors: its directory, its log directory,
 * each log segment, and its backing files (database, journal, WAL, shm).
 * Ten thousand databases would need 40-50 thousand of them, more than a
 * process may have.  So a database opens them when an operation needs
 * them (db_use_files_locked in db/state.h) and this cache keeps the
 * databases whose descriptors are open in least-recently-used order: when
 * the descriptors counted exceed the cap, the least recently used
 * databases close theirs.  What the applications hold open through the
 * mount (a FUSE handle shares its backing descriptor) is never closed:
 * such descriptors stay open, uncounted once their database is closed,
 * until the application closes the file.
 *
 * A database records its count at each use; the count is refreshed then,
 * so the descriptors a single operation opens (a new log segment, a file
 * created) are counted at its next use: the bound is the cap plus a few
 * per database in use at the same moment.
 *
 * Threading and lock order: the cache's mutex is taken with a database's
 * mutex held (handle_cache_use), never the other way round: a database
 * is closed only if its mutex can be taken without waiting
 * (pthread_mutex_trylock), so a database busy in another thread is never
 * closed under it and no thread waits for another while holding the
 * cache's mutex.
 */
#ifndef LTXFS_DB_HANDLES_H
#define LTXFS_DB_HANDLES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct database database;

/* Links of a database in the cache (in struct database; guarded by the
 * cache's mutex). */
typedef struct handle_link {
	database *prev, *next;     /* towards the least / most recently used */
	size_t fds;                /* descriptors counted for it */
	int listed;
} handle_link;

typedef struct handle_cache {
	pthread_mutex_t mu;
	size_t cap;                /* descriptors */
	size_t open;               /* counted over the listed databases */
	database *lru, *mru;       /* list ends */
	size_t listed;
	uint64_t closes;           /* databases closed to stay under the cap */
	/* closes a database's descriptors, its mutex held: 0, or -EBUSY
	 * (db_close_files_locked; a pointer so this file stays below the
	 * database's state, see db/internal.h) */
	int (*close_files)(database *db);
} handle_cache;

/* The default cap when data.max-open-files is 0: half of the descriptor
 * limit (RLIMIT_NOFILE), at least 64; the other half is left to the
 * applications' open files, HTTP connections and everything else. */
size_t handle_cache_default_cap(void);

/* `close_files` closes an idle database's descriptors (see above). */
void handle_cache_init(handle_cache *c, size_t cap, int (*close_files)(database *db));
void handle_cache_destroy(handle_cache *c);

/*
 * `db` (its mutex held, its descriptors open) was just used and holds
 * `fds` descriptors: it becomes the most recently used, and the least
 * recently used others close theirs while the count is over the cap.
 */
void handle_cache_use(handle_cache *c, database *db, size_t fds);

/* `db` (its mutex held) closed its descriptors or goes away. */
void handle_cache_forget(handle_cache *c, database *db);

/* Descriptors counted, databases listed, closes so far (metrics). */
void handle_cache_stats(handle_cache *c, size_t *open, size_t *listed, uint64_t *closes);

#endif
