/*
 * config.c - load, validate and print the ltxfs configuration (see
 * config.h for the contract, docs/configuration.md for the reference).
 *
 * The YAML text is loaded into a libyaml document tree, then walked
 * against a schema: known_keys[] names every dotted key and specs[] says,
 * for the same key id, how its value is parsed and where it is stored.  A
 * mapping whose dotted name is a prefix of known keys is a section and is
 * walked recursively; anything else is an unknown key.  The walk only
 * descends into sections the schema knows, so its depth is bounded no
 * matter what the document contains (aliases included).
 *
 * Invariants: every char * in an ltxfs_config is NULL or a heap string it
 * owns; on any failure a load leaves the struct zeroed with nothing
 * allocated; nothing here logs or touches global mutable state.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <yaml.h>

#define KEY_NAME_MAX 64       /* longest dotted name we build */
#define VAR_NAME_MAX 128      /* longest environment variable name */
#define VALUE_MAX (64 * 1024) /* longest scalar value after expansion */
#define SHOW_MAX 60           /* value characters quoted in messages */
#define HOST_MAX 256

/* ------------------------------------------------------------------ */
/* Schema                                                               */
/* ------------------------------------------------------------------ */

enum key_id {
	KEY_FUSE_DIR,
	KEY_FUSE_DEBUG,
	KEY_FUSE_ALLOW_OTHER,
	KEY_FUSE_LOCKS,
	KEY_DATA_DIR,
	KEY_DATA_RETENTION,
	KEY_DATA_RETENTION_BYTES,
	KEY_DATA_SYNC,
	KEY_DATA_MAX_OPEN_FILES,
	KEY_DATA_REPLICA_WAL,
	KEY_HTTP_ADDR,
	KEY_HTTP_HEALTH_MAX_LAG,
	KEY_HTTP_MAX_CONNECTIONS,
	KEY_HTTP_MAX_CONNECTIONS_PER_IP,
	KEY_HTTP_MAX_EVENT_STREAMS,
	KEY_HTTP_MAX_TRANSFERS,
	KEY_HTTP_MAX_IMPORT_SIZE,
	KEY_HTTP_TOKEN,
	KEY_HTTP_TOKEN_FILE,
	KEY_HTTP_READ_TOKEN,
	KEY_HTTP_READ_TOKEN_FILE,
	KEY_HTTP_INSECURE,
	KEY_HTTP_TLS_CERT,
	KEY_HTTP_TLS_KEY,
	KEY_HTTP_TLS_CA,
	KEY_HTTP_TLS_CLIENT_AUTH,
	KEY_LEASE_TYPE,
	KEY_LEASE_CANDIDATE,
	KEY_LEASE_HOSTNAME,
	KEY_LEASE_ADVERTISE_URL,
	KEY_LEASE_NODE_ID,
	KEY_LEASE_CONSUL_URL,
	KEY_LEASE_CONSUL_KEY,
	KEY_LEASE_CONSUL_TOKEN,
	KEY_LEASE_CONSUL_TTL,
	KEY_LEASE_CONSUL_LOCK_DELAY,
	KEY_LEASE_ETCD_URL,
	KEY_LEASE_ETCD_KEY,
	KEY_LEASE_ETCD_TTL,
	KEY_LOG_LEVEL,
	KEY_EXEC,
	KEY_COUNT
};

enum key_kind {
	K_STRING,   /* char *, non-empty */
	K_SECRET,   /* char *, non-empty; never printed (a dump shows it is set) */
	K_BOOL,     /* bool */
	K_DURATION, /* uint64_t nanoseconds */
	K_SIZE,     /* uint64_t bytes */
	K_ENUM,     /* an enum (int-sized), values from spec->values */
	K_ADDR,     /* char *, host:port */
	K_URL,      /* char *, http(s)://host[:port][/path] */
	K_NODE_ID,  /* uint64_t from 16 hex digits, non-zero */
	K_COUNT,    /* unsigned, a decimal number 0..CONFIG_COUNT_MAX */
	K_EXEC,     /* exec: an entry or a sequence of entries */
};

/*
 * One value of an enum key.  `supported` false marks a value that is
 * recognised but not built yet (lease.type consul/etcd): the parser
 * rejects it with "not yet supported".  Adding a lease backend means
 * flipping that flag, giving it an enum constant and adding its keys.
 */
typedef struct enum_value {
	const char *name;
	int value;
	bool supported;
} enum_value;

typedef struct key_spec {
	enum key_kind kind;
	size_t offset;               /* of the field in ltxfs_config */
	const enum_value *values;    /* K_ENUM only; ends with name NULL */
} key_spec;

static const enum_value sync_values[] = {
	{ "app", CONFIG_SYNC_APP, true },
	{ "always", CONFIG_SYNC_ALWAYS, true },
	{ NULL, 0, false },
};

static const enum_value lock_keepers[] = {
	{ "ltxfs", CONFIG_LOCKS_LTXFS, true },
	{ "kernel", CONFIG_LOCKS_KERNEL, true },
	{ NULL, 0, false },
};

static const enum_value lease_types[] = {
	{ "static", CONFIG_LEASE_STATIC, true },
	{ "consul", CONFIG_LEASE_CONSUL, true },
	{ "etcd", CONFIG_LEASE_ETCD, true },
	{ NULL, 0, false },
};

static const enum_value log_levels[] = {
	{ "debug", LX_DEBUG, true },
	{ "info", LX_INFO, true },
	{ "warn", LX_WARN, true },
	{ "error", LX_ERROR, true },
	{ NULL, 0, false },
};

_Static_assert(sizeof(config_sync) == sizeof(int), "enum size");
_Static_assert(sizeof(config_locks) == sizeof(int), "enum size");
_Static_assert(sizeof(config_lease_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lx_log_level) == sizeof(int), "enum size");

/* Every accepted dotted key, in file order (also the order of dumps). */
static const char *const known_keys[KEY_COUNT + 1] = {
	[KEY_FUSE_DIR] = "fuse.dir",
	[KEY_FUSE_DEBUG] = "fuse.debug",
	[KEY_FUSE_ALLOW_OTHER] = "fuse.allow-other",
	[KEY_FUSE_LOCKS] = "fuse.locks",
	[KEY_DATA_DIR] = "data.dir",
	[KEY_DATA_RETENTION] = "data.retention",
	[KEY_DATA_RETENTION_BYTES] = "data.retention-bytes",
	[KEY_DATA_SYNC] = "data.sync",
	[KEY_DATA_MAX_OPEN_FILES] = "data.max-open-files",
	[KEY_DATA_REPLICA_WAL] = "data.replica-wal",
	[KEY_HTTP_ADDR] = "http.addr",
	[KEY_HTTP_HEALTH_MAX_LAG] = "http.health-max-lag",
	[KEY_HTTP_MAX_CONNECTIONS] = "http.max-connections",
	[KEY_HTTP_MAX_CONNECTIONS_PER_IP] = "http.max-connections-per-ip",
	[KEY_HTTP_MAX_EVENT_STREAMS] = "http.max-event-streams",
	[KEY_HTTP_MAX_TRANSFERS] = "http.max-transfers",
	[KEY_HTTP_MAX_IMPORT_SIZE] = "http.max-import-size",
	[KEY_HTTP_TOKEN] = "http.token",
	[KEY_HTTP_TOKEN_FILE] = "http.token-file",
	[KEY_HTTP_READ_TOKEN] = "http.read-token",
	[KEY_HTTP_READ_TOKEN_FILE] = "http.read-token-file",
	[KEY_HTTP_INSECURE] = "http.insecure",
	[KEY_HTTP_TLS_CERT] = "http.tls.cert",
	[KEY_HTTP_TLS_KEY] = "http.tls.key",
	[KEY_HTTP_TLS_CA] = "http.tls.ca",
	[KEY_HTTP_TLS_CLIENT_AUTH] = "http.tls.client-auth",
	[KEY_LEASE_TYPE] = "lease.type",
	[KEY_LEASE_CANDIDATE] = "lease.candidate",
	[KEY_LEASE_HOSTNAME] = "lease.hostname",
	[KEY_LEASE_ADVERTISE_URL] = "lease.advertise-url",
	[KEY_LEASE_NODE_ID] = "lease.node-id",
	[KEY_LEASE_CONSUL_URL] = "lease.consul.url",
	[KEY_LEASE_CONSUL_KEY] = "lease.consul.key",
	[KEY_LEASE_CONSUL_TOKEN] = "lease.consul.token",
	[KEY_LEASE_CONSUL_TTL] = "lease.consul.ttl",
	[KEY_LEASE_CONSUL_LOCK_DELAY] = "lease.consul.lock-delay",
	[KEY_LEASE_ETCD_URL] = "lease.etcd.url",
	[KEY_LEASE_ETCD_KEY] = "lease.etcd.key",
	[KEY_LEASE_ETCD_TTL] = "lease.etcd.ttl",
	[KEY_LOG_LEVEL] = "log.level",
	[KEY_EXEC] = "exec",
	[KEY_COUNT] = NULL,
};

