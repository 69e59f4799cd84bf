/*
 * lease.c - the lease value (see lease.h).
 */
#include "lease/lease.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

char *lease_holder_encode(const lease_holder *h)
{
	json_t *o = json_pack("{s:s, s:s}", "hostname", h->hostname, "advertise-url",
			      h->advertise_url);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static int copy_field(json_t *o, const char *name, char *out, size_t cap, lx_err *err)
{
	json_t *v = json_object_get(o, name);
	const char *s = json_string_value(v);
	if (s == NULL || s[0] == '\0')
		return lx_err_set(err, EINVAL, "lease value: no \"%s\" string", name);
	if (strlen(s) >= cap)
		return lx_err_set(err, EINVAL, "lease value: \"%s\" longer than %zu bytes", name,
				  cap - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int lease_holder_decode(const char *value, size_t len, lease_holder *h, lx_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(value, len, JSON_REJECT_DUPLICATES, &je);
	int rc;
	memset(h, 0, sizeof(*h));
	if (o == NULL)
		return lx_err_set(err, EINVAL, "lease value is not JSON: %s", je.text);
	if (!json_is_object(o))
		rc = lx_err_set(err, EINVAL, "lease value is not a JSON object");
	else
		rc = copy_field(o, "hostname", h->hostname, sizeof(h->hostname), err);
	if (rc == 0)
		rc = copy_field(o, "advertise-url", h->advertise_url, sizeof(h->advertise_url), err);
	json_decref(o);
	return rc;
}
