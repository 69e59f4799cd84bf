/*
 * values.c - one value of the configuration: the parsers of booleans,
 * durations, sizes, counts, node IDs, listen addresses and URLs (config.h
 * and internal.h state what each accepts), and quoting a value for a
 * message.  Pure functions: no allocation except libcurl's URL handle.
 */
#include "config/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

const char *config_show(char *buf, size_t cap, const char *s, size_t len)
{
	size_t o = 0;
	buf[o++] = '"';
	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i == SHOW_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	if (s == NULL)
		return -EINVAL;
	for (int i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 }, /* U+03BC greek small letter mu */
	{ "ms", 1000000 },
	{ "s", 1000000000ULL },
	{ "m", 60ULL * 1000000000ULL },
	{ "h", 3600ULL * 1000000000ULL },
};

static uint64_t duration_unit(const char *u, size_t n)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
		if (strlen(duration_units[i].name) == n &&
		    memcmp(duration_units[i].name, u, n) == 0)
			return duration_units[i].ns;
	return 0;
}

/*
 * Parse one "<number><unit>" term at *sp into *ns and advance *sp.
 * Digits past the 18th after the decimal point are ignored.
 */
static int duration_term(const char **sp, uint64_t *ns)
{
	const char *s = *sp, *u;
	uint64_t whole = 0, frac = 0, scale = 1, unit, v;
	bool digits = false;

	for (; is_digit(*s); s++, digits = true) {
		unsigned d = (unsigned)(*s - '0');
		if (whole > (UINT64_MAX - d) / 10)
			return -ERANGE;
		whole = whole * 10 + d;
	}
	if (*s == '.') {
		for (s++; is_digit(*s); s++, digits = true) {
			if (scale < 1000000000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
	}
	if (!digits)
		return -EINVAL;
	for (u = s; *s != '\0' && !is_digit(*s) && *s != '.'; s++)
		;
	unit = duration_unit(u, (size_t)(s - u));
	if (unit == 0)
		return -EINVAL;
	if (whole > UINT64_MAX / unit)
		return -ERANGE;
	v = whole * unit;
	if (frac != 0) {
		/* < unit, so it fits; double precision is ample here. */
		uint64_t f = (uint64_t)((double)frac * ((double)unit / (double)scale));
		if (v > UINT64_MAX - f)
			return -ERANGE;
		v += f;
	}
	*ns = v;
	*sp = s;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t total = 0;
	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	while (*s != '\0') {
		uint64_t v;
		int rc = duration_term(&s, &v);
		if (rc != 0)
			return rc;
		if (v > (uint64_t)INT64_MAX - total)
			return -ERANGE;
		total += v;
	}
	*ns = total;
	return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n = 0;
	const char *p = s;
	if (s == NULL || !is_digit(*s))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	if (*p == ' ' && p[1] != '\0')
		p++;
	for (size_t i = 0; i < config_n_size_units; i++) {
		if (strcasecmp(p, config_size_units[i].name) != 0)
			continue;
		if (n > UINT64_MAX / config_size_units[i].mult)
			return -ERANGE;
		*bytes = n * config_size_units[i].mult;
		return 0;
	}
	return -EINVAL;
}

int config_parse_node_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (strlen(s) != 16)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		unsigned d;
		if (is_digit(ch))
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	if (v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int config_parse_count(const char *s, unsigned *out)
{
	unsigned long v = 0;
	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (!is_digit(*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > CONFIG_COUNT_MAX)
			return -ERANGE;
	}
	*out = (unsigned)v;
	return 0;
}

/* Parse a decimal port 1..65535 occupying all of s; -1 if it is not. */
static int parse_port(const char *s)
{
	int port = 0;
	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (!is_digit(*s))
			return -1;
		port = port * 10 + (*s - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

static bool is_host_char(char ch)
{
	return is_name_char(ch) || ch == '-' || ch == '.';
}

int config_addr_port(const char *s)
{
	const char *colon, *p;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb == s + 1 || rb[1] != ':')
			return -1;
		for (p = s + 1; p < rb; p++)
			if (!(is_host_char(*p) || *p == ':' || *p == '%'))
				return -1;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		for (p = s; p < colon; p++)
			if (!is_host_char(*p))
				return -1;
	}
	return parse_port(colon + 1);
}

/* True if the URL handle's `part` is set (user, password, ...). */
static bool url_has(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	bool has = curl_url_get(u, part, &v, 0) == CURLUE_OK;
	curl_free(v);
	return has;
}

/* The port libcurl found in `u` is absent or 1-65535 (it accepts 0). */
static bool url_port_ok(CURLU *u)
{
	char *port = NULL;
	CURLUcode rc = curl_url_get(u, CURLUPART_PORT, &port, 0);
	bool ok = rc == CURLUE_NO_PORT || (rc == CURLUE_OK && parse_port(port) > 0);
	curl_free(port);
	return ok;
}

/* The host of `u` into host[HOST_MAX], without the brackets of an IPv6
 * address. */
static int url_copy_host(CURLU *u, char *host)
{
	char *h = NULL;
	size_t n;
	int rc = -1;
	if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK)
		return -1;
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		memmove(h, h + 1, n - 2);
		n -= 2;
	}
	if (n > 0 && n < HOST_MAX) {
		memcpy(host, h, n);
		host[n] = '\0';
		rc = 0;
	}
	curl_free(h);
	return rc;
}

/* The scheme libcurl found is http or https, and the text spells it
 * "scheme://" (libcurl would also take "http:/host"). */
static bool url_scheme_ok(CURLU *u, const char *url)
{
	char *scheme = NULL;
	bool ok = false;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0)) {
		size_t n = strlen(scheme);
		ok = strncasecmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
	}
	curl_free(scheme);
	return ok;
}

int config_url_host(const char *url, char *host)
{
	char unused[HOST_MAX];
	CURLU *u = curl_url();
	int rc = -1;
	if (u == NULL)
		return -1;
	/* Without CURLU_ALLOW_SPACE, libcurl refuses blanks and control
	 * characters anywhere in the URL. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    url_scheme_ok(u, url) && url_port_ok(u) && !url_has(u, CURLUPART_USER) &&
	    !url_has(u, CURLUPART_PASSWORD) && !url_has(u, CURLUPART_OPTIONS))
		rc = url_copy_host(u, host != NULL ? host : unused);
	curl_url_cleanup(u);
	return rc;
}

const char *config_enum_name(const enum_value *values, int v)
{
	for (const enum_value *e = values; e->name != NULL; e++)
		if (e->supported && e->value == v)
			return e->name;
	return NULL;
}
