/* async_worker.c — the explicit-async-call worker (uWSGI --async with
 * explicit calls, in C): how a request waits when nothing may block —
 * every connection is driven by libevent callbacks, and a request that
 * waits has made an explicit call whose callback finishes it. Everything
 * else about serving it — the process, the codecs' rules, the explicit-call
 * records — is the worker core's (servers/core/core.h); this file is its
 * struct core_class.
 *
 * Hot path (hello over keep-alive): one recv() into the worker's shared
 * read buffer, core_h1_feed() straight from it, the app answers into the
 * worker's shared output buffer, one send(). No allocation: a connection
 * only gets buffers of its own when input must outlive the callback
 * (pipelining behind a waiting request) or output must wait for the socket
 * (a partial send).
 *
 * Ownership: every libevent callback that concerns a connection ends in
 * conn_settle(), the only place (besides the worker's stop and free) that
 * destroys a connection; code below it only marks it dead. That keeps "the
 * connection vanished under me" impossible.
 *
 * HTTP/2 arrives on the same connections (the core switches them): every
 * stream is then a small state machine of its own (struct h2s), and the
 * connection only moves bytes; answers given from callbacks of one loop
 * turn leave in one send per connection (h2_conn_defer).
 */
#include "async_worker.h"

#include "core_h1.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	RBUF_SIZE = 64 * 1024, /* the worker's shared read buffer */
	IBUF_MAX = 64 * 1024,  /* per connection: input kept behind a request */
	IBUF_MIN = 4 * 1024,   /* first allocation of that buffer */
	CONN_POOL_MAX = 1024,  /* closed connections kept for reuse */
	STREAM_POOL_MAX = 1024,
	H2_OUT_MAX = 1 << 20, /* HTTP/2 output waiting: stop reading above */
};

/* One HTTP/2 stream's request: its own state machine, as a connection is
 * for HTTP/1.1. */
struct h2s {
	struct core_stream st; /* first */
	const struct app_request *req;
	struct h2s *wnext; /* waiting for an --async slot, or the free list */
};

/* An HTTP/2 connection's streams queued for a slot (the connection is then
 * in the worker's slot queue and does not read). */
struct h2c {
	struct core_h2 h; /* first */
	struct h2s *wait_head, *wait_tail;
};

struct conn {
	struct core_conn cc; /* first */
	struct event rev, wev;
	struct core_lazy tmo; /* the read timeout, then the linger's */
	bool reading;         /* rev is added */
	bool writing;         /* wev is added: output waits for the socket */
	bool lingering;       /* after an error answer: draining input until EOF */
	bool waited;          /* the request outlived the callback that started it */
	bool more;            /* the socket may hold input that no edge will report */
	bool rdhup;           /* EV_CLOSED: the peer's FIN is queued behind the data */
	bool in_wait;         /* in the worker's slot queue */
	bool dirty;           /* in the worker's list of HTTP/2 connections to flush */
	size_t drained;       /* bytes dropped while lingering */
	struct http_obuf ib;  /* unparsed input that outlived a callback: data[ib_off..len) */
	size_t ib_off;
	struct conn *wait_prev, *wait_next;
	struct conn *dirty_next, *free_next;
};

struct async_worker {
	struct core core; /* first */
	struct conn *free_conns;
	unsigned nfree;
	struct conn *wait_head, *wait_tail; /* waiting for an --async slot */
	struct event wake_ev;               /* a slot is free: run the queue */
	struct event flush_ev;              /* flushes the HTTP/2 connections in dirty */
	struct conn *dirty;
	struct h2s *free_streams;
	unsigned nfree_streams;
	struct fetch_sync *fsync;      /* created on the first blocking fetch */
	const struct timeval *read_tv; /* the read timeout (libevent common timeout) */
	struct timeval send_tv;
	struct http_obuf out; /* answers of the connection being driven */
	char rbuf[RBUF_SIZE];
};

/* Edge-triggered, as nginx and coro-server's hub: epoll then reports a
 * socket once per arrival instead of re-checking every ready socket on the
 * next epoll_wait. A read that fills the buffer, or data that came with the
 * FIN (EV_CLOSED: EPOLLRDHUP), leaves input no new edge will announce:
 * conn_more() reads again on the next loop turn. */
