/* master_internal.h — what the two files of the master share (master.c:
 * forking and supervising the workers; master_listen.c: the listen
 * sockets). Not an API: servers use master.h.
 */
#ifndef COROBENCH_MASTER_INTERNAL_H
#define COROBENCH_MASTER_INTERNAL_H

#include "options.h"

#include <stddef.h>
#include <sys/stat.h>

/* Bind and listen on opts->listen: n sockets (one per worker with
 * SO_REUSEPORT when n > 1) into fds[0..n); 0, or -1 with one line on
 * stderr. The bound address goes to bound. */
int open_tcp(const struct server_opts *opts, const char *prog, int *fds, int n, char *bound,
             size_t boundcap);

/* Bind and listen on the Unix-domain socket at path. The fd, or -1 with one
 * line on stderr; *made identifies the file we made. */
int open_unix(const char *path, int backlog, const char *prog, struct stat *made);

/* Remove the socket file at path if it is still the one we made. */
void remove_unix(const char *path, const struct stat *made);

#endif
