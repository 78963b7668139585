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
 */
#include "coro.h"
#include "hub.h"

#include "app_host.h"
#include "corobench_config.h"
#include "fetch.h"
#include "http1.h"
#include "master.h"
#include "options.h"

#include <event2/event.h>

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
#define LINGER_MS 500
/* With keep-alive off, still bound the wait for a request or a write. */
#define CONN_READ_MS 30000

struct cfg {
	const struct app *app;
	unsigned worker_connections;
	unsigned stack_kib;
};

struct op;
struct conn;

struct worker {
	const struct server_opts *opts;
	const struct cfg *cfg;
	struct event_base *base;
	struct hub *hub;
	struct fetcher *fetcher;
	struct http1_limits limits;
	int listen_fd;
	unsigned ka_ms;   /* keep-alive idle timeout; 0: one request per connection */
	unsigned read_ms; /* wait for (the rest of) a request or for a write */
	bool accepting, stopping;
	struct event accept_ev, retry_ev, term_ev, int_ev, grace_ev;
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
	bool idle;   /* waiting for a next request, nothing half-read */
	bool broken; /* out of memory while answering: close */
};

/* One request in flight: the app's context and what its async calls
 * delivered, waiting to run on the request's own coroutine. */
struct creq {
	struct app_ctx ctx; /* first: the ops get a struct app_ctx * */
	struct conn *c;
	struct hub_task *task;
	int http_minor;
	bool keep_alive;
	bool head;                        /* a HEAD request: the answer's head only */
	struct op *pending;               /* started, not completed */
	struct op *done_head, *done_tail; /* completed, not yet delivered */
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
	struct worker *w = r->c->w;
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
	(void)hub_sleep(r->c->w->hub, ms);
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
	struct worker *w = r->c->w;
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
	struct worker *w = r->c->w;
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

/* Run the app on one request and wait, parked, until it has answered and
 * nothing it started is pending. Async results are delivered here, on this
 * coroutine, so a callback may use the blocking calls too. Returns false
 * when the request was cancelled (shutdown ran out of time). */
static bool serve_request(struct conn *c, const struct http1_request *hr, bool keep_alive)
{
	struct worker *w = c->w;
	struct creq r = {
	    .c = c,
	    .task = c->task,
	    .http_minor = hr->req.http_minor,
	    .keep_alive = keep_alive,
	    .head = hr->req.method.len == 4 && memcmp(hr->req.method.base, "HEAD", 4) == 0,
	};
	app_ctx_init(&r.ctx, &coro_ops, w->opts->upstream);
	app_ctx_run(&r.ctx, w->cfg->app, &hr->req);
	bool ok = true;
	while (!app_ctx_finished(&r.ctx)) {
		struct op *op = r.done_head;
		if (!op) {
			if (hub_park(w->hub) != 0) {
				creq_cancel_pending(&r, w);
				ok = false;
				break;
			}
			continue;
		}
		r.done_head = op->next;
		if (!r.done_head)
			r.done_tail = NULL;
		if (op->is_timer) {
			app_timer_cb cb = op->timer_cb;
			void *arg = op->arg;
			op_put(w, op);
			app_ctx_deliver_timer(&r.ctx, cb, arg);
		} else {
			struct app_fetch_result res = op->res;
			app_fetch_cb cb = op->fetch_cb;
			void *arg = op->arg, *body = op->body;
			op_put(w, op);
			res.body = body;
			app_ctx_deliver_fetch(&r.ctx, cb, arg, &res, body);
		}
	}
	app_ctx_release(&r.ctx);
	return ok;
}

/* ---- a connection ---- */

static void conn_unlink(struct conn *c)
{
	struct worker *w = c->w;
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

struct conn_start {
	struct worker *w;
	int fd;
};

static void conn_task(struct hub *h, void *arg)
{
	struct conn_start start = *(struct conn_start *)arg;
	struct worker *w = start.w;
	struct conn c = {.w = w, .task = hub_self(h)};
	char rbuf[CONN_RBUF];

	http_obuf_init(&c.out);
	c.next = w->conns;
	if (w->conns)
		w->conns->prev = &c;
	w->conns = &c;
	if (hub_fd_open(h, &c.hfd, start.fd, HUB_FD_TCP) != 0) {
		close(start.fd);
		conn_unlink(&c);
		return;
	}
	coro_defer(hub_task_coro(c.task), conn_cleanup, &c);
	c.parser = w->nparsers ? w->parsers[--w->nparsers] : http1_parser_new(&w->limits);
	if (!c.parser)
		return;

	bool partial = false; /* the parser holds the start of a request */
	for (;;) {
		if (w->stopping && !partial)
			break;
		c.idle = !partial;
		ssize_t n = hub_read(&c.hfd, rbuf, sizeof(rbuf), w->read_ms);
		c.idle = false;
		if (n <= 0)
			break; /* closed, idle too long, cancelled or failed */

		const char *p = rbuf;
		size_t left = (size_t)n;
		bool close_after = false, send_continue = false;
		while (left > 0 && !close_after) {
			struct http1_request hr;
			size_t used = 0;
			enum http1_result rc = http1_parse(c.parser, p, left, &used, &hr);
			p += used;
			left -= used;
			if (rc == HTTP1_NEED_MORE) {
				partial = true;
				send_continue = http1_parser_take_continue(c.parser);
				break;
			}
			partial = false;
			if (rc == HTTP1_ERROR) {
				int status = http1_parser_error_status(c.parser);
				const char *why = http_status_reason(status);
				if (http1_write_response(&c.out, 1, status, NULL, why, strlen(why),
				                         false) != 0)
					c.broken = true;
				(void)conn_flush(&c);
				conn_linger(&c, rbuf, sizeof(rbuf));
				return;
			}
			bool ka = hr.keep_alive && !w->stopping && w->ka_ms > 0;
			if (!serve_request(&c, &hr, ka) || c.broken)
				return;
			if (!ka)
				close_after = true;
			else if (c.out.len >= CONN_FLUSH_AT && conn_flush(&c) != 0)
				return;
		}
		if (conn_flush(&c) != 0 || close_after)
			break;
		/* "Expect: 100-continue": the client holds the body back until
		 * told to go on. */
		if (send_continue &&
		    hub_write(&c.hfd, HTTP1_CONTINUE, sizeof(HTTP1_CONTINUE) - 1, w->read_ms) < 0)
			break;
	}
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
	if (!w->accepting && !w->stopping && hub_ntasks(w->hub) < w->cfg->worker_connections) {
		if (event_add(&w->accept_ev, NULL) == 0)
			w->accepting = true;
	}
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct worker *w = arg;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (hub_ntasks(w->hub) >= w->cfg->worker_connections) {
			accept_pause(w); /* resumed when a connection ends */
			return;
		}
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			accept_pause(w);
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: back off instead of spinning. */
				struct timeval tv = {0, 100 * 1000};
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
	w.read_ms = w.ka_ms ? w.ka_ms : CONN_READ_MS;
	signal(SIGPIPE, SIG_IGN);

	struct event_config *ec = event_config_new();
	if (ec) {
		/* PRECISE_TIMER: libevent otherwise reads CLOCK_MONOTONIC_COARSE,
		 * a jiffy coarse, and sleeps end up to a jiffy early. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_PRECISE_TIMER);
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
	if (fetch_global_init() != 0) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
		return 1;
	}
	return master_run(&opts, worker_main, &cfg, PROG);
}
