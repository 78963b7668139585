/* core.h — the worker core: everything both workers do to serve a request
 * except wait for it. coro-server (a coroutine per connection and stream,
 * parked on the hub) and async-server (callbacks on the loop) each link this
 * and supply only their way of waiting, through struct core_class.
 *
 * What lives here, once:
 *   - the process: flags, app lookup, RLIMIT_NOFILE raised to the hard
 *     limit, the event loop (precise timers for apps that wait), SIGTERM /
 *     SIGINT with a graceful timeout that ends a quarter second early so the
 *     exit is the worker's own, SIGUSR1 and --stats-path counters, the
 *     accept loop with its back-off when descriptors run out (core.c);
 *   - a connection's HTTP/1.1 intake: HTTP/2 sniffing, parsing, the HEAD
 *     and keep-alive rules, 100-continue, the request-head deadline, error
 *     answers and the lingering close that follows them, the h2c upgrade,
 *     start and finish accounting (core_h1.c);
 *   - the HTTP/2 side: the session, stream 1 of an upgrade held until the
 *     client's preface, each stream's start, kept answer and end, GOAWAY on
 *     shutdown and idleness (core_h2.c);
 *   - the explicit calls (app_fetch_async, app_sleep_async): pooled
 *     records, delivery, cancellation, and one out-of-resources rule: the
 *     request is answered 503 and the worker lives on (core_calls.c).
 *
 * How a worker plugs in: its per-worker struct starts with struct core, its
 * connection with struct core_conn, its HTTP/2 connection with struct
 * core_h2, its stream with struct core_stream. The core calls the worker
 * back (struct core_class) where waiting is involved: a request that did
 * not finish in its handler, a completed explicit call, a new socket, a
 * stream to start or to cancel. Everything on a request's hot path that is
 * not a hook is inline here or a direct call; a hook is one indirect call.
 *
 * One worker per process (per event loop); nothing here is thread-safe.
 */
#ifndef COROBENCH_CORE_H
#define COROBENCH_CORE_H

#include "app_host.h"
#include "clock.h"
#include "fetch.h"
#include "h2.h"
#include "http1.h"
#include "master.h"
#include "options.h"
#include "stats.h"
#include "tls.h"

#include <event2/event.h>
#include <event2/event_struct.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct core_conn;
struct core_req;
struct core_stream;
struct core_h2;
struct core_op;

/* A pipeline's answers are written once this much has gathered. */
#define CORE_FLUSH_AT (64 * 1024)
/* After an error answer: drain the client's input until EOF, for at most
 * this long and this much, so closing does not reset the connection before
 * the client has read the answer. */
#define CORE_LINGER_MS 2000
#define CORE_LINGER_BYTES (1024 * 1024)
/* The read (and write) timeout when keep-alive is off. */
#define CORE_READ_MS_NO_KEEPALIVE 30000
/* An HTTP/2 answer up to this size is kept in the stream record itself. */
#define CORE_ANSWER_INLINE 512

/* ---- what a worker supplies: how a request waits ---- */

struct core_class {
	const char *prog;   /* "coro-server": log lines, --help */
	size_t size;        /* of the worker's struct, which starts with struct core */
	size_t h2_size;     /* of its HTTP/2 connection, which starts with struct core_h2 */
	const char *blocks; /* the warning for an app that makes blocking calls, or NULL */

	/* app.h's blocking-style calls. */
	int (*fetch)(struct app_ctx *ctx, const char *url, struct app_fetch_result *out);
	void (*sleep_ms)(struct app_ctx *ctx, unsigned ms);

	/* After the loop and the fetcher exist (cfg: what main gave core_main):
	 * 0, or -1 with errno. finish undoes it, with no connection left. */
	int (*start)(struct core *w, void *cfg);
	void (*finish)(struct core *w);
	/* May the worker take another connection now? NULL: always. Accept
	 * pauses when not; core_accept_resume() tries again. */
	bool (*may_accept)(struct core *w);
	/* Serve fd (connected, non-blocking): 0, or -1 with fd closed. */
	int (*conn_open)(struct core *w, int fd);
	/* Tasks (coroutines) still alive besides connections; NULL: none. The
	 * loop ends at shutdown when this and the connections are 0. */
	unsigned (*live)(struct core *w);

