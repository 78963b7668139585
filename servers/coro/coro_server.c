/* coro_server.c — the implicit-coroutine worker (gunicorn -k gevent, in C):
 * how a request waits when every connection and every HTTP/2 stream is a
 * coroutine parked on the hub. Everything else about serving it — the
 * process, the codecs' rules, the explicit-call records — is the worker
 * core's (servers/core/core.h); this file is its struct core_class.
 *
 * A connection's coroutine reads into a buffer on its own stack, hands the
 * bytes to core_h1_feed(), which runs each request's handler right there;
 * a handler that waits (app_fetch, app_sleep_ms, or until its explicit
 * calls are delivered) parks this coroutine only (h1_wait). The answers
 * gathered in the connection's buffer go out in one write per read.
 *
 * HTTP/2 (coro_h2.c): the connection's coroutine owns the session and the
 * socket, and every stream runs in a coroutine of its own (stream_task),
 * which parks the same way; an answered stream wakes the connection
 * through the loop to flush. What the two files share: coro_server.h.
 */
#include "coro_server.h"

#include "core_h1.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct cfg {
	unsigned worker_connections;
	unsigned stack_kib;
	unsigned max_coros; /* coroutines (connections + streams); 0: derived */
};

/* Let cc's answers go to the worker's buffer, unless another
 * connection's answers wait there (its write parked) or cc has some of its
 * own waiting. A connection that holds it empty (parked in its request)
 * gives it up: its answers go to its own buffer from then on, so each
 * connection's bytes stay in order. Before cc's request is parsed. */
static inline void conn_share(struct worker *w, struct core_conn *cc)
{
	if (w->out_by == cc || w->out.len > 0 || cc->out.len > 0)
		return;
	if (w->out_by)
		w->out_by->obuf = &w->out_by->out;
	w->out_by = cc;
	cc->obuf = &w->out;
}

/* cc's answers go to its own buffer again; what it had in the worker's
 * is dropped (it was written, or cc is gone). */
static inline void conn_unshare(struct core_conn *cc)
{
	struct worker *w = worker_of(cc->w);
	if (w->out_by != cc)
		return;
	w->out.len = 0;
	w->out_by = NULL;
	cc->obuf = &cc->out;
}

/* The cleartext HTTP/1.1 connection whose request r is, or NULL (TLS, a
 * stream): taken before a wait, to share the worker's buffer after it. */
static inline struct core_conn *req_h1(struct worker *w, struct core_req *r)
{
	return w->feeding && &w->feeding->r == r ? w->feeding : NULL;
}

/* ---- waiting: the app's blocking calls and its explicit ones ---- */

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
	struct core_req *r = (struct core_req *)ctx;
	struct worker *w = worker_of(r->w);
	struct fetch_wait fw = {.task = hub_self(w->hub)};
	struct fetch_req *fr = NULL;
	struct core_conn *cc = req_h1(w, r);
	int rc = fetcher_get(w->core.fetcher, url, fetch_wait_done, &fw, &fr);
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
	/* The answer comes next: the warm buffer, if it is free now. */
	if (cc)
		conn_share(w, cc);
	app_ctx_own(ctx, fw.body);
	*out = fw.res;
	out->body = fw.body;
	return (int)out->error;
}

static void op_sleep_ms(struct app_ctx *ctx, unsigned ms)
{
	struct core_req *r = (struct core_req *)ctx;
	struct worker *w = worker_of(r->w);
	struct core_conn *cc = req_h1(w, r);
	if (hub_sleep(w->hub, ms) == 0 && cc)
		conn_share(w, cc);
}

/* An explicit call completed: the request's coroutine delivers it. */
static void req_wake(struct core_req *r)
{
	hub_wake(r->waiter);
}

/* Park until the app has answered and nothing it started is pending,
 * running the callbacks of its explicit calls here, on the request's own
 * coroutine, as they come (so a callback may use the blocking calls
 * too). watch: the HTTP/1.1 connection's socket, whose events wake us too:
 * a client that closes its side meanwhile is gone (as on async-server and
 * nginx: "client prematurely closed connection"). false when the request
 * was cancelled (that, a stream reset, or shutdown out of time): what it
 * started is cancelled then. */
