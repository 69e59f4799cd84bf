/*
 * store.h - the set of databases in a data directory.
 *
 * data.dir/dbs/NAME/ holds database NAME (see database.h).  The store opens
 * (and recovers) every database at start, creates new ones on demand and
 * keeps them for the life of the process: a deleted database stays known,
 * with its history, and continues its TXIDs if it is created again.
 *
 * Threading: the database list is guarded by the store's own mutex;
 * database objects are never freed before store_close(), so pointers
 * returned by the store stay valid.  The store runs one thread of its own,
 * "retention", which once a second (never woken by commits) trims every
 * database's log to
 * data.retention and data.retention-bytes (the newest transaction always
 * stays).
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
	database **dbs;            /* in creation order */
	size_t n, cap;
	database **index;          /* by name (hash table of index_cap slots) */
	size_t index_cap;
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

/* The database called `name`, or NULL.  O(1): a hash table. */
database *store_find(store *s, const char *name);

/* The database called `name`, created (empty) if it does not exist. */
int store_get_or_create(store *s, const char *name, database **out,
			lx_err *err);

/* Snapshot of the database list for iteration (readdir); caller frees. */
int store_list(store *s, database ***out, size_t *n);

#endif
