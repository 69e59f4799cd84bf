/*
 * events.c - commit notifications shared by a store's databases (db_events
 * in database.h): a counter bumped at every logged transaction and a
 * condition variable that the replicas' stream sessions wait on.
 */
#include "db/database.h"

#include <string.h>
#include <time.h>

#include "base/clock.h"

void db_events_init(db_events *ev)
{
	pthread_condattr_t ca;
	memset(ev, 0, sizeof(*ev));
	pthread_mutex_init(&ev->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &ca);
	pthread_condattr_destroy(&ca);
}

void db_events_destroy(db_events *ev)
{
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->mu);
}

void db_events_notify(db_events *ev)
{
	if (ev == NULL)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->seq++;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->mu);
}

void db_events_wait(db_events *ev, uint64_t *seen, int timeout_ms, const int *stop)
{
	struct timespec ts = lx_mono_deadline(timeout_ms);
	pthread_mutex_lock(&ev->mu);
	while (ev->seq == *seen && !(stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)))
		if (pthread_cond_timedwait(&ev->cond, &ev->mu, &ts) != 0)
			break;
	*seen = ev->seq;
	pthread_mutex_unlock(&ev->mu);
}
