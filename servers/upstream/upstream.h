/* upstream.h — what the three files of the upstream stub share (upstream.c:
 * the server; upstream_setup.c: its command line and listen socket;
 * upstream_http.c: its HTTP text helpers and query overrides;
 * upstream_clock.c: the answers waiting for their delay and the requests
 * collected on their timer). The stub is a program, not a library: nothing
 * outside this folder uses it.
 */
#ifndef COROBENCH_UPSTREAM_H
#define COROBENCH_UPSTREAM_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define PROG "upstream"
#define MAX_SIZE (1UL << 30)      /* largest body, bytes */
#define MAX_DELAY (3600UL * 1000) /* longest delay, ms */

struct config {
	const char *listen;
	unsigned long delay_ms;
	unsigned long size;
	int backlog;
	bool quiet;
	bool wake_per_request;
};

/* The command line into cfg (defaults already there): 0 go on, 1 --help or
 * --version done, -1 bad usage (message printed). */
int upstream_parse_args(struct config *cfg, int argc, char **argv);
/* Bind HOST:PORT, [V6]:PORT or :PORT and listen. The fd (non-blocking), its
 * address in bound; -1 with *why. */
int upstream_listen(const char *spec, int backlog, const char **why, char *bound, size_t boundcap);
/* p[0..len) as a decimal at most max: true and *out, or false. */
bool upstream_parse_ulong(const char *p, size_t len, unsigned long max, unsigned long *out);

/* upstream_http.c: the HTTP text helpers upstream.c uses. */
struct overrides {
	unsigned long delay, size, status;
	bool close, reset, stall;
};
/* The reason phrase of status ("Status" when unknown). */
const char *upstream_reason(int status);
/* An answer head into out: its length, 0 when it does not fit. */
size_t upstream_format_head(char *out, size_t cap, int status, unsigned long len,
                            const char *connection);
/* p[0..len) equals lit, ignoring case. */
bool upstream_token_eq(const char *p, size_t len, const char *lit);
/* Does the comma-separated header value hold token lit? */
bool upstream_has_token(const char *v, size_t len, const char *lit);
/* Apply ?delay= &size= &status= &close=1 &reset=1 &stall=1; unknown keys
 * are ignored (clients add cache busters). false on a bad value. */
bool upstream_parse_query(const char *q, size_t len, struct overrides *o);

#define IN_CAP (16 * 1024) /* request head limit (then 431) */

/* ---- upstream.c and upstream_clock.c: the server and its connections ---- */

enum mode { M_ANSWER, M_CLOSE, M_RESET, M_STALL };

/* The common answer (200, --size bytes) in its three framings. */
enum framing { F_KEEP, F_CLOSE, F_KEEP10, F_COUNT };

struct server {
	struct event_base *base;
	int lfd;
	struct event accept_ev, accept_pause, sigterm, sigint;
	struct config cfg;
	char *block; /* BLOCK bytes of PATTERN */
	/* The common answer's headers; with its body too (whole) when the body
	 * fits in BLOCK, so that it leaves in one write of one buffer. */
	char hdr[F_COUNT][160];
	size_t hdr_len[F_COUNT];
	char *whole[F_COUNT];
	size_t whole_len[F_COUNT];
	/* the answers waiting for their delay, sorted by due time */
	struct conn *wait_head, *wait_tail;
	int tfd;          /* timerfd (CLOCK_MONOTONIC), armed for wait_head */
	struct event tev; /* tfd readable: answers are due */
	uint64_t armed;   /* the time tfd is armed for, 0: disarmed */
	bool fired;       /* tfd expired and stays readable until re-armed */
	uint64_t grain;   /* ns; due times are rounded up to it */
	/* connections' read interest (see "reading on the answer clock") */
	int rfd;                 /* the epoll set of reading connections */
	struct event rfd_ev;     /* rfd readable: requests arrived (not while ticking) */
	bool ticking;            /* rfd out of the loop, collected at every grain */
	bool stamps;             /* requests carry their arrival time (SO_TIMESTAMPNS) */
	uint64_t collected;      /* monotonic ns before the last collection's epoll_wait */
	int64_t real_minus_mono; /* CLOCK_REALTIME - CLOCK_MONOTONIC at that time, ns */
	uint64_t window_t0;      /* the rate's window: since when, and */
	uint64_t window_n;       /* how many connections had requests */
	struct conn *conns;      /* open connections, for shutdown */
	unsigned long accepted, requests, open;
	unsigned long wakeups, collections; /* by a request; collections of requests */
};

struct conn {
	struct server *s;
	int fd;
	struct event wev;
	struct conn *prev, *next;
	uint64_t arrived;           /* while the bytes just read are processed: when they came */
	uint64_t due;               /* while waiting: when the answer may leave */
	struct conn *wprev, *wnext; /* the wait list */
	bool waiting;               /* in the wait list */
	bool busy;                  /* a request is being answered */
	bool reading;               /* in s->rfd (from accept on, but for back-pressure and EOF) */
	bool eof;                   /* the client's side ended while its answer was pending */
	bool keep;                  /* keep the connection after this answer */
	enum mode mode;
	unsigned long skip; /* request body bytes still to discard */
	/* the answer in progress */
	int status;
	bool head;
	bool http10;
	bool in_process;        /* inside process(): answered() must not recurse */
	unsigned long size;     /* announced Content-Length */
	unsigned long body_out; /* body bytes actually sent (< size for reset) */
	const char *hdr;
	size_t hdr_len;
	size_t sent;      /* of hdr_len + body_out */
	const char *text; /* a body that is not the pattern (/_stats) */
	char hdr_buf[256];
	char text_buf[192];
	size_t in_len;
	char in[IN_CAP];
};

static inline uint64_t upstream_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* upstream_clock.c (see "the answers waiting" and "reading on the answer
 * clock" there). */
void upstream_wait_add(struct conn *c, uint64_t due);
void upstream_wait_remove(struct conn *c);
void upstream_wait_fire_cb(evutil_socket_t fd, short what, void *arg); /* tfd readable */
void upstream_rfd_cb(evutil_socket_t fd, short what, void *arg);       /* rfd readable */
/* When the bytes read into m arrived (the kernel's stamp), 0 without one. */
uint64_t upstream_arrival(const struct server *s, struct msghdr *m, uint64_t since);

/* upstream.c, for upstream_clock.c: start writing the answer set up in c
 * (-1 when c is gone); read what came on c (since: the collection before). */
int upstream_send_answer(struct conn *c);
void upstream_read_ready(struct conn *c, uint64_t since);

#endif