static bool req_wait(struct core_req *r, struct hub_fd *watch, struct core_conn *share)
{
	struct hub *hub = worker_of(r->w)->hub;
	bool ok = true;
	if (watch)
		hub_fd_watch(watch, true);
	while (!app_ctx_finished(&r->ctx)) {
		if (core_req_has_done(r)) {
			if (share) /* a callback may answer: the warm buffer, if free */
				conn_share(worker_of(r->w), share);
			core_req_deliver(r);
			continue;
		}
		if ((watch && hub_fd_peer_closed(watch)) || hub_park(hub) != 0) {
			core_req_cancel(r);
			ok = false;
			break;
		}
	}
	if (watch)
		hub_fd_watch(watch, false);
	return ok;
}

bool coro_stream_wait(struct core_req *r)
{
	return req_wait(r, NULL, NULL);
}

static bool h1_wait(struct core_conn *cc)
{
	if (req_wait(&cc->r, &conn_of(cc)->hfd, cc->tls ? NULL : cc))
		return true;
	core_h1_abort(cc);
	return false;
}

/* ---- a connection ---- */

/* TLS (tls.h) sits between the socket and the codecs: what hub_read gets
 * is fed to it and its plaintext goes on; answers are encrypted into its
 * output, which is what hub_write sends. A cleartext connection never
 * comes here: conn_serve is compiled twice (conn_serve_plain, the path it
 * always was, and conn_serve_tls). */

/* Send the TLS layer's output (records of answers, of the handshake). */
static int conn_send_tls(struct conn *c)
{
	struct http_obuf *o = tls_conn_out(c->cc.tls);
	if (o->len == 0)
		return 0;
	if (hub_write(&c->hfd, o->data, o->len, c->cc.w->read_ms) < 0) {
		c->cc.dead = true;
		return -1;
	}
	o->len = 0;
	return 0;
}

static __attribute__((noinline)) int conn_flush_tls(struct core_conn *cc)
{
	if (cc->out.len > 0) {
		if (tls_conn_write(cc->tls, cc->out.data, cc->out.len) != 0) {
			cc->dead = true;
			return -1;
		}
		cc->out.len = 0;
	}
	if (conn_send_tls(conn_of(cc)) != 0)
		return -1;
	core_h1_sent(cc);
	return 0;
}

static inline __attribute__((always_inline)) int conn_flush_(struct core_conn *cc, bool tls)
{
	if (tls)
		return conn_flush_tls(cc);
	struct conn *c = conn_of(cc);
	struct http_obuf *o = core_obuf(cc);
	core_uncork(cc); /* corked answers are in o too: they go now */
	if (o->len == 0)
		return 0;
	/* While this parks (the socket is full), o->len > 0 keeps the
	 * worker's buffer cc's. */
	if (hub_write(&c->hfd, o->data, o->len, cc->w->read_ms) < 0) {
		cc->dead = true;
		return -1;
	}
	o->len = 0;
	conn_unshare(cc);
	core_h1_sent(cc);
	return 0;
}

/* Cork cc (core.h): its answers wait in its own buffer (moved there from
 * the worker's by a swap, no copy, so the worker's stays free for the
 * turn's other connections) and the coroutine goes on reading; the turn's
 * end sends them from the loop (uncork_hook), without resuming it. */
static void conn_cork(struct core_conn *cc)
{
	struct worker *w = worker_of(cc->w);
	if (cc->obuf == &w->out) {
		struct http_obuf t = cc->out; /* empty: conn_share gave it w->out */
		cc->out = w->out;
		w->out = t;
		w->out.len = 0;
		w->out_by = NULL;
		cc->obuf = &cc->out;
	}
	if (!cc->corked)
		core_cork(cc);
}

