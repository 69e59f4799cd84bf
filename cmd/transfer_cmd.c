/*
 * transfer_cmd.c - `ltxfs import` and `ltxfs export` (see transfer_cmd.h).
 */
#include "cmd/transfer_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "base/bytes.h"
#include "cmd/cli.h"
#include "db/names.h"
#include "ltx/ltx.h"

static const char import_usage[] =
	"usage: ltxfs import [-url URL | -config FILE] -name DB FILE\n"
	"  make the SQLite database FILE the cluster's database DB (on the primary)\n";
static const char export_usage[] =
	"usage: ltxfs export [-url URL | -config FILE] -name DB FILE\n"
	"  write a consistent copy of database DB, from any node, to FILE\n";

typedef struct transfer_args {
	cli_target target;
	const char *name;
	const char *file;
} transfer_args;

/* 0: parsed; 1: help was printed; -1: a usage error was printed. */
static int parse_args(transfer_args *a, int argc, char **argv, const char *usage)
{
	int bad = 0;
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc && !bad; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 1;
		}
		if ((strcmp(argv[i], "-name") == 0 || strcmp(argv[i], "--name") == 0) &&
		    i + 1 < argc)
			a->name = argv[++i];
		else if (cli_target_flag(&a->target, argc, argv, &i))
			continue;
		else if (argv[i][0] != '-' && a->file == NULL)
			a->file = argv[i];
		else
			bad = 1;
	}
	if (bad || a->name == NULL || a->file == NULL) {
		fputs(usage, stderr);
		return -1;
	}
	{
		lx_err err;
		if (db_name_check(a->name, strlen(a->name), &err) < 0) {
			fprintf(stderr, "ltxfs: -name: %s\n", err.msg);
			return -1;
		}
	}
	return 0;
}

/* "/import?name=<escaped>" */
static int query_path(const char *endpoint, const char *name, char *out, size_t cap)
{
	char *esc = curl_easy_escape(NULL, name, 0);
	if (esc == NULL)
		return -1;
	snprintf(out, cap, "%s?name=%s", endpoint, esc);
	curl_free(esc);
	return 0;
}

/* What import and export do first: the arguments, the node, the request
 * path ("/import?name=..."); 0 to go on, else *status is the exit status. */
static int prepare(transfer_args *a, int argc, char **argv, const char *usage,
		   const char *endpoint, char *path, size_t cap, int *status)
{
	int rc = parse_args(a, argc, argv, usage);
	*status = rc < 0 ? 2 : 0;
	if (rc != 0)
		return -1;
	*status = 1;
	if (cli_target_resolve(&a->target, endpoint + 1) < 0 ||
	    query_path(endpoint, a->name, path, cap) < 0)
		return -1;
	return 0;
}

/* ---- import ------------------------------------------------------------------ */

/* integrity_check of the user's file; its problems are printed. */
static int check_file(sqlite3 *db, const char *file)
{
	sqlite3_stmt *st;
	int ok = 0, lines = 0, rc;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "ltxfs import: %s: %s\n", file, sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(st, 0);
		if (lines == 0 && strcmp(line, "ok") == 0)
			ok = 1;
		else if (lines < 10)
			fprintf(stderr, "  %s\n", line);
		lines++;
	}
	if (rc != SQLITE_DONE)
		fprintf(stderr, "ltxfs import: %s: %s\n", file, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (!ok) {
		fprintf(stderr, "ltxfs import: %s fails PRAGMA integrity_check (above); nothing "
			"was sent. Repair it first (e.g. sqlite3 %s .recover).\n", file, file);
		return -1;
	}
	return 0;
}

/* One consistent file of the database (its WAL folded in), at tmp. */
static int consistent_copy(const char *file, const char *tmp)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	int rc = sqlite3_open_v2(file, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "ltxfs import: %s: %s\n", file, sqlite3_errstr(rc));
		sqlite3_close(src);
		return -1;
	}
	sqlite3_busy_timeout(src, 10000);
	rc = check_file(src, file);
	if (rc == 0 && sqlite3_open(tmp, &dst) != SQLITE_OK)
		rc = -1;
	if (rc == 0 && (b = sqlite3_backup_init(dst, "main", src, "main")) != NULL) {
		int step = sqlite3_backup_step(b, -1);
		sqlite3_backup_finish(b);
		if (step != SQLITE_DONE) {
			fprintf(stderr, "ltxfs import: copy %s: %s\n", file, sqlite3_errstr(step));
			rc = -1;
		}
	} else if (rc == 0) {
		fprintf(stderr, "ltxfs import: copy %s: %s\n", file, sqlite3_errmsg(dst));
		rc = -1;
	}
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}

