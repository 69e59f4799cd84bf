/*
 * fs_internal.h - state shared by the files of the FUSE layer.
 */
#ifndef LTXFS_FS_INTERNAL_H
#define LTXFS_FS_INTERNAL_H

#include <pthread.h>
#include <stdlib.h>
#include <sys/types.h>

#include "db/store.h"
#include "fs/fs.h"

/* Node kinds; the first four equal the database file they stand for. */
enum node_kind { NODE_DB = DBF_DB, NODE_JOURNAL = DBF_JOURNAL, NODE_WAL = DBF_WAL,
		 NODE_SHM = DBF_SHM, NODE_POS, NODE_PRIMARY, NODE_LAG };

/* Files whose content ltxfs makes up (no backing file, no database for
 * .primary and .lag). */
static inline int node_is_virtual(enum node_kind k)
{
	return k >= NODE_POS;
}

/* One inode: (database, kind).  Its address is its FUSE inode number;
 * nodes live until unmount.  .primary and .lag have no database. */
typedef struct fs_node {
	database *db;
	enum node_kind kind;
	struct fs_node *next;
} fs_node;

/* Links every open file and directory handle into the mount state, so
 * handles whose release never arrives (unmount) are freed at the end. */
typedef struct fs_open {
	struct fs_open *prev, *next;
	int is_dir;     /* the handle is an fs_dirbuf, else an fs_handle */
} fs_open;

/* An open file: the node and a reference to the backing descriptor. */
typedef struct fs_handle {
	fs_open link;   /* first member */
	fs_node *node;
	backing *b;     /* NULL for NAME-pos */
} fs_handle;

typedef struct fs_dirbuf {
	fs_open link;   /* first member */
	char *buf;
	size_t len, cap;
} fs_dirbuf;

/* The per-mount state: libfuse's userdata. */
typedef struct fs_state {
	store *store;
	const char *mountpoint;   /* the replica applier opens -shm through it */
	fs_role role;
	fs_node primary_node, lag_node;   /* .primary, .lag */
	/* The session the observer notifies; NULL outside fs_run's loop.
	 * Written under the write lock, used under the read lock. */
	pthread_rwlock_t se_lock;
	struct fuse_session *se;
	db_observer observer;
	uid_t uid;
	gid_t gid;
	int kernel_locks;     /* locks are the kernel's: no GETLK/SETLK arrive */
	pthread_mutex_t mu;   /* guards the node list and the open list */
	fs_node *nodes;
	fs_open open;         /* sentinel of the list of open handles */
} fs_state;

/* Register the mount as the store's observer (fs/notify.c), and undo it
 * before the session goes away. */
struct fuse_session;
void fs_notify_attach(fs_state *fs, struct fuse_session *se);
void fs_notify_detach(fs_state *fs);

static inline void fs_open_link(fs_state *fs, fs_open *o)
{
	pthread_mutex_lock(&fs->mu);
	o->prev = &fs->open;
	o->next = fs->open.next;
	fs->open.next->prev = o;
	fs->open.next = o;
	pthread_mutex_unlock(&fs->mu);
}

static inline void fs_open_unlink(fs_state *fs, fs_open *o)
{
	pthread_mutex_lock(&fs->mu);
	o->prev->next = o->next;
	o->next->prev = o->prev;
	pthread_mutex_unlock(&fs->mu);
}

static inline void fs_handle_free(fs_handle *h)
{
	if (h == NULL)
		return;
	backing_unref(h->b);
	free(h);
}

static inline void fs_dirbuf_free(fs_dirbuf *d)
{
	free(d->buf);
	free(d);
}

/* fs_run's side of fs_control (control.c): enter returns 1 when a stop
 * was requested before the loop started (then no loop runs, no leave). */
struct fuse_session;
int fs_control_enter(fs_control *c, struct fuse_session *se);
void fs_control_leave(fs_control *c);

#endif
