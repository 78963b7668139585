/* coro_server.c — the implicit-coroutine HTTP worker (gunicorn -k gevent, in
 * C): the shared pre-fork master runs worker_main() in each worker process;
 * a worker is one hub (libevent loop) with one coroutine per connection.
 *
 * A connection's coroutine reads, parses every complete request in what it
 * read, runs the app for each in order (an app that waits parks only this
 * coroutine), gathers the answers in one output buffer and writes them with
 * one write per batch. The per-request path allocates nothing of its own:
 * the read buffer is on the coroutine's stack, the parser and the output
 * buffer are reused for the connection's life, the Date header is cached by
 * the codec.
 *
 * HTTP/2 (prior knowledge or h2c upgrade, on the same port): the
 * connection's coroutine owns the session and the socket, and every stream
 * runs the app in a coroutine of its own (see README.md, "HTTP/2").
 */
#include "coro.h"
#include "hub.h"

#include "app_host.h"
#include "corobench_config.h"
#include "fetch.h"
#include "h2.h"
#include "http1.h"
#include "master.h"
#include "options.h"
#include "stats.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "coro-server"
/* Read buffer, on the coroutine's stack: pages it never fills cost no RSS. */
#define CONN_RBUF (16 * 1024)
/* A long pipeline is flushed in pieces so the output buffer stays small. */
#define CONN_FLUSH_AT (64 * 1024)
/* Accepts per readiness event before giving the loop back. */
#define ACCEPT_BATCH 64
#define PARSER_CACHE 256
/* Finished stacks kept for reuse: enough for bursts of new connections;
 * past it a finished stack is unmapped, so a burst of 10,000 connections
 * does not keep its dirty stack pages resident for good. */
#define STACKS_KEPT 1024
/* After accept(2) fails for want of descriptors (EMFILE and friends). */
#define ACCEPT_RETRY_MS 100
#define LINGER_MS 500
/* With keep-alive off, still bound the wait for a request or a write. */
#define CONN_READ_MS 30000

struct cfg {
	const struct app *app;
	unsigned worker_connections;
	unsigned stack_kib;
	unsigned max_coros; /* coroutines (connections + streams); 0: derived */
};

struct op;
struct conn;
struct h2conn;

struct worker {
	const struct server_opts *opts;
	const struct cfg *cfg;
	struct event_base *base;
	struct hub *hub;
	struct fetcher *fetcher;
	struct http1_limits limits;
	struct h2_limits h2_limits;
	int listen_fd;
	unsigned nconns;             /* connections (not stream coroutines): --worker-connections */
	unsigned inflight, nstreams; /* requests the app holds; HTTP/2 streams (stats) */
	unsigned max_coros;          /* hard cap on coroutines, streams included */
	bool at_coro_cap;            /* logged once per episode */
	unsigned ka_ms;              /* keep-alive idle timeout; 0: one request per connection */
	unsigned read_ms;            /* wait for (the rest of) a request or for a write */
	bool accepting, stopping;
	struct event accept_ev, retry_ev, term_ev, int_ev, grace_ev, usr1_ev;
	struct conn *conns; /* live connections, for the shutdown */
	struct op *free_ops;
	struct http1_parser *parsers[PARSER_CACHE];
	unsigned nparsers;
};

struct conn {
	struct worker *w;
	struct hub_fd hfd;
	struct hub_task *task;
	struct http1_parser *parser;
	struct http_obuf out;
	struct conn *prev, *next;
	struct h2conn *h2; /* after the switch to HTTP/2 */
	bool idle;         /* waiting for a next request, nothing half-read */
	bool broken;       /* out of memory while answering: close */
};

/* One request in flight: the app's context and what its async calls
 * delivered, waiting to run on the request's own coroutine. */
struct creq {
	struct app_ctx ctx; /* first: the ops get a struct app_ctx * */
	struct conn *c;     /* HTTP/1.1 only; an HTTP/2 stream answers through its session */
	struct hub_task *task;
	int http_minor;
	bool keep_alive;
	bool head;                        /* a HEAD request: the answer's head only */
	struct op *pending;               /* started, not completed */
	struct op *done_head, *done_tail; /* completed, not yet delivered */
	struct worker *w;
};

/* An async call of the explicit style (app_fetch_async, app_sleep_async). */
struct op {
	struct op *next, *prev;
	struct creq *r;
	bool is_timer;
	app_fetch_cb fetch_cb;
	app_timer_cb timer_cb;
	void *arg;
	struct fetch_req *freq;
	struct event timer;
	struct app_fetch_result res;
	void *body;
};

/* ---- async call records, pooled per worker ---- */

static struct op *op_get(struct worker *w)
{
	struct op *op = w->free_ops;
	if (op) {
		w->free_ops = op->next;
		return op;
	}
	return malloc(sizeof(*op));
}

static void op_put(struct worker *w, struct op *op)
{
	op->next = w->free_ops;
	w->free_ops = op;
}

static void op_link(struct creq *r, struct op *op)
{
	op->r = r;
	op->prev = NULL;
	op->next = r->pending;
	if (r->pending)
		r->pending->prev = op;
	r->pending = op;
}

