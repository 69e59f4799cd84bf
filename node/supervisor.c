/*
 * supervisor.c - signals, readiness and the exec'd application (see
 * supervisor.h).
 */
#include "node/supervisor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "base/log.h"

extern char **environ;

#define READY_POLL_MS 20
#define KILL_GRACE_MS 10000

struct supervisor {
	supervisor_options o;
	supervisor_hooks h;
	pthread_t signal_thread, run_thread;
	int threads;               /* how many of the two started */

	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t changed;    /* mounted, stopping, child */
	int mounted;
	int stopping;              /* start no command: a signal, a failure, or the end */
	int finished;              /* supervisor_finish: the signal thread ends */
	pid_t child;               /* the running command's PID (= its group), or 0 */
	sigset_t forwarded;        /* signals sent to the running command */
	int status;                /* ltxfs's exit status so far */
};

/* ---- time and waiting ------------------------------------------------------ */

static struct timespec deadline_in(int64_t ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static int past(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Stop the mount: nothing more starts, fs_run returns (soon). */
static void stop_mount(supervisor *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
	fs_stop(s->o.fs);
}

/* ---- the signal thread ----------------------------------------------------- */

static void termination_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);   /* supervisor_finish wakes the thread with it */
}

void supervisor_block_signals(void)
{
	sigset_t set;
	termination_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *signal_main(void *arg)
{
	supervisor *s = arg;
	sigset_t set;
	termination_signals(&set);
	for (;;) {
		int sig = 0;
		pid_t child;
		if (sigwait(&set, &sig) != 0)
			continue;
		pthread_mutex_lock(&s->mu);
		if (s->finished) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		if (sig == SIGUSR1) {
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		if (sig == SIGHUP && s->h.reload != NULL) {   /* rotate, go on */
			pthread_mutex_unlock(&s->mu);
			s->h.reload(s->h.reload_ctx);
			continue;
		}
		s->stopping = 1;
		pthread_cond_broadcast(&s->changed);
		child = s->child;
		if (child > 0) {
			sigaddset(&s->forwarded, sig);
			kill(-child, sig);
		}
		pthread_mutex_unlock(&s->mu);
		if (child > 0) {
			lx_info("exec", "SIG%s: passed on to the application (pid %d); the mount "
				"stays until it exits", sigabbrev_np(sig), (int)child);
		} else {
			lx_info("ltxfs", "SIG%s: stopping", sigabbrev_np(sig));
			fs_stop(s->o.fs);
		}
	}
}

/* ---- running one command --------------------------------------------------- */

/* A command's wait status as ltxfs's exit status. */
static int exit_status_of(supervisor *s, int wstatus)
{
	int sig, forwarded;
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : SIGKILL;
	pthread_mutex_lock(&s->mu);
	forwarded = sigismember(&s->forwarded, sig) == 1;
	pthread_mutex_unlock(&s->mu);
	return forwarded ? 0 : 128 + sig;
}

/* Spawn argv in a process group of its own, with default signal handling
 * and nothing blocked; recorded as s->child unless a stop came first. */
static int spawn(supervisor *s, char *const argv[], pid_t *pid)
{
	posix_spawnattr_t a;
	sigset_t none, dfl;
	int rc;
	sigemptyset(&none);
	termination_signals(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGUSR2);
	posix_spawnattr_init(&a);
	posix_spawnattr_setflags(&a, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&a, 0);
	posix_spawnattr_setsigmask(&a, &none);
	posix_spawnattr_setsigdefault(&a, &dfl);
	/* Under the mutex: a signal either comes before (nothing starts) or
	 * finds the child recorded (it is passed on).  posix_spawn returns as
	 * soon as the child exists (vfork-like), so the wait is short. */
	pthread_mutex_lock(&s->mu);
	if (s->stopping) {
		rc = ECANCELED;
	} else {
		rc = posix_spawnp(pid, argv[0], NULL, &a, argv, environ);
		if (rc == 0)
			s->child = *pid;
	}
	pthread_mutex_unlock(&s->mu);
	posix_spawnattr_destroy(&a);
	return rc;
}

/* Run argv to its end; its exit status for ltxfs, or -1 when a stop came
 * before it started. */
static int run_command(supervisor *s, const char *label, char *const argv[])
{
	pid_t pid = 0;
	int wstatus = 0, rc = spawn(s, argv, &pid);
	if (rc == ECANCELED)
		return -1;
	if (rc != 0) {
		lx_error("exec", "%s: cannot run %s: %s", label, argv[0], strerror(rc));
		return 127;
	}
	lx_info("exec", "%s: started (pid %d)", label, (int)pid);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&s->mu);
	s->child = 0;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
	return exit_status_of(s, wstatus);
}

/* ---- the supervisor thread ------------------------------------------------- */

/* Wait until mounted and ready; 0, or -1 on a stop. */
static int wait_ready(supervisor *s, int *primary)
{
	for (;;) {
		struct timespec t = deadline_in(READY_POLL_MS);
		int mounted, stopping;
		pthread_mutex_lock(&s->mu);
		mounted = s->mounted;
		stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stopping)
			return -1;
		if (mounted && s->h.ready(s->h.ctx, primary))
			return 0;
		pthread_mutex_lock(&s->mu);
		if (!s->stopping)
			pthread_cond_timedwait(&s->changed, &s->mu, &t);
		pthread_mutex_unlock(&s->mu);
	}
}

