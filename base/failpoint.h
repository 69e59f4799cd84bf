/*
 * failpoint.h - named places in the write path where a fault test can make
 * the daemon die, deterministically, at a chosen step.
 *
 * The fault suite (tests/faults/test_kill_points.py) sets
 *     LTXFS_FAILPOINTS="NAME=N[,NAME=N...]"
 * in the daemon's environment: the Nth time the code passes LX_FAILPOINT(NAME)
 * the process sends itself SIGKILL, exactly as if an operator or the OOM
 * killer had killed it there.  A point that does something first (a torn
 * write) asks lx_failpoint_due(NAME), does it, and calls lx_failpoint_kill().
 *
 * Global state: the table of armed points, parsed once by
 * lx_failpoints_init() before threads start and read-only afterwards
 * except for each point's countdown (atomic).  Without the variable the
 * cost of a point is one predictable branch on lx_failpoints_on.
 *
 * The names, and the step each one stands for, are listed in failpoint.c.
 */
#ifndef LTXFS_BASE_FAILPOINT_H
#define LTXFS_BASE_FAILPOINT_H

extern int lx_failpoints_on;

/* Read LTXFS_FAILPOINTS; an unknown name or a bad count is reported on
 * stderr and ignored (a test that misspells a point fails by not dying). */
void lx_failpoints_init(void);

/* 1 on the Nth pass of an armed point (counting down), else 0. */
int lx_failpoint_due(const char *name);

/* SIGKILL this process; never returns. */
void lx_failpoint_kill(const char *name) __attribute__((noreturn));

#define LX_FAILPOINT(name) \
	do { \
		if (__builtin_expect(lx_failpoints_on, 0) && lx_failpoint_due(name)) \
			lx_failpoint_kill(name); \
	} while (0)

#endif
