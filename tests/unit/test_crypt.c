/*
 * test_crypt.c - backup/crypt.h: objects round-trip at chunk boundaries and
 * match the documented format; every kind of damage (a flipped byte,
 * truncation, appended bytes, reordered or spliced chunks, another name,
 * another key) is refused with its own error and nothing of the plaintext;
 * key files are read in both encodings and refused clearly otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "backup/crypt.h"
#include "base/base64.h"
#include "tests/unit/unit.h"

#define FULL_CHUNK (BACKUP_CHUNK_BYTES + BACKUP_CHUNK_OVERHEAD)

static void init(void)
{
	CHECK_EQ_INT(0, backup_crypto_init());
	CHECK_EQ_INT(0, backup_crypto_init());   /* idempotent */
}

static void random_key(backup_key *k)
{
	randombytes_buf(k->k, sizeof(k->k));
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + (i >> 16) * 7 + 5);
	return p;
}

static void seal(const backup_key *k, const char *name, const uint8_t *p, size_t n,
		 uint8_t **obj, size_t *len)
{
	lx_err err;
	lx_err_clear(&err);
	CHECK_EQ_INT(0, backup_seal(k, name, p, n, obj, len, &err));
	CHECK(*obj != NULL);
	CHECK_EQ_U64(backup_sealed_size(n), *len);
}

/* backup_open of a damaged object: the error `want`, with no plaintext. */
static void check_refused(const backup_key *k, const char *name, const uint8_t *obj, size_t len,
			  int want, const char *msg_part)
{
	static uint8_t sentinel;
	uint8_t *out = &sentinel;
	size_t out_len = 7;
	lx_err err;
	lx_err_clear(&err);
	CHECK_EQ_INT(-want, backup_open(k, name, obj, len, &out, &out_len, &err));
	CHECK(out == NULL);
	CHECK_EQ_U64(0, out_len);
	CHECK_EQ_INT(want, err.code);
	if (msg_part != NULL)
		CHECK_STR_CONTAINS(err.msg, msg_part);
	if (out != &sentinel)
		free(out);
}

/* ---- objects ------------------------------------------------------------ */

static void test_round_trip_at_chunk_boundaries(void)
{
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 200000 };
	backup_key k;
	init();
	random_key(&k);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = pattern(sizes[i]), *obj = NULL, *back = NULL;
		size_t len = 0, back_len = 99;
		lx_err err;
		seal(&k, "db/app.db/00000001", p, sizes[i], &obj, &len);
		CHECK(memcmp(obj, "LTXE", 4) == 0);
		CHECK_EQ_INT(1, obj[4]);
		CHECK_EQ_INT(0, backup_open(&k, "db/app.db/00000001", obj, len, &back, &back_len,
					    &err));
		CHECK(back != NULL);
		CHECK_EQ_U64(sizes[i], back_len);
		CHECK(back_len == sizes[i] && memcmp(back, p, sizes[i]) == 0);
		free(p);
		free(obj);
		free(back);
	}
}

static void test_an_empty_plaintext_is_one_final_chunk(void)
{
	backup_key k;
	uint8_t *obj = NULL, *back = NULL;
	size_t len = 0, back_len = 1;
	init();
	random_key(&k);
	seal(&k, "x", NULL, 0, &obj, &len);
	CHECK_EQ_U64(BACKUP_HEADER_BYTES + BACKUP_CHUNK_OVERHEAD, len);
	CHECK_EQ_INT(0, backup_open(&k, "x", obj, len, &back, &back_len, NULL));
	CHECK(back != NULL);
	CHECK_EQ_U64(0, back_len);
	free(obj);
	free(back);
}

static void test_sealed_size(void)
{
	CHECK_EQ_U64(37 + 17, backup_sealed_size(0));
	CHECK_EQ_U64(37 + 17 + 1, backup_sealed_size(1));
	CHECK_EQ_U64(37 + 17 + 65536, backup_sealed_size(65536));
	CHECK_EQ_U64(37 + 2 * 17 + 65537, backup_sealed_size(65537));
	CHECK_EQ_U64(37 + 4 * 17 + 200000, backup_sealed_size(200000));
	CHECK_EQ_U64(UINT64_MAX, backup_sealed_size(UINT64_MAX));
}

/* Read an object with libsodium alone, as docs/design.md describes it: the
 * format is what is written there, not whatever this build happens to do. */
