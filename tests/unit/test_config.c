/*
 * test_config.c - the configuration module (config/): a full valid
 * file, defaults, environment expansion, every class of error with its
 * message, the duration/size/bool parsers, dump round trips, and a
 * crash/leak hunt over truncated and mutated input (run under valgrind
 * or ASan to make the last one meaningful).
 */
#include "config/config.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* A fake environment: "NAME=value" strings, NULL-terminated. */
static const char *fake_getenv(const char *name, void *ctx)
{
	const char *const *env = ctx;
	size_t n = strlen(name);
	for (; env != NULL && *env != NULL; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static const char *const test_env[] = {
	"HOSTNAME=node-a",
	"DATA=/srv/data",
	"MNT=/srv/mnt",
	"EMPTY=",
	"REGION=ams",
	"PRIMARY_REGION=ams",
	"OTHER_REGION=fra",
	"PORT=9000",
	"YES=yes",
	NULL,
};

/* Load `yaml` as "config.yml" with test_env; returns the load's result. */
static int load(ltxfs_config *c, const char *yaml, lx_err *err)
{
	lx_err_clear(err);
	return config_load_string_env(c, yaml, strlen(yaml), "config.yml",
				      fake_getenv, (void *)test_env, err);
}

/* Expect `yaml` to be rejected with a message containing `want`. */
#define CHECK_REJECT(yaml, want) \
	do { \
		ltxfs_config c_; \
		lx_err e_; \
		CHECK_EQ_INT(-EINVAL, load(&c_, (yaml), &e_)); \
		CHECK_EQ_INT(EINVAL, e_.code); \
		CHECK_STR_CONTAINS(e_.msg, (want)); \
		CHECK(c_.fuse.dir == NULL && c_.origin == NULL); \
		config_free(&c_); \
	} while (0)

#define MIN_CFG "fuse:\n  dir: /mnt/ltxfs\ndata:\n  dir: /var/lib/ltxfs\n"

/* full_cfg with a Consul lease. */
static const char consul_cfg[] =
	"fuse:\n  dir: /litefs\n  debug: true\n  allow-other: true\n  locks: kernel\n"
	"data:\n  dir: /var/lib/litefs\n  retention: 1h30m\n  retention-bytes: 512MB\n"
	"  sync: always\nhttp:\n  addr: 127.0.0.1:20203\n"
	"lease:\n  type: consul\n  candidate: false\n  hostname: primary-1\n"
	"  advertise-url: http://primary-1:20202\n  node-id: \"00000000000000AB\"\n"
	"  consul:\n    url: http://127.0.0.1:8500\n    key: app/primary\n    token: s3cret\n"
	"    ttl: 2s\n    lock-delay: 500ms\n"
	"log:\n  level: debug\nexec:\n  - migrate -y\n";

static const char full_cfg[] =
	"# every key\n"
	"fuse:\n"
	"  dir: /litefs\n"
	"  debug: yes\n"
	"  allow-other: On\n"
	"  locks: kernel\n"
	"data:\n"
	"  dir: /var/lib/litefs\n"
	"  retention: 1h30m\n"
	"  retention-bytes: 512MB\n"
	"  sync: always\n"
	"http:\n"
	"  addr: \"127.0.0.1:20203\"\n"
	"  health-max-lag: 1.5s\n"
	"lease:\n"
	"  type: static\n"
	"  candidate: false\n"
	"  hostname: primary-1\n"
	"  advertise-url: \"http://primary-1:20202\"\n"
	"  node-id: \"00000000000000aB\"\n"
	"log:\n"
	"  level: debug\n"
	"exec:\n"
	"  - cmd: \"migrate -y\"\n"
	"    if-candidate: true\n"
	"    promote: yes\n"
	"  - 'myapp serve --port 8080'\n";

/* ------------------------------------------------------------------ */
/* Valid files and defaults                                             */
/* ------------------------------------------------------------------ */

static void test_full_config(void)
{
	ltxfs_config c;
	lx_err err;
	CHECK_EQ_INT(0, load(&c, full_cfg, &err));
	CHECK_STR_CONTAINS(c.origin, "config.yml");
	CHECK_STR_CONTAINS(c.fuse.dir, "/litefs");
	CHECK(c.fuse.debug);
	CHECK(c.fuse.allow_other);
	CHECK_EQ_INT(CONFIG_LOCKS_KERNEL, c.fuse.locks);
	CHECK(strcmp(c.data.dir, "/var/lib/litefs") == 0);
	CHECK_EQ_U64(5400ULL * 1000000000ULL, c.data.retention_ns);
	CHECK_EQ_U64(512000000ULL, c.data.retention_bytes);
	CHECK_EQ_INT(CONFIG_SYNC_ALWAYS, c.data.sync);
	CHECK(strcmp(c.http.addr, "127.0.0.1:20203") == 0);
	CHECK_EQ_INT(CONFIG_LEASE_STATIC, c.lease.type);
	CHECK(!c.lease.candidate);
	CHECK(strcmp(c.lease.hostname, "primary-1") == 0);
	CHECK(strcmp(c.lease.advertise_url, "http://primary-1:20202") == 0);
	CHECK_EQ_U64(0xab, c.lease.node_id);
	CHECK_EQ_INT(LX_DEBUG, c.log.level);
	CHECK_EQ_INT(2, c.exec.n);
	if (c.exec.n == 2) {
		CHECK(strcmp(c.exec.cmds[0].cmd, "migrate -y") == 0);
		CHECK(c.exec.cmds[0].if_candidate && c.exec.cmds[0].promote);
		CHECK(strcmp(c.exec.cmds[1].cmd, "myapp serve --port 8080") == 0);
		CHECK(!c.exec.cmds[1].if_candidate && !c.exec.cmds[1].promote);
	}
	CHECK_EQ_U64(1500ULL * 1000000ULL, c.http.health_max_lag_ns);
	config_free(&c);
	config_free(&c); /* idempotent */
}

static void test_defaults(void)
{
	ltxfs_config c;
	lx_err err;
	char host[256] = "";
	char want[300];

	CHECK_EQ_INT(0, gethostname(host, sizeof(host) - 1));
	CHECK_EQ_INT(0, config_load_string(&c, MIN_CFG, strlen(MIN_CFG), NULL, &err));
	CHECK_STR_CONTAINS(c.origin, "<config>");
	CHECK(!c.fuse.debug && !c.fuse.allow_other);
	CHECK_EQ_INT(CONFIG_LOCKS_LTXFS, c.fuse.locks);
	CHECK_EQ_U64(600ULL * 1000000000ULL, c.data.retention_ns);
	CHECK_EQ_U64(1ULL << 30, c.data.retention_bytes);
	CHECK_EQ_INT(CONFIG_SYNC_APP, c.data.sync);
	CHECK_EQ_U64(0, c.data.max_open_files);
	CHECK(strcmp(c.http.addr, ":20202") == 0);
	CHECK_EQ_INT(CONFIG_LEASE_STATIC, c.lease.type);
	CHECK(c.lease.candidate);
	CHECK(c.lease.hostname != NULL && strcmp(c.lease.hostname, host) == 0);
	snprintf(want, sizeof(want), "http://%s:20202", host);
	CHECK(c.lease.advertise_url != NULL && strcmp(c.lease.advertise_url, want) == 0);
	CHECK_EQ_U64(0, c.lease.node_id);
	CHECK_EQ_INT(LX_INFO, c.log.level);
	CHECK_EQ_INT(0, c.exec.n);
	config_free(&c);

	/* data.max-open-files: a plain count */
	CHECK_EQ_INT(0, load(&c, "fuse:\n  dir: /mnt/ltxfs\ndata:\n  dir: /var/lib/ltxfs\n"
			     "  max-open-files: 64\n", &err));
	CHECK_EQ_U64(64, c.data.max_open_files);
	config_free(&c);
	CHECK_EQ_INT(-EINVAL, load(&c, "fuse:\n  dir: /mnt/ltxfs\ndata:\n  dir: /var/lib/ltxfs\n"
			     "  max-open-files: -1\n", &err));
	CHECK_STR_CONTAINS(err.msg, "data.max-open-files");
	config_free(&c);

	/* The advertised port follows http.addr; a single exec string. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  addr: 10.0.0.1:9999\n"
			     "lease:\n  hostname: n1\nexec: run me\n", &err));
	CHECK(strcmp(c.lease.advertise_url, "http://n1:9999") == 0);
	CHECK_EQ_INT(1, c.exec.n);
	CHECK(c.exec.n == 1 && strcmp(c.exec.cmds[0].cmd, "run me") == 0);
	config_free(&c);

	/* A static replica's hostname defaults to the primary's URL host. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG "lease:\n  candidate: false\n"
			     "  advertise-url: https://[fd00::1]:20202/x\n", &err));
	CHECK(strcmp(c.lease.hostname, "fd00::1") == 0);
	config_free(&c);

	/* Empty sections and an empty exec list are fine. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG "log:\nexec: []\n", &err));
	CHECK_EQ_INT(0, c.exec.n);
	config_free(&c);

	/* init + load (the mount command's pattern) leaks nothing. */
	config_init_defaults(&c);
	CHECK(c.http.addr == NULL && c.lease.candidate);
	CHECK_EQ_INT(0, load(&c, MIN_CFG, &err));
	config_free(&c);
}

static void test_programmatic_resolve(void)
{
	ltxfs_config c;
	lx_err err;
	config_init_defaults(&c);
	CHECK_EQ_INT(-EINVAL, config_validate(&c, &err));
	CHECK_STR_CONTAINS(err.msg, "fuse.dir is required");
	c.fuse.dir = strdup("/a");
	c.data.dir = strdup("/b");
	c.lease.hostname = strdup("h");
	CHECK_EQ_INT(0, config_resolve(&c, &err));
	CHECK(strcmp(c.http.addr, ":20202") == 0);
	CHECK(strcmp(c.lease.advertise_url, "http://h:20202") == 0);
	CHECK_EQ_INT(0, config_validate(&c, &err));
	c.data.retention_ns = 0;
	CHECK_EQ_INT(-EINVAL, config_validate(&c, &err));
	CHECK_STR_CONTAINS(err.msg, "config: data.retention must be greater than 0");
	config_free(&c);
}

static void test_load_file(void)
{
	char path[] = "/tmp/ltxfs-test-config-XXXXXX";
	ltxfs_config c;
	lx_err err;
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ_INT((long long)strlen(full_cfg), write(fd, full_cfg, strlen(full_cfg)));
	close(fd);
	CHECK_EQ_INT(0, config_load_file(&c, path, &err));
	CHECK_STR_CONTAINS(c.origin, path);
	CHECK_EQ_INT(2, c.exec.n);
	config_free(&c);
	unlink(path);

	CHECK_EQ_INT(-ENOENT, config_load_file(&c, path, &err));
	CHECK_STR_CONTAINS(err.msg, path);
	CHECK_STR_CONTAINS(err.msg, "No such file");
	CHECK(c.origin == NULL);
	config_free(&c);

	/* A directory is not a config file. */
	CHECK(config_load_file(&c, "/tmp", &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "/tmp");
	config_free(&c);
}

/* "a.b.c" with value v as nested YAML mappings. */
static void nested_yaml(const char *key, const char *v, char *out, size_t cap)
{
	size_t len = 0;
	int depth = 0;
	for (const char *seg = key, *dot;; seg = dot + 1, depth++) {
		dot = strchr(seg, '.');
		if (dot == NULL) {
			snprintf(out + len, cap - len, "%*s%s: %s\n", 2 * depth, "", seg, v);
			return;
		}
		len += (size_t)snprintf(out + len, cap - len, "%*s%.*s:\n", 2 * depth, "",
					(int)(dot - seg), seg);
	}
}

/* "\n" + indentation + the leaf of `key` + ":", as a dump prints it. */
static void dumped_key(const char *key, char *out, size_t cap)
{
	int depth = 0;
	for (const char *p = key; *p; p++)
		depth += *p == '.';
	snprintf(out, cap, "\n%*s%s:", 2 * depth, "", strrchr(key, '.') ? strrchr(key, '.') + 1 : key);
}

static void test_known_keys(void)
{
	const char *const *keys = config_known_keys();
	size_t n = 0;
	for (; keys[n] != NULL; n++) {
		/* Each key is accepted by the parser: a value of the wrong
		 * type is rejected by name, never as an unknown key. */
		char yaml[256];
		const char *k = keys[n];
		ltxfs_config c;
		lx_err err;
		nested_yaml(k, "{a: 1}", yaml, sizeof(yaml));
		CHECK_EQ_INT(-EINVAL, load(&c, yaml, &err));
		CHECK_STR_CONTAINS(err.msg, k);
		CHECK(strstr(err.msg, "unknown key") == NULL);
		config_free(&c);
	}
	CHECK_EQ_INT(68, n);
	CHECK(strcmp(keys[0], "fuse.dir") == 0);
	CHECK(strcmp(keys[n - 1], "exec") == 0);
}

/* The HTTP API's limits: counts, and the half kept for everything else. */
static void test_http_limits(void)
{
	ltxfs_config c;
	lx_err err;
	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  max-connections: 100\n  max-event-streams: 40\n"
			     "  max-transfers: 10\n  max-import-size: 1GiB\n", &err));
	CHECK_EQ_INT(100, (int)c.http.max_connections);
	CHECK_EQ_INT(40, (int)c.http.max_event_streams);
	CHECK_EQ_INT(10, (int)c.http.max_transfers);
	CHECK(c.http.max_import_size == 1ULL << 30);
	config_free(&c);
	CHECK_REJECT(MIN_CFG "http:\n  max-connections: 100\n  max-event-streams: 41\n"
		     "  max-transfers: 10\n", "at most half of http.max-connections (100)");
	CHECK_REJECT(MIN_CFG "http:\n  max-connections: -1\n", "not a whole number");
	CHECK_REJECT(MIN_CFG "http:\n  max-connections: 12x\n", "not a whole number");
	CHECK_REJECT(MIN_CFG "http:\n  max-connections: 99999999999\n", "too large");
	CHECK_REJECT(MIN_CFG "http:\n  max-connections: 3\n  max-event-streams: 0\n"
		     "  max-transfers: 0\n", "at least 4");
	CHECK_REJECT(MIN_CFG "http:\n  max-import-size: 0\n", "greater than 0");
	CHECK_REJECT(MIN_CFG "http:\n  max-connections-per-ip: 257\n",
		     "http.max-connections-per-ip (257) must be at most http.max-connections (256)");
}

/* ------------------------------------------------------------------ */
/* Tokens, TLS and exposure (issue 13)                                  */
/* ------------------------------------------------------------------ */

static char *dump_to_string(const ltxfs_config *c);
static void check_round_trip(const char *yaml);

#define TOKEN_A "0123456789abcdef-full"
#define TOKEN_R "0123456789abcdef-read"

/* A file holding `text` under a temporary name (caller unlinks). */
static void temp_file(char *path, size_t cap, const char *text)
{
	int fd;
	snprintf(path, cap, "/tmp/ltxfs-test-token-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ_INT((int)strlen(text), (int)write(fd, text, strlen(text)));
		close(fd);
	}
}

static void test_http_tokens(void)
{
	ltxfs_config c;
	lx_err err;
	char path[64], rpath[64], yaml[512], *text;

	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  token: " TOKEN_A "\n  read-token: " TOKEN_R
			     "\n", &err));
	CHECK(c.http.token && strcmp(c.http.token, TOKEN_A) == 0);
	CHECK(c.http.read_token && strcmp(c.http.read_token, TOKEN_R) == 0);
	CHECK(!c.http.insecure);
	text = dump_to_string(&c);
	CHECK(text && strstr(text, "0123456789abcdef") == NULL);    /* never printed */
	CHECK_STR_CONTAINS(text, "\n  # token: (set, not shown)\n");
	CHECK_STR_CONTAINS(text, "\n  # read-token: (set, not shown)\n");
	free(text);
	config_free(&c);

	/* From files: the trailing newline goes; the dump shows the file. */
	temp_file(path, sizeof(path), TOKEN_A "\n");
	temp_file(rpath, sizeof(rpath), TOKEN_R "\r\n");
	snprintf(yaml, sizeof(yaml), MIN_CFG "http:\n  token-file: %s\n  read-token-file: %s\n",
		 path, rpath);
	CHECK_EQ_INT(0, load(&c, yaml, &err));
	CHECK(c.http.token && strcmp(c.http.token, TOKEN_A) == 0);
	CHECK(c.http.read_token && strcmp(c.http.read_token, TOKEN_R) == 0);
	text = dump_to_string(&c);
	CHECK(text && strstr(text, "0123456789abcdef") == NULL);
	CHECK_STR_CONTAINS(text, "  token-file: \"");
	CHECK(text && strstr(text, "# token:") == NULL);
	free(text);
	CHECK_EQ_INT(0, config_resolve(&c, &err));       /* resolving again is harmless */
	config_free(&c);
	check_round_trip(yaml);

	/* An empty file, a missing one, a short token, both forms, ... */
	{
		char empty[64];
		temp_file(empty, sizeof(empty), "\n");
		snprintf(yaml, sizeof(yaml), MIN_CFG "http:\n  token-file: %s\n", empty);
		CHECK_REJECT(yaml, "is empty");
		unlink(empty);
	}
	CHECK_REJECT(MIN_CFG "http:\n  token-file: /nonexistent/token\n",
		     "http.token-file: cannot open /nonexistent/token");
	snprintf(yaml, sizeof(yaml), MIN_CFG "http:\n  token: " TOKEN_A "\n  token-file: %s\n",
		 path);
	CHECK_REJECT(yaml, "http.token and http.token-file are both set");
	CHECK_REJECT(MIN_CFG "http:\n  token: \"\"\n", "http.token: must not be empty");
	CHECK_REJECT(MIN_CFG "http:\n  token: short\n", "http.token is 5 characters, fewer than 16");
	CHECK_REJECT(MIN_CFG "http:\n  token: \"0123456789 abcdef\"\n",
		     "not visible ASCII");
	CHECK_REJECT(MIN_CFG "http:\n  read-token: " TOKEN_R "\n",
		     "http.read-token needs http.token");
	CHECK_REJECT(MIN_CFG "http:\n  token: " TOKEN_A "\n  read-token: " TOKEN_A "\n",
		     "http.read-token is the same as http.token");
	/* The messages never quote the token. */
	{
		ltxfs_config c2;
		CHECK_EQ_INT(-EINVAL, load(&c2, MIN_CFG "http:\n  token: s3cr3t!\n", &err));
		CHECK(strstr(err.msg, "s3cr3t") == NULL);
	}
	unlink(path);
	unlink(rpath);
}