/* The end of the turn: send cc's answers. A remainder (the socket is
 * full), a failure, or a SIGTERM that came meanwhile wakes the coroutine,
 * which is reading (hub_read_or_woken): it writes the rest with
 * hub_write, ends, or (stopping, nothing half-read) closes as an idle
 * connection does. */
static void uncork_hook(struct core_conn *cc)
{
	struct http_obuf *o = &cc->out;
	ssize_t n = o->len ? write(cc->fd, o->data, o->len) : 0;
	if (n == (ssize_t)o->len) {
		o->len = 0;
		if (!cc->w->stopping)
			return;
	} else if (n > 0) {
		http_obuf_consume(o, (size_t)n);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		cc->dead = true;
	}
	hub_wake(conn_of(cc)->task);
}

static int conn_flush(struct core_conn *cc)
{
	return conn_flush_(cc, cc->tls != NULL);
}

int coro_conn_flush(struct core_conn *cc)
{
	return conn_flush(cc);
}

/* TLS: plaintext into buf, reading ciphertext from the socket as needed
 * and sending the handshake's records on the way. As hub_read (woken: as
 * hub_read_or_woken); a TLS failure is -EPROTO, close_notify is EOF. ms
 * bounds the whole call, not each socket read: ciphertext trickled a byte
 * at a time (a handshake, or a record never completed) yields no plaintext,
 * and would otherwise hold the connection past every deadline. */
__attribute__((noinline)) ssize_t coro_conn_read_tls(struct conn *c, char *buf, size_t cap,
                                                     unsigned ms, bool woken)
{
	struct tls_conn *t = c->cc.tls;
	int64_t end = ms ? core_coarse_ms() + ms : 0;
	for (;;) {
		ssize_t p = 0;
		if (tls_conn_more(t))
			p = tls_conn_read(t, buf, cap);
		if (p == 0) {
			unsigned left = 0;
			if (end) {
				int64_t now = core_coarse_ms();
				if (now >= end)
					return -ETIMEDOUT;
				left = (unsigned)(end - now);
			}
			ssize_t n = woken ? hub_read_or_woken(&c->hfd, buf, cap, left)
			                  : hub_read(&c->hfd, buf, cap, left);
			if (n <= 0)
				return n;
			if (tls_conn_feed(t, buf, (size_t)n) != 0)
				return -ENOMEM;
			p = tls_conn_read(t, buf, cap);
			if (conn_send_tls(c) != 0)
				return -EIO;
		}
		if (p > 0)
			return p;
		if (p == TLS_CLOSED)
			return 0;
		if (p < 0)
			return -EPROTO;
	}
}

static inline __attribute__((always_inline)) ssize_t conn_read_(struct conn *c, char *buf,
                                                                size_t cap, unsigned ms, bool tls)
{
	if (tls)
		return coro_conn_read_tls(c, buf, cap, ms, false);
	/* woken by uncork_hook: -EAGAIN (conn_serve_ writes the rest) */
	return hub_read_or_woken(&c->hfd, buf, cap, ms);
}

/* After an error answer: stop sending, read and drop what the client still
 * sends for a while, so closing does not reset the connection before the
 * client has read the answer. */
void coro_conn_linger(struct conn *c, char *buf)
{
	core_conn_shut_wr(&c->cc);
	int64_t end = core_coarse_ms() + CORE_LINGER_MS;
	size_t dropped = 0;
	while (dropped < CORE_LINGER_BYTES) {
		int64_t left = end - core_coarse_ms();
		if (left <= 0)
			break;
		ssize_t n = hub_read(&c->hfd, buf, CONN_RBUF, (unsigned)left);
		if (n <= 0)
			break;
		dropped += (size_t)n;
	}
}

