/*
 * load.c - loading the configuration: the YAML text (a string or a file
 * of at most CONFIG_MAX_FILE_SIZE bytes) becomes a libyaml document tree,
 * walked against the schema (keys.c): a mapping whose dotted name is a
 * prefix of known keys is a section and is walked recursively; a known
 * key's scalar is expanded (expand.c), parsed by its kind (values.c) and
 * stored; anything else is an unknown key, with a hint when a known key
 * is close.  The walk only descends into sections the schema knows, so
 * its depth is bounded whatever the document holds (aliases included).
 * Then config_resolve() (check.c) checks and fills the defaults.
 *
 * On any failure a load leaves the struct zeroed with nothing allocated,
 * and the message says where: "origin:line:column: ...".
 */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

/*
 * LiteFS settings ltxfs does not have; naming them in the "unknown key"
 * message tells a LiteFS user the key was understood, just not supported.
 */
static const char *const litefs_only_keys[] = {
	"exit-on-error", "skip-sync", "strict-verify", "backup",
	"tracing", "data.compress", "data.retention-monitor-interval",
	"http.snapshot-timeout", "lease.promote", "lease.reconnect-delay",
	"lease.demote-delay", "lease.databases",
	"log.format", "log.timestamp", "log.debug", NULL,
};

static int find_key(const char *name)
{
	for (int i = 0; i < KEY_COUNT; i++)
		if (strcmp(config_keys[i], name) == 0)
			return i;
	return -1;
}

/* True if `name` is a section: some known key starts with "name.". */
static bool is_section(const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < KEY_COUNT; i++)
		if (strncmp(config_keys[i], name, n) == 0 &&
		    config_keys[i][n] == '.')
			return true;
	return false;
}

typedef struct walk {
	ltxfs_config *c;
	const char *origin;
	yaml_document_t *doc;
	config_env env;
	lx_err *err;
} walk;