static void test_http_tls(void)
{
	ltxfs_config c;
	lx_err err;
	char *text;
	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  tls:\n    cert: /etc/ltxfs/node.crt\n"
			     "    key: /etc/ltxfs/node.key\n    ca: /etc/ltxfs/ca.crt\n"
			     "    client-auth: true\n", &err));
	CHECK(c.http.tls.cert && strcmp(c.http.tls.cert, "/etc/ltxfs/node.crt") == 0);
	CHECK(c.http.tls.key && strcmp(c.http.tls.key, "/etc/ltxfs/node.key") == 0);
	CHECK(c.http.tls.ca && strcmp(c.http.tls.ca, "/etc/ltxfs/ca.crt") == 0);
	CHECK(c.http.tls.client_auth);
	/* A node serving HTTPS is reached over HTTPS by default. */
	CHECK(c.lease.advertise_url && strncmp(c.lease.advertise_url, "https://", 8) == 0);
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "  tls:\n    cert: \"/etc/ltxfs/node.crt\"\n"
			   "    key: \"/etc/ltxfs/node.key\"\n    ca: \"/etc/ltxfs/ca.crt\"\n"
			   "    client-auth: true\n");
	free(text);
	config_free(&c);
	check_round_trip(MIN_CFG "http:\n  insecure: true\n  tls:\n    cert: /c\n    key: /k\n");
	CHECK_REJECT(MIN_CFG "http:\n  tls:\n    cert: /c\n",
		     "http.tls.cert is set without http.tls.key");
	CHECK_REJECT(MIN_CFG "http:\n  tls:\n    key: /k\n",
		     "http.tls.key is set without http.tls.cert");
	CHECK_REJECT(MIN_CFG "http:\n  tls:\n    cert: /c\n    key: /k\n    client-auth: true\n",
		     "http.tls.client-auth needs http.tls.ca");
	CHECK_REJECT(MIN_CFG "http:\n  tls:\n    ca: /ca\n    client-auth: true\n",
		     "http.tls.client-auth needs HTTPS");
	CHECK_REJECT(MIN_CFG "http:\n  tls:\n    cert: /c\n    key: /k\n    client-auth: maybe\n",
		     "http.tls.client-auth: \"maybe\" is not a boolean");
}

