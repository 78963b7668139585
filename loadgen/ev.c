/* ev: the back-end-independent part of the event loop: choosing the back
 * end, the clock, and the timers (a binary min-heap of armed timers keyed by
 * their due time, so arming, stopping and finding the next due are
 * O(log n) whatever the back end). */
#include "ev_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int ev_probe(enum ev_kind kind, char *why, size_t cap)
{
	if (cap)
		why[0] = 0;
	if (kind == EV_EPOLL)
		return 0;
#ifdef LOADGEN_HAVE_URING
	return ev_uring_probe(why, cap);
#else
	snprintf(why, cap, "built without liburing");
	return -1;
#endif
}

struct ev *ev_new(enum ev_kind kind, unsigned nsocks, int *err, const char **what)
{
	struct ev *ev = NULL;
	if (kind == EV_EPOLL) {
		ev = ev_epoll_new(nsocks, err, what);
	} else {
#ifdef LOADGEN_HAVE_URING
		ev = ev_uring_new(nsocks, err, what);
#else
		*err = ENOSYS;
		*what = "io_uring_setup";
#endif
	}
	if (!ev)
		return NULL;
	ev->heapcap = nsocks + 8;
	ev->heap = calloc(ev->heapcap, sizeof *ev->heap);
	if (!ev->heap) {
		ev->be->free(ev);
		*err = ENOMEM;
		*what = "malloc";
		return NULL;
	}
	ev_now_update(ev);
	return ev;
}

void ev_free(struct ev *ev)
{
	if (!ev)
		return;
	for (unsigned i = 0; i < ev->ntimers; i++)
		ev->heap[i]->pos = 0;
	free(ev->heap);
	ev->be->free(ev);
}

int ev_open(struct ev *ev, struct ev_sock *s, int fd, const struct ev_handler *h, unsigned watch)
{
	s->fd = fd;
	s->h = h;
	s->ev = ev;
	s->watch = watch;
	s->kflags = 0;
	s->slen = 0;
	s->unread = 0;
	s->dry = 0;
	s->xp = NULL;
	int rc = ev->be->open(ev, s);
	if (rc)
		s->fd = -1;
	return rc;
}

int ev_fd_error(struct ev_sock *s)
{
	int e = 0;
	socklen_t len = sizeof e;
	getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len);
	return e;
}

int ev_wakeup_fd(struct ev *ev, int fd)
{
	return ev->be->wakeup_fd(ev, fd);
}

/* the heap: heap[0] is due first; tm->pos is its index + 1 */
static void heap_set(struct ev *ev, unsigned i, struct ev_timer *tm)
{
	ev->heap[i] = tm;
	tm->pos = i + 1;
}

static void heap_up(struct ev *ev, unsigned i)
{
	struct ev_timer *tm = ev->heap[i];
	while (i > 0) {
		unsigned parent = (i - 1) / 2;
		if (ev->heap[parent]->when <= tm->when)
			break;
		heap_set(ev, i, ev->heap[parent]);
		i = parent;
	}
	heap_set(ev, i, tm);
}

static void heap_down(struct ev *ev, unsigned i)
{
	struct ev_timer *tm = ev->heap[i];
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= ev->ntimers)
			break;
		if (c + 1 < ev->ntimers && ev->heap[c + 1]->when < ev->heap[c]->when)
			c++;
		if (tm->when <= ev->heap[c]->when)
			break;
		heap_set(ev, i, ev->heap[c]);
		i = c;
	}
	heap_set(ev, i, tm);
}

void ev_timer_stop(struct ev *ev, struct ev_timer *tm)
{
	if (!tm->pos)
		return;
	unsigned i = tm->pos - 1;
	tm->pos = 0;
	struct ev_timer *last = ev->heap[--ev->ntimers];
	if (last == tm)
		return;
	heap_set(ev, i, last);
	if (i > 0 && ev->heap[(i - 1) / 2]->when > last->when)
		heap_up(ev, i);
	else
		heap_down(ev, i);
}

void ev_timer_start(struct ev *ev, struct ev_timer *tm, uint64_t when)
{
	ev_timer_stop(ev, tm);
	if (ev->ntimers == ev->heapcap) {
		unsigned cap = ev->heapcap * 2;
		struct ev_timer **h = realloc(ev->heap, cap * sizeof *h);
		if (!h) {
			/* reported by the next ev_run_once(), which ends the run */
			ev->err = ENOMEM;
			ev->what = "malloc";
			return;
		}
		ev->heap = h;
		ev->heapcap = cap;
	}
	tm->when = when;
	heap_set(ev, ev->ntimers++, tm);
	heap_up(ev, ev->ntimers - 1);
}

int ev_run_once(struct ev *ev, uint64_t max_us)
{
	/* at most the timers armed now: one that fire() re-arms for a time
	 * already past waits for the next turn */
	for (unsigned n = ev->ntimers; n && ev->ntimers && ev->heap[0]->when <= ev->now; n--) {
		struct ev_timer *tm = ev->heap[0];
		ev_timer_stop(ev, tm);
		tm->fire(tm, ev->now);
	}
	if (ev->err)
		return -ev->err;
	uint64_t wait = max_us;
	if (ev->ntimers) {
		/* a timer fire() re-armed for a time already past: no wait */
		uint64_t when = ev->heap[0]->when;
		uint64_t due = when > ev->now ? when - ev->now : 0;
		if (due < wait)
			wait = due;
	}
	return ev->be->wait(ev, wait);
}