static void test_the_format_is_as_documented(void)
{
	const char *name = "db/9f/00000000000000a1-00000000000000a1.ltx";
	unsigned char id[32], sk[32], ad[256];
	crypto_secretstream_xchacha20poly1305_state st;
	size_t n = 2 * 65536 + 10, len = 0, pos = 37, o = 0, ad_len;
	uint8_t *p = pattern(n), *obj = NULL, *back = malloc(n);
	unsigned char tags[3];
	backup_key k;
	init();
	random_key(&k);
	seal(&k, name, p, n, &obj, &len);
	crypto_generichash_blake2b_salt_personal(id, 32, (const unsigned char *)"", 0, k.k, 32,
						 NULL, (const unsigned char *)"ltxfs-bk-keyid-1");
	CHECK(memcmp(obj, "LTXE\x01", 5) == 0);
	CHECK(memcmp(obj + 5, id, 8) == 0);
	crypto_generichash_blake2b_salt_personal(sk, 32, (const unsigned char *)"", 0, k.k, 32,
						 NULL, (const unsigned char *)"ltxfs-bk-stream1");
	CHECK_EQ_INT(0, crypto_secretstream_xchacha20poly1305_init_pull(&st, obj + 13, sk));
	memcpy(ad, obj, 13);
	memcpy(ad + 13, name, strlen(name));
	ad_len = 13 + strlen(name);
	for (int i = 0; i < 3; i++) {
		unsigned long long mlen = 0;
		size_t c = i < 2 ? FULL_CHUNK : 10 + 17;
		CHECK_EQ_INT(0, crypto_secretstream_xchacha20poly1305_pull(
				   &st, back + o, &mlen, &tags[i], obj + pos, c,
				   i == 0 ? ad : NULL, i == 0 ? ad_len : 0));
		CHECK_EQ_U64(c - 17, mlen);
		pos += c;
		o += (size_t)mlen;
	}
	CHECK_EQ_U64(len, pos);
	CHECK_EQ_INT(crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, tags[0]);
	CHECK_EQ_INT(crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, tags[1]);
	CHECK_EQ_INT(crypto_secretstream_xchacha20poly1305_TAG_FINAL, tags[2]);
	CHECK(o == n && memcmp(back, p, n) == 0);
	free(p);
	free(obj);
	free(back);
}

/* An object the key's holder could make but this format never does: a
 * chunk tagged PUSH.  Refused, so that such objects mean a new version. */
static void test_a_chunk_tag_never_written_is_refused(void)
{
	size_t n = BACKUP_CHUNK_BYTES + 5, len = backup_sealed_size(n);
	uint8_t *p = pattern(n), *obj = NULL, *ad = malloc(13 + 1);
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char sk[32];
	backup_key k;
	init();
	random_key(&k);
	/* the preamble and key id of a real seal */
	seal(&k, "p", p, 0, &obj, &(size_t){ 0 });
	obj = realloc(obj, len);
	crypto_generichash_blake2b_salt_personal(sk, 32, (const unsigned char *)"", 0, k.k, 32,
						 NULL, (const unsigned char *)"ltxfs-bk-stream1");
	crypto_secretstream_xchacha20poly1305_init_push(&st, obj + 13, sk);
	memcpy(ad, obj, 13);
	ad[13] = 'p';
	crypto_secretstream_xchacha20poly1305_push(&st, obj + 37, NULL, p, BACKUP_CHUNK_BYTES, ad,
						   14, crypto_secretstream_xchacha20poly1305_TAG_PUSH);
	crypto_secretstream_xchacha20poly1305_push(&st, obj + 37 + FULL_CHUNK, NULL,
						   p + BACKUP_CHUNK_BYTES, 5, NULL, 0,
						   crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	check_refused(&k, "p", obj, len, EBADMSG, "chunk 0 is not as sealed");
	free(p);
	free(obj);
	free(ad);
}

static void test_another_key_is_told_apart(void)
{
	backup_key k, other;
	uint8_t *p = pattern(1000), *obj = NULL;
	size_t len = 0;
	init();
	random_key(&k);
	random_key(&other);
	seal(&k, "a", p, 1000, &obj, &len);
	check_refused(&other, "a", obj, len, BACKUP_EWRONGKEY, "encrypted with another key");
	free(p);
	free(obj);
}

/* What flipping the byte at `pos` of an object must give. */
static int error_of_flip(size_t pos)
{
	if (pos <= 4)
		return EPROTO;          /* no magic, or a version not read */
	if (pos < BACKUP_PREAMBLE_BYTES)
		return BACKUP_EWRONGKEY;
	return EBADMSG;
}

static void flip_and_check(const backup_key *k, uint8_t *obj, size_t len, size_t pos)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	for (size_t m = 0; m < sizeof(masks); m++) {
		obj[pos] ^= masks[m];
		check_refused(k, "n", obj, len, error_of_flip(pos),
			      error_of_flip(pos) == EBADMSG ? "damaged or tampered" : NULL);
		obj[pos] ^= masks[m];
	}
}

