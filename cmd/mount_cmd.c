/*
 * mount_cmd.c - `ltxfs mount -config FILE` (see mount_cmd.h).
 *
 * Threads: the main thread runs the FUSE session loop (fs_run), which
 * starts libfuse's worker threads; signal handling is libfuse's (SIGINT,
 * SIGTERM and SIGHUP end the loop).  The store runs the log syncer thread
 * (db/syncer.h) and the retention thread (db/store.h); the HTTP API runs
 * libmicrohttpd's threads, one per connection (replica/http_server.h); a
 * replica runs the thread that follows the primary
 * (replica/stream_client.h).
 */
#include "cmd/mount_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "base/clock.h"
#include "base/log.h"
#include "cmd/config.h"
#include "db/store.h"
#include "fs/fs.h"
#include "lease/cluster_id.h"
#include "replica/http_server.h"
#include "replica/stream_client.h"
#include "replica/stream_server.h"

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

/* What the running node is, for the HTTP API and the mount. */
typedef struct node_ctx {
	const ltxfs_config *config;
	stream_hub *hub;              /* the primary's streams, or NULL */
	stream_client *client;        /* a replica's stream, or NULL */
} node_ctx;

/* Static lease: the candidate is the primary, every other node follows
 * the primary named by lease.hostname / lease.advertise-url. */
static node_status node_of(const ltxfs_config *c, uint64_t node_id)
{
	node_status n;
	memset(&n, 0, sizeof(n));
	n.node_id = node_id;
	n.hostname = c->lease.hostname;
	n.role = c->lease.candidate ? "primary" : "replica";
	n.primary = c->lease.hostname;
	n.lease_type = "static";
	n.started_ms = lx_wall_ms();
	return n;
}

static void refresh_node(void *arg, node_status *n)
{
	node_ctx *ctx = arg;
	if (ctx->client != NULL) {
		n->cluster_id = stream_client_cluster_id(ctx->client);
		n->lag_ms = stream_client_lag_ms(ctx->client);
		n->ready = stream_client_ready(ctx->client);
		stream_client_counters(ctx->client, &n->snapshots_received,
				       &n->transactions_received);
	} else {
		n->ready = 1;
	}
	if (ctx->hub != NULL) {
		pthread_mutex_lock(&ctx->hub->mu);
		n->snapshots_sent = ctx->hub->snapshots_sent;
		n->transactions_sent = ctx->hub->transactions_sent;
		pthread_mutex_unlock(&ctx->hub->mu);
	}
}

/* .primary: on a replica that is streaming from its primary. */
static int role_primary(void *arg, char *buf, size_t cap)
{
	node_ctx *ctx = arg;
	if (ctx->client == NULL || !stream_client_connected(ctx->client))
		return -ENOENT;
	snprintf(buf, cap, "%s", ctx->config->lease.hostname);
	return 0;
}

static int64_t role_lag(void *arg)
{
	node_ctx *ctx = arg;
	return ctx->client ? stream_client_lag_ms(ctx->client) : 0;
}

static int check_role(const ltxfs_config *c)
{
	if (!c->lease.candidate && c->fuse.locks == CONFIG_LOCKS_KERNEL) {
		/* A replica must exclude local readers while it applies. */
		lx_error("ltxfs", "%s: fuse.locks: kernel cannot be used on a replica "
			 "(lease.candidate: false): ltxfs must see the readers' locks to apply "
			 "the primary's transactions safely; use fuse.locks: ltxfs", c->origin);
		return -1;
	}
	return 0;
}

static int start_role(node_ctx *ctx, store *st, stream_hub *hub, uint64_t node_id,
		      stream_client_options *copt, char *cluster_id, lx_err *err)
{
	const ltxfs_config *c = ctx->config;
	int rc;
	if (c->lease.candidate) {
		rc = cluster_id_load_or_create(c->data.dir, cluster_id, err);
		if (rc < 0)
			return rc;
		stream_hub_init(hub, st, 1000);
		ctx->hub = hub;
		return 0;
	}
	rc = cluster_id_load(c->data.dir, cluster_id, err);
	if (rc < 0)
		return rc;
	store_set_readonly(st, 1);
	memset(copt, 0, sizeof(*copt));
	copt->primary_url = c->lease.advertise_url;
	copt->primary_name = c->lease.hostname;
	copt->node_id = node_id;
	copt->cluster_id = cluster_id;
	copt->data_dir = c->data.dir;
	copt->silence_ms = 5000;
	return stream_client_start(&ctx->client, st, copt, err);
}

static int run(const ltxfs_config *c)
{
	db_options dopt;
	store_retention ret;
	fs_options fopt;
	node_status node;
	node_ctx ctx = { c, NULL, NULL };
	stream_hub hub;
	stream_client_options copt;
	char cluster_id[CLUSTER_ID_SIZE] = "";
	http_server *http = NULL;
	store *st;
	lx_err err;
	int rc;

	lx_log_set_level(c->log.level);
	if (check_role(c) < 0)
		return 1;
	memset(&dopt, 0, sizeof(dopt));
	dopt.node_id = c->lease.node_id ? c->lease.node_id : random_node_id();
	dopt.lease_epoch = 1;   /* static lease: one epoch for the node's life */
	dopt.sync = c->data.sync == CONFIG_SYNC_ALWAYS ? DB_SYNC_ALWAYS : DB_SYNC_APP;
	dopt.readonly = !c->lease.candidate;
	ret.max_age_ms = c->data.retention_ns / 1000000;
	ret.max_bytes = c->data.retention_bytes;
	rc = store_open(&st, c->data.dir, &dopt, &ret, &err);
	if (rc < 0) {
		lx_error("ltxfs", "%s", err.msg);
		return 1;
	}
	node = node_of(c, dopt.node_id);
	rc = start_role(&ctx, st, &hub, dopt.node_id, &copt, cluster_id, &err);
	node.cluster_id = cluster_id;
	if (rc == 0)
		rc = http_server_start(&http, c->http.addr, st, &node, ctx.hub, refresh_node, &ctx,
				       &err);
	if (rc == 0) {
		memset(&fopt, 0, sizeof(fopt));
		fopt.mountpoint = c->fuse.dir;
		fopt.debug = c->fuse.debug;
		fopt.allow_other = c->fuse.allow_other;
		fopt.kernel_locks = c->fuse.locks == CONFIG_LOCKS_KERNEL;
		fopt.role = (fs_role){ &ctx, !c->lease.candidate, role_primary, role_lag };
		rc = fs_run(st, &fopt, log_ready, (void *)fopt.mountpoint, &err);
	}
	if (rc < 0)
		lx_error("ltxfs", "%s", err.msg);
	http_server_stop(http);       /* ends the primary's streams */
	stream_client_stop(ctx.client);
	store_close(st);
	if (ctx.hub != NULL)
		stream_hub_destroy(ctx.hub);
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
	/* Before any thread exists, as libcurl requires. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ltxfs: cannot initialise libcurl\n");
		config_free(&c);
		return 1;
	}
	rc = run(&c);
	curl_global_cleanup();
	config_free(&c);
	return rc;
}