#define OFF(member) offsetof(ltxfs_config, member)

static const key_spec specs[KEY_COUNT] = {
	[KEY_FUSE_DIR] = { K_STRING, OFF(fuse.dir), NULL },
	[KEY_FUSE_DEBUG] = { K_BOOL, OFF(fuse.debug), NULL },
	[KEY_FUSE_ALLOW_OTHER] = { K_BOOL, OFF(fuse.allow_other), NULL },
	[KEY_FUSE_LOCKS] = { K_ENUM, OFF(fuse.locks), lock_keepers },
	[KEY_DATA_DIR] = { K_STRING, OFF(data.dir), NULL },
	[KEY_DATA_RETENTION] = { K_DURATION, OFF(data.retention_ns), NULL },
	[KEY_DATA_RETENTION_BYTES] = { K_SIZE, OFF(data.retention_bytes), NULL },
	[KEY_DATA_SYNC] = { K_ENUM, OFF(data.sync), sync_values },
	[KEY_DATA_MAX_OPEN_FILES] = { K_COUNT, OFF(data.max_open_files), NULL },
	[KEY_DATA_REPLICA_WAL] = { K_BOOL, OFF(data.replica_wal), NULL },
	[KEY_HTTP_ADDR] = { K_ADDR, OFF(http.addr), NULL },
	[KEY_HTTP_HEALTH_MAX_LAG] = { K_DURATION, OFF(http.health_max_lag_ns), NULL },
	[KEY_HTTP_MAX_CONNECTIONS] = { K_COUNT, OFF(http.max_connections), NULL },
	[KEY_HTTP_MAX_CONNECTIONS_PER_IP] = { K_COUNT, OFF(http.max_connections_per_ip), NULL },
	[KEY_HTTP_MAX_EVENT_STREAMS] = { K_COUNT, OFF(http.max_event_streams), NULL },
	[KEY_HTTP_MAX_TRANSFERS] = { K_COUNT, OFF(http.max_transfers), NULL },
	[KEY_HTTP_MAX_IMPORT_SIZE] = { K_SIZE, OFF(http.max_import_size), NULL },
	[KEY_HTTP_TOKEN] = { K_SECRET, OFF(http.token), NULL },
	[KEY_HTTP_TOKEN_FILE] = { K_STRING, OFF(http.token_file), NULL },
	[KEY_HTTP_READ_TOKEN] = { K_SECRET, OFF(http.read_token), NULL },
	[KEY_HTTP_READ_TOKEN_FILE] = { K_STRING, OFF(http.read_token_file), NULL },
	[KEY_HTTP_INSECURE] = { K_BOOL, OFF(http.insecure), NULL },
	[KEY_HTTP_TLS_CERT] = { K_STRING, OFF(http.tls.cert), NULL },
	[KEY_HTTP_TLS_KEY] = { K_STRING, OFF(http.tls.key), NULL },
	[KEY_HTTP_TLS_CA] = { K_STRING, OFF(http.tls.ca), NULL },
	[KEY_HTTP_TLS_CLIENT_AUTH] = { K_BOOL, OFF(http.tls.client_auth), NULL },
	[KEY_LEASE_TYPE] = { K_ENUM, OFF(lease.type), lease_types },
	[KEY_LEASE_CANDIDATE] = { K_BOOL, OFF(lease.candidate), NULL },
	[KEY_LEASE_HOSTNAME] = { K_STRING, OFF(lease.hostname), NULL },
	[KEY_LEASE_ADVERTISE_URL] = { K_URL, OFF(lease.advertise_url), NULL },
	[KEY_LEASE_NODE_ID] = { K_NODE_ID, OFF(lease.node_id), NULL },
	[KEY_LEASE_CONSUL_URL] = { K_URL, OFF(lease.consul.url), NULL },
	[KEY_LEASE_CONSUL_KEY] = { K_STRING, OFF(lease.consul.key), NULL },
	[KEY_LEASE_CONSUL_TOKEN] = { K_SECRET, OFF(lease.consul.token), NULL },
	[KEY_LEASE_CONSUL_TTL] = { K_DURATION, OFF(lease.consul.ttl_ns), NULL },
	[KEY_LEASE_CONSUL_LOCK_DELAY] = { K_DURATION, OFF(lease.consul.lock_delay_ns), NULL },
	[KEY_LEASE_ETCD_URL] = { K_URL, OFF(lease.etcd.url), NULL },
	[KEY_LEASE_ETCD_KEY] = { K_STRING, OFF(lease.etcd.key), NULL },
	[KEY_LEASE_ETCD_TTL] = { K_DURATION, OFF(lease.etcd.ttl_ns), NULL },
	[KEY_LOG_LEVEL] = { K_ENUM, OFF(log.level), log_levels },
	[KEY_EXEC] = { K_EXEC, OFF(exec), NULL },
};

/*
 * LiteFS settings ltxfs does not have; naming them in the "unknown key"
 * message tells a LiteFS user the key was understood, just not supported.
 */
static const char *const litefs_only_keys[] = {
	"exit-on-error", "skip-sync", "strict-verify", "proxy", "backup",
	"tracing", "data.compress", "data.retention-monitor-interval",
	"http.snapshot-timeout", "lease.promote", "lease.reconnect-delay",
	"lease.demote-delay", "lease.databases",
	"log.format", "log.timestamp", "log.debug", NULL,
};

const char *const *config_known_keys(void)
{
	return known_keys;
}

/* Pointer to the field of key `id` inside *c. */
static void *field(ltxfs_config *c, enum key_id id)
{
	return (char *)c + specs[id].offset;
}

static const void *cfield(const ltxfs_config *c, enum key_id id)
{
	return (const char *)c + specs[id].offset;
}

static int find_key(const char *name)
{
	for (int i = 0; i < KEY_COUNT; i++)
		if (strcmp(known_keys[i], name) == 0)
			return i;
	return -1;
}

/* True if `name` is a section: some known key starts with "name.". */
static bool is_section(const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < KEY_COUNT; i++)
		if (strncmp(known_keys[i], name, n) == 0 &&
		    known_keys[i][n] == '.')
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       ch == '_';
}

static bool is_name_char(char ch)
{
	return is_name_start(ch) || is_digit(ch);
}

/* Length of the environment variable name at the start of s[0..n). */
static size_t var_name_len(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_name_start(s[0]))
		return 0;
	while (i < n && is_name_char(s[i]))
		i++;
	return i;
}

/*
 * Write `s` into buf as a double-quoted, escaped string of at most
 * SHOW_MAX characters (longer values end in "...") and return buf.  Used
 * so that a value with control characters cannot garble a message.
 */
static const char *show(char *buf, size_t cap, const char *s, size_t len)
{
	size_t o = 0;
	buf[o++] = '"';
	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i == SHOW_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

#define SHOW_BUF (SHOW_MAX * 4 + 16)

/* Growable string; `failed` is sticky once an append ran out of memory. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* Value parsers                                                        */
/* ------------------------------------------------------------------ */

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	if (s == NULL)
		return -EINVAL;
	for (int i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 }, /* U+03BC greek small letter mu */
	{ "ms", 1000000 },
	{ "s", 1000000000ULL },
	{ "m", 60ULL * 1000000000ULL },
	{ "h", 3600ULL * 1000000000ULL },
};

