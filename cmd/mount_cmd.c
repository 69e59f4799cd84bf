/*
 * mount_cmd.c - `ltxfs mount -config FILE` (see mount_cmd.h).
 *
 * Threads: the main thread runs the FUSE session loop (fs_run), which
 * starts libfuse's worker threads; SIGINT, SIGTERM and SIGHUP are blocked
 * everywhere and taken by the supervisor's signal thread, which stops the
 * mount or passes them on to the application; the supervisor's thread
 * waits for readiness and runs the exec commands (node/supervisor.h).  The
 * store runs the log syncer thread (db/syncer.h) and the retention thread
 * (db/store.h); the HTTP API runs libmicrohttpd's threads, one per
 * connection (replica/http_server.h); a replica runs the thread that
 * follows the primary (replica/stream_client.h); a Consul or etcd lease
 * runs the elector thread (lease/elector.h), a static lease none (the role
 * is lease.candidate).  node/node.h switches the node's role.
 */
#include "cmd/mount_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "backup/bootstrap.h"
#include "backup/shipper.h"
#include "base/clock.h"
#include "base/log.h"
#include "config/config.h"
#include "db/store.h"
#include "fs/fs.h"
#include "node/node.h"
#include "node/supervisor.h"
#include "proxy/proxy.h"
#include "replica/http_server.h"

static const char usage[] =
	"usage: ltxfs mount -config FILE [-- COMMAND [ARG...]]\n"
	"  COMMAND runs once the node is ready (instead of the exec list); ltxfs\n"
	"  passes SIGINT/SIGTERM/SIGHUP on to it and exits with its status.\n";

static void on_mounted(void *ctx)
{
	supervisor_mounted(ctx);
}

static int hook_ready(void *ctx, int *primary)
{
	return node_ready(ctx, primary);
}

static int hook_promote(void *ctx, lx_err *err)
{
	return node_take_over(ctx, err);
}

/* SIGHUP with TLS: new certificates for the next connections. */
static void hook_reload(void *ctx)
{
	lx_err err;
	if (http_server_reload_tls(ctx, &err) < 0)
		lx_error("ltxfs", "SIGHUP: the TLS certificates were not reloaded, the old ones "
			 "stay in use: %s", err.msg);
	else
		lx_info("ltxfs", "SIGHUP: TLS certificate, key and CA reloaded");
}

static uint64_t random_node_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = 1;
	return id;
}

/* What /status shows that never changes. */
static node_status node_of(const ltxfs_config *c, uint64_t node_id)
{
	node_status n;
	memset(&n, 0, sizeof(n));
	n.node_id = node_id;
	n.hostname = c->lease.hostname;
	n.role = "replica";
	n.primary = "";
	n.lease_type = c->lease.type == CONFIG_LEASE_CONSUL ? "consul" :
		       c->lease.type == CONFIG_LEASE_ETCD ? "etcd" : "static";
	n.started_ms = lx_wall_ms();
	n.health_max_lag_ms = (int64_t)(c->http.health_max_lag_ns / 1000000);
	return n;
}

/*
 * Each database keeps a few descriptors open and each HTTP connection one,
 * so the usual soft limit of 1024 is reached by a few hundred databases;
 * the hard limit is what the administrator allows, so take all of it.
 * Commands run by `exec` inherit the raised soft limit.
 */