#define CONN_REV_FLAGS (EV_READ | EV_CLOSED | EV_PERSIST | EV_ET)
#define CONN_WEV_FLAGS (EV_WRITE | EV_ET)

static void conn_settle(struct conn *c);
static void conn_destroy(struct conn *c);
static void h2_conn_settle(struct conn *c);

static struct async_worker *worker_of(struct core *w)
{
	return (struct async_worker *)w;
}

static struct async_worker *conn_worker(struct conn *c)
{
	return worker_of(c->cc.w);
}

static struct conn *conn_of(struct core_conn *cc)
{
	return (struct conn *)cc;
}

/* ---- output ---- */

/* Write what the current callback produced: one send() per connection per
 * callback. A remainder moves to the connection (by swapping buffers, no
 * copy), answers queue behind it there (cc.obuf), and it waits for
 * EV_WRITE; the connection parses nothing more meanwhile (cc.hold). Forced
 * inline: HTTP/2's settle calls it too, and an out-of-line call would cost
 * the HTTP/1.1 hot path. */
static inline __attribute__((always_inline)) void conn_flush(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	if (w->out.len == 0)
		return;
	if (c->cc.dead || c->writing) {
		/* Dead: drop it. Writing: answers went to cc.out, not here. */
		w->out.len = 0;
		return;
	}
	ssize_t n = send(c->cc.fd, w->out.data, w->out.len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			w->out.len = 0;
			c->cc.dead = true;
			return;
		}
		n = 0;
	}
	if ((size_t)n == w->out.len) {
		w->out.len = 0;
		return;
	}
	struct http_obuf t = c->cc.out; /* empty: answers went to w->out */
	c->cc.out = w->out;
	w->out = t;
	w->out.len = 0;
	http_obuf_consume(&c->cc.out, (size_t)n);
	c->cc.obuf = &c->cc.out;
	c->cc.hold = true;
	if (event_add(&c->wev, &w->send_tv) != 0) {
		c->cc.dead = true;
		return;
	}
	c->writing = true;
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	c->writing = false;
	if (what & EV_TIMEOUT) {
		c->cc.dead = true;
	} else {
		ssize_t n = send(fd, c->cc.out.data, c->cc.out.len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->cc.dead = true;
		} else {
			if (n > 0)
				http_obuf_consume(&c->cc.out, (size_t)n);
			if (c->cc.out.len == 0) {
				c->cc.obuf = &conn_worker(c)->out;
				c->cc.hold = false;
			} else if (event_add(&c->wev, &conn_worker(c)->send_tv) != 0) {
				c->cc.dead = true;
			} else {
				c->writing = true;
			}
		}
	}
	conn_settle(c);
}

static int flush_hook(struct core_conn *cc)
{
	conn_flush(conn_of(cc));
	return cc->dead ? -1 : 0;
}

/* ---- slots (--async N) ---- */

static void wait_push(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	c->in_wait = true;
	c->wait_next = NULL;
	c->wait_prev = w->wait_tail;
	if (w->wait_tail)
		w->wait_tail->wait_next = c;
	else
		w->wait_head = c;
	w->wait_tail = c;
}

static void wait_remove(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	if (c->wait_prev)
		c->wait_prev->wait_next = c->wait_next;
	else
		w->wait_head = c->wait_next;
	if (c->wait_next)
		c->wait_next->wait_prev = c->wait_prev;
	else
		w->wait_tail = c->wait_prev;
	c->wait_prev = c->wait_next = NULL;
	c->in_wait = false;
}

static void h1_queue(struct core_conn *cc)
{
	wait_push(conn_of(cc));
}

/* A slot was freed: let the queue move, from the loop rather than from
 * here, so a chain of requests that finish at once cannot recurse. */
static void slot_freed(struct core *core)
{
	struct async_worker *w = worker_of(core);
	if (w->wait_head)
		event_active(&w->wake_ev, EV_TIMEOUT, 1);
}

/* ---- the read timeout: lazy (clock.h), one clock read per read ---- */

