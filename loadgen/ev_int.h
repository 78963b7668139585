/* ev_int: what a back end of the event loop provides to ev.c. Not part of
 * ev's API: only ev.c, ev_epoll.c and ev_uring.c include it. */
#ifndef LOADGEN_EV_INT_H
#define LOADGEN_EV_INT_H

#include "ev.h"

struct ev_backend {
	const char *name;
	/* s's fd, handler, loop and watch are set: its io table, its own state
	 * and its registration. 0 or -errno (with ev->what set). */
	int (*open)(struct ev *ev, struct ev_sock *s);
	int (*wakeup_fd)(struct ev *ev, int fd);
	/* waits up to wait_us and handles what happened: the count, or -errno */
	int (*wait)(struct ev *ev, uint64_t wait_us);
	void (*free)(struct ev *ev);
};

/* Each returns a loop whose struct ev is initialised but for its timers. */
struct ev *ev_epoll_new(unsigned nsocks, int *err, const char **what);
#ifdef LOADGEN_HAVE_URING
struct ev *ev_uring_new(unsigned nsocks, int *err, const char **what);
int ev_uring_probe(char *why, size_t cap);
#endif

#endif
