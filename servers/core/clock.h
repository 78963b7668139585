/* clock.h — the clocks both workers read, inline (the hub's socket waits
 * and the async worker's idle timeouts read one per request).
 *
 *   core_coarse_ms  the kernel's jiffy clock (CLOCK_MONOTONIC_COARSE, a
 *                   vDSO read): the lazy timeouts note a deadline on it per
 *                   wait and check it when their timer fires; ~10 ms coarse
 *   core_loop_ms    libevent's cached loop time: deadlines in seconds (the
 *                   request-head deadline), read only on slow paths
 */
#ifndef COROBENCH_CLOCK_H
#define COROBENCH_CLOCK_H

#include <event2/event.h>

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

#endif
