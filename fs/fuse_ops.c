/*
 * fuse_ops.c - one function per FUSE operation, each translating the
 * request into database-layer calls and ending in exactly one fuse_reply_*
 * (see fs.h for the namespace and the caching rules).
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "db/names.h"
#include "fs/fs_internal.h"

#define CACHE_TIMEOUT 86400.0   /* only this mount changes the files */

/*
 * How long the kernel may trust a node's attributes.  On a replica the
 * applier changes the database file's size behind the kernel's back.  It
 * invalidates the attributes, yet under load the kernel was seen answering
 * fstat() from its cache with the size before the change: SQLite then
 * found more pages in the header than in the file (rollback mode) or read
 * pages past a stale end of file as zeros (WAL mode) and reported the
 * database malformed.  So a replica's database is never cached: every
 * fstat() and every read past the cached end asks this daemon.
 */
static int is_replica(const fs_state *fs)
{
	return fs->role.replica != NULL && fs->role.replica(fs->role.ctx);
}

static double attr_timeout(const fs_state *fs, const fs_node *n)
{
	if (node_is_virtual(n->kind) ||
	    ((n->kind == NODE_DB || n->kind == NODE_WAL) && is_replica(fs)))
		return 0;
	return CACHE_TIMEOUT;
}

/*
 * A replica's WAL is appended to behind the kernel's back (db/replica_wal.h)
 * in frames that straddle the kernel's pages, and a page of its cache that
 * held the end of one frame was seen, under load, to hold zeros where the
 * next frame began, however the new bytes were handed to the kernel (stored,
 * invalidated).  So a replica's readers read its WAL from this daemon,
 * uncached: a frame is read once per connection (SQLite caches pages), and
 * a read can never see anything but the file.  Handles opened while the
 * node is primary keep the page cache: there the mount writes every byte.
 */
static int uncached(const fs_state *fs, const fs_node *n)
{
	return node_is_virtual(n->kind) || (n->kind == NODE_WAL && is_replica(fs));
}

/* ---- names and nodes ----------------------------------------------------- */

/* Split "NAME-wal" into "NAME" and NODE_WAL, or say it is a plain file
 * (NODE_FILE; db/names.h).  Returns 0, -ENAMETOOLONG or -EINVAL (why in err). */
static int parse_name(const char *name, char *db, size_t dbsize, enum node_kind *kind,
		      lx_err *err)
{
	enum db_name_kind k;
	int rc = db_name_classify(name, &k, db, dbsize, err);
	if (rc < 0)
		return rc;
	*kind = k == DBN_PLAIN ? NODE_FILE : (enum node_kind)k;   /* same order */
	return 0;
}

static const char *kind_suffix(enum node_kind k)
{
	return db_name_suffix((enum db_name_kind)k);
}

static fs_node *node_of(fuse_ino_t ino)
{
	return (fs_node *)(uintptr_t)ino;
}

static fs_node *node_get(fs_state *fs, database *db, enum node_kind kind)
{
	return fs_node_get(fs, db, kind);
}

/* The content of a virtual file into buf; its length, or -ENOENT. */
static int virtual_content(fs_state *fs, const fs_node *n, char *buf, size_t cap)
{
	uint64_t txid, ck;
	int64_t lag;
	char host[256];
	switch (n->kind) {
	case NODE_POS:
		if (!db_file_exists(n->db, DBF_DB))
			return -ENOENT;
		db_position(n->db, &txid, &ck);
		return snprintf(buf, cap, "%016" PRIx64 "/%016" PRIx64 "\n", txid, ck);
	case NODE_PRIMARY:
		if (fs->role.primary == NULL || fs->role.primary(fs->role.ctx, host, sizeof(host)) < 0)
			return -ENOENT;
		return snprintf(buf, cap, "%s\n", host);
	case NODE_LAG:
		lag = fs->role.lag_ms ? fs->role.lag_ms(fs->role.ctx) : 0;
		return snprintf(buf, cap, "%+010d\n", lag > INT32_MAX ? INT32_MAX : (int)lag);
	default:
		return -EINVAL;
	}
}

