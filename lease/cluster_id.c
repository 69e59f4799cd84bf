/*
 * cluster_id.c - see cluster_id.h.
 */
#include "lease/cluster_id.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int cluster_id_valid(const char *id)
{
	if (strlen(id) != CLUSTER_ID_LEN || strncmp(id, "LTXC", 4) != 0)
		return 0;
	for (int i = 4; i < CLUSTER_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return 1;
}

int cluster_id_load(const char *data_dir, char out[CLUSTER_ID_SIZE], lx_err *err)
{
	char path[4096], buf[64];
	ssize_t n;
	int fd;
	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/cluster-id", data_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : lx_err_sys(err, errno, "open %s", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return lx_err_sys(err, errno, "read %s", path);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!cluster_id_valid(buf))
		return lx_err_set(err, EINVAL, "%s does not hold a cluster ID (LTXC + 16 hex digits); "
				  "remove it to let this node join a cluster again", path);
	memcpy(out, buf, CLUSTER_ID_SIZE);
	return 0;
}

int cluster_id_save(const char *data_dir, const char *id, lx_err *err)
{
	char path[4096], tmp[4200], line[CLUSTER_ID_SIZE + 1];
	int fd, dfd, rc = 0;
	snprintf(path, sizeof(path), "%s/cluster-id", data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(line, sizeof(line), "%s\n", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return lx_err_sys(err, errno, "create %s", tmp);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd) < 0)
		rc = lx_err_sys(err, errno ? errno : EIO, "write %s", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = lx_err_sys(err, errno, "rename %s", tmp);
	if (rc == 0 && (dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return rc;
}

int cluster_id_load_or_create(const char *data_dir, char out[CLUSTER_ID_SIZE], lx_err *err)
{
	uint64_t r = 0;
	int rc = cluster_id_load(data_dir, out, err);
	if (rc < 0 || out[0] != '\0')
		return rc;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return lx_err_sys(err, errno, "random cluster ID");
	snprintf(out, CLUSTER_ID_SIZE, "LTXC%016" PRIX64, r);
	return cluster_id_save(data_dir, out, err);
}
