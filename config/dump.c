/*
 * dump.c - the effective configuration as YAML (config_dump()): every key
 * in schema order, nested as the file would be, in a form config_load_*()
 * reads back to the same struct.  Secrets are never printed: a set one is
 * a comment saying so.
 */
#include "config/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A YAML double-quoted scalar that loads back to s ('$' doubled). */
static void dump_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch == '$')
			fputs("$$", out);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\x%02x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* Go-style duration text ("1h30m", "500ms", "0s") into buf. */
static const char *format_duration(uint64_t ns, char *buf, size_t cap)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} parts[] = {
		{ "h", 3600ULL * 1000000000ULL }, { "m", 60ULL * 1000000000ULL },
		{ "s", 1000000000ULL }, { "ms", 1000000ULL }, { "us", 1000ULL },
		{ "ns", 1ULL },
	};
	size_t o = 0;
	buf[0] = '\0';
	if (ns == 0)
		return "0s";
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		uint64_t n = ns / parts[i].ns;
		if (n == 0)
			continue;
		ns -= n * parts[i].ns;
		o += (size_t)snprintf(buf + o, cap - o, "%" PRIu64 "%s", n,
				      parts[i].name);
	}
	return buf;
}

/* Size text: the largest unit that divides it exactly, else bytes. */
static void dump_size(FILE *out, uint64_t v)
{
	static const char *const names[] = {
		"", "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB",
	};
	/* Indexes into config_size_units[], largest multiplier first. */
	static const int order[] = { 9, 5, 8, 4, 7, 3, 6, 2 };
	if (v != 0) {
		for (size_t j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
			int i = order[j];
			if (v % config_size_units[i].mult == 0) {
				fprintf(out, "%" PRIu64 "%s", v / config_size_units[i].mult,
					names[i]);
				return;
			}
		}
	}
	fprintf(out, "%" PRIu64, v);
}

static const char *enum_name(const enum_value *values, const void *slot)
{
	int v;
	const char *name;
	memcpy(&v, slot, sizeof(v));
	name = config_enum_name(values, v);
	return name != NULL ? name : "invalid";
}

/* True if key id has a value worth printing (unset strings are not). */
static bool dump_has(const ltxfs_config *c, enum key_id id)
{
	const void *slot = config_cfield(c, id);
	if (strncmp(config_keys[id], "lease.consul.", 13) == 0 &&
	    c->lease.type != CONFIG_LEASE_CONSUL)
		return false;
	if (strncmp(config_keys[id], "lease.etcd.", 11) == 0 && c->lease.type != CONFIG_LEASE_ETCD)
		return false;
	if (strncmp(config_keys[id], "backup.", 7) == 0 && c->backup.url == NULL)
		return false;
	if (strncmp(config_keys[id], "proxy.", 6) == 0 && c->proxy.addr == NULL)
		return false;
	/* a token read from its file shows as the file */
	if ((id == KEY_HTTP_TOKEN && c->http.token_from_file) ||
	    (id == KEY_HTTP_READ_TOKEN && c->http.read_token_from_file))
		return false;
	if (id == KEY_HTTP_TLS_CLIENT_AUTH)
		return c->http.tls.client_auth || c->http.tls.cert || c->http.tls.ca;
	switch (config_specs[id].kind) {
	case K_SECRET:
	case K_STRING:
	case K_ADDR:
	case K_URL:
		return *(char *const *)slot != NULL;
	case K_NODE_ID:
		return *(const uint64_t *)slot != 0;
	case K_EXEC:
		return c->exec.n > 0;
	case K_LIST:
		return *(char **const *)slot != NULL;
	default:
		return true;
	}
}

static void dump_value(FILE *out, const ltxfs_config *c, enum key_id id)
{
	const void *slot = config_cfield(c, id);
	char buf[96];
	switch (config_specs[id].kind) {
	case K_SECRET:              /* dump_key made it a comment */
		fputs("(set, not shown)", out);
		break;
	case K_STRING:
	case K_ADDR:
	case K_URL:
		dump_quoted(out, *(char *const *)slot);
		break;
	case K_BOOL:
		fputs(*(const bool *)slot ? "true" : "false", out);
		break;
	case K_DURATION:
		fprintf(out, "\"%s\"", format_duration(*(const uint64_t *)slot,
						       buf, sizeof(buf)));
		break;
	case K_SIZE:
		dump_size(out, *(const uint64_t *)slot);
		break;
	case K_ENUM:
		fputs(enum_name(config_specs[id].values, slot), out);
		break;
	case K_COUNT:
		fprintf(out, "%u", *(const unsigned *)slot);
		break;
	case K_NODE_ID:
		fprintf(out, "\"%016" PRIX64 "\"", *(const uint64_t *)slot);
		break;
	case K_LIST:
		fputc('[', out);
		for (char **s = *(char **const *)slot; *s != NULL; s++) {
			if (s != *(char **const *)slot)
				fputs(", ", out);
			dump_quoted(out, *s);
		}
		fputc(']', out);
		break;
	case K_EXEC:
		for (size_t i = 0; i < c->exec.n; i++) {
			const config_exec *e = &c->exec.cmds[i];
			fputs(e->if_candidate ? "\n  - cmd: " : "\n  - ", out);
			dump_quoted(out, e->cmd);
			if (e->if_candidate)
				fprintf(out, "\n    if-candidate: true\n    promote: %s",
					e->promote ? "true" : "false");
		}
		break;
	}
}

/* Length of the section part of `k` shared with `prev` ("lease.consul."
 * of "lease.consul.ttl" after "lease.consul.url"), whole segments only. */
static size_t shared_sections(const char *prev, const char *k)
{
	size_t n = 0, i = 0;
	while (prev[i] != '\0' && prev[i] == k[i]) {
		if (k[i] == '.')
			n = i + 1;
		i++;
	}
	return n;
}

/* Print the mapping lines that open the sections of `k` not already open
 * after `prev`, then "<indent>leaf:". */
static void dump_key(FILE *out, const char *prev, const char *k, bool comment)
{
	size_t from = shared_sections(prev, k);
	int depth = 0;
	for (size_t i = 0; i < from; i++)
		depth += k[i] == '.';
	for (const char *seg = k + from, *dot; (dot = strchr(seg, '.')) != NULL; seg = dot + 1) {
		fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)(dot - seg), seg);
		depth++;
	}
	fprintf(out, "%*s%s%s:", 2 * depth, "", comment ? "# " : "",
		strrchr(k, '.') ? strrchr(k, '.') + 1 : k);
}

int config_dump(const ltxfs_config *c, FILE *out)
{
	const char *prev = "";
	if (c->origin != NULL) {
		fputs("# effective configuration, loaded from ", out);
		dump_quoted(out, c->origin);
		fputc('\n', out);
	}
	for (int i = 0; i < KEY_COUNT; i++) {
		if (!dump_has(c, (enum key_id)i))
			continue;
		dump_key(out, prev, config_keys[i], config_specs[i].kind == K_SECRET);
		prev = config_keys[i];
		if (config_specs[i].kind != K_EXEC)
			fputc(' ', out);
		dump_value(out, c, (enum key_id)i);
		fputc('\n', out);
	}
	fflush(out);
	return ferror(out) ? -EIO : 0;
}
