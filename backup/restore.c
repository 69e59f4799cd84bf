/*
 * restore.c - downloading a restore plan in parallel, applying it with
 * every checksum verified, checking the result with SQLite; and listing
 * what a backup holds (restore.h).
 */
#include "backup/restore.h"

#include "base/bytes.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- downloading ------------------------------------------------------------- */

typedef struct download {
	const backup_restore_options *o;
	const char *dir;               /* the database's directory in the storage */
	const bk_plan *plan;
	uint8_t **data;                /* [step]: plain bytes */
	size_t *len;
	size_t next;                   /* under mu: the next step to fetch */
	int rc;                        /* under mu: the first failure */
	lx_err err;
	uint64_t bytes;
	pthread_mutex_t mu;
} download;

static int fetch_one(download *d, backup_store *st, size_t i, lx_err *err)
{
	char key[BK_DIR_MAX + BK_KEY_MAX];
	uint8_t *obj;
	size_t len;
	int rc;
	snprintf(key, sizeof(key), "%s%s", d->dir, d->plan->step[i]->key);
	rc = backup_store_get(st, key, &obj, &len, err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&d->mu);
	d->bytes += len;
	pthread_mutex_unlock(&d->mu);
	rc = bk_codec_open_owned(d->o->codec, key, &obj, &len, err);
	d->data[i] = obj;
	d->len[i] = len;
	return rc;
}

static void *download_main(void *arg)
{
	download *d = arg;
	backup_store *st;
	lx_err err;
	int rc = backup_store_open(&st, &d->o->storage, &err);
	for (;;) {
		size_t i;
		pthread_mutex_lock(&d->mu);
		if (rc < 0 && d->rc == 0) {
			d->rc = rc;
			d->err = err;
		}
		i = d->next++;
		if (d->rc < 0 || i >= d->plan->n) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		pthread_mutex_unlock(&d->mu);
		rc = fetch_one(d, st, i, &err);
	}
	backup_store_close(st);
	return NULL;
}

static int download_plan(download *d, lx_err *err)
{
	int n = d->o->parallel > 0 ? d->o->parallel : RESTORE_PARALLEL_DEFAULT;
	pthread_t th[64];
	int started = 0;
	if (n > 64)
		n = 64;
	if ((size_t)n > d->plan->n)
		n = (int)d->plan->n;
	pthread_mutex_init(&d->mu, NULL);
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[started], NULL, download_main, d) == 0)
			started++;
	if (started == 0)
		download_main(d);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&d->mu);
	if (d->rc < 0)
		*err = d->err;
	return d->rc;
}

/* ---- applying ---------------------------------------------------------------- */

#define RUN_PAGES 256

typedef struct image {
	int fd;
	const char *path;
	uint32_t page_size;
	uint32_t pages;                /* the database's size */
	uint64_t *page_ck;             /* [pgno-1] */
	size_t ck_cap;
	uint64_t txid, checksum;
	int64_t time_ms;
	uint64_t applied;              /* LTX files after the snapshot */
	const ltx_header *hdr;         /* of the file being applied */
	lx_err *err;
	/* consecutive pages gathered for one pwritev, pointing into the object
	 * being applied (a pwrite per page made 262,144 system calls per GiB,
	 * and copying them into one buffer cost as much again) */
	const uint8_t *obj;            /* the LTX file being applied */
	size_t obj_len;
	struct iovec run[RUN_PAGES];
	int run_n;
	off_t run_off;
} image;