static void test_every_flipped_byte_is_refused(void)
{
	size_t big = 200000, pos_big[] = { 0, 3, 4, 5, 12, 13, 20, 36, 37, 38, 53, 54,
		37 + FULL_CHUNK - 1, 37 + FULL_CHUNK, 37 + FULL_CHUNK + 17,
		37 + 2 * FULL_CHUNK + 500, 37 + 3 * FULL_CHUNK, 0, 0, 0 };
	uint8_t *p = pattern(big), *obj = NULL, *back = NULL;
	size_t len = 0, back_len = 0;
	backup_key k;
	init();
	random_key(&k);
	/* A small object: every byte. */
	seal(&k, "n", p, 100, &obj, &len);
	for (size_t pos = 0; pos < len; pos++)
		flip_and_check(&k, obj, len, pos);
	CHECK_EQ_INT(0, backup_open(&k, "n", obj, len, &back, &back_len, NULL));
	free(back);
	free(obj);
	/* A large one: the header, each chunk's start, middle and end. */
	seal(&k, "n", p, big, &obj, &len);
	pos_big[17] = len / 2;
	pos_big[18] = len - 17;
	pos_big[19] = len - 1;
	for (size_t i = 0; i < sizeof(pos_big) / sizeof(pos_big[0]); i++)
		flip_and_check(&k, obj, len, pos_big[i]);
	back = NULL;
	CHECK_EQ_INT(0, backup_open(&k, "n", obj, len, &back, &back_len, NULL));
	CHECK(back_len == big && memcmp(back, p, big) == 0);
	free(back);
	free(obj);
	free(p);
}

static void test_truncation_is_refused(void)
{
	static const size_t sizes[] = { 100, 65536, 200000 };
	backup_key k;
	init();
	random_key(&k);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint8_t *p = pattern(sizes[s]), *obj = NULL;
		size_t len = 0;
		seal(&k, "t", p, sizes[s], &obj, &len);
		for (size_t off = 0; off < len; off += 1000)
			check_refused(&k, "t", obj, off, EBADMSG, "damaged or tampered");
		for (size_t off = 1; off <= 18 && off < len; off++)
			check_refused(&k, "t", obj, len - off, EBADMSG, "damaged or tampered");
		/* At a chunk boundary every chunk there authenticates: only the
		 * missing FINAL tag tells. */
		for (size_t off = 37 + FULL_CHUNK; off < len; off += FULL_CHUNK)
			check_refused(&k, "t", obj, off, EBADMSG, "truncated");
		free(p);
		free(obj);
	}
}

static void test_appended_bytes_are_refused(void)
{
	static const size_t sizes[] = { 0, 100, 65536, 200000 };
	static const size_t extra[] = { 1, 17, 1000, FULL_CHUNK };
	backup_key k;
	init();
	random_key(&k);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint8_t *p = pattern(sizes[s]), *obj = NULL;
		size_t len = 0;
		seal(&k, "t", p, sizes[s], &obj, &len);
		for (size_t e = 0; e < sizeof(extra) / sizeof(extra[0]); e++) {
			uint8_t *longer = malloc(len + extra[e]);
			memcpy(longer, obj, len);
			/* the object's own last bytes again: as plausible as it gets */
			for (size_t i = 0; i < extra[e]; i++)
				longer[len + i] = obj[len - 1 - (i % len)];
			check_refused(&k, "t", longer, len + extra[e], EBADMSG,
				      "damaged or tampered");
			free(longer);
		}
		free(p);
		free(obj);
	}
}