static inline __attribute__((always_inline)) void conn_timeout_set(struct conn *c, unsigned ms)
{
	if (core_lazy_begin(&c->tmo, ms)) {
		struct async_worker *w = conn_worker(c);
		struct timeval tv = core_tv(ms);
		if (core_lazy_arm(&c->tmo, ms == w->core.read_ms ? w->read_tv : &tv) != 0)
			c->cc.dead = true;
	}
}

/* The read timeout starts now (a read, or reading resumed); a request head
 * that is late already closes the connection. */
static inline void conn_read_timeout(struct conn *c)
{
	unsigned ms = core_read_ms(&c->cc);
	if (__builtin_expect(ms == 0, 0))
		c->cc.dead = true;
	else
		conn_timeout_set(c, ms);
}

/* ---- HTTP/1.1 requests ---- */

/* A request waits on its explicit calls past the callback that ran it. */
static bool h1_wait(struct core_conn *cc)
{
	conn_of(cc)->waited = true;
	return false;
}

/* After the app ran from a callback: a finished request ends here. */
static void conn_after_app(struct conn *c)
{
	if (c->cc.dead || !c->cc.busy || !app_ctx_finished(&c->cc.r.ctx))
		return;
	core_h1_done(&c->cc);
	if (c->waited && c->reading)
		conn_read_timeout(c); /* the read timeout starts now */
	c->waited = false;
}

/* ---- input ---- */

/* Parse and run requests from data while the connection may. Returns the
 * bytes used; the rest must be kept. */
static inline size_t conn_process(struct conn *c, const char *data, size_t len)
{
	if (!core_h1_ready(&c->cc))
		return 0;
	return core_h1_feed(&c->cc, data, len);
}

/* Run what the connection's own buffer holds. */
static void conn_process_kept(struct conn *c)
{
	if (c->ib_off == c->ib.len)
		return;
	c->ib_off += conn_process(c, c->ib.data + c->ib_off, c->ib.len - c->ib_off);
	if (c->ib_off == c->ib.len)
		c->ib_off = c->ib.len = 0;
}

/* Make room for n more bytes in the connection's own buffer. */
static int ib_reserve(struct conn *c, size_t n)
{
	if (c->ib_off > 0) {
		http_obuf_consume(&c->ib, c->ib_off);
		c->ib_off = 0;
	}
	return http_obuf_reserve(&c->ib, n < IBUF_MIN ? IBUF_MIN : n);
}

static void conn_on_eof(struct conn *c)
{
	struct core_conn *cc = &c->cc;
	if (!cc->busy && !cc->queued && (c->writing || cc->out.len || conn_worker(c)->out.len)) {
		/* Half-closed after its last request: answer, then close. */
		cc->close_after = true;
		cc->linger = false;
		return;
	}
	/* Idle, or a request still waiting (the client gave up, as nginx's
	 * "client prematurely closed connection"): close; core_conn_close
	 * cancels the fetches and timers it waits on. */
	cc->dead = true;
}

/* recv(); 0 when there is nothing more for now (EOF and errors marked). */
static inline __attribute__((always_inline)) ssize_t conn_recv(struct conn *c, char *buf,
                                                               size_t room)
{
	ssize_t n = recv(c->cc.fd, buf, room, 0);
	if (n > 0) {
		c->more = (size_t)n == room || c->rdhup;
		return n;
	}
	if (n == 0)
		return -1; /* EOF */
	if (errno == EINTR)
		c->more = true;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		c->cc.dead = true;
	return 0;
}

static void conn_read(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	bool kept = c->ib.len > c->ib_off;
	char *buf = w->rbuf;
	size_t room = sizeof(w->rbuf);
	if (kept) {
		if (c->ib.len - c->ib_off >= IBUF_MAX)
			return; /* conn_settle stops reading */
		if (ib_reserve(c, IBUF_MIN) != 0) {
			c->cc.dead = true;
			return;
		}
		buf = c->ib.data + c->ib.len;
		room = c->ib.cap - c->ib.len;
	}
	ssize_t n = conn_recv(c, buf, room);
	if (n <= 0) {
		if (n < 0)
			conn_on_eof(c);
		return;
	}
	if (kept) {
		c->ib.len += (size_t)n;
		conn_process_kept(c);
	} else {
		size_t used = conn_process(c, buf, (size_t)n);
		if (used < (size_t)n && !c->cc.dead && !c->cc.h2 &&
		    http_obuf_append(&c->ib, buf + used, (size_t)n - used) != 0)
			c->cc.dead = true;
	}
	if (c->reading && !c->cc.h2)
		conn_read_timeout(c);
}

