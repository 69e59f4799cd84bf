/*
 * s3_driver.c - drives net/s3.h from a test, one command per run, so that
 * pytest can exercise the client against a real S3 server
 * (test_s3_client.py).
 *
 *   s3_driver put KEY FILE                 s3_put of FILE's bytes (from memory)
 *   s3_driver put-file KEY FILE            s3_put_fd of FILE (multipart above the part size)
 *   s3_driver put-many PREFIX N [THREADS]  N small objects PREFIX000000.. ("value I"),
 *                                          THREADS clients at once (default 4)
 *   s3_driver get KEY OUT [OFF LEN]        s3_get into the file OUT
 *   s3_driver list [PREFIX [START_AFTER]]  one "KEY SIZE MTIME_MS" line per object
 *   s3_driver delete KEY... | delete -     s3_delete (keys from stdin, one a line)
 *
 * The last line of stdout is "ok ..." or "err ERRNO-NAME message"; the exit
 * status 0 or 1.  The client's counters go to stderr as "stats requests=N
 * retries=N bytes_up=N bytes_down=N errors=N".
 *
 * Options from the environment: S3_ENDPOINT, S3_REGION, S3_BUCKET,
 * S3_ACCESS_KEY, S3_SECRET_KEY, S3_PATH_STYLE (default 1), S3_PART_SIZE,
 * S3_PAGE_SIZE, S3_MAX_ATTEMPTS, S3_TIMEOUT_MS, S3_CONNECT_TIMEOUT_MS,
 * S3_BACKOFF_MS, S3_TLS_CA; S3_CANCEL_AFTER_MS sets the cancel flag from
 * another thread that long after the start.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "net/s3.h"

#define THREADS_MAX 16

static int cancel_flag;

static void *cancel_later(void *arg)
{
	usleep((useconds_t)(*(int64_t *)arg * 1000));
	__atomic_store_n(&cancel_flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

static const char *errname(int code)
{
	switch (code) {
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EAGAIN: return "EAGAIN";
	case EPROTO: return "EPROTO";
	case EIO: return "EIO";
	case EINVAL: return "EINVAL";
	case ERANGE: return "ERANGE";
	case EINTR: return "EINTR";
	case EMSGSIZE: return "EMSGSIZE";
	case EFBIG: return "EFBIG";
	default: return "OTHER";
	}
}

static int fail(const lx_err *err)
{
	printf("err %s %s\n", errname(err->code), err->msg);
	return 1;
}

static int64_t env_int(const char *name, int64_t dflt)
{
	const char *v = getenv(name);
	return v && v[0] ? strtoll(v, NULL, 10) : dflt;
}

static void options(s3_options *o)
{
	memset(o, 0, sizeof(*o));
	o->endpoint = getenv("S3_ENDPOINT");
	o->region = getenv("S3_REGION");
	o->bucket = getenv("S3_BUCKET");
	o->access_key_id = getenv("S3_ACCESS_KEY");
	o->secret_access_key = getenv("S3_SECRET_KEY");
	o->force_path_style = (int)env_int("S3_PATH_STYLE", 1);
	o->part_size = (uint64_t)env_int("S3_PART_SIZE", 0);
	o->list_page_size = (int)env_int("S3_PAGE_SIZE", 0);
	o->max_attempts = (int)env_int("S3_MAX_ATTEMPTS", 0);
	o->timeout_ms = env_int("S3_TIMEOUT_MS", 0);
	o->connect_timeout_ms = env_int("S3_CONNECT_TIMEOUT_MS", 0);
	o->backoff_ms = env_int("S3_BACKOFF_MS", 0);
	o->tls_ca = getenv("S3_TLS_CA");
	o->cancel = &cancel_flag;
}

static void print_stats(s3_client *const *c, int n)
{
	s3_stats sum = { 0 }, s;
	for (int i = 0; i < n; i++) {
		s3_stats_get(c[i], &s);
		sum.requests += s.requests;
		sum.retries += s.retries;
		sum.bytes_up += s.bytes_up;
		sum.bytes_down += s.bytes_down;
		sum.errors += s.errors;
	}
	fprintf(stderr, "stats requests=%" PRIu64 " retries=%" PRIu64 " bytes_up=%" PRIu64
		" bytes_down=%" PRIu64 " errors=%" PRIu64 "\n", sum.requests, sum.retries,
		sum.bytes_up, sum.bytes_down, sum.errors);
}

static int read_file(const char *path, uint8_t **out, size_t *len, lx_err *err)
{
	FILE *f = fopen(path, "rb");
	long n;
	if (f == NULL)
		return lx_err_sys(err, errno, "open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*out = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(*out, 1, (size_t)n, f);
	fclose(f);
	return 0;
}

static int cmd_put(s3_client *c, int argc, char **argv, int from_fd)
{
	lx_err err;
	int rc;
	if (argc != 2)
		return fprintf(stderr, "put KEY FILE\n"), 2;
	if (from_fd) {
		int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return lx_err_sys(&err, errno, "open %s", argv[1]), fail(&err);
		rc = s3_put_fd(c, argv[0], fd, (uint64_t)st.st_size, &err);
		close(fd);
	} else {
		uint8_t *buf = NULL;
		size_t len = 0;
		if (read_file(argv[1], &buf, &len, &err) < 0)
			return fail(&err);
		rc = s3_put(c, argv[0], buf, len, &err);
		free(buf);
	}
	if (rc < 0)
		return fail(&err);
	printf("ok\n");
	return 0;
}

typedef struct many {
	s3_client *c;
	const char *prefix;
	long from, to;
	lx_err err;
	int rc;
} many;

static void *put_range(void *arg)
{
	many *m = arg;
	for (long i = m->from; m->rc == 0 && i < m->to; i++) {
		char key[1100], value[32];
		snprintf(key, sizeof(key), "%s%06ld", m->prefix, i);
		snprintf(value, sizeof(value), "value %ld", i);
		m->rc = s3_put(m->c, key, value, strlen(value), &m->err);
	}
	return NULL;
}

static int cmd_put_many(s3_client **c, int nthreads, char **argv)
{
	long n = atol(argv[1]);
	pthread_t t[THREADS_MAX];
	many m[THREADS_MAX];
	int rc = 0;
	for (int i = 0; i < nthreads; i++) {
		m[i] = (many){ .c = c[i], .prefix = argv[0], .from = n * i / nthreads,
			       .to = n * (i + 1) / nthreads };
		pthread_create(&t[i], NULL, put_range, &m[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < nthreads; i++)
		if (m[i].rc < 0 && rc == 0)
			rc = fail(&m[i].err);
	if (rc == 0)
		printf("ok %ld\n", n);
	return rc;
}

static int cmd_get(s3_client *c, int argc, char **argv)
{
	uint64_t off = argc >= 4 ? strtoull(argv[2], NULL, 10) : 0;
	uint64_t len = argc >= 4 ? strtoull(argv[3], NULL, 10) : 0;
	uint8_t *buf;
	size_t n;
	lx_err err;
	FILE *f;
	if (argc != 2 && argc != 4)
		return fprintf(stderr, "get KEY OUT [OFF LEN]\n"), 2;
	if (s3_get(c, argv[0], off, len, &buf, &n, &err) < 0)
		return fail(&err);
	if ((f = fopen(argv[1], "wb")) == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
		free(buf);
		return lx_err_sys(&err, errno, "write %s", argv[1]), fail(&err);
	}
	free(buf);
	printf("ok %zu\n", n);
	return 0;
}

static int cmd_list(s3_client *c, int argc, char **argv)
{
	s3_object *v;
	size_t n;
	lx_err err;
	if (s3_list(c, argc > 0 ? argv[0] : NULL, argc > 1 ? argv[1] : NULL, &v, &n, &err) < 0)
		return fail(&err);
	for (size_t i = 0; i < n; i++)
		printf("%s %" PRIu64 " %" PRId64 "\n", v[i].key, v[i].size, v[i].mtime_ms);
	s3_objects_free(v, n);
	printf("ok %zu\n", n);
	return 0;
}

static int cmd_delete(s3_client *c, int argc, char **argv)
{
	char **keys = argv, *line = NULL;
	size_t n = (size_t)argc, cap = 0;
	lx_err err;
	int rc;
	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		size_t lcap = 0;
		ssize_t l;
		keys = NULL;
		n = 0;
		while ((l = getline(&line, &lcap, stdin)) > 0) {
			if (line[l - 1] == '\n')
				line[--l] = '\0';
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				keys = realloc(keys, cap * sizeof(*keys));
			}
			keys[n++] = strdup(line);
		}
		free(line);
	}
	rc = s3_delete(c, (const char *const *)keys, n, &err);
	if (keys != argv) {
		for (size_t i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
	}
	if (rc < 0)
		return fail(&err);
	printf("ok %zu\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	s3_client *c[THREADS_MAX];
	s3_options o;
	lx_err err;
	int nclients = 1, rc;
	int64_t cancel_after = 0;
	pthread_t canceller;
	const char *cmd;
	if (argc < 2) {
		fprintf(stderr, "usage: s3_driver put|put-file|put-many|get|list|delete ARGS...\n");
		return 2;
	}
	cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (strcmp(cmd, "put-many") == 0) {
		if (argc < 2)
			return fprintf(stderr, "put-many PREFIX N [THREADS]\n"), 2;
		nclients = argc > 2 ? atoi(argv[2]) : 4;
		if (nclients < 1 || nclients > THREADS_MAX)
			nclients = 4;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	options(&o);
	/* every client before any thread: s3_open initialises libxml2 */
	for (int i = 0; i < nclients; i++)
		if (s3_open(&c[i], &o, &err) < 0)
			return fail(&err);
	if ((cancel_after = env_int("S3_CANCEL_AFTER_MS", 0)) > 0) {
		pthread_create(&canceller, NULL, cancel_later, &cancel_after);
		pthread_detach(canceller);
	}
	if (strcmp(cmd, "put") == 0 || strcmp(cmd, "put-file") == 0)
		rc = cmd_put(c[0], argc, argv, strcmp(cmd, "put-file") == 0);
	else if (strcmp(cmd, "put-many") == 0)
		rc = cmd_put_many(c, nclients, argv);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(c[0], argc, argv);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(c[0], argc, argv);
	else if (strcmp(cmd, "delete") == 0)
		rc = cmd_delete(c[0], argc, argv);
	else {
		fprintf(stderr, "s3_driver: unknown command %s\n", cmd);
		rc = 2;
	}
	print_stats(c, nclients);
	for (int i = 0; i < nclients; i++)
		s3_close(c[i]);
	curl_global_cleanup();
	return rc;
}
