/* stats.h — live counters of one worker process, shared by both workers:
 * what is open and in flight now (connections, requests, HTTP/2 streams,
 * upstream fetches, coroutines and pooled stacks) and what has happened
 * (requests served, accept pauses). They answer "did anything leak?" in the
 * hostile and faulty-upstream tests, two ways: a SIGUSR1 makes the worker
 * log one line, and the opt-in --stats-path answers the same as JSON.
 *
 * One worker per process, so the counters are this process's: the worker
 * increments the event counters in place (plain increments, no atomics)
 * and supplies the gauges it already keeps through a fill callback, read
 * only when somebody asks.
 */
#ifndef COROBENCH_STATS_H
#define COROBENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>

struct app;
struct fetcher;

struct worker_stats {
	unsigned long conns;              /* live client connections */
	unsigned long inflight;           /* requests (HTTP/1.1 and streams) the app holds */
	unsigned long streams;            /* HTTP/2 streams open */
	unsigned long fetches;            /* upstream fetches in flight (fetcher_inflight) */
	unsigned long coros;              /* coroutines alive (coro only) */
	unsigned long stack_pool;         /* free stacks kept in the pool (coro only) */
	unsigned long long requests;      /* requests handed to the app, ever */
	unsigned long long accept_pauses; /* out-of-descriptor episodes, ever */
};

/* This process's event counters; the worker bumps requests itself. */
extern struct worker_stats stats_counters;

/* Fill the gauges (conns, inflight, streams, coros, stack_pool) of *out;
 * the rest is already there. */
typedef void (*stats_fill_fn)(void *arg, struct worker_stats *out);

/* Bind this process's worker: prog names it in log lines, fetcher gives
 * the in-flight fetches (may be NULL), fill the gauges. */
void stats_bind(const char *prog, const struct fetcher *fetcher, stats_fill_fn fill, void *arg);

/* A snapshot of every counter. */
void stats_snapshot(struct worker_stats *out);

/* "PROG[PID]: stats conns=N ..." with a newline; the length, or -1 when
 * cap is too small. */
int stats_format_line(char *buf, size_t cap);
/* {"pid":N,"conns":N,...} with a newline; the length, or -1. */
int stats_format_json(char *buf, size_t cap);

/* Write the line to stderr in one write(2) (SIGUSR1 handler on the loop). */
void stats_log(void);

/* When path is non-NULL and non-empty: an app that answers a GET (or
 * HEAD) to exactly path with stats_format_json and hands every other
 * request to inner. Otherwise inner itself, so the default costs nothing.
 * One per process (the worker's app). */
const struct app *stats_app_wrap(const struct app *inner, const char *path);

/* Out-of-descriptor handling, one line per episode, not per attempt:
 * call stats_accept_paused() each time accept(2) fails with EMFILE/ENFILE
 * (it logs and counts only the first of an episode) and
 * stats_accept_resumed() when accept(2) says EAGAIN while paused: the
 * backlog was drained without running out, so the episode is over (logs
 * once). Ending it at the first successful accept instead would log a new
 * episode each time a burst of queued clients refills the table. */
void stats_accept_paused(int err);
void stats_accept_resumed(void);
bool stats_accept_is_paused(void);

/* Descriptors this process has open now (counts /proc/self/fd), -1 if
 * unknown. Slow: for log lines only. */
int stats_open_fds(void);

#endif
