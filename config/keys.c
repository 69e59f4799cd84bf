/*
 * keys.c - the schema of the configuration: every key the file may hold,
 * how its value is parsed and where it is stored (config_keys[] and
 * config_specs[], indexed by key_id), the values of the enum keys, the
 * defaults, and freeing a loaded configuration (config.h).
 *
 * Adding a key: a key_id (internal.h), its dotted name and spec here, its
 * field in ltxfs_config, its default in config_init_defaults() if it has
 * one, its checks in check.c, and its row in docs/configuration.md (a unit
 * test compares that table with config_known_keys()).
 */
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>

const enum_value config_sync_values[] = {
	{ "app", CONFIG_SYNC_APP, true },
	{ "always", CONFIG_SYNC_ALWAYS, true },
	{ NULL, 0, false },
};

static const enum_value lock_keepers[] = {
	{ "ltxfs", CONFIG_LOCKS_LTXFS, true },
	{ "kernel", CONFIG_LOCKS_KERNEL, true },
	{ NULL, 0, false },
};

const enum_value config_repl_modes[] = {
	{ "async", CONFIG_REPL_ASYNC, true },
	{ "sync", CONFIG_REPL_SYNC, true },
	{ NULL, 0, false },
};

const enum_value config_repl_timeouts[] = {
	{ "fail", CONFIG_REPL_FAIL, true },
	{ "degrade", CONFIG_REPL_DEGRADE, true },
	{ NULL, 0, false },
};

const enum_value config_repl_acks[] = {
	{ "fsync", CONFIG_ACK_FSYNC, true },
	{ "write", CONFIG_ACK_WRITE, true },
	{ NULL, 0, false },
};

const enum_value config_proxy_lags[] = {
	{ "forward", CONFIG_LAG_FORWARD, true },
	{ "serve", CONFIG_LAG_SERVE, true },
	{ NULL, 0, false },
};

const enum_value config_lease_types[] = {
	{ "static", CONFIG_LEASE_STATIC, true },
	{ "consul", CONFIG_LEASE_CONSUL, true },
	{ "etcd", CONFIG_LEASE_ETCD, true },
	{ NULL, 0, false },
};

const enum_value config_log_levels[] = {
	{ "debug", LX_DEBUG, true },
	{ "info", LX_INFO, true },
	{ "warn", LX_WARN, true },
	{ "error", LX_ERROR, true },
	{ NULL, 0, false },
};

_Static_assert(sizeof(config_sync) == sizeof(int), "enum size");
_Static_assert(sizeof(config_locks) == sizeof(int), "enum size");
_Static_assert(sizeof(config_lease_type) == sizeof(int), "enum size");
_Static_assert(sizeof(config_repl_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(config_repl_timeout) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lx_log_level) == sizeof(int), "enum size");

/* Every accepted dotted key, in file order (also the order of dumps). */
const char *const config_keys[KEY_COUNT + 1] = {
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
	[KEY_REPLICATION_MODE] = "replication.mode",
	[KEY_REPLICATION_MIN_ACKS] = "replication.min-acks",
	[KEY_REPLICATION_SYNC_TIMEOUT] = "replication.sync-timeout",
	[KEY_REPLICATION_ON_TIMEOUT] = "replication.on-timeout",
	[KEY_REPLICATION_ACK_AFTER] = "replication.ack-after",
	[KEY_PROXY_ADDR] = "proxy.addr",
	[KEY_PROXY_TARGET] = "proxy.target",
	[KEY_PROXY_DB] = "proxy.db",
	[KEY_PROXY_PASSTHROUGH] = "proxy.passthrough",
	[KEY_PROXY_MAX_LAG] = "proxy.max-lag",
	[KEY_PROXY_ON_LAG] = "proxy.on-lag",
	[KEY_PROXY_ADVERTISE_URL] = "proxy.advertise-url",
	[KEY_BACKUP_URL] = "backup.url",
	[KEY_BACKUP_ENDPOINT] = "backup.endpoint",
	[KEY_BACKUP_REGION] = "backup.region",
	[KEY_BACKUP_ACCESS_KEY_ID] = "backup.access-key-id",
	[KEY_BACKUP_SECRET_ACCESS_KEY] = "backup.secret-access-key",
	[KEY_BACKUP_FORCE_PATH_STYLE] = "backup.force-path-style",
	[KEY_BACKUP_SYNC_INTERVAL] = "backup.sync-interval",
	[KEY_BACKUP_SNAPSHOT_INTERVAL] = "backup.snapshot-interval",
	[KEY_BACKUP_RETENTION] = "backup.retention",
	[KEY_BACKUP_L1_INTERVAL] = "backup.l1-interval",
	[KEY_BACKUP_L2_INTERVAL] = "backup.l2-interval",
	[KEY_BACKUP_L3_INTERVAL] = "backup.l3-interval",
	[KEY_BACKUP_MAX_LAG] = "backup.max-lag",
	[KEY_BACKUP_RESTORE_IF_EMPTY] = "backup.restore-if-empty",
	[KEY_BACKUP_ENCRYPTION_KEY_FILE] = "backup.encryption.key-file",
	[KEY_LOG_LEVEL] = "log.level",
	[KEY_EXEC] = "exec",
	[KEY_COUNT] = NULL,
};

