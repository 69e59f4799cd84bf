/*
 * receive.c - one LTX file arriving on the replication stream (see
 * receive.h).
 */
#include "replica/receive.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/failpoint.h"

void receive_init(receive *in)
{
	memset(in, 0, sizeof(*in));
	in->fd = -1;
}

void receive_reset(receive *in)
{
	if (in->dec_live)
		ltx_decoder_free(&in->dec);
	if (in->fd >= 0 && in->own_fd)
		close(in->fd);
	free(in->page_ck);
	free(in->run);
	memset(in, 0, sizeof(*in));
	in->fd = -1;
}

#define RUN_BYTES (1u << 20)

/* Write the run of consecutive snapshot pages gathered so far. */
static int flush_run(receive *in)
{
	uint64_t off = (uint64_t)(in->run_first - 1) * in->hdr.page_size;
	int rc = in->run_len ? lx_pwrite_all(in->fd, in->run, in->run_len, off) : 0;
	if (rc < 0)
		return lx_err_sys(&in->err, -rc, "db %s: write snapshot at page %u", in->db->name,
				  in->run_first);
	in->run_len = 0;
	return 0;
}

/* Pages arrive in order: gather consecutive ones into one write. */
static int on_snapshot_page(void *ctx, uint32_t pgno, const uint8_t *data, uint64_t ck)
{
	receive *in = ctx;
	uint32_t ps = in->hdr.page_size;
	int rc;
	if (!in->snapshot)
		return 0;                   /* the spool keeps the raw bytes */
	if (in->run_len && (pgno != in->run_first + in->run_len / ps || in->run_len + ps > RUN_BYTES)) {
		rc = flush_run(in);
		if (rc < 0)
			return rc;
	}
	if (in->run_len == 0)
		in->run_first = pgno;
	memcpy(in->run + in->run_len, data, ps);
	in->run_len += ps;
	in->page_ck[pgno - 1] = ck;
	return 0;
}

/* The header is known: set up where the bytes go. */
static int on_header(void *ctx, const ltx_header *h)
{
	receive *in = ctx;
	in->hdr = *h;
	in->snapshot = ltx_header_is_snapshot(h);
	if (ltx_file_size(h) != in->len)
		return lx_err_set(&in->err, EBADMSG, "frame of %" PRIu64 " bytes holds an LTX "
				  "file of %" PRIu64, in->len, ltx_file_size(h));
	if (in->snapshot) {
		in->page_ck = calloc(h->commit ? h->commit : 1, sizeof(uint64_t));
		in->run = malloc(RUN_BYTES > h->page_size ? RUN_BYTES : h->page_size);
		in->fd = openat(in->db->dirfd, "snapshot.tmp",
				O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		in->own_fd = 1;
	} else {
		in->fd = in->spool_fd;      /* the connection's, reused: no file per frame */
	}
	if (in->fd < 0 || (in->snapshot && (in->page_ck == NULL || in->run == NULL)))
		return lx_err_sys(&in->err, in->fd < 0 ? errno : ENOMEM, "db %s: receive TXID %"
				  PRIu64, in->db->name, h->max_txid);
	return 0;
}

/* Called only once the file checksum verified. */
static int on_trailer(void *ctx, const ltx_trailer *t)
{
	receive *in = ctx;
	in->post = t->post_checksum;
	return 0;
}

int receive_start(receive *in, store *st, const char *name, uint64_t len, int spool_fd)
{
	ltx_decode_cb cb;
	int rc;
	receive_reset(in);
	in->spool_fd = spool_fd;
	rc = store_get_or_create(st, name, &in->db, &in->err);
	if (rc < 0)
		return rc;
	in->len = len;
	cb = (ltx_decode_cb){ in, on_header, on_snapshot_page, on_trailer };
	rc = ltx_decoder_init(&in->dec, &cb, NULL, &in->err);
	in->dec_live = rc == 0;
	return rc;
}

static int feed_part(receive *in, const uint8_t *buf, size_t len, uint64_t off)
{
	int rc = ltx_decoder_feed(&in->dec, buf, len, &in->err);
	if (rc == -EBADMSG && in->db != NULL)
		db_count_mismatch(in->db);
	if (rc == 0 && !in->snapshot && (rc = lx_pwrite_all(in->fd, buf, len, off)) < 0)
		rc = lx_err_sys(&in->err, -rc, "db %s: spool", in->db->name);
	return rc;
}

/*
 * Feed payload bytes: the decoder verifies them as they come; an
 * incremental file is kept in the spool, a snapshot's pages go to the
 * image (on_snapshot_page).  The header is gathered first so that the
 * decision is made before any byte is stored.
 */
int receive_feed(receive *in, const uint8_t *buf, size_t len)
{
	int rc = 0;
	if (in->got < LTX_HEADER_SIZE) {
		size_t take = LTX_HEADER_SIZE - in->got < len ? LTX_HEADER_SIZE - in->got : len;
		memcpy(in->head + in->got, buf, take);
		in->got += take;
		buf += take;
		len -= take;
		if (in->got < LTX_HEADER_SIZE)
			return 0;
		rc = feed_part(in, in->head, LTX_HEADER_SIZE, 0);
	}
	if (rc == 0 && len > 0) {
		rc = feed_part(in, buf, len, in->got);
		in->got += len;
	}
	LX_FAILPOINT("replica.receive.mid");
	return rc;
}

/* Every byte arrived: verified as a whole, now applied. */
int receive_finish(receive *in, const db_logged_hook *logged, int *snapshot, int64_t *ts_ms)
{
	const ltx_header *h = &in->hdr;
	int rc = ltx_decoder_finish(&in->dec, &in->err);
	*snapshot = in->snapshot;
	*ts_ms = h->timestamp_ms;
	if (rc == -EBADMSG)
		db_count_mismatch(in->db);
	if (rc < 0)
		return rc;
	if (!in->snapshot)
		return db_apply_remote(in->db, in->fd, in->len, logged, &in->err);
	if (flush_run(in) < 0)
		return -in->err.code;
	/* No fsync: a power loss before writeback leaves a file whose
	 * checksum is not the log's base; the next start finds that and the
	 * primary sends a new snapshot (docs/design.md). */
	if (ftruncate(in->fd, (off_t)h->commit * h->page_size) < 0)
		return lx_err_sys(&in->err, errno, "db %s: write snapshot", in->db->name);
	rc = db_install_snapshot(in->db, in->fd, h, in->post, in->page_ck, &in->err);
	in->page_ck = NULL;      /* taken over, also on failure */
	return rc;
}
