/*
 * syncer.c - the log syncer thread (see syncer.h).
 */
#include "db/syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct log_syncer {
	pthread_mutex_t mu;
	pthread_cond_t work;     /* a ticket was queued, or stop */
	pthread_cond_t done;     /* a ticket finished */
	sync_ticket *head, *tail;
	int stopping;
	pthread_t thread;
};

static sync_ticket *next_ticket_locked(log_syncer *s)
{
	while (s->head == NULL && !s->stopping)
		pthread_cond_wait(&s->work, &s->mu);
	sync_ticket *t = s->head;
	if (t != NULL) {
		s->head = t->next;
		if (s->head == NULL)
			s->tail = NULL;
	}
	return t;
}

static void *syncer_main(void *arg)
{
	log_syncer *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		sync_ticket *t = next_ticket_locked(s);
		if (t == NULL)
			break;
		pthread_mutex_unlock(&s->mu);
		lx_err_clear(&t->err);
		int rc = txlog_sync(t->log, &t->err);
		pthread_mutex_lock(&s->mu);
		t->rc = rc;
		t->done = 1;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int log_syncer_start(log_syncer **out, lx_err *err)
{
	log_syncer *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (s == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	rc = pthread_create(&s->thread, NULL, syncer_main, s);
	if (rc != 0) {
		pthread_cond_destroy(&s->done);
		pthread_cond_destroy(&s->work);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return lx_err_sys(err, rc, "start log syncer thread");
	}
	*out = s;
	return 0;
}

void log_syncer_stop(log_syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void log_syncer_submit(log_syncer *s, sync_ticket *t, txlog *log)
{
	t->log = log;
	t->done = 0;
	t->rc = 0;
	t->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->tail != NULL)
		s->tail->next = t;
	else
		s->head = t;
	s->tail = t;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
}

int log_syncer_wait(log_syncer *s, sync_ticket *t, lx_err *err)
{
	pthread_mutex_lock(&s->mu);
	while (!t->done)
		pthread_cond_wait(&s->done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (t->rc < 0 && err != NULL)
		*err = t->err;
	return t->rc;
}