/* Secure by default: beyond the loopback, a token or http.insecure. */
static void test_http_exposure(void)
{
	static const struct {
		const char *addr;
		int loopback;
	} addrs[] = {
		{ ":20202", 0 }, { "0.0.0.0:20202", 0 }, { "[::]:20202", 0 },
		{ "10.0.0.1:20202", 0 }, { "node-a:20202", 0 }, { "127.0.0.1:20202", 1 },
		{ "127.3.4.5:1", 1 }, { "[::1]:20202", 1 }, { "localhost:20202", 1 },
		{ "[::ffff:127.0.0.1]:20202", 1 }, { "128.0.0.1:20202", 0 },
	};
	ltxfs_config c;
	lx_err err;
	char yaml[256];
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		CHECK_EQ_INT(addrs[i].loopback, config_addr_is_loopback(addrs[i].addr));
		snprintf(yaml, sizeof(yaml), MIN_CFG "http:\n  addr: \"%s\"\n", addrs[i].addr);
		CHECK_EQ_INT(0, load(&c, yaml, &err));
		lx_err_clear(&err);
		CHECK_EQ_INT(addrs[i].loopback ? 0 : -EINVAL, config_check_exposure(&c, &err));
		if (!addrs[i].loopback) {
			CHECK_STR_CONTAINS(err.msg, "no token is set");
			CHECK_STR_CONTAINS(err.msg, "http.token-file");
			CHECK_STR_CONTAINS(err.msg, "http.insecure: true");
		}
		config_free(&c);
	}
	/* The default http.addr is every interface: a token is needed. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG, &err));
	CHECK_EQ_INT(-EINVAL, config_check_exposure(&c, &err));
	CHECK_STR_CONTAINS(err.msg, "http.addr :20202 is reachable from other hosts");
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  token: " TOKEN_A "\n", &err));
	CHECK_EQ_INT(0, config_check_exposure(&c, &err));
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, MIN_CFG "http:\n  insecure: true\n", &err));
	CHECK_EQ_INT(0, config_check_exposure(&c, &err));
	config_free(&c);
}

/* ------------------------------------------------------------------ */
/* Environment expansion                                                */
/* ------------------------------------------------------------------ */

static void test_env_expansion(void)
{
	ltxfs_config c;
	lx_err err;
	CHECK_EQ_INT(0, load(&c,
			     "fuse:\n  dir: ${MNT}/db\n  debug: $YES\n"
			     "data:\n  dir: \"$DATA/x${EMPTY}y\"\n"
			     "http:\n  addr: \":${PORT}\"\n"
			     "lease:\n  candidate: ${REGION == PRIMARY_REGION}\n"
			     "  hostname: h-${UNSET:-dflt}-${REGION:-no}-${EMPTY:-e}\n"
			     "exec:\n  - echo $$HOME costs $$5\n"
			     "  - 'pre ${REGION:-x}${UNSET:-$$}'\n"
			     "  - ${HOSTNAME}\n", &err));
	if (err.code != 0)
		fprintf(stderr, "    %s\n", err.msg);
	CHECK(c.fuse.dir && strcmp(c.fuse.dir, "/srv/mnt/db") == 0);
	CHECK(c.fuse.debug);
	CHECK(c.data.dir && strcmp(c.data.dir, "/srv/data/xy") == 0);
	CHECK(c.http.addr && strcmp(c.http.addr, ":9000") == 0);
	CHECK(c.lease.candidate);
	CHECK(c.lease.hostname && strcmp(c.lease.hostname, "h-dflt-ams-e") == 0);
	CHECK(c.lease.advertise_url &&
	      strcmp(c.lease.advertise_url, "http://h-dflt-ams-e:9000") == 0);
	CHECK_EQ_INT(3, c.exec.n);
	if (c.exec.n == 3) {
		CHECK(strcmp(c.exec.cmds[0].cmd, "echo $HOME costs $5") == 0);
		/* A default is taken literally, "$$" included. */
		CHECK(strcmp(c.exec.cmds[1].cmd, "pre ams$$") == 0);
		CHECK(strcmp(c.exec.cmds[2].cmd, "node-a") == 0);
	}
	config_free(&c);

	/* Keys are never expanded. */
	CHECK_REJECT(MIN_CFG "$REGION: 1\n", "unknown key \"$REGION\"");
}

static void test_env_hostname_fallback(void)
{
	static const char *const no_env[] = { NULL };
	char host[256] = "";
	ltxfs_config c;
	lx_err err;
	const char *yaml = MIN_CFG "exec: ${HOSTNAME}\n";
	CHECK_EQ_INT(0, gethostname(host, sizeof(host) - 1));
	CHECK_EQ_INT(0, config_load_string_env(&c, yaml, strlen(yaml), "x.yml",
					       fake_getenv, (void *)no_env, &err));
	CHECK(c.exec.n == 1 && strcmp(c.exec.cmds[0].cmd, host) == 0);
	config_free(&c);
}

static void test_env_comparisons(void)
{
	ltxfs_config c;
	lx_err err;
	CHECK_EQ_INT(0, load(&c, MIN_CFG
			     "exec:\n"
			     "  - ${REGION == PRIMARY_REGION}\n"
			     "  - ${REGION != PRIMARY_REGION}\n"
			     "  - ${REGION=='ams'}\n"
			     "  - \"${OTHER_REGION == \\\"ams\\\"}\"\n"
			     "  - ${EMPTY == ''}\n"
			     "  - ${REGION != OTHER_REGION}\n", &err));
	CHECK_EQ_INT(6, c.exec.n);
	if (c.exec.n == 6) {
		CHECK(strcmp(c.exec.cmds[0].cmd, "true") == 0);
		CHECK(strcmp(c.exec.cmds[1].cmd, "false") == 0);
		CHECK(strcmp(c.exec.cmds[2].cmd, "true") == 0);
		CHECK(strcmp(c.exec.cmds[3].cmd, "false") == 0);
		CHECK(strcmp(c.exec.cmds[4].cmd, "true") == 0);
		CHECK(strcmp(c.exec.cmds[5].cmd, "true") == 0);
	}
	config_free(&c);
}

static void test_env_errors(void)
{
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${NOPE}\n",
		     "config.yml:6:13: lease.hostname: environment variable \"NOPE\" is not set");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: a$NOPE_2-b\n", "\"NOPE_2\" is not set");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${NOPE}\n", "${NOPE:-}");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: \"cost $5\"\n",
		     "lease.hostname: \"$\" must be followed by a variable name");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ab$\n", "write $$ for a literal $");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${REGION\n",
		     "\"${\" without a closing \"}\"");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${1X}\n", "unsupported expression ${\"1X\"}");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${ REGION }\n", "unsupported expression");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${}\n", "unsupported expression");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${REGION == 'x}\n", "unsupported expression");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${REGION == x y}\n", "unsupported expression");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${REGION ==}\n", "unsupported expression");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${NOPE == REGION}\n",
		     "environment variable \"NOPE\" is not set");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: ${REGION == NOPE}\n",
		     "environment variable \"NOPE\" is not set");
	CHECK_REJECT(MIN_CFG "lease:\n  candidate: ${EMPTY}\n",
		     "lease.candidate: \"\" is not a boolean");
	CHECK_REJECT(MIN_CFG "exec:\n  - ok\n  - $NOPE\n",
		     "config.yml:7:5: exec[1]: environment variable \"NOPE\" is not set");
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

