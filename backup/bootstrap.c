/*
 * bootstrap.c - restoring every database into an empty store (bootstrap.h).
 */
#include "backup/bootstrap.h"

#include "backup/restore.h"
#include "base/log.h"
#include "ltx/ltx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Restore database `name` to a file in data.dir, then install it. */
static int bootstrap_one(store *st, const backup_store_options *so, const bk_codec *codec,
			 const char *name, lx_err *err)
{
	backup_restore_options o;
	backup_restore_result r;
	database *db;
	ltx_header h;
	char *tmp;
	int fd, rc;
	rc = store_get_or_create(st, name, &db, err);
	if (rc < 0)
		return rc;
	/* where db_install_snapshot takes its image from */
	if (asprintf(&tmp, "%s/snapshot.tmp", db->dir) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	unlink(tmp);
	memset(&o, 0, sizeof(o));
	o.storage = *so;
	o.codec = codec;
	o.name = name;
	o.target = (bk_target){ UINT64_MAX, INT64_MAX };
	o.out_path = tmp;
	o.keep_page_checksums = 1;
	rc = backup_restore(&o, &r, err);
	fd = rc == 0 ? open(tmp, O_RDWR | O_CLOEXEC) : -1;   /* it becomes the backing file */
	if (rc == 0 && fd < 0)
		rc = lx_err_sys(err, errno, "%s", tmp);
	if (rc == 0) {
		memset(&h, 0, sizeof(h));
		h.page_size = r.page_size;
		h.commit = r.pages;
		h.min_txid = 1;
		h.max_txid = r.txid;
		h.timestamp_ms = r.time_ms;
		rc = db_install_snapshot(db, fd, &h, r.checksum, r.page_ck, err);
		r.page_ck = NULL;               /* taken over */
	}
	free(rc == 0 ? NULL : r.page_ck);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	if (rc == 0)
		lx_info(name, "restored from the backup at TXID %" PRIu64 " (%zu objects)", r.txid,
			r.objects);
	return rc < 0 ? lx_err_wrap(err, "restore %s", name) : 0;
}

int backup_bootstrap(store *st, const backup_store_options *so, const bk_codec *codec,
		     size_t *restored, lx_err *err)
{
	database **dbs;
	backup_db_info *v;
	size_t n, nv;
	int rc;
	*restored = 0;
	if (store_list(st, &dbs, &n) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	free(dbs);
	if (n > 0)
		return 0;                       /* not empty: nothing was lost here */
	rc = backup_list(so, codec, NULL, &v, &nv, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		if (v[i].name == NULL)
			rc = lx_err_set(err, EACCES, "%s: the name of database directory %s cannot "
					"be read (another key?)", so->url, v[i].dir);
		else if (!v[i].restorable)
			lx_warn(v[i].name, "backup: nothing restorable, skipped");
		else if ((rc = bootstrap_one(st, so, codec, v[i].name, err)) == 0)
			(*restored)++;
	}
	backup_list_free(v, nv);
	return rc;
}
