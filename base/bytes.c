/*
 * bytes.c - whole-buffer file I/O (see bytes.h).
 */
#include "base/bytes.h"

#include <errno.h>
#include <unistd.h>

int lx_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}
