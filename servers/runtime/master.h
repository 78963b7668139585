/* master.h — the pre-fork process model both servers share (gunicorn's
 * arbiter, uWSGI's master): bind the listen socket, fork the workers, restart
 * a worker that dies, shut down gracefully on SIGTERM/SIGINT.
 *
 * Contract with the worker function:
 *   - it runs in a forked child with default signal dispositions (except
 *     SIGUSR1, ignored until the worker watches it: the master forwards it
 *     as the stats dump) and an empty signal mask; it should watch SIGTERM
 *     and SIGINT on its own event
 *     loop and, on either, stop accepting, let requests in flight finish
 *     within opts->graceful_timeout seconds, then return 0;
 *   - its return value is the child's exit status;
 *   - the master never touches the listen sockets after forking except to
 *     close them at shutdown: shutdown(2), then close, right after forwarding
 *     SIGTERM. That stops the listener for every process (new clients are
 *     refused), so a worker's accept() may then fail with EINVAL: treat it
 *     like EAGAIN.
 */
#ifndef COROBENCH_MASTER_H
#define COROBENCH_MASTER_H

#include "options.h"

struct worker_env {
	int listen_fd; /* non-blocking, already listening */
	int index;     /* 0 .. nworkers-1 */
	int nworkers;
	const struct server_opts *opts;
};

typedef int (*worker_main_fn)(const struct worker_env *env, void *arg);

/* Bind opts->listen (with N > 1 workers: one SO_REUSEPORT socket per
 * worker, unless opts->shared_listener) or opts->unix_path (one socket; a
 * stale socket file is replaced, any other file refused; removed at exit),
 * print "PROG: listening on ADDR (N workers)" ("unix:PATH") once the
 * sockets accept, fork and supervise. Worker i gets socket i. Returns the
 * exit status for main(): 0 after a graceful shutdown, non-zero (with one
 * clear line on stderr) when the address cannot be bound. */
int master_run(const struct server_opts *opts, worker_main_fn fn, void *arg, const char *prog);

#endif