static void test_unknown_keys(void)
{
	CHECK_REJECT("data:\n  dir: /b\n\n\nlog:\n  level: info\nfuse:\n  dri: /x\n",
		     "config.yml:8:3: unknown key \"fuse.dri\" (did you mean \"fuse.dir\"?)");
	CHECK_REJECT(MIN_CFG "tracing:\n  enabled: true\n",
		     "config.yml:5:1: unknown key \"tracing\" (a LiteFS setting");
	CHECK_REJECT("lease:\n  promote: true\n",
		     "config.yml:2:3: unknown key \"lease.promote\" (a LiteFS setting");
	CHECK_REJECT("lease:\n  consul:\n    ulr: x\n",
		     "unknown key \"lease.consul.ulr\" (did you mean \"lease.consul.url\"?)");
	CHECK_REJECT(MIN_CFG "Fuse:\n  dir: /x\n", "unknown key \"Fuse\" (did you mean \"fuse\"?)");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise_url: x\n",
		     "unknown key \"lease.advertise_url\" (did you mean \"lease.advertise-url\"?)");
	CHECK_REJECT(MIN_CFG "zzzzzz: 1\n", "unknown key \"zzzzzz\"");
	CHECK_REJECT(MIN_CFG "fuse.debug: true\n",
		     "unknown key \"fuse.debug\" (write dotted keys as nested mappings)");
	CHECK_REJECT(MIN_CFG "? [a, b]\n: 1\n", "keys must be strings, got a sequence");
	CHECK_REJECT(MIN_CFG "\"\": 1\n", "unknown key \"\"");
	CHECK_REJECT(MIN_CFG "\"a\\0b\": 1\n", "unknown key \"a\\x00b\"");
	CHECK_REJECT("data:\n  dir: /c\n  <<: {x: 1}\n", "config.yml:3:3: unknown key \"data.<<\"");
	{
		char yaml[512];
		char longkey[201];
		memset(longkey, 'k', 200);
		longkey[200] = '\0';
		snprintf(yaml, sizeof(yaml), MIN_CFG "log:\n  %s: 1\n", longkey);
		CHECK_REJECT(yaml, "unknown key \"log.kkkk");
	}
}

static void test_duplicates_and_shape(void)
{
	CHECK_REJECT("fuse:\n  dir: /a\n  debug: true\n  dir: /b\ndata:\n  dir: /c\n",
		     "config.yml:4:3: duplicate key \"fuse.dir\" (first at line 2)");
	CHECK_REJECT(MIN_CFG "fuse:\n  debug: true\n",
		     "config.yml:5:1: duplicate key \"fuse\" (first at line 1)");
	CHECK_REJECT(MIN_CFG "exec: a\nexec: b\n", "duplicate key \"exec\"");
	CHECK_REJECT("- a\n- b\n", "config.yml:1:1: the top level must be a mapping of keys, got a sequence");
	CHECK_REJECT("just text\n", "the top level must be a mapping of keys, got a scalar");
	CHECK_REJECT("", "config.yml: the configuration is empty");
	CHECK_REJECT("# only a comment\n", "the configuration is empty");
	CHECK_REJECT(MIN_CFG "---\nfuse: {}\n", "config.yml:5:1: a second YAML document");
	CHECK_REJECT("fuse: /mnt\ndata:\n  dir: /c\n",
		     "config.yml:1:7: fuse: expected a mapping, got a scalar");
	CHECK_REJECT("fuse:\n  dir:\n    - /a\ndata:\n  dir: /c\n",
		     "config.yml:3:5: fuse.dir: expected a scalar, got a sequence");
	CHECK_REJECT(MIN_CFG "exec:\n  - [a]\n", "exec[0]: expected a command string, got a sequence");
	CHECK_REJECT(MIN_CFG "exec: \"\"\n", "exec: command must not be empty");
	CHECK_REJECT(MIN_CFG "exec: {a: b}\n",
		     "config.yml:5:8: exec.a: an exec entry has only cmd, if-candidate and promote");
	CHECK_REJECT(MIN_CFG "exec:\n  - if-candidate: true\n", "exec[0]: cmd is required");
	CHECK_REJECT(MIN_CFG "exec:\n  - {cmd: a, cmd: b}\n", "duplicate key \"exec[0].cmd\"");
	CHECK_REJECT(MIN_CFG "exec:\n  - {cmd: a, if-candidate: maybe}\n",
		     "exec[0].if-candidate: expected a boolean");
	CHECK_REJECT(MIN_CFG "exec:\n  - {cmd: a, promote: true}\n",
		     "exec[0]: promote needs if-candidate: true");
	CHECK_REJECT(MIN_CFG "exec:\n  - {cmd: \"\"}\n", "exec[0].cmd: command must not be empty");
	CHECK_REJECT(MIN_CFG "http:\n  health-max-lag: 0s\n",
		     "http.health-max-lag must be greater than 0");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: \"a\\0b\"\n",
		     "lease.hostname: value contains a NUL character");
}

static void test_syntax_errors(void)
{
	CHECK_REJECT("fuse:\n  dir: /a\n data: x\n", "config.yml:3:");
	CHECK_REJECT("fuse:\n  dir: /a\n data: x\n", "YAML syntax error");
	CHECK_REJECT("fuse: [a, b\n", "YAML syntax error");
	CHECK_REJECT("fuse:\n  dir: \"unterminated\n", "config.yml:");
	CHECK_REJECT("a: *nope\n", "undefined alias");
	CHECK_REJECT("a: b: c\n", "config.yml:1:5: YAML syntax error: mapping values are not allowed");
	CHECK_REJECT("fuse:\n\tdir: /a\n", "YAML syntax error");
	CHECK_REJECT("a: \"\xff\"\n", "must be UTF-8");
}

static void test_value_errors(void)
{
	CHECK_REJECT(MIN_CFG "lease:\n  type: foo\n",
		     "config.yml:6:9: lease.type: \"foo\" is not one of static");
	CHECK_REJECT(MIN_CFG "lease:\n  type: consul\n",
		     "lease.consul.url is required when lease.type is consul");
	CHECK_REJECT(MIN_CFG "lease:\n  type: consul\n  consul:\n    url: http://c:8500\n"
		     "    key: /abs\n", "lease.consul.key must be segments");
	CHECK_REJECT(MIN_CFG "lease:\n  type: consul\n  consul:\n    url: http://c:8500\n"
		     "    ttl: 100ms\n", "lease.consul.ttl must be between 500ms and 1h");
	CHECK_REJECT(MIN_CFG "lease:\n  type: consul\n  consul:\n    url: http://c:8500\n"
		     "    lock-delay: 2m\n", "lease.consul.lock-delay must be at most 60s");
	CHECK_REJECT(MIN_CFG "lease:\n  type: etcd\n",
		     "lease.etcd.url is required when lease.type is etcd");
	CHECK_REJECT(MIN_CFG "lease:\n  type: etcd\n  etcd:\n    url: http://e:2379\n"
		     "    ttl: 1500ms\n", "lease.etcd.ttl must be whole seconds between 2s and 1h");
	CHECK_REJECT(MIN_CFG "lease:\n  type: etcd\n  etcd:\n    url: http://e:2379\n"
		     "    key: a//b\n", "lease.etcd.key must be segments");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  sync: never\n",
		     "data.sync: \"never\" is not one of app, always");
	CHECK_REJECT("fuse:\n  dir: /a\n  locks: posix\ndata:\n  dir: /b\n",
		     "fuse.locks: \"posix\" is not one of ltxfs, kernel");
	CHECK_REJECT(MIN_CFG "log:\n  level: INFO\n",
		     "log.level: \"INFO\" is not one of debug, info, warn, error");
	CHECK_REJECT(MIN_CFG "log:\n  level: [info]\n", "log.level: expected a scalar, got a sequence");
	CHECK_REJECT("fuse:\n  dir: /a\n  debug: maybe\ndata:\n  dir: /b\n",
		     "config.yml:3:10: fuse.debug: \"maybe\" is not a boolean (use true/false, yes/no or on/off)");
	CHECK_REJECT("fuse:\n  dir: /a\n  allow-other:\ndata:\n  dir: /b\n",
		     "fuse.allow-other: \"\" is not a boolean");
	CHECK_REJECT("fuse:\n  dir: /a\n  debug: {}\ndata:\n  dir: /b\n",
		     "fuse.debug: expected a boolean, got a mapping");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  retention: 10\n",
		     "data.retention: \"10\" is not a duration");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  retention: 0\n",
		     "data.retention must be greater than 0");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  retention: 9999999999h\n",
		     "data.retention: \"9999999999h\" is too long a duration");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  retention-bytes: 1.5GB\n",
		     "data.retention-bytes: \"1.5GB\" is not a size");
	CHECK_REJECT("fuse:\n  dir: /a\ndata:\n  dir: /b\n  retention-bytes: 99999999999TiB\n",
		     "data.retention-bytes: \"99999999999TiB\" is too large");
	CHECK_REJECT(MIN_CFG "http:\n  addr: localhost\n",
		     "http.addr: \"localhost\" is not host:port or :port");
	CHECK_REJECT(MIN_CFG "http:\n  addr: \":0\"\n", "is not host:port");
	CHECK_REJECT(MIN_CFG "http:\n  addr: \":65536\"\n", "is not host:port");
	CHECK_REJECT(MIN_CFG "http:\n  addr: \"::1:80\"\n", "is not host:port");
	CHECK_REJECT(MIN_CFG "http:\n  addr: \"a b:80\"\n", "is not host:port");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise-url: ftp://x\n",
		     "lease.advertise-url: \"ftp://x\" is not an http:// or https:// URL");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise-url: \"http://\"\n", "is not an http://");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise-url: \"http://h:99999\"\n", "is not an http://");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise-url: \"http://a b\"\n", "is not an http://");
	CHECK_REJECT(MIN_CFG "lease:\n  advertise-url: \"http://u@h\"\n", "is not an http://");
	CHECK_REJECT(MIN_CFG "lease:\n  node-id: 123\n",
		     "lease.node-id: \"123\" is not a non-zero node ID of 16 hex digits");
	CHECK_REJECT(MIN_CFG "lease:\n  node-id: \"0000000000000000\"\n", "non-zero node ID");
	CHECK_REJECT(MIN_CFG "lease:\n  node-id: 000000000000000g\n", "non-zero node ID");
	CHECK_REJECT(MIN_CFG "lease:\n  hostname: \"\"\n", "lease.hostname: must not be empty");
	/* Control characters are escaped in messages. */
	CHECK_REJECT(MIN_CFG "log:\n  level: \"a\\nb\"\n", "\"a\\x0ab\" is not one of");
}

