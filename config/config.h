/*
 * config.h - the ltxfs configuration file: a strict YAML parser and the
 * struct it fills.  docs/configuration.md is the user's reference; this
 * header is the programmer's contract.
 *
 * The file is a YAML mapping whose nested keys follow LiteFS's names where
 * the feature is the same (fuse.dir, data.dir, http.addr, lease.type, ...).
 * Parsing is strict: unknown keys, duplicate keys, values of the wrong
 * type or out of range, and YAML syntax errors are all rejected, with a
 * message of the form
 *     config.yml:7:3: unknown key "fuse.dri" (did you mean "fuse.dir"?)
 *     config.yml:4:9: lease.type: "foo" is not one of static
 *
 * Environment variables are expanded inside scalar values (never keys):
 * $VAR and ${VAR}; ${VAR:-default} (default used when VAR is unset or
 * empty, taken literally); ${A == B}, ${A != B}, ${A == 'lit'},
 * ${A != "lit"} which become "true" or "false" (LiteFS's comparison form);
 * $$ is a literal '$'.  A variable that is not set is an error naming it
 * (write ${VAR:-} to accept an unset variable as empty); HOSTNAME, when
 * unset, is the machine's hostname (as in LiteFS).  A '$' followed by
 * anything else is an error.
 *
 * URLs (lease.advertise-url, lease.consul.url, lease.etcd.url) are checked
 * with libcurl's URL parser: http or https, a host, no user name or
 * password, a port 1-65535 if any.
 *
 * The files: keys.c (the schema), load.c, expand.c, values.c, check.c and
 * dump.c, sharing internal.h.  This module is a pure library: no global
 * mutable state, no logging, no threads.  Functions are reentrant; one
 * ltxfs_config must be used by one thread at a time (or be read-only
 * after loading).  Errors are returned
 * as negative errno codes (EINVAL for a bad configuration, ENOMEM, or the
 * errno of a failed open/read) with a message in the optional lx_err.
 */
#ifndef LTXFS_CONFIG_CONFIG_H
#define LTXFS_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "base/log.h"

#define CONFIG_DEFAULT_HTTP_ADDR ":20202"

/* Largest value of a count key (http.max-connections, ...). */
#define CONFIG_COUNT_MAX 1000000u

/* Largest configuration file config_load_file() accepts. */
#define CONFIG_MAX_FILE_SIZE (1024 * 1024)

/* data.sync: when the transaction log is fsynced. */
typedef enum config_sync {
	CONFIG_SYNC_APP = 0,    /* when the application fsyncs (default) */
	CONFIG_SYNC_ALWAYS = 1, /* at every commit */
} config_sync;

/* fuse.locks: who keeps SQLite's POSIX locks on the mount's files. */
typedef enum config_locks {
	CONFIG_LOCKS_LTXFS = 0,  /* forwarded to ltxfs, which keeps them (default) */
	CONFIG_LOCKS_KERNEL = 1, /* kept by the kernel: fewer round trips */
} config_locks;

/* replication.mode: when a commit returns to the application. */
typedef enum config_repl_mode {
	CONFIG_REPL_ASYNC = 0,   /* once logged here; replicas follow (default) */
	CONFIG_REPL_SYNC = 1,    /* once replication.min-acks replicas hold it */
} config_repl_mode;

/* replication.on-timeout: a sync commit whose acknowledgements do not come. */
typedef enum config_repl_timeout {
	CONFIG_REPL_FAIL = 0,    /* the commit fails: nothing unacknowledged is
				    reported committed (default) */
	CONFIG_REPL_DEGRADE = 1, /* commits go on asynchronously, loudly */
} config_repl_timeout;

/* replication.ack-after: when a replica acknowledges a transaction. */
typedef enum config_repl_ack {
	CONFIG_ACK_FSYNC = 0,    /* once its log is fsynced (default) */
	CONFIG_ACK_WRITE = 1,    /* once written to its log: held by its kernel,
				    survives a crash of any ltxfs process */
} config_repl_ack;

