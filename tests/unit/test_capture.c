/*
 * test_capture.c - commit capture (db/capture.c through db_write and its
 * friends in db/database.h) without FUSE.
 *
 * The bytes are real SQLite's: a recording VFS wraps SQLite's own unix VFS
 * on native files in a temporary directory and writes down, in order,
 * every operation SQLite asks of the database file, its journal and its
 * WAL (open, write, truncate, sync, lock, unlock, shm lock, delete,
 * close).  The trace is then replayed into a database of the layer, call
 * for call as fs/fuse_ops.c forwards them (db_open_file, db_write,
 * db_truncate, db_fsync, db_setlk with the byte ranges of SQLite's unix
 * locks, db_unlink, db_flush and backing_unref at close).
 *
 * What is checked: the TXID advances once per transaction SQLite committed;
 * the log, read back record by record as a replica would get it
 * (db_next_send), verifies and chains, and applied to an empty image gives
 * exactly the native database SQLite left; the position survives a clean
 * close and a reopen (recovery).  A WAL whose last transaction has no
 * complete commit frame (torn before the commit frame, or after its header)
 * captures nothing of it, now or at the next open.  And the lock contract:
 * a *_locked function called without the database's mutex aborts (debug
 * builds).
 */
#include "db/database.h"
#include "db/state.h"
#include "ltx/ltx.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a trace of what SQLite asks of its files ---------------------------- */

enum op_kind { OP_OPEN, OP_WRITE, OP_TRUNCATE, OP_SYNC, OP_LOCK, OP_UNLOCK, OP_SHMLOCK,
	       OP_DELETE, OP_CLOSE };

typedef struct op {
	enum op_kind kind;
	int file;           /* enum db_file */
	int64_t off;        /* WRITE: offset; TRUNCATE: size; (UN)LOCK: level; SHMLOCK: slot */
	int n, flags;       /* SHMLOCK: slots and SQLITE_SHM_* flags */
	uint8_t *data;      /* WRITE */
	size_t len;
} op;

typedef struct trace {
	op *v;
	size_t n, cap;
} trace;

/* The trace being recorded, NULL when none is (the VFS is process-wide). */
static trace *recording;

static void trace_add(int file, enum op_kind kind, int64_t off, const void *data, size_t len)
{
	op *o;
	if (recording == NULL || file < 0)
		return;
	if (recording->n == recording->cap) {
		recording->cap = recording->cap ? recording->cap * 2 : 256;
		recording->v = realloc(recording->v, recording->cap * sizeof(op));
		if (recording->v == NULL)
			abort();
	}
	o = &recording->v[recording->n++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->file = file;
	o->off = off;
	if (len) {
		o->data = malloc(len);
		if (o->data == NULL)
			abort();
		memcpy(o->data, data, len);
		o->len = len;
	}
}

static void trace_free(trace *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].data);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* ---- the recording VFS: SQLite's unix VFS, with every call written down -- */

typedef struct rec_file {
	sqlite3_file base;
	int kind;                 /* enum db_file, or -1: not traced */
	sqlite3_file *real;       /* the unix VFS's file, right after this struct */
} rec_file;

static sqlite3_vfs *real_vfs;

#define REAL(f) (((rec_file *)(f))->real)
#define KIND(f) (((rec_file *)(f))->kind)

static int rec_close(sqlite3_file *f)
{
	trace_add(KIND(f), OP_CLOSE, 0, NULL, 0);
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int rec_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int rec_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	trace_add(KIND(f), OP_WRITE, off, buf, (size_t)n);
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int rec_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	trace_add(KIND(f), OP_TRUNCATE, size, NULL, 0);
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int rec_sync(sqlite3_file *f, int flags)
{
	trace_add(KIND(f), OP_SYNC, 0, NULL, 0);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int rec_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int rec_lock(sqlite3_file *f, int level)
{
	int rc = REAL(f)->pMethods->xLock(REAL(f), level);
	if (rc == SQLITE_OK)
		trace_add(KIND(f), OP_LOCK, level, NULL, 0);
	return rc;
}

static int rec_unlock(sqlite3_file *f, int level)
{
	int rc = REAL(f)->pMethods->xUnlock(REAL(f), level);
	if (rc == SQLITE_OK)
		trace_add(KIND(f), OP_UNLOCK, level, NULL, 0);
	return rc;
}

static int rec_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int rec_file_control(sqlite3_file *f, int opcode, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), opcode, arg);
}

