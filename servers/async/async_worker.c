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
 * HTTP/2 arrives on the same connections (the core switches them): its
 * streams are async_h2.c's.
 */
#include "async_conn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- output ---- */

/* Output waits for the socket (cc.hold). The write timeout runs from the
 * last move (clock.h, core_stall: a send that took bytes, or the client
 * taking bytes out of the socket), not from each event: EV_TIMEOUT with
 * the client still taking bytes waits on, and an EV_WRITE whose send took
 * nothing waits only for what is left of the timeout. */
static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned ms = c->cc.w->read_ms;
	c->writing = false;
	/* What waits: answers (cleartext), or TLS records (answers go on being
	 * encrypted behind them, so cc.obuf never moves). */
	struct http_obuf *o = c->cc.tls ? tls_conn_out(c->cc.tls) : &c->cc.out;
	ssize_t n = 0;
	if (what & EV_TIMEOUT) {
		if (core_stall_due(&c->stall, fd, ms))
			c->cc.dead = true;
	} else {
		n = send(fd, o->data, o->len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			c->cc.dead = true;
	}
	if (!c->cc.dead) {
		if (n > 0)
			http_obuf_consume(o, (size_t)n);
		if (o->len == 0) {
			c->cc.obuf = &async_conn_worker(c)->out;
			c->cc.hold = false;
			c->stall.end = 0;
			core_h1_sent(&c->cc);
		} else {
			if (n > 0 || c->stall.end == 0) /* a move, or (corked) the first send */
				core_stall_start(&c->stall, fd, ms);
			unsigned left = core_stall_left(&c->stall);
			if (left == 0 && core_stall_due(&c->stall, fd, ms))
				c->cc.dead = true;
			else if (left == 0 || left == ms)
				async_conn_wait_write(c); /* a whole timeout */
			else
				async_conn_wait_write_ms(c, left);
		}
	}
	async_conn_settle(c);
}

static void uncork_hook(struct core_conn *cc)
{
	struct conn *c = async_conn_of(cc);
	conn_on_write(cc->fd, EV_WRITE, c);
}

/* ---- TLS (tls.h) between the socket and the codecs ---- */

/* Encrypt what the callback answered, then send the records (with the
 * handshake's); a remainder waits for EV_WRITE in the TLS output, and the
 * connection takes no more requests meanwhile (cc.hold). */
void async_conn_flush_tls(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	struct tls_conn *t = c->cc.tls;
	if (w->out.len > 0) {
		if (!c->cc.dead && tls_conn_write(t, w->out.data, w->out.len) != 0)
			c->cc.dead = true;
		w->out.len = 0;
	}
	struct http_obuf *o = tls_conn_out(t);
	if (c->cc.dead || c->writing || o->len == 0)
		return; /* writing: conn_on_write sends it */
	ssize_t n = send(c->cc.fd, o->data, o->len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->cc.dead = true;
			return;
		}
		n = 0;
	}
	http_obuf_consume(o, (size_t)n);
	if (o->len == 0)
		return;
	c->cc.hold = true;
	core_stall_start(&c->stall, c->cc.fd, w->core.read_ms);
	async_conn_wait_write(c);
}

ssize_t async_conn_recv_tls(struct conn *c, char *buf, size_t room)
{
	struct tls_conn *t = c->cc.tls;
	bool eof = false, read = false;
	ssize_t p = 0;
	if (tls_conn_more(t))
		p = tls_conn_read(t, buf, room); /* what the last read left inside */
	if (p == 0) {
		read = true;
		ssize_t n = recv(c->cc.fd, buf, room, 0);
		if (n > 0) {
			c->more = (size_t)n == room || c->read_on;
			if (tls_conn_feed(t, buf, (size_t)n) != 0) {
				c->cc.dead = true;
				return 0;
			}
		} else if (n == 0) {
			eof = true;
		} else {
			if (errno == EINTR)
				c->more = true;
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->cc.dead = true;
			return 0;
		}
		p = tls_conn_read(t, buf, room);
	}
	if (p > 0) {
		/* More plaintext inside, the EOF, or a socket not read this time
		 * (it may hold what no new edge will announce): next turn. */
		if (tls_conn_more(t) || eof || !read)
			c->more = true;
		return p;
	}
	if (p == TLS_FAILED) {
		c->cc.dead = true;
		return 0;
	}
	return p == TLS_CLOSED || eof ? -1 : 0;
}

static int flush_hook(struct core_conn *cc)
{
	async_conn_send(async_conn_of(cc), false); /* a long pipeline: now */
	return cc->dead ? -1 : 0;
}

/* ---- slots (--async N) ---- */