/* URLs are checked by libcurl's URL parser (config/values.c): what it
 * refuses, and what ltxfs refuses on top (other schemes, a user name, port
 * 0, one slash), is an error; each accepted one yields the host. */
static void test_urls(void)
{
	static const struct {
		const char *url;
		const char *host;       /* NULL: refused */
	} urls[] = {
		{ "http://primary-1:20202", "primary-1" },
		{ "https://[fd00::1]:20202/x", "fd00::1" },
		{ "http://h_x.y-z?q=1#f", "h_x.y-z" },
		{ "http://h:080/", "h" },
		/* Accepted since libcurl checks them: a scheme in capitals
		 * (RFC 3986), an empty port (the scheme's default). */
		{ "HTTP://h:1", "h" },
		{ "http://h:/x", "h" },
		{ "ftp://x", NULL },
		{ "http://", NULL },
		{ "http://:80", NULL },
		{ "http://h:0", NULL },
		{ "http://h:99999", NULL },
		{ "http://h:1:2", NULL },
		{ "http://a b", NULL },
		{ "http://h/a b", NULL },
		{ "http://h/\\x01", NULL },
		{ "http://u@h", NULL },
		{ "http://u:p@h", NULL },
		{ "http:/h", NULL },
		{ "http:h", NULL },
		{ "h:8500", NULL },
		{ "http://[::1", NULL },
		{ "http://h\\\\x", NULL },
		/* Refused since libcurl checks it: a bracketed host that is
		 * not an IPv6 address. */
		{ "http://[zz]/", NULL },
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char yaml[512];
		ltxfs_config c;
		lx_err err;
		int rc;
		snprintf(yaml, sizeof(yaml), MIN_CFG "lease:\n  candidate: false\n"
			 "  advertise-url: \"%s\"\n", urls[i].url);
		rc = load(&c, yaml, &err);
		if ((rc == 0) != (urls[i].host != NULL))
			fprintf(stderr, "  %s: load returned %d (%s)\n", urls[i].url, rc,
				rc ? err.msg : "");
		CHECK_EQ_INT(urls[i].host ? 0 : -EINVAL, rc);
		if (rc == 0) {
			CHECK(strcmp(c.lease.hostname, urls[i].host) == 0);
			config_free(&c);
		} else {
			CHECK_STR_CONTAINS(err.msg, "is not an http:// or https:// URL with a host");
		}
	}
	/* The lease services' URLs are checked alike. */
	CHECK_REJECT(MIN_CFG "lease:\n  type: consul\n  consul:\n    url: \"http://[zz]:8500\"\n",
		     "lease.consul.url: \"http://[zz]:8500\" is not an http:// or https:// URL");
	CHECK_REJECT(MIN_CFG "lease:\n  type: etcd\n  etcd:\n    url: \"h:2379\"\n",
		     "lease.etcd.url: \"h:2379\" is not an http:// or https:// URL");
}

static void test_cross_key_errors(void)
{
	ltxfs_config c;
	lx_err err;
	CHECK_REJECT("data:\n  dir: /b\n", "config.yml: fuse.dir is required");
	CHECK_REJECT("fuse:\n  dir: /b\n", "config.yml: data.dir is required");
	CHECK_REJECT("fuse:\n  dir:\ndata:\n  dir: /b\n", "fuse.dir: must not be empty");
	CHECK_REJECT("fuse:\n  dir: /x/y/\ndata:\n  dir: /x//y\n",
		     "fuse.dir and data.dir must be different directories (both are \"/x/y\")");
	CHECK_REJECT("fuse:\n  dir: /x\ndata:\n  dir: /x/data\n",
		     "data.dir \"/x/data\" must not be inside fuse.dir \"/x\"");
	CHECK_REJECT("fuse:\n  dir: /x/data/../data/mnt\ndata:\n  dir: /x/./data\n",
		     "fuse.dir \"/x/data/../data/mnt\" must not be inside data.dir");
	CHECK_REJECT("fuse:\n  dir: /\ndata:\n  dir: /x\n", "must not be inside fuse.dir");
	CHECK_REJECT("fuse:\n  dir: mnt\ndata:\n  dir: ./mnt/d\n", "must not be inside fuse.dir");
	CHECK_REJECT(MIN_CFG "lease:\n  candidate: false\n",
		     "lease.advertise-url is required when lease.type is static and lease.candidate is false");
	/* Sibling directories with a common prefix are fine. */
	CHECK_EQ_INT(0, load(&c, "fuse:\n  dir: /x/db\ndata:\n  dir: /x/dbdata\n", &err));
	config_free(&c);
}

/* ------------------------------------------------------------------ */
/* Value parsers                                                        */
/* ------------------------------------------------------------------ */

static void test_durations(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t ns;
	} cases[] = {
		{ "0", 0, 0 },
		{ "10s", 0, 10000000000ULL },
		{ "500ms", 0, 500000000ULL },
		{ "1m30s", 0, 90000000000ULL },
		{ "2h", 0, 7200000000000ULL },
		{ "1h30m", 0, 5400000000000ULL },
		{ "1.5h", 0, 5400000000000ULL },
		{ ".5s", 0, 500000000ULL },
		{ "1.s", 0, 1000000000ULL },
		{ "100ns", 0, 100 },
		{ "3us", 0, 3000 },
		{ "3\xc2\xb5s", 0, 3000 },
		{ "3\xce\xbcs", 0, 3000 },
		{ "1s1s", 0, 2000000000ULL },
		{ "0s", 0, 0 },
		{ "0.000000001s", 0, 1 },
		{ "2562047h", 0, 2562047ULL * 3600000000000ULL },
		{ "2562048h", -ERANGE, 0 },
		{ "99999999999999999999s", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "10", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ ".s", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 },
		{ "+1s", -EINVAL, 0 },
		{ "1 s", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 },
		{ "1S", -EINVAL, 0 },
		{ "1m30", -EINVAL, 0 },
		{ "1..5s", -EINVAL, 0 },
		{ "10s ", -EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ns = 777;
		int rc = config_parse_duration(cases[i].in, &ns);
		if (rc != cases[i].rc)
			unit_fail(__FILE__, __LINE__, "duration \"%s\": rc %d, want %d",
				  cases[i].in, rc, cases[i].rc);
		else if (rc == 0 && ns != cases[i].ns)
			unit_fail(__FILE__, __LINE__, "duration \"%s\": %llu, want %llu",
				  cases[i].in, (unsigned long long)ns,
				  (unsigned long long)cases[i].ns);
		else if (rc != 0 && ns != 777)
			unit_fail(__FILE__, __LINE__, "duration \"%s\": output written on error",
				  cases[i].in);
	}
}

static void test_sizes(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0, 0 },
		{ "100", 0, 100 },
		{ "100B", 0, 100 },
		{ "64KB", 0, 64000 },
		{ "64KiB", 0, 65536 },
		{ "64kib", 0, 65536 },
		{ "512MB", 0, 512000000ULL },
		{ "512MiB", 0, 512ULL << 20 },
		{ "1GB", 0, 1000000000ULL },
		{ "1GiB", 0, 1ULL << 30 },
		{ "1 GiB", 0, 1ULL << 30 },
		{ "2TB", 0, 2000000000000ULL },
		{ "2TiB", 0, 2ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "16777216TiB", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "GiB", -EINVAL, 0 },
		{ "1K", -EINVAL, 0 },
		{ "1.5GiB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1  GiB", -EINVAL, 0 },
		{ "1PB", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t b = 777;
		int rc = config_parse_size(cases[i].in, &b);
		if (rc != cases[i].rc)
			unit_fail(__FILE__, __LINE__, "size \"%s\": rc %d, want %d",
				  cases[i].in, rc, cases[i].rc);
		else if (rc == 0 && b != cases[i].bytes)
			unit_fail(__FILE__, __LINE__, "size \"%s\": %llu, want %llu",
				  cases[i].in, (unsigned long long)b,
				  (unsigned long long)cases[i].bytes);
	}
}

static void test_bools(void)
{
	static const char *const t[] = { "true", "TRUE", "True", "yes", "Yes", "on", "ON" };
	static const char *const f[] = { "false", "False", "no", "NO", "off", "Off" };
	static const char *const bad[] = { "", "1", "0", "y", "n", "tru", "yes ", "enabled" };
	bool v;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = false;
		CHECK_EQ_INT(0, config_parse_bool(t[i], &v));
		CHECK(v);
	}
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		v = true;
		CHECK_EQ_INT(0, config_parse_bool(f[i], &v));
		CHECK(!v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(-EINVAL, config_parse_bool(bad[i], &v));
}

/* ------------------------------------------------------------------ */
/* Dump                                                                 */
/* ------------------------------------------------------------------ */