/* Completed: from the pending list to the delivery queue, wake the request. */
static void op_complete(struct op *op)
{
	struct creq *r = op->r;
	if (op->prev)
		op->prev->next = op->next;
	else
		r->pending = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = NULL;
	if (r->done_tail)
		r->done_tail->next = op;
	else
		r->done_head = op;
	r->done_tail = op;
	hub_wake(r->task);
}

/* ---- the app's view of waiting (struct app_ctx_ops) ---- */

struct fetch_wait {
	struct hub_task *task;
	bool done;
	struct app_fetch_result res;
	void *body;
};

static void fetch_wait_done(void *arg, struct app_fetch_result *res, void *body)
{
	struct fetch_wait *fw = arg;
	fw->res = *res;
	fw->body = body;
	fw->done = true;
	hub_wake(fw->task);
}

/* Blocking style: park this coroutine until the fetcher is done. */
static int op_fetch(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	struct creq *r = (struct creq *)ctx;
	struct worker *w = r->w;
	struct fetch_wait fw = {.task = hub_self(w->hub)};
	struct fetch_req *fr = NULL;
	int rc = fetcher_get(w->fetcher, url, fetch_wait_done, &fw, &fr);
	if (rc != 0) {
		*out = (struct app_fetch_result){.error = (enum app_fetch_error)rc};
		return rc;
	}
	while (!fw.done) {
		if (hub_park(w->hub) != 0) {
			fetch_cancel(fr);
			*out = (struct app_fetch_result){.error = APP_FETCH_EINTERNAL};
			return APP_FETCH_EINTERNAL;
		}
	}
	app_ctx_own(ctx, fw.body);
	*out = fw.res;
	out->body = fw.body;
	return (int)out->error;
}

static void op_sleep_ms(struct app_ctx *ctx, unsigned ms)
{
	struct creq *r = (struct creq *)ctx;
	(void)hub_sleep(r->w->hub, ms);
}

static void op_fetch_async_done(void *arg, struct app_fetch_result *res, void *body)
{
	struct op *op = arg;
	op->res = *res;
	op->body = body;
	op->freq = NULL;
	op_complete(op);
}

static int op_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	struct creq *r = (struct creq *)ctx;
	struct worker *w = r->w;
	struct op *op = op_get(w);
	if (!op)
		return APP_FETCH_ENOMEM;
	op->is_timer = false;
	op->fetch_cb = cb;
	op->arg = arg;
	op->body = NULL;
	int rc = fetcher_get(w->fetcher, url, op_fetch_async_done, op, &op->freq);
	if (rc != 0) {
		op_put(w, op);
		return rc;
	}
	op_link(r, op);
	return 0;
}

static void op_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	op_complete(arg);
}

static void op_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	struct creq *r = (struct creq *)ctx;
	struct worker *w = r->w;
	struct op *op = op_get(w);
	if (!op) {
		/* app_sleep_async cannot fail and the callback must come: with
		 * no memory for a small record the worker cannot keep that
		 * promise; the master replaces a worker that dies. */
		fprintf(stderr, "%s: out of memory arming a timer\n", PROG);
		abort();
	}
	op->is_timer = true;
	op->timer_cb = cb;
	op->arg = arg;
	op->freq = NULL;
	op_link(r, op);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_assign(&op->timer, w->base, op_timer_fired, op);
	event_base_update_cache_time(w->base); /* as hub_sleep: never early */
	evtimer_add(&op->timer, &tv);
}

static void op_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                       size_t len)
{
	struct creq *r = (struct creq *)ctx;
	int rc = r->head ? http1_write_head(&r->c->out, r->http_minor, status, content_type, len,
	                                    r->keep_alive)
	                 : http1_write_response(&r->c->out, r->http_minor, status, content_type,
	                                        body, len, r->keep_alive);
	if (rc != 0)
		r->c->broken = true;
}

static const struct app_ctx_ops coro_ops = {
    .fetch = op_fetch,
    .sleep_ms = op_sleep_ms,
    .fetch_async = op_fetch_async,
    .sleep_async = op_sleep_async,
    .respond = op_respond,
};

/* ---- a request ---- */

/* The connection is going away mid-request: stop what the app started. */
static void creq_cancel_pending(struct creq *r, struct worker *w)
{
	while (r->pending) {
		struct op *op = r->pending;
		r->pending = op->next;
		if (op->is_timer)
			evtimer_del(&op->timer);
		else if (op->freq)
			fetch_cancel(op->freq);
		op_put(w, op);
	}
	while (r->done_head) {
		struct op *op = r->done_head;
		r->done_head = op->next;
		free(op->body);
		op_put(w, op);
	}
	r->ctx.pending = 0;
}

/* After app_ctx_run: wait, parked, until the app has answered and nothing
 * it started is pending. Async results are delivered here, on the request's
 * coroutine, so a callback may use the blocking calls too. Returns false
 * when the request was cancelled (shutdown ran out of time, or an HTTP/2
 * stream was reset); what was pending has been cancelled then. */