static uint64_t duration_unit(const char *u, size_t n)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
		if (strlen(duration_units[i].name) == n &&
		    memcmp(duration_units[i].name, u, n) == 0)
			return duration_units[i].ns;
	return 0;
}

/*
 * Parse one "<number><unit>" term at *sp into *ns and advance *sp.
 * Digits past the 18th after the decimal point are ignored.
 */
static int duration_term(const char **sp, uint64_t *ns)
{
	const char *s = *sp, *u;
	uint64_t whole = 0, frac = 0, scale = 1, unit, v;
	bool digits = false;

	for (; is_digit(*s); s++, digits = true) {
		unsigned d = (unsigned)(*s - '0');
		if (whole > (UINT64_MAX - d) / 10)
			return -ERANGE;
		whole = whole * 10 + d;
	}
	if (*s == '.') {
		for (s++; is_digit(*s); s++, digits = true) {
			if (scale < 1000000000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
	}
	if (!digits)
		return -EINVAL;
	for (u = s; *s != '\0' && !is_digit(*s) && *s != '.'; s++)
		;
	unit = duration_unit(u, (size_t)(s - u));
	if (unit == 0)
		return -EINVAL;
	if (whole > UINT64_MAX / unit)
		return -ERANGE;
	v = whole * unit;
	if (frac != 0) {
		/* < unit, so it fits; double precision is ample here. */
		uint64_t f = (uint64_t)((double)frac * ((double)unit / (double)scale));
		if (v > UINT64_MAX - f)
			return -ERANGE;
		v += f;
	}
	*ns = v;
	*sp = s;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t total = 0;
	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s != '\0') {
		uint64_t v;
		int rc = duration_term(&s, &v);
		if (rc != 0)
			return rc;
		if (v > (uint64_t)INT64_MAX - total)
			return -ERANGE;
		total += v;
	}
	*ns = total;
	return 0;
}

static const struct {
	const char *name;
	uint64_t mult;
} size_units[] = {
	{ "", 1 }, { "b", 1 },
	{ "kb", 1000ULL }, { "mb", 1000000ULL },
	{ "gb", 1000000000ULL }, { "tb", 1000000000000ULL },
	{ "kib", 1ULL << 10 }, { "mib", 1ULL << 20 },
	{ "gib", 1ULL << 30 }, { "tib", 1ULL << 40 },
};

int config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n = 0;
	const char *p = s;
	if (s == NULL || !is_digit(*s))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	if (*p == ' ' && p[1] != '\0')
		p++;
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcasecmp(p, size_units[i].name) != 0)
			continue;
		if (n > UINT64_MAX / size_units[i].mult)
			return -ERANGE;
		*bytes = n * size_units[i].mult;
		return 0;
	}
	return -EINVAL;
}

