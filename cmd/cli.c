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

#include "config/config.h"
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
static void url_of_addr(const char *addr, int https, char *out, size_t cap)
{
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	const char *port = colon ? colon + 1 : "20202";
	const char *scheme = https ? "https" : "http";
	if (hl == 0 || (hl == 7 && strncmp(addr, "0.0.0.0", 7) == 0))
		snprintf(out, cap, "%s://127.0.0.1:%s", scheme, port);
	else if ((hl == 4 && strncmp(addr, "[::]", 4) == 0))
		snprintf(out, cap, "%s://[::1]:%s", scheme, port);
	else
		snprintf(out, cap, "%s://%.*s:%s", scheme, (int)hl, addr, port);
}

/* Copy an optional string into a fixed field; -1 if it does not fit. */
static int copy_field(char *out, size_t cap, const char *s)
{
	out[0] = '\0';
	if (s == NULL)
		return 0;
	if (strlen(s) >= cap)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* The configuration's credentials (and its address unless -url). */
static int from_config(cli_target *t, const ltxfs_config *c, const char *cmd)
{
	if (!t->explicit_url)
		url_of_addr(c->http.addr, c->http.tls.cert != NULL, t->url, sizeof(t->url));
	if (copy_field(t->token, sizeof(t->token), c->http.token) < 0 ||
	    copy_field(t->tls_ca, sizeof(t->tls_ca), c->http.tls.ca) < 0 ||
	    copy_field(t->tls_cert, sizeof(t->tls_cert), c->http.tls.cert) < 0 ||
	    copy_field(t->tls_key, sizeof(t->tls_key), c->http.tls.key) < 0) {
		fprintf(stderr, "ltxfs %s: http.token or an http.tls path is too long\n", cmd);
		return -1;
	}
	return 0;
}

int cli_target_resolve(cli_target *t, const char *cmd)
{
	const char *path = t->config, *env = getenv("LTXFS_TOKEN");
	ltxfs_config c;
	lx_err err;
	int rc = 0;
	if (t->explicit_url) {
		size_t n = strlen(t->url);
		while (n > 0 && t->url[n - 1] == '/')
			t->url[--n] = '\0';
	}
	if (path == NULL && access(DEFAULT_CONFIG, R_OK) == 0)
		path = DEFAULT_CONFIG;
	if (path == NULL) {
		if (!t->explicit_url)
			snprintf(t->url, sizeof(t->url), "%s", DEFAULT_URL);
	} else if (config_load_file(&c, path, &err) < 0) {
		/* With -url, an unreadable default configuration only means
		 * no credentials from it. */
		if (t->config != NULL || !t->explicit_url) {
			fprintf(stderr, "ltxfs %s: %s (give the node with -url URL instead)\n",
				cmd, err.msg);
			return -1;
		}
	} else {
		rc = from_config(t, &c, cmd);
		config_free(&c);
	}
	if (rc == 0 && env != NULL && env[0] != '\0' &&
	    copy_field(t->token, sizeof(t->token), env) < 0) {
		fprintf(stderr, "ltxfs %s: LTXFS_TOKEN is too long\n", cmd);
		rc = -1;
	}
	return rc;
}

/* Where this command's calls get TLS trust and identity and the bearer
 * token: the one place they are built for the command line. */
static void cli_http_options(const cli_target *t, http_client_options *o)
{
	memset(o, 0, sizeof(*o));
	o->token = t->token[0] != '\0' ? t->token : NULL;
	o->tls_ca = t->tls_ca[0] != '\0' ? t->tls_ca : NULL;
	o->tls_cert = t->tls_cert[0] != '\0' ? t->tls_cert : NULL;
	o->tls_key = t->tls_key[0] != '\0' ? t->tls_key : NULL;
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
