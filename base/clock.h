/*
 * clock.h - the clocks the daemon reads: wall-clock milliseconds (what
 * LTX timestamps, heartbeats and lag use) and monotonic time (timeouts).
 */
#ifndef LTXFS_BASE_CLOCK_H
#define LTXFS_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t lx_wall_ms(void);

/* Milliseconds of CLOCK_MONOTONIC (only differences mean anything). */
int64_t lx_mono_ms(void);

/* Nanoseconds of CLOCK_MONOTONIC (short intervals, e.g. commit waits). */
int64_t lx_mono_ns(void);

/* The CLOCK_MONOTONIC instant `ms` from now, for pthread_cond_timedwait on
 * a condition variable created with pthread_condattr_setclock(MONOTONIC). */
struct timespec lx_mono_deadline(int ms);

#endif
