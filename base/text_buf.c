/*
 * text_buf.c - a growable text buffer (text_buf.h).
 */
#include "base/text_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_buf_free(text_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void text_put(text_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->oom = 1;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
}

void text_put_json_string(text_buf *b, const char *s)
{
	text_put(b, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			text_put(b, "\\%c", *p);
		else if (*p < 0x20)
			text_put(b, "\\u%04x", *p);
		else
			text_put(b, "%c", *p);
	}
	text_put(b, "\"");
}
