/*
 * mount_cmd.c - `ltxfs mount -config FILE` (see mount_cmd.h).
 *
 * Threads: the main thread runs the FUSE session loop (fs_run), which
 * starts libfuse's worker threads; signal handling is libfuse's (SIGINT,
 * SIGTERM and SIGHUP end the loop).  The store runs the log syncer thread
 * (db/syncer.h) and the HTTP API its own polling thread
 * (replica/http_server.h).
 */
#include "cmd/mount_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "cmd/config.h"
#include "db/store.h"
#include "fs/fs.h"
#include "replica/http_server.h"

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

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The static lease of this build: this node is the primary. */
static node_status node_of(const ltxfs_config *c, uint64_t node_id)
{
	node_status n;
	memset(&n, 0, sizeof(n));
	n.node_id = node_id;
	n.hostname = c->lease.hostname;
	n.role = "primary";
	n.primary = c->lease.hostname;
	n.lease_type = "static";
	n.started_ms = wall_ms();
	return n;
}

static int run(const ltxfs_config *c)
{
	db_options dopt;
	fs_options fopt;
	node_status node;
	http_server *http;
	store *st;
	lx_err err;
	int rc;

	lx_log_set_level(c->log.level);
	if (!c->lease.candidate) {
		/* Running anyway would make a writable copy of what the user
		 * means to be a read-only replica: silent divergence. */
		lx_error("ltxfs", "%s: lease.candidate: false makes this node a replica, and this "
			 "build has no replication yet; refusing to start", c->origin);
		return 1;
	}
	memset(&dopt, 0, sizeof(dopt));
	dopt.node_id = c->lease.node_id ? c->lease.node_id : random_node_id();
	dopt.lease_epoch = 1;   /* static lease: one epoch for the node's life */
	dopt.sync = c->data.sync == CONFIG_SYNC_ALWAYS ? DB_SYNC_ALWAYS : DB_SYNC_APP;
	rc = store_open(&st, c->data.dir, &dopt, &err);
	if (rc < 0) {
		lx_error("ltxfs", "%s", err.msg);
		return 1;
	}
	node = node_of(c, dopt.node_id);
	rc = http_server_start(&http, c->http.addr, st, &node, &err);
	if (rc < 0) {
		lx_error("ltxfs", "%s", err.msg);
		store_close(st);
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
	http_server_stop(http);
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
