/* engine_int: what the run (engine.c) shares with the protocol drivers
 * (driver_h1.c, driver_h2.c): the run-wide state, one thread's state and
 * results, the connection set-up, and ab's counting rules. Not part of
 * loadgen's API. */
#ifndef LOADGEN_ENGINE_INT_H
#define LOADGEN_ENGINE_INT_H

#include "engine.h"
#include "ev.h"
#include "resp.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define GPBUFSIZE 65536 /* -g rows buffered per thread before write() */

struct shared {
	_Atomic int stop;
	int stopfd;               /* an eventfd, readable once stop is set: every loop wakes */
	_Atomic uint64_t doclen1; /* first good response's body length + 1; 0 = not yet */
	_Atomic int ref_status;   /* first response's status, 0 = not yet */
	_Atomic long done_total;  /* for the heartbeat with several threads */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go; /* the first head arrived: other threads may start */
	int fatal;
	int fatal_code;
	char fatal_msg[256];
	uint64_t start, stoptime;
	uint64_t record_from; /* the warm-up's end (start without one) */
	uint64_t sched_end;   /* --rate: no request is due from here on */
	uint64_t wall_off;    /* wall clock minus monotonic, microseconds */
	pthread_mutex_t gpmu;
	enum ev_kind kind; /* every thread's event loop runs on this back end */
};

struct thr {
	const struct lg_conf *cf;
	struct shared *g;
	int id, nthreads;
	struct ev *ev; /* this thread's event loop */
	int nconns, active, addr;
	long requests, started;
	long requests_share; /* -n's share, while the warm-up lifts it */
	long warm_done;      /* requests finished in the warm-up */
	bool recording;      /* past the warm-up: lge_save() counts */
	/* requests whose place in -n is spent although they are not complete
	 * (not in r.done): timed out (-s), or a head over 8 KiB; see
	 * lge_all_over() */
	long spent;
	struct lg_result r;
	uint64_t last;
	uint64_t last_start; /* --rate: when the thread's latest request started */
	uint64_t end;        /* when its driver returned */
	int doclen_claimed;
	int ref_status;
	char *gp;
	size_t gplen;
	uint64_t gp_sec;
	char gp_date[32];
	_Atomic uint64_t p_done, p_bad;
	pthread_t tid;
	int joined;
};

void lge_stop_shared(struct shared *g);
void lge_wake_all(struct shared *g);
/* Records ab's fatal exit (apr_err(): "what: strerror (code)", status code). */
void lge_fatal(struct thr *t, const char *prefix, const char *what, int code);
/* A connect failed with errno e: ab's rule (the next address while nothing
 * succeeded, else a failure; the run aborted after 10). False when aborted. */
bool lge_connect_failed(struct thr *t, int e);
/* The failures so far, for the progress line (read by lg_run()'s thread). */
static inline void lge_publish_failed(struct thr *t)
{
	uint64_t f = (uint64_t)(t->r.bad + t->r.err_timeout + t->r.err_truncated + t->r.err_status +
	                        t->r.err_reset);
	atomic_store_explicit(&t->p_bad, f, memory_order_relaxed);
}
void lge_gp_flush(struct thr *t);
/* The warm-up is over: what t counted so far goes (the figures of its
 * requests, none of which lge_save() recorded), -n's budget comes back
 * less the requests still in flight (they finish, and count, after), and
 * recording starts. The connections stay. */
void lge_begin(struct thr *t);
/* The drivers' loops: at the warm-up's end, lge_begin(); the wait of a loop
 * turn before it ends no later than the warm-up. */
static inline void lge_check_begin(struct thr *t, uint64_t now, uint64_t *wait_us)
{
	if (__builtin_expect(t->recording, 1))
		return;
	if (now >= t->g->record_from)
		lge_begin(t);
	else if (t->g->record_from - now < *wait_us)
		*wait_us = t->g->record_from - now;
}
/* ab's "save out time" block: one finished request, from its timestamps.
 * With --rate, start is the request's intended start. */
void lge_save(struct thr *t, uint64_t start, uint64_t connect, uint64_t endwrite,
              uint64_t beginread, uint64_t now, int ka, int ok);
/* --rate: what the open model adds for one request about to be saved by
 * lge_save() (call it first, with the same now and ok): its uncorrected
 * time from actual (its connect, or its send on a connection opened before
 * it was due) and how late that was after intended; busy: the connection
 * was still busy with an earlier request at the intended start. */
void lge_save_rate(struct thr *t, uint64_t intended, uint64_t actual, int busy, uint64_t now,
                   int ok);
/* --rate: a request starts now (at actual): counted as sent when the
 * schedule was not over yet. */
static inline void lge_rate_started(struct thr *t, uint64_t actual)
{
	if (actual < t->g->sched_end)
		t->r.sent++;
	t->last_start = actual;
}
/* ab's document-length rule plus what ab misses (truncated body, status
 * unlike the first); 1 when the response failed. */