#define OFF(member) offsetof(ltxfs_config, member)

const key_spec config_specs[KEY_COUNT] = {
	[KEY_FUSE_DIR] = { K_STRING, OFF(fuse.dir), NULL },
	[KEY_FUSE_DEBUG] = { K_BOOL, OFF(fuse.debug), NULL },
	[KEY_FUSE_ALLOW_OTHER] = { K_BOOL, OFF(fuse.allow_other), NULL },
	[KEY_FUSE_LOCKS] = { K_ENUM, OFF(fuse.locks), lock_keepers },
	[KEY_DATA_DIR] = { K_STRING, OFF(data.dir), NULL },
	[KEY_DATA_RETENTION] = { K_DURATION, OFF(data.retention_ns), NULL },
	[KEY_DATA_RETENTION_BYTES] = { K_SIZE, OFF(data.retention_bytes), NULL },
	[KEY_DATA_SYNC] = { K_ENUM, OFF(data.sync), config_sync_values },
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
	[KEY_LEASE_TYPE] = { K_ENUM, OFF(lease.type), config_lease_types },
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
	[KEY_REPLICATION_MODE] = { K_ENUM, OFF(replication.mode), config_repl_modes },
	[KEY_REPLICATION_MIN_ACKS] = { K_COUNT, OFF(replication.min_acks), NULL },
	[KEY_REPLICATION_SYNC_TIMEOUT] = { K_DURATION, OFF(replication.sync_timeout_ns), NULL },
	[KEY_REPLICATION_ON_TIMEOUT] = { K_ENUM, OFF(replication.on_timeout), config_repl_timeouts },
	[KEY_REPLICATION_ACK_AFTER] = { K_ENUM, OFF(replication.ack_after), config_repl_acks },
	[KEY_PROXY_ADDR] = { K_ADDR, OFF(proxy.addr), NULL },
	[KEY_PROXY_TARGET] = { K_ADDR, OFF(proxy.target), NULL },
	[KEY_PROXY_DB] = { K_STRING, OFF(proxy.db), NULL },
	[KEY_PROXY_PASSTHROUGH] = { K_LIST, OFF(proxy.passthrough), NULL },
	[KEY_PROXY_MAX_LAG] = { K_DURATION, OFF(proxy.max_lag_ns), NULL },
	[KEY_PROXY_ON_LAG] = { K_ENUM, OFF(proxy.on_lag), config_proxy_lags },
	[KEY_PROXY_ADVERTISE_URL] = { K_URL, OFF(proxy.advertise_url), NULL },
	[KEY_BACKUP_URL] = { K_STRING, OFF(backup.url), NULL },
	[KEY_BACKUP_ENDPOINT] = { K_URL, OFF(backup.endpoint), NULL },
	[KEY_BACKUP_REGION] = { K_STRING, OFF(backup.region), NULL },
	[KEY_BACKUP_ACCESS_KEY_ID] = { K_STRING, OFF(backup.access_key_id), NULL },
	[KEY_BACKUP_SECRET_ACCESS_KEY] = { K_SECRET, OFF(backup.secret_access_key), NULL },
	[KEY_BACKUP_FORCE_PATH_STYLE] = { K_BOOL, OFF(backup.force_path_style), NULL },
	[KEY_BACKUP_SYNC_INTERVAL] = { K_DURATION, OFF(backup.sync_interval_ns), NULL },
	[KEY_BACKUP_SNAPSHOT_INTERVAL] = { K_DURATION, OFF(backup.snapshot_interval_ns), NULL },
	[KEY_BACKUP_RETENTION] = { K_DURATION, OFF(backup.retention_ns), NULL },
	[KEY_BACKUP_L1_INTERVAL] = { K_DURATION, OFF(backup.level_interval_ns[1]), NULL },
	[KEY_BACKUP_L2_INTERVAL] = { K_DURATION, OFF(backup.level_interval_ns[2]), NULL },
	[KEY_BACKUP_L3_INTERVAL] = { K_DURATION, OFF(backup.level_interval_ns[3]), NULL },
	[KEY_BACKUP_MAX_LAG] = { K_DURATION, OFF(backup.max_lag_ns), NULL },
	[KEY_BACKUP_RESTORE_IF_EMPTY] = { K_BOOL, OFF(backup.restore_if_empty), NULL },
	[KEY_BACKUP_ENCRYPTION_KEY_FILE] = { K_STRING, OFF(backup.encryption.key_file), NULL },
	[KEY_LOG_LEVEL] = { K_ENUM, OFF(log.level), config_log_levels },
	[KEY_EXEC] = { K_EXEC, OFF(exec), NULL },
};