static int node_exists(fs_state *fs, const fs_node *n)
{
	char buf[300];
	struct stat st;
	if (n->kind == NODE_FILE)
		return n->in_table && fs_plain_stat(fs, n->name, &st) == 0;
	if (node_is_virtual(n->kind))
		return virtual_content(fs, n, buf, sizeof(buf)) >= 0;
	return db_file_exists(n->db, (enum db_file)n->kind);
}

static void fill_attr(const fs_node *n, const struct stat *bst, struct stat *st)
{
	if (st != bst)
		*st = *bst;
	st->st_ino = (ino_t)(uintptr_t)n;
	st->st_nlink = 1;
}

static int node_attr(fs_state *fs, fs_node *n, struct stat *st)
{
	struct stat b;
	int rc;
	if (node_is_virtual(n->kind)) {
		char buf[300];
		int len = virtual_content(fs, n, buf, sizeof(buf));
		if (len < 0)
			return len;
		memset(st, 0, sizeof(*st));
		st->st_ino = (ino_t)(uintptr_t)n;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = len;
		st->st_uid = fs->uid;
		st->st_gid = fs->gid;
		clock_gettime(CLOCK_REALTIME, &st->st_mtim);
		st->st_ctim = st->st_atim = st->st_mtim;
		return 0;
	}
	if (n->kind == NODE_FILE)
		rc = n->in_table ? fs_plain_stat(fs, n->name, &b) : -ENOENT;
	else
		rc = db_stat_file(n->db, (enum db_file)n->kind, &b);
	if (rc < 0)
		return rc;
	fill_attr(n, &b, st);
	return 0;
}

static void reply_entry(fuse_req_t req, fs_state *fs, fs_node *n)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	if (node_attr(fs, n, &e.attr) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = (fuse_ino_t)(uintptr_t)n;
	e.attr_timeout = attr_timeout(fs, n);
	e.entry_timeout = node_is_virtual(n->kind) && n->kind != NODE_POS ? 0 : CACHE_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void reply_negative(fuse_req_t req)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.entry_timeout = CACHE_TIMEOUT;   /* ino 0: cached "does not exist" */
	fuse_reply_entry(req, &e);
}

/* Log an error that reaches the application through an errno.  Not a write
 * a read-only node refused: that is the node's role, logged once where the
 * role changed, and a client retrying would flood the log.  Nor a commit
 * synchronous replication refused (ENOTCONN): replica/sync_commit.c logs
 * when the replicas went out of sync and counts each refusal. */
static int report(const fs_node *n, const lx_err *err, int rc)
{
	if (rc == -EROFS && n != NULL && n->db != NULL && db_writes_refused(n->db))
		return EROFS;
	if (rc == -ENOTCONN)
		return ENOTCONN;
	if (rc < 0 && rc != -ENOENT && rc != -EAGAIN && rc != -EEXIST)
		lx_warn(n && n->db ? n->db->name : "fuse", "%s",
			err->msg[0] ? err->msg : strerror(-rc));
	return -rc;
}

/* ---- lookup and attributes ------------------------------------------------ */

