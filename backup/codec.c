/*
 * codec.c - plain or encrypted objects and names (codec.h).
 */
#include "backup/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bk_codec_init(bk_codec *c, const char *key_file, int *loose_perms, lx_err *err)
{
	memset(c, 0, sizeof(*c));
	*loose_perms = 0;
	if (key_file == NULL)
		return 0;
	int rc = backup_key_load(key_file, &c->key, loose_perms, err);
	if (rc < 0) {
		lx_err_wrap(err, "backup.encryption.key-file");
		return rc;
	}
	c->encrypted = 1;
	return 0;
}

void bk_codec_wipe(bk_codec *c)
{
	backup_key_wipe(&c->key);
	c->encrypted = 0;
}

void bk_codec_dir(const bk_codec *c, const char *name, char out[BK_DIR_MAX])
{
	if (c->encrypted) {
		char h[33];
		backup_name_hash(&c->key, name, h);
		snprintf(out, BK_DIR_MAX, "%s/", h);
	} else {
		snprintf(out, BK_DIR_MAX, "%s/", name);
	}
}

uint64_t bk_codec_checksum(const bk_codec *c, uint64_t checksum)
{
	char text[17], h[33];
	uint64_t v = 0;
	if (!c->encrypted || checksum == 0)   /* 0: before TXID 1 */
		return checksum;
	snprintf(text, sizeof(text), "%016" PRIx64, checksum);
	backup_name_hash(&c->key, text, h);
	for (int i = 0; i < 16; i++)
		v = v << 4 | (uint64_t)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
	return v;
}

static int copy_out(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len,
		    lx_err *err)
{
	*out = malloc(len ? len : 1);
	if (*out == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	memcpy(*out, buf, len);
	*out_len = len;
	return 0;
}

int bk_codec_seal(const bk_codec *c, const char *key, const uint8_t *plain, size_t len,
		  uint8_t **out, size_t *out_len, lx_err *err)
{
	if (!c->encrypted)
		return copy_out(plain, len, out, out_len, err);
	return backup_seal(&c->key, key, plain, len, out, out_len, err);
}

int bk_codec_open(const bk_codec *c, const char *key, const uint8_t *obj, size_t len,
		  uint8_t **out, size_t *out_len, lx_err *err)
{
	if (!c->encrypted) {
		if (len >= 4 && memcmp(obj, "LTXE", 4) == 0)
			return lx_err_set(err, EPROTO, "%s: encrypted, and no "
					  "backup.encryption.key-file is set", key);
		return copy_out(obj, len, out, out_len, err);
	}
	return backup_open(&c->key, key, obj, len, out, out_len, err);
}

int bk_codec_open_owned(const bk_codec *c, const char *key, uint8_t **obj, size_t *len,
			lx_err *err)
{
	uint8_t *plain;
	size_t plen;
	int rc;
	if (!c->encrypted && !(*len >= 4 && memcmp(*obj, "LTXE", 4) == 0))
		return 0;                       /* plain: the bytes are the object's */
	rc = bk_codec_open(c, key, *obj, *len, &plain, &plen, err);
	free(*obj);
	*obj = rc == 0 ? plain : NULL;
	*len = rc == 0 ? plen : 0;
	return rc;
}