/* 16 hex digits, not all zero. */
static int parse_node_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (strlen(s) != 16)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		unsigned d;
		if (is_digit(ch))
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	if (v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A decimal count 0..CONFIG_COUNT_MAX occupying all of s. */
static int parse_count(const char *s, unsigned *out)
{
	unsigned long v = 0;
	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (!is_digit(*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > CONFIG_COUNT_MAX)
			return -ERANGE;
	}
	*out = (unsigned)v;
	return 0;
}

/* Parse a decimal port 1..65535 occupying all of s; -1 if it is not. */
static int parse_port(const char *s)
{
	int port = 0;
	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (!is_digit(*s))
			return -1;
		port = port * 10 + (*s - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

static bool is_host_char(char ch)
{
	return is_name_char(ch) || ch == '-' || ch == '.';
}

/*
 * The port of a listen address "host:port", ":port" or "[v6]:port"
 * (host: letters, digits, '-', '.', '_'), or -1 if malformed.
 */
static int addr_port(const char *s)
{
	const char *colon, *p;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb == s + 1 || rb[1] != ':')
			return -1;
		for (p = s + 1; p < rb; p++)
			if (!(is_host_char(*p) || *p == ':' || *p == '%'))
				return -1;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		for (p = s; p < colon; p++)
			if (!is_host_char(*p))
				return -1;
	}
	return parse_port(colon + 1);
}

/*
 * Check an advertise URL "http(s)://host[:port][/path]" and copy its host
 * (without IPv6 brackets) into host[cap].  Returns 0 or -1.
 */
static int url_host(const char *url, char *host, size_t cap)
{
	const char *h, *end, *after;
	size_t n;
	for (const char *p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -1;
	if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		h = url + 8;
	else
		return -1;
	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL)
			return -1;
		h++;
		after = end + 1;
	} else {
		end = h + strcspn(h, ":/?#");
		after = end;
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= cap)
		return -1;
	for (const char *p = h; p < end; p++)
		if (*p == '@' || *p == '/')
			return -1;
	if (*after == ':') {
		char port[8];
		size_t pn = strcspn(after + 1, "/?#");
		if (pn == 0 || pn >= sizeof(port))
			return -1;
		memcpy(port, after + 1, pn);
		port[pn] = '\0';
		if (parse_port(port) < 0)
			return -1;
	} else if (*after != '\0' && *after != '/' && *after != '?' &&
		   *after != '#') {
		return -1;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Loading: walking the YAML document                                  */
/* ------------------------------------------------------------------ */

typedef struct walk {
	ltxfs_config *c;
	const char *origin;
	yaml_document_t *doc;
	config_getenv_fn getenv_fn;
	void *env_ctx;
	lx_err *err;
} walk;

/* Record EINVAL with "origin:line:col: " and the formatted message. */
static int at_err(walk *w, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int at_err(walk *w, yaml_mark_t m, const char *fmt, ...)
{
	char msg[LX_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lx_err_set(w->err, EINVAL, "%s:%zu:%zu: %s", w->origin,
			  m.line + 1, m.column + 1, msg);
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a sequence";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

/*
 * Look up variable `name[0..n)`.  Sets *val to its value, or NULL when it
 * is unset; HOSTNAME falls back to gethostname(2) (into hostbuf).
 * Returns 0 or -EINVAL for an over-long name.
 */
static int lookup_var(walk *w, yaml_mark_t m, const char *key,
		      const char *name, size_t n, const char **val,
		      char *hostbuf, size_t hostcap)
{
	char buf[VAR_NAME_MAX + 1];
	if (n > VAR_NAME_MAX)
		return at_err(w, m, "%s: environment variable name longer than %d characters",
			      key, VAR_NAME_MAX);
	memcpy(buf, name, n);
	buf[n] = '\0';
	*val = w->getenv_fn(buf, w->env_ctx);
	if (*val == NULL && strcmp(buf, "HOSTNAME") == 0 &&
	    gethostname(hostbuf, hostcap - 1) == 0) {
		hostbuf[hostcap - 1] = '\0';
		*val = hostbuf;
	}
	return 0;
}

/* Like lookup_var(), but an unset variable is an error naming it. */
static int require_var(walk *w, yaml_mark_t m, const char *key,
		       const char *name, size_t n, const char **val,
		       char *hostbuf, size_t hostcap)
{
	int rc = lookup_var(w, m, key, name, n, val, hostbuf, hostcap);
	if (rc == 0 && *val == NULL)
		rc = at_err(w, m, "%s: environment variable \"%.*s\" is not set "
			    "(write ${%.*s:-} to allow it to be unset)",
			    key, (int)n, name, (int)n, name);
	return rc;
}

static size_t skip_spaces(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/*
 * The right operand of ${A == ...} starting at s[i]: a quoted literal or
 * a variable name, then only blanks up to s[n].  Returns 1 if it is
 * malformed, else the result of looking it up (0 or -errno) with *val and
 * *vlen set (*val points into `s` for a literal).
 */
static int comparison_operand(walk *w, yaml_mark_t m, const char *key,
			      const char *s, size_t i, size_t n,
			      const char **val, size_t *vlen,
			      char *hostbuf, size_t hostcap)
{
	const char *q = NULL;
	size_t vn = 0, end;
	int rc;
	if (i < n && (s[i] == '\'' || s[i] == '"')) {
		q = memchr(s + i + 1, s[i], n - i - 1);
		if (q == NULL)
			return 1;
		end = (size_t)(q - s) + 1;
	} else {
		vn = var_name_len(s + i, n - i);
		if (vn == 0)
			return 1;
		end = i + vn;
	}
	if (skip_spaces(s, end, n) != n)
		return 1;
	if (q != NULL) {
		*val = s + i + 1;
		*vlen = (size_t)(q - (s + i + 1));
		return 0;
	}
	rc = require_var(w, m, key, s + i, vn, val, hostbuf, hostcap);
	if (rc == 0)
		*vlen = strlen(*val);
	return rc;
}

/*
 * Expand the inside of "${...}" (s[0..n)) onto b: VAR, VAR:-default,
 * VAR == X, VAR != X.
 */
static int expand_braced(walk *w, yaml_mark_t m, const char *key,
			 const char *s, size_t n, sbuf *b)
{
	char host_a[HOST_MAX], host_b[HOST_MAX], shown[SHOW_BUF];
	const char *a, *bv;
	size_t vn = var_name_len(s, n), i, blen;
	int rc;

	if (vn == n && vn > 0) {
		rc = require_var(w, m, key, s, vn, &a, host_a, sizeof(host_a));
		if (rc == 0)
			sb_adds(b, a);
		return rc;
	}
	if (vn > 0 && n - vn >= 2 && s[vn] == ':' && s[vn + 1] == '-') {
		rc = lookup_var(w, m, key, s, vn, &a, host_a, sizeof(host_a));
		if (rc == 0 && (a == NULL || *a == '\0'))
			sb_add(b, s + vn + 2, n - vn - 2);
		else if (rc == 0)
			sb_adds(b, a);
		return rc;
	}
	i = skip_spaces(s, vn, n);
	if (vn > 0 && i + 2 <= n && (s[i] == '=' || s[i] == '!') &&
	    s[i + 1] == '=') {
		bool eq = s[i] == '=';
		rc = comparison_operand(w, m, key, s, skip_spaces(s, i + 2, n),
					n, &bv, &blen, host_b, sizeof(host_b));
		if (rc == 0)
			rc = require_var(w, m, key, s, vn, &a, host_a, sizeof(host_a));
		if (rc == 0) {
			bool same = strlen(a) == blen && memcmp(a, bv, blen) == 0;
			sb_adds(b, same == eq ? "true" : "false");
		}
		if (rc <= 0)
			return rc;
	}
	return at_err(w, m, "%s: unsupported expression ${%s} (use ${VAR}, "
		      "${VAR:-default}, ${VAR == 'text'} or ${VAR != OTHER})",
		      key, show(shown, sizeof(shown), s, n));
}

/*
 * Expand environment references in the scalar in[0..len) of key `key`
 * (see config.h) into a new heap string *out.
 */
static int expand_env(walk *w, yaml_mark_t m, const char *key,
		      const char *in, size_t len, char **out)
{
	char hostbuf[HOST_MAX];
	sbuf b = { 0 };
	size_t i = 0;
	int rc = 0;

	sb_add(&b, "", 0);
	while (i < len && rc == 0) {
		const char *dollar = memchr(in + i, '$', len - i);
		size_t plain = dollar ? (size_t)(dollar - (in + i)) : len - i;
		sb_add(&b, in + i, plain);
		i += plain;
		if (i >= len)
			break;
		if (i + 1 < len && in[i + 1] == '$') {
			sb_add(&b, "$", 1);
			i += 2;
		} else if (i + 1 < len && in[i + 1] == '{') {
			const char *close = memchr(in + i + 2, '}', len - i - 2);
			if (close == NULL) {
				rc = at_err(w, m, "%s: \"${\" without a closing \"}\"", key);
			} else {
				rc = expand_braced(w, m, key, in + i + 2,
						   (size_t)(close - (in + i + 2)), &b);
				i = (size_t)(close - in) + 1;
			}
		} else {
			size_t vn = var_name_len(in + i + 1, len - i - 1);
			const char *val;
			if (vn == 0) {
				rc = at_err(w, m, "%s: \"$\" must be followed by a variable "
					    "name or \"{\" (write $$ for a literal $)", key);
			} else {
				rc = require_var(w, m, key, in + i + 1, vn, &val,
						 hostbuf, sizeof(hostbuf));
				if (rc == 0)
					sb_adds(&b, val);
				i += 1 + vn;
			}
		}
		if (rc == 0 && b.len > VALUE_MAX)
			rc = at_err(w, m, "%s: value longer than %d bytes after expansion",
				    key, VALUE_MAX);
	}
	if (rc == 0 && b.len > VALUE_MAX)
		rc = at_err(w, m, "%s: value longer than %d bytes after expansion",
			    key, VALUE_MAX);
	if (rc == 0 && b.failed)
		rc = lx_err_set(w->err, ENOMEM, "%s: out of memory", w->origin);
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	return 0;
}

/* The expanded text of scalar node v (error if not a scalar). */
static int scalar_value(walk *w, const char *key, const yaml_node_t *v,
			const char *expect, char **out)
{
	const char *s = (const char *)v->data.scalar.value;
	size_t n = v->data.scalar.length;
	if (v->type != YAML_SCALAR_NODE)
		return at_err(w, v->start_mark, "%s: expected %s, got %s", key,
			      expect, node_kind(v));
	if (memchr(s, '\0', n) != NULL)
		return at_err(w, v->start_mark, "%s: value contains a NUL character", key);
	return expand_env(w, v->start_mark, key, s, n, out);
}

static int set_string(walk *w, char **slot, const char *val)
{
	char *copy = strdup(val);
	if (copy == NULL)
		return lx_err_set(w->err, ENOMEM, "%s: out of memory", w->origin);
	free(*slot);
	*slot = copy;
	return 0;
}

/* Message tail listing the supported values of an enum key. */
static void enum_choices(const enum_value *values, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (const enum_value *e = values; e->name != NULL && o < cap; e++)
		if (e->supported)
			o += (size_t)snprintf(buf + o, cap - o, "%s%s",
					      o ? ", " : "", e->name);
}

static int set_enum(walk *w, yaml_mark_t m, const char *key,
		    const enum_value *values, void *slot, const char *val)
{
	char choices[128], shown[SHOW_BUF];
	enum_choices(values, choices, sizeof(choices));
	for (const enum_value *e = values; e->name != NULL; e++) {
		if (strcmp(e->name, val) != 0)
			continue;
		if (!e->supported)
			return at_err(w, m, "%s: \"%s\" is not yet supported in "
				      "this build (supported: %s)", key, e->name, choices);
		memcpy(slot, &e->value, sizeof(int));
		return 0;
	}
	return at_err(w, m, "%s: %s is not one of %s", key,
		      show(shown, sizeof(shown), val, strlen(val)), choices);
}

/* Parse `val` according to the kind of key `id` and store it. */
static int apply_value(walk *w, enum key_id id, yaml_mark_t m, const char *val)
{
	const char *key = known_keys[id];
	void *slot = field(w->c, id);
	char shown[SHOW_BUF];
	const char *q = show(shown, sizeof(shown), val, strlen(val));
	char host[HOST_MAX];
	uint64_t u;
	int rc;

	switch (specs[id].kind) {
	case K_STRING:
	case K_SECRET:
		if (*val == '\0')
			return at_err(w, m, "%s: must not be empty", key);
		return set_string(w, slot, val);
	case K_BOOL:
		if (config_parse_bool(val, slot) != 0)
			return at_err(w, m, "%s: %s is not a boolean (use true/false, "
				      "yes/no or on/off)", key, q);
		return 0;
	case K_DURATION:
		rc = config_parse_duration(val, &u);
		if (rc == -ERANGE)
			return at_err(w, m, "%s: %s is too long a duration", key, q);
		if (rc != 0)
			return at_err(w, m, "%s: %s is not a duration (a number with "
				      "unit ns, us, ms, s, m or h, e.g. \"10m\" or "
				      "\"1m30s\")", key, q);
		memcpy(slot, &u, sizeof(u));
		return 0;
	case K_SIZE:
		rc = config_parse_size(val, &u);
		if (rc == -ERANGE)
			return at_err(w, m, "%s: %s is too large", key, q);
		if (rc != 0)
			return at_err(w, m, "%s: %s is not a size (bytes, or a number "
				      "with unit B, KB, MB, GB, TB, KiB, MiB, GiB or "
				      "TiB, e.g. \"512MB\" or \"1GiB\")", key, q);
		memcpy(slot, &u, sizeof(u));
		return 0;
	case K_ENUM:
		return set_enum(w, m, key, specs[id].values, slot, val);
	case K_ADDR:
		if (addr_port(val) < 0)
			return at_err(w, m, "%s: %s is not host:port or :port (port "
				      "1-65535)", key, q);
		return set_string(w, slot, val);
	case K_URL:
		if (url_host(val, host, sizeof(host)) != 0)
			return at_err(w, m, "%s: %s is not an http:// or https:// URL "
				      "with a host", key, q);
		return set_string(w, slot, val);
	case K_COUNT:
		rc = parse_count(val, slot);
		if (rc == -ERANGE)
			return at_err(w, m, "%s: %s is too large (at most %u)", key, q,
				      CONFIG_COUNT_MAX);
		if (rc != 0)
			return at_err(w, m, "%s: %s is not a whole number", key, q);
		return 0;
	case K_NODE_ID:
		if (parse_node_id(val, &u) != 0)
			return at_err(w, m, "%s: %s is not a non-zero node ID of 16 "
				      "hex digits", key, q);
		memcpy(slot, &u, sizeof(u));
		return 0;
	case K_EXEC:
		break;
	}
	return at_err(w, m, "%s: internal error: bad key kind", key);
}

static const yaml_node_t *earlier_key(walk *w, const yaml_node_t *map,
				      const yaml_node_pair_t *p,
				      const yaml_node_t *key);

/* Append one entry to c->exec (taking ownership of e->cmd on success). */
static int exec_append(walk *w, const config_exec *e)
{
	config_exec *cmds = realloc(w->c->exec.cmds,
				    (w->c->exec.n + 1) * sizeof(*cmds));
	if (cmds == NULL)
		return lx_err_set(w->err, ENOMEM, "%s: out of memory", w->origin);
	w->c->exec.cmds = cmds;
	cmds[w->c->exec.n++] = *e;
	return 0;
}

/* The command string of an exec entry: a non-empty scalar. */
static int exec_cmd_string(walk *w, const char *label, const yaml_node_t *v, char **out)
{
	int rc = scalar_value(w, label, v, "a command string", out);
	if (rc == 0 && (*out)[0] == '\0') {
		free(*out);
		*out = NULL;
		rc = at_err(w, v->start_mark, "%s: command must not be empty", label);
	}
	return rc;
}

/* A boolean flag of an exec mapping ("exec[0].if-candidate"). */
static int exec_flag(walk *w, const char *label, const yaml_node_t *v, bool *out)
{
	char *val = NULL;
	int rc = scalar_value(w, label, v, "a boolean", &val);
	if (rc == 0 && config_parse_bool(val, out) != 0)
		rc = at_err(w, v->start_mark, "%s: expected a boolean (true or false)", label);
	free(val);
	return rc;
}

/* One pair of an exec mapping: cmd, if-candidate or promote. */
static int exec_field(walk *w, const char *label, const yaml_node_t *map,
		      const yaml_node_pair_t *p, config_exec *e)
{
	const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
	const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
	char name[96];
	if (k == NULL || v == NULL)
		return at_err(w, map->start_mark, "%s: malformed mapping", label);
	if (k->type != YAML_SCALAR_NODE)
		return at_err(w, k->start_mark, "%s: keys must be strings, got %s", label,
			      node_kind(k));
	snprintf(name, sizeof(name), "%s.%.*s", label, (int)k->data.scalar.length,
		 (const char *)k->data.scalar.value);
	if (earlier_key(w, map, p, k) != NULL)
		return at_err(w, k->start_mark, "duplicate key \"%s\"", name);
	if (strcmp(name + strlen(label), ".cmd") == 0) {
		free(e->cmd);
		e->cmd = NULL;
		return exec_cmd_string(w, name, v, &e->cmd);
	}
	if (strcmp(name + strlen(label), ".if-candidate") == 0)
		return exec_flag(w, name, v, &e->if_candidate);
	if (strcmp(name + strlen(label), ".promote") == 0)
		return exec_flag(w, name, v, &e->promote);
	return at_err(w, k->start_mark, "%s: an exec entry has only cmd, if-candidate "
		      "and promote", name);
}

/* One exec entry: a command string, or {cmd, if-candidate, promote}. */
static int exec_entry(walk *w, const char *label, const yaml_node_t *v)
{
	config_exec e = { NULL, false, false };
	int rc = 0;
	if (v->type != YAML_MAPPING_NODE) {
		rc = exec_cmd_string(w, label, v, &e.cmd);
	} else {
		for (const yaml_node_pair_t *p = v->data.mapping.pairs.start;
		     rc == 0 && p < v->data.mapping.pairs.top; p++)
			rc = exec_field(w, label, v, p, &e);
		if (rc == 0 && e.cmd == NULL)
			rc = at_err(w, v->start_mark, "%s: cmd is required", label);
		if (rc == 0 && e.promote && !e.if_candidate)
			rc = at_err(w, v->start_mark, "%s: promote needs if-candidate: true "
				    "(only a candidate can take the primary role)", label);
	}
	if (rc == 0)
		rc = exec_append(w, &e);
	if (rc != 0)
		free(e.cmd);
	return rc;
}

/* exec: a single entry or a sequence of them. */
static int set_exec(walk *w, const yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return exec_entry(w, "exec", v);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		char label[32];
		const yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		int rc;
		snprintf(label, sizeof(label), "exec[%zu]",
			 (size_t)(it - v->data.sequence.items.start));
		if (item == NULL)
			return at_err(w, v->start_mark, "%s: missing item", label);
		rc = exec_entry(w, label, item);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int set_key(walk *w, enum key_id id, const yaml_node_t *v)
{
	char *val = NULL;
	const char *expect = specs[id].kind == K_BOOL ? "a boolean" : "a scalar";
	int rc;
	if (specs[id].kind == K_EXEC)
		return set_exec(w, v);
	rc = scalar_value(w, known_keys[id], v, expect, &val);
	if (rc == 0)
		rc = apply_value(w, id, v->start_mark, val);
	free(val);
	return rc;
}

/* Optimal-string-alignment edit distance, for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t rows[3][KEY_NAME_MAX + 1];
	size_t *pp, *prev, *cur;
	if (la > KEY_NAME_MAX || lb > KEY_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		rows[1][j] = j;
	pp = rows[0];
	prev = rows[1];
	cur = rows[2];
	for (size_t i = 1; i <= la; i++) {
		size_t *tmp;
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (prev[j - 1] + cost < d)
				d = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		tmp = pp;
		pp = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[lb];
}

/*
 * The known key or section name closest to `name` (at most 2 edits, and
 * fewer than half its length), copied into buf[cap]; NULL if none.
 */
static const char *suggest(const char *name, char *buf, size_t cap)
{
	char cand[KEY_NAME_MAX + 1];
	size_t best = 3;
	for (int i = 0; i < KEY_COUNT; i++) {
		const char *k = known_keys[i];
		/* Each section prefix of the key ("lease"), then the key. */
		for (size_t n = 1; n <= strlen(k); n++) {
			size_t d;
			if (k[n] != '.' && k[n] != '\0')
				continue;
			memcpy(cand, k, n);
			cand[n] = '\0';
			d = edit_distance(name, cand);
			if (d < best && d * 2 < strlen(name) && n < cap) {
				best = d;
				memcpy(buf, cand, n + 1);
			}
		}
	}
	return best < 3 ? buf : NULL;
}

static int unknown_key(walk *w, yaml_mark_t m, const char *name, size_t n,
		       bool dotted_key)
{
	char shown[SHOW_BUF], hint[KEY_NAME_MAX + 64] = "", cand[KEY_NAME_MAX + 1];
	const char *s;
	show(shown, sizeof(shown), name, n);
	if (dotted_key) {
		snprintf(hint, sizeof(hint), " (write dotted keys as nested mappings)");
	} else if (n <= KEY_NAME_MAX && memchr(name, '\0', n) == NULL) {
		for (int i = 0; litefs_only_keys[i] != NULL; i++)
			if (strlen(litefs_only_keys[i]) == n &&
			    memcmp(litefs_only_keys[i], name, n) == 0)
				snprintf(hint, sizeof(hint), " (a LiteFS setting "
					 "that ltxfs does not support)");
		if (hint[0] == '\0' &&
		    (s = suggest(name, cand, sizeof(cand))) != NULL)
			snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)", s);
	}
	return at_err(w, m, "unknown key %s%s", shown, hint);
}

static int walk_section(walk *w, const yaml_node_t *map, const char *prefix);

/* Is the key of pair p equal to that of any earlier pair of the map? */
static const yaml_node_t *earlier_key(walk *w, const yaml_node_t *map,
				      const yaml_node_pair_t *p,
				      const yaml_node_t *key)
{
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
		const yaml_node_t *k = yaml_document_get_node(w->doc, q->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    k->data.scalar.length == key->data.scalar.length &&
		    memcmp(k->data.scalar.value, key->data.scalar.value,
			   key->data.scalar.length) == 0)
			return k;
	}
	return NULL;
}

/*
 * One key/value pair of the mapping at dotted `prefix` ("" at the top):
 * unknown and duplicate keys are errors, sections recurse, leaves parse.
 */
static int walk_pair(walk *w, const yaml_node_t *map,
		     const yaml_node_pair_t *p, const char *prefix)
{
	const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
	const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
	const yaml_node_t *first;
	char name[KEY_NAME_MAX + 1], shown[SHOW_BUF];
	const char *ks;
	size_t kn, pn = strlen(prefix);
	int id;

	if (k == NULL || v == NULL)
		return at_err(w, map->start_mark, "malformed mapping");
	if (k->type != YAML_SCALAR_NODE)
		return at_err(w, k->start_mark, "%s%skeys must be strings, got %s",
			      prefix, pn ? ": " : "", node_kind(k));
	ks = (const char *)k->data.scalar.value;
	kn = k->data.scalar.length;
	if (pn + 1 + kn > KEY_NAME_MAX || memchr(ks, '\0', kn) != NULL ||
	    memchr(ks, '.', kn) != NULL || kn == 0) {
		/* Not a name we could know; show it (raw bytes, bounded). */
		char full[KEY_NAME_MAX * 2 + 2];
		size_t shown_n = kn < KEY_NAME_MAX ? kn : KEY_NAME_MAX;
		size_t fn = (size_t)snprintf(full, sizeof(full), "%s%s", prefix,
					     pn ? "." : "");
		memcpy(full + fn, ks, shown_n);
		return unknown_key(w, k->start_mark, full, fn + shown_n,
				   memchr(ks, '.', kn) != NULL &&
				   memchr(ks, '\0', kn) == NULL);
	}
	snprintf(name, sizeof(name), "%s%s%.*s", prefix, pn ? "." : "", (int)kn, ks);
	id = find_key(name);
	if (id < 0 && !is_section(name))
		return unknown_key(w, k->start_mark, name, strlen(name), false);
	first = earlier_key(w, map, p, k);
	if (first != NULL)
		return at_err(w, k->start_mark, "duplicate key %s (first at line %zu)",
			      show(shown, sizeof(shown), name, strlen(name)),
			      first->start_mark.line + 1);
	if (id >= 0)
		return set_key(w, (enum key_id)id, v);
	if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0 &&
	    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return 0; /* "fuse:" with nothing under it: an empty section */
	if (v->type != YAML_MAPPING_NODE)
		return at_err(w, v->start_mark, "%s: expected a mapping, got %s",
			      name, node_kind(v));
	return walk_section(w, v, name);
}

static int walk_section(walk *w, const yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		int rc = walk_pair(w, map, p, prefix);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Turn a libyaml parser failure into an error with position. */
static int yaml_error(const yaml_parser_t *p, const char *origin, lx_err *err)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return lx_err_set(err, ENOMEM, "%s: out of memory parsing YAML", origin);
	case YAML_READER_ERROR:
		return lx_err_set(err, EINVAL, "%s: byte %zu: %s (the file must be "
				  "UTF-8 text)", origin, p->problem_offset, problem);
	default:
		break;
	}
	if (p->context != NULL)
		return lx_err_set(err, EINVAL, "%s:%zu:%zu: YAML syntax error: %s "
				  "(%s at line %zu)", origin,
				  p->problem_mark.line + 1, p->problem_mark.column + 1,
				  problem, p->context, p->context_mark.line + 1);
	return lx_err_set(err, EINVAL, "%s:%zu:%zu: YAML syntax error: %s", origin,
			  p->problem_mark.line + 1, p->problem_mark.column + 1,
			  problem);
}

/*
 * Parse the text with `parser` into a single document and walk it.  A
 * second document, an empty stream and a non-mapping top level are errors.
 */
static int load_document(walk *w, yaml_parser_t *parser)
{
	yaml_document_t doc, extra;
	const yaml_node_t *root, *root2;
	yaml_mark_t m2;
	int rc = 0;

	if (!yaml_parser_load(parser, &doc))
		return yaml_error(parser, w->origin, w->err);
	if (!yaml_parser_load(parser, &extra)) {
		rc = yaml_error(parser, w->origin, w->err);
		goto out;
	}
	root2 = yaml_document_get_root_node(&extra);
	if (root2 != NULL)
		m2 = extra.start_mark;
	yaml_document_delete(&extra);
	if (root2 != NULL) {
		rc = lx_err_set(w->err, EINVAL, "%s:%zu:%zu: a second YAML document "
				"starts here; the configuration must be one document",
				w->origin, m2.line + 1, m2.column + 1);
		goto out;
	}
	w->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		rc = lx_err_set(w->err, EINVAL, "%s: the configuration is empty "
				"(expected a mapping with at least fuse.dir and "
				"data.dir)", w->origin);
	else if (root->type != YAML_MAPPING_NODE)
		rc = at_err(w, root->start_mark, "the top level must be a mapping "
			    "of keys, got %s", node_kind(root));
	else
		rc = walk_section(w, root, "");
out:
	yaml_document_delete(&doc);
	return rc;
}

static const char *std_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

int config_load_string_env(ltxfs_config *c, const char *yaml, size_t len,
			   const char *origin, config_getenv_fn getenv_fn,
			   void *ctx, lx_err *err)
{
	yaml_parser_t parser;
	walk w;
	int rc;

	config_init_defaults(c);
	c->origin = strdup(origin != NULL ? origin : "<config>");
	if (c->origin == NULL) {
		config_free(c);
		return lx_err_set(err, ENOMEM, "config: out of memory");
	}
	w = (walk){ c, c->origin, NULL, getenv_fn ? getenv_fn : std_getenv,
		    ctx, err };
	if (!yaml_parser_initialize(&parser)) {
		config_free(c);
		return lx_err_set(err, ENOMEM, "%s: out of memory", origin);
	}
	yaml_parser_set_input_string(&parser,
				     (const unsigned char *)(yaml ? yaml : ""),
				     yaml ? len : 0);
	rc = load_document(&w, &parser);
	yaml_parser_delete(&parser);
	if (rc == 0)
		rc = config_resolve(c, err);
	if (rc != 0)
		config_free(c);
	return rc;
}

int config_load_string(ltxfs_config *c, const char *yaml, size_t len,
		       const char *origin, lx_err *err)
{
	return config_load_string_env(c, yaml, len, origin, NULL, NULL, err);
}

/* Read all of fd (at most CONFIG_MAX_FILE_SIZE bytes) into *buf. */
static int read_all(int fd, const char *path, char **buf, size_t *len,
		    lx_err *err)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	if (p == NULL)
		return lx_err_set(err, ENOMEM, "%s: out of memory", path);
	for (;;) {
		ssize_t r;
		if (n == cap) {
			char *q;
			if (cap > CONFIG_MAX_FILE_SIZE) {
				free(p);
				return lx_err_set(err, EFBIG, "%s: larger than %d "
						  "bytes", path, CONFIG_MAX_FILE_SIZE);
			}
			q = realloc(p, cap * 2);
			if (q == NULL) {
				free(p);
				return lx_err_set(err, ENOMEM, "%s: out of memory", path);
			}
			p = q;
			cap *= 2;
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(p);
			return lx_err_sys(err, e, "read %s", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_MAX_FILE_SIZE) {
		free(p);
		return lx_err_set(err, EFBIG, "%s: larger than %d bytes", path,
				  CONFIG_MAX_FILE_SIZE);
	}
	*buf = p;
	*len = n;
	return 0;
}

int config_load_file(ltxfs_config *c, const char *path, lx_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	memset(c, 0, sizeof(*c));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lx_err_sys(err, errno, "open %s", path);
	rc = read_all(fd, path, &buf, &len, err);
	close(fd);
	if (rc != 0)
		return rc;
	rc = config_load_string(c, buf, len, path, err);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Defaults, validation, derived values                                 */
/* ------------------------------------------------------------------ */

void config_init_defaults(ltxfs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->data.retention_ns = 10ULL * 60 * 1000000000ULL;
	c->data.retention_bytes = 1ULL << 30;
	c->data.sync = CONFIG_SYNC_APP;
	c->data.replica_wal = true;
	c->fuse.locks = CONFIG_LOCKS_LTXFS;
	c->lease.type = CONFIG_LEASE_STATIC;
	c->lease.candidate = true;
	c->http.health_max_lag_ns = 10ULL * 1000000000ULL;
	c->http.max_connections = 256;
	c->http.max_event_streams = 32;
	c->http.max_transfers = 8;
	c->http.max_import_size = 16ULL << 30;
	c->lease.consul.ttl_ns = 10ULL * 1000000000ULL;
	c->lease.consul.lock_delay_ns = 1000000000ULL;
	c->lease.etcd.ttl_ns = 10ULL * 1000000000ULL;
	c->log.level = LX_INFO;
}

/* Overwrite a secret before its memory goes back to the allocator. */
static void free_secret(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void config_free(ltxfs_config *c)
{
	free_secret(c->http.token);
	free_secret(c->http.read_token);
	free(c->origin);
	free(c->fuse.dir);
	free(c->data.dir);
	free(c->http.addr);
	free(c->lease.hostname);
	free(c->lease.advertise_url);
	free(c->lease.consul.url);
	free(c->lease.consul.key);
	free(c->http.token_file);
	free(c->http.read_token_file);
	free(c->http.tls.cert);
	free(c->http.tls.key);
	free(c->http.tls.ca);
	free_secret(c->lease.consul.token);
	free(c->lease.etcd.url);
	free(c->lease.etcd.key);
	for (size_t i = 0; i < c->exec.n; i++)
		free(c->exec.cmds[i].cmd);
	free(c->exec.cmds);
	memset(c, 0, sizeof(*c));
}

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

static bool enum_valid(const enum_value *values, int v)
{
	for (const enum_value *e = values; e->name != NULL; e++)
		if (e->supported && e->value == v)
			return true;
	return false;
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

static int check_consul(const ltxfs_config *c, lx_err *err)
{
	const uint64_t s = 1000000000ULL;
	if (c->lease.type != CONFIG_LEASE_CONSUL)
		return 0;
	if (c->lease.consul.url == NULL)
		return cfg_err(c, err, "lease.consul.url is required when lease.type is consul "
			       "(e.g. http://127.0.0.1:8500)");
	if (c->lease.consul.key != NULL && !consul_key_valid(c->lease.consul.key))
		return cfg_err(c, err, "lease.consul.key must be segments of letters, digits and "
			       "_.,- joined by '/' (e.g. myapp/primary)");
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
	if (c->lease.type != CONFIG_LEASE_ETCD)
		return 0;
	if (c->lease.etcd.url == NULL)
		return cfg_err(c, err, "lease.etcd.url is required when lease.type is etcd "
			       "(e.g. http://127.0.0.1:2379)");
	if (c->lease.etcd.key != NULL && !consul_key_valid(c->lease.etcd.key))
		return cfg_err(c, err, "lease.etcd.key must be segments of letters, digits and "
			       "_.,- joined by '/' (e.g. myapp/primary)");
	if (c->lease.etcd.ttl_ns < 2 * s || c->lease.etcd.ttl_ns > 3600 * s ||
	    c->lease.etcd.ttl_ns % s != 0)
		return cfg_err(c, err, "lease.etcd.ttl must be whole seconds between 2s and 1h "
			       "(etcd's leases count seconds)");
	return 0;
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

/* Range checks of values a program (not the parser) may have set. */
static int check_values(const ltxfs_config *c, lx_err *err)
{
	char host[HOST_MAX];
	if (c->http.addr != NULL && addr_port(c->http.addr) < 0)
		return cfg_err(c, err, "http.addr is not host:port or :port");
	if (c->data.retention_ns == 0 || c->data.retention_ns > (uint64_t)INT64_MAX)
		return cfg_err(c, err, "data.retention must be greater than 0");
	if (!enum_valid(sync_values, (int)c->data.sync))
		return cfg_err(c, err, "data.sync has an invalid value");
	if (!enum_valid(lease_types, (int)c->lease.type))
		return cfg_err(c, err, "lease.type has an invalid value");
	if (!enum_valid(log_levels, (int)c->log.level))
		return cfg_err(c, err, "log.level has an invalid value");
	if (c->lease.hostname != NULL && c->lease.hostname[0] == '\0')
		return cfg_err(c, err, "lease.hostname must not be empty");
	if (c->lease.advertise_url != NULL &&
	    url_host(c->lease.advertise_url, host, sizeof(host)) != 0)
		return cfg_err(c, err, "lease.advertise-url is not an http:// or "
			       "https:// URL with a host");
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
	for (size_t i = 0; i < c->exec.n; i++)
		if (c->exec.cmds[i].cmd == NULL || c->exec.cmds[i].cmd[0] == '\0')
			return cfg_err(c, err, "exec[%zu] is empty", i);
	if (check_auth(c, err) < 0 || check_tls(c, err) < 0)
		return -EINVAL;
	return check_consul(c, err) < 0 ? -EINVAL : check_etcd(c, err);
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

/* Default lease.hostname: the primary's host on a static replica. */
static int resolve_hostname(ltxfs_config *c, lx_err *err)
{
	char host[HOST_MAX];
	if (c->lease.hostname != NULL)
		return 0;
	if (c->lease.type == CONFIG_LEASE_STATIC && !c->lease.candidate) {
		if (url_host(c->lease.advertise_url, host, sizeof(host)) != 0)
			return cfg_err(c, err, "lease.advertise-url has no host");
	} else if (gethostname(host, sizeof(host) - 1) != 0) {
		return lx_err_sys(err, errno, "lease.hostname: gethostname");
	}
	host[sizeof(host) - 1] = '\0';
	if (host[0] == '\0')
		return cfg_err(c, err, "lease.hostname: the machine has no "
			       "hostname; set lease.hostname");
	c->lease.hostname = strdup(host);
	return c->lease.hostname ? 0 : lx_err_set(err, ENOMEM, "config: out of memory");
}

/* The token in file `path` (at most CONFIG_TOKEN_FILE_MAX bytes, its
 * trailing newline trimmed) into *out; the message never quotes it. */
static int read_token_file(const ltxfs_config *c, const char *key, const char *path,
			   char **out, lx_err *err)
{
	char buf[CONFIG_TOKEN_FILE_MAX + 2];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cfg_err(c, err, "%s: cannot open %s: %s", key, path, strerror(errno));
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return cfg_err(c, err, "%s: cannot read %s: %s", key, path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > CONFIG_TOKEN_FILE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return cfg_err(c, err, "%s: %s is larger than %d bytes: not a token", key, path,
			       CONFIG_TOKEN_FILE_MAX);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0)
		return cfg_err(c, err, "%s: %s is empty", key, path);
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *out ? 0 : lx_err_set(err, ENOMEM, "config: out of memory");
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

int config_resolve(ltxfs_config *c, lx_err *err)
{
	const char *h;
	bool v6;
	int rc = config_validate(c, err);
	if (rc == 0)
		rc = resolve_tokens(c, err);
	if (rc == 0 && c->http.addr == NULL && (c->http.addr = strdup(
		    CONFIG_DEFAULT_HTTP_ADDR)) == NULL)
		rc = lx_err_set(err, ENOMEM, "config: out of memory");
	if (rc == 0)
		rc = resolve_hostname(c, err);
	if (rc == 0 && c->lease.type == CONFIG_LEASE_CONSUL && c->lease.consul.key == NULL &&
	    (c->lease.consul.key = strdup("ltxfs/primary")) == NULL)
		rc = lx_err_set(err, ENOMEM, "config: out of memory");
	if (rc == 0 && c->lease.type == CONFIG_LEASE_ETCD && c->lease.etcd.key == NULL &&
	    (c->lease.etcd.key = strdup("ltxfs/primary")) == NULL)
		rc = lx_err_set(err, ENOMEM, "config: out of memory");
	if (rc != 0 || c->lease.advertise_url != NULL)
		return rc;
	h = c->lease.hostname;
	v6 = strchr(h, ':') != NULL;
	/* A node serving HTTPS is reached over HTTPS. */
	if (asprintf(&c->lease.advertise_url, "%s://%s%s%s:%d",
		     c->http.tls.cert != NULL ? "https" : "http", v6 ? "[" : "",
		     h, v6 ? "]" : "", addr_port(c->http.addr)) < 0) {
		c->lease.advertise_url = NULL;
		return lx_err_set(err, ENOMEM, "config: out of memory");
	}
	return 0;
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
		       addr, addr_port(addr) > 0 ? addr_port(addr) : 20202);
}

/* ------------------------------------------------------------------ */
/* Dumping                                                              */
/* ------------------------------------------------------------------ */

/* A YAML double-quoted scalar that loads back to s ('$' doubled). */
static void dump_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch == '$')
			fputs("$$", out);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\x%02x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* Go-style duration text ("1h30m", "500ms", "0s") into buf. */
static const char *format_duration(uint64_t ns, char *buf, size_t cap)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} parts[] = {
		{ "h", 3600ULL * 1000000000ULL }, { "m", 60ULL * 1000000000ULL },
		{ "s", 1000000000ULL }, { "ms", 1000000ULL }, { "us", 1000ULL },
		{ "ns", 1ULL },
	};
	size_t o = 0;
	buf[0] = '\0';
	if (ns == 0)
		return "0s";
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		uint64_t n = ns / parts[i].ns;
		if (n == 0)
			continue;
		ns -= n * parts[i].ns;
		o += (size_t)snprintf(buf + o, cap - o, "%" PRIu64 "%s", n,
				      parts[i].name);
	}
	return buf;
}

/* Size text: the largest unit that divides it exactly, else bytes. */
static void dump_size(FILE *out, uint64_t v)
{
	static const char *const names[] = {
		"", "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB",
	};
	/* Indexes into size_units[], largest multiplier first. */
	static const int order[] = { 9, 5, 8, 4, 7, 3, 6, 2 };
	if (v != 0) {
		for (size_t j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
			int i = order[j];
			if (v % size_units[i].mult == 0) {
				fprintf(out, "%" PRIu64 "%s", v / size_units[i].mult,
					names[i]);
				return;
			}
		}
	}
	fprintf(out, "%" PRIu64, v);
}

static const char *enum_name(const enum_value *values, const void *slot)
{
	int v;
	memcpy(&v, slot, sizeof(v));
	for (const enum_value *e = values; e->name != NULL; e++)
		if (e->supported && e->value == v)
			return e->name;
	return "invalid";
}

/* True if key id has a value worth printing (unset strings are not). */
static bool dump_has(const ltxfs_config *c, enum key_id id)
{
	const void *slot = cfield(c, id);
	if (strncmp(known_keys[id], "lease.consul.", 13) == 0 &&
	    c->lease.type != CONFIG_LEASE_CONSUL)
		return false;
	if (strncmp(known_keys[id], "lease.etcd.", 11) == 0 && c->lease.type != CONFIG_LEASE_ETCD)
		return false;
	/* a token read from its file shows as the file */
	if ((id == KEY_HTTP_TOKEN && c->http.token_from_file) ||
	    (id == KEY_HTTP_READ_TOKEN && c->http.read_token_from_file))
		return false;
	if (id == KEY_HTTP_TLS_CLIENT_AUTH)
		return c->http.tls.client_auth || c->http.tls.cert || c->http.tls.ca;
	switch (specs[id].kind) {
	case K_SECRET:
	case K_STRING:
	case K_ADDR:
	case K_URL:
		return *(char *const *)slot != NULL;
	case K_NODE_ID:
		return *(const uint64_t *)slot != 0;
	case K_EXEC:
		return c->exec.n > 0;
	default:
		return true;
	}
}

static void dump_value(FILE *out, const ltxfs_config *c, enum key_id id)
{
	const void *slot = cfield(c, id);
	char buf[96];
	switch (specs[id].kind) {
	case K_SECRET:              /* dump_key made it a comment */
		fputs("(set, not shown)", out);
		break;
	case K_STRING:
	case K_ADDR:
	case K_URL:
		dump_quoted(out, *(char *const *)slot);
		break;
	case K_BOOL:
		fputs(*(const bool *)slot ? "true" : "false", out);
		break;
	case K_DURATION:
		fprintf(out, "\"%s\"", format_duration(*(const uint64_t *)slot,
						       buf, sizeof(buf)));
		break;
	case K_SIZE:
		dump_size(out, *(const uint64_t *)slot);
		break;
	case K_ENUM:
		fputs(enum_name(specs[id].values, slot), out);
		break;
	case K_COUNT:
		fprintf(out, "%u", *(const unsigned *)slot);
		break;
	case K_NODE_ID:
		fprintf(out, "\"%016" PRIX64 "\"", *(const uint64_t *)slot);
		break;
	case K_EXEC:
		for (size_t i = 0; i < c->exec.n; i++) {
			const config_exec *e = &c->exec.cmds[i];
			fputs(e->if_candidate ? "\n  - cmd: " : "\n  - ", out);
			dump_quoted(out, e->cmd);
			if (e->if_candidate)
				fprintf(out, "\n    if-candidate: true\n    promote: %s",
					e->promote ? "true" : "false");
		}
		break;
	}
}

/* Length of the section part of `k` shared with `prev` ("lease.consul."
 * of "lease.consul.ttl" after "lease.consul.url"), whole segments only. */
static size_t shared_sections(const char *prev, const char *k)
{
	size_t n = 0, i = 0;
	while (prev[i] != '\0' && prev[i] == k[i]) {
		if (k[i] == '.')
			n = i + 1;
		i++;
	}
	return n;
}

/* Print the mapping lines that open the sections of `k` not already open
 * after `prev`, then "<indent>leaf:". */
static void dump_key(FILE *out, const char *prev, const char *k, bool comment)
{
	size_t from = shared_sections(prev, k);
	int depth = 0;
	for (size_t i = 0; i < from; i++)
		depth += k[i] == '.';
	for (const char *seg = k + from, *dot; (dot = strchr(seg, '.')) != NULL; seg = dot + 1) {
		fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)(dot - seg), seg);
		depth++;
	}
	fprintf(out, "%*s%s%s:", 2 * depth, "", comment ? "# " : "",
		strrchr(k, '.') ? strrchr(k, '.') + 1 : k);
}

int config_dump(const ltxfs_config *c, FILE *out)
{
	const char *prev = "";
	if (c->origin != NULL) {
		fputs("# effective configuration, loaded from ", out);
		dump_quoted(out, c->origin);
		fputc('\n', out);
	}
	for (int i = 0; i < KEY_COUNT; i++) {
		if (!dump_has(c, (enum key_id)i))
			continue;
		dump_key(out, prev, known_keys[i], specs[i].kind == K_SECRET);
		prev = known_keys[i];
		if (specs[i].kind != K_EXEC)
			fputc(' ', out);
		dump_value(out, c, (enum key_id)i);
		fputc('\n', out);
	}
	fflush(out);
	return ferror(out) ? -EIO : 0;
}