/* A plain file: its node holds one more kernel reference per entry reply. */
static void lookup_plain(fuse_req_t req, fs_state *fs, const char *name)
{
	struct fuse_entry_param e;
	fs_node *n;
	memset(&e, 0, sizeof(e));
	if (fs_plain_stat(fs, name, &e.attr) < 0) {
		reply_negative(req);
		return;
	}
	n = fs_file_node_ref(fs, name);
	if (n == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fill_attr(n, &e.attr, &e.attr);
	e.ino = (fuse_ino_t)(uintptr_t)n;
	e.attr_timeout = CACHE_TIMEOUT;
	e.entry_timeout = CACHE_TIMEOUT;
	if (fuse_reply_entry(req, &e) != 0)
		fs_node_forget(fs, n, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_state *fs = fuse_req_userdata(req);
	char dbname[256];
	enum node_kind kind;
	database *db;
	fs_node *n;
	lx_err err;
	int rc;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strcmp(name, ".primary") == 0 || strcmp(name, ".lag") == 0) {
		n = name[1] == 'p' ? &fs->primary_node : &fs->lag_node;
		if (node_exists(fs, n))
			reply_entry(req, fs, n);
		else
			fuse_reply_err(req, ENOENT);   /* not cached: it comes and goes */
		return;
	}
	rc = parse_name(name, dbname, sizeof(dbname), &kind, &err);
	if (rc == -ENAMETOOLONG) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (rc == 0 && kind == NODE_FILE) {
		lookup_plain(req, fs, name);
		return;
	}
	if (rc < 0 || (db = store_find(fs->store, dbname)) == NULL) {
		reply_negative(req);
		return;
	}
	n = node_get(fs, db, kind);
	if (n == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!node_exists(fs, n)) {
		reply_negative(req);
		return;
	}
	reply_entry(req, fs, n);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_state *fs = fuse_req_userdata(req);
	struct stat st;
	int rc;
	if (ino == FUSE_ROOT_ID) {
		memset(&st, 0, sizeof(st));
		st.st_ino = FUSE_ROOT_ID;
		st.st_mode = S_IFDIR | 0755;
		st.st_nlink = 2;
		st.st_uid = fs->uid;
		st.st_gid = fs->gid;
		fuse_reply_attr(req, &st, 1.0);
		return;
	}
	if (node_of(ino)->kind == NODE_FILE && fi != NULL) {
		/* also after it was unlinked */
		struct stat b;
		rc = fstat(((fs_handle *)(uintptr_t)fi->fh)->b->fd, &b) < 0 ? -errno : 0;
		if (rc == 0)
			fill_attr(node_of(ino), &b, &st);
	} else {
		rc = node_attr(fs, node_of(ino), &st);
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, attr_timeout(fs, node_of(ino)));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	fs_node *n = node_of(ino);
	backing *b = NULL;
	lx_err err;
	int rc = 0;

	lx_err_clear(&err);
	if (ino == FUSE_ROOT_ID || node_is_virtual(n->kind)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (fi != NULL)
		b = backing_ref(((fs_handle *)(uintptr_t)fi->fh)->b);
	else if (n->kind == NODE_FILE)
		rc = n->in_table ? fs_plain_open(fuse_req_userdata(req), n->name, O_RDWR, 0, &b)
				 : -ENOENT;
	else
		rc = db_open_file(n->db, (enum db_file)n->kind, 0, 0, &b, &err);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE) && n->kind == NODE_FILE &&
	    ftruncate(b->fd, attr->st_size) < 0)
		rc = lx_err_sys(&err, errno, "truncate %s", n->name);
	else if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE) && n->kind != NODE_FILE)
		rc = db_truncate(n->db, (enum db_file)n->kind, b, attr->st_size, &err);
	if (rc == 0 && (to_set & FUSE_SET_ATTR_MODE) && fchmod(b->fd, attr->st_mode & 07777) < 0)
		rc = lx_err_sys(&err, errno, "chmod");
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchown(b->fd, (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
		   (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1) < 0)
		rc = lx_err_sys(&err, errno, "chown");
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
				  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
		if (futimens(b->fd, ts) < 0)
			rc = lx_err_sys(&err, errno, "utimens");
	}
	backing_unref(b);
	if (rc < 0) {
		fuse_reply_err(req, report(n, &err, rc));
		return;
	}
	op_getattr(req, ino, fi);
}

/* ---- open, create, unlink -------------------------------------------------- */

