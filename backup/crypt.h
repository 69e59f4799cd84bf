/*
 * crypt.h - client-side encryption of backup objects (libsodium).
 *
 * Everything a backup stores is sealed here before it leaves the machine,
 * so the storage provider holds neither a database's pages nor its name.
 *
 * The contract:
 *
 *  - The key.  32 random bytes, read from a key file (encryption.key-file)
 *    holding 64 hex characters or 44 characters of standard padded base64,
 *    then at most whitespace (a newline).  Anything else is refused with a
 *    message saying what is wrong, never with the file's bytes.  The module
 *    does not log: a key file that group or others may read is reported to
 *    the caller (`*loose_perms`), which warns.  backup_key_wipe() clears a
 *    key that is no longer needed.
 *
 *  - Sealing.  backup_seal() turns a plaintext into an object's bytes and
 *    backup_open() turns them back, authenticating every byte: the result
 *    is the plaintext that was sealed under this key and this name, or an
 *    error, never a partial or altered plaintext.  The object's name (its
 *    key in the bucket) is authenticated too, so two objects' contents
 *    swapped by whoever holds the bucket are refused.  Two seals of the
 *    same plaintext differ (a random nonce each time).
 *
 *  - Object format, version 1 (docs/design.md, "Backup encryption"):
 *
 *      "LTXE"                     4 bytes, magic
 *      version                    1 byte, 1
 *      key id                     8 bytes, tells a wrong key from damage
 *      secretstream header        24 bytes (crypto_secretstream_xchacha20poly1305,
 *                                 under the stream key below)
 *      chunks                     each 17 bytes of overhead + plaintext
 *
 *    The plaintext is cut in chunks of BACKUP_CHUNK_BYTES (64 KiB); every
 *    chunk but the last is full, and the last (1..64 KiB, or empty for an
 *    empty plaintext) is tagged FINAL, so the chunk boundaries follow from
 *    the object's length alone.  The additional data of the first chunk is
 *    the 13 bytes before the secretstream header followed by the name's
 *    bytes (no NUL).  Three values come from the key K by keyed BLAKE2b
 *    (key K, no salt, a 16-byte personalisation each, empty message unless
 *    said):
 *      key id       first 8 bytes of BLAKE2b-256, personal "ltxfs-bk-keyid-1";
 *      stream key   BLAKE2b-256, personal "ltxfs-bk-stream1" (the key of the
 *                   secretstream: K itself is only ever a BLAKE2b key);
 *      name hash    BLAKE2b-128 of the name, personal "ltxfs-bk-dbname1",
 *                   as 32 lowercase hex characters.
 *
 *  - Errors from backup_open() say which of three things happened:
 *      -EPROTO           not one of these objects at all (no magic): a
 *                        backup written without encryption, or another file;
 *                        also a format version this build does not read;
 *      -BACKUP_EWRONGKEY "encrypted with another key" (-EKEYREJECTED, or
 *                        -EACCES without it): the key ids differ.  The id
 *                        is compared before anything is authenticated, so
 *                        a damaged key id reads as another key;
 *      -EBADMSG          "damaged or tampered": any authentication failure,
 *                        a truncated object (no FINAL chunk), bytes after
 *                        the FINAL chunk, or a name other than the one
 *                        sealed (which cannot be told apart from damage to
 *                        the first chunk).
 *    Other errors: -ENOMEM, -EOVERFLOW (a plaintext over SIZE_MAX / 2).
 *
 *  - libsodium must be initialised once by the program, at start, before
 *    threads: backup_crypto_init().  (sodium_init() is idempotent, so a
 *    second call is harmless.)  After that every function here is
 *    reentrant: no global mutable state, no I/O except backup_key_load().
 *
 * Every object lives in memory whole, sealed or open: the callers keep
 * objects (LTX files) to a size they can hold.
 */
#ifndef LTXFS_BACKUP_CRYPT_H
#define LTXFS_BACKUP_CRYPT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BACKUP_KEY_BYTES 32
#define BACKUP_MAGIC "LTXE"            /* 4 bytes at offset 0 */
#define BACKUP_FORMAT_VERSION 1        /* 1 byte at offset 4 */
#define BACKUP_KEY_ID_BYTES 8          /* at offset 5 */
#define BACKUP_PREAMBLE_BYTES 13       /* magic, version, key id */
#define BACKUP_HEADER_BYTES 37         /* + the 24-byte secretstream header */
#define BACKUP_CHUNK_BYTES 65536       /* plaintext bytes of a full chunk */
#define BACKUP_CHUNK_OVERHEAD 17       /* secretstream's tag and MAC per chunk */
#define BACKUP_KEY_FILE_MAX 4096       /* a larger "key file" is not one */

/* The error of an object sealed with another key. */
#ifdef EKEYREJECTED
#define BACKUP_EWRONGKEY EKEYREJECTED
#else
#define BACKUP_EWRONGKEY EACCES
#endif

typedef struct backup_key {
	uint8_t k[BACKUP_KEY_BYTES];
} backup_key;

/* sodium_init(): once, at the program's start.  0, or -EIO if libsodium
 * cannot initialise (no usable random source). */
int backup_crypto_init(void);

/*
 * Read the key file at `path` into `key`.  Returns 0, -ENOENT (and the
 * other errors of open/read) with the path, or -EINVAL with what is wrong
 * (length, a character that is not hex at position N, invalid base64, all
 * zeros, not a regular file, too large).  `*loose_perms` (may be NULL) is
 * set to 1 when group or others may read the file, else 0.  On failure the
 * key is zeroed.
 */
int backup_key_load(const char *path, backup_key *key, int *loose_perms, lx_err *err);

/* A new random key for a key file: 64 lowercase hex characters, '\n', NUL. */
void backup_key_generate_hex(char out[66]);

/* Clear a key from memory (sodium_memzero, which the compiler keeps). */
void backup_key_wipe(backup_key *key);

/*
 * Seal `len` bytes of `plain` (may be NULL when len is 0) as the object
 * named `name` (a string: the object's key in the bucket).  On success
 * *out is a malloc'ed buffer of *out_len == backup_sealed_size(len)
 * bytes, the caller's to free; on failure *out is NULL.
 */
int backup_seal(const backup_key *key, const char *name, const uint8_t *plain, size_t len,
		uint8_t **out, size_t *out_len, lx_err *err);

/*
 * Verify and decrypt the object `obj` of `len` bytes stored as `name`.  On
 * success *out is a malloc'ed buffer (never NULL, even for an empty
 * plaintext) of *out_len bytes, the caller's to free; on failure *out is
 * NULL and nothing of the plaintext is returned.  Errors above.
 */
int backup_open(const backup_key *key, const char *name, const uint8_t *obj, size_t len,
		uint8_t **out, size_t *out_len, lx_err *err);

/* The size of the object sealing `len` bytes (sizes in listings); for len
 * over UINT64_MAX / 2, UINT64_MAX. */
uint64_t backup_sealed_size(uint64_t len);

/*
 * The name under which the storage provider sees the database `name`:
 * 32 lowercase hex characters and a NUL, the same for the same key and
 * name, unrelated between keys.
 */
void backup_name_hash(const backup_key *key, const char *name, char out[33]);

#endif
