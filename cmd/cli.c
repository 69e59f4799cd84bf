/*
 * cli.c - talking to a running node from the command line (see cli.h).
 */
#include "cmd/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cmd/config.h"

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

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	cli_response *r = arg;
	size_t len = size * nmemb;
	char *b = realloc(r->body, r->len + len + 1);
	if (b == NULL)
		return 0;
	memcpy(b + r->len, p, len);
	r->body = b;
	r->len += len;
	b[r->len] = '\0';
	return len;
}

/* A 200 body goes to the download file; any other to r->body. */
typedef struct sink {
	cli_response *r;
	FILE *download;
	CURL *curl;
} sink;

static size_t write_body(char *p, size_t size, size_t nmemb, void *arg)
{
	sink *s = arg;
	long status = 0;
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (s->download != NULL && status == 200)
		return fwrite(p, size, nmemb, s->download) * size;
	return collect(p, size, nmemb, s->r);
}

static void header_value(const char *line, size_t len, const char *name, char *out,
			 size_t cap)
{
	size_t n = strlen(name);
	if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	snprintf(out, cap, "%.*s", (int)len, line);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	cli_response *r = arg;
	size_t len = size * nmemb;
	header_value(p, len, "Ltxfs-Txid", r->txid, sizeof(r->txid));
	header_value(p, len, "Ltxfs-Checksum", r->checksum, sizeof(r->checksum));
	return len;
}

int cli_request(const cli_target *t, const char *method, const char *path, FILE *upload,
		FILE *download, long timeout_s, cli_response *r)
{
	char url[CLI_URL_MAX + 256];
	CURL *curl;
	CURLcode cc;
	sink s;
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", t->url, path);
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(r->curl_error, sizeof(r->curl_error), "out of memory");
		return -1;
	}
	s = (sink){ r, download, curl };
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
	if (upload != NULL) {
		fseeko(upload, 0, SEEK_END);
		curl_off_t size = (curl_off_t)ftello(upload);
		rewind(upload);
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READDATA, upload);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, size);
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(curl);
	if (cc != CURLE_OK) {
		snprintf(r->curl_error, sizeof(r->curl_error), "%s", curl_easy_strerror(cc));
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
	json_t *o;
	const char *msg;
	if (r->curl_error[0] != '\0' && r->status == 0) {
		fprintf(stderr, "ltxfs %s: cannot reach the node at %s: %s\n"
			"  Is ltxfs running there? Name the node with -url URL (its http.addr), "
			"or -config FILE.\n", cmd, t->url, r->curl_error);
		return;
	}
	if (r->curl_error[0] != '\0') {
		fprintf(stderr, "ltxfs %s: %s: the transfer failed: %s\n", cmd, t->url,
			r->curl_error);
		return;
	}
	o = r->body ? json_loads(r->body, 0, NULL) : NULL;
	msg = json_string_value(json_object_get(o, "error"));
	fprintf(stderr, "ltxfs %s: %s answered %ld: %s\n", cmd, t->url, r->status,
		msg ? msg : (r->body ? r->body : "(no body)"));
	json_decref(o);
}