static void reply_open(fuse_req_t req, fs_node *n, backing *b, struct fuse_file_info *fi,
		       int created)
{
	fs_state *fs = fuse_req_userdata(req);
	fs_handle *h = malloc(sizeof(*h));
	if (h == NULL) {
		backing_unref(b);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->node = n;
	h->b = b;
	h->link.is_dir = 0;
	fs_open_link(fs, &h->link);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = uncached(fs, n);
	fi->keep_cache = !fi->direct_io;
	if (created) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		if (node_attr(fs, n, &e.attr) < 0)
			memset(&e.attr, 0, sizeof(e.attr));
		e.ino = (fuse_ino_t)(uintptr_t)n;
		e.attr_timeout = attr_timeout(fs, n);
		e.entry_timeout = CACHE_TIMEOUT;
		if (fuse_reply_create(req, &e, fi) != 0) {
			fs_open_unlink(fs, &h->link);
			fs_handle_free(h);
			fs_node_forget(fs, n, 1);   /* a plain file's reference */
		}
	} else if (fuse_reply_open(req, fi) != 0) {
		fs_open_unlink(fs, &h->link);
		fs_handle_free(h);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_node *n = node_of(ino);
	backing *b = NULL;
	lx_err err;
	int rc;

	lx_err_clear(&err);
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (node_is_virtual(n->kind)) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY)
			fuse_reply_err(req, EACCES);
		else
			reply_open(req, n, NULL, fi, 0);
		return;
	}
	if (n->kind == NODE_FILE) {
		rc = n->in_table ? fs_plain_open(fuse_req_userdata(req), n->name,
						 fi->flags & (O_ACCMODE | O_TRUNC), 0, &b) : -ENOENT;
		if (rc < 0)
			fuse_reply_err(req, -rc);
		else
			reply_open(req, n, b, fi, 0);
		return;
	}
	/* A replica: SQLite, refused read-write, opens the database read-only
	 * and reports "attempt to write a readonly database". */
	if ((fi->flags & O_ACCMODE) != O_RDONLY && db_is_readonly(n->db) &&
	    (n->kind == NODE_DB || n->kind == NODE_JOURNAL)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rc = db_open_file(n->db, (enum db_file)n->kind, fi->flags & O_TRUNC, 0, &b, &err);
	if (rc < 0)
		fuse_reply_err(req, report(n, &err, rc));
	else
		reply_open(req, n, b, fi, 0);
}