/* Dump `c` into a heap string (caller frees). */
static char *dump_to_string(const ltxfs_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	CHECK_EQ_INT(0, config_dump(c, f));
	fclose(f);
	return buf;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_config(const ltxfs_config *a, const ltxfs_config *b)
{
	bool same = strcmp(a->fuse.dir, b->fuse.dir) == 0 &&
		a->fuse.debug == b->fuse.debug &&
		a->fuse.allow_other == b->fuse.allow_other &&
		a->fuse.locks == b->fuse.locks &&
		strcmp(a->data.dir, b->data.dir) == 0 &&
		a->data.retention_ns == b->data.retention_ns &&
		a->data.retention_bytes == b->data.retention_bytes &&
		a->data.sync == b->data.sync &&
		strcmp(a->http.addr, b->http.addr) == 0 &&
		a->lease.type == b->lease.type &&
		a->lease.candidate == b->lease.candidate &&
		strcmp(a->lease.hostname, b->lease.hostname) == 0 &&
		strcmp(a->lease.advertise_url, b->lease.advertise_url) == 0 &&
		a->lease.node_id == b->lease.node_id &&
		a->log.level == b->log.level && a->exec.n == b->exec.n &&
		same_str(a->http.token_file, b->http.token_file) &&
		same_str(a->http.read_token_file, b->http.read_token_file) &&
		same_str(a->http.tls.cert, b->http.tls.cert) &&
		same_str(a->http.tls.key, b->http.tls.key) &&
		same_str(a->http.tls.ca, b->http.tls.ca) &&
		a->http.tls.client_auth == b->http.tls.client_auth &&
		a->http.insecure == b->http.insecure;
	for (size_t i = 0; same && i < a->exec.n; i++)
		same = strcmp(a->exec.cmds[i].cmd, b->exec.cmds[i].cmd) == 0 &&
		       a->exec.cmds[i].if_candidate == b->exec.cmds[i].if_candidate &&
		       a->exec.cmds[i].promote == b->exec.cmds[i].promote;
	return same;
}

/* load -> dump -> load gives the same struct. */
static void check_round_trip(const char *yaml)
{
	ltxfs_config a, b;
	lx_err err;
	char *text;
	CHECK_EQ_INT(0, load(&a, yaml, &err));
	if (err.code != 0) {
		fprintf(stderr, "    %s\n", err.msg);
		return;
	}
	text = dump_to_string(&a);
	CHECK(text != NULL);
	if (text != NULL) {
		CHECK_EQ_INT(0, load(&b, text, &err));
		if (err.code != 0)
			fprintf(stderr, "    %s\n--- dump:\n%s", err.msg, text);
		else
			CHECK(same_config(&a, &b));
		config_free(&b);
	}
	free(text);
	config_free(&a);
}

static void test_dump(void)
{
	ltxfs_config c;
	lx_err err;
	char *text;

	CHECK_EQ_INT(0, load(&c, full_cfg, &err));
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "# effective configuration, loaded from \"config.yml\"\n");
	CHECK_STR_CONTAINS(text, "fuse:\n  dir: \"/litefs\"\n  debug: true\n  allow-other: true\n");
	CHECK_STR_CONTAINS(text, "  retention: \"1h30m\"\n  retention-bytes: 512MB\n  sync: always\n");
	CHECK_STR_CONTAINS(text, "http:\n  addr: \"127.0.0.1:20203\"\n");
	CHECK_STR_CONTAINS(text, "  node-id: \"00000000000000AB\"\n");
	CHECK_STR_CONTAINS(text, "log:\n  level: debug\n");
	CHECK_STR_CONTAINS(text, "exec:\n  - cmd: \"migrate -y\"\n    if-candidate: true\n"
			   "    promote: true\n  - \"myapp serve --port 8080\"\n");
	CHECK_STR_CONTAINS(text, "  health-max-lag: \"1s500ms\"\n");
	/* Every known key appears in a full dump (Consul's with a Consul
	 * lease, and only then). */
	CHECK(strstr(text, "consul") == NULL);
	free(text);
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, consul_cfg, &err));
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "lease:\n  type: consul\n");
	CHECK_STR_CONTAINS(text, "\n  consul:\n    url: \"http://127.0.0.1:8500\"\n"
			   "    key: \"app/primary\"\n    # token: (set, not shown)\n    ttl: \"2s\"\n"
			   "    lock-delay: \"500ms\"\nreplication:\n  mode: async\n");
	CHECK(strstr(text, "s3cret") == NULL);      /* a secret is never printed */
	for (const char *const *k = config_known_keys(); *k != NULL; k++) {
		char needle[80];
		/* secrets print as comments; tokens and TLS are in test_http_security */
		if (strcmp(*k, "lease.consul.token") == 0 ||
		    (strncmp(*k, "http.", 5) == 0 && (strstr(*k, "token") || strstr(*k, "tls."))) ||
		    strncmp(*k, "backup.", 7) == 0 ||   /* test_backup_config */
		    strncmp(*k, "proxy.", 6) == 0)      /* test_proxy_config */
			continue;
		dumped_key(*k, needle, sizeof(needle));
		CHECK_STR_CONTAINS(text, needle);
	}
	free(text);
	config_free(&c);
	/* etcd's keys with an etcd lease, and no Consul key. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG "lease:\n  type: etcd\n  etcd:\n"
			     "    url: http://127.0.0.1:2379\n    ttl: 3s\n", &err));
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "\n  etcd:\n    url: \"http://127.0.0.1:2379\"\n"
			   "    key: \"ltxfs/primary\"\n    ttl: \"3s\"\nreplication:\n");
	CHECK(strstr(text, "consul") == NULL);
	free(text);
	config_free(&c);

	/* Defaults: 1GiB and 10m print in their short forms. */
	CHECK_EQ_INT(0, load(&c, MIN_CFG, &err));
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "  retention: \"10m\"\n  retention-bytes: 1GiB\n  sync: app\n");
	CHECK(strstr(text, "node-id") == NULL && strstr(text, "exec") == NULL);
	free(text);
	config_free(&c);

	check_round_trip(full_cfg);
	check_round_trip(MIN_CFG);
	check_round_trip("fuse:\n  dir: \"/m n\\t$$x\\\"q\\\\\"\n"
			 "data:\n  dir: /d\n  retention: 1.5s\n"
			 "  retention-bytes: 1536\nexec: \"a '$$HOME' \\\"b\\\"\"\n");
	check_round_trip("fuse:\n  dir: /a\ndata:\n  dir: /b\n"
			 "  retention: 1h0m0.000000001s\n  retention-bytes: 3000000\n");
}

/* ------------------------------------------------------------------ */
/* Robustness                                                           */
/* ------------------------------------------------------------------ */

/* Every prefix and many single-byte mutations of the full config load
 * or fail cleanly (the checks here are that nothing crashes or leaks and
 * that a failure always has a message and leaves the struct empty). */
static void test_truncations_and_mutations(void)
{
	static const char subst[] = { ':', '\n', ' ', '[', '{', '"', '\'', '$',
				      '-', '&', '*', '!', '\0', '\xff', '#', '\t' };
	size_t n = strlen(full_cfg);
	char *buf = malloc(n + 1);
	int ok = 0, failed = 0;
	CHECK(buf != NULL);
	if (buf == NULL)
		return;
	for (size_t len = 0; len <= n; len++) {
		ltxfs_config c;
		lx_err err;
		int rc;
		memcpy(buf, full_cfg, len);
		rc = config_load_string_env(&c, buf, len, "t.yml", fake_getenv,
					    (void *)test_env, &err);
		if (rc == 0) {
			ok++;
		} else {
			failed++;
			CHECK(err.msg[0] != '\0');
			CHECK(c.origin == NULL && c.exec.cmds == NULL);
		}
		config_free(&c);
	}
	for (size_t pos = 0; pos < n; pos++) {
		for (size_t s = 0; s < sizeof(subst); s++) {
			ltxfs_config c;
			lx_err err;
			int rc;
			memcpy(buf, full_cfg, n);
			buf[pos] = subst[s];
			rc = config_load_string_env(&c, buf, n, "m.yml", fake_getenv,
						    (void *)test_env, &err);
			if (rc != 0)
				CHECK(err.msg[0] != '\0');
			config_free(&c);
		}
	}
	free(buf);
	CHECK(ok > 0);
	CHECK(failed > 0);
}

static void test_hostile_yaml(void)
{
	static const char *const inputs[] = {
		/* Recursive and repeated aliases: the walk is bounded. */
		"a: &x [*x]\n",
		"fuse: &f {dir: /a}\ndata: {dir: /b}\nexec: &e [a, b]\nlog: *f\n",
		"fuse: {dir: /a}\ndata: {dir: /b}\nexec: &l [x, *l]\n",
		"x: &a [a, a, a, a]\ny: &b [*a, *a, *a, *a]\nz: [*b, *b, *b, *b]\n",
		/* Deep nesting. */
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"fuse: {dir: {dir: {dir: {dir: x}}}}\n",
		"%YAML 1.1\n---\nfuse: {dir: /a}\n",
		"%YAML 9.9\n---\na: 1\n",
		"!!map {fuse: !!str {dir: /a}}\n",
		"fuse:\n  dir: !!binary aGVsbG8=\ndata:\n  dir: /b\n",
		("\xef\xbb\xbf" "fuse: {dir: /a}\ndata: {dir: /b}\n"), /* BOM */
		"...\n",
		"---\n...\n---\n",
		"? \n",
		"fuse: {dir: /a}\ndata: {dir: /b}\nexec: [[[]]]\n",
	};
	ltxfs_config c;
	lx_err err;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		(void)load(&c, inputs[i], &err);
		config_free(&c);
	}
	/* The BOM-prefixed config is valid; aliases are checked like
	 * anything else. */
	CHECK_EQ_INT(0, load(&c, inputs[10], &err));
	config_free(&c);
	CHECK_EQ_INT(-EINVAL, load(&c, inputs[0], &err));
	CHECK_STR_CONTAINS(err.msg, "unknown key \"a\"");
	CHECK_EQ_INT(-EINVAL, load(&c, inputs[2], &err));
	CHECK_STR_CONTAINS(err.msg, "exec[1]: expected a command string, got a sequence");
	CHECK_EQ_INT(-EINVAL, load(&c, inputs[1], &err));
	CHECK_STR_CONTAINS(err.msg, "unknown key \"log.dir\"");

	/* A long value. */
	{
		size_t n = 200000;
		char *big = malloc(n + 64);
		CHECK(big != NULL);
		if (big != NULL) {
			int o = sprintf(big, MIN_CFG "exec: ");
			memset(big + o, 'x', n);
			big[o + n] = '\0';
			CHECK_EQ_INT(-EINVAL, load(&c, big, &err));
			CHECK_STR_CONTAINS(err.msg, "exec: value longer than");
			config_free(&c);
			free(big);
		}
	}
}


