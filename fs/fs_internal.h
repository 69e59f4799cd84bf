/*
 * fs_internal.h - state shared by the files of the FUSE layer.
 */
#ifndef LTXFS_FS_INTERNAL_H
#define LTXFS_FS_INTERNAL_H

#include <pthread.h>
#include <stdlib.h>
#include <sys/types.h>

#include "db/store.h"

/* Node kinds; the first four equal the database file they stand for. */
enum node_kind { NODE_DB = DBF_DB, NODE_JOURNAL = DBF_JOURNAL, NODE_WAL = DBF_WAL,
		 NODE_SHM = DBF_SHM, NODE_POS };

/* One inode: (database, kind).  Its address is its FUSE inode number;
 * nodes live until unmount. */
typedef struct fs_node {
	database *db;
	enum node_kind kind;
	struct fs_node *next;
} fs_node;

/* An open file: the node and a reference to the backing descriptor. */
typedef struct fs_handle {
	fs_node *node;
	backing *b;     /* NULL for NAME-pos */
} fs_handle;

typedef struct fs_dirbuf {
	char *buf;
	size_t len, cap;
} fs_dirbuf;

/* The per-mount state: libfuse's userdata. */
typedef struct fs_state {
	store *store;
	uid_t uid;
	gid_t gid;
	pthread_mutex_t mu;   /* guards the node list */
	fs_node *nodes;
} fs_state;

static inline void fs_handle_free(fs_handle *h)
{
	if (h == NULL)
		return;
	backing_unref(h->b);
	free(h);
}

#endif