static void create_plain(fuse_req_t req, fs_state *fs, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	backing *b;
	fs_node *n;
	int rc = fs_plain_open(fs, name, O_CREAT | (fi->flags & (O_ACCMODE | O_EXCL | O_TRUNC)),
			       mode, &b);
	if (rc < 0) {
		if (rc != -EEXIST)
			lx_warn("fuse", "create %s: %s", name, strerror(-rc));
		fuse_reply_err(req, -rc);
		return;
	}
	n = fs_file_node_ref(fs, name);
	if (n == NULL) {
		backing_unref(b);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fs_dir_pending_add(fs, NULL, 1);
	reply_open(req, n, b, fi, 1);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fs_state *fs = fuse_req_userdata(req);
	char dbname[256];
	enum node_kind kind;
	database *db;
	fs_node *n = NULL;
	backing *b;
	lx_err err;
	int rc, created = 0;

	lx_err_clear(&err);
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = parse_name(name, dbname, sizeof(dbname), &kind, &err);
	if (rc == 0 && kind == NODE_POS)
		rc = lx_err_set(&err, EPERM, "-pos files are read-only");
	if (rc < 0) {
		char shown[96];
		db_name_escape(name, strlen(name), shown, sizeof(shown));
		lx_warn("fuse", "cannot create \"%s\": %s", shown, err.msg);
		fuse_reply_err(req, -rc);
		return;
	}
	if (kind == NODE_FILE) {
		create_plain(req, fs, name, mode, fi);
		return;
	}
	rc = store_get_or_create(fs->store, dbname, &db, &err);
	if (rc == 0 && (n = node_get(fs, db, kind)) == NULL)
		rc = lx_err_set(&err, ENOMEM, "out of memory");
	if (rc == 0)
		created = !db_file_exists(db, (enum db_file)kind);
	if (rc == 0)
		rc = db_open_file(db, (enum db_file)kind, O_CREAT | (fi->flags & (O_EXCL | O_TRUNC)),
				  mode & 07777, &b, &err);
	/* The kernel applied the caller's umask to `mode`; the daemon's own
	 * umask must not apply on top (a native create would not). */
	if (rc == 0 && created && fchmod(b->fd, mode & 07777) < 0)
		lx_warn(db->name, "chmod %s: %s", name, strerror(errno));
	if (rc < 0) {
		fuse_reply_err(req, report(NULL, &err, rc));
		return;
	}
	if (created)
		fs_dir_pending_add(fs, db, 0);
	reply_open(req, n, b, fi, 1);
}

static void unlink_plain(fuse_req_t req, fs_state *fs, const char *name)
{
	int rc = fs_plain_unlink(fs, name);
	if (rc == 0)
		fs_dir_pending_add(fs, NULL, 1);
	if (rc == 0) {
		fs_node *n = fs_file_node_ref(fs, name);
		if (n != NULL) {
			fs_file_node_unlinked(fs, n);
			fs_node_forget(fs, n, 1);
		}
	} else if (rc != -ENOENT) {
		lx_warn("fuse", "unlink %s: %s", name, strerror(-rc));
	}
	fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_state *fs = fuse_req_userdata(req);
	char dbname[256];
	enum node_kind kind;
	database *db;
	lx_err err;
	int rc;

	lx_err_clear(&err);
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = parse_name(name, dbname, sizeof(dbname), &kind, &err);
	if (rc == 0 && kind == NODE_FILE) {
		unlink_plain(req, fs, name);
		return;
	}
	if (rc < 0 || (db = store_find(fs->store, dbname)) == NULL) {
		fuse_reply_err(req, rc == -ENAMETOOLONG ? ENAMETOOLONG : ENOENT);
		return;
	}
	if (node_is_virtual(kind)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = db_unlink(db, (enum db_file)kind, &err);
	if (rc == 0)
		fs_dir_pending_add(fs, db, 0);
	if (rc < 0 && rc != -ENOTCONN && !(rc == -EROFS && db_writes_refused(db)))   /* see report() */
		lx_warn(db->name, "unlink %s: %s", name, err.msg);
	/* The last file of a deleted database: give everything back, before
	 * the unlink returns (so `rm` leaves nothing behind). */
	if (rc == 0)
		store_retire(fs->store, db);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
	(void)ino;
	fs_open_unlink(fuse_req_userdata(req), &h->link);
	fs_handle_free(h);
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_node *n = node_of(ino);
	lx_err err;
	int rc = 0;
	lx_err_clear(&err);
	if (n->kind == NODE_FILE) {
		fs_state *fs = fuse_req_userdata(req);
		pthread_mutex_lock(&fs->mu);
		lock_table_release_owner(&n->locks, fi->lock_owner);
		pthread_mutex_unlock(&fs->mu);
	} else if (!node_is_virtual(n->kind)) {
		rc = db_flush(n->db, (enum db_file)n->kind, fi->lock_owner, &err);
	}
	fuse_reply_err(req, report(n, &err, rc));
}

/* ---- data ------------------------------------------------------------------ */

static void read_virtual(fuse_req_t req, fs_node *n, size_t size, off_t off)
{
	char buf[300];
	int len = virtual_content(fuse_req_userdata(req), n, buf, sizeof(buf));
	if (len < 0)
		fuse_reply_err(req, -len);
	else if (off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf + off, (size_t)(len - off) < size ? (size_t)(len - off) : size);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	(void)ino;
	if (node_is_virtual(h->node->kind)) {
		read_virtual(req, h->node, size, off);
		return;
	}
	/* Let libfuse splice straight from the backing file. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->b->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
	lx_err err;
	ssize_t n;
	(void)ino;
	lx_err_clear(&err);
	if (node_is_virtual(h->node->kind)) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->node->kind == NODE_FILE) {
		int rc = lx_pwrite_all(h->b->fd, data, size, (uint64_t)off);
		if (rc < 0)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_write(req, size);
		return;
	}
	n = db_write(h->node->db, (enum db_file)h->node->kind, h->b, data, size, off, &err);
	if (n < 0)
		fuse_reply_err(req, report(h->node, &err, (int)n));
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
	lx_err err;
	int rc = 0;
	(void)ino;
	lx_err_clear(&err);
	if (h->node->kind == NODE_FILE && (datasync ? fdatasync(h->b->fd) : fsync(h->b->fd)) < 0)
		rc = lx_err_sys(&err, errno, "fsync %s", h->node->name);
	else if (h->node->kind != NODE_FILE && !node_is_virtual(h->node->kind))
		rc = db_fsync(h->node->db, (enum db_file)h->node->kind, h->b, datasync, &err);
	fuse_reply_err(req, report(h->node, &err, rc));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
	(void)ino;
	if (node_is_virtual(h->node->kind) || mode != 0 ||
	    (h->node->db != NULL && db_is_readonly(h->node->db))) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	fuse_reply_err(req, posix_fallocate(h->b->fd, off, len));
}

/* ---- locks ----------------------------------------------------------------- */

static int flock_range(const struct flock *l, uint64_t *start, uint64_t *end)
{
	if (l->l_start < 0 || l->l_len < 0)
		return -EINVAL;
	*start = (uint64_t)l->l_start;
	*end = l->l_len == 0 ? LK_EOF : (uint64_t)l->l_start + (uint64_t)l->l_len - 1;
	return 0;
}

static enum lock_type flock_type(short t)
{
	return t == F_RDLCK ? LK_READ : t == F_WRLCK ? LK_WRITE : LK_UNLOCK;
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	fs_node *n = node_of(ino);
	lock_range c;
	uint64_t start, end;
	int conflict;
	if (node_is_virtual(n->kind) || flock_range(lock, &start, &end) < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (n->kind == NODE_FILE) {
		fs_state *fs = fuse_req_userdata(req);
		pthread_mutex_lock(&fs->mu);
		conflict = lock_table_conflict(&n->locks, fi->lock_owner, start, end,
					       flock_type(lock->l_type), &c);
		pthread_mutex_unlock(&fs->mu);
	} else {
		conflict = db_getlk(n->db, (enum db_file)n->kind, fi->lock_owner, start, end,
				    flock_type(lock->l_type), &c);
	}
	if (conflict) {
		lock->l_type = c.type == LK_WRITE ? F_WRLCK : F_RDLCK;
		lock->l_whence = SEEK_SET;
		lock->l_start = (off_t)c.start;
		lock->l_len = c.end == LK_EOF ? 0 : (off_t)(c.end - c.start + 1);
		lock->l_pid = c.pid;
	} else {
		lock->l_type = F_UNLCK;
	}
	fuse_reply_lock(req, lock);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	fs_node *n = node_of(ino);
	uint64_t start, end;
	lx_err err;
	int rc;

	lx_err_clear(&err);
	if (node_is_virtual(n->kind) || flock_range(lock, &start, &end) < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	for (;;) {
		if (n->kind == NODE_FILE) {
			fs_state *fs = fuse_req_userdata(req);
			pthread_mutex_lock(&fs->mu);
			rc = lock_table_set(&n->locks, fi->lock_owner, lock->l_pid, start, end,
					    flock_type(lock->l_type));
			pthread_mutex_unlock(&fs->mu);
		} else {
			rc = db_setlk(n->db, (enum db_file)n->kind, fi->lock_owner, lock->l_pid,
				      start, end, flock_type(lock->l_type), &err);
		}
		if (rc != -EAGAIN || !sleep)
			break;
		if (fuse_req_interrupted(req)) {
			rc = -EINTR;
			break;
		}
		usleep(1000);   /* F_SETLKW: SQLite never blocks; tools may */
	}
	fuse_reply_err(req, report(n, &err, rc));
}

/* ---- directory ------------------------------------------------------------- */

static int dirbuf_add(fuse_req_t req, fs_dirbuf *d, const char *name, fuse_ino_t ino,
		      mode_t mode)
{
	struct stat st;
	size_t need;
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = mode;
	need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	if (d->len + need > d->cap) {
		size_t cap = (d->len + need) * 2;
		char *p = realloc(d->buf, cap);
		if (p == NULL)
			return -ENOMEM;
		d->buf = p;
		d->cap = cap;
	}
	fuse_add_direntry(req, d->buf + d->len, d->cap - d->len, name, &st,
			  (off_t)(d->len + need));
	d->len += need;
	return 0;
}

/*
 * NAME-pos is deliberately not listed: it is reachable by name, but tools
 * that copy "NAME*" (backup scripts, SQLite's own tests) must not trip over
 * a read-only virtual file they cannot recreate.
 */
static int list_db(fuse_req_t req, fs_state *fs, fs_dirbuf *d, database *db)
{
	static const enum node_kind kinds[] = { NODE_DB, NODE_JOURNAL, NODE_WAL, NODE_SHM };
	int rc = 0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && rc == 0; k++) {
		char name[300];
		fs_node *n = node_get(fs, db, kinds[k]);
		if (n == NULL)
			return -ENOMEM;
		if (!node_exists(fs, n))
			continue;
		snprintf(name, sizeof(name), "%s%s", db->name, kind_suffix(kinds[k]));
		rc = dirbuf_add(req, d, name, (fuse_ino_t)(uintptr_t)n, S_IFREG);
	}
	return rc;
}

struct list_plain_ctx {
	fuse_req_t req;
	fs_dirbuf *d;
};

/* Plain files are listed with the inode number libfuse uses for "unknown": readdir gives the
 * kernel no reference, a lookup follows. */
static int list_plain(void *ctx, const char *name)
{
	struct list_plain_ctx *lp = ctx;
	return dirbuf_add(lp->req, lp->d, name, 0xffffffffu, S_IFREG);
}

/* The listing of the root: built at the first READDIR, not at OPENDIR,
 * because SQLite opens the directory to fsync it at every rollback-mode
 * commit that creates or removes a journal, and a listing costs
 * O(databases). */
static int build_listing(fuse_req_t req, fs_state *fs, fs_dirbuf *d)
{
	database **dbs;
	size_t n;
	int rc;
	if (store_list(fs->store, &dbs, &n) < 0)
		return -ENOMEM;
	rc = dirbuf_add(req, d, ".", FUSE_ROOT_ID, S_IFDIR);
	if (rc == 0)
		rc = dirbuf_add(req, d, "..", FUSE_ROOT_ID, S_IFDIR);
	/* The primary's listing holds its databases only (.lag is still
	 * there by name); a replica also lists .primary and .lag. */
	if (rc == 0 && is_replica(fs) && node_exists(fs, &fs->primary_node))
		rc = dirbuf_add(req, d, ".primary", (fuse_ino_t)(uintptr_t)&fs->primary_node, S_IFREG);
	if (rc == 0 && is_replica(fs))
		rc = dirbuf_add(req, d, ".lag", (fuse_ino_t)(uintptr_t)&fs->lag_node, S_IFREG);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = list_db(req, fs, d, dbs[i]);
	free(dbs);
	if (rc == 0) {
		struct list_plain_ctx lp = { req, d };
		rc = fs_plain_list(fs, list_plain, &lp);
	}
	d->built = rc == 0;
	return rc;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_state *fs = fuse_req_userdata(req);
	fs_dirbuf *d;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->link.is_dir = 1;
	fs_open_link(fs, &d->link);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		fs_open_unlink(fs, &d->link);
		fs_dirbuf_free(d);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_dirbuf *d = (fs_dirbuf *)(uintptr_t)fi->fh;
	size_t n;
	char *copy;
	int rc;
	(void)ino;
	/* READDIRs of one handle come one at a time (the kernel holds the
	 * directory's lock), so building here needs no lock of its own. */
	if (!d->built) {
		free(d->buf);
		d->buf = NULL;
		d->len = d->cap = 0;
		rc = build_listing(req, fuse_req_userdata(req), d);
		if (rc < 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	if ((size_t)off >= d->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Reply from a private copy: the directory may be released on another
	 * thread as soon as the client has the reply. */
	n = d->len - (size_t)off < size ? d->len - (size_t)off : size;
	copy = malloc(n);
	if (copy == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, d->buf + off, n);
	fuse_reply_buf(req, copy, n);
	free(copy);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_dirbuf *d = (fs_dirbuf *)(uintptr_t)fi->fh;
	(void)ino;
	fs_open_unlink(fuse_req_userdata(req), &d->link);
	fs_dirbuf_free(d);
	fuse_reply_err(req, 0);
}

/* The application syncs the directory after creating or removing files:
 * only the directories of the databases whose files it created or removed
 * since the last sync are synced (fs_dir_pending_add), not every
 * database's, which cost O(databases) at every rollback-mode commit. */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	fs_state *fs = fuse_req_userdata(req);
	database **dbs;
	size_t n;
	lx_err err;
	int rc = 0, plain;
	(void)ino; (void)datasync; (void)fi;
	fs_dir_pending_take(fs, &dbs, &n, &plain);
	for (size_t i = 0; i < n; i++)
		if (db_fsync_dir(dbs[i], &err) < 0 && rc == 0)
			rc = -err.code;
	free(dbs);
	if (plain && fsync(fs->files_dirfd) < 0 && rc == 0)
		rc = -errno;
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	fs_state *fs = fuse_req_userdata(req);
	struct statvfs sv;
	(void)ino;
	if (statvfs(fs->store->data_dir, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void op_unsupported_entry(fuse_req_t req, const char *what)
{
	lx_warn("fuse", "%s is not supported on an ltxfs mount", what);
	fuse_reply_err(req, EPERM);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent; (void)name; (void)mode;
	op_unsupported_entry(req, "mkdir");
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	(void)parent; (void)name; (void)newparent; (void)newname; (void)flags;
	op_unsupported_entry(req, "rename");
}

/* The kernel dropped references to an inode: plain files' nodes go at zero. */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != FUSE_ROOT_ID)
		fs_node_forget(fuse_req_userdata(req), node_of(ino), nlookup);
	fuse_reply_none(req);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	fs_state *fs = userdata;
	/* Only this mount writes the files: never drop the page cache just
	 * because mtime moved, and never buffer writes in the kernel (commit
	 * detection must see every write as it happens). */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
		conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* ltxfs keeps SQLite's locks itself (db/locks.h) unless told to leave
	 * them to the kernel, which saves a round trip per lock request. */
	if (fs->kernel_locks)
		conn->want &= ~(unsigned)FUSE_CAP_POSIX_LOCKS;
	else
		conn->want |= FUSE_CAP_POSIX_LOCKS;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.create = op_create,
	.unlink = op_unlink,
	.release = op_release,
	.flush = op_flush,
	.read = op_read,
	.write = op_write,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.getlk = op_getlk,
	.setlk = op_setlk,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.mkdir = op_mkdir,
	.rename = op_rename,
};