	/* HTTP/1.1: c's request is not finished when its handler returned.
	 * true: it finished meanwhile (coro parks until it has); false: it
	 * goes on (async: core_h1_done() comes later), or it was cancelled
	 * (the worker called core_h1_abort()). */
	bool (*h1_wait)(struct core_conn *c);
	/* HTTP/1.1: a request is parsed but w->max_inflight are in flight;
	 * c->queued is set. The worker calls core_h1_serve(c) for it later.
	 * NULL when max_inflight is unlimited. */
	void (*h1_queue)(struct core_conn *c);
	/* Write c's gathered output now (a long pipeline): 0, or -1 with
	 * c->dead set. */
	int (*flush)(struct core_conn *c);
	/* The loop turn in which c was corked (core_cork) is over: send its
	 * answers now. c is off the list already. */
	void (*uncork)(struct core_conn *c);
	/* In-flight requests went below max_inflight: queued ones may start.
	 * NULL when max_inflight is unlimited. */
	void (*slot_freed)(struct core *w);

	/* HTTP/2: a session is set up on h->c (worker fields are zero);
	 * 0, or -1 (the connection closes). NULL: nothing to do. */
	int (*h2_open)(struct core_h2 *h);
	/* A stream's request is complete: start it (core_stream_init and
	 * core_stream_run), queue it, or refuse it (h2_session_reset_stream). */
	void (*h2_request)(struct core_h2 *h, int32_t id, const struct app_request *req);
	/* The client reset st, or its connection goes, while it runs or
	 * waits: stop it; it must end (core_stream_end) or, if never run, be
	 * dropped (core_stream_drop), before the call returns. */
	void (*stream_cancel)(struct core_stream *st);
	/* h's connection is gone and the session with it (h2_size bytes are
	 * freed right after). NULL: nothing to do. */
	void (*h2_free)(struct core_h2 *h);

	/* An explicit call of r completed; it waits on r's queue. The worker
	 * runs core_req_deliver(r) now or on r's own stack. */
	void (*wake)(struct core_req *r);

	/* SIGTERM: stopping is set and accept paused. Idle connections go
	 * now, busy ones after their answer (which says Connection: close),
	 * HTTP/2 ones after GOAWAY and their streams. */
	void (*stop)(struct core *w);
	/* The graceful timeout is (almost) up, or core_free: cancel what
	 * still runs; every connection ends. */
	void (*expire)(struct core *w);
	/* The gauges only this worker knows (coros, stack_pool); NULL: 0. */
	void (*fill)(struct core *w, struct worker_stats *out);
};

/* ---- the worker ---- */

enum { CORE_PARSER_CACHE = 256 };

struct core {
	const struct core_class *cls;
	const struct server_opts *opts;
	const struct app *app;
	struct event_base *base;
	struct fetcher *fetcher;
	struct fetch_opts fopts;
	struct http1_limits limits;
	struct h2_limits h2_limits;
	unsigned read_ms;      /* wait for (the rest of) a request, or for a write */
	bool keep_alive;       /* --keepalive-timeout > 0 */
	bool stopping;         /* SIGTERM seen */
	bool ka_now;           /* keep_alive && !stopping: an answer may keep the connection */
	unsigned max_inflight; /* requests the app may hold before intake waits */
	unsigned inflight;     /* requests (HTTP/1.1 and streams) the app holds */
	unsigned nconns, nstreams;
	struct core_conn *conns; /* live connections */
	int listen_fd;
	bool tcp; /* the listener is TCP (not AF_UNIX): TCP_NODELAY, short reads empty it */
	struct tls_server *tls; /* --tls-cert: every connection speaks TLS; NULL: cleartext */
	bool accepting;
	bool cork;               /* answers wait for the end of the loop turn (core_cork) */
	struct core_conn *corked, **corked_tail; /* in the order they were corked */
	unsigned ncorked;
	struct event cork_ev;
	struct event accept_ev, retry_ev, grace_ev, term_ev, int_ev, usr1_ev;
	struct app_ctx_ops h1_ops, h2_ops;
	struct core_op *free_ops;
	struct http1_parser *parsers[CORE_PARSER_CACHE];
	unsigned nparsers;
};

/* The whole program: parse the shared flags plus extra (which write into
 * cfg), find the app, then run the pre-fork master with a core worker of
 * cls in every worker process. The exit status for main(). */
int core_main(int argc, char **argv, const struct core_class *cls, const struct opt_def *extra,
              void *cfg);

/* A worker on base without the master (tests drive it): listen_fd may be
 * -1 (then only core_adopt feeds it). NULL with errno on failure. */
