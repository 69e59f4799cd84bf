/*
 * supervisor.h - a running node's life around its mount: termination
 * signals, readiness (systemd's sd_notify), and the application that
 * `exec` (or `ltxfs mount ... -- CMD ARGS`) runs under ltxfs.
 *
 * Signals.  SIGINT, SIGTERM and SIGHUP are blocked in every thread (the
 * caller blocks them with supervisor_block_signals() before it starts any
 * thread) and received by the supervisor's signal thread:
 *   - while an application command runs, they are forwarded to it (to its
 *     process group: each command runs in a group of its own, so a
 *     terminal's Ctrl-C reaches it once, through ltxfs), and the mount
 *     stays up until it exits;
 *   - otherwise they stop the mount (fs_stop).
 * Except SIGHUP when the node serves HTTPS (hooks.reload set): it re-reads
 * the certificates, and neither stops the node nor reaches the application.
 *
 * Readiness.  The node is ready when the mount is live and the node is
 * the primary holding its lease (after catching up) or a replica that has
 * caught up with its primary.  Then READY=1 goes to systemd (a no-op
 * outside a Type=notify unit) and the commands run, in order, each as
 * `/bin/sh -c CMD` (or the `--` argv, executed directly):
 *   - every command but the last must exit 0, else the node stops and
 *     exits with that command's status;
 *   - the last is the application: when it exits the node stops, and
 *     ltxfs exits with its status (0 when it died of a signal ltxfs
 *     forwarded: a requested stop; 128+N when signal N killed it
 *     otherwise);
 *   - an if-candidate entry runs only on a candidate that is the primary;
 *     with promote, a candidate replica first takes the primary role by a
 *     hand-off; without, a candidate replica skips it (and says why).
 * A stop before readiness starts nothing.  When the mount ends for another
 * reason while a command runs, the command gets SIGTERM, then SIGKILL
 * after 10 s.
 *
 * Threads: "supervisor signals" (sigwait; forwards or stops) and
 * "supervisor" (waits for readiness, runs the commands, reaps them).  They
 * share the state below its mutex; the node is asked through the hooks.
 */
#ifndef LTXFS_NODE_SUPERVISOR_H
#define LTXFS_NODE_SUPERVISOR_H

#include <stddef.h>

#include "base/err.h"
#include "config/config.h"
#include "fs/fs.h"

typedef struct supervisor supervisor;

typedef struct supervisor_hooks {
	void *ctx;
	/* 1 when the node is ready (primary with its lease, or replica caught
	 * up); *primary tells which. */
	int (*ready)(void *ctx, int *primary);
	/* Take the primary role by a hand-off (promote entries). */
	int (*promote)(void *ctx, lx_err *err);
	/* SIGHUP, when set: reload (the TLS certificates), on the signal
	 * thread; the node goes on and the application is not told.  NULL:
	 * SIGHUP is a termination signal like SIGTERM. */
	void *reload_ctx;
	void (*reload)(void *reload_ctx);
} supervisor_hooks;

typedef struct supervisor_options {
	const config_exec *cmds;   /* the exec list (may be empty) */
	size_t n_cmds;
	char *const *argv;         /* `mount -- CMD ARGS`: replaces cmds; NULL if none */
	int candidate;             /* lease.candidate */
	const char *mountpoint;    /* for messages */
	fs_control *fs;            /* what ends the mount */
} supervisor_options;

/* Block SIGINT, SIGTERM, SIGHUP (and SIGUSR1, the supervisor's own wake-up)
 * in the calling thread, before any other thread exists. */
void supervisor_block_signals(void);

/* Start both threads.  `o` and `h` are copied; what they point at must
 * outlive the supervisor. */
int supervisor_start(supervisor **out, const supervisor_options *o,
		     const supervisor_hooks *h, lx_err *err);

/* The mount is live (fs_run's on_ready). */
void supervisor_mounted(supervisor *s);

/* After fs_run returned: end any command still running, stop both threads,
 * tell systemd STOPPING=1, free.  Returns the exit status for ltxfs: the
 * application's (see above), or 0 when no command decided it. */
int supervisor_finish(supervisor *s);

#endif