static void test_the_name_is_bound(void)
{
	backup_key k;
	uint8_t *p = pattern(70000), *a = NULL, *b = NULL;
	size_t a_len = 0, b_len = 0;
	init();
	random_key(&k);
	seal(&k, "db/app.db/0000000000000001", p, 70000, &a, &a_len);
	seal(&k, "db/app.db/0000000000000002", p + 1, 69999, &b, &b_len);
	/* the bucket's holder swaps the two objects */
	check_refused(&k, "db/app.db/0000000000000001", b, b_len, EBADMSG, "another name");
	check_refused(&k, "db/app.db/0000000000000002", a, a_len, EBADMSG, "another name");
	check_refused(&k, "db/app.db/000000000000000", a, a_len, EBADMSG, NULL);
	check_refused(&k, "", a, a_len, EBADMSG, NULL);
	free(p);
	free(a);
	free(b);
}

static void test_chunks_cannot_be_moved(void)
{
	size_t n = 200000, len = 0, len2 = 0;
	uint8_t *p = pattern(n), *obj = NULL, *obj2 = NULL, *tmp = malloc(FULL_CHUNK);
	uint8_t *c1, *c2;
	backup_key k;
	init();
	random_key(&k);
	seal(&k, "m", p, n, &obj, &len);
	/* two full chunks swapped */
	c1 = obj + 37 + FULL_CHUNK;
	c2 = obj + 37 + 2 * FULL_CHUNK;
	memcpy(tmp, c1, FULL_CHUNK);
	memcpy(c1, c2, FULL_CHUNK);
	memcpy(c2, tmp, FULL_CHUNK);
	check_refused(&k, "m", obj, len, EBADMSG, "chunk 1");
	memcpy(c2, c1, FULL_CHUNK);
	memcpy(c1, tmp, FULL_CHUNK);
	/* a chunk from another seal of the same plaintext and name */
	seal(&k, "m", p, n, &obj2, &len2);
	memcpy(obj + 37 + FULL_CHUNK, obj2 + 37 + FULL_CHUNK, FULL_CHUNK);
	check_refused(&k, "m", obj, len, EBADMSG, "chunk 1");
	/* the whole stream of another seal under this one's header */
	memcpy(obj + 37, obj2 + 37, len - 37);
	check_refused(&k, "m", obj, len, EBADMSG, "chunk 0");
	free(p);
	free(obj);
	free(obj2);
	free(tmp);
}

static void test_two_seals_differ(void)
{
	backup_key k;
	uint8_t *p = pattern(5000), *a = NULL, *b = NULL, *back = NULL;
	size_t a_len = 0, b_len = 0, back_len = 0;
	init();
	random_key(&k);
	seal(&k, "s", p, 5000, &a, &a_len);
	seal(&k, "s", p, 5000, &b, &b_len);
	CHECK_EQ_U64(a_len, b_len);
	CHECK(memcmp(a, b, BACKUP_PREAMBLE_BYTES) == 0);          /* same key id */
	CHECK(memcmp(a + 13, b + 13, 24) != 0);                     /* another nonce */
	CHECK(memcmp(a + 37, b + 37, a_len - 37) != 0);
	CHECK_EQ_INT(0, backup_open(&k, "s", b, b_len, &back, &back_len, NULL));
	CHECK(back_len == 5000 && memcmp(back, p, 5000) == 0);
	free(p);
	free(a);
	free(b);
	free(back);
}

static void test_an_unencrypted_object_is_told_apart(void)
{
	static const char *const plain[] = { "LTXF", "SQLite format 3", "x", "LTX\x01" };
	uint8_t *p = pattern(10), *obj = NULL, ltx[100] = { 0 };
	size_t len = 0;
	backup_key k;
	init();
	random_key(&k);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		check_refused(&k, "u", (const uint8_t *)plain[i], strlen(plain[i]), EPROTO,
			      "not encrypted (a backup without encryption.key-file?)");
	memcpy(ltx, "LTXF", 4);         /* an LTX file's header */
	check_refused(&k, "u", ltx, sizeof(ltx), EPROTO, "not encrypted");
	/* The magic's first bytes alone are a truncated object, not another kind. */
	check_refused(&k, "u", (const uint8_t *)"LTXE", 3, EBADMSG, "damaged or tampered");
	seal(&k, "u", p, 10, &obj, &len);
	obj[4] = 2;
	check_refused(&k, "u", obj, len, EPROTO, "format version 2");
	free(p);
	free(obj);
}

/* ---- names -------------------------------------------------------------- */

