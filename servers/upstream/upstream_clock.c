/* upstream_clock.c — the stub's clock: the answers waiting for their
 * delay behind one timerfd, and the requests collected on that timer while
 * answers wait (upstream.h; the server itself is upstream.c). */
#include "upstream.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#define COLLECT_BATCH 64  /* ready connections per epoll_wait of a collection */
#define COLLECT_ROUNDS 16 /* epoll_waits per collection at most, for fairness */
#ifndef TICK_WINDOW_NS
#define TICK_WINDOW_NS 5000000 /* the request rate is taken over 5 ms */
#endif
#define TICK_ON 2  /* requests per grain from which the stub ticks */
#define TICK_OFF 1 /* ...and below which it wakes per request again */

/* ---- the answers waiting for their delay ----
 *
 * A delayed answer is due at the time its request arrived (the kernel's
 * stamp, see "reading on the answer clock"; without one, the clock read
 * after the read returned, so never before the request arrived) plus its
 * delay. The waiting connections form one list sorted by due time: with the
 * one --delay-ms every new entry goes to the tail (O(1)); a ?delay= override
 * walks back from the tail to its place. One timerfd (CLOCK_MONOTONIC,
 * absolute) is armed for the head's due time rounded up to the grain; when it
 * fires, everything due by then is answered in that one wake-up and the timer
 * is armed once for the new head. This replaces a libevent timer per request
 * and libevent's precise-timer mode, which re-armed a timerfd on every loop
 * turn. */

/* Arm the timer for the head (or disarm it) unless it already is. After it
 * fired it must be set again either way: an expired timerfd stays readable. */
static void wait_arm(struct server *s)
{
	uint64_t want = 0;
	if (s->wait_head) {
		want = s->wait_head->due;
		if (s->grain)
			want = (want + s->grain - 1) / s->grain * s->grain;
	}
	if (s->ticking) {
		/* the next grain after the last collection: collect again */
		uint64_t tick = (s->collected / s->grain + 1) * s->grain;
		if (!want || tick < want)
			want = tick;
	}
	if (want == s->armed && !s->fired)
		return;
	struct itimerspec its = {
	    .it_value = {(time_t)(want / 1000000000u), (long)(want % 1000000000u)}};
	if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
		s->armed = want;
		s->fired = false;
	}
}

void upstream_wait_add(struct conn *c, uint64_t due)
{
	struct server *s = c->s;
	struct conn *after = s->wait_tail;
	while (after && after->due > due)
		after = after->wprev;
	c->due = due;
	c->wprev = after;
	c->wnext = after ? after->wnext : s->wait_head;
	if (c->wnext)
		c->wnext->wprev = c;
	else
		s->wait_tail = c;
	if (after)
		after->wnext = c;
	else
		s->wait_head = c;
	c->waiting = true;
	if (!after) /* the new head */
		wait_arm(s);
}

/* Out of the list. The timer stays as it is: if c was the head it fires
 * for nothing and is armed again then. */
void upstream_wait_remove(struct conn *c)
{
	struct server *s = c->s;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		s->wait_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		s->wait_tail = c->wprev;
	c->wprev = c->wnext = NULL;
	c->waiting = false;
}

static unsigned collect(struct server *s);
static void tick_stop(struct server *s);

void upstream_wait_fire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *s = arg;
	s->fired = true;
	uint64_t now = upstream_mono_ns();
	while (s->wait_head && s->wait_head->due <= now) {
		struct conn *c = s->wait_head;
		upstream_wait_remove(c);
		(void)upstream_send_answer(c); /* may queue c's next (pipelined) request */
	}
	if (s->ticking) {
		collect(s);
		if (s->ticking && !s->wait_head)
			tick_stop(s); /* nothing waits, nothing came: idle */
	}
	wait_arm(s);
}

