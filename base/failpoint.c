/*
 * failpoint.c - see failpoint.h.
 *
 * The points (where a SIGKILL there leaves the node):
 *   wal.commit.before_log      a WAL commit frame is in the file, not yet logged
 *   wal.commit.after_log       logged, but the write not yet answered (SQLite
 *                              has not seen its commit succeed)
 *   rollback.commit.before_log the journal is about to stop being hot, nothing logged
 *   rollback.commit.after_log  logged, the journal still hot
 *   log.append.torn            half of a log record written
 *   stream.send.mid            the primary sent part of a frame to a replica
 *   replica.receive.mid        a replica received part of a frame
 *   replica.apply.after_log    a replica logged a transaction, pages not yet written
 *   replica.ack.before_sync    sync mode: positions to acknowledge, the log not fsynced
 *   replica.ack.before_send    sync mode: the log fsynced, the acknowledgement not sent
 */
#include "base/failpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_POINTS 8

static const char *const known[] = {
	"wal.commit.before_log", "wal.commit.after_log", "rollback.commit.before_log",
	"rollback.commit.after_log", "log.append.torn", "stream.send.mid",
	"replica.receive.mid", "replica.apply.after_log", "replica.ack.before_sync",
	"replica.ack.before_send",
};

struct point {
	const char *name;   /* one of known[] */
	long countdown;     /* atomic: passes left before it fires */
};

int lx_failpoints_on;
static struct point points[MAX_POINTS];
static int n_points;

static const char *known_name(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len && memcmp(known[i], s, len) == 0)
			return known[i];
	return NULL;
}

void lx_failpoints_init(void)
{
	const char *spec = getenv("LTXFS_FAILPOINTS");
	while (spec != NULL && *spec != '\0' && n_points < MAX_POINTS) {
		const char *end = strchr(spec, ',');
		const char *eq = strchr(spec, '=');
		size_t len = end ? (size_t)(end - spec) : strlen(spec);
		const char *name = eq && eq < spec + len ? known_name(spec, (size_t)(eq - spec)) : NULL;
		long n = name ? strtol(eq + 1, NULL, 10) : 0;
		if (name == NULL || n <= 0)
			fprintf(stderr, "LTXFS_FAILPOINTS: ignoring \"%.*s\"\n", (int)len, spec);
		else
			points[n_points++] = (struct point){ name, n };
		spec = end ? end + 1 : NULL;
	}
	lx_failpoints_on = n_points > 0;
}

int lx_failpoint_due(const char *name)
{
	for (int i = 0; i < n_points; i++)
		if (strcmp(points[i].name, name) == 0)
			return __atomic_sub_fetch(&points[i].countdown, 1, __ATOMIC_ACQ_REL) == 0;
	return 0;
}

void lx_failpoint_kill(const char *name)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "failpoint %s: SIGKILL\n", name);
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* dying anyway */
	}
	for (;;)
		kill(getpid(), SIGKILL);
}