/* The connection's life, on its coroutine; c lives in conn_task's frame. */
static inline __attribute__((always_inline)) void conn_serve_(struct conn *c, bool tls)
{
	struct core_conn *cc = &c->cc;
	struct core *w = cc->w;
	char rbuf[CONN_RBUF];
	size_t have = 0; /* bytes in rbuf not fed yet (a prefix of the HTTP/2 preface) */
	for (;;) {
		unsigned ms = core_read_ms(cc);
		if (ms == 0)
			return; /* the request head's deadline passed */
		c->idle = !cc->partial && cc->out.len == 0; /* corked answers: not idle (stop) */
		ssize_t n = conn_read_(c, rbuf + have, sizeof(rbuf) - have, ms, tls);
		c->idle = false;
		if (__builtin_expect(n == -EAGAIN, 0)) {
			/* uncork_hook: the rest of the corked answers, a failure,
			 * or stopping */
			if (cc->dead || conn_flush_(cc, tls) != 0 || (w->stopping && !cc->partial))
				return;
			continue;
		}
		if (n <= 0)
			return; /* closed, idle too long, cancelled or failed */
		have += (size_t)n;
		if (!tls) {
			conn_share(worker_of(w), cc);
			worker_of(w)->feeding = cc;
		}
		size_t used = core_h1_feed(cc, rbuf, have);
		worker_of(w)->feeding = NULL;
		if (cc->h2) {
			/* the 101 and the first frames go out from cc's own buffer */
			if (cc->obuf != &cc->out &&
			    http_obuf_append(&cc->out, cc->obuf->data, cc->obuf->len) != 0)
				cc->dead = true;
			conn_unshare(cc);
			if (cc->dead)
				return;
			coro_conn_h2(c, rbuf);
			return;
		}
		if (!tls && !cc->close_after && !cc->dead && core_obuf(cc)->len > 0 &&
		    core_cork_worth(w))
			conn_cork(cc); /* sent at the end of the turn */
		else if (cc->dead || conn_flush_(cc, tls) != 0)
			return;
		if (cc->close_after) {
			if (cc->linger)
				coro_conn_linger(c, rbuf);
			return;
		}
		if (w->stopping && !cc->partial)
			return;
		if (__builtin_expect(used < have, 0))
			memmove(rbuf, rbuf + used, have - used); /* a prefix of the preface */
		have -= used;
	}
}

static __attribute__((noinline)) void conn_serve_plain(struct conn *c)
{
	conn_serve_(c, false);
}

static __attribute__((noinline)) void conn_serve_tls(struct conn *c)
{
	conn_serve_(c, true);
}

/* Whatever way the coroutine ends, the connection is released. */
static void conn_cleanup(void *arg)
{
	struct conn *c = arg;
	struct worker *w = worker_of(c->cc.w);
	if (w->feeding == &c->cc)
		w->feeding = NULL;
	conn_unshare(&c->cc);
	hub_fd_close(&c->hfd);
	core_conn_close(&c->cc);
}

struct conn_start {
	struct worker *w;
	int fd;
};

static void conn_task(struct hub *hub, void *arg)
{
	struct conn_start start = *(struct conn_start *)arg;
	struct conn c = {.task = hub_self(hub)};
	if (core_conn_open(&start.w->core, &c.cc, start.fd) != 0)
		return;
	if (hub_fd_open(hub, &c.hfd, start.fd, start.w->core.tcp ? HUB_FD_TCP : 0) != 0) {
		core_conn_close(&c.cc);
		return;
	}
	c.cc.r.waiter = c.task;
	struct coro *co = hub_task_coro(c.task);
	unsigned mark = coro_defer_mark(co);
	coro_defer(co, conn_cleanup, &c);
	if (c.cc.tls)
		conn_serve_tls(&c);
	else
		conn_serve_plain(&c);
	/* Run the defer (conn_cleanup(&c)) while c is alive: the coroutine
	 * runs leftovers only after this frame is gone. */
	coro_defer_run(co, mark);
}

/* Below the hard cap on coroutines? Says so once per episode when not. */
bool coro_cap_ok(struct worker *w)
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

/* ---- the worker: accepting, stopping, counters ---- */

static bool may_accept(struct core *core)
{
	struct worker *w = worker_of(core);
	return core->nconns < w->worker_connections && coro_cap_ok(w);
}