/* Sizes: config_parse_size() and the dump (which prefers the largest unit
 * that divides the value exactly). */
const size_unit config_size_units[] = {
	{ "", 1 }, { "b", 1 },
	{ "kb", 1000ULL }, { "mb", 1000000ULL },
	{ "gb", 1000000000ULL }, { "tb", 1000000000000ULL },
	{ "kib", 1ULL << 10 }, { "mib", 1ULL << 20 },
	{ "gib", 1ULL << 30 }, { "tib", 1ULL << 40 },
};
const size_t config_n_size_units = sizeof(config_size_units) / sizeof(config_size_units[0]);

const char *const *config_known_keys(void)
{
	return config_keys;
}

void config_init_defaults(ltxfs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->data.retention_ns = 10ULL * 60 * 1000000000ULL;
	c->data.retention_bytes = 1ULL << 30;
	c->data.sync = CONFIG_SYNC_APP;
	c->data.replica_wal = true;
	c->fuse.locks = CONFIG_LOCKS_LTXFS;
	c->lease.type = CONFIG_LEASE_STATIC;
	c->replication.mode = CONFIG_REPL_ASYNC;
	c->replication.min_acks = 1;
	c->replication.sync_timeout_ns = 5ULL * 1000000000ULL;
	c->replication.on_timeout = CONFIG_REPL_FAIL;
	c->replication.ack_after = CONFIG_ACK_FSYNC;
	c->proxy.max_lag_ns = 10ULL * 1000000000ULL;
	c->proxy.on_lag = CONFIG_LAG_FORWARD;
	c->lease.candidate = true;
	c->http.health_max_lag_ns = 10ULL * 1000000000ULL;
	c->http.max_connections = 256;
	c->http.max_event_streams = 32;
	c->http.max_transfers = 8;
	c->http.max_import_size = 16ULL << 30;
	c->lease.consul.ttl_ns = 10ULL * 1000000000ULL;
	c->lease.consul.lock_delay_ns = 1000000000ULL;
	c->lease.etcd.ttl_ns = 10ULL * 1000000000ULL;
	c->backup.sync_interval_ns = 1000000000ULL;
	c->backup.snapshot_interval_ns = 24ULL * 3600 * 1000000000ULL;
	c->backup.retention_ns = 72ULL * 3600 * 1000000000ULL;
	c->backup.max_lag_ns = 60ULL * 1000000000ULL;
	c->backup.level_interval_ns[1] = 30ULL * 1000000000ULL;
	c->backup.level_interval_ns[2] = 5ULL * 60 * 1000000000ULL;
	c->backup.level_interval_ns[3] = 3600ULL * 1000000000ULL;
	c->log.level = LX_INFO;
}

/* Overwrite a secret before its memory goes back to the allocator. */
static void free_secret(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Every string key's value is a heap string owned by the struct; the
 * schema says which fields those are, so a new key cannot leak. */
void config_free(ltxfs_config *c)
{
	for (int i = 0; i < KEY_COUNT; i++) {
		char **slot = config_field(c, (enum key_id)i);
		switch (config_specs[i].kind) {
		case K_SECRET:
			free_secret(*slot);
			break;
		case K_STRING:
		case K_ADDR:
		case K_URL:
			free(*slot);
			break;
		case K_LIST:
			for (char **s = *(char ***)slot; s != NULL && *s != NULL; s++)
				free(*s);
			free(*slot);
			break;
		default:
			break;
		}
	}
	free(c->origin);
	for (size_t i = 0; i < c->exec.n; i++)
		free(c->exec.cmds[i].cmd);
	free(c->exec.cmds);
	memset(c, 0, sizeof(*c));
}
