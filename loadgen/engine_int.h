/* engine_int: what the HTTP/1.x loop (engine.c), its io_uring back end
 * (engine_uring.c) and the HTTP/2 driver (driver_h2.c) share inside lg_run():
 * the run-wide state, one thread's state and results, and ab's counting
 * rules. Not part of loadgen's API. */
#ifndef LOADGEN_ENGINE_INT_H
#define LOADGEN_ENGINE_INT_H

#include "engine.h"
#include "ev.h"
#include "resp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define CBUFFSIZE 8192  /* ab's header buffer: a head must fit in 8191 bytes */
#define RBUFSIZE 65536  /* read buffer per thread */
#define GPBUFSIZE 65536 /* -g rows buffered per thread before write() */
#define MAXEVENTS 256

enum cstate { ST_UNCONN, ST_CONNECTING, ST_WRITE, ST_READ, ST_IDLE, ST_RATEWAIT };

struct conn {
	int fd;
	int state;
	int keepalive, gotheader, chunked, chunk_done, writing, has_status;
	int want_out; /* EPOLLOUT is in the interest set */
	int status;
	long cl; /* Content-Length seen, -1 if none */
	size_t read, bread, length, wrote;
	int cbx;
	char *cbuff; /* allocated only when a head arrives in pieces */
	uint64_t start, connect, endwrite, beginread;
	uint64_t intended; /* --rate: when this request should have started */
	struct resp_chunked ch;
	/* io_uring only: which operations are in flight (LGU_* bits), the
	 * generation that tells their completions from a closed socket's, and
	 * what arrived while the request was still being sent (handled after
	 * the send, in the order the epoll loop would read it) */
	unsigned ur_ops;
	uint32_t ur_gen;
	int held_res; /* 0 none, 1 end of stream, < 0 a receive error */
	char *early;
	size_t early_len;
};

struct shared {
	_Atomic int stop;
	int stopfd;
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
	uint64_t wall_off; /* wall clock minus monotonic, microseconds */
	pthread_mutex_t gpmu;
	int uring; /* the HTTP/1 loops run on io_uring (engine_uring.c) */
	enum ev_kind kind; /* the event loops of driver_h2.c run on this back end */
};

struct lgu;

struct thr {
	const struct lg_conf *cf;
	struct shared *g;
	int id, nthreads;
	struct ev *ev; /* this thread's event loop (driver_h2.c) */
	int epfd;
	struct lgu *ur; /* the io_uring back end; NULL: epoll */
	struct conn *conns;
	struct conn **pending; /* keep-alive connections whose next request waits */
	int npending;
	int nconns, initialized, active, addr;
	long requests, started;
	struct lg_result r;
	uint64_t last;
	uint64_t interval; /* --rate: per connection, microseconds */
	int doclen_claimed;
	int ref_status;
	char *buf;
	char *gp;
	size_t gplen;
	uint64_t gp_sec;
	char gp_date[32];
	_Atomic uint64_t p_done, p_bad;
	pthread_t tid;
	int joined;
};

/* engine.c's helpers, used by both loops */
void lge_stop_shared(struct shared *g);
void lge_wake_all(struct shared *g);
/* Records ab's fatal exit (apr_err(): "what: strerror (code)", status code). */
void lge_fatal(struct thr *t, const char *prefix, const char *what, int code);
struct sockaddr;
int lge_socket(struct thr *t, const struct lg_conf *cf, const struct sockaddr *sa);
bool lge_connect_failed(struct thr *t, int e);
void lge_publish_failed(struct thr *t);
void lge_gp_flush(struct thr *t);
/* ab's "save out time" block: one finished request, from its timestamps. */
void lge_save(struct thr *t, uint64_t start, uint64_t connect, uint64_t endwrite,
              uint64_t beginread, uint64_t now, int ka, int ok);
/* ab's document-length rule plus what ab misses (truncated body, status
 * unlike the first); 1 when the response failed. */
int lge_check_length(struct thr *t, size_t bread, int gotheader, long cl, int has_status,
                     int status);

/* The outcomes of lge_open(). */
enum { LGE_FATAL = -2, LGE_REFUSED = -1, LGE_CONNECTING = 0, LGE_CONNECTED = 1 };

/* Opens a socket to t's current address (bound with -B, sized with -b,
 * TCP_NODELAY when nodelay) and starts connecting it, watched on t's loop
 * as s for h (watch: what to announce once connected, EV_WRITE for the
 * connect's end). LGE_REFUSED when the connect failed at once: ab's rule
 * is applied and the caller tries again; LGE_FATAL when the run is over. */
int lge_open(struct thr *t, struct ev_sock *s, const struct ev_handler *h, unsigned watch,
             int nodelay);
/* Closes what lge_open() opened. */
void lge_close(struct thr *t, struct ev_sock *s);

/* driver_h2.c: one thread's HTTP/2 load (cf->h2) on t->ev */
void lge_h2_run(struct thr *t);

/* engine.c's state machine, driven by engine_uring.c's completions */
void lge_io_ready(struct thr *t, struct conn *c, uint32_t events); /* connect finished */
void lge_io_sent(struct thr *t, struct conn *c, int res, uint64_t now);
void lge_io_received(struct thr *t, struct conn *c, const char *p, int res, uint64_t now);

/* engine_uring.c: the io_uring back end of the HTTP/1 loop. Operations are
 * queued as SQEs and go to the kernel together in lgu_wait()'s single
 * io_uring_enter(), which also waits for and dispatches the completions. */
#define LGU_RECV 1u /* a multishot receive is armed */
#define LGU_SEND 2u
#define LGU_POLL 4u /* waiting for a connect to finish */
#ifdef LOADGEN_HAVE_URING
/* 0 when this kernel runs everything the back end needs (probed once). */
int lgu_probe(char *why, size_t cap);
int lgu_thread_init(struct thr *t); /* in the thread that will use it */
void lgu_thread_free(struct thr *t);
void lgu_watch_connect(struct thr *t, struct conn *c);
void lgu_arm_recv(struct thr *t, struct conn *c);
void lgu_send(struct thr *t, struct conn *c, const char *p, size_t len);
/* Cancels what is in flight on c's socket; its completions are ignored. */
void lgu_forget(struct thr *t, struct conn *c);
/* Submits, waits up to wait_us for at least one completion, dispatches
 * them all; the number dispatched, or -errno. */
int lgu_wait(struct thr *t, uint64_t wait_us);
#else
static inline int lgu_probe(char *why, size_t cap)
{
	snprintf(why, cap, "built without liburing");
	return -1;
}
static inline int lgu_thread_init(struct thr *t)
{
	(void)t;
	return -1;
}
static inline void lgu_thread_free(struct thr *t)
{
	(void)t;
}
static inline void lgu_watch_connect(struct thr *t, struct conn *c)
{
	(void)t, (void)c;
}
static inline void lgu_arm_recv(struct thr *t, struct conn *c)
{
	(void)t, (void)c;
}
static inline void lgu_send(struct thr *t, struct conn *c, const char *p, size_t len)
{
	(void)t, (void)c, (void)p, (void)len;
}
static inline void lgu_forget(struct thr *t, struct conn *c)
{
	(void)t, (void)c;
}
static inline int lgu_wait(struct thr *t, uint64_t wait_us)
{
	(void)t, (void)wait_us;
	return -ENOSYS;
}
#endif

#endif
