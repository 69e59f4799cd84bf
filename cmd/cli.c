/*
 * cli.c - talking to a running node from the command line (see cli.h).
 */
#include "cmd/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/config.h"
#include "net/http_client.h"

#define DEFAULT_CONFIG "/etc/ltxfs.yml"
#define DEFAULT_URL "http://127.0.0.1:20202"

int cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "-help") == 0 || strcmp(arg, "--help") == 0;
}

int cli_target_flag(cli_target *t, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (*i + 1 >= argc)
		return 0;
	if (strcmp(a, "-url") == 0 || strcmp(a, "--url") == 0) {
		snprintf(t->url, sizeof(t->url), "%s", argv[++*i]);
		t->explicit_url = 1;
		return 1;
	}
	if (strcmp(a, "-config") == 0 || strcmp(a, "--config") == 0) {
		t->config = argv[++*i];
		return 1;
	}
	return 0;
}

/* http.addr as a URL: a wildcard host is reached on the loopback. */
static void url_of_addr(const char *addr, char *out, size_t cap)
{
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	const char *port = colon ? colon + 1 : "20202";
	if (hl == 0 || (hl == 7 && strncmp(addr, "0.0.0.0", 7) == 0))
		snprintf(out, cap, "http://127.0.0.1:%s", port);
	else if ((hl == 4 && strncmp(addr, "[::]", 4) == 0))
		snprintf(out, cap, "http://[::1]:%s", port);
	else
		snprintf(out, cap, "http://%.*s:%s", (int)hl, addr, port);
}

int cli_target_resolve(cli_target *t, const char *cmd)
{
	const char *path = t->config;
	ltxfs_config c;
	lx_err err;
	if (t->explicit_url) {
		size_t n = strlen(t->url);
		while (n > 0 && t->url[n - 1] == '/')
			t->url[--n] = '\0';
		return 0;
	}
	if (path == NULL && access(DEFAULT_CONFIG, R_OK) == 0)
		path = DEFAULT_CONFIG;
	if (path == NULL) {
		snprintf(t->url, sizeof(t->url), "%s", DEFAULT_URL);
		return 0;
	}
	if (config_load_file(&c, path, &err) < 0) {
		fprintf(stderr, "ltxfs %s: %s (give the node with -url URL instead)\n", cmd,
			err.msg);
		return -1;
	}
	url_of_addr(c.http.addr, t->url, sizeof(t->url));
	config_free(&c);
	return 0;
}

/* Where this command's calls get TLS trust and identity and the bearer
 * token: the one place they are built for the command line, to be filled
 * from http.* configuration (and LTXFS_TOKEN); none yet. */
static void cli_http_options(const cli_target *t, http_client_options *o)
{
	(void)t;
	memset(o, 0, sizeof(*o));
}

/* A 2xx body, to the download file. */
static int to_file(void *arg, const char *data, size_t len)
{
	return fwrite(data, 1, len, arg) == len ? 0 : -1;
}

/* Ltxfs-Txid and Ltxfs-Checksum, for export's check. */
static void on_header(void *arg, const char *name, size_t name_len, const char *value,
		      size_t value_len)
{
	cli_response *r = arg;
	if (name_len == 10 && strncasecmp(name, "Ltxfs-Txid", 10) == 0)
		snprintf(r->txid, sizeof(r->txid), "%.*s", (int)value_len, value);
	else if (name_len == 14 && strncasecmp(name, "Ltxfs-Checksum", 14) == 0)
		snprintf(r->checksum, sizeof(r->checksum), "%.*s", (int)value_len, value);
}

int cli_request(const cli_target *t, const char *method, const char *path, FILE *upload,
		FILE *download, long timeout_s, cli_response *r)
{
	char url[CLI_URL_MAX + 256];
	http_client_options o;
	http_request q;
	http_response a;
	lx_err err;
	int rc;
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", t->url, path);
	cli_http_options(t, &o);
	memset(&q, 0, sizeof(q));
	q.method = method;
	q.url = url;
	q.upload = upload;
	q.timeout_ms = (int64_t)timeout_s * 1000;
	q.body_max = HTTP_BODY_MAX_DOCUMENT;       /* /status: a row per database */
	q.on_header = on_header;
	q.header_arg = r;
	if (download != NULL) {
		q.sink = to_file;
		q.sink_arg = download;
	}
	rc = http_fetch(&o, &q, &a, &err);
	r->status = a.status;
	r->body = a.body;                /* the caller's now */
	r->len = a.len;
	if (rc < 0) {
		snprintf(r->error, sizeof(r->error), "%s", rc == -ECANCELED ?
			 "writing the downloaded file failed" : err.msg);
		return -1;
	}
	return 0;
}

void cli_response_free(cli_response *r)
{
	free(r->body);
	r->body = NULL;
}

void cli_report(const char *cmd, const cli_target *t, const cli_response *r)
{
	http_response a = { 0 };
	char msg[256];
	if (r->error[0] != '\0' && r->status == 0) {
		fprintf(stderr, "ltxfs %s: cannot reach the node at %s: %s\n"
			"  Is ltxfs running there? Name the node with -url URL (its http.addr), "
			"or -config FILE.\n", cmd, t->url, r->error);
		return;
	}
	if (r->error[0] != '\0') {
		fprintf(stderr, "ltxfs %s: %s: the transfer failed: %s\n", cmd, t->url,
			r->error);
		return;
	}
	a.status = r->status;
	a.body = r->body;
	a.len = r->len;
	http_body_excerpt(&a, msg, sizeof(msg));
	fprintf(stderr, "ltxfs %s: %s answered %ld: %s\n", cmd, t->url, r->status, msg);
}
