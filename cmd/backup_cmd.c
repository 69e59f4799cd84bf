/*
 * backup_cmd.c - `ltxfs restore` and `ltxfs backup` (backup_cmd.h).
 */
#include "cmd/backup_cmd.h"

#include "backup/restore.h"
#include "backup/shipper.h"
#include "config/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char restore_usage[] =
	"usage: ltxfs restore -config FILE -name DB [-timestamp RFC3339 | -txid N] -o OUT\n";
static const char backup_usage[] =
	"usage: ltxfs backup list -config FILE [-name DB]\n"
	"       ltxfs backup keygen\n";

/* The configuration's backup, opened: storage options and codec. */
typedef struct backup_ctx {
	ltxfs_config cfg;
	backup_store_options so;
	bk_codec codec;
} backup_ctx;

static int ctx_open(backup_ctx *x, const char *path)
{
	lx_err err;
	int loose;
	memset(x, 0, sizeof(*x));
	if (path == NULL) {
		fprintf(stderr, "ltxfs: -config FILE is required (its backup.url)\n");
		return -1;
	}
	if (config_load_file(&x->cfg, path, &err) < 0) {
		fprintf(stderr, "ltxfs: %s\n", err.msg);
		return -1;
	}
	if (x->cfg.backup.url == NULL) {
		fprintf(stderr, "ltxfs: %s: backup.url is not set\n", path);
		config_free(&x->cfg);
		return -1;
	}
	if (bk_codec_init(&x->codec, x->cfg.backup.encryption.key_file, &loose, &err) < 0) {
		fprintf(stderr, "ltxfs: %s\n", err.msg);
		config_free(&x->cfg);
		return -1;
	}
	x->so.url = x->cfg.backup.url;
	x->so.endpoint = x->cfg.backup.endpoint;
	x->so.region = x->cfg.backup.region;
	x->so.access_key_id = x->cfg.backup.access_key_id;
	x->so.secret_access_key = x->cfg.backup.secret_access_key;
	x->so.force_path_style = x->cfg.backup.force_path_style;
	return 0;
}

static void ctx_close(backup_ctx *x)
{
	bk_codec_wipe(&x->codec);
	config_free(&x->cfg);
}

/* RFC 3339: 2026-12-07T15:04:05Z, with optional fraction and a Z or
 * +hh:mm / -hh:mm offset.  Milliseconds since the epoch, or -1. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t ms = 0, scale = 100;
	int sign, oh, om;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ms += scale * (*p - '0');
	time_t t = timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
		sign = *p == '+' ? 1 : -1;
		t -= sign * (oh * 3600 + om * 60);
		p += 6;
	} else {
		return -1;
	}
	return *p == '\0' ? (int64_t)t * 1000 + ms : -1;
}

static void format_time(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int cmd_restore(int argc, char **argv)
{
	const char *config = NULL, *name = NULL, *out = NULL;
	backup_restore_options o;
	backup_restore_result r;
	backup_ctx x;
	lx_err err;
	char when[64];
	memset(&o, 0, sizeof(o));
	o.target = (bk_target){ UINT64_MAX, INT64_MAX };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (v != NULL && (strcmp(a, "-config") == 0 || strcmp(a, "--config") == 0))
			config = argv[++i];
		else if (v != NULL && strcmp(a, "-name") == 0)
			name = argv[++i];
		else if (v != NULL && strcmp(a, "-o") == 0)
			out = argv[++i];
		else if (v != NULL && strcmp(a, "-txid") == 0) {
			errno = 0;
			o.target.txid = strtoull(v, &end, 0);
			if (errno || *end || o.target.txid == 0) {
				fprintf(stderr, "ltxfs restore: -txid %s: not a TXID\n", v);
				return 2;
			}
			i++;
		} else if (v != NULL && strcmp(a, "-timestamp") == 0) {
			if ((o.target.time_ms = parse_rfc3339(v)) < 0) {
				fprintf(stderr, "ltxfs restore: -timestamp %s: not an RFC 3339 time "
					"(2026-12-07T15:04:05Z)\n", v);
				return 2;
			}
			i++;
		} else {
			fputs(restore_usage, stderr);
			return 2;
		}
	}
	if (name == NULL || out == NULL ||
	    (o.target.txid != UINT64_MAX && o.target.time_ms != INT64_MAX)) {
		fputs(restore_usage, stderr);
		return 2;
	}
	if (ctx_open(&x, config) < 0)
		return 1;
	o.storage = x.so;
	o.codec = &x.codec;
	o.name = name;
	o.out_path = out;
	if (backup_restore(&o, &r, &err) < 0) {
		fprintf(stderr, "ltxfs restore: %s: %s\n", name, err.msg);
		ctx_close(&x);
		return 1;
	}
	format_time(r.time_ms, when, sizeof(when));
	printf("restored %s to %s: TXID %" PRIu64 " (committed %s), checksum %016" PRIx64
	       ", %u pages of %u bytes; %zu objects (%" PRIu64 " bytes), %" PRIu64
	       " transactions after the snapshot; integrity_check ok\n", name, out, r.txid, when,
	       r.checksum, r.pages, r.page_size, r.objects, r.bytes, r.transactions);
	ctx_close(&x);
	return 0;
}

static int backup_list_cmd(int argc, char **argv)
{
	const char *config = NULL, *name = NULL;
	backup_db_info *v;
	size_t n;
	backup_ctx x;
	lx_err err;
	for (int i = 2; i < argc; i++) {
		if (i + 1 < argc && (strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0))
			config = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-name") == 0)
			name = argv[++i];
		else {
			fputs(backup_usage, stderr);
			return 2;
		}
	}
	if (ctx_open(&x, config) < 0)
		return 1;
	if (backup_list(&x.so, &x.codec, name, &v, &n, &err) < 0) {
		fprintf(stderr, "ltxfs backup list: %s\n", err.msg);
		ctx_close(&x);
		return 1;
	}
	printf("%-24s %-12s %-12s %-24s %-24s %5s %7s %5s %12s\n", "NAME", "FIRST-TXID",
	       "LAST-TXID", "FIRST-TIME", "LAST-TIME", "SNAPS", "OBJECTS", "LOST", "BYTES");
	for (size_t i = 0; i < n; i++) {
		char t0[64] = "-", t1[64] = "-";
		const bk_range *r = &v[i].range;
		if (v[i].restorable) {
			format_time(r->first_ms, t0, sizeof(t0));
			format_time(r->last_ms, t1, sizeof(t1));
		}
		printf("%-24s %-12" PRIu64 " %-12" PRIu64 " %-24s %-24s %5zu %7zu %5zu %12" PRIu64 "\n",
		       v[i].name ? v[i].name : "(name unreadable)", r->first_txid, r->last_txid, t0,
		       t1, r->snapshots, r->objects, r->superseded, v[i].bytes);
	}
	backup_list_free(v, n);
	ctx_close(&x);
	return 0;
}

int cmd_backup(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return backup_list_cmd(argc, argv);
	if (argc == 2 && strcmp(argv[1], "keygen") == 0) {
		char key[66];
		backup_key_generate_hex(key);
		fputs(key, stdout);
		return 0;
	}
	fputs(backup_usage, stderr);
	return 2;
}