/* proxy.on-lag: a read whose position did not arrive within proxy.max-lag. */
typedef enum config_proxy_lag {
	CONFIG_LAG_FORWARD = 0,  /* forwarded to the primary (default) */
	CONFIG_LAG_SERVE = 1,    /* served here, older than the client's write */
} config_proxy_lag;

/* lease.type (see config/keys.c config_lease_types[]). */
typedef enum config_lease_type {
	CONFIG_LEASE_STATIC = 0,
	CONFIG_LEASE_CONSUL = 1,
	CONFIG_LEASE_ETCD = 2,
} config_lease_type;

/* One exec entry: a string is {cmd, false, false}. */
typedef struct config_exec {
	char *cmd;              /* a /bin/sh command line, non-empty */
	bool if_candidate;      /* run only on a candidate that is the primary */
	bool promote;           /* a candidate replica takes the primary role first
				 * (needs if_candidate) */
} config_exec;

/*
 * The effective configuration.  Every char * is NULL or a heap string
 * owned by the struct (freed by config_free()).  After a successful load
 * or config_resolve(), fuse.dir, data.dir, http.addr, lease.hostname and
 * lease.advertise_url are all non-NULL and non-empty; before that, NULL
 * http.addr, lease.hostname and lease.advertise_url mean "the default".
 */
typedef struct ltxfs_config {
	char *origin;                   /* file name or label used in messages */
	struct {
		char *dir;              /* mount point (required) */
		bool debug;             /* libfuse debug output */
		bool allow_other;       /* -o allow_other */
		config_locks locks;
	} fuse;
	struct {
		char *dir;              /* data directory (required) */
		uint64_t retention_ns;  /* keep log history this long; > 0 */
		uint64_t retention_bytes; /* per-database log size cap; 0 = none */
		unsigned max_open_files;  /* descriptors the databases may keep open;
					     0 = half of RLIMIT_NOFILE */
		bool replica_wal;       /* a replica applies WAL-mode transactions as
					   WAL frames (db_options.replica_wal) */
		config_sync sync;
	} data;
	struct {
		char *addr;             /* "host:port", ":port" or "[v6]:port";
					 * NULL until resolved = ":20202" */
		uint64_t health_max_lag_ns; /* GET /health: 503 above this lag; 10 s */
		unsigned max_connections;   /* open at once; 256, >= 4 */
		unsigned max_connections_per_ip; /* from one address; 0 = no limit */
		unsigned max_event_streams; /* GET /events at once; 32 */
		unsigned max_transfers;     /* GET /export + POST /import at once; 8 */
					    /* (these two: at most max_connections / 2) */
		uint64_t max_import_size;   /* POST /import body; 16 GiB, > 0 */
		/* Bearer tokens (docs/configuration.md): `token` grants every
		 * endpoint, `read_token` only GET /status, /metrics, /events.
		 * Each is given inline or as a file (one of the two): after
		 * config_resolve() token / read_token hold the effective value,
		 * read from token_file / read_token_file (trailing newline
		 * trimmed; *_from_file then true).  Secrets: never printed,
		 * zeroed when freed. */
		char *token, *token_file;
		char *read_token, *read_token_file;
		bool token_from_file, read_token_from_file;   /* set by config_resolve */
		bool insecure;              /* may listen beyond loopback without a token */
		struct {
			char *cert, *key;   /* PEM files: both or neither; set = HTTPS */
			char *ca;           /* PEM CA bundle this node trusts (peers, clients) */
			bool client_auth;   /* require a client certificate signed by `ca` */
		} tls;
	} http;
	struct {
		config_lease_type type;
		bool candidate;         /* static: true on the primary */
		char *hostname;         /* NULL until resolved */
		char *advertise_url;    /* NULL until resolved */
		uint64_t node_id;       /* 0 = a random ID at every start */
		struct {
			char *url;              /* required with lease.type consul */
			char *key;              /* NULL until resolved = "ltxfs/primary" */
			char *token;            /* ACL token, or NULL */
			uint64_t ttl_ns;        /* session TTL, default 10 s */
			uint64_t lock_delay_ns; /* default 1 s */
		} consul;
		struct {
			char *url;              /* required with lease.type etcd */
			char *key;              /* NULL until resolved = "ltxfs/primary" */
			uint64_t ttl_ns;        /* lease TTL, default 10 s, whole seconds */
		} etcd;
	} lease;
	/* Synchronous replication (replica/sync_commit.h; docs/design.md). */
	struct {
		config_repl_mode mode;
		unsigned min_acks;          /* replicas that must hold a commit; 1 */
		uint64_t sync_timeout_ns;   /* wait for them at most this; 5 s */
		config_repl_timeout on_timeout;
		config_repl_ack ack_after;
	} replication;
	/* The HTTP proxy in front of the application (proxy/proxy.h).  Off
	 * while addr is NULL. */
	struct {
		char *addr;                 /* host:port it listens on */
		char *target;               /* host:port of the application */
		char *db;                   /* the database whose position is tracked */
		char **passthrough;         /* path globs, NULL-terminated; NULL: none */
		uint64_t max_lag_ns;        /* a read waits this long; 10 s */
		config_proxy_lag on_lag;
		char *advertise_url;        /* NULL until resolved: lease.advertise-url's
					       host, proxy.addr's port */
	} proxy;
	/* Continuous backup (backup/backup.h; docs/backup.md).  Off while
	 * url is NULL.  After config_resolve(), access_key_id and
	 * secret_access_key hold AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
	 * when the file left them unset (an s3:// url). */
	struct {
		char *url;              /* s3://BUCKET[/PREFIX] or file:///DIR */
		char *endpoint;         /* S3-compatible service; NULL: AWS */
		char *region;           /* NULL: AWS_REGION, else us-east-1 */
		char *access_key_id;
		char *secret_access_key;
		bool force_path_style;  /* ENDPOINT/BUCKET/KEY addressing */
		uint64_t sync_interval_ns;     /* ship within this of a commit; 1 s */
		uint64_t snapshot_interval_ns; /* a snapshot at least this often; 24 h */
		uint64_t retention_ns;  /* restorable to any point this old; 72 h */
		uint64_t level_interval_ns[4]; /* [k]: level k merges level k-1's
						  objects this old; [0] unused;
						  30 s, 5 min, 1 h */
		uint64_t max_lag_ns;    /* GET /health: 503 when shipping is behind
					   by more than this; 60 s */
		bool restore_if_empty;  /* an empty data.dir restores every database
					   before serving */
		struct {
			char *key_file; /* 32-byte key (64 hex digits); NULL: plain */
		} encryption;
	} backup;
	struct {
		enum lx_log_level level;
	} log;
	struct {
		config_exec *cmds;      /* run in order once the node is ready
					 * (node/supervisor.h) */
		size_t n;
	} exec;
} ltxfs_config;

