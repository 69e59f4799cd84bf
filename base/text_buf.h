/*
 * text_buf.h - a growable text buffer for documents ltxfs writes (JSON,
 * the Prometheus text format).
 *
 * Appending never fails at the call: a failed allocation sets `oom` and
 * later appends do nothing, so a writer checks once at the end.  No
 * global state; one buffer belongs to one thread at a time.
 */
#ifndef LTXFS_BASE_TEXT_BUF_H
#define LTXFS_BASE_TEXT_BUF_H

#include <stddef.h>

typedef struct text_buf {
	char *data;    /* NUL-terminated when len > 0 */
	size_t len, cap;
	int oom;       /* an allocation failed: the text is incomplete */
} text_buf;

void text_buf_free(text_buf *b);

/* Append printf-style. */
void text_put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append a JSON string literal (RFC 8259): quotes, backslashes and control
 * characters escaped; other bytes (UTF-8) as they are.  NULL is "". */
void text_put_json_string(text_buf *b, const char *s);

#endif