static void raise_descriptor_limit(void)
{
	struct rlimit rl;
	rlim_t was;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		lx_warn("ltxfs", "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_max == RLIM_INFINITY) {    /* the kernel's ceiling, fs.nr_open */
		FILE *f = fopen("/proc/sys/fs/nr_open", "r");
		unsigned long long n;
		rl.rlim_max = f != NULL && fscanf(f, "%llu", &n) == 1 ? (rlim_t)n : 1048576;
		if (f != NULL)
			fclose(f);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= rl.rlim_max) {
		lx_info("ltxfs", "descriptor limit: %llu (RLIMIT_NOFILE)",
			(unsigned long long)rl.rlim_cur);
		return;
	}
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		lx_warn("ltxfs", "descriptor limit stays %llu: raising RLIMIT_NOFILE to %llu: %s",
			(unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
	else
		lx_info("ltxfs", "descriptor limit raised from %llu to %llu (RLIMIT_NOFILE's hard "
			"limit)", (unsigned long long)was, (unsigned long long)rl.rlim_cur);
}

static int check_role(const ltxfs_config *c)
{
	int may_follow = c->lease.type != CONFIG_LEASE_STATIC || !c->lease.candidate;
	if (may_follow && c->fuse.locks == CONFIG_LOCKS_KERNEL) {
		/* A replica must exclude local readers while it applies. */
		lx_error("ltxfs", "%s: fuse.locks: kernel cannot be used on a node that may be a "
			 "replica (lease.candidate: false, or a consul or etcd lease): ltxfs must see the "
			 "readers' locks to apply the primary's transactions safely; use "
			 "fuse.locks: ltxfs", c->origin);
		return -1;
	}
	return 0;
}

/* Continuous backup (backup.url): the shipper runs on every node and ships
 * while the node is primary (backup/shipper.h). */
static int start_backup(const ltxfs_config *c, store *st, bk_codec *codec,
			backup_shipper **out, lx_err *err)
{
	backup_shipper_options o;
	int loose, rc;
	*out = NULL;
	if (c->backup.url == NULL)
		return 0;
	rc = bk_codec_init(codec, c->backup.encryption.key_file, &loose, err);
	if (rc < 0)
		return rc;
	if (loose)
		lx_warn("ltxfs", "%s: backup.encryption.key-file %s is readable by other users",
			c->origin, c->backup.encryption.key_file);
	memset(&o, 0, sizeof(o));
	o.storage.url = c->backup.url;
	o.storage.endpoint = c->backup.endpoint;
	o.storage.region = c->backup.region;
	o.storage.access_key_id = c->backup.access_key_id;
	o.storage.secret_access_key = c->backup.secret_access_key;
	o.storage.force_path_style = c->backup.force_path_style;
	o.codec = codec;
	o.dbs = st;
	if (c->backup.restore_if_empty) {   /* the whole cluster was lost */
		size_t restored;
		rc = backup_bootstrap(st, &o.storage, codec, &restored, err);
		if (rc < 0)
			return lx_err_wrap(err, "backup.restore-if-empty");
		if (restored > 0)
			lx_info("ltxfs", "restored %zu databases from %s", restored, c->backup.url);
	}
	o.sync_interval_ms = (int64_t)(c->backup.sync_interval_ns / 1000000);
	o.snapshot_interval_ms = (int64_t)(c->backup.snapshot_interval_ns / 1000000);
	o.retention_ms = (int64_t)(c->backup.retention_ns / 1000000);
	o.max_lag_ms = (int64_t)(c->backup.max_lag_ns / 1000000);
	for (int k = 1; k < 4; k++)
		o.level_interval_ms[k] = (int64_t)(c->backup.level_interval_ns[k] / 1000000);
	if (o.sync_interval_ms < 1)
		o.sync_interval_ms = 1;
	rc = backup_shipper_start(out, &o, err);
	if (rc == 0)
		lx_info("ltxfs", "backup to %s every %" PRId64 " ms%s", c->backup.url,
			o.sync_interval_ms, codec->encrypted ? ", encrypted" : "");
	return rc;
}

/* Open the store and start the backup, the node and its HTTP API. */
static int start_node(const ltxfs_config *c, store **st, node **nd, http_server **http,
		      node_status *status, bk_codec *codec, backup_shipper **shipper, lx_err *err)
{
	db_options dopt;
	store_retention ret;
	int rc;
	memset(&dopt, 0, sizeof(dopt));
	dopt.node_id = c->lease.node_id ? c->lease.node_id : random_node_id();
	dopt.lease_epoch = 0;   /* until the node is primary (node/node.h) */
	dopt.sync = c->data.sync == CONFIG_SYNC_ALWAYS ? DB_SYNC_ALWAYS : DB_SYNC_APP;
	/* Only a static primary is writable from the start; with a dynamic
	 * lease every node starts as a replica and is promoted by the lease. */
	dopt.readonly = !(c->lease.type == CONFIG_LEASE_STATIC && c->lease.candidate);
	ret.max_age_ms = c->data.retention_ns / 1000000;
	ret.max_bytes = c->data.retention_bytes;
	dopt.max_open_files = (size_t)c->data.max_open_files;
	dopt.replica_wal = c->data.replica_wal;
	rc = store_open(st, c->data.dir, &dopt, &ret, err);
	if (rc < 0)
		return rc;
	*status = node_of(c, dopt.node_id);
	rc = start_backup(c, *st, codec, shipper, err);
	if (rc == 0)
		rc = node_start(nd, c, *st, dopt.node_id, err);
	if (rc == 0) {
		http_hooks hooks = node_http_hooks(*nd);
		hooks.backup = *shipper;
		http_limits lim = { c->http.max_connections, c->http.max_connections_per_ip,
				    c->http.max_event_streams, c->http.max_transfers,
				    c->http.max_import_size };
		http_security sec = { c->http.token, c->http.read_token, c->http.tls.cert,
				      c->http.tls.key, c->http.tls.ca, c->http.tls.client_auth };
		rc = http_server_start(http, c->http.addr, *st, status, node_hub(*nd), &hooks,
				       &lim, &sec, err);
	}
	return rc;
}

/* The HTTP proxy in front of the application, when proxy.addr is set. */
static int start_proxy(const ltxfs_config *c, node *nd, store *st, proxy **out, lx_err *err)
{
	proxy_options po;
	*out = NULL;
	if (c->proxy.addr == NULL)
		return 0;
	memset(&po, 0, sizeof(po));
	po.addr = c->proxy.addr;
	po.target = c->proxy.target;
	po.db = c->proxy.db;
	po.passthrough = (const char *const *)c->proxy.passthrough;
	po.max_lag_ms = (int64_t)(c->proxy.max_lag_ns / 1000000);
	po.lag_forward = c->proxy.on_lag == CONFIG_LAG_FORWARD;
	po.store = st;
	po.primary = node_proxy_route;
	po.ctx = nd;
	return proxy_start(out, &po, err);
}

static int serve(const ltxfs_config *c, node *nd, store *st, fs_control *ctl,
		 supervisor *sup, lx_err *err)
{
	fs_options fopt;
	memset(&fopt, 0, sizeof(fopt));
	fopt.mountpoint = c->fuse.dir;
	fopt.debug = c->fuse.debug;
	fopt.allow_other = c->fuse.allow_other;
	fopt.kernel_locks = c->fuse.locks == CONFIG_LOCKS_KERNEL;
	fopt.role = node_fs_role(nd);
	fopt.control = ctl;
	return fs_run(st, &fopt, on_mounted, sup, err);
}

static int run(const ltxfs_config *c, char *const *app_argv)
{
	node_status status;
	http_server *http = NULL;
	node *nd = NULL;
	store *st = NULL;
	fs_control *ctl = NULL;
	supervisor *sup = NULL;
	supervisor_options so;
	supervisor_hooks sh;
	backup_shipper *shipper = NULL;
	proxy *px = NULL;
	bk_codec codec;
	lx_err err;
	int rc, exit_status;

	lx_log_set_level(c->log.level);
	if (check_role(c) < 0)
		return 1;
	if (config_check_exposure(c, &err) < 0) {     /* secure by default */
		lx_error("ltxfs", "%s", err.msg);
		return 1;
	}
	raise_descriptor_limit();
	if (fs_control_new(&ctl) < 0) {
		lx_error("ltxfs", "out of memory");
		return 1;
	}
	memset(&codec, 0, sizeof(codec));
	rc = start_node(c, &st, &nd, &http, &status, &codec, &shipper, &err);
	if (rc == 0)
		rc = start_proxy(c, nd, st, &px, &err);
	if (rc == 0) {
		memset(&so, 0, sizeof(so));
		so.cmds = c->exec.cmds;
		so.n_cmds = c->exec.n;
		so.argv = app_argv;
		so.candidate = c->lease.candidate;
		so.mountpoint = c->fuse.dir;
		so.fs = ctl;
		sh = (supervisor_hooks){ nd, hook_ready, hook_promote, NULL, NULL };
		if (http_server_tls(http)) {   /* SIGHUP re-reads the certificates */
			sh.reload_ctx = http;
			sh.reload = hook_reload;
		}
		rc = supervisor_start(&sup, &so, &sh, &err);
	}
	if (rc == 0)
		rc = serve(c, nd, st, ctl, sup, &err);
	if (rc < 0)
		lx_error("ltxfs", "%s", err.msg);
	exit_status = supervisor_finish(sup);   /* ends a command still running */
	if (node_failed(nd))
		exit_status = 1;
	proxy_stop(px);               /* no request is forwarded any more */
	node_stop(nd);                /* a primary fences, then releases its lease */
	backup_shipper_stop(shipper); /* after fencing: nothing more is shipped */
	bk_codec_wipe(&codec);
	http_server_stop(http);       /* ends the primary's streams */
	node_free(nd);
	store_close(st);
	fs_control_free(ctl);
	lx_info("ltxfs", "stopped");
	return rc < 0 ? 1 : exit_status;
}

int cmd_mount(int argc, char **argv)
{
	ltxfs_config c;
	lx_err err;
	const char *path = NULL;
	char *const *app_argv = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--") == 0 && i + 1 < argc) {
			app_argv = argv + i + 1;
			break;
		} else {
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
	/* Before any thread exists: every thread inherits the mask, so only
	 * the supervisor's signal thread receives these (node/supervisor.h). */
	supervisor_block_signals();
	/* Before any thread exists, as libcurl requires. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ltxfs: cannot initialise libcurl\n");
		config_free(&c);
		return 1;
	}
	rc = run(&c, app_argv);
	curl_global_cleanup();
	config_free(&c);
	return rc;
}