static inline __attribute__((always_inline)) bool creq_wait(struct creq *r)
{
	struct worker *w = r->w;
	while (!app_ctx_finished(&r->ctx)) {
		struct op *op = r->done_head;
		if (!op) {
			if (hub_park(w->hub) != 0) {
				creq_cancel_pending(r, w);
				return false;
			}
			continue;
		}
		r->done_head = op->next;
		if (!r->done_head)
			r->done_tail = NULL;
		if (op->is_timer) {
			app_timer_cb cb = op->timer_cb;
			void *arg = op->arg;
			op_put(w, op);
			app_ctx_deliver_timer(&r->ctx, cb, arg);
		} else {
			struct app_fetch_result res = op->res;
			app_fetch_cb cb = op->fetch_cb;
			void *arg = op->arg, *body = op->body;
			op_put(w, op);
			res.body = body;
			app_ctx_deliver_fetch(&r->ctx, cb, arg, &res, body);
		}
	}
	return true;
}

/* Run the app on one request until it has answered and nothing it started
 * is pending. Returns false when the request was cancelled. */
static bool serve_request(struct conn *c, const struct http1_request *hr, bool keep_alive)
{
	struct worker *w = c->w;
	/* Field by field: app_ctx_init fills in ctx, and a zeroing initializer
	 * of the whole struct would be a rep stos per request. */
	struct creq r;
	r.c = c;
	r.task = c->task;
	r.http_minor = hr->req.http_minor;
	r.keep_alive = keep_alive;
	r.head = app_method_is_head(hr->req.method);
	r.pending = r.done_head = r.done_tail = NULL;
	r.w = w;
	w->inflight++;
	stats_counters.requests++;
	app_ctx_init(&r.ctx, &coro_ops, w->opts->upstream);
	app_ctx_run(&r.ctx, w->cfg->app, &hr->req);
	bool ok = creq_wait(&r);
	app_ctx_release(&r.ctx);
	w->inflight--;
	return ok;
}

/* ---- a connection ---- */

static void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;
	w->nconns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Deferred: whatever way the coroutine ends, the connection is released. */
static void conn_cleanup(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	hub_fd_close(&c->hfd);
	close(c->hfd.fd);
	http_obuf_free(&c->out);
	if (c->parser) {
		if (w->nparsers < PARSER_CACHE) {
			http1_parser_reset(c->parser);
			w->parsers[w->nparsers++] = c->parser;
		} else {
			http1_parser_free(c->parser);
		}
	}
	conn_unlink(c);
}

static int conn_flush(struct conn *c)
{
	if (c->out.len == 0)
		return 0;
	ssize_t n = hub_write(&c->hfd, c->out.data, c->out.len, c->w->read_ms);
	if (n < 0)
		return -1;
	http_obuf_consume(&c->out, c->out.len);
	return 0;
}

/* After an error answer: stop sending, read and drop what the client still
 * sends for a moment, so closing does not reset the connection before the
 * client has read the answer. */
static void conn_linger(struct conn *c, char *buf, size_t cap)
{
	shutdown(c->hfd.fd, SHUT_WR);
	size_t dropped = 0;
	while (dropped < 1024 * 1024) {
		ssize_t n = hub_read(&c->hfd, buf, cap, LINGER_MS);
		if (n <= 0)
			break;
		dropped += (size_t)n;
	}
}

/* ---- HTTP/2: the connection's coroutine owns the session and the socket,
 * every stream runs in a coroutine of its own ---- */

/* An answer (content type and body) up to this size waits on the stream's
 * own stack for the handler to finish; a bigger one is copied to the heap. */
#define H2_INLINE_ANSWER 512

struct hstream;

/* On the heap, not on the connection's stack: a stream coroutine may still
 * be unwinding when the connection's coroutine has ended, and the request
 * views it holds live in the session. The last of them frees it. */
struct h2conn {
	struct worker *w;
	struct conn *c; /* NULL once the connection's coroutine is done with it */
	struct h2_session *s;
	struct event kick_ev;    /* a stream answered: wake the connection to flush */
	struct hstream *streams; /* stream coroutines still running */
	unsigned refs;           /* the connection + every running stream */
	bool kicked;             /* an answer waits to be flushed */
	bool busy;               /* the connection's coroutine runs; it flushes before it parks */
	bool holding;            /* inside h2_session_upgrade: stream 1 becomes held_req */
	bool goaway;             /* our GOAWAY(NO_ERROR) is queued */
	int32_t held_id;
	const struct app_request *held_req;
};

/* One stream: its coroutine's frame. */
struct hstream {
	struct creq r; /* first: the ops get a struct app_ctx * */
	struct h2conn *hc;
	int32_t id;
	bool answered; /* app_respond came: the answer is in buf */
	int status;
	char *buf; /* content type, NUL, body */
	size_t ct_len, len;
	struct hstream *prev, *next;
	char inline_buf[H2_INLINE_ANSWER];
};

static void h2conn_unref(struct h2conn *hc)
{
	if (--hc->refs > 0)
		return;
	h2_session_free(hc->s);
	free(hc);
}

static void h2_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct h2conn *hc = arg;
	if (hc->c)
		hub_wake(hc->c->task);
}

/* A stream's answer is queued in the session: make the connection's
 * coroutine flush it. Through the loop, not a direct resume: a stream must
 * never run the connection's coroutine on top of itself (the connection
 * could end and free what the stream still uses). */
static void h2conn_kick(struct h2conn *hc)
{
	if (!hc->c || hc->kicked)
		return;
	hc->kicked = true;
	if (!hc->busy)
		event_active(&hc->kick_ev, EV_TIMEOUT, 1);
}