static void test_name_hash(void)
{
	backup_key k, other;
	char h1[33], h2[33], h3[33], h4[33];
	init();
	random_key(&k);
	random_key(&other);
	backup_name_hash(&k, "app.db", h1);
	backup_name_hash(&k, "app.db", h2);
	backup_name_hash(&other, "app.db", h3);
	backup_name_hash(&k, "app2.db", h4);
	CHECK_EQ_U64(32, strlen(h1));
	CHECK(strspn(h1, "0123456789abcdef") == 32);
	CHECK(strcmp(h1, h2) == 0);
	CHECK(strcmp(h1, h3) != 0);
	CHECK(strcmp(h1, h4) != 0);
	/* not a plain hash of the name: nothing to look up in a table */
	backup_name_hash(&k, "", h2);
	CHECK(strcmp(h1, h2) != 0 && strlen(h2) == 32);
}

/* ---- keys --------------------------------------------------------------- */

struct dir {
	char path[64];
	char file[128];
};

static void dir_open(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/ltxfs-test-crypt-XXXXXX");
	CHECK(mkdtemp(d->path) != NULL);
	snprintf(d->file, sizeof(d->file), "%s/backup.key", d->path);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd;
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, n) == (ssize_t)n);
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

#define KEY_HEX "3f9a0c17e2b45d6881aa90cf13e7b2d45a6c708192e3f4a5b6c7d8e9fa0b1c2d"

static void key_of_hex(backup_key *k)
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		sscanf(KEY_HEX + 2 * i, "%2x", &v);
		k->k[i] = (uint8_t)v;
	}
}

static void load_ok(struct dir *d, const char *text, size_t n)
{
	backup_key want, got;
	int loose = -1;
	lx_err err;
	key_of_hex(&want);
	write_file(d->file, text, n, 0600);
	lx_err_clear(&err);
	CHECK_EQ_INT(0, backup_key_load(d->file, &got, &loose, &err));
	if (err.code != 0)
		fprintf(stderr, "  %s\n", err.msg);
	CHECK(memcmp(want.k, got.k, 32) == 0);
	CHECK_EQ_INT(0, loose);
}

static void test_key_files_in_hex_and_base64(void)
{
	char upper[70], b64[LX_BASE64_ENCODED_SIZE(32) + 2];
	backup_key want;
	struct dir d;
	init();
	dir_open(&d);
	key_of_hex(&want);
	load_ok(&d, KEY_HEX, 64);
	load_ok(&d, KEY_HEX "\n", 65);
	load_ok(&d, KEY_HEX "\r\n", 66);
	load_ok(&d, KEY_HEX " \t\n\n", 68);
	for (int i = 0; i < 64; i++)
		upper[i] = (char)(KEY_HEX[i] >= 'a' ? KEY_HEX[i] - 32 : KEY_HEX[i]);
	upper[64] = '\n';
	load_ok(&d, upper, 65);
	lx_base64_encode(want.k, 32, b64);
	CHECK_EQ_U64(44, strlen(b64));
	load_ok(&d, b64, 44);
	strcat(b64, "\n");
	load_ok(&d, b64, 45);
	unit_remove_tree(d.path);
}

static void test_a_generated_key_loads(void)
{
	char a[66], b[66];
	backup_key k;
	struct dir d;
	init();
	dir_open(&d);
	backup_key_generate_hex(a);
	backup_key_generate_hex(b);
	CHECK_EQ_U64(65, strlen(a));
	CHECK(strspn(a, "0123456789abcdef") == 64 && a[64] == '\n');
	CHECK(strcmp(a, b) != 0);
	write_file(d.file, a, 65, 0600);
	CHECK_EQ_INT(0, backup_key_load(d.file, &k, NULL, NULL));
	for (int i = 0; i < 32; i++) {
		char two[3];
		snprintf(two, sizeof(two), "%02x", k.k[i]);
		CHECK(memcmp(two, a + 2 * i, 2) == 0);
	}
	backup_key_wipe(&k);
	for (int i = 0; i < 32; i++)
		CHECK_EQ_INT(0, k.k[i]);
	unit_remove_tree(d.path);
}

