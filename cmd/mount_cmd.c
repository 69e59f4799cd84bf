/*
 * mount_cmd.c - `ltxfs mount -config FILE` (see mount_cmd.h).
 *
 * Threads: the main thread runs the FUSE session loop (fs_run), which
 * starts libfuse's worker threads; signal handling is libfuse's (SIGINT,
 * SIGTERM and SIGHUP end the loop).  Nothing else runs yet.
 */
#include "cmd/mount_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "cmd/config.h"
#include "db/store.h"
#include "fs/fs.h"

static const char usage[] = "usage: ltxfs mount -config FILE\n";

static void log_ready(void *ctx)
{
	const char *mnt = ctx;
	lx_info("ltxfs", "ready: serving databases at %s", mnt);
}

static uint64_t random_node_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = 1;
	return id;
}

static int run(const ltxfs_config *c)
{
	db_options dopt;
	fs_options fopt;
	store *st;
	lx_err err;
	int rc;

	lx_log_set_level(c->log.level);
	memset(&dopt, 0, sizeof(dopt));
	dopt.node_id = c->lease.node_id ? c->lease.node_id : random_node_id();
	dopt.lease_epoch = 1;   /* static lease: one epoch for the node's life */
	dopt.sync = c->data.sync == CONFIG_SYNC_ALWAYS ? DB_SYNC_ALWAYS : DB_SYNC_APP;
	rc = store_open(&st, c->data.dir, &dopt, &err);
	if (rc < 0) {
		lx_error("ltxfs", "%s", err.msg);
		return 1;
	}
	memset(&fopt, 0, sizeof(fopt));
	fopt.mountpoint = c->fuse.dir;
	fopt.debug = c->fuse.debug;
	fopt.allow_other = c->fuse.allow_other;
	fopt.kernel_locks = c->fuse.locks == CONFIG_LOCKS_KERNEL;
	rc = fs_run(st, &fopt, log_ready, (void *)fopt.mountpoint, &err);
	if (rc < 0)
		lx_error("ltxfs", "%s", err.msg);
	store_close(st);
	lx_info("ltxfs", "stopped");
	return rc < 0 ? 1 : 0;
}

int cmd_mount(int argc, char **argv)
{
	ltxfs_config c;
	lx_err err;
	const char *path = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			path = argv[++i];
		else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (path == NULL) {
		fputs(usage, stderr);
		return 2;
	}
	config_init_defaults(&c);
	if (config_load_file(&c, path, &err) < 0) {
		fprintf(stderr, "ltxfs: %s\n", err.msg);
		config_free(&c);
		return 1;
	}
	rc = run(&c);
	config_free(&c);
	return rc;
}