/* app_respond for a stream: keep the answer until the request is finished
 * (handler and callbacks returned); the request's views, which live in the
 * session, must stay valid until then, and answering releases them. */
static void op_h2_respond(struct app_ctx *ctx, int status, const char *content_type,
                          const void *body, size_t len)
{
	struct hstream *st = (struct hstream *)ctx;
	size_t ct_len = strlen(content_type); /* app_respond never passes NULL */
	char *buf = st->inline_buf;
	if (ct_len + 1 + len > sizeof(st->inline_buf)) {
		buf = malloc(ct_len + 1 + len);
		if (!buf)
			return; /* unanswered: RST_STREAM(INTERNAL_ERROR) */
	}
	memcpy(buf, content_type, ct_len + 1);
	if (len)
		memcpy(buf + ct_len + 1, body, len);
	st->buf = buf;
	st->ct_len = ct_len;
	st->len = len;
	st->status = status;
	st->answered = true;
}

static const struct app_ctx_ops coro_h2_ops = {
    .fetch = op_fetch,
    .sleep_ms = op_sleep_ms,
    .fetch_async = op_fetch_async,
    .sleep_async = op_sleep_async,
    .respond = op_h2_respond,
};

/* Below the hard cap on coroutines? Says so once per episode when not. */
static bool coro_cap_ok(struct worker *w)
{
	if (__builtin_expect(hub_ntasks(w->hub) < w->max_coros, 1))
		return true;
	if (!w->at_coro_cap) {
		w->at_coro_cap = true;
		fprintf(stderr,
		        "%s[%ld]: coroutine cap reached (%u alive, --max-coroutines %u); refusing "
		        "new streams and pausing accept\n",
		        PROG, (long)getpid(), hub_ntasks(w->hub), w->max_coros);
	}
	return false;
}

struct stream_start {
	struct h2conn *hc;
	int32_t id;
	const struct app_request *req;
};

static void stream_task(struct hub *h, void *arg)
{
	struct stream_start start = *(struct stream_start *)arg;
	struct h2conn *hc = start.hc;
	struct worker *w = hc->w;
	struct hstream st; /* not zeroed as a whole: inline_buf needs no zeroing */
	st.r.c = NULL;
	st.r.task = hub_self(h);
	st.r.http_minor = 1;
	st.r.keep_alive = st.r.head = false;
	st.r.pending = st.r.done_head = st.r.done_tail = NULL;
	st.r.w = w;
	st.hc = hc;
	st.id = start.id;
	st.answered = false;
	st.buf = NULL;
	st.prev = NULL;
	st.next = hc->streams;
	if (hc->streams)
		hc->streams->prev = &st;
	hc->streams = &st;
	hc->refs++;
	w->nstreams++;
	w->inflight++;
	stats_counters.requests++;

	app_ctx_init(&st.r.ctx, &coro_h2_ops, w->opts->upstream);
	app_ctx_run(&st.r.ctx, w->cfg->app, start.req);
	bool ok = creq_wait(&st.r);
	app_ctx_release(&st.r.ctx);
	w->inflight--;
	w->nstreams--;

	if (st.prev)
		st.prev->next = st.next;
	else
		hc->streams = st.next;
	if (st.next)
		st.next->prev = st.prev;
	/* Answer even a stream the client reset: that late answer sends
	 * nothing and releases the request's storage. */
	if (ok && st.answered)
		(void)h2_session_respond(hc->s, st.id, st.status, st.buf, st.buf + st.ct_len + 1,
		                         st.len);
	else
		(void)h2_session_reset_stream(hc->s, st.id, NGHTTP2_INTERNAL_ERROR);
	h2conn_kick(hc);
	if (st.buf != st.inline_buf)
		free(st.buf);
	h2conn_unref(hc);
}

/* A stream's coroutine starts at once and runs to its first wait (hello
 * answers right there, inside h2_session_recv). */
static void h2_spawn(struct h2conn *hc, int32_t id, const struct app_request *req)
{
	struct stream_start start = {hc, id, req};
	if (!coro_cap_ok(hc->w)) {
		/* The client may retry a refused stream: nothing of it ran. */
		(void)h2_session_reset_stream(hc->s, id, NGHTTP2_REFUSED_STREAM);
		return;
	}
	if (hub_spawn(hc->w->hub, stream_task, &start) != 0)
		(void)h2_session_reset_stream(hc->s, id, NGHTTP2_INTERNAL_ERROR);
}

static void h2_on_request(void *user, int32_t id, const struct app_request *req)
{
	struct h2conn *hc = user;
	if (hc->holding) {
		hc->held_id = id;
		hc->held_req = req;
		return;
	}
	h2_spawn(hc, id, req);
}

static void h2_on_stream_close(void *user, int32_t id, uint32_t error_code)
{
	struct h2conn *hc = user;
	if (error_code == 0)
		return; /* answered and sent: its coroutine is long done */
	if (hc->held_req && hc->held_id == id) {
		hc->held_req = NULL;
		(void)h2_session_reset_stream(hc->s, id, NGHTTP2_CANCEL); /* releases it */
		return;
	}
	/* The client gave up on it: every wait of its coroutine now fails, so
	 * its fetches and timers are cancelled and it unwinds (here and now);
	 * its answer goes nowhere. */
	for (struct hstream *st = hc->streams; st; st = st->next) {
		if (st->id == id) {
			if (!hub_cancelled(st->r.task))
				hub_cancel(st->r.task);
			return;
		}
	}
}