/* Write the gathered pages. */
static int flush_run(image *im)
{
	struct iovec *v = im->run;
	int n = im->run_n;
	off_t off = im->run_off;
	while (n > 0) {
		ssize_t w = pwritev(im->fd, v, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return lx_err_sys(im->err, errno, "%s: write", im->path);
		off += w;
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {                   /* a short write inside a page */
			v->iov_base = (uint8_t *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	im->run_n = 0;
	return 0;
}

/* Add one page at `off` to the run (flushing it first if not adjacent).
 * Pages outside the object's buffer (none, with one-buffer decoding) are
 * written at once, since the decoder reuses its own buffer. */
static int write_page(image *im, off_t off, const uint8_t *data)
{
	int rc = 0;
	int in_obj = data >= im->obj && data + im->page_size <= im->obj + im->obj_len;
	off_t end = im->run_n ? im->run_off + (off_t)im->run_n * im->page_size : -1;
	if (im->run_n > 0 && (end != off || im->run_n == RUN_PAGES || !in_obj))
		rc = flush_run(im);
	if (rc < 0)
		return rc;
	if (im->run_n == 0)
		im->run_off = off;
	im->run[im->run_n].iov_base = (void *)data;
	im->run[im->run_n].iov_len = im->page_size;
	im->run_n++;
	return in_obj ? 0 : flush_run(im);
}

static int image_grow(image *im, uint32_t pgno)
{
	if (pgno <= im->ck_cap)
		return 0;
	size_t cap = im->ck_cap ? im->ck_cap : 1024;
	while (cap < pgno)
		cap *= 2;
	uint64_t *v = realloc(im->page_ck, cap * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	memset(v + im->ck_cap, 0, (cap - im->ck_cap) * sizeof(*v));
	im->page_ck = v;
	im->ck_cap = cap;
	return 0;
}

static int on_header(void *ctx, const ltx_header *h)
{
	image *im = ctx;
	im->hdr = h;
	if (ltx_header_is_snapshot(h)) {
		if (im->txid != 0)
			return lx_err_set(im->err, EBADMSG, "a snapshot in the middle of the chain");
		im->page_size = h->page_size;
		return 0;
	}
	if (h->min_txid != im->txid + 1 || h->pre_checksum != im->checksum)
		return lx_err_set(im->err, EBADMSG, "TXIDs %" PRIu64 "-%" PRIu64 " do not continue "
				  "TXID %" PRIu64 " (checksum %016" PRIx64 " expected, %016" PRIx64
				  " found): the chain is broken", h->min_txid, h->max_txid, im->txid,
				  im->checksum, h->pre_checksum);
	if (h->page_size != im->page_size)
		return lx_err_set(im->err, ENOTSUP, "TXID %" PRIu64 " changes the page size from "
				  "%u to %u: not supported by restore", h->min_txid, im->page_size,
				  h->page_size);
	return 0;
}

static int on_page(void *ctx, uint32_t pgno, const uint8_t *data, uint64_t ck)
{
	image *im = ctx;
	off_t off = (off_t)(pgno - 1) * im->page_size;
	int rc;
	if (image_grow(im, pgno) < 0)
		return lx_err_set(im->err, ENOMEM, "out of memory");
	rc = write_page(im, off, data);
	if (rc < 0)
		return rc;
	im->checksum = ltx_checksum_update(im->checksum, im->page_ck[pgno - 1], ck);
	im->page_ck[pgno - 1] = ck;
	return 0;
}

static int on_trailer(void *ctx, const ltx_trailer *t)
{
	image *im = ctx;
	const ltx_header *h = im->hdr;
	if (ltx_header_is_snapshot(h))
		im->checksum = t->post_checksum;   /* the decoder verified it against the pages */
	for (size_t p = h->commit; p < im->ck_cap; p++)
		if (im->page_ck[p] != 0) {
			im->checksum = ltx_checksum_update(im->checksum, im->page_ck[p], 0);
			im->page_ck[p] = 0;
		}
	if (im->checksum == 0)
		im->checksum = LTX_CHECKSUM_FLAG;
	if (flush_run(im) < 0)
		return -im->err->code;
	if (ftruncate(im->fd, (off_t)h->commit * im->page_size) < 0)
		return lx_err_sys(im->err, errno, "%s: truncate", im->path);
	if (im->checksum != t->post_checksum)
		return lx_err_set(im->err, EBADMSG, "after TXID %" PRIu64 " the database checksum "
				  "is %016" PRIx64 ", the file says %016" PRIx64, h->max_txid,
				  im->checksum, t->post_checksum);
	im->pages = h->commit;
	im->txid = h->max_txid;
	im->time_ms = h->timestamp_ms;
	im->applied += !ltx_header_is_snapshot(h);
	return 0;
}

/* Apply the LTX files held in one object (an l0 object holds several, one
 * after another), stopping before the first that passes the target. */
static int apply_object(image *im, const uint8_t *buf, size_t len, const bk_target *t,
			const char *key, int *reached)
{
	static const ltx_decode_cb cb_proto = { NULL, on_header, on_page, on_trailer };
	ltx_decode_cb cb = cb_proto;
	cb.ctx = im;
	for (size_t off = 0; off < len && !*reached;) {
		ltx_header h;
		uint64_t size;
		int rc;
		if (ltx_file_at(buf + off, len - off, &h, &size, im->err) < 0)
			return lx_err_wrap(im->err, "%s: damaged at byte %zu", key, off);
		if (h.max_txid > t->txid || h.timestamp_ms > t->time_ms) {
			*reached = 1;
			break;
		}
		im->obj = buf + off;
		im->obj_len = (size_t)size;
		rc = ltx_decode_buffer(buf + off, (size_t)size, &cb, im->err);
		if (rc < 0)
			return lx_err_wrap(im->err, "%s", key);
		off += (size_t)size;
	}
	return 0;
}

/* SQLite's own verdict on the restored file. */
static int integrity_check(const char *path, lx_err *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char verdict[256] = "";
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		snprintf(verdict, sizeof(verdict), "%s", (const char *)sqlite3_column_text(st, 0));
	else if (rc == SQLITE_OK)
		rc = sqlite3_errcode(db);
	if (rc != SQLITE_OK)
		snprintf(verdict, sizeof(verdict), "%s", db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (strcmp(verdict, "ok") != 0)
		return lx_err_set(err, EBADMSG, "%s: PRAGMA integrity_check: %s", path, verdict);
	return 0;
}

/* ---- the whole restore -------------------------------------------------------- */

static int apply_plan(image *im, const bk_plan *plan, download *d, const bk_target *t)
{
	int reached = 0;
	for (size_t i = 0; i < plan->n && !reached; i++) {
		int rc = apply_object(im, d->data[i], d->len[i], t, plan->step[i]->key, &reached);
		if (rc < 0)
			return rc;
	}
	if (im->txid == 0)
		return lx_err_set(im->err, ENOENT, "the backup holds no transaction at or "
				  "before the target");
	if (im->pages == 0)
		return lx_err_set(im->err, ENOENT, "the database was deleted at TXID %" PRIu64
				  ": nothing to restore at that point", im->txid);
	return 0;
}

static int finish_file(image *im, const char *out, lx_err *err)
{
	int rc = 0;
	if (fsync(im->fd) < 0)
		rc = lx_err_sys(err, errno, "%s: fsync", im->path);
	if (rc == 0)
		rc = integrity_check(im->path, err);
	if (rc == 0 && link(im->path, out) < 0)     /* never over an existing file */
		rc = lx_err_sys(err, errno, "%s", out);
	return rc;
}

int backup_restore(const backup_restore_options *o, backup_restore_result *res, lx_err *err)
{
	char dir[BK_DIR_MAX], *tmp = NULL;
	backup_store *st = NULL;
	bk_catalog cat;
	bk_plan plan = { 0 };
	download d;
	image im;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&d, 0, sizeof(d));
	memset(&im, 0, sizeof(im));
	bk_catalog_init(&cat);
	im.fd = -1;
	im.err = err;
	if (access(o->out_path, F_OK) == 0)
		return lx_err_set(err, EEXIST, "%s exists: restore never overwrites a file",
				  o->out_path);
	bk_codec_dir(o->codec, o->name, dir);
	rc = backup_store_open(&st, &o->storage, err);
	if (rc == 0)
		rc = backup_store_read_catalog(st, dir, &cat, err);
	backup_store_close(st);
	if (rc == 0 && cat.n == 0)
		rc = lx_err_set(err, ENOENT, "%s: no backup of database \"%s\"",
				o->storage.url, o->name);
	if (rc == 0)
		rc = bk_catalog_plan(&cat, &o->target, &plan, err);
	if (rc == 0) {
		d.o = o;
		d.dir = dir;
		d.plan = &plan;
		d.data = calloc(plan.n, sizeof(*d.data));
		d.len = calloc(plan.n, sizeof(*d.len));
		if (d.data == NULL || d.len == NULL)
			rc = lx_err_set(err, ENOMEM, "out of memory");
	}
	if (rc == 0)
		rc = download_plan(&d, err);
	if (rc == 0 && asprintf(&tmp, "%s.restoring-%ld", o->out_path, (long)getpid()) < 0)
		rc = lx_err_set(err, ENOMEM, "out of memory");
	if (rc == 0 && (im.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		rc = lx_err_sys(err, errno, "%s", tmp);
	im.path = tmp;
	if (rc == 0)
		rc = apply_plan(&im, &plan, &d, &o->target);
	if (rc == 0)
		rc = finish_file(&im, o->out_path, err);
	if (rc == 0) {
		res->txid = im.txid;
		res->checksum = im.checksum;
		res->time_ms = im.time_ms;
		res->page_size = im.page_size;
		res->pages = im.pages;
		res->objects = plan.n;
		res->bytes = d.bytes;
		res->transactions = im.applied;
		if (o->keep_page_checksums) {
			res->page_ck = im.page_ck;     /* at least `pages` entries */
			im.page_ck = NULL;
		}
	}
	if (im.fd >= 0) {
		close(im.fd);
		unlink(tmp);
	}
	for (size_t i = 0; d.data != NULL && i < plan.n; i++)
		free(d.data[i]);
	free(d.data);
	free(d.len);
	free(im.page_ck);
	free(tmp);
	bk_plan_free(&plan);
	bk_catalog_free(&cat);
	return rc;
}

/* ---- listing ----------------------------------------------------------------- */

static int cmp_info(const void *a, const void *b)
{
	const backup_db_info *x = a, *y = b;
	return strcmp(x->name ? x->name : x->dir, y->name ? y->name : y->dir);
}

/* The name of the database in directory `dir` (encrypted: its sealed "name"). */
static char *name_of(backup_store *st, const bk_codec *codec, const char *dir)
{
	char key[BK_DIR_MAX + 8];
	uint8_t *obj, *plain;
	size_t len, plen;
	char *name;
	if (!codec->encrypted)
		return strndup(dir, strlen(dir) - 1);
	snprintf(key, sizeof(key), "%sname", dir);
	if (backup_store_get(st, key, &obj, &len, NULL) < 0)
		return NULL;
	if (bk_codec_open(codec, key, obj, len, &plain, &plen, NULL) < 0) {
		free(obj);
		return NULL;
	}
	free(obj);
	name = strndup((const char *)plain, plen);
	free(plain);
	return name;
}

static int push_info(backup_db_info **v, size_t *n, size_t *cap, const char *dir)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		backup_db_info *nv = realloc(*v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	if (((*v)[*n].dir = strdup(dir)) == NULL)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Group the listing by database directory and read each one's catalog. */
static int collect(backup_store *st, const bk_codec *codec, const store_entry *e, size_t ne,
		   backup_db_info **out, size_t *n, lx_err *err)
{
	size_t cap = 0;
	for (size_t i = 0; i < ne;) {
		const char *slash = strchr(e[i].key, '/');
		size_t dl = slash ? (size_t)(slash - e[i].key) + 1 : 0, j = i;
		char dir[BK_DIR_MAX];
		bk_catalog c;
		if (dl == 0 || dl >= sizeof(dir)) {
			i++;
			continue;
		}
		snprintf(dir, sizeof(dir), "%.*s", (int)dl, e[i].key);
		bk_catalog_init(&c);
		for (; j < ne && strncmp(e[j].key, dir, dl) == 0; j++)
			if (bk_catalog_add(&c, e[j].key + dl, e[j].size) < 0)
				break;
		bk_catalog_finish(&c);
		if (push_info(out, n, &cap, dir) < 0) {
			bk_catalog_free(&c);
			return lx_err_set(err, ENOMEM, "out of memory");
		}
		backup_db_info *info = &(*out)[*n - 1];
		info->name = name_of(st, codec, dir);
		info->restorable = bk_catalog_range(&c, &info->range) == 0;
		info->bytes = c.bytes;
		info->markers = c.n_mark;
		bk_catalog_free(&c);
		i = j;
	}
	return 0;
}

int backup_list(const backup_store_options *so, const bk_codec *codec, const char *name,
		backup_db_info **out, size_t *n, lx_err *err)
{
	backup_store *st;
	store_entry *e = NULL;
	size_t ne = 0;
	char prefix[BK_DIR_MAX] = "";
	int rc = backup_store_open(&st, so, err);
	*out = NULL;
	*n = 0;
	if (rc < 0)
		return rc;
	if (name != NULL)
		bk_codec_dir(codec, name, prefix);
	rc = backup_store_list(st, prefix, &e, &ne, err);
	if (rc == 0)
		rc = collect(st, codec, e, ne, out, n, err);
	backup_store_entries_free(e, ne);
	backup_store_close(st);
	if (rc < 0) {
		backup_list_free(*out, *n);
		*out = NULL;
		*n = 0;
		return rc;
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_info);
	return 0;
}

void backup_list_free(backup_db_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].dir);
	}
	free(v);
}
