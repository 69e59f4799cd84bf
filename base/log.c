/*
 * log.c - line-oriented logging to stderr (see log.h).
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The only global of this module: written once at start-up (see log.h). */
static enum lx_log_level min_level = LX_INFO;

void lx_log_set_level(enum lx_log_level level)
{
	min_level = level;
}

int lx_log_enabled(enum lx_log_level level)
{
	return level >= min_level;
}

static const char *level_name(enum lx_log_level level)
{
	switch (level) {
	case LX_DEBUG: return "DEBUG";
	case LX_INFO: return "INFO";
	case LX_WARN: return "WARN";
	case LX_ERROR: return "ERROR";
	}
	return "?";
}

void lx_log(enum lx_log_level level, const char *scope, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!lx_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (size_t)snprintf(line, sizeof(line),
			     "%02d:%02d:%02d.%03ld %-5s [%s] ", tm.tm_hour,
			     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			     level_name(level), scope ? scope : "-");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line so lines from several threads never interleave. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nothing sensible to do when stderr is gone. */
	}
}