static const struct h2_callbacks h2_cbs = {
    .on_request = h2_on_request,
    .on_stream_close = h2_on_stream_close,
};

static struct h2conn *h2conn_new(struct conn *c)
{
	struct worker *w = c->w;
	struct h2conn *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return NULL;
	hc->s = h2_session_new(&w->h2_limits, &h2_cbs, hc);
	if (!hc->s) {
		free(hc);
		return NULL;
	}
	hc->w = w;
	hc->c = c;
	hc->refs = 1;
	hc->busy = true;
	event_assign(&hc->kick_ev, w->base, -1, 0, h2_kick_cb, hc);
	return hc;
}

/* The connection's end: cancel the streams still running (they unwind at
 * once) and let go of the session. */
static void h2conn_close(struct h2conn *hc)
{
	hc->c->h2 = NULL;
	hc->c = NULL;
	event_del(&hc->kick_ev);
	hc->held_req = NULL;
	for (;;) {
		struct hstream *st = hc->streams;
		while (st && hub_cancelled(st->r.task))
			st = st->next;
		if (!st)
			break;
		hub_cancel(st->r.task);
	}
	h2conn_unref(hc);
}

/* Serve the connection as HTTP/2 until it closes. in/nin: bytes already
 * read for the session (the preface, or what followed an upgrade). */
static void conn_h2(struct conn *c, struct h2conn *hc, char *rbuf, const char *in, size_t nin)
{
	struct worker *w = c->w;
	int rc = 0;
	c->h2 = hc;
	for (;;) {
		hc->busy = true;
		if (nin) {
			if (h2_session_recv(hc->s, in, nin) != 0)
				rc = -1;
			nin = 0;
			if (hc->held_req && rc == 0) {
				const struct app_request *req = hc->held_req;
				hc->held_req = NULL;
				h2_spawn(hc, hc->held_id, req);
			}
		}
		if (w->stopping && !hc->goaway) {
			hc->goaway = true;
			if (h2_session_goaway_graceful(hc->s) != 0)
				rc = -1;
		}
		hc->kicked = false;
		if (h2_session_flush(hc->s, &c->out) != 0)
			rc = -1;
		if (conn_flush(c) != 0)
			break;
		if (rc != 0 || h2_session_is_closed(hc->s))
			break;
		if (hc->kicked)
			continue; /* a stream answered while we wrote */
		hc->busy = false;
		/* Idle (no handler running: every open stream, if any, waits on
		 * the client, e.g. for flow-control window): the keep-alive
		 * timeout applies; the first says GOAWAY, the second closes. */
		unsigned ms = h2_session_unanswered_streams(hc->s) ? 0 : w->read_ms;
		ssize_t n = hub_read_or_woken(&c->hfd, rbuf, CONN_RBUF, ms);
		if (n == -EAGAIN)
			continue; /* woken: an answer to flush, or the shutdown */
		if (n == -ETIMEDOUT && !hc->goaway) {
			hc->goaway = true;
			if (h2_session_goaway_graceful(hc->s) != 0)
				break;
			continue;
		}
		if (n <= 0)
			break; /* closed, failed or cancelled */
		in = rbuf;
		nin = (size_t)n;
	}
	h2conn_close(hc);
}

/* The first bytes of a connection: HTTP/2 prior knowledge? Reads more while
 * they are a prefix of the client preface. Returns true when the
 * connection was served (as HTTP/2, or it closed); else *n bytes of HTTP/1.1
 * are in rbuf. */
static __attribute__((noinline)) bool conn_sniff(struct conn *c, char *rbuf, ssize_t *n)
{
	enum h2_preface pf = h2_is_preface(rbuf, (size_t)*n);
	while (pf == H2_PREFACE_PARTIAL) {
		ssize_t m = hub_read(&c->hfd, rbuf + *n, CONN_RBUF - (size_t)*n, c->w->read_ms);
		if (m <= 0)
			return true;
		*n += m;
		pf = h2_is_preface(rbuf, (size_t)*n);
	}
	if (pf == H2_PREFACE_NO)
		return false;
	struct h2conn *hc = h2conn_new(c);
	if (!hc)
		return true; /* out of memory: close */
	conn_h2(c, hc, rbuf, rbuf, (size_t)*n);
	return true;
}

/* An HTTP/1.1 request asking for "Upgrade: h2c": 101, then HTTP/2 on the
 * connection, stream 1 being that request. rest/nrest: what followed it in
 * rbuf. Returns false when it is not an h2c upgrade (or the settings are
 * malformed): then it is served as HTTP/1.1. */
