/*
 * shipper.c - the "backup" thread: per database, start (epoch marker or
 * snapshot), ship durable log records as l0 objects, snapshot when due,
 * apply retention (shipper.h).
 */
#include "backup/shipper_internal.h"

#include "backup/catalog.h"
#include "base/clock.h"
#include "base/log.h"
#include "db/snapshot.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX (16u << 20)        /* bytes of records in one l0 object */
#define SNAPSHOT_READ_PAGES 256
#define MAINTAIN_EVERY_MS 30000      /* compaction and retention, per database */
#define BACKOFF_MAX_MS 30000
#define OBSERVE_EVERY_MS 10000       /* a replica reads each database's position */
#define OBSERVE_PER_DB_MS 100        /* ... but lists at most 10 databases a second */

/* ---- bookkeeping ------------------------------------------------------------ */

static ship_db *find_db(backup_shipper *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->dbs[i].name, name) == 0)
			return &s->dbs[i];
	return NULL;
}

/* The entry of `db`, made on first sight (mu held). */
static ship_db *entry_of(backup_shipper *s, database *db)
{
	ship_db *d = find_db(s, db->name);
	if (d != NULL) {
		d->db = db;
		return d;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		ship_db *v = realloc(s->dbs, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		s->dbs = v;
		s->cap = cap;
	}
	d = &s->dbs[s->n];
	memset(d, 0, sizeof(*d));
	if ((d->name = strdup(db->name)) == NULL)
		return NULL;
	d->db = db;
	bk_codec_dir(s->o.codec, db->name, d->dir);
	s->n++;
	return d;
}

/* Status readers see `started` under mu; only the backup thread sets it. */
static void set_started(backup_shipper *s, ship_db *d, int started)
{
	pthread_mutex_lock(&s->mu);
	d->started = started;
	pthread_mutex_unlock(&s->mu);
}

static uint64_t lease_epoch_of(store *st)
{
	uint64_t e;
	pthread_mutex_lock(&st->mu);
	e = st->opt.lease_epoch;
	pthread_mutex_unlock(&st->mu);
	return e;
}

/* A failure of database d: remembered for status, logged once per change,
 * retried with backoff. */
static void failed(backup_shipper *s, ship_db *d, const lx_err *err)
{
	int64_t now = lx_mono_ms();
	pthread_mutex_lock(&s->mu);
	if (strcmp(d->error, err->msg) != 0)
		lx_error(d->name, "backup: %s", err->msg);
	snprintf(d->error, sizeof(d->error), "%s", err->msg);
	s->totals.upload_errors++;
	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 1000;
	if (d->backoff_ms > BACKOFF_MAX_MS)
		d->backoff_ms = BACKOFF_MAX_MS;
	d->retry_at_ms = now + d->backoff_ms;
	pthread_mutex_unlock(&s->mu);
}

static void succeeded(backup_shipper *s, ship_db *d)
{
	pthread_mutex_lock(&s->mu);
	if (d->error[0] != '\0')
		lx_info(d->name, "backup: working again");
	d->error[0] = '\0';
	d->backoff_ms = 0;
	d->retry_at_ms = 0;
	pthread_mutex_unlock(&s->mu);
}

/* ---- storage calls --------------------------------------------------------- */

/* Fencing: every upload and delete is made only while the database takes
 * writes, i.e. while this node holds the lease within its deadline. */
int ship_still_primary(ship_db *d, lx_err *err)
{
	if (db_writes_refused(d->db))
		return lx_err_set(err, EPERM, "no longer the primary: shipping stops");
	return 0;
}

int ship_put(backup_shipper *s, ship_db *d, const char *rel, const uint8_t *buf,
	     size_t len, lx_err *err)
{
	char key[BK_DIR_MAX + BK_KEY_MAX];
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	int rc;
	snprintf(key, sizeof(key), "%s%s", d->dir, rel);
	rc = bk_codec_seal(s->o.codec, key, buf, len, &sealed, &sealed_len, err);
	if (rc == 0 && (rc = ship_still_primary(d, err)) == 0)
		rc = backup_store_put(s->st, key, sealed, sealed_len, err);
	if (rc == 0) {
		pthread_mutex_lock(&s->mu);
		s->totals.objects_uploaded++;
		s->totals.bytes_uploaded += sealed_len;
		pthread_mutex_unlock(&s->mu);
	}
	free(sealed);
	return rc;
}

/* ---- snapshots --------------------------------------------------------------- */

int membuf_write(void *ctx, const void *buf, size_t len)
{
	membuf *m = ctx;
	if (len == 0)
		return 0;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 1 << 20;
		while (cap < m->len + len)
			cap *= 2;
		uint8_t *p = realloc(m->p, cap);
		if (p == NULL)
			return -ENOMEM;
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

/* Encode the image of `snap` (header h, checksum post) as one LTX file. */
static int encode_snapshot(db_snapshot *snap, const ltx_header *h, uint64_t post, membuf *m,
			   lx_err *err)
{
	ltx_encoder enc;
	uint32_t pgnos[SNAPSHOT_READ_PAGES];
	uint8_t *pages = malloc((size_t)SNAPSHOT_READ_PAGES * h->page_size);
	int rc, got;
	if (pages == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = ltx_encoder_begin(&enc, h, membuf_write, m, err);
	while (rc == 0 && (got = db_snapshot_read(snap, pages, pgnos, SNAPSHOT_READ_PAGES, err)) > 0)
		for (int i = 0; i < got && rc == 0; i++)
			rc = ltx_encoder_page(&enc, pgnos[i], pages + (size_t)i * h->page_size, 0,
					      err);
	if (rc == 0 && got < 0)
		rc = got;
	if (rc == 0)
		rc = ltx_encoder_finish(&enc, post, NULL, err);
	ltx_encoder_free(&enc);
	free(pages);
	return rc;
}

/*
 * Upload a snapshot of d at its current position; with `marker` first
 * the epoch marker at that position (a start that could not continue the
 * stored history).  -ENOENT: the database has no pages (nothing to keep).
 */
static int ship_snapshot(backup_shipper *s, ship_db *d, int marker, lx_err *err)
{
	char rel[BK_KEY_MAX];
	db_snapshot *snap;
	ltx_header h;
	uint64_t post;
	membuf m = { 0 };
	int rc = db_snapshot_begin(d->db, &snap, &h, &post, err);
	if (rc < 0)
		return rc;
	rc = db_sync_log(d->db, err);   /* the image's TXID must survive a crash */
	if (rc == 0)
		rc = encode_snapshot(snap, &h, post, &m, err);
	db_snapshot_end(snap);
	if (rc == 0 && marker) {
		bk_marker_key(rel, d->epoch, h.max_txid, bk_codec_checksum(s->o.codec, post));
		rc = ship_put(s, d, rel, (const uint8_t *)"", 0, err);
	}
	if (rc == 0) {
		bk_object_key(rel, BK_LEVEL_SNAPSHOT, d->epoch, 1, h.max_txid, 0,
			      bk_codec_checksum(s->o.codec, post), h.timestamp_ms);
		rc = ship_put(s, d, rel, m.p, m.len, err);
	}
	free(m.p);
	if (rc < 0)
		return lx_err_wrap(err, "snapshot at TXID %" PRIu64, h.max_txid);
	pthread_mutex_lock(&s->mu);
	d->txid = h.max_txid;
	d->checksum = post;
	d->snapshot_ms = d->shipped_ms = lx_wall_ms();
	s->totals.snapshots++;
	pthread_mutex_unlock(&s->mu);
	lx_info(d->name, "backup: snapshot at TXID %" PRIu64 " (%zu bytes, epoch %" PRIu64 ")",
		h.max_txid, m.len, d->epoch);
	return 0;
}

/* ---- starting -------------------------------------------------------------- */

/* The newest position of the stored chain that is on d's own history. */
static int common_position(backup_shipper *s, ship_db *d, const bk_catalog *c,
			   uint64_t *txid, uint64_t *checksum)
{
	bk_position *chain;
	size_t n;
	int found = 0;
	if (bk_catalog_chain(c, &chain, &n) < 0)
		return -ENOMEM;
	for (size_t i = n; i-- > 0 && !found;) {
		uint64_t ck;
		if (db_checksum_at(d->db, chain[i].txid, &ck) &&
		    bk_codec_checksum(s->o.codec, ck) == chain[i].post) {
			*txid = chain[i].txid;
			*checksum = ck;
			found = 1;
		}
	}
	free(chain);
	return found;
}

static int64_t newest_snapshot_ms(const bk_catalog *c)
{
	int64_t t = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->obj[i].level == BK_LEVEL_SNAPSHOT && !c->obj[i].superseded &&
		    c->obj[i].time_ms > t)
			t = c->obj[i].time_ms;
	return t;
}

/* With encryption, the sealed name lets `backup list` say which
 * database a hashed directory holds. */
static int put_name(backup_shipper *s, ship_db *d, lx_err *err)
{
	if (!s->o.codec->encrypted)
		return 0;
	return ship_put(s, d, "name", (const uint8_t *)d->name, strlen(d->name), err);
}

static int start_db(backup_shipper *s, ship_db *d, uint64_t lease_epoch, lx_err *err)
{
	bk_catalog c;
	uint64_t txid = 0, ck = 0;
	char rel[BK_KEY_MAX];
	int rc = backup_store_read_catalog(s->st, d->dir, &c, err), common = 0;
	if (rc == 0) {
		uint64_t e = bk_catalog_max_epoch(&c) + 1;
		pthread_mutex_lock(&s->mu);
		d->epoch = e > lease_epoch ? e : lease_epoch;
		pthread_mutex_unlock(&s->mu);
		d->snapshot_ms = newest_snapshot_ms(&c);
		common = common_position(s, d, &c, &txid, &ck);
		if (common < 0)
			rc = lx_err_set(err, ENOMEM, "out of memory");
	}
	bk_catalog_free(&c);
	if (rc == 0)
		rc = put_name(s, d, err);
	if (rc == 0 && common) {
		bk_marker_key(rel, d->epoch, txid, bk_codec_checksum(s->o.codec, ck));
		rc = ship_put(s, d, rel, (const uint8_t *)"", 0, err);
		if (rc == 0) {
			pthread_mutex_lock(&s->mu);
			d->txid = txid;
			d->checksum = ck;
			pthread_mutex_unlock(&s->mu);
			lx_info(d->name, "backup: shipping from TXID %" PRIu64 " (epoch %" PRIu64 ")",
				txid, d->epoch);
		}
	} else if (rc == 0 && db_checksum_at(d->db, 0, &ck) && ck == 0) {
		/* nothing stored, and the log holds the whole history: ship it
		 * all, from TXID 1 (a snapshot of the new database) on */
		bk_marker_key(rel, d->epoch, 0, 0);
		rc = ship_put(s, d, rel, (const uint8_t *)"", 0, err);
		pthread_mutex_lock(&s->mu);
		d->txid = d->checksum = 0;
		pthread_mutex_unlock(&s->mu);
	} else if (rc == 0) {
		rc = ship_snapshot(s, d, 1, err);
	}
	if (rc == 0) {
		set_started(s, d, 1);
		d->lease_epoch = lease_epoch;
	}
	return rc;
}

/* ---- shipping records -------------------------------------------------------- */

static int read_record(const db_send *snd, membuf *m, ltx_header *h, ltx_trailer *t,
		       lx_err *err)
{
	size_t at = m->len;
	int rc;
	if (m->len + snd->length > m->cap) {
		uint8_t *p = realloc(m->p, m->len + snd->length);
		if (p == NULL)
			return lx_err_set(err, ENOMEM, "out of memory");
		m->p = p;
		m->cap = m->len + snd->length;
	}
	for (uint64_t got = 0; got < snd->length;) {
		ssize_t r = pread(snd->fd, m->p + at + got, snd->length - got,
				  (off_t)(snd->offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return lx_err_sys(err, r < 0 ? errno : EIO, "read of a log record");
		got += (uint64_t)r;
	}
	rc = ltx_verify_buffer(m->p + at, snd->length, h, t, err);
	if (rc == 0)
		m->len += snd->length;
	return rc;
}

/* Upload the durable records after the stored position as one l0 object
 * (up to BATCH_MAX).  *need_snapshot: the position fell off this node's
 * retained history. */
static int ship_records(backup_shipper *s, ship_db *d, uint64_t upto, int *need_snapshot,
			lx_err *err)
{
	membuf m = { 0 };
	ltx_header first = { 0 }, last = { 0 };
	ltx_trailer tail = { 0 };
	uint64_t txid = d->txid, ck = d->checksum;
	char rel[BK_KEY_MAX];
	int rc = 0;
	*need_snapshot = 0;
	while (rc == 0 && txid < upto && m.len < BATCH_MAX) {
		db_send snd;
		ltx_header h;
		ltx_trailer t;
		rc = db_next_record(d->db, txid, ck, &snd, err);
		if (rc < 0)
			break;
		if (snd.kind == SEND_SNAPSHOT) {
			*need_snapshot = m.len == 0;
			break;
		}
		if (snd.kind != SEND_LTX)
			break;
		rc = read_record(&snd, &m, &h, &t, err);
		close(snd.fd);
		if (rc < 0)
			break;
		if (first.min_txid == 0)
			first = h;
		last = h;
		tail = t;
		txid = h.max_txid;
		ck = t.post_checksum;
	}
	if (rc == 0 && m.len > 0) {
		bk_object_key(rel, 0, d->epoch, first.min_txid, last.max_txid,
			      bk_codec_checksum(s->o.codec, first.pre_checksum),
			      bk_codec_checksum(s->o.codec, tail.post_checksum), last.timestamp_ms);
		rc = ship_put(s, d, rel, m.p, m.len, err);
		if (rc < 0)
			lx_err_wrap(err, "TXIDs %" PRIu64 "-%" PRIu64, first.min_txid, last.max_txid);
	}
	free(m.p);
	if (rc == 0 && txid != d->txid) {
		pthread_mutex_lock(&s->mu);
		d->txid = txid;
		d->checksum = ck;
		d->shipped_ms = lx_wall_ms();
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

/* ---- the thread -------------------------------------------------------------- */

/* A replica ships nothing but shows where the backup is: it reads the
 * stored range now and then (at most OBSERVE_PER_DB_MS per database). */
static int observe(backup_shipper *s, ship_db *d, int64_t now, lx_err *err)
{
	bk_catalog c;
	bk_range r;
	int64_t every = (int64_t)s->n * OBSERVE_PER_DB_MS;
	int rc;
	if (now < d->observe_at_ms)
		return 0;
	d->observe_at_ms = now + (every > OBSERVE_EVERY_MS ? every : OBSERVE_EVERY_MS);
	rc = backup_store_read_catalog(s->st, d->dir, &c, err);
	if (rc == 0) {
		int known = bk_catalog_range(&c, &r) == 0;
		pthread_mutex_lock(&s->mu);
		d->txid = known ? r.last_txid : 0;
		d->shipped_ms = known ? r.last_ms : 0;
		d->snapshot_ms = newest_snapshot_ms(&c);
		d->pending_since_ms = 0;
		pthread_mutex_unlock(&s->mu);
	}
	bk_catalog_free(&c);
	return rc;
}

/* One pass over database d. */
static int serve_db(backup_shipper *s, ship_db *d, lx_err *err)
{
	uint64_t lease_epoch = lease_epoch_of(s->o.dbs), txid, ck;
	int64_t now = lx_mono_ms();
	int need_snapshot = 0, rc = 0;

	if (db_writes_refused(d->db)) {        /* a replica, or fenced */
		set_started(s, d, 0);
		return observe(s, d, now, err);
	}
	if (d->started && d->lease_epoch != lease_epoch)
		set_started(s, d, 0);          /* promoted again: a new epoch */
	if (d->retry_at_ms > now)
		return 0;
	db_position(d->db, &txid, &ck);
	if (txid == 0)
		return 0;                      /* nothing committed yet */
	if (!d->started) {
		rc = start_db(s, d, lease_epoch, err);
		if (rc == -ENOENT)                   /* no pages: nothing to keep */
			return 0;
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&s->mu);
	if (d->snapshot_ms == 0)        /* none stored yet: the start is the history */
		d->snapshot_ms = lx_wall_ms();
	if (txid > d->txid && d->pending_since_ms == 0)
		d->pending_since_ms = now;
	pthread_mutex_unlock(&s->mu);
	while (rc == 0 && d->txid < txid && !need_snapshot) {
		uint64_t before = d->txid;
		rc = ship_records(s, d, txid, &need_snapshot, err);
		if (rc == 0 && d->txid == before && !need_snapshot)
			break;         /* nothing to send (a failed or untracked database) */
	}
	if (rc == 0 && (need_snapshot ||
			lx_wall_ms() - d->snapshot_ms >= s->o.snapshot_interval_ms))
		rc = ship_snapshot(s, d, 0, err);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0 && d->txid >= txid) {
		pthread_mutex_lock(&s->mu);
		d->pending_since_ms = 0;
		pthread_mutex_unlock(&s->mu);
	}
	if (rc == 0 && now >= d->maintain_at_ms) {
		int64_t every = MAINTAIN_EVERY_MS;
		if (s->o.retention_ms / 4 < every)
			every = s->o.retention_ms / 4;
		if (s->o.level_interval_ms[1] < every)
			every = s->o.level_interval_ms[1];
		d->maintain_at_ms = now + every;
		rc = ship_maintain(s, d, err);
	}
	return rc;
}

static void one_round(backup_shipper *s)
{
	database **dbs;
	size_t n;
	if (store_list(s->o.dbs, &dbs, &n) < 0)
		return;
	for (size_t i = 0; i < n && !__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE); i++) {
		ship_db *d;
		lx_err err;
		pthread_mutex_lock(&s->mu);
		d = entry_of(s, dbs[i]);
		pthread_mutex_unlock(&s->mu);
		if (d == NULL)
			break;
		if (serve_db(s, d, &err) < 0) {
			if (err.code == EPERM)
				set_started(s, d, 0);
			else if (err.code != EINTR)
				failed(s, d, &err);
		} else {
			succeeded(s, d);
		}
	}
	free(dbs);
}

static void *shipper_main(void *arg)
{
	backup_shipper *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec until;
		pthread_mutex_unlock(&s->mu);
		one_round(s);
		until = lx_mono_deadline((int)s->o.sync_interval_ms);
		pthread_mutex_lock(&s->mu);
		while (!s->stop && pthread_cond_timedwait(&s->cond, &s->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int backup_shipper_start(backup_shipper **out, const backup_shipper_options *o, lx_err *err)
{
	backup_shipper *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int rc;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->o = *o;
	s->o.storage.cancel = &s->cancel;
	rc = backup_store_open(&s->st, &s->o.storage, err);
	if (rc < 0) {
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&s->thread, NULL, shipper_main, s);
	if (rc != 0) {
		backup_shipper_stop(s);
		return lx_err_sys(err, rc, "backup: start the thread");
	}
	s->running = 1;
	*out = s;
	return 0;
}

void backup_shipper_stop(backup_shipper *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	__atomic_store_n(&s->cancel, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->running)
		pthread_join(s->thread, NULL);
	backup_store_close(s->st);
	for (size_t i = 0; i < s->n; i++)
		free(s->dbs[i].name);
	free(s->dbs);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- status ------------------------------------------------------------------ */

static int64_t lag_of(const ship_db *d, int64_t now)
{
	return d->pending_since_ms ? now - d->pending_since_ms : 0;
}

int backup_shipper_db_status(backup_shipper *s, const char *name, backup_db_status *out)
{
	int64_t now = lx_mono_ms();
	ship_db *d;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	d = find_db(s, name);
	if (d != NULL) {
		out->shipping = d->started;
		out->txid = d->txid;
		out->shipped_ms = d->shipped_ms;
		out->lag_ms = lag_of(d, now);
		out->epoch = d->epoch;
		out->snapshot_ms = d->snapshot_ms;
		snprintf(out->error, sizeof(out->error), "%s", d->error);
	}
	pthread_mutex_unlock(&s->mu);
	return d != NULL ? 0 : -ENOENT;
}

void backup_shipper_totals(backup_shipper *s, backup_totals *out)
{
	int64_t now = lx_mono_ms();
	pthread_mutex_lock(&s->mu);
	*out = s->totals;
	out->max_lag_ms = 0;
	for (size_t i = 0; i < s->n; i++)
		if (lag_of(&s->dbs[i], now) > out->max_lag_ms)
			out->max_lag_ms = lag_of(&s->dbs[i], now);
	pthread_mutex_unlock(&s->mu);
}

int backup_shipper_lagging(backup_shipper *s, char *why, size_t cap)
{
	int64_t now = lx_mono_ms();
	int lagging = 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n && !lagging; i++) {
		int64_t lag = lag_of(&s->dbs[i], now);
		if (lag > s->o.max_lag_ms) {
			lagging = 1;
			snprintf(why, cap, "backup of %s is %" PRId64 " ms behind%s%s", s->dbs[i].name,
				 lag, s->dbs[i].error[0] ? ": " : "", s->dbs[i].error);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return lagging;
}
