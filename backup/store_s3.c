/*
 * store_s3.c - a backup store in an S3-compatible bucket.  Placeholder
 * until the S3 client (net/s3.h) lands: opening fails with a clear error.
 */
#include "backup/store_internal.h"

#include <errno.h>

static int s3_unavailable(backup_store *s, lx_err *err)
{
	return lx_err_set(err, ENOTSUP, "%s: s3:// storage is not built yet", s->opt.url);
}

const store_ops store_s3_ops = {
	.open = s3_unavailable,
};
