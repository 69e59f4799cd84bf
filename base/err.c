/*
 * err.c - formatting of lx_err values (see err.h for the contract).
 */
#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void lx_err_clear(lx_err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}

static void format_into(lx_err *e, const char *fmt, va_list ap)
{
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int lx_err_set(lx_err *e, int code, const char *fmt, ...)
{
	if (code <= 0)
		code = EIO;
	if (e != NULL) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		format_into(e, fmt, ap);
		va_end(ap);
	}
	return -code;
}

int lx_err_sys(lx_err *e, int code, const char *fmt, ...)
{
	if (code <= 0)
		code = EIO;
	if (e != NULL) {
		va_list ap;
		size_t used;
		e->code = code;
		va_start(ap, fmt);
		format_into(e, fmt, ap);
		va_end(ap);
		used = strlen(e->msg);
		snprintf(e->msg + used, sizeof(e->msg) - used, ": %s",
			 strerror(code));
	}
	return -code;
}

int lx_err_wrap(lx_err *e, const char *fmt, ...)
{
	char prefix[LX_ERR_MSG_MAX];
	char old[LX_ERR_MSG_MAX];
	size_t n, old_len;
	va_list ap;

	if (e == NULL)
		return -EIO;
	if (e->code == 0)
		e->code = EIO;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Truncation of very long messages is acceptable. */
	n = strlen(prefix);
	if (n > sizeof(e->msg) - 3)
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, prefix, n);
	memcpy(e->msg + n, ": ", 2);
	n += 2;
	old_len = strnlen(old, sizeof(old) - 1);
	if (old_len > sizeof(e->msg) - 1 - n)
		old_len = sizeof(e->msg) - 1 - n;
	memcpy(e->msg + n, old, old_len);
	e->msg[n + old_len] = '\0';
	return -e->code;
}
