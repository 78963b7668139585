/* clock.h — the clocks both workers read, and the timeouts built on them,
 * inline: the lazy timeout (the hub's socket waits and the async worker's
 * read timeout use it once per request) and the write timeout's stall test
 * (both workers' waits for a full socket).
 *
 *   core_coarse_ms  the kernel's jiffy clock (CLOCK_MONOTONIC_COARSE, a
 *                   vDSO read): the lazy timeouts note a deadline on it per
 *                   wait and check it when their timer fires; ~10 ms coarse
 *   core_loop_ms    libevent's cached loop time: deadlines in seconds (the
 *                   request-head deadline), read only on slow paths
 *   core_lazy       a timeout for waits that restart per request: arming a
 *                   libevent timer per wait and deleting it after costs an
 *                   event_add and an event_del (~530 instructions of queue
 *                   work) for an exactness nobody needs on second-long
 *                   timeouts; instead each wait notes its deadline (one
 *                   clock read) and the timer, once armed, stays pending
 *                   between waits. When it fires it looks at the wait then
 *                   in progress: none, it lapses; one not yet due, it
 *                   re-arms for the rest; else that wait is over. It fires
 *                   at most ~10 ms early (the jiffy clock), never later
 *                   than libevent's own precision.
 */
#ifndef COROBENCH_CLOCK_H
#define COROBENCH_CLOCK_H

#include <event2/event.h>
#include <event2/event_struct.h>

#include <linux/sockios.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>

static inline int64_t core_coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t core_loop_ms(struct event_base *base)
{
	struct timeval tv;
	event_base_gettimeofday_cached(base, &tv);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ms as a struct timeval. */
static inline struct timeval core_tv(unsigned ms)
{
	return (struct timeval){.tv_sec = (time_t)(ms / 1000),
	                        .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

struct core_lazy {
	struct event ev;
	int64_t deadline; /* coarse ms of the wait in progress; 0: none */
	int64_t at;       /* ...when ev fires, while armed */
	unsigned ms;      /* the wait's length (bounds a clock that went back) */
	bool armed;
};

static inline void core_lazy_init(struct core_lazy *t, struct event_base *base,
                                  event_callback_fn cb, void *arg)
{
	evtimer_assign(&t->ev, base, cb, arg);
	t->deadline = t->at = 0;
	t->ms = 0;
	t->armed = false;
}

/* A wait of ms (> 0) starts now. true when the timer must be armed for
 * it (core_lazy_arm): it is not pending, or would fire after the deadline
 * (a pending one that fires by then re-arms itself for the rest). */
static inline bool core_lazy_begin(struct core_lazy *t, unsigned ms)
{
	t->ms = ms;
	t->deadline = core_coarse_ms() + ms;
	if (t->deadline == 0)
		t->deadline = 1; /* 0 means none */
	return !t->armed || t->at > t->deadline;
}

/* Arm the timer for the wait begun: tv is ms (a libevent common timeout
 * of it may stand in: its O(1) queue). 0, or -1. */
static inline int core_lazy_arm(struct core_lazy *t, const struct timeval *tv)
{
	if (event_add(&t->ev, tv) != 0)
		return -1;
	t->armed = true;
	t->at = t->deadline;
	return 0;
}

/* No wait in progress: if the timer fires, it lapses. */
static inline void core_lazy_clear(struct core_lazy *t)
{
	t->deadline = 0;
}

/* In the timer's callback: true when the wait in progress is due (it is
 * over then); false when there is none or the timer was re-armed for the
 * rest of it. */
static inline bool core_lazy_fired(struct core_lazy *t)
{
	t->armed = false;
	if (!t->deadline)
		return false;
	/* Within a few ms counts as due: the clock is a jiffy coarse. */
	int64_t now = core_coarse_ms();
	int64_t left = t->deadline - now;
	if (left > 10) {
		if (left > (int64_t)t->ms)
			left = t->ms; /* (a clock that went back) */
		struct timeval tv = core_tv((unsigned)left);
		if (event_add(&t->ev, &tv) == 0) {
			t->armed = true;
			t->at = now + left;
			return false;
		}
	}
	t->deadline = 0;
	return true;
}

/* Disarm for good (the owner goes). */
static inline void core_lazy_del(struct core_lazy *t)
{
	event_del(&t->ev);
	t->armed = false;
	t->deadline = 0;
}

/* ---- the write timeout: a client that takes nothing for a whole timeout ----
 *
 * Answers that wait for a full socket get the read timeout (core.h) as nginx
 * gives send_timeout: it runs between two moves, not over the whole
 * transfer. A move is a write that took bytes, or the client taking bytes
 * out of the socket: the kernel's count of bytes sent and not yet
 * acknowledged (SIOCOUTQ; on loopback a byte is acknowledged once it is in
 * the client's receive buffer) went down. Our writes alone are not enough:
 * a socket whose send buffer autotuning grew to megabytes (tcp_wmem)
 * reports room again only once a third of it has drained, which a slow but
 * steady reader (4 KiB every 20 ms) takes longer than a 1 s or 5 s timeout
 * to do. So when the timeout comes, the kernel is asked: if the client took
 * bytes since the last look, the wait goes on for another timeout; if not,
 * it has stopped reading and the connection goes (between one and two
 * timeouts after it stopped). Not on the per-request path: only a wait for
 * a full socket asks (one ioctl when it starts, one per timeout). */

/* Bytes fd holds that the peer has not taken, or -1 (not known: the
 * timeout then ends the wait, as before). */
static inline int core_unacked(int fd)
{
	int n;
	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

struct core_stall {
	int64_t end; /* coarse ms: the wait's timeout, unless the client moves */
	int unacked; /* core_unacked at the last move */
};

/* A wait for a full socket begins, or a write took bytes: the timeout of
 * ms counts from now. */
static inline void core_stall_start(struct core_stall *s, int fd, unsigned ms)
{
	s->end = core_coarse_ms() + ms;
	s->unacked = core_unacked(fd);
}

/* ms (> 0) left of the wait, 0 when it is over. */
static inline unsigned core_stall_left(const struct core_stall *s)
{
	int64_t left = s->end - core_coarse_ms();
	return left > 0 ? (unsigned)left : 0;
}

/* The wait's timeout came: true when the client took nothing since the last
 * move (close); false when it took some, and the timeout of ms starts
 * again from now. */
static inline bool core_stall_due(struct core_stall *s, int fd, unsigned ms)
{
	int n = core_unacked(fd);
	if (n < 0 || s->unacked < 0 || n >= s->unacked)
		return true;
	s->unacked = n;
	s->end = core_coarse_ms() + ms;
	return false;
}

#endif