/* Record EINVAL with "origin:line:col: " and the formatted message. */
static int at_err(walk *w, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int at_err(walk *w, yaml_mark_t m, const char *fmt, ...)
{
	char msg[LX_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lx_err_set(w->err, EINVAL, "%s:%zu:%zu: %s", w->origin,
			  m.line + 1, m.column + 1, msg);
}

/* Prefix the message of failure rc (from a function that knows no
 * position) with "origin:line:col: ". */
static int at_wrap(walk *w, yaml_mark_t m, int rc)
{
	if (rc < 0 && w->err != NULL)
		lx_err_wrap(w->err, "%s:%zu:%zu", w->origin, m.line + 1, m.column + 1);
	return rc;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a sequence";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

/* The expanded text of scalar node v (error if not a scalar). */
static int scalar_value(walk *w, const char *key, const yaml_node_t *v,
			const char *expect, char **out)
{
	const char *s = (const char *)v->data.scalar.value;
	size_t n = v->data.scalar.length;
	if (v->type != YAML_SCALAR_NODE)
		return at_err(w, v->start_mark, "%s: expected %s, got %s", key,
			      expect, node_kind(v));
	if (memchr(s, '\0', n) != NULL)
		return at_err(w, v->start_mark, "%s: value contains a NUL character", key);
	return at_wrap(w, v->start_mark, config_expand(&w->env, key, s, n, out, w->err));
}

static int set_string(walk *w, char **slot, const char *val)
{
	char *copy = strdup(val);
	if (copy == NULL)
		return lx_err_set(w->err, ENOMEM, "%s: out of memory", w->origin);
	free(*slot);
	*slot = copy;
	return 0;
}

/* Message tail listing the supported values of an enum key. */
static void enum_choices(const enum_value *values, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (const enum_value *e = values; e->name != NULL && o < cap; e++)
		if (e->supported)
			o += (size_t)snprintf(buf + o, cap - o, "%s%s",
					      o ? ", " : "", e->name);
}

static int set_enum(walk *w, yaml_mark_t m, const char *key,
		    const enum_value *values, void *slot, const char *val)
{
	char choices[128], shown[SHOW_BUF];
	enum_choices(values, choices, sizeof(choices));
	for (const enum_value *e = values; e->name != NULL; e++) {
		if (strcmp(e->name, val) != 0)
			continue;
		if (!e->supported)
			return at_err(w, m, "%s: \"%s\" is not yet supported in "
				      "this build (supported: %s)", key, e->name, choices);
		memcpy(slot, &e->value, sizeof(int));
		return 0;
	}
	return at_err(w, m, "%s: %s is not one of %s", key,
		      config_show(shown, sizeof(shown), val, strlen(val)), choices);
}

/* Parse `val`, a value of one of the kinds below, into *slot. */
static int parse_kind(enum key_kind kind, const char *val, void *slot)
{
	uint64_t u;
	int rc;
	switch (kind) {
	case K_BOOL:
		return config_parse_bool(val, slot);
	case K_COUNT:
		return config_parse_count(val, slot);
	case K_DURATION:
		rc = config_parse_duration(val, &u);
		break;
	case K_SIZE:
		rc = config_parse_size(val, &u);
		break;
	case K_NODE_ID:
		rc = config_parse_node_id(val, &u);
		break;
	default:
		return -EINVAL;
	}
	if (rc == 0)
		memcpy(slot, &u, sizeof(u));
	return rc;
}

_Static_assert(CONFIG_COUNT_MAX == 1000000u, "the message below says so");

/* For the messages "KEY: "VALUE" is not <what>" and "... is too <what>". */
static const char *const kind_what[] = {
	[K_BOOL] = "a boolean (use true/false, yes/no or on/off)",
	[K_DURATION] = "a duration (a number with unit ns, us, ms, s, m or h, e.g. "
		       "\"10m\" or \"1m30s\")",
	[K_SIZE] = "a size (bytes, or a number with unit B, KB, MB, GB, TB, KiB, MiB, "
		   "GiB or TiB, e.g. \"512MB\" or \"1GiB\")",
	[K_ADDR] = "host:port or :port (port 1-65535)",
	[K_URL] = "an http:// or https:// URL with a host",
	[K_COUNT] = "a whole number",
	[K_NODE_ID] = "a non-zero node ID of 16 hex digits",
};
static const char *const kind_too[] = {
	[K_DURATION] = "long a duration",
	[K_SIZE] = "large",
	[K_COUNT] = "large (at most 1000000)",
};

/* Parse `val` according to the kind of key `id` and store it. */
static int apply_value(walk *w, enum key_id id, yaml_mark_t m, const char *val)
{
	const char *key = config_keys[id];
	enum key_kind kind = config_specs[id].kind;
	void *slot = config_field(w->c, id);
	char shown[SHOW_BUF];
	int rc;

	switch (kind) {
	case K_STRING:
	case K_SECRET:
		if (*val == '\0')
			return at_err(w, m, "%s: must not be empty", key);
		return set_string(w, slot, val);
	case K_ENUM:
		return set_enum(w, m, key, config_specs[id].values, slot, val);
	case K_ADDR:
	case K_URL:
		rc = kind == K_ADDR ? config_addr_port(val) : config_url_host(val, NULL);
		if (rc >= 0)
			return set_string(w, slot, val);
		break;
	case K_EXEC:
	case K_LIST:
		return at_err(w, m, "%s: internal error: bad key kind", key);
	default:
		rc = parse_kind(kind, val, slot);
		if (rc == 0)
			return 0;
		break;
	}
	config_show(shown, sizeof(shown), val, strlen(val));
	if (rc == -ERANGE)
		return at_err(w, m, "%s: %s is too %s", key, shown, kind_too[kind]);
	return at_err(w, m, "%s: %s is not %s", key, shown, kind_what[kind]);
}

/* The key of an earlier pair of the map equal to that of pair p, or NULL. */
static const yaml_node_t *earlier_key(walk *w, const yaml_node_t *map,
				      const yaml_node_pair_t *p,
				      const yaml_node_t *key)
{
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
		const yaml_node_t *k = yaml_document_get_node(w->doc, q->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    k->data.scalar.length == key->data.scalar.length &&
		    memcmp(k->data.scalar.value, key->data.scalar.value,
			   key->data.scalar.length) == 0)
			return k;
	}
	return NULL;
}

/* Append one entry to c->exec (taking ownership of e->cmd on success). */
static int exec_append(walk *w, const config_exec *e)
{
	config_exec *cmds = realloc(w->c->exec.cmds,
				    (w->c->exec.n + 1) * sizeof(*cmds));
	if (cmds == NULL)
		return lx_err_set(w->err, ENOMEM, "%s: out of memory", w->origin);
	w->c->exec.cmds = cmds;
	cmds[w->c->exec.n++] = *e;
	return 0;
}

/* The command string of an exec entry: a non-empty scalar. */
static int exec_cmd_string(walk *w, const char *label, const yaml_node_t *v, char **out)
{
	int rc = scalar_value(w, label, v, "a command string", out);
	if (rc == 0 && (*out)[0] == '\0') {
		free(*out);
		*out = NULL;
		rc = at_err(w, v->start_mark, "%s: command must not be empty", label);
	}
	return rc;
}

/* A boolean flag of an exec mapping ("exec[0].if-candidate"). */
static int exec_flag(walk *w, const char *label, const yaml_node_t *v, bool *out)
{
	char *val = NULL;
	int rc = scalar_value(w, label, v, "a boolean", &val);
	if (rc == 0 && config_parse_bool(val, out) != 0)
		rc = at_err(w, v->start_mark, "%s: expected a boolean (true or false)", label);
	free(val);
	return rc;
}

/* One pair of an exec mapping: cmd, if-candidate or promote. */
static int exec_field(walk *w, const char *label, const yaml_node_t *map,
		      const yaml_node_pair_t *p, config_exec *e)
{
	const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
	const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
	char name[96];
	if (k == NULL || v == NULL)
		return at_err(w, map->start_mark, "%s: malformed mapping", label);
	if (k->type != YAML_SCALAR_NODE)
		return at_err(w, k->start_mark, "%s: keys must be strings, got %s", label,
			      node_kind(k));
	snprintf(name, sizeof(name), "%s.%.*s", label, (int)k->data.scalar.length,
		 (const char *)k->data.scalar.value);
	if (earlier_key(w, map, p, k) != NULL)
		return at_err(w, k->start_mark, "duplicate key \"%s\"", name);
	if (strcmp(name + strlen(label), ".cmd") == 0) {
		free(e->cmd);
		e->cmd = NULL;
		return exec_cmd_string(w, name, v, &e->cmd);
	}
	if (strcmp(name + strlen(label), ".if-candidate") == 0)
		return exec_flag(w, name, v, &e->if_candidate);
	if (strcmp(name + strlen(label), ".promote") == 0)
		return exec_flag(w, name, v, &e->promote);
	return at_err(w, k->start_mark, "%s: an exec entry has only cmd, if-candidate "
		      "and promote", name);
}

/* One exec entry: a command string, or {cmd, if-candidate, promote}. */
static int exec_entry(walk *w, const char *label, const yaml_node_t *v)
{
	config_exec e = { NULL, false, false };
	int rc = 0;
	if (v->type != YAML_MAPPING_NODE) {
		rc = exec_cmd_string(w, label, v, &e.cmd);
	} else {
		for (const yaml_node_pair_t *p = v->data.mapping.pairs.start;
		     rc == 0 && p < v->data.mapping.pairs.top; p++)
			rc = exec_field(w, label, v, p, &e);
		if (rc == 0 && e.cmd == NULL)
			rc = at_err(w, v->start_mark, "%s: cmd is required", label);
		if (rc == 0 && e.promote && !e.if_candidate)
			rc = at_err(w, v->start_mark, "%s: promote needs if-candidate: true "
				    "(only a candidate can take the primary role)", label);
	}
	if (rc == 0)
		rc = exec_append(w, &e);
	if (rc != 0)
		free(e.cmd);
	return rc;
}

/* exec: a single entry or a sequence of them. */
static int set_exec(walk *w, const yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return exec_entry(w, "exec", v);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		char label[32];
		const yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		int rc;
		snprintf(label, sizeof(label), "exec[%zu]",
			 (size_t)(it - v->data.sequence.items.start));
		if (item == NULL)
			return at_err(w, v->start_mark, "%s: missing item", label);
		rc = exec_entry(w, label, item);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* One string of a K_LIST key, appended to its NULL-terminated array. */
static int list_append(walk *w, enum key_id id, const yaml_node_t *item, size_t i)
{
	char ***slot = config_field(w->c, id), **v, label[96], *val = NULL;
	size_t n = 0;
	int rc;
	snprintf(label, sizeof(label), "%s[%zu]", config_keys[id], i);
	rc = scalar_value(w, label, item, "a string", &val);
	if (rc != 0)
		return rc;
	if (*val == '\0') {
		free(val);
		return at_err(w, item->start_mark, "%s: must not be empty", label);
	}
	while (*slot != NULL && (*slot)[n] != NULL)
		n++;
	v = realloc(*slot, (n + 2) * sizeof(char *));
	if (v == NULL) {
		free(val);
		return at_err(w, item->start_mark, "out of memory");
	}
	v[n] = val;
	v[n + 1] = NULL;
	*slot = v;
	return 0;
}

/* A K_LIST key: one string, or a sequence of them. */
static int set_list(walk *w, enum key_id id, const yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return list_append(w, id, v, 0);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		const yaml_node_t *item = yaml_document_get_node(w->doc, *it);
		int rc = item == NULL ? at_err(w, v->start_mark, "%s: missing item", config_keys[id]) :
			 list_append(w, id, item, (size_t)(it - v->data.sequence.items.start));
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int set_key(walk *w, enum key_id id, const yaml_node_t *v)
{
	char *val = NULL;
	const char *expect = config_specs[id].kind == K_BOOL ? "a boolean" : "a scalar";
	int rc;
	if (config_specs[id].kind == K_EXEC)
		return set_exec(w, v);
	if (config_specs[id].kind == K_LIST)
		return set_list(w, id, v);
	rc = scalar_value(w, config_keys[id], v, expect, &val);
	if (rc == 0)
		rc = apply_value(w, id, v->start_mark, val);
	free(val);
	return rc;
}

/* Optimal-string-alignment edit distance, for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t rows[3][KEY_NAME_MAX + 1];
	size_t *pp, *prev, *cur;
	if (la > KEY_NAME_MAX || lb > KEY_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		rows[1][j] = j;
	pp = rows[0];
	prev = rows[1];
	cur = rows[2];
	for (size_t i = 1; i <= la; i++) {
		size_t *tmp;
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (prev[j - 1] + cost < d)
				d = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		tmp = pp;
		pp = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[lb];
}

/*
 * The known key or section name closest to `name` (at most 2 edits, and
 * fewer than half its length), copied into buf[cap]; NULL if none.
 */
static const char *suggest(const char *name, char *buf, size_t cap)
{
	char cand[KEY_NAME_MAX + 1];
	size_t best = 3;
	for (int i = 0; i < KEY_COUNT; i++) {
		const char *k = config_keys[i];
		/* Each section prefix of the key ("lease"), then the key. */
		for (size_t n = 1; n <= strlen(k); n++) {
			size_t d;
			if (k[n] != '.' && k[n] != '\0')
				continue;
			memcpy(cand, k, n);
			cand[n] = '\0';
			d = edit_distance(name, cand);
			if (d < best && d * 2 < strlen(name) && n < cap) {
				best = d;
				memcpy(buf, cand, n + 1);
			}
		}
	}
	return best < 3 ? buf : NULL;
}

static int unknown_key(walk *w, yaml_mark_t m, const char *name, size_t n,
		       bool dotted_key)
{
	char shown[SHOW_BUF], hint[KEY_NAME_MAX + 64] = "", cand[KEY_NAME_MAX + 1];
	const char *s;
	config_show(shown, sizeof(shown), name, n);
	if (dotted_key) {
		snprintf(hint, sizeof(hint), " (write dotted keys as nested mappings)");
	} else if (n <= KEY_NAME_MAX && memchr(name, '\0', n) == NULL) {
		for (int i = 0; litefs_only_keys[i] != NULL; i++)
			if (strlen(litefs_only_keys[i]) == n &&
			    memcmp(litefs_only_keys[i], name, n) == 0)
				snprintf(hint, sizeof(hint), " (a LiteFS setting "
					 "that ltxfs does not support)");
		if (hint[0] == '\0' &&
		    (s = suggest(name, cand, sizeof(cand))) != NULL)
			snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)", s);
	}
	return at_err(w, m, "unknown key %s%s", shown, hint);
}

static int walk_section(walk *w, const yaml_node_t *map, const char *prefix);

/*
 * One key/value pair of the mapping at dotted `prefix` ("" at the top):
 * unknown and duplicate keys are errors, sections recurse, leaves parse.
 */
static int walk_pair(walk *w, const yaml_node_t *map,
		     const yaml_node_pair_t *p, const char *prefix)
{
	const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
	const yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
	const yaml_node_t *first;
	char name[KEY_NAME_MAX + 1], shown[SHOW_BUF];
	const char *ks;
	size_t kn, pn = strlen(prefix);
	int id;

	if (k == NULL || v == NULL)
		return at_err(w, map->start_mark, "malformed mapping");
	if (k->type != YAML_SCALAR_NODE)
		return at_err(w, k->start_mark, "%s%skeys must be strings, got %s",
			      prefix, pn ? ": " : "", node_kind(k));
	ks = (const char *)k->data.scalar.value;
	kn = k->data.scalar.length;
	if (pn + 1 + kn > KEY_NAME_MAX || memchr(ks, '\0', kn) != NULL ||
	    memchr(ks, '.', kn) != NULL || kn == 0) {
		/* Not a name we could know; show it (raw bytes, bounded). */
		char full[KEY_NAME_MAX * 2 + 2];
		size_t shown_n = kn < KEY_NAME_MAX ? kn : KEY_NAME_MAX;
		size_t fn = (size_t)snprintf(full, sizeof(full), "%s%s", prefix,
					     pn ? "." : "");
		memcpy(full + fn, ks, shown_n);
		return unknown_key(w, k->start_mark, full, fn + shown_n,
				   memchr(ks, '.', kn) != NULL &&
				   memchr(ks, '\0', kn) == NULL);
	}
	snprintf(name, sizeof(name), "%s%s%.*s", prefix, pn ? "." : "", (int)kn, ks);
	id = find_key(name);
	if (id < 0 && !is_section(name))
		return unknown_key(w, k->start_mark, name, strlen(name), false);
	first = earlier_key(w, map, p, k);
	if (first != NULL)
		return at_err(w, k->start_mark, "duplicate key %s (first at line %zu)",
			      config_show(shown, sizeof(shown), name, strlen(name)),
			      first->start_mark.line + 1);
	if (id >= 0)
		return set_key(w, (enum key_id)id, v);
	if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0 &&
	    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return 0; /* "fuse:" with nothing under it: an empty section */
	if (v->type != YAML_MAPPING_NODE)
		return at_err(w, v->start_mark, "%s: expected a mapping, got %s",
			      name, node_kind(v));
	return walk_section(w, v, name);
}

static int walk_section(walk *w, const yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		int rc = walk_pair(w, map, p, prefix);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Turn a libyaml parser failure into an error with position. */
static int yaml_error(const yaml_parser_t *p, const char *origin, lx_err *err)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return lx_err_set(err, ENOMEM, "%s: out of memory parsing YAML", origin);
	case YAML_READER_ERROR:
		return lx_err_set(err, EINVAL, "%s: byte %zu: %s (the file must be "
				  "UTF-8 text)", origin, p->problem_offset, problem);
	default:
		break;
	}
	if (p->context != NULL)
		return lx_err_set(err, EINVAL, "%s:%zu:%zu: YAML syntax error: %s "
				  "(%s at line %zu)", origin,
				  p->problem_mark.line + 1, p->problem_mark.column + 1,
				  problem, p->context, p->context_mark.line + 1);
	return lx_err_set(err, EINVAL, "%s:%zu:%zu: YAML syntax error: %s", origin,
			  p->problem_mark.line + 1, p->problem_mark.column + 1,
			  problem);
}

/*
 * Parse the text with `parser` into a single document and walk it.  A
 * second document, an empty stream and a non-mapping top level are errors.
 */
static int load_document(walk *w, yaml_parser_t *parser)
{
	yaml_document_t doc, extra;
	const yaml_node_t *root, *root2;
	yaml_mark_t m2;
	int rc = 0;

	if (!yaml_parser_load(parser, &doc))
		return yaml_error(parser, w->origin, w->err);
	if (!yaml_parser_load(parser, &extra)) {
		rc = yaml_error(parser, w->origin, w->err);
		goto out;
	}
	root2 = yaml_document_get_root_node(&extra);
	if (root2 != NULL)
		m2 = extra.start_mark;
	yaml_document_delete(&extra);
	if (root2 != NULL) {
		rc = lx_err_set(w->err, EINVAL, "%s:%zu:%zu: a second YAML document "
				"starts here; the configuration must be one document",
				w->origin, m2.line + 1, m2.column + 1);
		goto out;
	}
	w->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		rc = lx_err_set(w->err, EINVAL, "%s: the configuration is empty "
				"(expected a mapping with at least fuse.dir and "
				"data.dir)", w->origin);
	else if (root->type != YAML_MAPPING_NODE)
		rc = at_err(w, root->start_mark, "the top level must be a mapping "
			    "of keys, got %s", node_kind(root));
	else
		rc = walk_section(w, root, "");
out:
	yaml_document_delete(&doc);
	return rc;
}

static const char *std_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

int config_load_string_env(ltxfs_config *c, const char *yaml, size_t len,
			   const char *origin, config_getenv_fn getenv_fn,
			   void *ctx, lx_err *err)
{
	yaml_parser_t parser;
	walk w;
	int rc;

	config_init_defaults(c);
	c->origin = strdup(origin != NULL ? origin : "<config>");
	if (c->origin == NULL) {
		config_free(c);
		return lx_err_set(err, ENOMEM, "config: out of memory");
	}
	w = (walk){ c, c->origin, NULL, { getenv_fn ? getenv_fn : std_getenv, ctx }, err };
	if (!yaml_parser_initialize(&parser)) {
		config_free(c);
		return lx_err_set(err, ENOMEM, "%s: out of memory", origin);
	}
	yaml_parser_set_input_string(&parser,
				     (const unsigned char *)(yaml ? yaml : ""),
				     yaml ? len : 0);
	rc = load_document(&w, &parser);
	yaml_parser_delete(&parser);
	if (rc == 0)
		rc = config_resolve(c, err);
	if (rc != 0)
		config_free(c);
	return rc;
}

int config_load_string(ltxfs_config *c, const char *yaml, size_t len,
		       const char *origin, lx_err *err)
{
	return config_load_string_env(c, yaml, len, origin, NULL, NULL, err);
}

int config_read_fd(int fd, char *buf, size_t cap, size_t *n)
{
	*n = 0;
	while (*n < cap) {
		ssize_t r = read(fd, buf + *n, cap - *n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

/* The file at `path`, at most CONFIG_MAX_FILE_SIZE bytes, into a new heap
 * buffer *buf of *len bytes. */
static int read_file(const char *path, char **buf, size_t *len, lx_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	char *p;
	if (fd < 0)
		return lx_err_sys(err, errno, "open %s", path);
	/* One byte more than the limit tells a file that exceeds it. */
	p = malloc(CONFIG_MAX_FILE_SIZE + 1);
	rc = p ? config_read_fd(fd, p, CONFIG_MAX_FILE_SIZE + 1, len) : -ENOMEM;
	close(fd);
	if (rc == 0 && *len > CONFIG_MAX_FILE_SIZE)
		rc = lx_err_set(err, EFBIG, "%s: larger than %d bytes", path,
				CONFIG_MAX_FILE_SIZE);
	else if (rc == -ENOMEM)
		lx_err_set(err, ENOMEM, "%s: out of memory", path);
	else if (rc < 0)
		lx_err_sys(err, -rc, "read %s", path);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*buf = p;
	return 0;
}

int config_load_file(ltxfs_config *c, const char *path, lx_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = read_file(path, &buf, &len, err);
	if (rc != 0)
		return rc;
	rc = config_load_string(c, buf, len, path, err);
	free(buf);
	return rc;
}