/* ---- reading on the answer clock ----
 *
 * The connections' read interest is an epoll set of its own (rfd), which
 * sits in the loop as one event (rfd_ev) while the stub is idle: a request
 * then wakes it at once. Once answers wait and requests keep coming, rfd
 * leaves the loop ("ticking"): a request that arrives wakes nobody, and
 * every timer wake-up, at least one per grain, collects what arrived since
 * with epoll_wait(rfd, 0). Ticking pays only when requests come faster than
 * grains: a tick is a wake-up too. So the stub ticks while the requests of
 * the last TICK_WINDOW_NS averaged at least TICK_ON per grain, and
 * wakes per request again below TICK_OFF per grain, or when no answer
 * waits (at 20 ms: ticking from 12,800 requests/s on, a grain being 156 µs).
 *
 * libevent runs the stub's loop on poll(), not epoll: it watches a handful
 * of descriptors (the listener, the timerfd, its signal pipe, rfd while not
 * ticking, a connection whose answer waits for room), and putting rfd back
 * costs nothing, where adding one epoll set to another makes the kernel
 * walk every descriptor of the inner one (ep_loop_check, reverse path
 * checks: ~1 ms with 1000 connections, measured at 5,000 requests/s).
 *
 * Why: where the stub shares a machine with the server it serves, a request
 * sent to a sleeping stub costs the *sender* the wake-up of the stub's CPU,
 * an inter-processor interrupt (on a virtual machine, an exit to the host):
 * measured at c = 1000 on the project's 2-core VM, 0.5 wake-ups and ~3 µs
 * of the proxy worker's CPU per request. A remote service on another host
 * costs its client nothing of the kind; a stub should not either.
 *
 * Reading up to a grain later must not move any answer: a request's due
 * time is its arrival as the kernel stamped it (SO_TIMESTAMPNS, the
 * realtime clock, taken back to the monotonic one), kept between the
 * previous collection (it was not there yet) and the read. With
 * --wake-per-request, or without a delay (no grain), the stub never ticks
 * and reads as before. */

static void tick_start(struct server *s)
{
	event_del(&s->rfd_ev);
	s->ticking = true;
	wait_arm(s);
}

static void tick_stop(struct server *s)
{
	s->ticking = false;
	/* A request that came after the last epoll_wait leaves rfd readable:
	 * adding it now reports it in the next loop turn. */
	event_add(&s->rfd_ev, NULL);
}

/* Read every connection that has something; the number read. */
static unsigned collect(struct server *s)
{
	uint64_t since = s->collected;
	s->collected = upstream_mono_ns(); /* before epoll_wait: what it misses came later */
	if (s->stamps) {
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		s->real_minus_mono =
		    (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - (int64_t)s->collected;
	}
	struct epoll_event ev[COLLECT_BATCH];
	uint64_t now = s->collected;
	unsigned got = 0;
	for (int round = 0; round < COLLECT_ROUNDS; round++) {
		int n = epoll_wait(s->rfd, ev, COLLECT_BATCH, 0);
		for (int i = 0; i < n; i++)
			upstream_read_ready(ev[i].data.ptr, since); /* may close only that one */
		if (n > 0)
			got += (unsigned)n;
		if (n < COLLECT_BATCH)
			break;
	}
	s->collections++;
	/* the rate decides between ticking and waking per request */
	s->window_n += got;
	if (s->stamps && now - s->window_t0 >= TICK_WINDOW_NS) {
		uint64_t per_grain_x100 = s->window_n * 100 * s->grain / (now - s->window_t0);
		if (!s->ticking && per_grain_x100 >= TICK_ON * 100 && s->wait_head)
			tick_start(s);
		else if (s->ticking && per_grain_x100 < TICK_OFF * 100)
			tick_stop(s);
		s->window_t0 = now;
		s->window_n = 0;
	}
	return got;
}

void upstream_rfd_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *s = arg;
	s->wakeups++;
	collect(s);
}

/* When the bytes just read arrived: the kernel's stamp of the last segment
 * (cmsg SCM_TIMESTAMPNS), on the monotonic clock, not before the previous
 * collection (since) and not after now; 0 without a stamp. */
uint64_t upstream_arrival(const struct server *s, struct msghdr *m, uint64_t since)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		struct timespec ts;
		memcpy(&ts, CMSG_DATA(h), sizeof(ts));
		int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - s->real_minus_mono;
		if (t < (int64_t)since)
			return since;
		if ((uint64_t)t > s->collected) { /* it may have come during the collection */
			uint64_t now = upstream_mono_ns();
			return (uint64_t)t < now ? (uint64_t)t : now;
		}
		return (uint64_t)t;
	}
	return 0;
}
