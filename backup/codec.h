/*
 * codec.h - how a backup's objects look in the storage: plain, or with
 * backup.encryption.key-file encrypted and authenticated (backup/crypt.h).
 *
 * With a key, the storage provider sees ciphertext, sizes and names that
 * hold no database name and no checksum: a database's directory is a
 * keyed hash of its name (its real name sealed in the object "name"), and
 * the checksums in object names are keyed hashes of the real ones, which
 * keep the equality a restore plan needs (backup/catalog.h).  TXIDs and
 * commit times stay readable.  Every object is sealed with its full key as
 * additional data, so one object cannot be passed off as another.
 *
 * A codec is immutable after bk_codec_init: any thread may use it.
 */
#ifndef LTXFS_BACKUP_CODEC_H
#define LTXFS_BACKUP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "backup/crypt.h"
#include "base/err.h"

#define BK_DIR_MAX 300   /* a database's directory name in the storage */

typedef struct bk_codec {
	int encrypted;
	backup_key key;
} bk_codec;

/* Plain (key_file NULL), or with the key in key_file (-EINVAL, -ENOENT
 * with a message).  *loose_perms: the key file is readable by others. */
int bk_codec_init(bk_codec *c, const char *key_file, int *loose_perms, lx_err *err);
void bk_codec_wipe(bk_codec *c);

/* The directory of database `name` in the storage, with a trailing '/'. */
void bk_codec_dir(const bk_codec *c, const char *name, char out[BK_DIR_MAX]);

/* A checksum as object names show it. */
uint64_t bk_codec_checksum(const bk_codec *c, uint64_t checksum);

/* The bytes to store under `key` for `plain`: *out is malloc'd. */
int bk_codec_seal(const bk_codec *c, const char *key, const uint8_t *plain, size_t len,
		  uint8_t **out, size_t *out_len, lx_err *err);
/* The plain bytes of an object read from `key`, in place: *obj (malloc'd)
 * is replaced by its plaintext (verified and decrypted; unchanged when
 * plain).  On failure *obj is freed and NULL. */
int bk_codec_open_owned(const bk_codec *c, const char *key, uint8_t **obj, size_t *len,
			lx_err *err);

/* The plain bytes of an object read from `key`: verified and decrypted. */
int bk_codec_open(const bk_codec *c, const char *key, const uint8_t *obj, size_t len,
		  uint8_t **out, size_t *out_len, lx_err *err);

#endif
