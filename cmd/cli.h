/*
 * cli.h - what the commands that talk to a running node share: which node
 * (-url), the HTTP exchange, and error messages that say what to do.
 *
 * The node is -url URL; else the http.addr of -config FILE; else that of
 * /etc/ltxfs.yml when it exists; else http://127.0.0.1:20202 (the default
 * http.addr).  A wildcard listen address (":20202", "0.0.0.0:...") is
 * reached on the loopback address, over HTTPS when the configuration
 * has http.tls.cert.
 *
 * Credentials: the bearer token is LTXFS_TOKEN, else the configuration's
 * http.token (or http.token-file); TLS trust (http.tls.ca) and identity
 * (http.tls.cert and key, for nodes that require client certificates)
 * come from the configuration too.  With -url and no -config, the
 * configuration is /etc/ltxfs.yml when it can be read, else none.
 *
 * Single-threaded command-line code: no state outside the structs.
 */
#ifndef LTXFS_CMD_CLI_H
#define LTXFS_CMD_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

#define CLI_URL_MAX 1024

#define CLI_SECRET_MAX 1024
#define CLI_PATH_MAX 4096

typedef struct cli_target {
	char url[CLI_URL_MAX];      /* base URL, no trailing slash */
	const char *config;         /* -config FILE, or NULL */
	int explicit_url;
	/* Filled by cli_target_resolve(); "" = none. */
	char token[CLI_SECRET_MAX];
	char tls_ca[CLI_PATH_MAX], tls_cert[CLI_PATH_MAX], tls_key[CLI_PATH_MAX];
} cli_target;

/* 1 for -h, -help, --help. */
int cli_is_help(const char *arg);

/* argv[*i] is -url or -config: consume it (and its value); 1 if it was. */
int cli_target_flag(cli_target *t, int argc, char **argv, int *i);

/* Fill t->url when -url was not given, and the credentials; 0, or -1
 * after printing why. */
int cli_target_resolve(cli_target *t, const char *cmd);

typedef struct cli_response {
	long status;                /* HTTP status, 0 when no answer came */
	char *body;                 /* the body (NUL-terminated) unless it went to a file */
	size_t len;
	char txid[24], checksum[24];/* Ltxfs-Txid / Ltxfs-Checksum headers, if sent */
	char error[LX_ERR_MSG_MAX]; /* why no (complete) answer came */
} cli_response;

/*
 * One request to t->url + path.  `upload`: a file sent as the body (POST),
 * or NULL; `download`: where a 200 body goes instead of r->body, or NULL.
 * Returns 0 when an answer came (any status), -1 when none did or it was
 * not complete (r->error says why; an answer longer than the client's
 * limit is such an error).  Calls go through net/http_client.h.
 */
int cli_request(const cli_target *t, const char *method, const char *path, FILE *upload,
		FILE *download, long timeout_s, cli_response *r);
void cli_response_free(cli_response *r);

/* Print "ltxfs CMD: ..." for a failed exchange: the node's own error
 * message, or why it could not be reached and what to check. */
void cli_report(const char *cmd, const cli_target *t, const cli_response *r);

#endif
