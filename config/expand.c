/*
 * expand.c - environment references inside a scalar value of the
 * configuration (never in keys): $VAR, ${VAR}, ${VAR:-default},
 * ${A == B}, ${A != 'text'}, $$ (config.h states the rules).  An unset
 * variable is an error naming it; HOSTNAME, when unset, is the machine's
 * host name.  The result is bounded (VALUE_MAX), so a value cannot grow
 * without limit however the variables are set.
 */
#include "config/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VAR_NAME_MAX 128      /* longest environment variable name */
#define VALUE_MAX (64 * 1024) /* longest scalar value after expansion */

/* One expansion: where the variables come from, the key in messages. */
typedef struct expander {
	const config_env *env;
	const char *key;
	lx_err *err;
	char hostname[HOST_MAX];      /* gethostname(2), once looked up */
} expander;

/* Record EINVAL with "KEY: " and the formatted message. */
static int xerr(const expander *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int xerr(const expander *x, const char *fmt, ...)
{
	char msg[LX_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lx_err_set(x->err, EINVAL, "%s: %s", x->key, msg);
}

/* Length of the environment variable name at the start of s[0..n). */
static size_t var_name_len(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_name_start(s[0]))
		return 0;
	while (i < n && is_name_char(s[i]))
		i++;
	return i;
}

/* Growable string; `failed` is sticky once an append ran out of memory. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/*
 * Look up variable `name[0..n)`.  Sets *val to its value, or NULL when it
 * is unset; HOSTNAME falls back to gethostname(2).  Returns 0 or -EINVAL
 * for an over-long name.
 */
static int lookup_var(expander *x, const char *name, size_t n, const char **val)
{
	char buf[VAR_NAME_MAX + 1];
	if (n > VAR_NAME_MAX)
		return xerr(x, "environment variable name longer than %d characters",
			    VAR_NAME_MAX);
	memcpy(buf, name, n);
	buf[n] = '\0';
	*val = x->env->getenv_fn(buf, x->env->ctx);
	if (*val == NULL && strcmp(buf, "HOSTNAME") == 0 &&
	    gethostname(x->hostname, sizeof(x->hostname) - 1) == 0) {
		x->hostname[sizeof(x->hostname) - 1] = '\0';
		*val = x->hostname;
	}
	return 0;
}

/* Like lookup_var(), but an unset variable is an error naming it. */
static int require_var(expander *x, const char *name, size_t n, const char **val)
{
	int rc = lookup_var(x, name, n, val);
	if (rc == 0 && *val == NULL)
		rc = xerr(x, "environment variable \"%.*s\" is not set "
			  "(write ${%.*s:-} to allow it to be unset)",
			  (int)n, name, (int)n, name);
	return rc;
}

static size_t skip_spaces(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/*
 * The right operand of ${A == ...} starting at s[i]: a quoted literal or
 * a variable name, then only blanks up to s[n].  Returns 1 if it is
 * malformed, else the result of looking it up (0 or -errno) with *val and
 * *vlen set (*val points into `s` for a literal).
 */
static int comparison_operand(expander *x, const char *s, size_t i, size_t n,
			      const char **val, size_t *vlen)
{
	const char *q = NULL;
	size_t vn = 0, end;
	int rc;
	if (i < n && (s[i] == '\'' || s[i] == '"')) {
		q = memchr(s + i + 1, s[i], n - i - 1);
		if (q == NULL)
			return 1;
		end = (size_t)(q - s) + 1;
	} else {
		vn = var_name_len(s + i, n - i);
		if (vn == 0)
			return 1;
		end = i + vn;
	}
	if (skip_spaces(s, end, n) != n)
		return 1;
	if (q != NULL) {
		*val = s + i + 1;
		*vlen = (size_t)(q - (s + i + 1));
		return 0;
	}
	rc = require_var(x, s + i, vn, val);
	if (rc == 0)
		*vlen = strlen(*val);
	return rc;
}

/* ${A == B} or ${A != B}, operator at s[i]: 1 if malformed, else 0 or
 * -errno with "true" or "false" appended to b. */
static int expand_comparison(expander *x, const char *s, size_t vn, size_t i, size_t n,
			     sbuf *b)
{
	bool eq = s[i] == '=';
	const char *a, *bv;
	size_t blen;
	int rc = comparison_operand(x, s, skip_spaces(s, i + 2, n), n, &bv, &blen);
	if (rc == 0)
		rc = require_var(x, s, vn, &a);
	if (rc == 0) {
		bool same = strlen(a) == blen && memcmp(a, bv, blen) == 0;
		sb_adds(b, same == eq ? "true" : "false");
	}
	return rc;
}

/*
 * Expand the inside of "${...}" (s[0..n)) onto b: VAR, VAR:-default,
 * VAR == X, VAR != X.
 */
static int expand_braced(expander *x, const char *s, size_t n, sbuf *b)
{
	char shown[SHOW_BUF];
	const char *a;
	size_t vn = var_name_len(s, n), i;
	int rc;

	if (vn == n && vn > 0) {
		rc = require_var(x, s, vn, &a);
		if (rc == 0)
			sb_adds(b, a);
		return rc;
	}
	if (vn > 0 && n - vn >= 2 && s[vn] == ':' && s[vn + 1] == '-') {
		rc = lookup_var(x, s, vn, &a);
		if (rc == 0 && (a == NULL || *a == '\0'))
			sb_add(b, s + vn + 2, n - vn - 2);
		else if (rc == 0)
			sb_adds(b, a);
		return rc;
	}
	i = skip_spaces(s, vn, n);
	if (vn > 0 && i + 2 <= n && (s[i] == '=' || s[i] == '!') && s[i + 1] == '=') {
		rc = expand_comparison(x, s, vn, i, n, b);
		if (rc <= 0)
			return rc;
	}
	return xerr(x, "unsupported expression ${%s} (use ${VAR}, "
		    "${VAR:-default}, ${VAR == 'text'} or ${VAR != OTHER})",
		    config_show(shown, sizeof(shown), s, n));
}

/* The reference starting with the '$' at in[*i] onto b; *i moves past it. */
static int expand_dollar(expander *x, const char *in, size_t len, size_t *i, sbuf *b)
{
	const char *p = in + *i + 1, *close, *val;
	size_t left = len - *i - 1, vn;
	int rc;
	if (left > 0 && *p == '$') {
		sb_add(b, "$", 1);
		*i += 2;
		return 0;
	}
	if (left > 0 && *p == '{') {
		close = memchr(p + 1, '}', left - 1);
		if (close == NULL)
			return xerr(x, "\"${\" without a closing \"}\"");
		*i = (size_t)(close - in) + 1;
		return expand_braced(x, p + 1, (size_t)(close - (p + 1)), b);
	}
	vn = var_name_len(p, left);
	if (vn == 0)
		return xerr(x, "\"$\" must be followed by a variable name or \"{\" "
			    "(write $$ for a literal $)");
	*i += 1 + vn;
	rc = require_var(x, p, vn, &val);
	if (rc == 0)
		sb_adds(b, val);
	return rc;
}

int config_expand(const config_env *env, const char *key, const char *in, size_t len,
		  char **out, lx_err *err)
{
	expander x = { env, key, err, "" };
	sbuf b = { 0 };
	size_t i = 0;
	int rc = 0;

	sb_add(&b, "", 0);
	while (i < len && rc == 0) {
		const char *dollar = memchr(in + i, '$', len - i);
		size_t plain = dollar ? (size_t)(dollar - (in + i)) : len - i;
		sb_add(&b, in + i, plain);
		i += plain;
		if (i < len)
			rc = expand_dollar(&x, in, len, &i, &b);
		if (rc == 0 && b.len > VALUE_MAX)
			rc = xerr(&x, "value longer than %d bytes after expansion", VALUE_MAX);
	}
	if (rc == 0 && b.failed)
		rc = lx_err_set(err, ENOMEM, "%s: out of memory", key);
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	return 0;
}