void async_wait_push(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	c->in_wait = true;
	c->wait_next = NULL;
	c->wait_prev = w->wait_tail;
	if (w->wait_tail)
		w->wait_tail->wait_next = c;
	else
		w->wait_head = c;
	w->wait_tail = c;
}

void async_wait_remove(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
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
	async_wait_push(async_conn_of(cc));
}

/* A slot was freed: let the queue move, from the loop rather than from
 * here, so a chain of requests that finish at once cannot recurse. */
static void slot_freed(struct core *core)
{
	struct async_worker *w = async_worker_of(core);
	if (w->wait_head)
		event_active(&w->wake_ev, EV_TIMEOUT, 1);
}

/* ---- the read timeout: lazy (clock.h), one clock read per read ---- */

/* The read timeout starts now (a read, or reading resumed); a request head
 * that is late already closes the connection. */
static inline void conn_read_timeout(struct conn *c)
{
	unsigned ms = core_read_ms(&c->cc);
	if (__builtin_expect(ms == 0, 0))
		c->cc.dead = true;
	else
		async_conn_timeout_set(c, ms);
}

/* ---- HTTP/1.1 requests ---- */

/* A request waits on its explicit calls past the callback that ran it. */
static bool h1_wait(struct core_conn *cc)
{
	async_conn_of(cc)->waited = true;
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
	if (!cc->busy && !cc->queued &&
	    (c->writing || cc->out.len || async_conn_worker(c)->out.len)) {
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

static inline __attribute__((always_inline)) void conn_read_(struct conn *c, bool tls)
{
	struct async_worker *w = async_conn_worker(c);
	bool kept = c->ib.len > c->ib_off;
	char *buf = w->rbuf;
	size_t room = sizeof(w->rbuf);
	if (kept) {
		if (c->ib.len - c->ib_off >= IBUF_MAX)
			return; /* async_conn_settle stops reading */
		if (ib_reserve(c, IBUF_MIN) != 0) {
			c->cc.dead = true;
			return;
		}
		buf = c->ib.data + c->ib.len;
		room = c->ib.cap - c->ib.len;
	}
	ssize_t n = tls ? async_conn_recv_tls(c, buf, room) : async_conn_recv(c, buf, room);
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
	struct async_worker *w = async_conn_worker(c);
	ssize_t n = async_conn_recv(c, w->rbuf, sizeof(w->rbuf));
	if (n < 0 || (c->drained += (size_t)n) >= CORE_LINGER_BYTES)
		c->cc.dead = true;
}

/* Edge-triggered reading left input behind (see CONN_REV_FLAGS): read
 * again on the next loop turn. A connection that stopped reading needs
 * nothing: event_add() re-polls the socket when it reads again. */
void async_conn_more(struct conn *c)
{
	c->more = false;
	if (c->reading)
		event_active(&c->rev, EV_READ, 1);
}

/* The read event's callback, compiled twice: cleartext connections get
 * conn_on_read, the path it always was, TLS ones conn_on_read_tls. */
static inline __attribute__((always_inline)) void conn_on_read_(short what, struct conn *c,
                                                                 bool tls)
{
	if (what & EV_CLOSED)
		c->read_on = true;
	if (c->lingering)
		conn_linger_read(c); /* ciphertext or not: dropped */
	else if (c->cc.h2)
		async_h2_read(c);
	else
		conn_read_(c, tls);
	async_conn_settle(c);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	conn_on_read_(what, arg, false);
}

static void conn_on_read_tls(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	conn_on_read_(what, arg, true);
}

/* Add or remove the read event. */
void async_conn_want_read(struct conn *c, bool want)
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
void async_conn_linger_start(struct conn *c)
{
	core_conn_shut_wr(&c->cc);
	c->lingering = true;
	c->drained = 0;
	if (!c->reading && event_add(&c->rev, NULL) != 0)
		c->cc.dead = true;
	c->reading = true;
	async_conn_timeout_set(c, CORE_LINGER_MS);
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
	else if (cc->h2 && !c->writing) /* writing: the write timeout watches it */
		cc->dead = core_h2_idle(cc);
	else if (!cc->busy && !cc->queued && !c->writing)
		cc->dead = true;
	if (!cc->dead)
		async_conn_timeout_set(c, cc->w->read_ms); /* the next one counts from here */
	async_conn_settle(c);
}

/* Match the read event to what the connection can take. */
static void conn_update_read(struct conn *c)
{
	async_conn_want_read(c,
	                     !c->in_wait && !c->cc.close_after && c->ib.len - c->ib_off < IBUF_MAX);
}

static bool conn_is_idle(const struct conn *c)
{
	return c->lingering || (core_conn_idle(&c->cc) && c->ib.len == c->ib_off && !c->writing);
}

/* The end of every callback about c: run kept input, write, then close,
 * linger or keep reading as the state says. */
void async_conn_settle(struct conn *c)
{
	struct core_conn *cc = &c->cc;
	if (cc->h2) {
		async_h2_settle(c);
		return;
	}
	if (!cc->dead && core_h1_ready(cc))
		conn_process_kept(c);
	if (cc->h2) { /* an upgrade in the kept input */
		async_h2_settle(c);
		return;
	}
	async_conn_flush(c);
	if (!cc->dead && cc->close_after && !c->writing && !cc->busy && !c->lingering) {
		if (cc->linger)
			async_conn_linger_start(c); /* shut our side, drain theirs */
		else
			cc->dead = true;
	}
	if (!cc->dead && cc->w->stopping && conn_is_idle(c))
		cc->dead = true;
	if (!cc->dead && !c->lingering)
		conn_update_read(c);
	if (cc->dead)
		async_conn_destroy(c);
	else if (__builtin_expect(c->more, 0))
		async_conn_more(c);
}

/* ---- the app's blocking calls: blocking, ON PURPOSE ---- */

/* A synchronous transfer that stops the whole worker until the upstream
 * answers. See async_worker.h. */
static int op_fetch_blocking(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	struct async_worker *w = async_worker_of(((struct core_req *)ctx)->w);
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

/* ---- an explicit call completed: deliver it now ---- */

static void req_wake(struct core_req *r)
{
	core_req_deliver(r);
	if (!r->waiter) {
		async_h2_wake((struct h2s *)r);
		return;
	}
	struct conn *c = r->waiter;
	conn_after_app(c);
	async_conn_settle(c);
}

/* ---- connections ---- */

void async_conn_destroy(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	if (c->in_wait)
		async_wait_remove(c);
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
	struct async_worker *w = async_worker_of(core);
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
	c->reading = c->writing = c->lingering = c->waited = c->more = false;
	/* AF_UNIX: a short read is not known to empty the socket (hub.h) */
	c->read_on = !core->tcp;
	c->in_wait = c->dirty = false;
	c->stall.end = 0;
	event_assign(&c->rev, core->base, fd, CONN_REV_FLAGS,
	             c->cc.tls ? conn_on_read_tls : conn_on_read, c);
	event_assign(&c->wev, core->base, fd, CONN_WEV_FLAGS, conn_on_write, c);
	core_lazy_init(&c->tmo, core->base, conn_on_timer, c);
	conn_update_read(c);
	if (c->cc.dead) {
		async_conn_destroy(c);
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
		async_wait_remove(c);
		if (c->cc.h2)
			async_h2_run_waiting(c);
		else
			core_h1_serve(&c->cc);
		async_conn_settle(c);
	}
}

/* SIGTERM: idle connections go now, HTTP/2 ones say GOAWAY (async_conn_settle),
 * busy ones go after their answer. */
static void stop(struct core *core)
{
	for (struct core_conn *cc = core->conns, *next; cc; cc = next) {
		next = cc->next;
		struct conn *c = async_conn_of(cc);
		if (cc->h2)
			async_conn_settle(c);
		else if (conn_is_idle(c))
			async_conn_destroy(c);
	}
}

/* Time is up: what is left is closed, its calls cancelled. */
static void expire(struct core *core)
{
	while (core->conns)
		async_conn_destroy(async_conn_of(core->conns));
}

static int start(struct core *core, void *arg)
{
	const struct async_config *cfg = arg;
	struct async_worker *w = async_worker_of(core);
	core->max_inflight = cfg->max_inflight ? cfg->max_inflight : 1;
	struct timeval tv = core_tv(core->read_ms);
	w->read_tv = event_base_init_common_timeout(core->base, &tv);
	w->send_tv = tv; /* the write timeout: the client took nothing for the read timeout */
	http_obuf_init(&w->out);
	event_assign(&w->wake_ev, core->base, -1, 0, worker_wake, w);
	event_assign(&w->flush_ev, core->base, -1, 0, async_h2_flush_cb, w);
	return w->read_tv ? 0 : -1;
}

static void finish(struct core *core)
{
	struct async_worker *w = async_worker_of(core);
	event_del(&w->wake_ev);
	event_del(&w->flush_ev);
	while (w->free_conns) {
		struct conn *c = w->free_conns;
		w->free_conns = c->free_next;
		http_obuf_free(&c->ib);
		free(c);
	}
	async_h2_free_pool(w);
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
    .uncork = uncork_hook,
    .slot_freed = slot_freed,
    .h2_request = async_h2_request,
    .stream_cancel = async_stream_cancel,
    .wake = req_wake,
    .stop = stop,
    .expire = expire,
};
