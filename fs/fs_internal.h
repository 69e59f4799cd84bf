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
		 NODE_SHM = DBF_SHM, NODE_POS, NODE_PRIMARY, NODE_LAG, NODE_FILE };

/* Files whose content ltxfs makes up (no backing file, no database for
 * .primary and .lag). */
static inline int node_is_virtual(enum node_kind k)
{
	return k >= NODE_POS && k <= NODE_LAG;
}

/*
 * One inode.  Its address is its FUSE inode number.
 *   - a database's file: (database, kind); lives until unmount;
 *   - .primary and .lag: no database; part of fs_state;
 *   - NODE_FILE, a plain file (db/names.h: super-journals, SQLite's
 *     temporary files) in data.dir/files/: no database; counted in the
 *     kernel's lookups and freed when the kernel forgets it.
 */
typedef struct fs_node {
	database *db;
	enum node_kind kind;
	struct fs_node *next;     /* hash chain (fs/nodes.c) */
	char *name;               /* NODE_FILE: its name */
	uint64_t nlookup;         /* NODE_FILE: the kernel's references */
	int in_table;             /* NODE_FILE: in fs->files (reachable by name),
				     else in fs->orphans (unlinked) */
	lock_table locks;         /* NODE_FILE: POSIX locks (under fs->mu) */
} fs_node;

/* Directories to sync at the next FSYNCDIR (fs/nodes.c). */
typedef struct fs_dir_pending {
	database **dbs;           /* databases whose files were created or removed */
	size_t n, cap;
	int plain;                /* a plain file was created or removed */
	int all;                  /* dbs[] could not grow: sync every database */
} fs_dir_pending;

/* A hash table of nodes (fs/nodes.c). */
typedef struct fs_node_table {
	fs_node **slot;
	size_t cap, n;
} fs_node_table;

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
	int built;      /* the listing was made (at the first READDIR) */
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
	pthread_mutex_t mu;   /* guards the node tables, plain files' locks, the open list */
	fs_node_table nodes;  /* database nodes by (database, kind) */
	fs_node_table files;  /* plain-file nodes by name */
	fs_node_table orphans;  /* plain-file nodes unlinked, not yet forgotten */
	int files_dirfd;      /* data.dir/files */
	fs_dir_pending dir_pending;   /* under mu */
	fs_open open;         /* sentinel of the list of open handles */
} fs_state;

/* ---- nodes (fs/nodes.c) ---------------------------------------------------- */

/* The node for (db, kind), created on first use; NULL when out of memory. */
fs_node *fs_node_get(fs_state *fs, database *db, enum node_kind kind);

/* The node for (db, kind) if it was ever created, else NULL. */
fs_node *fs_node_find(fs_state *fs, database *db, enum node_kind kind);

/* The plain file `name`'s node, created if needed, with one more kernel
 * reference (a lookup or create reply follows); NULL when out of memory. */
fs_node *fs_file_node_ref(fs_state *fs, const char *name);

/* The kernel dropped `n` references (FUSE forget); a plain file's node is
 * freed at zero.  Database nodes are kept. */
void fs_node_forget(fs_state *fs, fs_node *node, uint64_t n);

/* The plain file was removed: its name no longer leads to this node. */
void fs_file_node_unlinked(fs_state *fs, fs_node *node);

/* A file of `db` (NULL: a plain file, when `plain`) was created or removed
 * through the mount: its directory is synced at the next FSYNCDIR. */
void fs_dir_pending_add(fs_state *fs, database *db, int plain);

/* Take the pending set (caller frees *dbs). */
void fs_dir_pending_take(fs_state *fs, database ***dbs, size_t *n, int *plain);

/* Free every node (unmount). */
void fs_nodes_free(fs_state *fs);

/* ---- plain files (fs/plain.c): data.dir/files/NAME, passed through ------- */

struct stat;
int fs_plain_open_dir(fs_state *fs, lx_err *err);          /* sets files_dirfd */
int fs_plain_stat(fs_state *fs, const char *name, struct stat *st);
int fs_plain_open(fs_state *fs, const char *name, int flags, mode_t mode, backing **out);
int fs_plain_unlink(fs_state *fs, const char *name);
/* Calls add(ctx, name) for every plain file; stops at its first error. */
int fs_plain_list(fs_state *fs, int (*add)(void *ctx, const char *name), void *ctx);

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