/* ------------------------------------------------------------------ */
/* docs/configuration.md agrees with the parser                         */
/* ------------------------------------------------------------------ */

#define REFERENCE "docs/configuration.md"
#define MAX_ROWS 96

typedef struct doc_row {
	char key[64];
	char def[64];      /* the Default cell when it is one `literal`, else "" */
} doc_row;

/* The rows of the "## Reference" table: | `key` | type | default | ... | */
static size_t read_reference(doc_row *rows, size_t cap)
{
	FILE *f = fopen(REFERENCE, "r");
	char line[4096];
	int in_reference = 0;
	size_t n = 0;
	if (f == NULL) {
		fprintf(stderr, "  cannot open %s (run from the repository root)\n", REFERENCE);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *cell[4];
		size_t k = 0;
		if (strncmp(line, "## ", 3) == 0)
			in_reference = strncmp(line, "## Reference", 12) == 0;
		if (!in_reference || strncmp(line, "| `", 3) != 0 || n == cap)
			continue;
		for (char *p = line; k < 4 && (p = strchr(p, '|')) != NULL; p++)
			cell[k++] = p + 1;
		if (k < 4)
			continue;
		sscanf(cell[0], " `%63[^`]`", rows[n].key);
		rows[n].def[0] = '\0';
		sscanf(cell[2], " `%63[^`]`", rows[n].def);
		/* Only a cell that is exactly one `literal` is a checkable default. */
		{
			char *a = strchr(cell[2], '`'), *b = a ? strchr(a + 1, '`') : NULL;
			char *c2 = b ? strchr(b + 1, '`') : NULL;
			if (a == NULL || b == NULL || a > cell[3] || (c2 != NULL && c2 < cell[3]))
				rows[n].def[0] = '\0';
			for (char *q = cell[2]; a != NULL && q < a; q++)
				if (*q != ' ')
					rows[n].def[0] = '\0';
		}
		n++;
	}
	fclose(f);
	return n;
}

/* A minimal file, with `key: "value"` added when value is non-NULL; keys
 * of a lease backend come with that backend selected. */
static void config_with(const char *key, const char *value, char *out, size_t cap)
{
	const char *leaf = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
	char line[160] = "";
	if (value != NULL)
		snprintf(line, sizeof(line), "%s%s: \"%s\"\n",
			 strncmp(key, "lease.consul.", 13) == 0 ||
			 strncmp(key, "lease.etcd.", 11) == 0 ? "    " : "  ", leaf, value);
	if (strncmp(key, "fuse.", 5) == 0)
		snprintf(out, cap, "data:\n  dir: /var/lib/ltxfs\nfuse:\n  dir: /mnt/ltxfs\n%s", line);
	else if (strncmp(key, "data.", 5) == 0)
		snprintf(out, cap, "fuse:\n  dir: /mnt/ltxfs\ndata:\n  dir: /var/lib/ltxfs\n%s", line);
	else if (strncmp(key, "lease.consul.", 13) == 0)
		snprintf(out, cap, MIN_CFG "lease:\n  type: consul\n  consul:\n"
			 "    url: \"http://127.0.0.1:8500\"\n%s", line);
	else if (strncmp(key, "lease.etcd.", 11) == 0)
		snprintf(out, cap, MIN_CFG "lease:\n  type: etcd\n  etcd:\n"
			 "    url: \"http://127.0.0.1:2379\"\n%s", line);
	else if (strncmp(key, "http.tls.", 9) == 0)
		snprintf(out, cap, MIN_CFG "%s%s", value ? "http:\n  tls:\n  " : "", line);
	else if (strncmp(key, "backup.", 7) == 0)   /* the section is off without a url */
		snprintf(out, cap, MIN_CFG "backup:\n  url: \"s3://bucket/prefix\"\n"
			 "  access-key-id: \"id\"\n  secret-access-key: \"secret\"\n%s", line);
	else
		snprintf(out, cap, MIN_CFG "%.*s:\n%s", (int)(leaf - key - 1), key, line);
}

/* Every key of the parser has a row, every row is a key, and a default
 * given as a literal is the parser's default. */
static void test_reference_matches_parser(void)
{
	doc_row rows[MAX_ROWS];
	const char *const *keys = config_known_keys();
	size_t n = read_reference(rows, MAX_ROWS), nkeys = 0, checked = 0;
	CHECK(n > 0);
	for (; keys[nkeys] != NULL; nkeys++) {
		int found = 0;
		for (size_t i = 0; i < n; i++)
			found |= strcmp(rows[i].key, keys[nkeys]) == 0;
		if (!found)
			fprintf(stderr, "  %s: no row for key %s\n", REFERENCE, keys[nkeys]);
		CHECK(found);
	}
	for (size_t i = 0; i < n; i++) {
		int known = 0;
		for (size_t k = 0; k < nkeys; k++)
			known |= strcmp(rows[i].key, keys[k]) == 0;
		if (!known)
			fprintf(stderr, "  %s: row for %s, which the parser does not know\n",
				REFERENCE, rows[i].key);
		CHECK(known);
	}
	CHECK_EQ_INT((int)nkeys, (int)n);
	for (size_t i = 0; i < n; i++) {
		char base[512], with[512], *d0, *d1;
		ltxfs_config c0, c1;
		lx_err err;
		/* `<...>` describes a derived value; exec has no literal default */
		if (rows[i].def[0] == '\0' || strchr(rows[i].def, '<') != NULL ||
		    strcmp(rows[i].key, "exec") == 0)
			continue;
		config_with(rows[i].key, NULL, base, sizeof(base));
		config_with(rows[i].key, rows[i].def, with, sizeof(with));
		CHECK_EQ_INT(0, load(&c0, base, &err));
		if (load(&c1, with, &err) != 0)
			fprintf(stderr, "  %s: default of %s: %s\n", REFERENCE, rows[i].key, err.msg);
		d0 = dump_to_string(&c0);
		d1 = dump_to_string(&c1);
		if (d0 == NULL || d1 == NULL || strcmp(d0, d1) != 0)
			fprintf(stderr, "  %s: the documented default of %s, `%s`, is not the "
				"parser's:\n%s\n---\n%s\n", REFERENCE, rows[i].key, rows[i].def,
				d0 ? d0 : "", d1 ? d1 : "");
		CHECK(d0 != NULL && d1 != NULL && strcmp(d0, d1) == 0);
		free(d0);
		free(d1);
		config_free(&c0);
		config_free(&c1);
		checked++;
	}
	CHECK(checked >= 15);
}

/* backup.*: a URL of either scheme, keys that fit it, credentials from the
 * environment, the secret never printed, a dump that loads back. */
/* proxy.*: off by default; all of addr, target and db or none; the list of
 * globs in either form; the advertised URL derived; a dump that loads back. */
static void test_proxy_config(void)
{
	static const struct { const char *yaml, *says; } bad[] = {
		{ "proxy:\n  addr: :8080\n", "proxy.target" },
		{ "proxy:\n  addr: :8080\n  target: localhost:8081\n", "proxy.db" },
		{ "proxy:\n  addr: :8080\n  target: :8080\n  db: a.db\n", "forward to itself" },
		{ "proxy:\n  addr: x\n", "proxy.addr" },
		{ "proxy:\n  passthrough: [\"\"]\n", "proxy.passthrough[0]" },
		{ "proxy:\n  passthrough: {a: 1}\n", "proxy.passthrough" },
		{ "proxy:\n  addr: :8080\n  target: :8081\n  db: a.db\n  max-lag: 2m\n",
		  "proxy.max-lag" },
		{ "proxy:\n  on-lag: wait\n", "proxy.on-lag" },
	};
	ltxfs_config c, back;
	lx_err err;
	char *text;
	CHECK_EQ_INT(0, load(&c, MIN_CFG, &err));
	CHECK(c.proxy.addr == NULL && c.proxy.passthrough == NULL);
	CHECK_EQ_U64(10000000000ULL, c.proxy.max_lag_ns);
	CHECK_EQ_INT(CONFIG_LAG_FORWARD, c.proxy.on_lag);
	text = dump_to_string(&c);
	CHECK(strstr(text, "proxy") == NULL);
	free(text);
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, MIN_CFG "lease:\n  advertise-url: http://node1.internal:20202\n"
			     "proxy:\n  addr: :8080\n  target: localhost:8081\n  db: app.db\n"
			     "  passthrough: [\"*.png\", \"/static/*\"]\n  max-lag: 2s\n"
			     "  on-lag: serve\n", &err));
	CHECK(strcmp(c.proxy.addr, ":8080") == 0 && strcmp(c.proxy.target, "localhost:8081") == 0);
	CHECK(strcmp(c.proxy.db, "app.db") == 0);
	CHECK(c.proxy.passthrough != NULL && strcmp(c.proxy.passthrough[0], "*.png") == 0 &&
	      strcmp(c.proxy.passthrough[1], "/static/*") == 0 && c.proxy.passthrough[2] == NULL);
	CHECK_EQ_U64(2000000000ULL, c.proxy.max_lag_ns);
	CHECK_EQ_INT(CONFIG_LAG_SERVE, c.proxy.on_lag);
	CHECK_EQ_INT(0, config_resolve(&c, &err));
	CHECK(c.proxy.advertise_url != NULL &&
	      strcmp(c.proxy.advertise_url, "http://node1.internal:8080") == 0);
	text = dump_to_string(&c);
	CHECK_STR_CONTAINS(text, "proxy:\n  addr: \":8080\"\n  target: \"localhost:8081\"\n"
			   "  db: \"app.db\"\n  passthrough: [\"*.png\", \"/static/*\"]\n"
			   "  max-lag: \"2s\"\n  on-lag: serve\n"
			   "  advertise-url: \"http://node1.internal:8080\"\n");
	CHECK_EQ_INT(0, load(&back, text, &err));
	CHECK(back.proxy.passthrough != NULL && back.proxy.passthrough[2] == NULL);
	config_free(&back);
	free(text);
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, MIN_CFG "proxy:\n  addr: :8080\n  target: :8081\n  db: a.db\n"
			     "  passthrough: \"*.ico\"\n", &err));
	CHECK(strcmp(c.proxy.passthrough[0], "*.ico") == 0 && c.proxy.passthrough[1] == NULL);
	config_free(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), MIN_CFG "%s", bad[i].yaml);
		CHECK_EQ_INT(-EINVAL, load(&c, yaml, &err));
		CHECK_STR_CONTAINS(err.msg, bad[i].says);
		config_free(&c);
	}
}

