/*
 * check.c - checking a configuration and completing it: the cross-key
 * checks of config_validate() (required keys, ranges a program may have
 * set, tokens, TLS files, the lease backends, fuse.dir and data.dir apart),
 * config_resolve() (token files read, defaults of the strings filled) and
 * config_check_exposure() (a node reachable from other hosts needs a
 * token).  Messages start with the configuration's origin and never quote
 * a secret.
 */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

/* Record EINVAL with "origin: " and the formatted message. */
static int cfg_err(const ltxfs_config *c, lx_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfg_err(const ltxfs_config *c, lx_err *err, const char *fmt, ...)
{
	char msg[LX_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lx_err_set(err, EINVAL, "%s: %s",
			  c->origin ? c->origin : "config", msg);
}

/*
 * The absolute, lexically normalised form of path p (".", ".." and
 * repeated '/' resolved without touching the file system; relative paths
 * are taken from the working directory).  Heap string, or NULL.
 */
static char *lexical_abs(const char *p)
{
	char *cwd = NULL, *full, *out;
	size_t o = 0;

	if (p[0] != '/' && (cwd = getcwd(NULL, 0)) == NULL)
		return NULL;
	if (asprintf(&full, "%s/%s", cwd ? cwd : "", p) < 0) {
		free(cwd);
		return NULL;
	}
	free(cwd);
	out = malloc(strlen(full) + 2);
	if (out != NULL) {
		for (char *save = NULL, *part = strtok_r(full, "/", &save);
		     part != NULL; part = strtok_r(NULL, "/", &save)) {
			if (strcmp(part, ".") == 0)
				continue;
			if (strcmp(part, "..") == 0) {
				while (o > 0 && out[--o] != '/')
					;
				continue;
			}
			out[o++] = '/';
			memcpy(out + o, part, strlen(part));
			o += strlen(part);
		}
		if (o == 0)
			out[o++] = '/';
		out[o] = '\0';
	}
	free(full);
	return out;
}

/* True if normalised path a is b or inside b. */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* fuse.dir and data.dir must not be the same or nested. */
static int check_dirs(const ltxfs_config *c, lx_err *err)
{
	char *f = lexical_abs(c->fuse.dir), *d = lexical_abs(c->data.dir);
	int rc = 0;
	if (f == NULL || d == NULL)
		rc = 0; /* cannot tell (getcwd failed or no memory): let mount decide */
	else if (strcmp(f, d) == 0)
		rc = cfg_err(c, err, "fuse.dir and data.dir must be different "
			     "directories (both are \"%s\")", f);
	else if (path_within(d, f))
		rc = cfg_err(c, err, "data.dir \"%s\" must not be inside fuse.dir "
			     "\"%s\"", c->data.dir, c->fuse.dir);
	else if (path_within(f, d))
		rc = cfg_err(c, err, "fuse.dir \"%s\" must not be inside data.dir "
			     "\"%s\"", c->fuse.dir, c->data.dir);
	free(f);
	free(d);
	return rc;
}

/* A Consul key: segments of [A-Za-z0-9_.,-] joined by '/', as every
 * Consul version accepts (newer ones refuse more: see docs/lease.md). */
static bool consul_key_valid(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 256 || k[0] == '/' || k[n - 1] == '/' || strstr(k, "//") ||
	    strstr(k, ".."))
		return false;
	return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_.,-/") == n;
}

/* What every lease service needs: its URL (`example` in the message), and
 * a valid key if one is given.  `svc` is "consul" or "etcd". */
static int check_lease_service(const ltxfs_config *c, const char *svc, const char *url,
			       const char *key, const char *example, lx_err *err)
{
	if (url == NULL)
		return cfg_err(c, err, "lease.%s.url is required when lease.type is %s "
			       "(e.g. %s)", svc, svc, example);
	if (key != NULL && !consul_key_valid(key))
		return cfg_err(c, err, "lease.%s.key must be segments of letters, digits and "
			       "_.,- joined by '/' (e.g. myapp/primary)", svc);
	return 0;
}

static int check_consul(const ltxfs_config *c, lx_err *err)
{
	const uint64_t s = 1000000000ULL;
	if (check_lease_service(c, "consul", c->lease.consul.url, c->lease.consul.key,
				"http://127.0.0.1:8500", err) < 0)
		return -EINVAL;
	if (c->lease.consul.ttl_ns < s / 2 || c->lease.consul.ttl_ns > 3600 * s)
		return cfg_err(c, err, "lease.consul.ttl must be between 500ms and 1h");
	if (c->lease.consul.lock_delay_ns > 60 * s)
		return cfg_err(c, err, "lease.consul.lock-delay must be at most 60s (Consul's "
			       "limit)");
	return 0;
}

static int check_etcd(const ltxfs_config *c, lx_err *err)
{
	const uint64_t s = 1000000000ULL;
	if (check_lease_service(c, "etcd", c->lease.etcd.url, c->lease.etcd.key,
				"http://127.0.0.1:2379", err) < 0)
		return -EINVAL;
	if (c->lease.etcd.ttl_ns < 2 * s || c->lease.etcd.ttl_ns > 3600 * s ||
	    c->lease.etcd.ttl_ns % s != 0)
		return cfg_err(c, err, "lease.etcd.ttl must be whole seconds between 2s and 1h "
			       "(etcd's leases count seconds)");
	return 0;
}

/* The checks of the lease backend lease.type names. */
static int check_lease(const ltxfs_config *c, lx_err *err)
{
	switch (c->lease.type) {
	case CONFIG_LEASE_CONSUL:
		return check_consul(c, err);
	case CONFIG_LEASE_ETCD:
		return check_etcd(c, err);
	default:
		return 0;
	}
}

/* A token goes in an HTTP header: visible ASCII, no space; long enough
 * not to be guessed.  The message never quotes the token. */
static int check_token(const ltxfs_config *c, const char *key, const char *t, lx_err *err)
{
	size_t n = strlen(t);
	if (n == 0)
		return cfg_err(c, err, "%s is empty", key);
	for (size_t i = 0; i < n; i++)
		if (t[i] <= 0x20 || t[i] >= 0x7f)
			return cfg_err(c, err, "%s has a character that is not visible ASCII "
				       "(at %zu): a token goes in an HTTP header", key, i);
	if (n < CONFIG_TOKEN_MIN)
		return cfg_err(c, err, "%s is %zu characters, fewer than %d: use a random one, "
			       "e.g. the output of `openssl rand -hex 32`", key, n,
			       CONFIG_TOKEN_MIN);
	return 0;
}

/* http.token / http.read-token and their files: one of each pair; a read
 * token only next to a full one, and different from it. */
static int check_auth(const ltxfs_config *c, lx_err *err)
{
	const struct http_secret {
		const char *key, *file_key, *value, *file;
		bool from_file;
	} v[2] = {
		{ "http.token", "http.token-file", c->http.token, c->http.token_file,
		  c->http.token_from_file },
		{ "http.read-token", "http.read-token-file", c->http.read_token,
		  c->http.read_token_file, c->http.read_token_from_file },
	};
	for (int i = 0; i < 2; i++) {
		if (v[i].value != NULL && v[i].file != NULL && !v[i].from_file)
			return cfg_err(c, err, "%s and %s are both set: give one of the two",
				       v[i].key, v[i].file_key);
		if (v[i].file != NULL && v[i].file[0] == '\0')
			return cfg_err(c, err, "%s is empty", v[i].file_key);
		if (v[i].value != NULL && check_token(c, v[i].key, v[i].value, err) < 0)
			return -EINVAL;
	}
	if ((c->http.read_token || c->http.read_token_file) &&
	    !(c->http.token || c->http.token_file))
		return cfg_err(c, err, "http.read-token needs http.token (or http.token-file): "
			       "without a full token every endpoint would be open");
	if (c->http.token != NULL && c->http.read_token != NULL &&
	    strcmp(c->http.token, c->http.read_token) == 0)
		return cfg_err(c, err, "http.read-token is the same as http.token: a read token "
			       "must be a different secret, or it grants everything");
	return 0;
}

/* http.tls.*: a certificate with its key; client-auth needs a CA. */
static int check_tls(const ltxfs_config *c, lx_err *err)
{
	static const char *const keys[] = { "http.tls.cert", "http.tls.key", "http.tls.ca" };
	const char *const vals[] = { c->http.tls.cert, c->http.tls.key, c->http.tls.ca };
	for (int i = 0; i < 3; i++)
		if (vals[i] != NULL && vals[i][0] == '\0')
			return cfg_err(c, err, "%s is empty", keys[i]);
	if ((c->http.tls.cert == NULL) != (c->http.tls.key == NULL))
		return cfg_err(c, err, "%s is set without %s: HTTPS needs both the certificate "
			       "and its private key", c->http.tls.cert ? "http.tls.cert" :
			       "http.tls.key", c->http.tls.cert ? "http.tls.key" : "http.tls.cert");
	if (c->http.tls.client_auth && c->http.tls.cert == NULL)
		return cfg_err(c, err, "http.tls.client-auth needs HTTPS: set http.tls.cert and "
			       "http.tls.key");
	if (c->http.tls.client_auth && c->http.tls.ca == NULL)
		return cfg_err(c, err, "http.tls.client-auth needs http.tls.ca: the CA whose "
			       "certificates clients must present");
	return 0;
}

/* http.health-max-lag and the http.max-* limits. */
static int check_http_limits(const ltxfs_config *c, lx_err *err)
{
	if (c->http.health_max_lag_ns == 0)
		return cfg_err(c, err, "http.health-max-lag must be greater than 0");
	if (c->http.max_connections < 4)
		return cfg_err(c, err, "http.max-connections must be at least 4");
	/* The other half stays for /health, /status, /metrics and /stream. */
	if ((uint64_t)c->http.max_event_streams + c->http.max_transfers >
	    c->http.max_connections / 2)
		return cfg_err(c, err, "http.max-event-streams (%u) and http.max-transfers (%u) "
			       "together must be at most half of http.max-connections (%u), so "
			       "that /health, /status and the replicas' streams always have room",
			       c->http.max_event_streams, c->http.max_transfers,
			       c->http.max_connections);
	if (c->http.max_connections_per_ip > c->http.max_connections)
		return cfg_err(c, err, "http.max-connections-per-ip (%u) must be at most "
			       "http.max-connections (%u)", c->http.max_connections_per_ip,
			       c->http.max_connections);
	if (c->http.max_import_size == 0)
		return cfg_err(c, err, "http.max-import-size must be greater than 0");
	return 0;
}

/* Range checks of values a program (not the parser) may have set. */
/* The scheme of backup.url: "s3" (a bucket follows), "file" (an
 * absolute directory follows), or NULL. */
static const char *backup_scheme(const char *url)
{
	if (strncmp(url, "s3://", 5) == 0 && url[5] != '\0' && url[5] != '/')
		return "s3";
	if (strncmp(url, "file:///", 8) == 0)
		return "file";
	return NULL;
}

static bool backup_keys_set(const ltxfs_config *c)
{
	return c->backup.endpoint || c->backup.region || c->backup.access_key_id ||
	       c->backup.secret_access_key || c->backup.force_path_style ||
	       c->backup.restore_if_empty || c->backup.encryption.key_file;
}

/* backup.*: a usable URL, keys that fit its scheme, sane intervals. */
static int check_backup(const ltxfs_config *c, lx_err *err)
{
	const char *scheme;
	if (c->backup.url == NULL)
		return backup_keys_set(c)
			? cfg_err(c, err, "backup.* keys are set but backup.url "
				  "is not (no backup would be made)") : 0;
	scheme = backup_scheme(c->backup.url);
	if (scheme == NULL)
		return cfg_err(c, err, "backup.url must be s3://BUCKET[/PREFIX] "
			       "or file:///DIRECTORY");
	if (strcmp(scheme, "file") == 0 &&
	    (c->backup.endpoint || c->backup.region || c->backup.access_key_id ||
	     c->backup.secret_access_key || c->backup.force_path_style))
		return cfg_err(c, err, "backup.endpoint, backup.region, backup.*-key* "
			       "and backup.force-path-style are for s3:// URLs only");
	if (c->backup.sync_interval_ns == 0 ||
	    c->backup.sync_interval_ns > 3600ULL * 1000000000ULL)
		return cfg_err(c, err, "backup.sync-interval must be greater than 0 "
			       "and at most 1h");
	if (c->backup.snapshot_interval_ns < c->backup.sync_interval_ns)
		return cfg_err(c, err, "backup.snapshot-interval must be at least "
			       "backup.sync-interval");
	if (c->backup.retention_ns == 0 || c->backup.retention_ns > (uint64_t)INT64_MAX)
		return cfg_err(c, err, "backup.retention must be greater than 0");
	if (c->backup.max_lag_ns == 0 || c->backup.max_lag_ns > (uint64_t)INT64_MAX)
		return cfg_err(c, err, "backup.max-lag must be greater than 0");
	for (int k = 1; k <= 3; k++)
		if (c->backup.level_interval_ns[k] < c->backup.level_interval_ns[k - 1] ||
		    c->backup.level_interval_ns[k] == 0 ||
		    c->backup.level_interval_ns[k] > (uint64_t)INT64_MAX)
			return cfg_err(c, err, "backup.l%d-interval must be greater than 0%s", k,
				       k > 1 ? " and at least the level below's" : "");
	return 0;
}

/* proxy.*: all or nothing of addr, target and db. */
static int check_proxy(const ltxfs_config *c, lx_err *err)
{
	int any = c->proxy.addr || c->proxy.target || c->proxy.db || c->proxy.passthrough ||
		  c->proxy.advertise_url;
	if (!any)
		return 0;
	if (c->proxy.addr == NULL || c->proxy.target == NULL || c->proxy.db == NULL)
		return cfg_err(c, err, "the proxy needs proxy.addr (where it listens), proxy.target "
			       "(the application's host:port) and proxy.db (the database whose "
			       "writes it follows)");
	if (strcmp(c->proxy.addr, c->proxy.target) == 0)
		return cfg_err(c, err, "proxy.addr and proxy.target are the same address: the "
			       "proxy would forward to itself");
	if (c->proxy.max_lag_ns == 0 || c->proxy.max_lag_ns > 60ULL * 1000000000ULL)
		return cfg_err(c, err, "proxy.max-lag must be between 1ms and 60s");
	if (config_enum_name(config_proxy_lags, (int)c->proxy.on_lag) == NULL)
		return cfg_err(c, err, "proxy.on-lag has an invalid value");
	if (c->proxy.advertise_url != NULL && config_url_host(c->proxy.advertise_url, NULL) != 0)
		return cfg_err(c, err, "proxy.advertise-url is not an http:// URL with a host");
	return 0;
}

static int check_replication(const ltxfs_config *c, lx_err *err)
{
	if (config_enum_name(config_repl_modes, (int)c->replication.mode) == NULL)
		return cfg_err(c, err, "replication.mode has an invalid value");
	if (config_enum_name(config_repl_timeouts, (int)c->replication.on_timeout) == NULL)
		return cfg_err(c, err, "replication.on-timeout has an invalid value");
	if (config_enum_name(config_repl_acks, (int)c->replication.ack_after) == NULL)
		return cfg_err(c, err, "replication.ack-after has an invalid value");
	if (c->replication.min_acks == 0 || c->replication.min_acks > 64)
		return cfg_err(c, err, "replication.min-acks must be 1 to 64 (replicas that "
			       "must hold a commit in sync mode)");
	if (c->replication.sync_timeout_ns < 1000000ULL ||
	    c->replication.sync_timeout_ns > 3600ULL * 1000000000ULL)
		return cfg_err(c, err, "replication.sync-timeout must be 1ms to 1h");
	return 0;
}

static int check_values(const ltxfs_config *c, lx_err *err)
{
	if (c->http.addr != NULL && config_addr_port(c->http.addr) < 0)
		return cfg_err(c, err, "http.addr is not host:port or :port");
	if (c->data.retention_ns == 0 || c->data.retention_ns > (uint64_t)INT64_MAX)
		return cfg_err(c, err, "data.retention must be greater than 0");
	if (config_enum_name(config_sync_values, (int)c->data.sync) == NULL)
		return cfg_err(c, err, "data.sync has an invalid value");
	if (config_enum_name(config_lease_types, (int)c->lease.type) == NULL)
		return cfg_err(c, err, "lease.type has an invalid value");
	if (config_enum_name(config_log_levels, (int)c->log.level) == NULL)
		return cfg_err(c, err, "log.level has an invalid value");
	if (c->lease.hostname != NULL && c->lease.hostname[0] == '\0')
		return cfg_err(c, err, "lease.hostname must not be empty");
	if (c->lease.advertise_url != NULL &&
	    config_url_host(c->lease.advertise_url, NULL) != 0)
		return cfg_err(c, err, "lease.advertise-url is not an http:// or "
			       "https:// URL with a host");
	if (check_http_limits(c, err) < 0)
		return -EINVAL;
	for (size_t i = 0; i < c->exec.n; i++)
		if (c->exec.cmds[i].cmd == NULL || c->exec.cmds[i].cmd[0] == '\0')
			return cfg_err(c, err, "exec[%zu] is empty", i);
	if (check_auth(c, err) < 0 || check_tls(c, err) < 0 || check_backup(c, err) < 0 ||
	    check_replication(c, err) < 0 || check_proxy(c, err) < 0)
		return -EINVAL;
	return check_lease(c, err);
}

int config_validate(const ltxfs_config *c, lx_err *err)
{
	int rc;
	if (c->fuse.dir == NULL || c->fuse.dir[0] == '\0')
		return cfg_err(c, err, "fuse.dir is required (the mount point)");
	if (c->data.dir == NULL || c->data.dir[0] == '\0')
		return cfg_err(c, err, "data.dir is required (where the databases "
			       "and their logs are stored)");
	rc = check_values(c, err);
	if (rc != 0)
		return rc;
	if (c->lease.type == CONFIG_LEASE_STATIC && !c->lease.candidate &&
	    c->lease.advertise_url == NULL)
		return cfg_err(c, err, "lease.advertise-url is required when "
			       "lease.type is static and lease.candidate is false "
			       "(it is the primary's URL)");
	return check_dirs(c, err);
}

/* *slot = a copy of `value` if it is still unset. */
static int set_default(char **slot, const char *value, lx_err *err)
{
	if (*slot == NULL && (*slot = strdup(value)) == NULL)
		return lx_err_set(err, ENOMEM, "config: out of memory");
	return 0;
}

/* Default lease.hostname: the primary's host on a static replica. */
static int resolve_hostname(ltxfs_config *c, lx_err *err)
{
	char host[HOST_MAX];
	if (c->lease.hostname != NULL)
		return 0;
	if (c->lease.type == CONFIG_LEASE_STATIC && !c->lease.candidate) {
		if (config_url_host(c->lease.advertise_url, host) != 0)
			return cfg_err(c, err, "lease.advertise-url has no host");
	} else if (gethostname(host, sizeof(host) - 1) != 0) {
		return lx_err_sys(err, errno, "lease.hostname: gethostname");
	}
	host[sizeof(host) - 1] = '\0';
	if (host[0] == '\0')
		return cfg_err(c, err, "lease.hostname: the machine has no "
			       "hostname; set lease.hostname");
	return set_default(&c->lease.hostname, host, err);
}

/* The token in file `path` (at most CONFIG_TOKEN_FILE_MAX bytes, its
 * trailing newline trimmed) into *out; the message never quotes it. */
static int read_token_file(const ltxfs_config *c, const char *key, const char *path,
			   char **out, lx_err *err)
{
	char buf[CONFIG_TOKEN_FILE_MAX + 2];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;
	if (fd < 0)
		return cfg_err(c, err, "%s: cannot open %s: %s", key, path, strerror(errno));
	rc = config_read_fd(fd, buf, CONFIG_TOKEN_FILE_MAX + 1, &n);
	close(fd);
	if (rc < 0)
		rc = cfg_err(c, err, "%s: cannot read %s: %s", key, path, strerror(-rc));
	else if (n > CONFIG_TOKEN_FILE_MAX)
		rc = cfg_err(c, err, "%s: %s is larger than %d bytes: not a token", key, path,
			     CONFIG_TOKEN_FILE_MAX);
	while (rc == 0 && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (rc == 0 && n == 0)
		rc = cfg_err(c, err, "%s: %s is empty", key, path);
	if (rc == 0 && (*out = strdup(buf)) == NULL)
		rc = lx_err_set(err, ENOMEM, "config: out of memory");
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* http.token-file and http.read-token-file into the tokens, checked. */
static int resolve_tokens(ltxfs_config *c, lx_err *err)
{
	if (c->http.token_file != NULL && c->http.token == NULL) {
		if (read_token_file(c, "http.token-file", c->http.token_file, &c->http.token,
				    err) < 0)
			return -EINVAL;
		c->http.token_from_file = true;
	}
	if (c->http.read_token_file != NULL && c->http.read_token == NULL) {
		if (read_token_file(c, "http.read-token-file", c->http.read_token_file,
				    &c->http.read_token, err) < 0)
			return -EINVAL;
		c->http.read_token_from_file = true;
	}
	return check_auth(c, err);
}

/* Default lease.advertise-url: this host at http.addr's port, over HTTPS
 * when the node serves HTTPS (that is how it is reached). */
static int resolve_advertise_url(ltxfs_config *c, lx_err *err)
{
	const char *h = c->lease.hostname;
	bool v6 = strchr(h, ':') != NULL;
	if (c->lease.advertise_url != NULL)
		return 0;
	if (asprintf(&c->lease.advertise_url, "%s://%s%s%s:%d",
		     c->http.tls.cert != NULL ? "https" : "http", v6 ? "[" : "",
		     h, v6 ? "]" : "", config_addr_port(c->http.addr)) < 0) {
		c->lease.advertise_url = NULL;
		return lx_err_set(err, ENOMEM, "config: out of memory");
	}
	return 0;
}

/* Default proxy.advertise-url: lease.advertise-url's host at proxy.addr's
 * port (the proxy speaks plain HTTP). */
static int resolve_proxy_url(ltxfs_config *c, lx_err *err)
{
	char host[HOST_MAX];
	bool v6;
	if (c->proxy.addr == NULL || c->proxy.advertise_url != NULL)
		return 0;
	if (config_url_host(c->lease.advertise_url, host) != 0)
		return cfg_err(c, err, "lease.advertise-url has no host for proxy.advertise-url");
	v6 = strchr(host, ':') != NULL;
	if (asprintf(&c->proxy.advertise_url, "http://%s%s%s:%d", v6 ? "[" : "", host,
		     v6 ? "]" : "", config_addr_port(c->proxy.addr)) < 0) {
		c->proxy.advertise_url = NULL;
		return lx_err_set(err, ENOMEM, "config: out of memory");
	}
	return 0;
}

/* S3 credentials the file leaves unset come from the environment, as
 * every AWS tool takes them; an s3:// backup without any is refused here,
 * not at the first upload. */
static int resolve_backup(ltxfs_config *c, lx_err *err)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	int rc = 0;

	if (c->backup.url == NULL || strcmp(backup_scheme(c->backup.url), "s3") != 0)
		return 0;
	if (c->backup.access_key_id == NULL && id != NULL && id[0] != '\0')
		rc = set_default(&c->backup.access_key_id, id, err);
	if (rc == 0 && c->backup.secret_access_key == NULL && secret != NULL &&
	    secret[0] != '\0')
		rc = set_default(&c->backup.secret_access_key, secret, err);
	if (rc == 0)
		rc = set_default(&c->backup.region,
				 region != NULL && region[0] != '\0' ? region : "us-east-1",
				 err);
	if (rc != 0)
		return rc;
	if (c->backup.access_key_id == NULL || c->backup.secret_access_key == NULL)
		return cfg_err(c, err, "backup.url is s3:// but no credentials are set: "
			       "backup.access-key-id and backup.secret-access-key, "
			       "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	return 0;
}

int config_resolve(ltxfs_config *c, lx_err *err)
{
	int rc = config_validate(c, err);
	if (rc == 0)
		rc = resolve_tokens(c, err);
	if (rc == 0)
		rc = resolve_backup(c, err);
	if (rc == 0)
		rc = set_default(&c->http.addr, CONFIG_DEFAULT_HTTP_ADDR, err);
	if (rc == 0)
		rc = resolve_hostname(c, err);
	if (rc == 0 && c->lease.type == CONFIG_LEASE_CONSUL)
		rc = set_default(&c->lease.consul.key, "ltxfs/primary", err);
	if (rc == 0 && c->lease.type == CONFIG_LEASE_ETCD)
		rc = set_default(&c->lease.etcd.key, "ltxfs/primary", err);
	if (rc == 0)
		rc = resolve_advertise_url(c, err);
	return rc == 0 ? resolve_proxy_url(c, err) : rc;
}

int config_addr_is_loopback(const char *addr)
{
	char host[HOST_MAX];
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t n;
	struct in_addr a4;
	struct in6_addr a6;
	if (colon == NULL)
		return 0;
	n = (size_t)(colon - addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return 0;                       /* ":port": every interface */
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;                               /* a name: may be any interface */
}

int config_check_exposure(const ltxfs_config *c, lx_err *err)
{
	const char *addr = c->http.addr ? c->http.addr : CONFIG_DEFAULT_HTTP_ADDR;
	if (c->http.token != NULL || c->http.insecure || config_addr_is_loopback(addr))
		return 0;
	return cfg_err(c, err, "http.addr %s is reachable from other hosts and no token is "
		       "set: anyone who reaches it could import, export or promote.  Set "
		       "http.token-file (a file holding a random token, e.g. from `openssl rand "
		       "-hex 32`) or http.token, and give the same token to every node; or "
		       "listen on the loopback only (http.addr: \"127.0.0.1:%d\"); or, if "
		       "something else protects this port, say so with http.insecure: true",
		       addr, config_addr_port(addr) > 0 ? config_addr_port(addr) : 20202);
}