static void test_bad_key_files_are_refused_clearly(void)
{
	static const char zeros[] =
		"0000000000000000000000000000000000000000000000000000000000000000";
	char big[BACKUP_KEY_FILE_MAX + 10];
	struct {
		const char *text;
		size_t len;
		const char *says;
	} bad[] = {
		{ "", 0, "is empty" },
		{ "\n\n", 2, "is empty" },
		{ KEY_HEX, 63, "holds 63 characters" },
		{ KEY_HEX "a", 65, "holds 65 characters" },
		{ "3f9a0c17e2g45d6881aa90cf13e7b2d45a6c708192e3f4a5b6c7d8e9fa0b1c2d", 64,
		  "character 11 is not a hex digit" },
		{ "3f9a0c17e2b45d6881aa90cf13e7b2d45a6c708192e3f4a5b6c7d8e9fa0b1c2Z", 64,
		  "character 64 is not a hex digit" },
		{ "P5oMF+K0XWiBqpDPE+ey1FpscIGS4/SltsfY6foLHC!=", 44, "not valid base64" },
		{ "P5oMF-K0XWiBqpDPE-ey1FpscIGS4_SltsfY6foLHC0=", 44, "not valid base64" },
		{ "P5oMF+K0XWiBqpDPE+ey1FpscIGS4/SltsfY6foLHC0", 43, "'=' padding" },
		{ " " KEY_HEX, 65, "whitespace at character 1" },
		{ KEY_HEX "\n" KEY_HEX "\n", 130, "whitespace at character 65" },
		{ "3f9a0c17e2b45d68\0" "1aa90cf13e7b2d45a6c708192e3f4a5b6c7d8e9fa0b1c2d", 64,
		  "NUL byte at character 17" },
		{ zeros, 64, "zeros" },
		{ "password123\n", 12, "holds 11 characters" },
		{ big, sizeof(big), "larger than 4096 bytes" },
	};
	struct dir d;
	init();
	dir_open(&d);
	memset(big, 'a', sizeof(big));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		backup_key k;
		int loose = -1;
		lx_err err;
		memset(&k, 0x55, sizeof(k));
		write_file(d.file, bad[i].text, bad[i].len, 0600);
		lx_err_clear(&err);
		CHECK_EQ_INT(-EINVAL, backup_key_load(d.file, &k, &loose, &err));
		CHECK_STR_CONTAINS(err.msg, d.file);
		CHECK_STR_CONTAINS(err.msg, bad[i].says);
		/* never the key's text */
		if (bad[i].len >= 16) {
			char start[13];
			memcpy(start, bad[i].text + (bad[i].text[0] == ' '), 12);
			start[12] = '\0';
			CHECK(strstr(err.msg, start) == NULL);
		}
		for (int j = 0; j < 32; j++)
			CHECK_EQ_INT(0, k.k[j]);
	}
	unit_remove_tree(d.path);
}

static void test_key_file_errors_and_permissions(void)
{
	backup_key k;
	int loose = -1;
	struct dir d;
	lx_err err;
	init();
	dir_open(&d);
	lx_err_clear(&err);
	CHECK_EQ_INT(-ENOENT, backup_key_load(d.file, &k, &loose, &err));
	CHECK_STR_CONTAINS(err.msg, d.file);
	CHECK_EQ_INT(-EINVAL, backup_key_load(d.path, &k, &loose, &err));
	CHECK_STR_CONTAINS(err.msg, "not a regular file");
	write_file(d.file, KEY_HEX "\n", 65, 0400);
	CHECK_EQ_INT(0, backup_key_load(d.file, &k, &loose, NULL));
	CHECK_EQ_INT(0, loose);
	write_file(d.file, KEY_HEX "\n", 65, 0640);
	CHECK_EQ_INT(0, backup_key_load(d.file, &k, &loose, NULL));
	CHECK_EQ_INT(1, loose);
	write_file(d.file, KEY_HEX "\n", 65, 0604);
	CHECK_EQ_INT(0, backup_key_load(d.file, &k, &loose, NULL));
	CHECK_EQ_INT(1, loose);
	unit_remove_tree(d.path);
}

UNIT_TESTS(TEST(test_round_trip_at_chunk_boundaries),
	   TEST(test_an_empty_plaintext_is_one_final_chunk),
	   TEST(test_sealed_size),
	   TEST(test_the_format_is_as_documented),
	   TEST(test_a_chunk_tag_never_written_is_refused),
	   TEST(test_another_key_is_told_apart),
	   TEST(test_every_flipped_byte_is_refused),
	   TEST(test_truncation_is_refused),
	   TEST(test_appended_bytes_are_refused),
	   TEST(test_the_name_is_bound),
	   TEST(test_chunks_cannot_be_moved),
	   TEST(test_two_seals_differ),
	   TEST(test_an_unencrypted_object_is_told_apart),
	   TEST(test_name_hash),
	   TEST(test_key_files_in_hex_and_base64),
	   TEST(test_a_generated_key_loads),
	   TEST(test_bad_key_files_are_refused_clearly),
	   TEST(test_key_file_errors_and_permissions))