static __attribute__((noinline)) bool conn_upgrade(struct conn *c, const struct http1_request *hr,
                                                   char *rbuf, const char *rest, size_t nrest)
{
	struct app_str settings;
	if (!h2_upgrade_request(&hr->req, &settings))
		return false;
	struct h2conn *hc = h2conn_new(c);
	if (!hc)
		return false;
	/* Stream 1 is held until the client's preface: its answer must not
	 * share a read with the 101 (curl 7.88 fails when more than its buffer
	 * follows the 101). */
	hc->holding = true;
	int rc = h2_session_upgrade(hc->s, settings, &hr->req);
	hc->holding = false;
	if (rc != 0) {
		hc->c = NULL;
		h2conn_unref(hc);
		return false;
	}
	/* Earlier pipelined answers first, then the 101, then our SETTINGS. */
	if (conn_flush(c) == 0 && hub_write(&c->hfd, H2_UPGRADE_RESPONSE,
	                                    sizeof(H2_UPGRADE_RESPONSE) - 1, c->w->read_ms) >= 0)
		conn_h2(c, hc, rbuf, rest, nrest);
	else {
		c->h2 = hc;
		h2conn_close(hc);
	}
	return true;
}

/* The loop's cached clock in ms: cheap, and only read on the slow path. */
static int64_t hub_now_ms(struct hub *h)
{
	struct timeval tv;
	event_base_gettimeofday_cached(hub_base(h), &tv);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

struct conn_start {
	struct worker *w;
	int fd;
};

/* The connection's life; c lives in conn_task's frame, which outlives this
 * one, so the deferred conn_cleanup(c) never touches a dead frame. */
static __attribute__((noinline)) void conn_serve(struct hub *h, struct conn *c, int fd)
{
	struct worker *w = c->w;
	char rbuf[CONN_RBUF];
	int64_t head_t0 = 0; /* ms: a partial head began (0: no deadline) */
	uint8_t head_nl = 0; /* end-of-head scan state, see http1_head_scan() */
	bool head_done = false;

	http_obuf_init(&c->out);
	w->nconns++;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	if (hub_fd_open(h, &c->hfd, fd, HUB_FD_TCP) != 0) {
		close(fd);
		conn_unlink(c);
		return;
	}
	coro_defer(hub_task_coro(c->task), conn_cleanup, c);
	c->parser = w->nparsers ? w->parsers[--w->nparsers] : http1_parser_new(&w->limits);
	if (!c->parser)
		return;

	bool partial = false; /* the parser holds the start of a request */
	/* The first read decides: HTTP/2 prior knowledge, or HTTP/1.1 (which
	 * may still upgrade to h2c); the next reads are at the loop's end. */
	c->idle = true;
	ssize_t n = hub_read(&c->hfd, rbuf, sizeof(rbuf), w->read_ms);
	c->idle = false;
	if (n <= 0 || conn_sniff(c, rbuf, &n))
		return;
	for (;;) {
		const char *p = rbuf;
		size_t left = (size_t)n;
		bool close_after = false, send_continue = false;
		while (left > 0 && !close_after) {
			struct http1_request hr;
			size_t used = 0;
			enum http1_result rc = http1_parse(c->parser, p, left, &used, &hr);
			p += used;
			left -= used;
			if (rc == HTTP1_NEED_MORE) {
				/* Track the head of an unfinished request (slow path). */
				if (!partial) {
					head_done = false;
					head_nl = 0;
					head_t0 = 0;
				}
				if (!head_done && http1_head_scan(&head_nl, p - used, used))
					head_done = true;
				if (head_done)
					head_t0 = 0;
				else if (head_t0 == 0)
					head_t0 = hub_now_ms(h);
				partial = true;
				send_continue = http1_parser_take_continue(c->parser);
				break;
			}
			partial = false;
			head_t0 = 0;
			if (rc == HTTP1_ERROR) {
				int status = http1_parser_error_status(c->parser);
				const char *why = http_status_reason(status);
				if (http1_write_response(&c->out, 1, status, NULL, why, strlen(why),
				                         false) != 0)
					c->broken = true;
				(void)conn_flush(c);
				conn_linger(c, rbuf, sizeof(rbuf));
				return;
			}
			bool ka = hr.keep_alive && !w->stopping && w->ka_ms > 0;
			if (__builtin_expect(hr.upgrade, 0) && !w->stopping &&
			    conn_upgrade(c, &hr, rbuf, p, left))
				return;
			if (!serve_request(c, &hr, ka) || c->broken)
				return;
			if (!ka)
				close_after = true;
			else if (c->out.len >= CONN_FLUSH_AT && conn_flush(c) != 0)
				return;
		}
		if (conn_flush(c) != 0 || close_after)
			break;
		/* "Expect: 100-continue": the client holds the body back until
		 * told to go on. */
		if (send_continue &&
		    hub_write(&c->hfd, HTTP1_CONTINUE, sizeof(HTTP1_CONTINUE) - 1, w->read_ms) < 0)
			break;

		if (w->stopping && !partial)
			break;
		/* A request head must be complete within read_ms of its first
		 * byte, however slowly it trickles in (nginx's
		 * client_header_timeout): each read waits only for what is left. */
		unsigned ms = w->read_ms;
		if (__builtin_expect(head_t0 != 0 && partial, 0)) {
			int64_t left = head_t0 + (int64_t)w->read_ms - hub_now_ms(h);
			if (left <= 0)
				break;
			if (left < (int64_t)ms)
				ms = (unsigned)left;
		}
		c->idle = !partial;
		n = hub_read(&c->hfd, rbuf, sizeof(rbuf), ms);
		c->idle = false;
		if (n <= 0)
			break; /* closed, idle too long, cancelled or failed */
	}
}

static void conn_task(struct hub *h, void *arg)
{
	struct conn_start start = *(struct conn_start *)arg;
	struct conn c = {.w = start.w, .task = hub_self(h)};
	struct coro *co = hub_task_coro(c.task);
	unsigned mark = coro_defer_mark(co);
	conn_serve(h, &c, start.fd);
	/* Run conn_serve's defers (conn_cleanup(&c)) while c is alive: the
	 * coroutine runs leftovers only after this frame is gone. */
	coro_defer_run(co, mark);
}

/* ---- accepting ---- */

static void accept_pause(struct worker *w)
{
	if (w->accepting) {
		event_del(&w->accept_ev);
		w->accepting = false;
	}
}

static void accept_resume(struct worker *w)
{
	if (!w->accepting && !w->stopping && w->nconns < w->cfg->worker_connections &&
	    hub_ntasks(w->hub) < w->max_coros) {
		if (event_add(&w->accept_ev, NULL) == 0)
			w->accepting = true;
	}
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct worker *w = arg;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (w->nconns >= w->cfg->worker_connections || !coro_cap_ok(w)) {
			accept_pause(w); /* resumed when a connection ends */
			return;
		}
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* Drained without running out: an episode ends. */
				if (__builtin_expect(stats_accept_is_paused(), 0))
					stats_accept_resumed();
				return;
			}
			accept_pause(w);
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: back off instead of spinning,
				 * saying so once per episode. */
				if (errno == EMFILE || errno == ENFILE)
					stats_accept_paused(errno);
				struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
				evtimer_add(&w->retry_ev, &tv);
			}
			/* Anything else (EINVAL: the master shut the listener
			 * down at shutdown) means there is nothing to accept. */
			return;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn_start start = {w, fd};
		if (hub_spawn(w->hub, conn_task, &start) != 0)
			close(fd);
	}
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	accept_resume(arg);
}

