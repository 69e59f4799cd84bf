/*
 * lease.c - the lease value (see lease.h).
 */
#include "lease/lease.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "lease/cluster_id.h"

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

int lease_cluster_match(const char *stored, size_t len, char *id, size_t cap, const char *key,
			lx_err *err)
{
	char theirs[CLUSTER_ID_SIZE];
	if (len >= sizeof(theirs))
		return lx_err_set(err, EPROTO, "%s-cluster does not hold a cluster ID", key);
	memcpy(theirs, stored, len);
	theirs[len] = '\0';
	if (!cluster_id_valid(theirs))
		return lx_err_set(err, EPROTO, "%s-cluster does not hold a cluster ID", key);
	if (id[0] == '\0') {
		if (cap <= len)
			return lx_err_set(err, EINVAL, "cluster ID buffer too small");
		memcpy(id, theirs, len + 1);
		return 0;
	}
	if (strcmp(id, theirs) == 0)
		return 0;
	return lx_err_set(err, EEXIST, "the lease key %s belongs to cluster %s, but this node's "
			  "data.dir belongs to cluster %s: two clusters must not share a lease key. "
			  "Give this cluster a lease key of its own, or empty this node's data.dir "
			  "to join cluster %s", key, theirs, id, theirs);
}
