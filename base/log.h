/*
 * log.h - the one logging facility of the daemon.
 *
 * Lines go to stderr as "LEVEL [scope] message".  `scope` is the database
 * name for anything that concerns one database, or a module name ("fuse",
 * "store", "config").  Logging is thread-safe: each line is written with a
 * single write(2).
 *
 * Global state: the minimum level (lx_log_level), set once at start-up by
 * cmd/ before threads exist, read-only afterwards.  Pure libraries (ltx/)
 * never log; they return lx_err values instead.
 */
#ifndef LTXFS_BASE_LOG_H
#define LTXFS_BASE_LOG_H

enum lx_log_level { LX_DEBUG = 0, LX_INFO = 1, LX_WARN = 2, LX_ERROR = 3 };

/* Minimum level printed; default LX_INFO.  Set before starting threads. */
void lx_log_set_level(enum lx_log_level level);
int lx_log_enabled(enum lx_log_level level);

void lx_log(enum lx_log_level level, const char *scope, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define lx_debug(scope, ...) \
	do { if (lx_log_enabled(LX_DEBUG)) lx_log(LX_DEBUG, scope, __VA_ARGS__); } while (0)
#define lx_info(scope, ...) lx_log(LX_INFO, scope, __VA_ARGS__)
#define lx_warn(scope, ...) lx_log(LX_WARN, scope, __VA_ARGS__)
#define lx_error(scope, ...) lx_log(LX_ERROR, scope, __VA_ARGS__)

#endif