int lge_check_length(struct thr *t, size_t bread, int gotheader, long cl, int has_status,
                     int status);

/* -n: every request the thread had is over, complete or not (spent). The
 * run's end: counting only the complete ones, a timeout left it waiting for
 * ever on the other connections (kept alive, idle, with nothing to send). */
static inline bool lge_all_over(const struct thr *t)
{
	return t->r.done + t->spent >= t->requests;
}

/* Budget left and not stopped: a new request (or connection) may start. */
static inline bool lge_may_start(const struct thr *t)
{
	return t->started < t->requests && !atomic_load_explicit(&t->g->stop, memory_order_relaxed);
}

/* --rate: whether a request due at due may start now, on a connection that
 * was last free at free_at. Only what falls due within the schedule; after
 * -t's end, only a request whose connection was free when it fell due (the
 * loop woke late), not the backlog of a busy one: the end leaves that
 * unsent, and the run then only waits for the answers to what it sent (the
 * drain). */
static inline bool lge_rate_may_send(const struct thr *t, uint64_t due, uint64_t free_at,
                                     uint64_t now)
{
	if (due >= t->g->sched_end)
		return false;
	return !t->cf->tlimit_us || now < t->g->stoptime || free_at <= due;
}

/* --rate, the open model's schedule: request k of the run's connection j
 * (0..C-1, numbered across the threads: lge_conn_index()) is due at
 * start + (j + k*C) / R. Every connection carries the same R/C, and since
 * the connections' first starts are 1/R apart, the run's requests are due
 * one every 1/R seconds from the first second on (wrk2 also gives every
 * connection rate/connections, but starts them all at once). Computed from
 * k rather than accumulated, so no rounding drifts over a long run. */
static inline uint64_t lge_due(const struct thr *t, uint64_t j, uint64_t k)
{
	double us = ((double)j + (double)k * (double)t->cf->concurrency) * 1e6 / t->cf->rate;
	return t->g->start + (uint64_t)us;
}

/* -s: a connect (or its wait for room in a full Unix listener's queue)
 * took longer than the timeout. It was for the connection's next request,
 * which has no place in -n yet (started counts a request as it goes out):
 * the place is taken now and spent, a Timeout, and under --rate that
 * request's slot in the connection's schedule (request *k of connection j,
 * due at *due) is over too. Tried again instead, as it was, a server that
 * never accepts held a -n run for ever, a Timeout every -s. With no place
 * left the connection would only have idled: nothing is counted. */
static inline void lge_connect_expired(struct thr *t, uint32_t j, uint64_t *k, uint64_t *due)
{
	if (t->started >= t->requests)
		return;
	t->started++;
	t->spent++;
	if (t->cf->rate > 0)
		*due = lge_due(t, j, ++*k);
	t->r.err_timeout++;
	lge_publish_failed(t);
}

/* ST_BUSY/H2_BUSY's retry timer (counted in *nretry) is stopped. */
static inline void lge_retry_stop(struct ev *ev, struct ev_timer *tm, int *nretry)
{
	if (ev_timer_armed(tm)) {
		ev_timer_stop(ev, tm);
		(*nretry)--;
	}
}

/* The run-wide number of thread t's connection i: round robin over the
 * threads, which is how lg_run() splits -c (the first C % threads threads
 * get one more). */
static inline uint32_t lge_conn_index(const struct thr *t, int i)
{
	return (uint32_t)(t->id + i * t->nthreads);
}

/* The outcomes of lge_open(). LGE_BUSY: a Unix-domain listener's queue is
 * full (its connect() says EAGAIN, where TCP would retransmit the SYN and
 * stay connecting): nothing is open, the driver tries again shortly
 * (LGE_BUSY_RETRY_US later). */
enum { LGE_FATAL = -2, LGE_REFUSED = -1, LGE_CONNECTING = 0, LGE_CONNECTED = 1, LGE_BUSY = 2 };
#define LGE_BUSY_RETRY_US 1000

/* Opens a socket to t's current address (bound with -B, sized with -b,
 * TCP_NODELAY when nodelay and the address is TCP's) and starts connecting it, watched on t's loop
 * as s for h (watch: what to announce once connected, EV_WRITE for the
 * connect's end). LGE_REFUSED when the connect failed at once: ab's rule
 * is applied and the caller tries again; LGE_FATAL when the run is over. */
int lge_open(struct thr *t, struct ev_sock *s, const struct ev_handler *h, unsigned watch,
             int nodelay);
/* Closes what lge_open() opened. */
void lge_close(struct thr *t, struct ev_sock *s);

/* The protocol drivers: one thread's load on t->ev, until it is done,
 * stopped or out of time. */
void lge_h1_run(struct thr *t); /* driver_h1.c */
void lge_h2_run(struct thr *t); /* driver_h2.c, cf->h2 */

#endif
