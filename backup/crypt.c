/*
 * crypt.c - sealing and opening backup objects, and their key (see crypt.h
 * for the contract and the object format).
 *
 * The chunked secretstream rather than one AEAD call: each 64 KiB chunk is
 * authenticated on its own and the stream's FINAL tag marks the end, so a
 * truncated object is told apart from a complete one without a length
 * field, and a later streaming reader can check an object as it arrives.
 */
#include "backup/crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/base64.h"

_Static_assert(BACKUP_KEY_BYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES,
	       "a backup key is a secretstream key");
_Static_assert(BACKUP_KEY_BYTES >= crypto_generichash_blake2b_KEYBYTES_MIN,
	       "a backup key is a BLAKE2b key");
_Static_assert(BACKUP_HEADER_BYTES == BACKUP_PREAMBLE_BYTES +
	       crypto_secretstream_xchacha20poly1305_HEADERBYTES, "header layout");
_Static_assert(BACKUP_CHUNK_OVERHEAD == crypto_secretstream_xchacha20poly1305_ABYTES,
	       "chunk overhead");
_Static_assert(BACKUP_PREAMBLE_BYTES == 4 + 1 + BACKUP_KEY_ID_BYTES, "preamble layout");

#define FULL_CHUNK ((size_t)BACKUP_CHUNK_BYTES + BACKUP_CHUNK_OVERHEAD)
#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL

/* Personalisations (exactly 16 bytes each): one value of the key per use. */
static const char PERSONAL_KEY_ID[] = "ltxfs-bk-keyid-1";
static const char PERSONAL_STREAM[] = "ltxfs-bk-stream1";
static const char PERSONAL_NAME[] = "ltxfs-bk-dbname1";
_Static_assert(sizeof(PERSONAL_KEY_ID) - 1 == crypto_generichash_blake2b_PERSONALBYTES &&
	       sizeof(PERSONAL_STREAM) - 1 == crypto_generichash_blake2b_PERSONALBYTES &&
	       sizeof(PERSONAL_NAME) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
	       "personalisations are 16 bytes");

int backup_crypto_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

/* Keyed BLAKE2b of `msg` (outlen 16..64): a value of the key for one use. */
static void derive(const backup_key *key, const char *personal, const void *msg, size_t len,
		   uint8_t *out, size_t outlen)
{
	static const uint8_t empty;
	crypto_generichash_blake2b_salt_personal(out, outlen, msg ? msg : &empty, len, key->k,
						 sizeof(key->k), NULL,
						 (const unsigned char *)personal);
}

static void key_id(const backup_key *key, uint8_t id[BACKUP_KEY_ID_BYTES])
{
	uint8_t h[32];
	derive(key, PERSONAL_KEY_ID, NULL, 0, h, sizeof(h));
	memcpy(id, h, BACKUP_KEY_ID_BYTES);
}

static uint64_t id_u64(const uint8_t id[BACKUP_KEY_ID_BYTES])
{
	uint64_t v = 0;
	for (int i = 0; i < BACKUP_KEY_ID_BYTES; i++)
		v = v << 8 | id[i];
	return v;
}

/* ---- the key ------------------------------------------------------------ */

void backup_key_wipe(backup_key *key)
{
	sodium_memzero(key, sizeof(*key));
}