/* Environment lookup: returns the value of `name` or NULL when unset. */
typedef const char *(*config_getenv_fn)(const char *name, void *ctx);

/*
 * Fill *c with the defaults of every key that has a fixed one
 * (data.retention 10m, data.retention-bytes 1GiB, data.sync app,
 * http.health-max-lag 10s, http.max-connections 256,
 * http.max-connections-per-ip 0,
 * http.max-event-streams 32, http.max-transfers 8, http.max-import-size 16GiB,
 * lease.type static, lease.candidate true, log.level info, no exec); the
 * strings stay NULL (http.addr, lease.hostname and lease.advertise-url
 * are filled by config_resolve()).  Allocates nothing and frees nothing,
 * so init followed by a load leaks nothing.
 */
void config_init_defaults(ltxfs_config *c);

/*
 * Initialise *c with the defaults, then read and apply the YAML file at
 * `path`, fill the derived defaults and validate (config_resolve()).
 * Environment variables come from getenv(3).  Any previous content of *c
 * is overwritten, not freed.  On failure *c holds no allocation (it is
 * zeroed; config_free() is still safe) and `err` says what and where.
 */
int config_load_file(ltxfs_config *c, const char *path, lx_err *err);

/*
 * Like config_load_file() for `len` bytes of YAML at `yaml` (need not be
 * NUL-terminated).  `origin` names the text in messages ("config.yml");
 * NULL means "<config>".
 */
int config_load_string(ltxfs_config *c, const char *yaml, size_t len,
		       const char *origin, lx_err *err);

