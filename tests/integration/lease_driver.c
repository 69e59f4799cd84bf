/*
 * lease_driver.c - drives lease/consul.h from a test, one command per line
 * on stdin, one answer per line on stdout, so pytest can exercise the
 * client against a real Consul agent (test_lease_consul.py).
 *
 *   open URL KEY TTL_MS LOCK_DELAY_MS [TOKEN]  -> ok
 *   create | renew | destroy                   -> ok SESSION_ID
 *   acquire VALUE                              -> ok 1 EPOCH | ok 0
 *   release                                    -> ok 1 | ok 0
 *   get INDEX WAIT_MS                          -> ok INDEX absent
 *                                              |  ok INDEX present MODIFY LOCK SESSION|- VALUE
 *   cas KEY CAS VALUE                          -> ok 1 | ok 0
 * Failures answer "err ERRNO-NAME message".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lease/consul.h"

static const char *errname(int code)
{
	switch (code) {
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EAGAIN: return "EAGAIN";
	case EPROTO: return "EPROTO";
	default: return "OTHER";
	}
}

static void answer_err(const lx_err *err)
{
	printf("err %s %s\n", errname(err->code), err->msg);
}

static int do_open(consul **c, char *args, lx_err *err)
{
	consul_options o;
	char *url = strtok(args, " "), *key = strtok(NULL, " "), *ttl = strtok(NULL, " ");
	char *delay = strtok(NULL, " "), *token = strtok(NULL, " ");
	if (delay == NULL)
		return lx_err_set(err, EINVAL, "open URL KEY TTL_MS LOCK_DELAY_MS [TOKEN]");
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.key = key;
	o.token = token;
	o.session_name = "lease_driver";
	o.ttl_ms = atoll(ttl);
	o.lock_delay_ms = atoll(delay);
	o.timeout_ms = 3000;
	consul_close(*c);
	return consul_open(c, &o, err);
}

static void do_get(consul *c, char *args)
{
	uint64_t index = strtoull(strtok(args, " "), NULL, 10);
	int64_t wait = atoll(strtok(NULL, " "));
	consul_entry e;
	lx_err err;
	if (consul_get(c, NULL, &index, wait, 0, &e, &err) < 0)
		answer_err(&err);
	else if (!e.present)
		printf("ok %" PRIu64 " absent\n", index);
	else
		printf("ok %" PRIu64 " present %" PRIu64 " %" PRIu64 " %s %s\n", index,
		       e.modify_index, e.lock_index, e.session[0] ? e.session : "-", e.value);
}

static void run_line(consul **c, char *line)
{
	char *cmd = strtok(line, " "), *args = strtok(NULL, "");
	lx_err err;
	int64_t sent;
	uint64_t epoch = 0;
	int rc = 0;
	lx_err_clear(&err);
	if (strcmp(cmd, "open") == 0) {
		rc = do_open(c, args ? args : (char *)"", &err);
		if (rc == 0)
			printf("ok\n");
	} else if (*c == NULL) {
		rc = lx_err_set(&err, EINVAL, "open first");
	} else if (strcmp(cmd, "create") == 0 || strcmp(cmd, "renew") == 0) {
		rc = cmd[0] == 'c' ? consul_session_create(*c, &sent, &err)
				   : consul_session_renew(*c, &sent, &err);
		if (rc == 0)
			printf("ok %s\n", consul_session_id(*c));
	} else if (strcmp(cmd, "destroy") == 0) {
		if ((rc = consul_session_destroy(*c, &err)) == 0)
			printf("ok\n");
	} else if (strcmp(cmd, "acquire") == 0) {
		rc = consul_acquire(*c, args ? args : "", &epoch, &err);
		if (rc >= 0)
			printf("ok %d %" PRIu64 "\n", rc, epoch);
	} else if (strcmp(cmd, "release") == 0) {
		if ((rc = consul_release(*c, &err)) >= 0)
			printf("ok %d\n", rc);
	} else if (strcmp(cmd, "get") == 0 && args != NULL) {
		do_get(*c, args);
	} else if (strcmp(cmd, "cas") == 0 && args != NULL) {
		char *key = strtok(args, " "), *cas = strtok(NULL, " "), *value = strtok(NULL, "");
		rc = consul_put_cas(*c, key, value ? value : "", strtoull(cas, NULL, 10), &err);
		if (rc >= 0)
			printf("ok %d\n", rc);
	} else {
		rc = lx_err_set(&err, EINVAL, "unknown command %s", cmd);
	}
	if (rc < 0)
		answer_err(&err);
}

int main(void)
{
	char line[4096];
	consul *c = NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '\0')
			run_line(&c, line);
		fflush(stdout);
	}
	consul_close(c);
	curl_global_cleanup();
	return 0;
}
