/*
 * config.c - INTERIM loader: reads only fuse.dir, data.dir and log.level
 * from a simple two-level YAML file.  The full libyaml parser (strict keys,
 * ${VAR} expansion, every key of docs/configuration.md) replaces this file.
 */
#include "cmd/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void config_init_defaults(ltxfs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->log.level = LX_INFO;
	c->lease.candidate = true;
}

void config_free(ltxfs_config *c)
{
	free(c->fuse.dir);
	free(c->data.dir);
	memset(c, 0, sizeof(*c));
}

int config_load_file(ltxfs_config *c, const char *path, lx_err *err)
{
	FILE *f = fopen(path, "r");
	char line[2048], sec[64] = "";
	if (f == NULL)
		return lx_err_sys(err, errno, "%s", path);
	while (fgets(line, sizeof(line), f)) {
		char v[1024];
		if (line[0] != ' ' && line[0] != '#' && line[0] != '\n') {
			sscanf(line, "%63[^:]", sec);
			continue;
		}
		if (sscanf(line, " dir: \"%1023[^\"]\"", v) == 1 || sscanf(line, " dir: %1023s", v) == 1) {
			if (strcmp(sec, "fuse") == 0) { free(c->fuse.dir); c->fuse.dir = strdup(v); }
			if (strcmp(sec, "data") == 0) { free(c->data.dir); c->data.dir = strdup(v); }
		}
		if (strcmp(sec, "log") == 0 && strstr(line, "level: debug"))
			c->log.level = LX_DEBUG;
	}
	fclose(f);
	if (c->fuse.dir == NULL || c->data.dir == NULL)
		return lx_err_set(err, EINVAL, "%s: fuse.dir and data.dir are required", path);
	return 0;
}
