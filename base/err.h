/*
 * err.h - errors as values.
 *
 * Every fallible function in ltxfs returns an int: 0 on success, a negative
 * errno-style code on failure.  When the caller passes an `lx_err`, the
 * failing layer also writes a human-readable message with its context
 * ("ltx: page 7: checksum mismatch (want 8f.., got 91..)").  Callers that
 * add context wrap the message with lx_err_wrap(); the layer that decides
 * what to do with the failure logs it once (see log.h).
 *
 * The struct is plain data: no allocation, safe to place on the stack, safe
 * to pass NULL when the caller only needs the code.
 */
#ifndef LTXFS_BASE_ERR_H
#define LTXFS_BASE_ERR_H

#include <stddef.h>

#define LX_ERR_MSG_MAX 512

typedef struct lx_err {
	int code;                 /* positive errno value, 0 when no error */
	char msg[LX_ERR_MSG_MAX]; /* NUL-terminated description with context */
} lx_err;

/* Reset `e` to "no error". `e` may be NULL. */
void lx_err_clear(lx_err *e);

/*
 * Record error `code` (a positive errno value such as EINVAL) with a
 * printf-style message.  Returns -code so callers can write
 *     return lx_err_set(err, EINVAL, "bad page size %u", ps);
 * `e` may be NULL, in which case only the code is returned.
 */
int lx_err_set(lx_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Like lx_err_set() but appends strerror(code) to the message, for failures
 * of system calls:  return lx_err_sys(err, errno, "open %s", path);
 */
int lx_err_sys(lx_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prefix the existing message with more context ("db foo: " + msg) and
 * return -e->code.  `e` may be NULL (then returns -EIO).
 */
int lx_err_wrap(lx_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