static int rec_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int rec_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int rec_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, out);
}

static int rec_shm_lock(sqlite3_file *f, int slot, int n, int flags)
{
	int rc = REAL(f)->pMethods->xShmLock(REAL(f), slot, n, flags);
	if (rc == SQLITE_OK && recording != NULL) {
		trace_add(DBF_SHM, OP_SHMLOCK, slot, NULL, 0);
		recording->v[recording->n - 1].n = n;
		recording->v[recording->n - 1].flags = flags;
	}
	return rc;
}

static void rec_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int rec_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static int rec_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int rec_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods rec_io = {
	3, rec_close, rec_read, rec_write, rec_truncate, rec_sync, rec_file_size,
	rec_lock, rec_unlock, rec_check_reserved, rec_file_control, rec_sector_size,
	rec_device_characteristics, rec_shm_map, rec_shm_lock, rec_shm_barrier,
	rec_shm_unmap, rec_fetch, rec_unfetch,
};

static int kind_of_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n > 8 && strcmp(name + n - 8, "-journal") == 0)
		return DBF_JOURNAL;
	if (n > 4 && strcmp(name + n - 4, "-wal") == 0)
		return DBF_WAL;
	return -1;
}

static int rec_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	rec_file *r = (rec_file *)f;
	int rc;
	(void)vfs;
	r->real = (sqlite3_file *)(r + 1);
	r->kind = flags & SQLITE_OPEN_MAIN_DB ? DBF_DB : flags & SQLITE_OPEN_MAIN_JOURNAL ?
		  DBF_JOURNAL : flags & SQLITE_OPEN_WAL ? DBF_WAL : -1;
	rc = real_vfs->xOpen(real_vfs, name, r->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		r->base.pMethods = NULL;
		return rc;
	}
	r->base.pMethods = &rec_io;
	trace_add(r->kind, OP_OPEN, 0, NULL, 0);
	return SQLITE_OK;
}

static int rec_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	trace_add(kind_of_name(name), OP_DELETE, 0, NULL, 0);
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int rec_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int rec_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static sqlite3_vfs rec_vfs;

static void rec_vfs_register(void)
{
	if (real_vfs != NULL)
		return;
	real_vfs = sqlite3_vfs_find("unix");
	CHECK(real_vfs != NULL);
	rec_vfs = *real_vfs;
	rec_vfs.zName = "ltxfs-rec";
	rec_vfs.pNext = NULL;
	rec_vfs.szOsFile = (int)sizeof(rec_file) + real_vfs->szOsFile;
	rec_vfs.xOpen = rec_open;
	rec_vfs.xDelete = rec_delete;
	rec_vfs.xAccess = rec_access;
	rec_vfs.xFullPathname = rec_full_pathname;
	CHECK_EQ_INT(SQLITE_OK, sqlite3_vfs_register(&rec_vfs, 0));
}

/* ---- temporary directories ----------------------------------------------- */

typedef struct fixture {
	char root[64];
	char native[128];       /* SQLite's own files */
	char dir[128];          /* the database's directory, as data.dir/dbs/NAME */
} fixture;

