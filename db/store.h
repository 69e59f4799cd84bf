/*
 * store.h - the set of databases in a data directory.
 *
 * data.dir/dbs/NAME/ holds database NAME (see database.h).  The store opens
 * (and recovers) every database at start and creates new ones on demand.
 *
 * A deleted database gives everything back once its delete transaction is
 * logged and none of its files is left (store_retire): its directory is
 * moved to data.dir/trash/ and removed, its log and descriptors closed, and
 * it leaves the list (/status, /metrics, readdir, replication).  Only its
 * object stays, for the pointers others hold; if the name is created
 * again the same object serves it, its TXIDs continuing from the delete
 * (a restart forgets that: the name then starts again at TXID 1).
 *
 * Descriptors are bounded: the store's handle cache (db/handles.h, cap
 * data.max-open-files) closes those of the least recently used databases.
 *
 * Threading: the database list is guarded by the store's own mutex, which
 * is taken before a database's.  Database objects are never freed before
 * store_close(), so pointers returned by the store stay valid.  The store
 * runs one thread of its own, "retention", which once a second (never
 * woken by commits) trims every database's log to data.retention and
 * data.retention-bytes (the newest transaction always stays), retries
 * logging after storage errors and retires deleted databases that were
 * still in use when they were deleted.
 */
#ifndef LTXFS_DB_STORE_H
#define LTXFS_DB_STORE_H

#include <pthread.h>
#include <stddef.h>

#include "base/err.h"
#include "db/database.h"

/* How much history each database's log keeps (0: no limit). */
typedef struct store_retention {
	uint64_t max_age_ms;
	uint64_t max_bytes;
} store_retention;

typedef struct store {
	char *data_dir;
	char *dbs_dir;
	db_options opt;
	store_retention retention;
	db_events events;          /* commits and the mount's observer */
	pthread_mutex_t mu;
	database **dbs;            /* listed (not retired), by list_seq */
	size_t n, cap;
	uint64_t seq;              /* the last list_seq given */
	database **index;          /* by name (hash table of index_cap slots), retired too */
	size_t index_cap, n_index;
	handle_cache handles;      /* bounds the databases' descriptors */
	char *trash_dir;           /* data.dir/trash: directories being removed */
	uint64_t trash_seq;
	uint64_t retired;          /* databases retired since start */
	pthread_t retention_thread;
	int retention_running;
	pthread_mutex_t stop_mu;   /* guards stopping; with stop_cond, ends the thread */
	pthread_cond_t stop_cond;
	int stopping;
	int64_t write_until;       /* under mu: the lease's write deadline (0: none) */
} store;

int store_open(store **out, const char *data_dir, const db_options *opt,
	       const store_retention *retention, lx_err *err);

/* Make every database (also those created later) read-only through the
 * mount (a replica) or writable (the primary). */
void store_set_readonly(store *s, int readonly);

/* The lease for every database, also those created later (db_set_lease). */
void store_set_lease(store *s, uint64_t epoch, int64_t write_until);
void store_set_write_until(store *s, int64_t write_until);

/* Trim every database's log now (the retention thread calls it). */
void store_enforce_retention(store *s, int64_t now_ms);

/* Clean shutdown of every database, then free. */
void store_close(store *s);

/* 1 if `name` is a valid database name (db_name_check in db/names.h). */
int store_name_valid(const char *name);

/* The database called `name`, or NULL (also when it was deleted and
 * retired).  O(1): a hash table. */
database *store_find(store *s, const char *name);

/* The database called `name`, created (empty) if it does not exist, or
 * created again if it was retired. */
int store_get_or_create(store *s, const char *name, database **out,
			lx_err *err);

/* Snapshot of the database list for iteration (readdir); caller frees.
 * Retired databases are not in it. */
int store_list(store *s, database ***out, size_t *n);

/* The databases listed after `after` (their list_seq, ascending: created,
 * or created again, since); *last gets the newest list_seq (pass it as
 * `after` next time).  Caller frees. */
int store_list_since(store *s, uint64_t after, database ***out, size_t *n, uint64_t *last);

/*
 * `db` was deleted (its file removed on the primary, or the primary said
 * so on a replica): if nothing of it is in use any more, give everything
 * back (see the top of this file).  Returns 1 if it was retired.  The
 * retention thread tries again for a database still in use.
 */
int store_retire(store *s, database *db);

/* Descriptors counted by the handle cache, and its cap. */
void store_handle_stats(store *s, size_t *open, size_t *cap, size_t *dbs_open,
			uint64_t *closes);

#endif
