/*
 * diverged.c - a replica told that its history left the primary's
 * (db_report_diverged in database.h).
 *
 * This happens to a former primary whose last transactions never reached
 * the node that took over: they were acknowledged to clients, and the
 * cluster's history no longer holds them.  They are not merged (a merge of
 * two SQLite histories has no meaning at the page level); they are named
 * (database, TXID range, count) in the log and in /status, and their LTX
 * records are kept in a directory next to the database so that an operator
 * can inspect them (`ltxfs ltx dump`) and re-apply what matters by hand.
 * The snapshot that follows replaces the database and its log.
 */
#include "db/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

static int copy_range(int from, uint64_t off, int to, uint64_t len)
{
	loff_t in = (loff_t)off;
	while (len > 0) {
		ssize_t n = copy_file_range(from, &in, to, NULL, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len -= (uint64_t)n;
	}
	return 0;
}

/* One record into dir/<min>-<max>.ltx. */
static int keep_record(database *db, int dirfd, const txlog_entry *e)
{
	char name[64];
	int fd, rc;
	snprintf(name, sizeof(name), "%" PRIu64 "-%" PRIu64 ".ltx", e->hdr.min_txid,
		 e->hdr.max_txid);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	rc = copy_range(db->log->segs[e->seg].fd, e->offset, fd, e->length);
	if (rc == 0 && fsync(fd) < 0)
		rc = -1;
	close(fd);
	return rc;
}

/* Copy the records after `common` into db->dir/<dir>; 0 or -errno. */
static int keep_records_locked(database *db, uint64_t common, const char *dir)
{
	db_assert_locked(db);
	int dirfd, rc = 0;
	if (mkdirat(db->dirfd, dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	dirfd = openat(db->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	for (size_t i = 0; i < db->log->n && rc == 0; i++) {
		const txlog_entry *e = &db->log->ents[i];
		if (e->hdr.max_txid > common && keep_record(db, dirfd, e) < 0)
			rc = -errno;
	}
	if (rc == 0 && (fsync(dirfd) < 0 || fsync(db->dirfd) < 0))
		rc = -errno;
	close(dirfd);
	return rc;
}

static void log_report(const database *db, const db_lost *l, uint64_t txid,
		       const char *primary, int keep_rc)
{
	char where[160];
	if (l->kept[0] && keep_rc == 0)
		snprintf(where, sizeof(where), "their records are kept in %s/%s", db->dir, l->kept);
	else
		snprintf(where, sizeof(where), "their records could not be kept (%s)",
			 l->kept[0] ? strerror(-keep_rc) : "not in the log");
	if (l->from)
		lx_warn(db->name, "LOST: TXIDs %" PRIu64 "..%" PRIu64 " (%" PRIu64 " transactions) "
			"committed on this node are not on the history of the primary %s; the "
			"database is replaced by the primary's; %s", l->from, l->to, l->count,
			primary, where);
	else
		lx_warn(db->name, "LOST: transactions up to TXID %" PRIu64 " committed on this "
			"node are not on the history of the primary %s, which parts from ours "
			"before what either side keeps; the database is replaced by the "
			"primary's; %s", txid, primary, where);
}

void db_report_diverged(database *db, uint64_t common, const db_point *later, size_t n,
			const char *primary)
{
	db_lost l;
	uint64_t txid;
	int keep_rc = -ENOENT;
	lx_err err;
	if (db_lock_files(db, &err) < 0 || db->retired) {
		pthread_mutex_unlock(&db->mu);
		return;
	}
	txid = db->txid;
	/* The primary's positions after `common` that we share, too. */
	for (size_t i = 0; i < n && later[i].txid < txid; i++)
		if (db_on_history_locked(db, later[i].txid, later[i].checksum))
			common = later[i].txid;
	if (common >= txid) {
		pthread_mutex_unlock(&db->mu);
		return;             /* nothing of ours is missing */
	}
	l = db->lost;
	l.from = common ? common + 1 : 0;
	l.to = txid;
	l.count = common ? txid - common : 0;
	l.at_ms = lx_wall_ms();
	l.total += l.count;
	l.events++;
	l.kept[0] = '\0';
	if (db->log != NULL && db->log->n > 0) {
		snprintf(l.kept, sizeof(l.kept), "lost-%" PRIu64 "-%" PRIu64, l.from, l.to);
		keep_rc = keep_records_locked(db, common, l.kept);
	}
	db->lost = l;
	pthread_mutex_unlock(&db->mu);
	log_report(db, &l, txid, primary, keep_rc);
}