void backup_key_generate_hex(char out[66])
{
	uint8_t k[BACKUP_KEY_BYTES];
	randombytes_buf(k, sizeof(k));
	sodium_bin2hex(out, 65, k, sizeof(k));
	sodium_memzero(k, sizeof(k));
	out[64] = '\n';
	out[65] = '\0';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The key in the text of a key file; messages name positions and lengths,
 * never the text. */
static int parse_key_text(const char *path, const char *s, size_t n, backup_key *key,
			  lx_err *err)
{
	static const char hint[] = "a key is 64 hex characters or 44 characters of base64 "
				   "(32 bytes); `ltxfs backup keygen` makes one";
	uint8_t acc = 0;
	while (n > 0 && is_space(s[n - 1]))
		n--;
	if (n == 0)
		return lx_err_set(err, EINVAL, "encryption key file %s is empty: %s", path, hint);
	for (size_t i = 0; i < n; i++)
		if (is_space(s[i]) || s[i] == '\0')
			return lx_err_set(err, EINVAL, "encryption key file %s: %s at character "
					  "%zu; the file holds the key alone, then at most a "
					  "newline", path, s[i] ? "whitespace" : "a NUL byte",
					  i + 1);
	if (n == 64) {
		for (size_t i = 0; i < 32; i++) {
			int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return lx_err_set(err, EINVAL, "encryption key file %s: character "
						  "%zu is not a hex digit (a key of 64 characters "
						  "is hex)", path, 2 * i + (hi < 0 ? 1 : 2));
			key->k[i] = (uint8_t)(hi << 4 | lo);
		}
	} else if (n == 44) {
		if (lx_base64_decode(s, n, key->k, sizeof(key->k)) != BACKUP_KEY_BYTES)
			return lx_err_set(err, EINVAL, "encryption key file %s: not valid base64 "
					  "of 32 bytes (a key of 44 characters is standard base64 "
					  "with its '=' padding)", path);
	} else {
		return lx_err_set(err, EINVAL, "encryption key file %s holds %zu characters: %s%s",
				  path, n, hint, n == 43 ? " (base64 with its '=' padding)" : "");
	}
	for (size_t i = 0; i < sizeof(key->k); i++)
		acc |= key->k[i];
	if (acc == 0)
		return lx_err_set(err, EINVAL, "encryption key file %s holds a key of zeros, not a "
				  "random key: %s", path, hint);
	return 0;
}

/* Read all of fd, up to cap bytes (more is reported as cap + 1). */
static int read_upto(int fd, char *buf, size_t cap, size_t *n)
{
	*n = 0;
	while (*n <= cap) {
		ssize_t r = read(fd, buf + *n, cap + 1 - *n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

int backup_key_load(const char *path, backup_key *key, int *loose_perms, lx_err *err)
{
	char buf[BACKUP_KEY_FILE_MAX + 1];
	struct stat st;
	size_t n = 0;
	int fd, rc;

	memset(key, 0, sizeof(*key));
	if (loose_perms != NULL)
		*loose_perms = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return lx_err_sys(err, errno, "encryption key file %s", path);
	if (fstat(fd, &st) < 0) {
		rc = lx_err_sys(err, errno, "encryption key file %s", path);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return lx_err_set(err, EINVAL, "encryption key file %s is not a regular file",
				  path);
	}
	if (loose_perms != NULL)
		*loose_perms = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	rc = read_upto(fd, buf, BACKUP_KEY_FILE_MAX, &n);
	close(fd);
	if (rc < 0)
		rc = lx_err_sys(err, -rc, "encryption key file %s: read", path);
	else if (n > BACKUP_KEY_FILE_MAX)
		rc = lx_err_set(err, EINVAL, "encryption key file %s is larger than %d bytes: not "
				"a key file", path, BACKUP_KEY_FILE_MAX);
	else
		rc = parse_key_text(path, buf, n, key, err);
	sodium_memzero(buf, sizeof(buf));
	if (rc < 0)
		backup_key_wipe(key);
	return rc;
}

void backup_name_hash(const backup_key *key, const char *name, char out[33])
{
	uint8_t h[16];
	derive(key, PERSONAL_NAME, name, strlen(name), h, sizeof(h));
	sodium_bin2hex(out, 33, h, sizeof(h));
}

/* ---- objects ------------------------------------------------------------ */

uint64_t backup_sealed_size(uint64_t len)
{
	uint64_t chunks = len == 0 ? 1 : (len - 1) / BACKUP_CHUNK_BYTES + 1;
	if (len > UINT64_MAX / 2)
		return UINT64_MAX;
	return BACKUP_HEADER_BYTES + chunks * BACKUP_CHUNK_OVERHEAD + len;
}

/* The first chunk's additional data: the preamble, then the name. */
static uint8_t *first_ad(const uint8_t preamble[BACKUP_PREAMBLE_BYTES], const char *name,
			 size_t *len)
{
	size_t name_len = strlen(name);
	uint8_t *ad = malloc(BACKUP_PREAMBLE_BYTES + name_len);
	if (ad == NULL)
		return NULL;
	memcpy(ad, preamble, BACKUP_PREAMBLE_BYTES);
	memcpy(ad + BACKUP_PREAMBLE_BYTES, name, name_len);
	*len = BACKUP_PREAMBLE_BYTES + name_len;
	return ad;
}

int backup_seal(const backup_key *key, const char *name, const uint8_t *plain, size_t len,
		uint8_t **out, size_t *out_len, lx_err *err)
{
	static const uint8_t empty;
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t stream_key[BACKUP_KEY_BYTES];
	size_t size, ad_len = 0, pos = 0, o = BACKUP_HEADER_BYTES;
	uint8_t *obj, *ad;

	*out = NULL;
	*out_len = 0;
	if (len > SIZE_MAX / 2)
		return lx_err_set(err, EOVERFLOW, "%zu bytes is too large to seal", len);
	size = (size_t)backup_sealed_size(len);
	obj = malloc(size);
	if (obj == NULL)
		return lx_err_set(err, ENOMEM, "no memory to seal %zu bytes", len);
	memcpy(obj, BACKUP_MAGIC, 4);
	obj[4] = BACKUP_FORMAT_VERSION;
	key_id(key, obj + 5);
	ad = first_ad(obj, name, &ad_len);
	if (ad == NULL) {
		free(obj);
		return lx_err_set(err, ENOMEM, "no memory to seal %zu bytes", len);
	}
	derive(key, PERSONAL_STREAM, NULL, 0, stream_key, sizeof(stream_key));
	crypto_secretstream_xchacha20poly1305_init_push(&st, obj + BACKUP_PREAMBLE_BYTES,
							stream_key);
	do {
		size_t n = len - pos < BACKUP_CHUNK_BYTES ? len - pos : BACKUP_CHUNK_BYTES;
		unsigned char tag = pos + n == len ? TAG_FINAL : TAG_MESSAGE;
		unsigned long long clen = 0;
		crypto_secretstream_xchacha20poly1305_push(&st, obj + o, &clen,
							   plain ? plain + pos : &empty, n,
							   pos == 0 ? ad : NULL,
							   pos == 0 ? ad_len : 0, tag);
		o += (size_t)clen;
		pos += n;
	} while (pos < len);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(stream_key, sizeof(stream_key));
	free(ad);
	*out = obj;
	*out_len = o;
	return 0;
}

/* The preamble of an object: is it one, of this version, with this key? */
static int check_preamble(const backup_key *key, const uint8_t *obj, size_t len, lx_err *err)
{
	uint8_t id[BACKUP_KEY_ID_BYTES];
	size_t m = len < 4 ? len : 4;
	if (len == 0)
		return lx_err_set(err, EBADMSG, "damaged or tampered: empty (truncated?)");
	if (memcmp(obj, BACKUP_MAGIC, m) != 0)
		return lx_err_set(err, EPROTO, "not encrypted (a backup without "
				  "encryption.key-file?)");
	if (len < 5)
		return lx_err_set(err, EBADMSG, "damaged or tampered: %zu bytes, shorter than an "
				  "encrypted object's header (truncated?)", len);
	if (obj[4] != BACKUP_FORMAT_VERSION)
		return lx_err_set(err, EPROTO, "encrypted in format version %u; this build reads "
				  "version %d", obj[4], BACKUP_FORMAT_VERSION);
	if (len < BACKUP_PREAMBLE_BYTES)
		return lx_err_set(err, EBADMSG, "damaged or tampered: %zu bytes, shorter than an "
				  "encrypted object's header (truncated?)", len);
	key_id(key, id);
	if (sodium_memcmp(id, obj + 5, sizeof(id)) != 0)
		return lx_err_set(err, BACKUP_EWRONGKEY, "encrypted with another key (the object's "
				  "key id is %016llx, this key's %016llx)",
				  (unsigned long long)id_u64(obj + 5),
				  (unsigned long long)id_u64(id));
	if (len < BACKUP_HEADER_BYTES + BACKUP_CHUNK_OVERHEAD)
		return lx_err_set(err, EBADMSG, "damaged or tampered: %zu bytes, shorter than the "
				  "smallest encrypted object (truncated?)", len);
	return 0;
}

/* Pull every chunk of obj into plain; 0 or -EBADMSG with what failed. */
static int pull_chunks(crypto_secretstream_xchacha20poly1305_state *st, const uint8_t *obj,
		       size_t len, const uint8_t *ad, size_t ad_len, uint8_t *plain,
		       size_t *plain_len, lx_err *err)
{
	size_t pos = BACKUP_HEADER_BYTES, o = 0;
	for (size_t i = 0;; i++) {
		size_t n = len - pos < FULL_CHUNK ? len - pos : FULL_CHUNK;
		unsigned long long mlen = 0;
		unsigned char tag = 0;
		if (n < BACKUP_CHUNK_OVERHEAD)
			return lx_err_set(err, EBADMSG, "damaged or tampered: truncated (%zu "
					  "bytes end without the final chunk)", len);
		if (crypto_secretstream_xchacha20poly1305_pull(st, plain + o, &mlen, &tag,
							       obj + pos, n, i == 0 ? ad : NULL,
							       i == 0 ? ad_len : 0) != 0)
			return lx_err_set(err, EBADMSG, "damaged or tampered: chunk %zu (at byte "
					  "%zu) fails authentication%s", i, pos,
					  i == 0 ? " (or the object was stored under another "
					  "name)" : "");
		pos += n;
		o += (size_t)mlen;
		if (tag == TAG_FINAL) {
			if (pos != len)
				return lx_err_set(err, EBADMSG, "damaged or tampered: %zu bytes "
						  "after the final chunk", len - pos);
			*plain_len = o;
			return 0;
		}
		/* Never written: a short or otherwise tagged chunk before the end. */
		if (tag != TAG_MESSAGE || n != FULL_CHUNK)
			return lx_err_set(err, EBADMSG, "damaged or tampered: chunk %zu is not "
					  "as sealed (tag %u, %zu bytes)", i, tag, n);
	}
}

int backup_open(const backup_key *key, const char *name, const uint8_t *obj, size_t len,
		uint8_t **out, size_t *out_len, lx_err *err)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t stream_key[BACKUP_KEY_BYTES];
	size_t ad_len = 0, cap, plain_len = 0;
	uint8_t *plain, *ad;
	int rc;

	*out = NULL;
	*out_len = 0;
	rc = check_preamble(key, obj, len, err);
	if (rc < 0)
		return rc;
	/* The plaintext is shorter than the chunks: at least one chunk's
	 * overhead shorter (the preamble checked len). */
	cap = len - BACKUP_HEADER_BYTES - BACKUP_CHUNK_OVERHEAD;
	plain = malloc(cap > 0 ? cap : 1);
	ad = first_ad(obj, name, &ad_len);
	if (plain == NULL || ad == NULL) {
		free(plain);
		free(ad);
		return lx_err_set(err, ENOMEM, "no memory to open %zu bytes", len);
	}
	derive(key, PERSONAL_STREAM, NULL, 0, stream_key, sizeof(stream_key));
	if (crypto_secretstream_xchacha20poly1305_init_pull(&st, obj + BACKUP_PREAMBLE_BYTES,
							    stream_key) != 0)
		rc = lx_err_set(err, EBADMSG, "damaged or tampered: the stream header is invalid");
	else
		rc = pull_chunks(&st, obj, len, ad, ad_len, plain, &plain_len, err);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(stream_key, sizeof(stream_key));
	free(ad);
	if (rc < 0) {
		/* Chunks before the failure did authenticate, but the object
		 * as a whole did not: none of it is handed out. */
		sodium_memzero(plain, cap);
		free(plain);
		return rc;
	}
	*out = plain;
	*out_len = plain_len;
	return 0;
}
