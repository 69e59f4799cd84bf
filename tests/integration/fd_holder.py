"""fd_holder.py - run a command that starts with many open descriptors.

    fd_holder.py N -- COMMAND [ARG...]

Opens N descriptors (of /dev/null, inheritable), raising this process's
soft RLIMIT_NOFILE first if N needs it, then execs COMMAND, which inherits
them.  The tests use it to start an ltxfs daemon whose every new
descriptor (its listening socket, each connection) is numbered above 1024,
as on a node with a few hundred databases, without depending on how many
descriptors a database keeps open.
"""

import os
import resource
import sys


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write(__doc__)
        return 2
    n = int(argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    fd = os.open("/dev/null", os.O_RDONLY)
    for _ in range(n):
        os.set_inheritable(os.dup(fd), True)
    os.execvp(argv[3], argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
