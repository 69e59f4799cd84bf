/*
 * ltx_cmd.c - `ltxfs ltx dump|verify FILE`: inspect and check one LTX file.
 *
 * Both read the file sequentially through the streaming decoder (ltx/), so
 * they work on files of any size and on pipes.  `dump` prints what the
 * decoder reports as it goes: the header, then one line per page, then the
 * trailer; if the file turns out to be invalid the lines printed so far
 * stay and the error goes to stderr.  `verify` prints nothing on success.
 */
#include "cmd/ltx_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ltx/ltx.h"

static const char usage[] = "usage: ltxfs ltx dump|verify FILE\n";

/* ---- dump callbacks ------------------------------------------------------ */

/* "2023-11-14T22:13:20.000Z" for a timestamp in ms, or "" if out of range. */
static void format_time(int64_t ms, char *out, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;
	char date[32];

	out[0] = '\0';
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return;
	snprintf(out, len, " (%s.%03dZ)", date, frac);
}

static int dump_header(void *ctx, const ltx_header *h)
{
	char when[64];

	(void)ctx;
	format_time(h->timestamp_ms, when, sizeof(when));
	printf("magic         %s\n", LTX_MAGIC);
	printf("version       %d\n", LTX_VERSION);
	printf("flags         0x%08" PRIx32 "%s\n", h->flags,
	       h->flags & LTX_FLAG_COMPACTED ? " (compacted)" : "");
	printf("page_size     %" PRIu32 "\n", h->page_size);
	printf("commit        %" PRIu32 "%s\n", h->commit,
	       h->commit == 0 ? " (deletion)" : "");
	printf("page_count    %" PRIu32 "%s\n", h->page_count,
	       ltx_header_is_snapshot(h) ? " (snapshot)" : "");
	printf("min_txid      %" PRIu64 " (%016" PRIx64 ")\n", h->min_txid,
	       h->min_txid);
	printf("max_txid      %" PRIu64 " (%016" PRIx64 ")\n", h->max_txid,
	       h->max_txid);
	printf("timestamp_ms  %" PRId64 "%s\n", h->timestamp_ms, when);
	printf("pre_checksum  %016" PRIx64 "\n", h->pre_checksum);
	printf("node_id       %016" PRIx64 "\n", h->node_id);
	printf("lease_epoch   %" PRIu64 "\n", h->lease_epoch);
	printf("file_size     %" PRIu64 "\n", ltx_file_size(h));
	return 0;
}

static int dump_page(void *ctx, uint32_t pgno, const uint8_t *data,
		     uint64_t page_checksum)
{
	(void)ctx;
	(void)data;
	printf("page %" PRIu32 " %016" PRIx64 "\n", pgno, page_checksum);
	return 0;
}

static int dump_trailer(void *ctx, const ltx_trailer *t)
{
	(void)ctx;
	printf("post_checksum %016" PRIx64 "\n", t->post_checksum);
	printf("file_checksum %016" PRIx64 "\n", t->file_checksum);
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Feed all of `fd` to a decoder with callbacks `cb` and finish it. */
static int decode_fd(int fd, const ltx_decode_cb *cb, lx_err *err)
{
	enum { CHUNK = 64 * 1024 };
	uint8_t *buf = malloc(CHUNK);
	ltx_decoder dec;
	int rc;

	if (buf == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = ltx_decoder_init(&dec, cb, NULL, err);
	while (rc == 0) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = lx_err_sys(err, errno, "read");
			break;
		}
		if (n == 0) {
			rc = ltx_decoder_finish(&dec, err);
			break;
		}
		rc = ltx_decoder_feed(&dec, buf, (size_t)n, err);
	}
	ltx_decoder_free(&dec);
	free(buf);
	return rc;
}

/* Decode `path` ("-" = stdin); report failures on stderr.  Exit status. */
static int run(const char *verb, const char *path, const ltx_decode_cb *cb)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO :
		 open(path, O_RDONLY | O_CLOEXEC);
	lx_err err;
	int rc;

	if (fd < 0) {
		fprintf(stderr, "ltxfs ltx %s: %s: %s\n", verb, path,
			strerror(errno));
		return 1;
	}
	rc = decode_fd(fd, cb, &err);
	if (fd != STDIN_FILENO)
		close(fd);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "ltxfs ltx %s: writing output: %s\n", verb,
			strerror(errno));
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "ltxfs ltx %s: %s: %s\n", verb, path, err.msg);
		return 1;
	}
	return 0;
}

int cmd_ltx(int argc, char **argv)
{
	static const ltx_decode_cb dump = { NULL, dump_header, dump_page,
					    dump_trailer };
	static const ltx_decode_cb verify = { NULL, NULL, NULL, NULL };

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "dump") == 0)
		return run("dump", argv[2], &dump);
	if (strcmp(argv[1], "verify") == 0)
		return run("verify", argv[2], &verify);
	fprintf(stderr, "ltxfs ltx: unknown command \"%s\"\n", argv[1]);
	fputs(usage, stderr);
	return 2;
}
