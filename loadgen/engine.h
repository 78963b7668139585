/* engine: the load itself. lg_run() starts --threads threads, each with its
 * own event loop (ev.h: epoll, or io_uring where the kernel offers it,
 * chosen once per run) and a protocol driver on it: HTTP/1.x
 * (driver_h1.c: ab's per-connection state machine - connect, write the
 * request, read the response, keep alive or reconnect) or, with cf->h2,
 * HTTP/2 (driver_h2.c: each connection one session carrying up to
 * cf->streams requests at a time). Both count successes and failures
 * exactly as ab does and record every request's connect/processing/
 * waiting/total time in histograms; lg_run() waits for the threads and
 * merges their results exactly. */
#ifndef LOADGEN_ENGINE_H
#define LOADGEN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"

#define LG_MAX_ADDRS 8
/* --rate: a request that starts more than this after its intended start
 * counts as late (the timers' own jitter is tens of microseconds) */
#define LG_LATE_US 1000
/* --rate: the rate counts as kept when at least this share of the requests
 * due before the schedule's end started by then */
#define LG_KEPT_SHARE 0.99

struct tls_ctx;

/* The event loop's back end (--engine). */
enum lg_engine {
	LG_ENGINE_AUTO,  /* io_uring when built in and working, else epoll */
	LG_ENGINE_EPOLL, /* readiness: epoll_wait, then send()/recv() per request */
	LG_ENGINE_URING, /* completions: one io_uring_enter per batch of requests */
};

/* One HTTP/2 request header field (pseudo-headers first), lowercase name. */
struct lg_hdr {
	const char *name, *value;
	size_t namelen, valuelen;
};

struct lg_conf {
	const char *req; /* the whole request, body included */
	size_t reqlen;
	struct sockaddr_storage addrs[LG_MAX_ADDRS]; /* tried in turn until one answers */
	socklen_t addrlens[LG_MAX_ADDRS];
	int naddrs;
	struct sockaddr_storage bind_addr; /* -B */
	socklen_t bind_len;                /* 0: no -B */
	int concurrency;
	int threads;
	long requests;       /* -n: budget of requests */
	uint64_t tlimit_us;  /* -t: 0 = none */
	uint64_t warmup_us;  /* --warmup run inside the load: unrecorded, then -t or -n
	                      * on the same connections (closed model only) */
	uint64_t timeout_us; /* -s: a request older than this fails with a timeout */
	int keepalive;       /* -k */
	int http11;          /* --http1.1 */
	int head;            /* -i (or -m HEAD): responses carry no body */
	int nolength;        /* -l */
	int recverrok;       /* -r */
	int verbosity;       /* -v */
	int windowsize;      /* -b */
	long heartbeat;      /* print "Completed N requests" every N; 0 = never */
	int clear_line;      /* a progress line is on stderr: clear it first */
	double rate;         /* --rate: requests/s in total, 0 = closed model (engine_int.h:
	                        lge_due() is the schedule) */
	int engine;          /* enum lg_engine: what --engine asked for */
	int gnuplot_fd;      /* -g: rows streamed here; -1 = none */
	int pipeline;        /* --pipeline: HTTP/1 requests in flight per connection; <= 1 off */
	struct tls_ctx *tls; /* https://: every connection speaks TLS (tls.h); NULL: plain */
	/* --h2: HTTP/2 with prior knowledge; req/reqlen are then unused */
	int h2;
	int streams;                 /* concurrent streams per connection */
	const struct lg_hdr *h2hdrs; /* the request's header fields, sent as is */
	int h2nhdrs;
	const char *body; /* -p/-u data, NULL for none */
	size_t bodylen;
	/* called about once a second from the thread that called lg_run() */
	void (*progress)(void *arg, uint64_t done, uint64_t failed, double elapsed_s);
	void *progress_arg;
};

struct lg_result {
	long done, doneka, good, bad, epipe;
	long err_length, err_conn, err_recv, err_except, err_response;
	long err_timeout, err_truncated, err_status; /* what ab misses */
	long err_reset; /* HTTP/2: stream reset, refused by GOAWAY or cut by the connection's end */
	int64_t totalread, totalbread, totalposted;
	uint64_t doclen;
	char servername[1024];
	struct hist *ctime, *dtime, *wait, *total; /* microseconds, as ab counts */
	struct hist *ok; /* total time of the successful (not failed, 2xx) ones */
	/* --rate (the open model): total is then corrected, from each request's
	 * intended start; these keep what a closed-loop client would have seen */
	struct hist *unc;    /* total time from the actual start (uncorrected), every request */
	struct hist *unc_ok; /* the same, of the successful ones */
	struct hist *late;   /* actual start - intended start, every request */
	long late_n;         /* started more than LG_LATE_US after the intended start */
	long late_busy;      /* of those, with the connection still busy at the intended start */
	long sent;           /* requests started before the schedule's end */
	long scheduled;      /* requests due before the schedule's end */
	double schedule_s;   /* the schedule's length: -t, or -n / rate */
	double drain_s;      /* after -t's end, the wait for the answers already asked for */
	double timetaken;    /* seconds, ab's lasttime - start */
	int interrupted;     /* stopped by lg_stop() */
	int fatal;           /* ab would have exited: fatal_code is its exit status */
	int fatal_code;
	char fatal_msg[256];
	uint64_t start_wall_us;
};

/* Allocates the result's histograms; 0 or -1 when out of memory. */
int lg_result_init(struct lg_result *r);
void lg_result_free(struct lg_result *r);

/* --rate: whether the rate was kept (LG_KEPT_SHARE of the requests due
 * before the schedule's end started by then). */
bool lg_rate_kept(const struct lg_result *r);

/* Runs one load as configured; fills *out (initialised by lg_result_init).
 * Returns 0, or -1 when the run could not start (out->fatal_msg says why). */
int lg_run(const struct lg_conf *cf, struct lg_result *out);

/* The engine lg_run() will use for cf: cf->engine unless the load needs
 * epoll (--h2 always runs on epoll), AUTO resolved by probing the kernel
 * once. When io_uring is wanted but unusable, returns
 * LG_ENGINE_EPOLL and writes why into why[0..cap) (else why is ""). */
enum lg_engine lg_engine_pick(const struct lg_conf *cf, char *why, size_t cap);

/* "epoll" or "uring". */
const char *lg_engine_name(enum lg_engine e);

/* Asks a running lg_run() to stop soon; async-signal-safe. */
void lg_stop(void);

/* Monotonic microseconds. */
uint64_t lg_now_us(void);

#endif
