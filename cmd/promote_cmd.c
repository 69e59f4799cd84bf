/*
 * promote_cmd.c - `ltxfs promote` (see promote_cmd.h).
 */
#include "cmd/promote_cmd.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

static const char usage[] = "usage: ltxfs promote [-url URL]  (default http://127.0.0.1:20202)\n";

typedef struct answer {
	char body[4096];
	size_t len;
} answer;

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
	answer *a = arg;
	size_t len = size * nmemb, room = sizeof(a->body) - 1 - a->len;
	memcpy(a->body + a->len, p, len < room ? len : room);
	a->len += len < room ? len : room;
	a->body[a->len] = '\0';
	return len;
}

int cmd_promote(int argc, char **argv)
{
	const char *base = "http://127.0.0.1:20202";
	char url[1024];
	answer a = { "", 0 };
	long status = 0;
	CURLcode cc;
	CURL *curl;
	json_t *o;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-url") == 0 || strcmp(argv[i], "--url") == 0) && i + 1 < argc) {
			base = argv[++i];
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	snprintf(url, sizeof(url), "%s/promote", base);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	if (cc != CURLE_OK) {
		fprintf(stderr, "ltxfs promote: %s: %s (is the node running, and is -url its "
			"http.addr?)\n", url, curl_easy_strerror(cc));
		return 1;
	}
	o = json_loads(a.body, 0, NULL);
	if (status != 200) {
		const char *msg = json_string_value(json_object_get(o, "error"));
		fprintf(stderr, "ltxfs promote: %s: %s\n", base, msg ? msg : a.body);
		json_decref(o);
		return 1;
	}
	json_decref(o);
	printf("%s is the primary now\n", base);
	return 0;
}
