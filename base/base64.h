/*
 * base64.h - standard base64 (RFC 4648, with padding), as Consul's KV API
 * and etcd's JSON gateway carry keys and values.  Pure functions, no state.
 */
#ifndef LTXFS_BASE_BASE64_H
#define LTXFS_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to encode n bytes, with the terminating NUL. */
#define LX_BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encode n bytes into out (LX_BASE64_ENCODED_SIZE(n) bytes), NUL-terminated. */
void lx_base64_encode(const uint8_t *in, size_t n, char *out);

/* Decode `len` characters into out (at most cap bytes).  Returns the number
 * of bytes, or -1 if the text is not canonical padded base64 or does not
 * fit: a malformed value is refused, never guessed at. */
long lx_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
