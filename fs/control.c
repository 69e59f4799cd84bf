/*
 * control.c - ending fs_run() from another thread (see fs.h, fs_stop).
 *
 * libfuse ends its multi-threaded loop when the session is marked exited
 * and the loop's thread wakes from its wait (which a signal interrupts;
 * that is how libfuse's own SIGTERM handler works).  ltxfs blocks the
 * termination signals in every thread and receives them on a thread of
 * its own (node/supervisor.c), so no signal reaches the loop by itself:
 * fs_stop marks the session exited and interrupts the loop's thread with
 * SIGUSR2, whose handler does nothing.  The interruption is repeated until
 * the loop reports it ended, because a signal that lands just before the
 * loop starts waiting would be lost.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/fs.h"
#include "fs/fs_internal.h"

#define STOP_RETRY_MS 50

struct fs_control {
	pthread_mutex_t mu;
	pthread_cond_t ended;
	struct fuse_session *se;   /* while the loop runs */
	pthread_t loop_thread;
	int looping;
	int stop;                  /* fs_stop was called */
};

int fs_control_new(fs_control **out)
{
	fs_control *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->ended, &ca);
	pthread_condattr_destroy(&ca);
	*out = c;
	return 0;
}

void fs_control_free(fs_control *c)
{
	if (c == NULL)
		return;
	pthread_cond_destroy(&c->ended);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void wake_handler(int sig)
{
	(void)sig;   /* only interrupts the loop's wait */
}

int fs_control_enter(fs_control *c, struct fuse_session *se)
{
	struct sigaction sa;
	int stop;
	if (c == NULL)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	pthread_mutex_lock(&c->mu);
	stop = c->stop;
	if (!stop) {
		c->se = se;
		c->loop_thread = pthread_self();
		c->looping = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return stop;
}

void fs_control_leave(fs_control *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->looping = 0;
	c->se = NULL;
	pthread_cond_broadcast(&c->ended);
	pthread_mutex_unlock(&c->mu);
}

void fs_stop(fs_control *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	if (c->looping)
		fuse_session_exit(c->se);
	while (c->looping) {
		struct timespec t;
		pthread_kill(c->loop_thread, SIGUSR2);
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += STOP_RETRY_MS * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->ended, &c->mu, &t);
	}
	pthread_mutex_unlock(&c->mu);
}