static void print_imported(const transfer_args *a, const char *body)
{
	json_t *o = json_loads(body, 0, NULL);
	printf("imported %s as %s on %s: TXID %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
	       " pages of %" JSON_INTEGER_FORMAT " bytes, %s mode\n", a->file, a->name,
	       a->target.url, json_integer_value(json_object_get(o, "txid")),
	       json_integer_value(json_object_get(o, "page_count")),
	       json_integer_value(json_object_get(o, "page_size")),
	       json_string_value(json_object_get(o, "journal")) ?
	       json_string_value(json_object_get(o, "journal")) : "?");
	json_decref(o);
}

int cmd_import(int argc, char **argv)
{
	transfer_args a;
	char tmp[PATH_MAX], path[512];
	cli_response r;
	FILE *f;
	int fd, rc = 1;
	if (prepare(&a, argc, argv, import_usage, "/import", path, sizeof(path), &rc) < 0)
		return rc;
	rc = 1;
	snprintf(tmp, sizeof(tmp), "%s/ltxfs-import-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(tmp)) < 0) {
		fprintf(stderr, "ltxfs import: create %s: %s (set TMPDIR to a directory with "
			"room for a copy of the database)\n", tmp, strerror(errno));
		return 1;
	}
	close(fd);
	if (consistent_copy(a.file, tmp) == 0 && (f = fopen(tmp, "rb")) != NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (cli_request(&a.target, "POST", path, f, NULL, 0, &r) < 0 || r.status != 200)
			cli_report("import", &a.target, &r);
		else {
			print_imported(&a, r.body ? r.body : "{}");
			rc = 0;
		}
		cli_response_free(&r);
		curl_global_cleanup();
		fclose(f);
	}
	unlink(tmp);
	return rc;
}

/* ---- export ------------------------------------------------------------------ */

/* The database checksum of the file `f` (ltx/ltx.h), or 0 when it is not a
 * whole number of pages of a valid page size. */
static uint64_t file_checksum(FILE *f)
{
	uint8_t hdr[100], *page;
	uint32_t ps, pgno = 0;
	uint64_t ck = LTX_CHECKSUM_FLAG;
	rewind(f);
	if (fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr))
		return 0;
	ps = (uint32_t)hdr[16] << 8 | hdr[17];
	ps = ps == 1 ? 65536 : ps;
	if (!ltx_page_size_valid(ps) || (page = malloc(ps)) == NULL)
		return 0;
	rewind(f);
	while (fread(page, 1, ps, f) == ps)
		ck = ltx_checksum_pages(ck, ++pgno, page, 1, ps, NULL);
	if (!feof(f) || ftello(f) != (off_t)pgno * ps)
		ck = 0;
	free(page);
	return ck;
}

static int verify_download(const transfer_args *a, FILE *f, const cli_response *r)
{
	uint64_t want = strtoull(r->checksum, NULL, 16), got;
	fflush(f);
	got = file_checksum(f);
	if (r->checksum[0] == '\0' || got != want) {
		fprintf(stderr, "ltxfs export: the copy of %s does not match the checksum the node "
			"sent (%s, the file has %016" PRIx64 "); %s was not written. Try again.\n",
			a->name, r->checksum[0] ? r->checksum : "none", got, a->file);
		return -1;
	}
	if (fsync(fileno(f)) < 0) {
		fprintf(stderr, "ltxfs export: fsync: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_export(int argc, char **argv)
{
	transfer_args a;
	char tmp[PATH_MAX], path[512], dir[PATH_MAX];
	cli_response r;
	FILE *f;
	int fd, rc = 1;
	if (prepare(&a, argc, argv, export_usage, "/export", path, sizeof(path), &rc) < 0)
		return rc;
	rc = 1;
	snprintf(dir, sizeof(dir), "%s", a.file);
	snprintf(tmp, sizeof(tmp), "%s/.ltxfs-export-XXXXXX", dirname(dir));
	if ((fd = mkstemp(tmp)) < 0 || (f = fdopen(fd, "w+b")) == NULL) {
		fprintf(stderr, "ltxfs export: create %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cli_request(&a.target, "GET", path, NULL, f, 0, &r) < 0 || r.status != 200)
		cli_report("export", &a.target, &r);
	else if (verify_download(&a, f, &r) < 0)
		;                          /* said why */
	else if (rename(tmp, a.file) < 0)
		fprintf(stderr, "ltxfs export: rename %s to %s: %s\n", tmp, a.file, strerror(errno));
	else {
		printf("exported %s from %s at TXID %s (checksum %s) to %s (%jd bytes)\n", a.name,
		       a.target.url, r.txid, r.checksum, a.file, (intmax_t)ftello(f));
		rc = 0;
	}
	curl_global_cleanup();
	cli_response_free(&r);
	fclose(f);
	if (rc != 0)
		unlink(tmp);
	return rc;
}
