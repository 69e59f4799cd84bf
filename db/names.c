/*
 * names.c - valid names and what they stand for (see names.h).
 */
#include "db/names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const suffixes[] = {
	[DBN_DATABASE] = "", [DBN_JOURNAL] = "-journal", [DBN_WAL] = "-wal",
	[DBN_SHM] = "-shm", [DBN_POS] = "-pos",
};

const char *db_name_suffix(enum db_name_kind kind)
{
	return kind <= DBN_POS ? suffixes[kind] : "";
}

void db_name_escape(const char *name, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return;
	for (size_t i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			if (o + 5 > cap)
				break;
			snprintf(out + o, cap - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1f; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0f; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* The rules every file name in the mount follows: 1..NAME_MAX bytes,
 * UTF-8, no control character, no '/'. */
static int file_name_check(const char *name, size_t len, const char *what, lx_err *err)
{
	char shown[96];
	const unsigned char *s = (const unsigned char *)name;
	db_name_escape(name, len, shown, sizeof(shown));
	if (len == 0)
		return lx_err_set(err, EINVAL, "invalid %s: empty", what);
	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] == '\0')
			return lx_err_set(err, EINVAL, "invalid %s \"%s\": contains a NUL byte",
					  what, shown);
		if (s[i] < 0x20 || s[i] == 0x7f)
			return lx_err_set(err, EINVAL, "invalid %s \"%s\": contains a control "
					  "character (byte 0x%02x)", what, shown, s[i]);
		if (s[i] == '/')
			return lx_err_set(err, EINVAL, "invalid %s \"%s\": contains '/'", what,
					  shown);
		n = utf8_seq(s + i, len - i);
		if (n == 0)
			return lx_err_set(err, EINVAL, "invalid %s \"%s\": not valid UTF-8", what,
					  shown);
		i += n;
	}
	return 0;
}

static int ends_with(const char *name, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);
	return len >= sl && memcmp(name + len - sl, suffix, sl) == 0;
}

int db_name_check(const char *name, size_t len, lx_err *err)
{
	char shown[96];
	int rc = file_name_check(name, len, "database name", err);
	if (rc < 0)
		return rc;
	db_name_escape(name, len, shown, sizeof(shown));
	if (len > DB_NAME_MAX)
		return lx_err_set(err, ENAMETOOLONG, "database name of %zu bytes is too long "
				  "(at most %d, so that SQLite's NAME-journal and NAME-mj... "
				  "files fit in 255 bytes)", len, DB_NAME_MAX);
	if (name[0] == '.')
		return lx_err_set(err, EINVAL, "invalid database name \"%s\": starts with '.'",
				  shown);
	for (int k = DBN_JOURNAL; k <= DBN_POS; k++)
		if (ends_with(name, len, suffixes[k]))
			return lx_err_set(err, EINVAL, "invalid database name \"%s\": ends with "
					  "%s, which names one of a database's files", shown,
					  suffixes[k]);
	return 0;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* SQLite's super-journal of a multi-database commit: NAME-mj and 8 or 9
 * hex digits ("-mj%06X9%02X"; 3.6 and older wrote "-mj%08X"). */
static int is_super_journal(const char *name, size_t len)
{
	for (size_t digits = 8; digits <= 9; digits++) {
		size_t at = len - digits - 3;
		int ok = len > digits + 3 && memcmp(name + at, "-mj", 3) == 0;
		for (size_t i = at + 3; ok && i < len; i++)
			ok = is_hex(name[i]);
		if (ok)
			return 1;
	}
	return 0;
}

int db_name_classify(const char *name, enum db_name_kind *kind, char *db, size_t dbcap,
		     lx_err *err)
{
	size_t len = strlen(name);
	int rc;
	if (len > DB_FILE_NAME_MAX)
		return lx_err_set(err, ENAMETOOLONG, "file name of %zu bytes is too long", len);
	rc = file_name_check(name, len, "file name", err);
	if (rc < 0)
		return rc;
	if (strncmp(name, "etilqs_", 7) == 0 || is_super_journal(name, len)) {
		*kind = DBN_PLAIN;
		return 0;
	}
	*kind = DBN_DATABASE;
	for (int k = DBN_JOURNAL; k <= DBN_POS; k++)
		if (ends_with(name, len, suffixes[k])) {
			*kind = (enum db_name_kind)k;
			len -= strlen(suffixes[k]);
			break;
		}
	rc = db_name_check(name, len, err);
	if (rc < 0)
		return rc;
	if (len + 1 > dbcap)
		return lx_err_set(err, ENAMETOOLONG, "database name of %zu bytes is too long", len);
	memcpy(db, name, len);
	db[len] = '\0';
	return 0;
}