/* Whether an if-candidate entry runs here; may take the primary role. */
static int candidate_may_run(supervisor *s, const char *label, const config_exec *e)
{
	int primary = 0;
	lx_err err;
	if (!s->o.candidate) {
		lx_info("exec", "%s: skipped: this node is not a candidate (if-candidate)", label);
		return 0;
	}
	if (s->h.ready(s->h.ctx, &primary) && primary)
		return 1;
	if (!e->promote) {
		lx_info("exec", "%s: skipped: this candidate is a replica now (if-candidate "
			"commands run on the primary; promote: true takes the role first)", label);
		return 0;
	}
	lx_info("exec", "%s: taking the primary role first (promote: true)", label);
	if (s->h.promote(s->h.ctx, &err) < 0) {
		lx_error("exec", "%s: cannot take the primary role: %s; stopping", label, err.msg);
		return -1;
	}
	return 1;
}

static int stop_requested(supervisor *s)
{
	int stopping;
	pthread_mutex_lock(&s->mu);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stopping;
}

static void set_status(supervisor *s, int status)
{
	pthread_mutex_lock(&s->mu);
	s->status = status;
	pthread_mutex_unlock(&s->mu);
}

/* Run entry i of the exec list; its status, -1 if skipped or stopped. */
static int run_entry(supervisor *s, size_t i, int *failed)
{
	const config_exec *e = &s->o.cmds[i];
	char label[32];
	char *argv[] = { "/bin/sh", "-c", e->cmd, NULL };
	int may;
	snprintf(label, sizeof(label), "exec[%zu]", i);
	*failed = 0;
	if (e->if_candidate && (may = candidate_may_run(s, label, e)) <= 0) {
		*failed = may < 0;
		return may < 0 ? 1 : -1;
	}
	lx_info("exec", "%s: running \"%s\"", label, e->cmd);
	return run_command(s, label, argv);
}

static void run_exec_list(supervisor *s)
{
	for (size_t i = 0; i < s->o.n_cmds; i++) {
		int last = i + 1 == s->o.n_cmds, failed;
		int status = run_entry(s, i, &failed);
		if (failed) {
			set_status(s, status);
			stop_mount(s);
			return;
		}
		if (status < 0)
			continue;
		if (last || status != 0 || stop_requested(s)) {
			if (!last && status != 0)
				lx_error("exec", "exec[%zu] exited with status %d; stopping", i, status);
			else
				lx_info("exec", "exec[%zu] exited with status %d; stopping", i, status);
			set_status(s, status);
			stop_mount(s);
			return;
		}
	}
}

static void *run_main(void *arg)
{
	supervisor *s = arg;
	int primary = 0;
	if (wait_ready(s, &primary) < 0)
		return NULL;
	lx_info("ltxfs", "ready (%s)", primary ? "primary" : "replica");
	sd_notifyf(0, "READY=1\nSTATUS=%s, serving %s", primary ? "primary" : "replica",
		   s->o.mountpoint);
	if (s->o.argv != NULL) {
		int status = run_command(s, "application", s->o.argv);
		if (status >= 0) {
			lx_info("exec", "the application exited with status %d; stopping", status);
			set_status(s, status);
			stop_mount(s);
		}
	} else if (s->o.n_cmds > 0) {
		run_exec_list(s);
	}
	return NULL;
}

/* ---- start and finish ------------------------------------------------------ */

int supervisor_start(supervisor **out, const supervisor_options *o,
		     const supervisor_hooks *h, lx_err *err)
{
	supervisor *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	s->o = *o;
	s->h = *h;
	sigemptyset(&s->forwarded);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->signal_thread, NULL, signal_main, s) != 0) {
		supervisor_finish(s);
		return lx_err_set(err, EAGAIN, "cannot start the signal thread");
	}
	s->threads = 1;
	if (pthread_create(&s->run_thread, NULL, run_main, s) != 0) {
		supervisor_finish(s);
		return lx_err_set(err, EAGAIN, "cannot start the supervisor thread");
	}
	s->threads = 2;
	*out = s;
	return 0;
}

void supervisor_mounted(supervisor *s)
{
	pthread_mutex_lock(&s->mu);
	s->mounted = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
}

/* The mount is gone while a command runs: SIGTERM, then SIGKILL. */
static void end_child(supervisor *s)
{
	struct timespec t = deadline_in(KILL_GRACE_MS);
	pthread_mutex_lock(&s->mu);
	if (s->child > 0) {
		lx_warn("exec", "the mount ended while pid %d runs: sending it SIGTERM",
			(int)s->child);
		sigaddset(&s->forwarded, SIGTERM);
		kill(-s->child, SIGTERM);
	}
	while (s->child > 0 && !past(&t))
		pthread_cond_timedwait(&s->changed, &s->mu, &t);
	if (s->child > 0) {
		lx_warn("exec", "pid %d still runs after %d s: SIGKILL", (int)s->child,
			KILL_GRACE_MS / 1000);
		kill(-s->child, SIGKILL);
	}
	pthread_mutex_unlock(&s->mu);
}

int supervisor_finish(supervisor *s)
{
	int status;
	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
	sd_notify(0, "STOPPING=1");
	end_child(s);
	if (s->threads >= 2)
		pthread_join(s->run_thread, NULL);
	pthread_mutex_lock(&s->mu);
	s->finished = 1;
	pthread_mutex_unlock(&s->mu);
	if (s->threads >= 1) {
		pthread_kill(s->signal_thread, SIGUSR1);
		pthread_join(s->signal_thread, NULL);
	}
	status = s->status;
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return status;
}
