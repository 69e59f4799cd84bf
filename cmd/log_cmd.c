/*
 * log_cmd.c - `ltxfs log list|verify|replay -data DIR -name DB` (see
 * log_cmd.h).  Exit status 0 on success, 1 on a failed check, 2 on usage.
 */
#include "cmd/log_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/apply.h"
#include "db/names.h"
#include "db/txlog.h"
#include "ltx/ltx.h"

static const char usage[] =
	"usage: ltxfs log list   -data DIR -name DB\n"
	"       ltxfs log verify -data DIR -name DB\n"
	"       ltxfs log replay -data DIR -name DB -o OUTFILE\n";

typedef struct log_args {
	const char *data, *name, *out;
} log_args;

static int parse_args(int argc, char **argv, log_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "-data") == 0) dst = &a->data;
		else if (strcmp(argv[i], "-name") == 0) dst = &a->name;
		else if (strcmp(argv[i], "-o") == 0) dst = &a->out;
		if (dst == NULL || i + 1 >= argc)
			return -1;
		*dst = argv[++i];
	}
	return a->data && a->name ? 0 : -1;
}

/* Read-only: a daemon may be appending to this log right now. */
static int open_log(const log_args *a, txlog **log)
{
	char dir[4096];
	lx_err err;
	if (db_name_check(a->name, strlen(a->name), &err) < 0) {
		fprintf(stderr, "ltxfs log: %s\n", err.msg);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/dbs/%s/log", a->data, a->name);
	if (access(dir, F_OK) < 0) {
		fprintf(stderr, "ltxfs log: no log for database \"%s\" in %s\n", a->name, a->data);
		return -1;
	}
	if (txlog_open_readonly(log, dir, &err) < 0) {
		fprintf(stderr, "ltxfs log: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int log_list(txlog *log)
{
	for (size_t i = 0; i < log->n; i++) {
		const txlog_entry *e = &log->ents[i];
		printf("%" PRIu64 " %016" PRIx64 " %016" PRIx64 " %u %u %" PRIu64 "\n",
		       e->hdr.max_txid, e->hdr.pre_checksum, e->post_checksum,
		       e->hdr.commit, e->hdr.page_count, e->length);
	}
	return 0;
}

/* The chain is checked from the log's base: retention or a replica's
 * snapshot may have removed the history before it. */
static int log_verify(txlog *log)
{
	uint64_t prev_txid, prev_ck;
	txlog_base(log, &prev_txid, &prev_ck);
	for (size_t i = 0; i < log->n; i++) {
		const txlog_entry *e = &log->ents[i];
		lx_err err;
		if (txlog_verify_entry(log, e, &err) < 0) {
			fprintf(stderr, "ltxfs log verify: %s\n", err.msg);
			return 1;
		}
		if (e->hdr.min_txid != prev_txid + 1 ||
		    (prev_txid != 0 && e->hdr.pre_checksum != prev_ck)) {
			fprintf(stderr, "ltxfs log verify: TXID %" PRIu64 " does not follow TXID %" PRIu64
				" (pre-checksum %016" PRIx64 ", previous checksum %016" PRIx64 ")\n",
				e->hdr.min_txid, prev_txid, e->hdr.pre_checksum, prev_ck);
			return 1;
		}
		prev_txid = e->hdr.max_txid;
		prev_ck = e->post_checksum;
	}
	printf("ok %zu transactions, last TXID %" PRIu64 ", checksum %016" PRIx64 "\n",
	       log->n, prev_txid, prev_ck);
	return 0;
}

/* Replaying rebuilds the database from an empty one: the log must start
 * at TXID 1, or at an empty database's position (a database created again
 * after a delete continues its TXIDs from there: db/store.h). */
static int log_replay(txlog *log, const char *out)
{
	apply_target t;
	uint64_t base_txid, base_ck;
	int rc = 0;
	txlog_base(log, &base_txid, &base_ck);
	if (base_txid != 0 && base_ck != LTX_CHECKSUM_FLAG) {
		fprintf(stderr, "ltxfs log replay: the log starts after TXID %" PRIu64
			" (older transactions were removed); nothing to replay from\n", base_txid);
		return 1;
	}
	memset(&t, 0, sizeof(t));
	t.txid = base_txid;
	t.checksum = LTX_CHECKSUM_FLAG;
	t.fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (t.fd < 0) {
		fprintf(stderr, "ltxfs log replay: %s: %s\n", out, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < log->n && rc == 0; i++) {
		const txlog_entry *e = &log->ents[i];
		uint8_t *buf = malloc(e->length);
		lx_err err;
		if (buf == NULL || txlog_read(log, e, buf, &err) < 0 ||
		    apply_ltx(&t, buf, e->length, &err) < 0) {
			fprintf(stderr, "ltxfs log replay: %s\n", buf ? err.msg : "out of memory");
			rc = 1;
		}
		free(buf);
	}
	if (rc == 0 && fsync(t.fd) < 0)
		rc = 1;
	close(t.fd);
	free(t.page_ck);
	if (rc == 0)
		printf("replayed %zu transactions to TXID %" PRIu64 ", checksum %016" PRIx64 "\n",
		       log->n, t.txid, t.checksum);
	return rc;
}

int cmd_log(int argc, char **argv)
{
	log_args a;
	txlog *log;
	int rc;
	if (argc < 2 || parse_args(argc, argv, &a) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "replay") == 0 && a.out == NULL) {
		fputs(usage, stderr);
		return 2;
	}
	if (open_log(&a, &log) < 0)
		return 1;
	if (strcmp(argv[1], "list") == 0)
		rc = log_list(log);
	else if (strcmp(argv[1], "verify") == 0)
		rc = log_verify(log);
	else if (strcmp(argv[1], "replay") == 0)
		rc = log_replay(log, a.out);
	else {
		fputs(usage, stderr);
		rc = 2;
	}
	txlog_close(log);
	return rc;
}