static void task_ended(void *arg)
{
	struct worker *w = arg;
	if (w->stopping) {
		if (hub_ntasks(w->hub) == 0)
			event_base_loopbreak(w->base);
		return;
	}
	if (w->at_coro_cap && hub_ntasks(w->hub) < w->max_coros) {
		w->at_coro_cap = false;
		fprintf(stderr, "%s[%ld]: below the coroutine cap again\n", PROG, (long)getpid());
	}
	accept_resume(w);
}

/* ---- shutdown ---- */

static void grace_expired_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	/* Every wait now fails: the requests still running unwind and their
	 * connections close; task_ended breaks the loop after the last. */
	hub_cancel_all(w->hub);
	if (hub_ntasks(w->hub) == 0)
		event_base_loopbreak(w->base);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct worker *w = arg;
	if (w->stopping)
		return;
	w->stopping = true;
	accept_pause(w);
	evtimer_del(&w->retry_ev);
	/* HTTP/2 connections send GOAWAY and serve their streams to the end. */
	for (struct conn *c = w->conns; c; c = c->next)
		if (c->h2)
			h2conn_kick(c->h2);
	/* Idle keep-alive connections go now; busy ones after their answer
	 * (which says Connection: close). */
	for (;;) {
		struct conn *c = w->conns;
		while (c && !(c->idle && !hub_cancelled(c->task)))
			c = c->next;
		if (!c)
			break;
		hub_cancel(c->task);
	}
	if (hub_ntasks(w->hub) == 0) {
		event_base_loopbreak(w->base);
		return;
	}
	/* The master kills a worker still running at the graceful timeout;
	 * unwind a little before, so cleanup runs and the exit is ours. */
	unsigned ms = w->opts->graceful_timeout * 1000u;
	ms -= ms / 4 < 250 ? ms / 4 : 250;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(&w->grace_ev, &tv);
}

/* ---- live counters (stats.h) ---- */

static void stats_fill(void *arg, struct worker_stats *out)
{
	const struct worker *w = arg;
	out->conns = w->nconns;
	out->inflight = w->inflight;
	out->streams = w->nstreams;
	out->coros = hub_ntasks(w->hub);
	out->stack_pool = hub_stack_pool(w->hub);
}

static void usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	stats_log();
}

/* ---- the worker process ---- */