static void conn_linger_read(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	ssize_t n = conn_recv(c, w->rbuf, sizeof(w->rbuf));
	if (n < 0 || (c->drained += (size_t)n) >= CORE_LINGER_BYTES)
		c->cc.dead = true;
}

static void h2_conn_read(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	ssize_t n = conn_recv(c, w->rbuf, sizeof(w->rbuf));
	if (n < 0) {
		c->cc.dead = true; /* the client left: core_conn_close cancels its streams */
		return;
	}
	if (n > 0) {
		core_h2_input(&c->cc, w->rbuf, (size_t)n);
		conn_timeout_set(c, w->core.read_ms);
	}
}

/* Edge-triggered reading left input behind (see CONN_REV_FLAGS): read
 * again on the next loop turn. A connection that stopped reading needs
 * nothing: event_add() re-polls the socket when it reads again. */
static void conn_more(struct conn *c)
{
	c->more = false;
	if (c->reading)
		event_active(&c->rev, EV_READ, 1);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	if (what & EV_CLOSED)
		c->rdhup = true;
	if (c->lingering)
		conn_linger_read(c);
	else if (c->cc.h2)
		h2_conn_read(c);
	else
		conn_read(c);
	conn_settle(c);
}

/* Add or remove the read event. */
static void conn_want_read(struct conn *c, bool want)
{
	if (want == c->reading)
		return;
	if (want) {
		if (event_add(&c->rev, NULL) != 0) {
			c->cc.dead = true;
			return;
		}
		conn_read_timeout(c);
	} else {
		event_del(&c->rev);
		core_lazy_clear(&c->tmo); /* a request in the app is not idleness */
	}
	c->reading = want;
}

/* Shut down: drain the input until EOF, CORE_LINGER_BYTES or the linger
 * timeout. */
static void conn_linger_start(struct conn *c)
{
	shutdown(c->cc.fd, SHUT_WR);
	c->lingering = true;
	c->drained = 0;
	if (!c->reading && event_add(&c->rev, NULL) != 0)
		c->cc.dead = true;
	c->reading = true;
	conn_timeout_set(c, CORE_LINGER_MS);
}

/* The timeout fired: a wait that is really due closes the connection (or,
 * on HTTP/2, says GOAWAY first). A request in the app, or one queued for a
 * slot, is not idle; a connection waiting to write has its own timer. */
static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (!core_lazy_fired(&c->tmo))
		return; /* none due: lapsed, or re-armed for the rest */
	struct core_conn *cc = &c->cc;
	if (c->lingering)
		cc->dead = true;
	else if (cc->h2)
		cc->dead = core_h2_idle(cc);
	else if (!cc->busy && !cc->queued && !c->writing)
		cc->dead = true;
	if (!cc->dead)
		conn_timeout_set(c, cc->w->read_ms); /* the next one counts from here */
	conn_settle(c);
}

/* Match the read event to what the connection can take. */
static void conn_update_read(struct conn *c)
{
	conn_want_read(c, !c->in_wait && !c->cc.close_after && c->ib.len - c->ib_off < IBUF_MAX);
}

static bool conn_is_idle(const struct conn *c)
{
	return c->lingering || (core_conn_idle(&c->cc) && c->ib.len == c->ib_off && !c->writing);
}

/* The end of every callback about c: run kept input, write, then close,
 * linger or keep reading as the state says. */
static void conn_settle(struct conn *c)
{
	struct core_conn *cc = &c->cc;
	if (cc->h2) {
		h2_conn_settle(c);
		return;
	}
	if (!cc->dead && core_h1_ready(cc))
		conn_process_kept(c);
	if (cc->h2) { /* an upgrade in the kept input */
		h2_conn_settle(c);
		return;
	}
	conn_flush(c);
	if (!cc->dead && cc->close_after && !c->writing && !cc->busy && !c->lingering) {
		if (cc->linger)
			conn_linger_start(c); /* shut our side, drain theirs */
		else
			cc->dead = true;
	}
	if (!cc->dead && cc->w->stopping && conn_is_idle(c))
		cc->dead = true;
	if (!cc->dead && !c->lingering)
		conn_update_read(c);
	if (cc->dead)
		conn_destroy(c);
	else if (__builtin_expect(c->more, 0))
		conn_more(c);
}