static void fixture_init(fixture *f)
{
	char path[160];
	memset(f, 0, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/ltxfs-test-capture-XXXXXX");
	CHECK(mkdtemp(f->root) != NULL);
	snprintf(f->native, sizeof(f->native), "%s/native", f->root);
	CHECK_EQ_INT(0, mkdir(f->native, 0755));
	snprintf(path, sizeof(path), "%s/dbs", f->root);
	CHECK_EQ_INT(0, mkdir(path, 0755));
	snprintf(f->dir, sizeof(f->dir), "%s/dbs/app.db", f->root);
}

/* ---- running SQLite -------------------------------------------------------- */

static void exec(sqlite3 *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		unit_fail(__FILE__, __LINE__, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
}

/*
 * Record `inserts` transactions of SQLite in `journal_mode` on a new native
 * database: a table, then rows large enough to span several pages each.
 * With `keep_open` the recording stops before the connection closes (no
 * checkpoint, the WAL stays as the last commit left it).
 */
static void record(const fixture *fx, const char *journal_mode, int inserts, int keep_open,
		   trace *t)
{
	char path[192], sql[128];
	sqlite3 *c = NULL;
	rec_vfs_register();
	snprintf(path, sizeof(path), "%s/app.db", fx->native);
	recording = t;
	CHECK_EQ_INT(SQLITE_OK, sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
						"ltxfs-rec"));
	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", journal_mode);
	exec(c, sql);
	exec(c, "PRAGMA synchronous=FULL");
	exec(c, "PRAGMA wal_autocheckpoint=0");
	exec(c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
	for (int i = 0; i < inserts; i++)
		exec(c, "INSERT INTO t(v) VALUES (randomblob(3000)), (randomblob(5000))");
	if (keep_open)
		recording = NULL;
	sqlite3_close(c);
	recording = NULL;
}

/* The native database file SQLite left (after its close). */
static uint8_t *read_native(const fixture *fx, size_t *len)
{
	char path[192];
	struct stat st;
	uint8_t *buf;
	int fd;
	snprintf(path, sizeof(path), "%s/app.db", fx->native);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ_INT(0, fstat(fd, &st));
	buf = malloc((size_t)st.st_size + 1);
	CHECK(buf != NULL);
	CHECK_EQ_INT(st.st_size, pread(fd, buf, (size_t)st.st_size, 0));
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* ---- replaying it through the database layer, as the mount does ----------- */

#define OWNER 0x5eedULL        /* the FUSE lock owner of SQLite's connection */

typedef struct replay {
	database *db;
	backing *b[DBF_COUNT];
	int opens[DBF_COUNT];
} replay;

static int setlk(replay *r, enum db_file f, uint64_t start, uint64_t end, enum lock_type type,
		 lx_err *err)
{
	return db_setlk(r->db, f, OWNER, getpid(), start, end, type, err);
}

#define SHARED_LAST (SQLITE_SHARED_FIRST + SQLITE_SHARED_SIZE - 1)

/* SQLite's unix VFS takes its lock levels as these fcntl byte ranges
 * (os_unix.c, unixLock and posixUnlock). */
static int replay_lock(replay *r, int level, lx_err *err)
{
	int rc = 0;
	switch (level) {
	case SQLITE_LOCK_SHARED:
		rc = setlk(r, DBF_DB, SQLITE_PENDING_BYTE, SQLITE_PENDING_BYTE, LK_READ, err);
		if (rc == 0)
			rc = setlk(r, DBF_DB, SQLITE_SHARED_FIRST, SHARED_LAST, LK_READ, err);
		if (rc == 0)
			rc = setlk(r, DBF_DB, SQLITE_PENDING_BYTE, SQLITE_PENDING_BYTE, LK_UNLOCK, err);
		break;
	case SQLITE_LOCK_RESERVED:
		rc = setlk(r, DBF_DB, SQLITE_RESERVED_BYTE, SQLITE_RESERVED_BYTE, LK_WRITE, err);
		break;
	case SQLITE_LOCK_EXCLUSIVE:
		rc = setlk(r, DBF_DB, SQLITE_PENDING_BYTE, SQLITE_PENDING_BYTE, LK_WRITE, err);
		if (rc == 0)
			rc = setlk(r, DBF_DB, SQLITE_SHARED_FIRST, SHARED_LAST, LK_WRITE, err);
		break;
	default:
		break;
	}
	return rc;
}

static int replay_unlock(replay *r, int level, lx_err *err)
{
	int rc = 0;
	if (level == SQLITE_LOCK_SHARED) {
		rc = setlk(r, DBF_DB, SQLITE_SHARED_FIRST, SHARED_LAST, LK_READ, err);
		if (rc == 0)
			rc = setlk(r, DBF_DB, SQLITE_PENDING_BYTE, SQLITE_RESERVED_BYTE, LK_UNLOCK, err);
	} else if (level == SQLITE_LOCK_NONE) {
		rc = setlk(r, DBF_DB, SQLITE_PENDING_BYTE, SHARED_LAST, LK_UNLOCK, err);
	}
	return rc;
}

static int replay_op(replay *r, const op *o, lx_err *err)
{
	enum db_file f = (enum db_file)o->file;
	ssize_t n;
	switch (o->kind) {
	case OP_OPEN:
		if (r->opens[f]++ == 0)
			return db_open_file(r->db, f, O_CREAT, 0644, &r->b[f], err);
		return 0;
	case OP_WRITE:
		n = db_write(r->db, f, r->b[f], o->data, o->len, (off_t)o->off, err);
		if (n >= 0 && (size_t)n != o->len)
			return lx_err_set(err, EIO, "short write");
		return n < 0 ? (int)n : 0;
	case OP_TRUNCATE:
		return db_truncate(r->db, f, r->b[f], (off_t)o->off, err);
	case OP_SYNC:
		return db_fsync(r->db, f, r->b[f], 0, err);
	case OP_LOCK:
		return replay_lock(r, (int)o->off, err);
	case OP_UNLOCK:
		return replay_unlock(r, (int)o->off, err);
	case OP_SHMLOCK:
		return setlk(r, DBF_SHM, SHM_WRITE_LOCK + (uint64_t)o->off,
			     SHM_WRITE_LOCK + (uint64_t)o->off + (uint64_t)o->n - 1,
			     o->flags & SQLITE_SHM_UNLOCK ? LK_UNLOCK :
			     o->flags & SQLITE_SHM_EXCLUSIVE ? LK_WRITE : LK_READ, err);
	case OP_DELETE:
		return db_unlink(r->db, f, err);
	case OP_CLOSE:
		if (r->opens[f] > 0 && --r->opens[f] == 0) {
			int rc = db_flush(r->db, f, OWNER, err);
			backing_unref(r->b[f]);
			r->b[f] = NULL;
			return rc;
		}
		return 0;
	}
	return 0;
}

/* Replay ops [0, upto) of the trace; every call must succeed. */
static void replay_trace(replay *r, const trace *t, size_t upto)
{
	lx_err err;
	for (size_t i = 0; i < upto && i < t->n; i++) {
		int rc = replay_op(r, &t->v[i], &err);
		if (rc < 0) {
			unit_fail(__FILE__, __LINE__, "op %zu (kind %d, file %d): %s", i,
				  t->v[i].kind, t->v[i].file, err.msg);
			return;
		}
	}
}

static void replay_end(replay *r)
{
	for (int f = 0; f < DBF_COUNT; f++)
		backing_unref(r->b[f]);
	memset(r->b, 0, sizeof(r->b));
	memset(r->opens, 0, sizeof(r->opens));
}

static database *open_db(const fixture *fx)
{
	db_options opt;
	database *db = NULL;
	lx_err err;
	memset(&opt, 0, sizeof(opt));
	opt.node_id = 1;
	opt.lease_epoch = 1;
	if (db_open(&db, "app.db", fx->dir, &opt, &err) < 0)
		unit_fail(__FILE__, __LINE__, "db_open: %s", err.msg);
	return db;
}

/* ---- reading the log back ---------------------------------------------------- */

typedef struct image {
	uint8_t *pages;
	uint32_t page_size, commit;
} image;

static int on_page(void *ctx, uint32_t pgno, const uint8_t *data, uint64_t ck)
{
	image *im = ctx;
	(void)ck;
	if (pgno > im->commit)
		return -EINVAL;
	memcpy(im->pages + (size_t)(pgno - 1) * im->page_size, data, im->page_size);
	return 0;
}

/*
 * Read the log record by record (db/txlog.h; the test is the only thread),
 * verifying each record (page and file checksums), checking that TXIDs and
 * checksums chain, and applying its pages to `im`.  Returns the number of
 * records; *txid and *ck receive the position after the last.
 */
static uint64_t apply_log(database *db, image *im, uint64_t *txid, uint64_t *ck)
{
	const txlog *log = db->log;
	lx_err err;
	*txid = 0;
	*ck = 0;
	CHECK(log != NULL);
	for (size_t i = 0; log != NULL && i < log->n; i++) {
		const txlog_entry *e = &log->ents[i];
		ltx_header h;
		ltx_trailer tr;
		ltx_decode_cb cb = { im, NULL, on_page, NULL };
		uint8_t *buf = malloc(e->length);
		CHECK(buf != NULL);
		CHECK_EQ_INT(0, txlog_read(log, e, buf, &err));
		CHECK_EQ_INT(0, ltx_verify_buffer(buf, e->length, &h, &tr, &err));
		CHECK_EQ_U64(*txid + 1, h.min_txid);
		CHECK_EQ_U64(h.min_txid, h.max_txid);
		CHECK_EQ_U64(*ck, h.pre_checksum);    /* 0 before a snapshot */
		CHECK_EQ_U64(e->post_checksum, tr.post_checksum);
		CHECK_EQ_U64(1, h.node_id);
		CHECK_EQ_U64(1, h.lease_epoch);
		if (im->page_size == 0)
			im->page_size = h.page_size;
		CHECK_EQ_INT(im->page_size, h.page_size);
		im->pages = realloc(im->pages, (size_t)h.commit * h.page_size);
		CHECK(im->pages != NULL);
		if (h.commit > im->commit)
			memset(im->pages + (size_t)im->commit * h.page_size, 0,
			       (size_t)(h.commit - im->commit) * h.page_size);
		im->commit = h.commit;
		CHECK_EQ_INT(0, ltx_decode_buffer(buf, e->length, &cb, &err));
		free(buf);
		*txid = h.max_txid;
		*ck = tr.post_checksum;
	}
	return log != NULL ? log->n : 0;
}

/* The checksum of a whole database image, computed here, not by the layer. */
static uint64_t image_checksum(const uint8_t *pages, size_t len, uint32_t page_size)
{
	return ltx_checksum_pages(LTX_CHECKSUM_FLAG, 1, pages, (uint32_t)(len / page_size),
				  page_size, NULL);
}

/*
 * The log alone rebuilds exactly the database SQLite left natively, its
 * records chain up to the position the layer reports, and the position
 * survives a clean close and the next open's recovery.
 */
static void check_captured(const fixture *fx, database **dbp, uint64_t want_txns)
{
	image im = { NULL, 0, 0 };
	uint64_t txid, ck, pos_txid, pos_ck;
	size_t native_len;
	uint8_t *native = read_native(fx, &native_len);

	db_position(*dbp, &pos_txid, &pos_ck);
	CHECK_EQ_U64(want_txns, pos_txid);
	CHECK_EQ_U64(want_txns, apply_log(*dbp, &im, &txid, &ck));
	CHECK_EQ_U64(pos_txid, txid);
	CHECK_EQ_U64(pos_ck, ck);
	CHECK_EQ_U64((uint64_t)im.commit * im.page_size, native_len);
	CHECK(im.pages != NULL && memcmp(im.pages, native, native_len) == 0);
	CHECK_EQ_U64(image_checksum(native, native_len, im.page_size), pos_ck);

	db_close(*dbp);
	*dbp = open_db(fx);
	db_position(*dbp, &txid, &ck);
	CHECK_EQ_U64(pos_txid, txid);
	CHECK_EQ_U64(pos_ck, ck);
	free(im.pages);
	free(native);
}

/* ---- tests ------------------------------------------------------------------ */

#define INSERTS 5

/*
 * WAL mode.  Setting journal_mode=WAL on a new file writes page 1 in a
 * rollback transaction (SQLite records the WAL format in the header), so
 * the transactions are: that, CREATE TABLE and the INSERTs in the WAL, then
 * SQLite's checkpoint at close, which is verified against the log and adds
 * no transaction.
 */
static void test_wal_commits_are_captured(void)
{
	fixture fx;
	trace t = { 0 };
	replay r = { 0 };
	fixture_init(&fx);
	record(&fx, "WAL", INSERTS, 0, &t);
	r.db = open_db(&fx);
	replay_trace(&r, &t, t.n);
	replay_end(&r);
	check_captured(&fx, &r.db, 1 + 1 + INSERTS);
	db_close(r.db);
	trace_free(&t);
	unit_remove_tree(fx.root);
}

/* Rollback journal, each way SQLite ends a transaction: the journal is
 * deleted, truncated to 0, or its header zeroed. */
static void test_journal_commits_are_captured(void)
{
	static const char *const modes[] = { "DELETE", "TRUNCATE", "PERSIST" };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		fixture fx;
		trace t = { 0 };
		replay r = { 0 };
		fixture_init(&fx);
		record(&fx, modes[i], INSERTS, 0, &t);
		r.db = open_db(&fx);
		replay_trace(&r, &t, t.n);
		replay_end(&r);
		check_captured(&fx, &r.db, 1 + INSERTS);
		db_close(r.db);
		trace_free(&t);
		unit_remove_tree(fx.root);
	}
}

/* Index of the write of the last WAL frame header that marks a commit. */
static size_t last_commit_header(const trace *t)
{
	size_t at = t->n;
	for (size_t i = 0; i < t->n; i++) {
		const op *o = &t->v[i];
		if (o->kind == OP_WRITE && o->file == DBF_WAL && o->len == WAL_FRAME_HEADER_SIZE &&
		    o->off >= WAL_HEADER_SIZE &&
		    (o->data[4] | o->data[5] | o->data[6] | o->data[7]) != 0)
			at = i;
	}
	return at;
}

/*
 * A WAL whose last transaction lacks a complete commit frame (SQLite or the
 * machine stopped while writing it): its frames are not a transaction.
 * Nothing of it is captured, neither now nor by the next open's recovery;
 * what was committed before stays.
 */
static void test_torn_wal_captures_nothing(void)
{
	for (int with_header = 0; with_header <= 1; with_header++) {
		fixture fx;
		trace t = { 0 };
		replay r = { 0 };
		uint64_t txid, ck, txid2, ck2;
		size_t commit_at;
		fixture_init(&fx);
		record(&fx, "WAL", 1, 1, &t);
		commit_at = last_commit_header(&t);
		CHECK(commit_at < t.n);
		/* the commit frame's page follows its header */
		CHECK(commit_at + 1 < t.n && t.v[commit_at + 1].kind == OP_WRITE);
		r.db = open_db(&fx);
		replay_trace(&r, &t, commit_at + (size_t)with_header);
		db_position(r.db, &txid, &ck);
		CHECK_EQ_U64(2, txid);       /* page 1 in WAL format, CREATE TABLE */

		replay_end(&r);
		db_close(r.db);
		r.db = open_db(&fx);
		db_position(r.db, &txid2, &ck2);
		CHECK_EQ_U64(txid, txid2);
		CHECK_EQ_U64(ck, ck2);

		/* The same trace, complete, commits the INSERT. */
		db_close(r.db);
		unit_remove_tree(fx.dir);
		r.db = open_db(&fx);
		replay_trace(&r, &t, commit_at + 2);
		db_position(r.db, &txid, &ck);
		CHECK_EQ_U64(3, txid);
		replay_end(&r);
		db_close(r.db);
		trace_free(&t);
		unit_remove_tree(fx.root);
	}
}

/*
 * The checked lock contract: a *_locked function called without the
 * database's mutex aborts in debug builds, naming itself; with the mutex
 * held it runs.
 */
static void test_lock_contract_is_checked(void)
{
#ifdef NDEBUG
	return;
#else
	fixture fx;
	database *db;
	int status;
	pid_t pid;
	fixture_init(&fx);
	db = open_db(&fx);

	pthread_mutex_lock(&db->mu);
	db_dirty_clear_locked(db);            /* held: fine */
	pthread_mutex_unlock(&db->mu);

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		signal(SIGABRT, SIG_DFL);
		db_dirty_clear_locked(db);    /* not held: must abort */
		_exit(0);
	}
	CHECK_EQ_INT(pid, waitpid(pid, &status, 0));
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	db_close(db);
	unit_remove_tree(fx.root);
#endif
}

UNIT_TESTS(
	TEST(test_wal_commits_are_captured),
	TEST(test_journal_commits_are_captured),
	TEST(test_torn_wal_captures_nothing),
	TEST(test_lock_contract_is_checked)
)