/* replication.*: defaults, values, and each bad value named. */
static void test_replication_config(void)
{
	static const struct { const char *yaml, *says; } bad[] = {
		{ "replication:\n  mode: quorum\n", "replication.mode" },
		{ "replication:\n  min-acks: 0\n", "replication.min-acks" },
		{ "replication:\n  min-acks: 65\n", "replication.min-acks" },
		{ "replication:\n  sync-timeout: 0s\n", "replication.sync-timeout" },
		{ "replication:\n  on-timeout: wait\n", "replication.on-timeout" },
		{ "replication:\n  ack-after: apply\n", "replication.ack-after" },
	};
	ltxfs_config c;
	lx_err err;
	CHECK_EQ_INT(0, load(&c, MIN_CFG, &err));
	CHECK_EQ_INT(CONFIG_REPL_ASYNC, c.replication.mode);
	CHECK_EQ_INT(1, (int)c.replication.min_acks);
	CHECK_EQ_U64(5000000000ULL, c.replication.sync_timeout_ns);
	CHECK_EQ_INT(CONFIG_REPL_FAIL, c.replication.on_timeout);
	CHECK_EQ_INT(CONFIG_ACK_FSYNC, c.replication.ack_after);
	config_free(&c);
	CHECK_EQ_INT(0, load(&c, MIN_CFG "replication:\n  mode: sync\n  min-acks: 2\n"
			     "  sync-timeout: 250ms\n  on-timeout: degrade\n  ack-after: write\n",
			     &err));
	CHECK_EQ_INT(CONFIG_REPL_SYNC, c.replication.mode);
	CHECK_EQ_INT(2, (int)c.replication.min_acks);
	CHECK_EQ_U64(250000000ULL, c.replication.sync_timeout_ns);
	CHECK_EQ_INT(CONFIG_REPL_DEGRADE, c.replication.on_timeout);
	CHECK_EQ_INT(CONFIG_ACK_WRITE, c.replication.ack_after);
	config_free(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), MIN_CFG "%s", bad[i].yaml);
		CHECK_EQ_INT(-EINVAL, load(&c, yaml, &err));
		CHECK_STR_CONTAINS(err.msg, bad[i].says);
		config_free(&c);
	}
}

static void test_backup_config(void)
{
	static const char full[] = MIN_CFG
		"backup:\n  url: \"s3://bucket/some/prefix\"\n"
		"  endpoint: \"http://127.0.0.1:9000\"\n  region: eu-west-3\n"
		"  access-key-id: AKID\n  secret-access-key: \"sup3rsecret\"\n"
		"  force-path-style: true\n  sync-interval: 250ms\n"
		"  snapshot-interval: 1h\n  retention: 24h\n  l1-interval: 10s\n"
		"  l2-interval: 1m\n  l3-interval: 2h\n  max-lag: 30s\n"
		"  restore-if-empty: true\n  encryption:\n    key-file: /etc/ltxfs/backup.key\n";
	ltxfs_config c, again;
	lx_err err;
	char *text, *text2;

	CHECK_EQ_INT(0, load(&c, full, &err));
	CHECK(strcmp(c.backup.url, "s3://bucket/some/prefix") == 0);
	CHECK_EQ_U64(250000000ULL, c.backup.sync_interval_ns);
	CHECK(c.backup.force_path_style && c.backup.restore_if_empty);
	CHECK(strcmp(c.backup.encryption.key_file, "/etc/ltxfs/backup.key") == 0);
	text = dump_to_string(&c);
	CHECK(strstr(text, "sup3rsecret") == NULL);
	for (const char *const *k = config_known_keys(); *k != NULL; k++) {
		char needle[80];
		if (strncmp(*k, "backup.", 7) != 0 || strcmp(*k, "backup.secret-access-key") == 0)
			continue;
		dumped_key(*k, needle, sizeof(needle));
		CHECK_STR_CONTAINS(text, needle);
	}
	/* the dump loads back (the secret, a comment, comes from the env) */
	setenv("AWS_SECRET_ACCESS_KEY", "fromenv", 1);
	CHECK_EQ_INT(0, load(&again, text, &err));
	CHECK(strcmp(again.backup.secret_access_key, "fromenv") == 0);
	text2 = dump_to_string(&again);
	CHECK(strcmp(text, text2) == 0);
	free(text);
	free(text2);
	config_free(&again);
	config_free(&c);

	/* defaults; credentials and region from the environment */
	setenv("AWS_ACCESS_KEY_ID", "envid", 1);
	unsetenv("AWS_REGION");
	CHECK_EQ_INT(0, load(&c, MIN_CFG "backup:\n  url: s3://b\n", &err));
	CHECK(strcmp(c.backup.access_key_id, "envid") == 0);
	CHECK(strcmp(c.backup.region, "us-east-1") == 0);
	CHECK_EQ_U64(1000000000ULL, c.backup.sync_interval_ns);
	CHECK_EQ_U64(24ULL * 3600 * 1000000000ULL, c.backup.snapshot_interval_ns);
	CHECK_EQ_U64(72ULL * 3600 * 1000000000ULL, c.backup.retention_ns);
	config_free(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_EQ_INT(-EINVAL, load(&c, MIN_CFG "backup:\n  url: s3://b\n", &err));
	CHECK_STR_CONTAINS(err.msg, "no credentials");
	config_free(&c);
	/* file:// needs none, and takes no S3 key */
	CHECK_EQ_INT(0, load(&c, MIN_CFG "backup:\n  url: file:///srv/backup\n", &err));
	config_free(&c);
	CHECK_EQ_INT(-EINVAL, load(&c, MIN_CFG "backup:\n  url: file:///srv/b\n"
				   "  region: x\n", &err));
	CHECK_STR_CONTAINS(err.msg, "s3:// URLs only");
	config_free(&c);
	/* bad URLs, a key without a URL, intervals */
	static const char *const bad[][2] = {
		{ "  url: http://x/y\n", "backup.url must be" },
		{ "  url: s3://\n", "backup.url must be" },
		{ "  url: file://relative\n", "backup.url must be" },
		{ "  restore-if-empty: true\n", "backup.url is not" },
		{ "  url: file:///b\n  sync-interval: 0s\n", "sync-interval" },
		{ "  url: file:///b\n  sync-interval: 2h\n", "sync-interval" },
		{ "  url: file:///b\n  sync-interval: 10s\n  snapshot-interval: 1s\n",
		  "snapshot-interval" },
		{ "  url: file:///b\n  retention: 0s\n", "retention" },
		{ "  url: file:///b\n  l2-interval: 10s\n", "backup.l2-interval" },
		{ "  url: file:///b\n  endpoint: ftp://x\n", "endpoint" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[512];
		snprintf(yaml, sizeof(yaml), MIN_CFG "backup:\n%s", bad[i][0]);
		CHECK_EQ_INT(-EINVAL, load(&c, yaml, &err));
		CHECK_STR_CONTAINS(err.msg, bad[i][1]);
		config_free(&c);
	}
}

UNIT_TESTS(
	TEST(test_full_config),
	TEST(test_defaults),
	TEST(test_programmatic_resolve),
	TEST(test_load_file),
	TEST(test_known_keys),
	TEST(test_http_limits),
	TEST(test_http_tokens),
	TEST(test_http_tls),
	TEST(test_http_exposure),
	TEST(test_env_expansion),
	TEST(test_env_hostname_fallback),
	TEST(test_env_comparisons),
	TEST(test_env_errors),
	TEST(test_unknown_keys),
	TEST(test_duplicates_and_shape),
	TEST(test_syntax_errors),
	TEST(test_value_errors),
	TEST(test_urls),
	TEST(test_cross_key_errors),
	TEST(test_durations),
	TEST(test_sizes),
	TEST(test_bools),
	TEST(test_dump),
	TEST(test_replication_config), TEST(test_backup_config),
	TEST(test_truncations_and_mutations),
	TEST(test_hostile_yaml),
	TEST(test_reference_matches_parser),
	TEST(test_proxy_config)
)
