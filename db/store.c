/*
 * store.c - the databases of a data directory (see store.h).
 */
#include "db/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "db/internal.h"
#include "db/names.h"

int store_name_valid(const char *name)
{
	return db_name_check(name, strlen(name), NULL) == 0;
}

/* ---- the name index: open addressing, linear probing, never shrinks
 * (database objects, retired ones too, are never freed before store_close) */

static uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;          /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

static database **index_slot(database **slots, size_t cap, const char *name)
{
	size_t i = (size_t)name_hash(name) & (cap - 1);
	while (slots[i] != NULL && strcmp(slots[i]->name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int index_grow(store *s)
{
	size_t cap = s->index_cap ? s->index_cap * 2 : 64;
	database **v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->index_cap; i++)
		if (s->index[i] != NULL)
			*index_slot(v, cap, s->index[i]->name) = s->index[i];
	free(s->index);
	s->index = v;
	s->index_cap = cap;
	return 0;
}

/* Append to the list (a new list_seq: stream sessions look for those). */
static int list_add(store *s, database *db)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		database **v = realloc(s->dbs, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		s->dbs = v;
		s->cap = cap;
	}
	db->list_seq = ++s->seq;
	s->dbs[s->n++] = db;
	return 0;
}

/* The first listed database with list_seq > seq (the list is sorted by it). */
static size_t list_find(const store *s, uint64_t seq)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->dbs[mid]->list_seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void list_remove(store *s, database *db)
{
	size_t i = list_find(s, db->list_seq - 1);
	if (i < s->n && s->dbs[i] == db) {
		memmove(s->dbs + i, s->dbs + i + 1, (s->n - i - 1) * sizeof(*s->dbs));
		s->n--;
	}
}

static int add_db(store *s, database *db)
{
	/* at most half full, so probes stay short */
	if ((s->n_index + 1) * 2 > s->index_cap && index_grow(s) < 0)
		return -ENOMEM;
	if (list_add(s, db) < 0)
		return -ENOMEM;
	*index_slot(s->index, s->index_cap, db->name) = db;
	s->n_index++;
	return 0;
}

static int open_db_locked(store *s, const char *name, database **out, lx_err *err)
{
	char dir[4096];
	database *db;
	int rc;
	snprintf(dir, sizeof(dir), "%s/%s", s->dbs_dir, name);
	rc = db_open(&db, name, dir, &s->opt, err);
	if (rc < 0)
		return rc;
	db_set_write_until(db, s->write_until);
	if (add_db(s, db) < 0) {
		db_close(db);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	*out = db;
	return 0;
}

/* ---- retiring deleted databases ------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		lx_warn("store", "remove %s: %s", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Records of lost transactions (lost-A-B/, db/diverged.c) are the
 * operator's: a directory holding them is never removed. */
static int keeps_lost_records(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	while (d != NULL && !found && (de = readdir(d)) != NULL)
		found = strncmp(de->d_name, "lost-", 5) == 0;
	if (d != NULL)
		closedir(d);
	return found;
}

/* s->mu and db->mu held.  The directory leaves dbs/ in one rename, so a
 * crash leaves either the deleted database (retired at the next start)
 * or nothing; the trash is emptied after the locks are released. */
static int retire_locked(store *s, database *db, char *trash, size_t trash_len)
{
	if (!db_retirable_locked(db) || keeps_lost_records(db->dir))
		return 0;
	snprintf(trash, trash_len, "%s/%" PRIu64, s->trash_dir, ++s->trash_seq);
	if (rename(db->dir, trash) < 0) {
		lx_warn(db->name, "deleted, but its directory stays: rename to %s: %s", trash,
			strerror(errno));
		db->retire_wanted = 0;
		return 0;
	}
	fsync_path(s->dbs_dir);
	db_retire_locked(db);
	list_remove(s, db);
	s->retired++;
	return 1;
}

int store_retire(store *s, database *db)
{
	char trash[4096];
	int done = 0;
	pthread_mutex_lock(&s->mu);
	pthread_mutex_lock(&db->mu);
	if (db->retire_wanted && !db->retired)
		done = retire_locked(s, db, trash, sizeof(trash));
	pthread_mutex_unlock(&db->mu);
	pthread_mutex_unlock(&s->mu);
	if (done) {
		remove_tree(trash);
		lx_info(db->name, "deleted: its directory, log and descriptors are given back");
	}
	return done;
}

/* A new or retired database becomes a listed one (s->mu held). */
static int revive_locked(store *s, database *db, lx_err *err)
{
	int rc;
	pthread_mutex_lock(&db->mu);
	rc = db_revive_locked(db, &s->opt, err);
	pthread_mutex_unlock(&db->mu);
	db_set_write_until(db, s->write_until);
	if (rc == 0 && list_add(s, db) < 0)
		rc = lx_err_set(err, ENOMEM, "out of memory");
	if (rc == 0)
		lx_info(db->name, "created again, from TXID %" PRIu64, db->txid + 1);
	return rc;
}

static int open_existing(store *s, lx_err *err)
{
	DIR *d = opendir(s->dbs_dir);
	struct dirent *de;
	int rc = 0;
	if (d == NULL)
		return lx_err_sys(err, errno, "open %s", s->dbs_dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		database *db;
		lx_err why;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (db_name_check(de->d_name, strlen(de->d_name), &why) < 0) {
			/* made by hand, or by a version that allowed such names */
			lx_warn("store", "%s/: not opened: %s", s->dbs_dir, why.msg);
			continue;
		}
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		rc = open_db_locked(s, de->d_name, &db, err);
		if (rc == 0) {
			/* deleted before it could be retired (a crash, an older
			 * version): retire it now */
			char trash[4096];
			int done;
			pthread_mutex_lock(&db->mu);
			db->retire_wanted = db->txid != 0 && db_retirable_locked(db);
			done = db->retire_wanted && retire_locked(s, db, trash, sizeof(trash));
			pthread_mutex_unlock(&db->mu);
			if (done)
				remove_tree(trash);
		}
	}
	closedir(d);
	return rc;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Segments small enough that trimming whole ones keeps the bytes bound
 * (and, rolled by age below, the age bound). */
static uint64_t segment_size_for(const store_retention *r)
{
	uint64_t seg = r->max_bytes ? r->max_bytes / 8 : TXLOG_SEGMENT_MAX;
	return seg > TXLOG_SEGMENT_MAX ? TXLOG_SEGMENT_MAX : seg;
}

/* Once a second, not at every commit: commits must not wake this thread. */
static void *retention_main(void *arg)
{
	store *s = arg;
	pthread_mutex_lock(&s->stop_mu);
	while (!s->stopping) {
		struct timespec next = lx_mono_deadline(1000);
		while (!s->stopping && pthread_cond_timedwait(&s->stop_cond, &s->stop_mu, &next) == 0)
			;
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->stop_mu);
		store_enforce_retention(s, db_now_ms());
		pthread_mutex_lock(&s->stop_mu);
	}
	pthread_mutex_unlock(&s->stop_mu);
	return NULL;
}

void store_enforce_retention(store *s, int64_t now_ms)
{
	database **dbs;
	size_t n;
	if (store_list(s, &dbs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		db_enforce_retention(dbs[i], now_ms, s->retention.max_age_ms,
				     s->retention.max_bytes);
		db_retry_logging(dbs[i]);
		if (__atomic_load_n(&dbs[i]->retire_wanted, __ATOMIC_RELAXED))
			store_retire(s, dbs[i]);
	}
	free(dbs);
}

void store_set_readonly(store *s, int readonly)
{
	pthread_mutex_lock(&s->mu);
	s->opt.readonly = readonly;
	for (size_t i = 0; i < s->n; i++)
		db_set_readonly(s->dbs[i], readonly);
	pthread_mutex_unlock(&s->mu);
}

void store_set_lease(store *s, uint64_t epoch, int64_t write_until)
{
	pthread_mutex_lock(&s->mu);
	s->opt.lease_epoch = epoch;
	s->write_until = write_until;
	for (size_t i = 0; i < s->n; i++)
		db_set_lease(s->dbs[i], epoch, write_until);
	pthread_mutex_unlock(&s->mu);
}

void store_set_write_until(store *s, int64_t write_until)
{
	pthread_mutex_lock(&s->mu);
	s->write_until = write_until;
	for (size_t i = 0; i < s->n; i++)
		db_set_write_until(s->dbs[i], write_until);
	pthread_mutex_unlock(&s->mu);
}

int store_open(store **out, const char *data_dir, const db_options *opt,
	       const store_retention *retention, lx_err *err)
{
	store *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->stop_mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->stop_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	db_events_init(&s->events);
	s->opt = *opt;
	s->opt.events = &s->events;
	handle_cache_init(&s->handles, opt->max_open_files, db_close_files_locked);
	s->opt.handles = &s->handles;
	if (retention != NULL)
		s->retention = *retention;
	s->opt.segment_max = segment_size_for(&s->retention);
	s->opt.segment_max_age_ms = s->retention.max_age_ms / 8;   /* trims within 1/8 of it */
	rc = log_syncer_start(&s->opt.syncer, err);
	if (rc < 0) {
		store_close(s);
		return rc;
	}
	s->data_dir = strdup(data_dir);
	if (s->data_dir == NULL || asprintf(&s->dbs_dir, "%s/dbs", data_dir) < 0 ||
	    asprintf(&s->trash_dir, "%s/trash", data_dir) < 0) {
		store_close(s);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	/* what a crash left of retired databases */
	remove_tree(s->trash_dir);
	rc = mkdir_p(s->trash_dir);
	if (rc == 0)
		rc = mkdir_p(s->dbs_dir);
	if (rc < 0) {
		lx_err_sys(err, -rc, "create %s", s->dbs_dir);
		store_close(s);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	rc = open_existing(s, err);
	pthread_mutex_unlock(&s->mu);
	if (rc == 0) {
		rc = -pthread_create(&s->retention_thread, NULL, retention_main, s);
		if (rc < 0)
			lx_err_sys(err, -rc, "start the retention thread");
		s->retention_running = rc == 0;
	}
	if (rc < 0) {
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(store *s)
{
	if (s == NULL)
		return;
	if (s->retention_running) {
		pthread_mutex_lock(&s->stop_mu);
		s->stopping = 1;
		pthread_cond_signal(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_mu);
		pthread_join(s->retention_thread, NULL);
	}
	for (size_t i = 0; i < s->index_cap; i++)
		db_close(s->index[i]);      /* every object, retired ones too */
	log_syncer_stop(s->opt.syncer);
	db_events_destroy(&s->events);
	pthread_cond_destroy(&s->stop_cond);
	pthread_mutex_destroy(&s->stop_mu);
	pthread_mutex_destroy(&s->mu);
	free(s->dbs);
	free(s->index);
	if (s->opt.handles != NULL)
		handle_cache_destroy(&s->handles);
	free(s->data_dir);
	free(s->dbs_dir);
	free(s->trash_dir);
	free(s);
}

static database *find_locked(store *s, const char *name)
{
	return s->index_cap ? *index_slot(s->index, s->index_cap, name) : NULL;
}

database *store_find(store *s, const char *name)
{
	database *db;
	pthread_mutex_lock(&s->mu);
	db = find_locked(s, name);
	if (db != NULL && __atomic_load_n(&db->retired, __ATOMIC_ACQUIRE))
		db = NULL;
	pthread_mutex_unlock(&s->mu);
	return db;
}

int store_get_or_create(store *s, const char *name, database **out,
			lx_err *err)
{
	int rc = db_name_check(name, strlen(name), err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&s->mu);
	*out = find_locked(s, name);
	if (*out == NULL) {
		rc = open_db_locked(s, name, out, err);
		if (rc == 0)
			lx_info(name, "new database");
	} else if (__atomic_load_n(&(*out)->retired, __ATOMIC_ACQUIRE)) {
		rc = revive_locked(s, *out, err);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_list_since(store *s, uint64_t after, database ***out, size_t *n, uint64_t *last)
{
	size_t first;
	pthread_mutex_lock(&s->mu);
	first = list_find(s, after);
	*out = malloc((s->n - first ? s->n - first : 1) * sizeof(**out));
	if (*out == NULL) {
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	if (s->n > first)
		memcpy(*out, s->dbs + first, (s->n - first) * sizeof(**out));
	*n = s->n - first;
	*last = s->seq;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void store_handle_stats(store *s, size_t *open, size_t *cap, size_t *dbs_open,
			uint64_t *closes)
{
	handle_cache_stats(&s->handles, open, dbs_open, closes);
	*cap = s->handles.cap;
}

int store_list(store *s, database ***out, size_t *n)
{
	pthread_mutex_lock(&s->mu);
	*out = malloc((s->n ? s->n : 1) * sizeof(**out));
	if (*out == NULL) {
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	if (s->n > 0)
		memcpy(*out, s->dbs, s->n * sizeof(**out));
	*n = s->n;
	pthread_mutex_unlock(&s->mu);
	return 0;
}