struct core *core_new(struct event_base *base, const struct core_class *cls,
                      const struct server_opts *opts, const struct app *app, void *cfg,
                      int listen_fd);
/* Take a connected socket (made non-blocking here): 0, or -1 (closed). */
int core_adopt(struct core *w, int fd);
/* The graceful stop of SIGTERM; the loop breaks when nothing is left. */
void core_stop(struct core *w);
/* Close every connection and free the worker (the event base is the caller's). */
void core_free(struct core *w);

/* Accept again if it paused for the worker's cap (may_accept). */
void core_accept_resume(struct core *w);
/* A connection or task ended: at shutdown, end the loop if it was the last. */
void core_maybe_done(struct core *w);

/* ---- a request: HTTP/1.1 (in its connection) or a stream ---- */

struct core_req {
	struct app_ctx ctx; /* first: the app's calls get a struct app_ctx * */
	struct core *w;
	struct core_op *ops;              /* explicit calls started, not completed */
	struct core_op *done, *done_tail; /* completed, not yet delivered */
	void *waiter;                     /* the worker's handle for it (coro: its task) */
};

/* Deliver every completed call of r, in order (each callback runs now). */
void core_req_deliver(struct core_req *r);
/* Cancel what r started and has not delivered: transfers dropped, timers
 * disarmed, bodies freed; no callback will run. */
void core_req_cancel(struct core_req *r);
/* Free the worker's pool of call records (at its end). */
void core_calls_free(struct core *w);
/* Completed calls wait on r? */
static inline bool core_req_has_done(const struct core_req *r)
{
	return r->done != NULL;
}

/* ---- a connection ---- */

struct core_conn {
	struct core *w;
	int fd;
	struct tls_conn *tls; /* TLS under the codecs (tls.h); NULL: cleartext */
	struct http1_parser *parser;
	struct http_obuf out;   /* answers the socket has not taken yet */
	struct http_obuf *obuf; /* where answers are appended now: out, or (async) the
	                           worker's shared buffer while out is empty */
	struct core_h2 *h2;     /* after the switch to HTTP/2 */
	struct core_conn *prev, *next;
	struct http1_request req; /* the request being served; views are the parser's */
	struct core_req r;        /* ...and its record */
	int64_t head_t0;          /* ms (loop clock): a partial head began; 0: none */
	uint8_t head_nl;          /* end-of-head scan state, see http1_head_scan() */
	bool head_done;           /* the partial request's head is complete */
	bool fresh;               /* nothing parsed yet: may still be HTTP/2 */
	bool partial;             /* bytes of an unfinished request were parsed */
	bool head;                /* the request is a HEAD */
	bool busy;                /* the request is in the app */
	bool queued;              /* a parsed request waits for max_inflight */
	bool answer_ka;           /* what the last answer promised: keep-alive */
	bool close_after;         /* no request after this one: close once written */
	bool linger;              /* ...and drain the input first (an error answer) */
	bool dead;                /* close now (write failed, out of memory, cancelled) */
	bool hold;                /* the worker's output waits for the socket: parse no more */
	bool corked;              /* in w->corked: its answers go at the end of the turn */
	struct core_conn *cork_next, **cork_pprev;
};

/* Set up c for fd (the worker's struct is otherwise its own): 0, or -1
 * (out of memory; fd is closed). */
int core_conn_open(struct core *w, struct core_conn *c, int fd);
/* The end of c: cancels its request and its streams, closes fd (on TLS
 * after a best-effort close_notify). The worker has removed its events
 * first. */
void core_conn_close(struct core_conn *c);
/* Stop sending before a lingering close: TLS's close_notify (best effort,
 * never blocking), then shutdown(SHUT_WR). */
void core_conn_shut_wr(struct core_conn *c);

/* ---- answers leave at the end of the loop turn ----
 *
 * A worker that has answers for c may cork c instead of sending them: they
 * are sent, connection by connection in the order corked, by the class's
 * uncork hook once every event of this loop turn has run. On loopback the
 * CPU that sends also wakes the reader's (an inter-processor interrupt on
 * a VM): answers sent back to back wake the load generator once per turn
 * instead of once per answer (results/README.md, "Answers at the end of
 * the loop turn"). --send-at-once turns it off (w->cork false). */

/* Is corking worth it now? Not with --send-at-once, and not when no other
 * event is active in this turn (the one running is not counted): nothing
 * would go with the answer, so it is sent at once, and a lone request (c =
 * 1) costs no more instructions than before. */
