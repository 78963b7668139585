/* clock.h — the clocks both workers read, and the lazy timeout built on
 * one, inline (the hub's socket waits and the async worker's read timeout
 * use it once per request).
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

#include <stdbool.h>
#include <stdint.h>
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

#endif