static int worker_main(const struct worker_env *env, void *arg)
{
	const struct cfg *cfg = arg;
	struct worker w = {
	    .opts = env->opts,
	    .cfg = cfg,
	    .listen_fd = env->listen_fd,
	    .ka_ms = env->opts->keepalive_timeout * 1000u,
	    .limits = http1_limits_default(),
	};
	w.limits.max_body_bytes = env->opts->max_body;
	w.h2_limits.http = w.limits;
	w.h2_limits.max_streams = env->opts->h2_max_streams;
	w.read_ms = w.ka_ms ? w.ka_ms : CONN_READ_MS;
	signal(SIGPIPE, SIG_IGN);

	struct event_config *ec = event_config_new();
	if (ec) {
		/* PRECISE_TIMER for apps that sleep or fetch: libevent otherwise
		 * reads CLOCK_MONOTONIC_COARSE, a jiffy coarse, so sleeps end up
		 * to a jiffy early, and rounds waits up to epoll_wait's
		 * millisecond. It costs a timerfd_settime() per loop turn (one
		 * per ~3 hello requests under wrk, 3% of the worker's CPU), so an
		 * app that never waits, whose only timers are the connections'
		 * second-long timeouts, runs without it. */
		int fl = EVENT_BASE_FLAG_NOLOCK;
		if (cfg->app->flags & (APP_USES_BLOCKING | APP_USES_UPSTREAM))
			fl |= EVENT_BASE_FLAG_PRECISE_TIMER;
		event_config_set_flag(ec, fl);
		w.base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	if (!w.base) {
		fprintf(stderr, "%s: worker %d: cannot create the event loop\n", PROG, env->index);
		return 1;
	}
	struct fetch_opts fo = fetch_opts_default();
	fo.timeout_ms = env->opts->upstream_timeout_ms;
	w.fetcher = fetcher_new(w.base, &fo);
	unsigned keep =
	    cfg->worker_connections < STACKS_KEPT ? cfg->worker_connections : STACKS_KEPT;
	w.hub = hub_new(w.base, (size_t)cfg->stack_kib * 1024, keep);
	if (!w.fetcher || !w.hub) {
		fprintf(stderr, "%s: worker %d: %s\n", PROG, env->index, strerror(errno));
		return 1;
	}
	hub_on_task_end(w.hub, task_ended, &w);
	/* Every connection may hold h2-max-streams stream coroutines besides
	 * its own: that product is the natural ceiling; --max-coroutines
	 * lowers it (each costs a stack). */
	w.max_coros = cfg->max_coros;
	if (w.max_coros == 0) {
		unsigned long long c = (unsigned long long)cfg->worker_connections *
		                       (1ull + env->opts->h2_max_streams);
		w.max_coros = c > UINT32_MAX ? UINT32_MAX : (unsigned)c;
	}
	stats_bind(PROG, w.fetcher, stats_fill, &w);
	evsignal_assign(&w.usr1_ev, w.base, SIGUSR1, usr1_cb, &w);
	evsignal_add(&w.usr1_ev, NULL);
	event_assign(&w.accept_ev, w.base, w.listen_fd, EV_READ | EV_PERSIST, accept_cb, &w);
	evtimer_assign(&w.retry_ev, w.base, accept_retry_cb, &w);
	evtimer_assign(&w.grace_ev, w.base, grace_expired_cb, &w);
	evsignal_assign(&w.term_ev, w.base, SIGTERM, stop_cb, &w);
	evsignal_assign(&w.int_ev, w.base, SIGINT, stop_cb, &w);
	evsignal_add(&w.term_ev, NULL);
	evsignal_add(&w.int_ev, NULL);
	accept_resume(&w);

	event_base_dispatch(w.base);

	/* Only reached with no task left (or the loop failed). */
	hub_cancel_all(w.hub);
	event_del(&w.accept_ev);
	evtimer_del(&w.retry_ev);
	evtimer_del(&w.grace_ev);
	evsignal_del(&w.term_ev);
	evsignal_del(&w.int_ev);
	evsignal_del(&w.usr1_ev);
	stats_bind(PROG, NULL, NULL, NULL);
	fetcher_free(w.fetcher);
	hub_free(w.hub);
	while (w.free_ops) {
		struct op *op = w.free_ops;
		w.free_ops = op->next;
		free(op);
	}
	while (w.nparsers)
		http1_parser_free(w.parsers[--w.nparsers]);
	event_base_free(w.base);
	return 0;
}

int main(int argc, char **argv)
{
	struct server_opts opts;
	server_opts_default(&opts);
	struct cfg cfg = {.worker_connections = 1000, .stack_kib = 64};
	const struct opt_def extra[] = {
	    {"worker-connections", OPT_UINT, &cfg.worker_connections, "N",
	     "most connections (coroutines) a worker serves at once; beyond it the worker "
	     "stops accepting",
	     1, 1000000},
	    {"stack-size", OPT_UINT, &cfg.stack_kib, "KIB",
	     "coroutine stack size in KiB (mmap'd, a guard page below, pooled); the "
	     "connection's 16 KiB read buffer lives on it",
	     32, 65536},
	    {"max-coroutines", OPT_UINT, &cfg.max_coros, "N",
	     "hard cap on coroutines per worker, HTTP/2 stream coroutines included (at it: "
	     "new streams refused, accept paused, one log line); 0 = worker-connections x "
	     "(1 + h2-max-streams)",
	     0, 100000000},
	    {0},
	};
	int rc = server_opts_parse(&opts, extra, argc, argv, PROG, COROBENCH_VERSION);
	if (rc > 0)
		return 0;
	if (rc < 0)
		return 2;
	cfg.app = app_find(opts.app);
	if (!cfg.app) {
		fprintf(stderr, "%s: unknown app '%s' (see --help)\n", PROG, opts.app);
		return 2;
	}
	cfg.app = stats_app_wrap(cfg.app, opts.stats_path);
	if (fetch_global_init() != 0) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
		return 1;
	}
	return master_run(&opts, worker_main, &cfg, PROG);
}
