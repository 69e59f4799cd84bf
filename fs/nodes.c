/*
 * nodes.c - the mount's inode tables (see fs_internal.h).
 *
 * A lookup, a create and every notification a replica sends find a node
 * here, so finding one is O(1) whatever the number of databases: a table
 * that was a list made creating the 1,000th database 7 times slower than
 * the first.  Two chained hash tables under fs->mu: database nodes by
 * (database, kind), plain-file nodes by name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_internal.h"

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t db_key(const database *db, enum node_kind kind)
{
	return mix((uint64_t)(uintptr_t)db * 8 + (uint64_t)kind);
}

static uint64_t name_key(const char *name)
{
	uint64_t h = 1469598103934665603ull;          /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

static uint64_t node_key(const fs_node *n)
{
	return n->kind == NODE_FILE ? name_key(n->name) : db_key(n->db, n->kind);
}

/* Keep the load at most 1: double the buckets (a power of two). */
static int table_grow(fs_node_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	fs_node **v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		fs_node *n = t->slot[i];
		while (n != NULL) {
			fs_node *next = n->next;
			size_t b = (size_t)node_key(n) & (cap - 1);
			n->next = v[b];
			v[b] = n;
			n = next;
		}
	}
	free(t->slot);
	t->slot = v;
	t->cap = cap;
	return 0;
}

static int table_add(fs_node_table *t, fs_node *n)
{
	size_t b;
	if (t->n + 1 > t->cap && table_grow(t) < 0)
		return -1;
	b = (size_t)node_key(n) & (t->cap - 1);
	n->next = t->slot[b];
	t->slot[b] = n;
	t->n++;
	return 0;
}

static void table_remove(fs_node_table *t, fs_node *n)
{
	fs_node **pp = &t->slot[(size_t)node_key(n) & (t->cap - 1)];
	for (; *pp != NULL; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			t->n--;
			return;
		}
}

static fs_node *find_db_locked(fs_state *fs, database *db, enum node_kind kind)
{
	fs_node *n;
	if (fs->nodes.cap == 0)
		return NULL;
	for (n = fs->nodes.slot[(size_t)db_key(db, kind) & (fs->nodes.cap - 1)]; n; n = n->next)
		if (n->db == db && n->kind == kind)
			return n;
	return NULL;
}

fs_node *fs_node_find(fs_state *fs, database *db, enum node_kind kind)
{
	fs_node *n;
	pthread_mutex_lock(&fs->mu);
	n = find_db_locked(fs, db, kind);
	pthread_mutex_unlock(&fs->mu);
	return n;
}

fs_node *fs_node_get(fs_state *fs, database *db, enum node_kind kind)
{
	fs_node *n;
	pthread_mutex_lock(&fs->mu);
	n = find_db_locked(fs, db, kind);
	if (n == NULL && (n = calloc(1, sizeof(*n))) != NULL) {
		n->db = db;
		n->kind = kind;
		if (table_add(&fs->nodes, n) < 0) {
			free(n);
			n = NULL;
		}
	}
	pthread_mutex_unlock(&fs->mu);
	return n;
}

fs_node *fs_file_node_ref(fs_state *fs, const char *name)
{
	fs_node *n = NULL;
	pthread_mutex_lock(&fs->mu);
	if (fs->files.cap != 0)
		for (n = fs->files.slot[(size_t)name_key(name) & (fs->files.cap - 1)]; n; n = n->next)
			if (strcmp(n->name, name) == 0)
				break;
	if (n == NULL && (n = calloc(1, sizeof(*n))) != NULL) {
		n->kind = NODE_FILE;
		n->name = strdup(name);
		lock_table_init(&n->locks);
		if (n->name == NULL || table_add(&fs->files, n) < 0) {
			free(n->name);
			free(n);
			n = NULL;
		} else {
			n->in_table = 1;
		}
	}
	if (n != NULL)
		n->nlookup++;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

static void file_node_free(fs_node *n)
{
	lock_table_free(&n->locks);
	free(n->name);
	free(n);
}

void fs_file_node_unlinked(fs_state *fs, fs_node *n)
{
	/* kept (for unmount to free) until the kernel forgets it */
	pthread_mutex_lock(&fs->mu);
	if (n->in_table) {
		table_remove(&fs->files, n);
		if (table_add(&fs->orphans, n) == 0)
			n->in_table = 0;
		else
			table_add(&fs->files, n);   /* cannot fail: it was there */
	}
	pthread_mutex_unlock(&fs->mu);
}

void fs_node_forget(fs_state *fs, fs_node *n, uint64_t count)
{
	if (n->kind != NODE_FILE)
		return;
	pthread_mutex_lock(&fs->mu);
	n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
	if (n->nlookup == 0) {
		table_remove(n->in_table ? &fs->files : &fs->orphans, n);
		file_node_free(n);
	}
	pthread_mutex_unlock(&fs->mu);
}

/* ---- directories to sync --------------------------------------------------- */

void fs_dir_pending_add(fs_state *fs, database *db, int plain)
{
	fs_dir_pending *p = &fs->dir_pending;
	pthread_mutex_lock(&fs->mu);
	if (plain)
		p->plain = 1;
	for (size_t i = p->n; db != NULL && i-- > 0 && i + 8 >= p->n;)
		if (p->dbs[i] == db)
			db = NULL;             /* recently added: a commit's create + unlink */
	if (db != NULL && p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		database **v = realloc(p->dbs, cap * sizeof(*v));
		if (v != NULL) {
			p->dbs = v;
			p->cap = cap;
		}
	}
	if (db != NULL && p->n < p->cap)
		p->dbs[p->n++] = db;
	else if (db != NULL)
		p->all = 1;                    /* out of memory: sync every database */
	pthread_mutex_unlock(&fs->mu);
}

void fs_dir_pending_take(fs_state *fs, database ***dbs, size_t *n, int *plain)
{
	fs_dir_pending *p = &fs->dir_pending;
	pthread_mutex_lock(&fs->mu);
	*dbs = p->dbs;
	*n = p->n;
	*plain = p->plain;
	if (p->all) {
		free(p->dbs);
		if (store_list(fs->store, dbs, n) < 0) {
			*dbs = NULL;
			*n = 0;
		}
	}
	memset(p, 0, sizeof(*p));
	pthread_mutex_unlock(&fs->mu);
}

static void table_free(fs_node_table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		fs_node *n = t->slot[i];
		while (n != NULL) {
			fs_node *next = n->next;
			if (n->kind == NODE_FILE)
				file_node_free(n);
			else
				free(n);
			n = next;
		}
	}
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

void fs_nodes_free(fs_state *fs)
{
	table_free(&fs->nodes);
	table_free(&fs->files);
	table_free(&fs->orphans);
	free(fs->dir_pending.dbs);
	memset(&fs->dir_pending, 0, sizeof(fs->dir_pending));
}