static inline bool core_cork_worth(struct core *w)
{
	return w->cork && event_base_get_num_events(w->base, EVENT_BASE_COUNT_ACTIVE) > 0;
}

/* Put c at the end of the corked list (the turn's last event sends it). */
static inline void core_cork(struct core_conn *c)
{
	struct core *w = c->w;
	if (!w->corked)
		event_active(&w->cork_ev, EV_TIMEOUT, 1);
	c->corked = true;
	w->ncorked++;
	c->cork_next = NULL;
	c->cork_pprev = w->corked_tail;
	*w->corked_tail = c;
	w->corked_tail = &c->cork_next;
}

/* Take c off the corked list (it goes, or sends now after all). */
static inline void core_uncork(struct core_conn *c)
{
	if (!c->corked)
		return;
	struct core *w = c->w;
	*c->cork_pprev = c->cork_next;
	if (c->cork_next)
		c->cork_next->cork_pprev = c->cork_pprev;
	else
		w->corked_tail = c->cork_pprev;
	c->corked = false;
	w->ncorked--;
}

/* Where answers go now (a field the worker keeps right, not a test, on
 * the hot path). */
static inline struct http_obuf *core_obuf(struct core_conn *c)
{
	return c->obuf;
}

/* The connection waits for nothing of its own: no request started or
 * parsed in part, no output, no HTTP/2. */
static inline bool core_conn_idle(const struct core_conn *c)
{
	return !c->busy && !c->queued && !c->partial && !c->h2 && c->out.len == 0;
}

/* HTTP/1.1 intake: core_h1.h. */

/* ---- HTTP/2 (core_h2.c) ---- */

struct core_h2 {
	struct h2_session *s;
	struct core *w;
	struct core_conn *c;                /* NULL once the connection is gone */
	struct core_stream *streams;        /* started and not ended */
	unsigned refs;                      /* the connection + every started stream */
	bool holding;                       /* inside h2_session_upgrade: stream 1 is held */
	bool goaway;                        /* our GOAWAY(NO_ERROR) is queued */
	int32_t held_id;                    /* stream 1 of an upgrade, until the client's */
	const struct app_request *held_req; /* next bytes (its preface) come */
};

struct core_stream {
	struct core_req r; /* first */
	struct core_h2 *h;
	struct core_stream *prev, *next;
	int32_t id;
	bool run;      /* the app ran (holds an in-flight slot) */
	bool answered; /* app_respond came: the answer is kept below */
	int status;
	char *ans; /* content type, NUL, body */
	size_t ct_len, len;
	struct http_obuf big; /* an answer over the inline size (kept for reuse;
	                         the worker inits it when it makes the record,
	                         core_stream_free frees it) */
	char inl[CORE_ANSWER_INLINE];
};

/* Feed bytes read on an HTTP/2 connection. -1: a connection error; its
 * GOAWAY is queued, c->close_after and c->linger are set. */
int core_h2_input(struct core_conn *c, const char *data, size_t len);
/* GOAWAY if stopping, then the session's frames into core_obuf(c): 0, or
 * -1 (out of memory: close). */
int core_h2_flush(struct core_conn *c);
/* The session is over (both sides done): close once written. */
bool core_h2_closed(const struct core_conn *c);
/* Streams whose handlers still run: while there are, the connection is
 * not idle and has no read timeout. */
bool core_h2_busy(const struct core_conn *c);
/* Nothing came for the read timeout: true to close now, else GOAWAY was
 * queued (flush it). */
bool core_h2_idle(struct core_conn *c);

/* A stream on h for id: linked, counted, not run yet. */
void core_stream_init(struct core_stream *st, struct core_h2 *h, int32_t id);
/* Run the app on it: accounting, then the handler. */
void core_stream_run(struct core_stream *st, const struct app_request *req);
/* It is finished (or ok is false: cancelled): answer it with what the app
 * answered, or reset it, release it, unlink it. h may be freed when this
 * was the last reference (core_h2_unref). */
void core_stream_end(struct core_stream *st, bool ok);
/* A stream that never ran goes (reset with CANCEL). */
void core_stream_drop(struct core_stream *st);
/* The stream record dies: free its kept answer buffer. */
void core_stream_free(struct core_stream *st);
/* Drop a reference to h; the last frees the session and h. */
void core_h2_unref(struct core_h2 *h);

#endif