/*
 * Like config_load_string() with environment lookups through
 * getenv_fn(name, ctx) instead of getenv(3) (for tests).  getenv_fn NULL
 * means getenv(3).
 */
int config_load_string_env(ltxfs_config *c, const char *yaml, size_t len,
			   const char *origin, config_getenv_fn getenv_fn,
			   void *ctx, lx_err *err);

/*
 * Cross-key checks, run by every load: fuse.dir and data.dir set and
 * neither inside the other, data.retention > 0, http.addr and
 * lease.advertise-url well-formed, the http.max-* limits consistent
 * (http.max-event-streams + http.max-transfers at most half of
 * http.max-connections), a static non-candidate has an explicit
 * lease.advertise-url (the primary's).  NULL lease.hostname and
 * lease.advertise_url and http.addr are accepted (they mean "default").
 * Returns 0 or -EINVAL.
 */
int config_validate(const ltxfs_config *c, lx_err *err);

/* Shortest token accepted (http.token, http.read-token). */
#define CONFIG_TOKEN_MIN 16
/* Largest token file read. */
#define CONFIG_TOKEN_FILE_MAX 4096

/*
 * Secure by default, checked by `ltxfs mount` before it listens: a node
 * whose http.addr is not a loopback address (an empty host, 0.0.0.0 and ::
 * mean every interface: not loopback; a host name other than "localhost"
 * counts as not loopback) must have http.token, unless http.insecure is
 * true.  Returns 0, or -EINVAL with a message saying how to set a token
 * or that http.insecure: true is the explicit way out.  `c` resolved.
 */
int config_check_exposure(const ltxfs_config *c, lx_err *err);

/* 1 if listen address `addr` ("host:port") is reachable only from this
 * host (127.0.0.0/8, ::1, localhost). */
int config_addr_is_loopback(const char *addr);

/*
 * config_validate(), then read http.token-file and http.read-token-file
 * into http.token and http.read-token (checked like inline tokens), then
 * fill the defaults of strings left NULL:
 * http.addr (":20202"); lease.hostname (the host of lease.advertise-url
 * on a static non-candidate, else gethostname(2)); lease.advertise-url
 * ("http://<hostname>:<port of http.addr>").  For callers that build a
 * config in code: init, set the fields, resolve.  Loads call it.
 */
int config_resolve(ltxfs_config *c, lx_err *err);

/* Free every string *c owns and zero it.  Safe on a zeroed struct. */
void config_free(ltxfs_config *c);

/*
 * Print the effective configuration as YAML that config_load_* accepts
 * and that yields the same struct (a literal '$' is written as "$$").
 * Unset strings are omitted.  Secrets (http.token, http.read-token,
 * lease.consul.token) are never printed: a set one is a YAML comment
 * "# token: (set, not shown)", so the dump loads without it; a token read
 * from a file shows as its token-file key.  Returns 0, or -EIO if writing failed.
 */
int config_dump(const ltxfs_config *c, FILE *out);

/*
 * Every dotted key the parser accepts ("fuse.dir", ..., "exec"), in
 * file order, NULL-terminated.  Static constant data.
 */
const char *const *config_known_keys(void);

/*
 * Value parsers used by the loader, exposed for tests and command-line
 * flags.  Each returns 0 and stores the value, or -EINVAL for a malformed
 * value, -ERANGE for one too large (a duration above INT64_MAX ns, about
 * 292 years; a size above UINT64_MAX); *out is untouched then.
 *
 * Booleans: true/false, yes/no, on/off, any case.
 * Durations (Go syntax): one or more <decimal number><unit> with unit
 *   ns, us (or µs), ms, s, m, h, e.g. "10s", "500ms", "1m30s", "1.5h";
 *   "0" alone is allowed.  No sign.  Result in nanoseconds.
 * Sizes: a non-negative integer optionally followed by a unit, any case,
 *   optionally after one space: B, KB/MB/GB/TB (powers of 1000),
 *   KiB/MiB/GiB/TiB (powers of 1024).  Result in bytes.
 */
int config_parse_bool(const char *s, bool *out);
int config_parse_duration(const char *s, uint64_t *ns);
int config_parse_size(const char *s, uint64_t *bytes);

#endif