static int conn_open(struct core *core, int fd)
{
	struct conn_start start = {worker_of(core), fd};
	if (hub_spawn(worker_of(core)->hub, conn_task, &start) != 0) {
		close(fd);
		return -1;
	}
	return 0;
}

static void task_ended(void *arg)
{
	struct worker *w = arg;
	if (w->core.stopping) {
		core_maybe_done(&w->core);
		return;
	}
	if (w->at_coro_cap && hub_ntasks(w->hub) < w->max_coros) {
		w->at_coro_cap = false;
		fprintf(stderr, "%s[%ld]: below the coroutine cap again\n", PROG, (long)getpid());
	}
	core_accept_resume(&w->core);
}

static unsigned live_tasks(struct core *core)
{
	return hub_ntasks(worker_of(core)->hub);
}

static void stop(struct core *core)
{
	/* HTTP/2 connections send GOAWAY and serve their streams to the end. */
	for (struct core_conn *cc = core->conns; cc; cc = cc->next)
		if (cc->h2)
			coro_h2conn_kick((struct h2conn *)cc->h2);
	/* Idle keep-alive connections go now; busy ones after their answer. */
	for (;;) {
		struct core_conn *cc = core->conns;
		while (cc && !(conn_of(cc)->idle && !hub_cancelled(conn_of(cc)->task)))
			cc = cc->next;
		if (!cc)
			break;
		hub_cancel(conn_of(cc)->task);
	}
}

/* Every wait now fails: what still runs unwinds and its connection closes. */
static void expire(struct core *core)
{
	hub_cancel_all(worker_of(core)->hub);
}

static void fill(struct core *core, struct worker_stats *out)
{
	struct worker *w = worker_of(core);
	out->coros = hub_ntasks(w->hub);
	out->stack_pool = hub_stack_pool(w->hub);
}

static int start(struct core *core, void *arg)
{
	const struct cfg *cfg = arg;
	struct worker *w = worker_of(core);
	w->worker_connections = cfg->worker_connections;
	unsigned keep =
	    cfg->worker_connections < STACKS_KEPT ? cfg->worker_connections : STACKS_KEPT;
	w->hub = hub_new(core->base, (size_t)cfg->stack_kib * 1024, keep);
	if (!w->hub)
		return -1;
	hub_on_task_end(w->hub, task_ended, w);
	/* Every connection may hold h2-max-streams stream coroutines besides
	 * its own: that product is the natural ceiling; --max-coroutines
	 * lowers it (each costs a stack). */
	w->max_coros = cfg->max_coros;
	if (w->max_coros == 0) {
		unsigned long long c = (unsigned long long)cfg->worker_connections *
		                       (1ull + core->opts->h2_max_streams);
		w->max_coros = c > UINT32_MAX ? UINT32_MAX : (unsigned)c;
	}
	return 0;
}

static void finish(struct core *core)
{
	http_obuf_free(&worker_of(core)->out);
	hub_free(worker_of(core)->hub);
}

static const struct core_class coro_class = {
    .prog = PROG,
    .size = sizeof(struct worker),
    .h2_size = sizeof(struct h2conn),
    .fetch = op_fetch,
    .sleep_ms = op_sleep_ms,
    .start = start,
    .finish = finish,
    .may_accept = may_accept,
    .conn_open = conn_open,
    .live = live_tasks,
    .h1_wait = h1_wait,
    .flush = conn_flush,
    .uncork = uncork_hook,
    .h2_open = coro_h2_open,
    .h2_request = coro_h2_request,
    .stream_cancel = coro_stream_cancel,
    .h2_free = coro_h2_free,
    .wake = req_wake,
    .stop = stop,
    .expire = expire,
    .fill = fill,
};

int main(int argc, char **argv)
{
	static struct cfg cfg = {.worker_connections = 1000, .stack_kib = 64};
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
	return core_main(argc, argv, &coro_class, extra, &cfg);
}
