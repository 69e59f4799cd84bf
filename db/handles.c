/*
 * handles.c - the least-recently-used list of databases whose descriptors
 * are open (see handles.h).
 */
#include "db/handles.h"

#include <sys/resource.h>

#include "db/database.h"

size_t handle_cache_default_cap(void)
{
	struct rlimit rl;
	size_t cap = 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		cap = (size_t)rl.rlim_cur / 2;
	return cap < 64 ? 64 : cap;
}

void handle_cache_init(handle_cache *c, size_t cap, int (*close_files)(database *db))
{
	c->close_files = close_files;
	pthread_mutex_init(&c->mu, NULL);
	c->cap = cap ? cap : handle_cache_default_cap();
	c->open = 0;
	c->lru = c->mru = NULL;
	c->listed = 0;
	c->closes = 0;
}

void handle_cache_destroy(handle_cache *c)
{
	pthread_mutex_destroy(&c->mu);
}

static void unlink_locked(handle_cache *c, database *db)
{
	handle_link *l = &db->handles;
	if (!l->listed)
		return;
	if (l->prev)
		l->prev->handles.next = l->next;
	else
		c->lru = l->next;
	if (l->next)
		l->next->handles.prev = l->prev;
	else
		c->mru = l->prev;
	l->prev = l->next = NULL;
	l->listed = 0;
	c->open -= l->fds;
	l->fds = 0;
	c->listed--;
}

static void push_mru_locked(handle_cache *c, database *db, size_t fds)
{
	handle_link *l = &db->handles;
	l->prev = c->mru;
	l->next = NULL;
	if (c->mru)
		c->mru->handles.next = db;
	else
		c->lru = db;
	c->mru = db;
	l->listed = 1;
	l->fds = fds;
	c->open += fds;
	c->listed++;
}

/* Close least recently used databases until the count is under the cap.
 * A database whose mutex is busy is skipped: it is in use. */
static void shrink_locked(handle_cache *c, database *keep)
{
	database *db = c->lru;
	while (c->open > c->cap && db != NULL) {
		database *next = db->handles.next;
		if (db != keep && pthread_mutex_trylock(&db->mu) == 0) {
			if (c->close_files(db) == 0) {
				unlink_locked(c, db);
				c->closes++;
			}
			pthread_mutex_unlock(&db->mu);
		}
		db = next;
	}
}

void handle_cache_use(handle_cache *c, database *db, size_t fds)
{
	pthread_mutex_lock(&c->mu);
	if (c->mru != db || db->handles.fds != fds) {
		unlink_locked(c, db);
		push_mru_locked(c, db, fds);
	}
	if (c->open > c->cap)
		shrink_locked(c, db);
	pthread_mutex_unlock(&c->mu);
}

void handle_cache_forget(handle_cache *c, database *db)
{
	pthread_mutex_lock(&c->mu);
	unlink_locked(c, db);
	pthread_mutex_unlock(&c->mu);
}

void handle_cache_stats(handle_cache *c, size_t *open, size_t *listed, uint64_t *closes)
{
	pthread_mutex_lock(&c->mu);
	*open = c->open;
	*listed = c->listed;
	*closes = c->closes;
	pthread_mutex_unlock(&c->mu);
}
