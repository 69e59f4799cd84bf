/*
 * internal.h - what the files of the configuration module share; not part
 * of its contract (config.h is).
 *
 * The schema: key_id names every key, config_keys[] its dotted name (in
 * file order, the order of dumps too) and config_specs[] how its value is
 * parsed and where in ltxfs_config it is stored (keys.c).  The value
 * parsers every file uses (values.c), the ${VAR} expansion (expand.c) and
 * the bounded file read of the loader and the token files (load.c).
 *
 * Like the rest of the module: no global mutable state, no logging.
 */
#ifndef LTXFS_CONFIG_INTERNAL_H
#define LTXFS_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define KEY_NAME_MAX 64       /* longest dotted name we build */
#define HOST_MAX 256          /* longest host name, with its NUL */
#define SHOW_MAX 60           /* value characters quoted in messages */
#define SHOW_BUF (SHOW_MAX * 4 + 16)

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
	KEY_REPLICATION_MODE,
	KEY_REPLICATION_MIN_ACKS,
	KEY_REPLICATION_SYNC_TIMEOUT,
	KEY_REPLICATION_ON_TIMEOUT,
	KEY_REPLICATION_ACK_AFTER,
	KEY_PROXY_ADDR,
	KEY_PROXY_TARGET,
	KEY_PROXY_DB,
	KEY_PROXY_PASSTHROUGH,
	KEY_PROXY_MAX_LAG,
	KEY_PROXY_ON_LAG,
	KEY_PROXY_ADVERTISE_URL,
	KEY_BACKUP_URL,
	KEY_BACKUP_ENDPOINT,
	KEY_BACKUP_REGION,
	KEY_BACKUP_ACCESS_KEY_ID,
	KEY_BACKUP_SECRET_ACCESS_KEY,
	KEY_BACKUP_FORCE_PATH_STYLE,
	KEY_BACKUP_SYNC_INTERVAL,
	KEY_BACKUP_SNAPSHOT_INTERVAL,
	KEY_BACKUP_RETENTION,
	KEY_BACKUP_L1_INTERVAL,
	KEY_BACKUP_L2_INTERVAL,
	KEY_BACKUP_L3_INTERVAL,
	KEY_BACKUP_MAX_LAG,
	KEY_BACKUP_RESTORE_IF_EMPTY,
	KEY_BACKUP_ENCRYPTION_KEY_FILE,
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
	K_LIST,     /* char **, NULL-terminated: a string or a sequence of them */
};

/*
 * One value of an enum key.  `supported` false marks a value that is
 * recognised but not built: the parser rejects it with "not yet
 * supported".  Adding a lease backend means giving it an enum constant, a
 * row in config_lease_types[] and its keys.
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

/* A unit of a size ("", "b", "kb", ..., "tib"), lower case. */
typedef struct size_unit {
	const char *name;
	uint64_t mult;
} size_unit;

extern const char *const config_keys[KEY_COUNT + 1];   /* NULL-terminated */
extern const key_spec config_specs[KEY_COUNT];
extern const enum_value config_sync_values[], config_lease_types[], config_log_levels[];
extern const enum_value config_repl_modes[], config_repl_timeouts[], config_repl_acks[];
extern const enum_value config_proxy_lags[];
extern const size_unit config_size_units[];
extern const size_t config_n_size_units;

/* The field of key `id` inside *c. */
static inline void *config_field(ltxfs_config *c, enum key_id id)
{
	return (char *)c + config_specs[id].offset;
}

static inline const void *config_cfield(const ltxfs_config *c, enum key_id id)
{
	return (const char *)c + config_specs[id].offset;
}

static inline bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static inline bool is_name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static inline bool is_name_char(char ch)
{
	return is_name_start(ch) || is_digit(ch);
}

/* values.c: the parsers of config.h's contract, and these. */

/* Write s[0..len) into buf[cap] (cap >= SHOW_BUF) double-quoted and
 * escaped, at most SHOW_MAX characters (longer ends in "..."); returns
 * buf.  A value with control characters cannot garble a message. */
const char *config_show(char *buf, size_t cap, const char *s, size_t len);

/* 16 hex digits, not all zero.  0 or -EINVAL. */
int config_parse_node_id(const char *s, uint64_t *out);

/* A decimal count 0..CONFIG_COUNT_MAX occupying all of s.  0, -EINVAL or
 * -ERANGE. */
int config_parse_count(const char *s, unsigned *out);

/* The port of a listen address "host:port", ":port" or "[v6]:port" (host:
 * letters, digits, '-', '.', '_'), or -1 if malformed. */
int config_addr_port(const char *addr);

/* Check a URL "http(s)://host[:port][/path][?query][#fragment]" (libcurl's
 * URL parser: no user name or password, a port 1-65535) and, if host is
 * not NULL, copy its host (without IPv6 brackets) into host[HOST_MAX].
 * Returns 0 or -1. */
int config_url_host(const char *url, char *host);

/* The name of enum value v, or NULL if it is not a supported one. */
const char *config_enum_name(const enum_value *values, int v);

/* expand.c: environment references of a scalar (config.h). */
typedef struct config_env {
	config_getenv_fn getenv_fn;
	void *ctx;
} config_env;

/* Expand in[0..len), the value of key `key`, into a new heap string *out.
 * Errors: EINVAL with a message "KEY: what" (the caller adds where), or
 * ENOMEM. */
int config_expand(const config_env *env, const char *key, const char *in, size_t len,
		  char **out, lx_err *err);

/* load.c: read fd until its end or `cap` bytes, whichever comes first;
 * *n is what was read.  0 or -errno. */
int config_read_fd(int fd, char *buf, size_t cap, size_t *n);

#endif