/* ---- the app's blocking calls: blocking, ON PURPOSE ---- */

/* A synchronous transfer that stops the whole worker until the upstream
 * answers. See async_worker.h. */
static int op_fetch_blocking(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	struct async_worker *w = worker_of(((struct core_req *)ctx)->w);
	if (!w->fsync)
		w->fsync = fetch_sync_new(&w->core.fopts);
	if (!w->fsync) {
		*out = (struct app_fetch_result){.error = APP_FETCH_ENOMEM};
		return APP_FETCH_ENOMEM;
	}
	void *body = NULL;
	fetch_sync_get(w->fsync, url, out, &body);
	out->body = body;
	app_ctx_own(ctx, body);
	return (int)out->error;
}

/* A real sleep of the worker process. */
static void op_sleep_blocking(struct app_ctx *ctx, unsigned ms)
{
	(void)ctx;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- HTTP/2: one state machine per stream ---- */

static void h2s_put(struct async_worker *w, struct h2s *s)
{
	if (w->nfree_streams >= STREAM_POOL_MAX) {
		core_stream_free(&s->st);
		free(s);
		return;
	}
	if (s->st.big.cap > IBUF_MAX)
		core_stream_free(&s->st); /* do not pin a big answer's buffer */
	s->wnext = w->free_streams;
	w->free_streams = s;
	w->nfree_streams++;
}

/* After the app ran (handler or callback): a finished stream ends. */
static void h2s_after_app(struct h2s *s)
{
	if (!app_ctx_finished(&s->st.r.ctx))
		return;
	struct async_worker *w = worker_of(s->st.r.w);
	core_stream_end(&s->st, true);
	h2s_put(w, s);
}

static void h2_request(struct core_h2 *h, int32_t id, const struct app_request *req)
{
	struct async_worker *w = worker_of(h->w);
	struct h2c *hc = (struct h2c *)h;
	struct h2s *s = w->free_streams;
	if (s) {
		w->free_streams = s->wnext;
		w->nfree_streams--;
	} else if ((s = malloc(sizeof(*s))) != NULL) {
		http_obuf_init(&s->st.big);
	} else {
		h2_session_reset_stream(h->s, id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	core_stream_init(&s->st, h, id);
	s->st.r.waiter = NULL;
	s->req = req;
	s->wnext = NULL;
	if (hc->wait_head || w->core.inflight >= w->core.max_inflight) {
		/* --async N counts streams too: queue it behind the others of
		 * this connection, which stops reading until a slot frees. */
		if (hc->wait_tail)
			hc->wait_tail->wnext = s;
		else
			hc->wait_head = s;
		hc->wait_tail = s;
		struct conn *c = conn_of(h->c);
		if (!c->in_wait)
			wait_push(c);
		return;
	}
	core_stream_run(&s->st, req);
	h2s_after_app(s);
}

/* Start queued streams while slots are free; requeue the rest. */
static void h2_conn_run_waiting(struct conn *c)
{
	struct h2c *hc = (struct h2c *)c->cc.h2;
	struct core *w = c->cc.w;
	while (hc->wait_head && w->inflight < w->max_inflight) {
		struct h2s *s = hc->wait_head;
		hc->wait_head = s->wnext;
		if (!hc->wait_head)
			hc->wait_tail = NULL;
		s->wnext = NULL;
		core_stream_run(&s->st, s->req);
		h2s_after_app(s);
	}
	if (hc->wait_head && !c->in_wait)
		wait_push(c);
}

/* The client reset a stream, or the connection goes: cancel it. */
static void stream_cancel(struct core_stream *st)
{
	struct h2s *s = (struct h2s *)st;
	struct async_worker *w = worker_of(st->r.w);
	if (st->run) {
		core_req_cancel(&st->r);
		core_stream_end(st, false);
		h2s_put(w, s);
		return;
	}
	/* Still queued for a slot: take it out. */
	struct h2c *hc = (struct h2c *)st->h;
	struct h2s **pp = &hc->wait_head, *last = NULL;
	while (*pp != s) {
		last = *pp;
		pp = &(*pp)->wnext;
	}
	*pp = s->wnext;
	if (hc->wait_tail == s)
		hc->wait_tail = last;
	if (!hc->wait_head && hc->h.c && conn_of(hc->h.c)->in_wait)
		wait_remove(conn_of(hc->h.c));
	core_stream_drop(st);
	h2s_put(w, s);
}

/* conn_settle() for an HTTP/2 connection: flush the session, write, then
 * close, linger or keep reading. */
static void h2_conn_settle(struct conn *c)
{
	struct core_conn *cc = &c->cc;
	if (!cc->dead && !c->lingering && core_h2_flush(cc) != 0)
		cc->dead = true;
	conn_flush(c);
	if (!cc->dead && !c->lingering && !c->writing && (cc->close_after || core_h2_closed(cc))) {
		if (cc->linger)
			conn_linger_start(c);
		else
			cc->dead = true;
	}
	if (!cc->dead && !c->lingering)
		conn_want_read(c, !c->in_wait && !cc->close_after && cc->out.len < H2_OUT_MAX);
	if (cc->dead)
		conn_destroy(c);
	else if (c->more)
		conn_more(c);
}

/* A stream of c was answered from a fetch or timer callback: settle the
 * connection once, after every callback of this loop turn, so that the
 * answers of many streams leave in one send (proxy-async over h2 would
 * otherwise make a send per stream). */
static void h2_conn_defer(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	if (c->cc.dead) {
		conn_settle(c); /* destroy it now */
		return;
	}
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = w->dirty;
	if (!w->dirty)
		event_active(&w->flush_ev, EV_TIMEOUT, 1);
	w->dirty = c;
}

static void worker_h2_flush(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	while (w->dirty) {
		struct conn *c = w->dirty;
		w->dirty = c->dirty_next;
		c->dirty = false;
		conn_settle(c);
	}
}

/* ---- an explicit call completed: deliver it now ---- */

static void req_wake(struct core_req *r)
{
	core_req_deliver(r);
	if (r->waiter) {
		struct conn *c = r->waiter;
		conn_after_app(c);
		conn_settle(c);
		return;
	}
	struct h2s *s = (struct h2s *)r;
	struct conn *c = conn_of(s->st.h->c);
	h2s_after_app(s);
	h2_conn_defer(c);
}

/* ---- connections ---- */

static void conn_destroy(struct conn *c)
{
	struct async_worker *w = conn_worker(c);
	if (c->in_wait)
		wait_remove(c);
	if (c->dirty) {
		struct conn **pp = &w->dirty;
		while (*pp != c)
			pp = &(*pp)->dirty_next;
		*pp = c->dirty_next;
		c->dirty = false;
	}
	event_del(&c->rev);
	event_del(&c->wev);
	core_lazy_del(&c->tmo);
	core_conn_close(&c->cc);
	if (w->nfree >= CONN_POOL_MAX) {
		http_obuf_free(&c->ib);
		free(c);
		return;
	}
	if (c->ib.cap > IBUF_MIN)
		http_obuf_free(&c->ib); /* do not pin big buffers in the pool */
	c->ib.len = c->ib_off = 0;
	c->free_next = w->free_conns;
	w->free_conns = c;
	w->nfree++;
}

/* Serve fd, already non-blocking. */
static int conn_open(struct core *core, int fd)
{
	struct async_worker *w = worker_of(core);
	struct conn *c = w->free_conns;
	if (c) {
		w->free_conns = c->free_next;
		w->nfree--;
	} else if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return -1;
	}
	if (core_conn_open(core, &c->cc, fd) != 0) {
		c->free_next = w->free_conns;
		w->free_conns = c;
		w->nfree++;
		return -1;
	}
	c->cc.obuf = &w->out;
	c->cc.r.waiter = c;
	c->reading = c->writing = c->lingering = c->waited = c->more = c->rdhup = false;
	c->in_wait = c->dirty = false;
	event_assign(&c->rev, core->base, fd, CONN_REV_FLAGS, conn_on_read, c);
	event_assign(&c->wev, core->base, fd, CONN_WEV_FLAGS, conn_on_write, c);
	core_lazy_init(&c->tmo, core->base, conn_on_timer, c);
	conn_update_read(c);
	if (c->cc.dead) {
		conn_destroy(c);
		return -1;
	}
	return 0;
}

/* ---- the worker ---- */

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	while (w->wait_head && w->core.inflight < w->core.max_inflight) {
		struct conn *c = w->wait_head;
		wait_remove(c);
		if (c->cc.h2)
			h2_conn_run_waiting(c);
		else
			core_h1_serve(&c->cc);
		conn_settle(c);
	}
}

/* SIGTERM: idle connections go now, HTTP/2 ones say GOAWAY (conn_settle),
 * busy ones go after their answer. */
static void stop(struct core *core)
{
	for (struct core_conn *cc = core->conns, *next; cc; cc = next) {
		next = cc->next;
		struct conn *c = conn_of(cc);
		if (cc->h2)
			conn_settle(c);
		else if (conn_is_idle(c))
			conn_destroy(c);
	}
}

/* Time is up: what is left is closed, its calls cancelled. */
static void expire(struct core *core)
{
	while (core->conns)
		conn_destroy(conn_of(core->conns));
}

static int start(struct core *core, void *arg)
{
	const struct async_config *cfg = arg;
	struct async_worker *w = worker_of(core);
	core->max_inflight = cfg->max_inflight ? cfg->max_inflight : 1;
	struct timeval tv = core_tv(core->read_ms);
	w->read_tv = event_base_init_common_timeout(core->base, &tv);
	w->send_tv = tv; /* answers left unread: close after the read timeout */
	http_obuf_init(&w->out);
	event_assign(&w->wake_ev, core->base, -1, 0, worker_wake, w);
	event_assign(&w->flush_ev, core->base, -1, 0, worker_h2_flush, w);
	return w->read_tv ? 0 : -1;
}

static void finish(struct core *core)
{
	struct async_worker *w = worker_of(core);
	event_del(&w->wake_ev);
	event_del(&w->flush_ev);
	while (w->free_conns) {
		struct conn *c = w->free_conns;
		w->free_conns = c->free_next;
		http_obuf_free(&c->ib);
		free(c);
	}
	while (w->free_streams) {
		struct h2s *s = w->free_streams;
		w->free_streams = s->wnext;
		core_stream_free(&s->st);
		free(s);
	}
	if (w->fsync)
		fetch_sync_free(w->fsync);
	http_obuf_free(&w->out);
}

const struct core_class async_worker_class = {
    .prog = "async-server",
    .size = sizeof(struct async_worker),
    .h2_size = sizeof(struct h2c),
    .blocks = "makes blocking calls; on this worker they block the whole worker process "
              "(by design, see README)",
    .fetch = op_fetch_blocking,
    .sleep_ms = op_sleep_blocking,
    .start = start,
    .finish = finish,
    .conn_open = conn_open,
    .h1_wait = h1_wait,
    .h1_queue = h1_queue,
    .flush = flush_hook,
    .slot_freed = slot_freed,
    .h2_request = h2_request,
    .stream_cancel = stream_cancel,
    .wake = req_wake,
    .stop = stop,
    .expire = expire,
};

/* ---- the API of async_worker.h (tests drive a worker without the master) ---- */

struct async_worker *async_worker_new(struct event_base *base, const struct async_config *cfg,
                                      int listen_fd)
{
	return (struct async_worker *)core_new(base, &async_worker_class, cfg->opts, cfg->app,
	                                       (void *)cfg, listen_fd);
}

int async_worker_adopt(struct async_worker *w, int fd)
{
	return core_adopt(&w->core, fd);
}

void async_worker_stop(struct async_worker *w)
{
	core_stop(&w->core);
}

unsigned async_worker_conns(const struct async_worker *w)
{
	return w->core.nconns;
}

unsigned async_worker_inflight(const struct async_worker *w)
{
	return w->core.inflight;
}

void async_worker_free(struct async_worker *w)
{
	core_free(w ? &w->core : NULL);
}
