/* async_worker.c — the explicit-async-call worker: one libevent loop, one
 * state machine per connection, no coroutines.
 *
 * A connection is always in one of four states:
 *
 *   IDLE      no request running; input is read and parsed;
 *   REQ       one request is in the app (running, or waiting on explicit
 *             calls whose callbacks will finish it); input read meanwhile
 *             is kept, unparsed, in the connection's own buffer;
 *   WAIT_SLOT a request is parsed but --async requests are already in
 *             flight: the connection stops reading and queues for a slot;
 *   LINGER    the last answer went out after an error; the write side is
 *             shut and input is drained until EOF so the client sees the
 *             answer rather than a reset.
 *
 * Hot path (hello over keep-alive): one recv() into the worker's shared read
 * buffer, http1_parse() straight from it, the app answers into the worker's
 * shared output buffer, one send(). No allocation: the request context is
 * embedded in the connection, the response is assembled in a reused buffer,
 * and a connection only gets buffers of its own when input must outlive the
 * callback (pipelining behind a waiting request) or output must wait for the
 * socket (a partial send).
 *
 * Ownership and lifetime: every libevent callback that concerns a
 * connection ends in conn_settle(), the only place (besides the worker's
 * stop and free) that destroys a connection; code below it only marks
 * c->dead. That keeps "the connection vanished under me" impossible.
 *
 * HTTP/2 (cleartext, servers/http/h2.h) arrives on the same connections:
 * a connection whose first bytes are the client preface, or whose HTTP/1.1
 * request asks for "Upgrade: h2c", gets a session, and from then on every
 * stream is its own small state machine (struct h2s, holding the request's
 * app_ctx) while the connection only moves bytes. The HTTP/1.1 path pays a
 * flag test per read and per request for it, nothing more.
 */
#include "async_worker.h"

#include "app_host.h"
#include "fetch.h"
#include "h2.h"
#include "http1.h"
#include "stats.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	RBUF_SIZE = 64 * 1024,  /* the worker's shared read buffer */
	IBUF_MAX = 64 * 1024,   /* per connection: input kept behind a request */
	IBUF_MIN = 4 * 1024,    /* first allocation of that buffer */
	ACCEPT_BURST = 64,      /* accept() calls per readiness callback */
	CONN_POOL_MAX = 1024,   /* closed connections kept for reuse */
	SEND_TIMEOUT_SEC = 30,  /* no write progress: close (no keep-alive timeout set) */
	LINGER_TIMEOUT_SEC = 2, /* drain a closing connection at most this long */
	ACCEPT_RETRY_MS = 100,  /* pause after EMFILE and friends */
	H2_OUT_MAX = 1 << 20,   /* HTTP/2 output waiting: stop reading above */
};

enum conn_state { CS_IDLE, CS_REQ, CS_WAIT_SLOT, CS_LINGER };

struct conn;
struct h2s;

/* One explicit call in flight (fetch or timer); pooled by the worker. */
struct aop {
	struct aop *next, *prev; /* in its request's list, or the free list */
	struct aop **list;       /* that list: the connection's or the stream's */
	struct conn *c;
	struct h2s *s;          /* the HTTP/2 stream it belongs to, else NULL */
	struct fetch_req *freq; /* the fetch in flight, else NULL */
	struct event *tev;      /* the timer, created on first use and kept */
	union {
		app_fetch_cb fetch;
		app_timer_cb timer;
	} cb;
	void *arg;
};

/* One HTTP/2 stream's request: its own state machine, as a connection is
 * for HTTP/1.1. It lives from on_request until the app is finished (or the
 * stream is closed under it, which cancels its calls); the codec keeps the
 * request's views until the stream is closed and answered. */
struct h2s {
	struct app_ctx ctx; /* first, see h2s_of() */
	struct conn *c;
	struct h2s *prev, *next;       /* the connection's streams, or the free list */
	struct h2s *wnext;             /* waiting for an --async slot */
	const struct app_request *req; /* the codec's views */
	struct aop *ops;               /* explicit calls in flight */
	int32_t id;
	bool started;  /* holds a slot; the app ran */
	bool failed;   /* an explicit call could not be made: reset it */
	bool answered; /* the app responded (counted in h2_answered_live) */
};

struct conn {
	struct app_ctx ctx; /* the request in flight; first, see conn_of() */
	struct async_worker *w;
	int fd;
	enum conn_state state;
	bool dead;                     /* close at the next conn_settle() */
	bool reading;                  /* rev is added */
	bool writing;                  /* wev is added: output waits for the socket */
	bool partial;                  /* bytes of an unfinished request were parsed */
	bool close_after_write;        /* no more requests: close once out is sent */
	bool linger;                   /* ...and drain the input before closing */
	bool resp_keep_alive;          /* what the last answer promised */
	bool head;                     /* the request in flight is a HEAD */
	bool waited;                   /* ...and outlived the callback that started it */
	bool fresh;                    /* nothing parsed yet: may still be HTTP/2 */
	bool h2_hold;                  /* upgraded, client preface not seen: stream 1 waits */
	bool h2_goaway;                /* our GOAWAY(NO_ERROR) is queued or sent */
	bool head_done;                /* the partial request's head is complete */
	bool more;                     /* the socket may hold input that no edge will report */
	bool rdhup;                    /* EV_CLOSED: the peer's FIN is queued behind the data */
	uint8_t head_nl;               /* end-of-head scan state, see http1_head_scan() */
	int64_t head_t0;               /* ms: a partial head began (0: no deadline) */
	bool tev_armed;                /* tev is pending */
	int64_t idle_from;             /* ms (coarse clock): the read timeout counts from here */
	struct event *rev, *wev, *tev; /* tev: the read (idle) and linger timeouts */
	struct http1_parser *parser;
	struct http1_request req; /* views valid until the next http1_parse() */
	/* Unparsed input that outlived a callback: data[off..len). */
	struct {
		char *data;
		size_t off, len, cap;
	} ib;
	struct http_obuf out;               /* output waiting for the socket */
	struct aop *ops;                    /* explicit calls in flight */
	struct conn *prev, *next;           /* live list, or free list (next) */
	struct conn *wait_prev, *wait_next; /* WAIT_SLOT queue */
	/* HTTP/2 (prior knowledge or h2c upgrade): the session, its live
	 * streams, and those queued for a slot (the connection is then
	 * CS_WAIT_SLOT and does not read). */
	struct h2_session *h2;
	struct h2s *streams;
	struct h2s *h2wait_head, *h2wait_tail;
	unsigned h2_answered_live; /* streams answered whose app still waits */
	bool h2_dirty;             /* in w->h2_dirty */
	struct conn *dirty_next;
};

struct async_worker {
	struct event_base *base;
	const struct server_opts *opts;
	const struct app *app;
	unsigned max_inflight, inflight;
	unsigned nconns, nfree;
	unsigned nstreams; /* HTTP/2 stream records live (stats) */
	int listen_fd;
	bool stopping;
	struct event *accept_ev, *accept_retry_ev, *wake_ev;
	struct event *h2_flush_ev;   /* flushes the HTTP/2 connections in h2_dirty */
	struct conn *h2_dirty;       /* answered from callbacks this loop turn */
	const struct timeval *ka_tv; /* keep-alive idle timeout (common timeout) */
	int64_t ka_ms;               /* the same in ms */
	int64_t head_ms;             /* request-head deadline (slowloris) */
	struct timeval send_tv, linger_tv;
	struct fetch_opts fopts;
	struct fetcher *fetcher;
	struct fetch_sync *fsync; /* created on the first blocking fetch */
	struct http1_limits limits;
	struct h2_limits h2_limits;
	struct conn *conns, *free_conns;
	struct conn *wait_head, *wait_tail;
	struct aop *free_ops;
	struct h2s *free_streams;
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

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_settle(struct conn *c);
static void conn_destroy(struct conn *c);
static const struct app_ctx_ops async_ops;
/* The HTTP/2 side, entered from the HTTP/1.1 paths. Kept out of line
 * ("cold") so that hello over HTTP/1.1 pays one test per step for it, not
 * the register pressure of inlined code it never runs. */
#define H2_ENTRY __attribute__((cold, noinline))
static H2_ENTRY bool h2_conn_upgrade(struct conn *c);
static H2_ENTRY void h2_conn_prior_knowledge(struct conn *c, const char *data, size_t len);
static void h2_conn_input(struct conn *c, const char *data, size_t len);
static H2_ENTRY void h2_conn_read(struct conn *c);
static H2_ENTRY void h2_conn_idle(struct conn *c);
static H2_ENTRY void h2_conn_settle(struct conn *c);
static void h2_conn_run_waiting(struct conn *c);
static H2_ENTRY void h2_conn_drop(struct conn *c);
static void h2s_after_app(struct h2s *s);
static void h2_conn_defer(struct conn *c);

static struct conn *conn_of(struct app_ctx *ctx)
{
	return (struct conn *)((char *)ctx - offsetof(struct conn, ctx));
}

/* ---- output ---- */

/* Answers go to the shared buffer unless this connection already has
 * output waiting for the socket: then they queue behind it, in order. */
static struct http_obuf *conn_obuf(struct conn *c)
{
	return c->out.len ? &c->out : &c->w->out;
}

/* Write what the current callback produced: one send() per connection per
 * callback. A remainder moves to the connection (by swapping buffers, no
 * copy) and waits for EV_WRITE. Forced inline: HTTP/2's settle calls it
 * too, and an out-of-line call would cost the HTTP/1.1 hot path. */
static inline __attribute__((always_inline)) void conn_flush(struct conn *c)
{
	struct async_worker *w = c->w;
	if (w->out.len == 0)
		return;
	if (c->dead || c->writing) {
		/* Dead: drop it. Writing: conn_obuf() sent nothing here. */
		w->out.len = 0;
		return;
	}
	ssize_t n = send(c->fd, w->out.data, w->out.len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			w->out.len = 0;
			c->dead = true;
			return;
		}
		n = 0;
	}
	if ((size_t)n == w->out.len) {
		w->out.len = 0;
		return;
	}
	struct http_obuf t = c->out; /* empty: conn_obuf() chose w->out */
	c->out = w->out;
	w->out = t;
	w->out.len = 0;
	http_obuf_consume(&c->out, (size_t)n);
	if (event_add(c->wev, &w->send_tv) != 0) {
		c->dead = true;
		return;
	}
	c->writing = true;
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	c->writing = false;
	if (what & EV_TIMEOUT) {
		c->dead = true;
	} else {
		ssize_t n = send(fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->dead = true;
		} else {
			if (n > 0)
				http_obuf_consume(&c->out, (size_t)n);
			if (c->out.len > 0) {
				if (event_add(c->wev, &c->w->send_tv) != 0)
					c->dead = true;
				else
					c->writing = true;
			}
		}
	}
	conn_settle(c);
}

/* ---- slots (--async N) ---- */

static void wait_push(struct async_worker *w, struct conn *c)
{
	c->wait_next = NULL;
	c->wait_prev = w->wait_tail;
	if (w->wait_tail)
		w->wait_tail->wait_next = c;
	else
		w->wait_head = c;
	w->wait_tail = c;
}

static void wait_remove(struct async_worker *w, struct conn *c)
{
	if (c->wait_prev)
		c->wait_prev->wait_next = c->wait_next;
	else
		w->wait_head = c->wait_next;
	if (c->wait_next)
		c->wait_next->wait_prev = c->wait_prev;
	else
		w->wait_tail = c->wait_prev;
	c->wait_prev = c->wait_next = NULL;
}

/* A slot was freed: let the queue move, from the loop rather than from
 * here, so a chain of requests that finish at once cannot recurse. */
static void slot_freed(struct async_worker *w)
{
	w->inflight--;
	if (w->wait_head)
		event_active(w->wake_ev, EV_TIMEOUT, 1);
}

/* ---- explicit calls ---- */

/* A call record for the request of c (s NULL: the HTTP/1.1 one), linked
 * into list, the request's own. */
static struct aop *aop_get(struct conn *c, struct h2s *s, struct aop **list)
{
	struct async_worker *w = c->w;
	struct aop *op = w->free_ops;
	if (op) {
		w->free_ops = op->next;
	} else {
		op = calloc(1, sizeof(*op));
		if (!op)
			return NULL;
	}
	op->c = c;
	op->s = s;
	op->list = list;
	op->freq = NULL;
	op->prev = NULL;
	op->next = *list;
	if (*list)
		(*list)->prev = op;
	*list = op;
	return op;
}

static void aop_put(struct aop *op)
{
	struct async_worker *w = op->c->w;
	if (op->prev)
		op->prev->next = op->next;
	else
		*op->list = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->c = NULL;
	op->s = NULL;
	op->list = NULL;
	op->freq = NULL;
	op->prev = NULL;
	op->next = w->free_ops;
	w->free_ops = op;
}

/* Cancel every explicit call of a request: the fetcher drops the transfer
 * and its body, the timer is disarmed; no callback will run. */
static void ops_cancel(struct aop **list)
{
	while (*list) {
		struct aop *op = *list;
		if (op->freq)
			fetch_cancel(op->freq);
		if (op->tev)
			event_del(op->tev);
		aop_put(op);
	}
}

/* ---- the read timeout ----
 *
 * The read (idle) timeout restarts with every read. Re-arming a libevent
 * timer per read (what a persistent event with a timeout does) costs an
 * event_add() per request, ~490 instructions of queue work; instead the
 * read callback only notes the time (the kernel's jiffy clock, a vDSO read)
 * and the timer, armed once, checks on firing whether the connection was
 * idle for the whole timeout, and re-arms itself for the rest if not. The
 * timer is left pending when reading stops; it then does nothing. */

static int64_t coarse_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_timer_arm(struct conn *c, const struct timeval *tv)
{
	if (event_add(c->tev, tv) != 0)
		c->dead = true;
	else
		c->tev_armed = true;
}

/* The idle clock starts now (a read, or reading resumed). */
static inline void conn_idle_restart(struct conn *c)
{
	c->idle_from = coarse_now_ms();
	if (__builtin_expect(!c->tev_armed, 0))
		conn_timer_arm(c, c->w->ka_tv);
}

/* ---- requests ---- */

static void conn_end_request(struct conn *c)
{
	app_ctx_release(&c->ctx);
	c->state = CS_IDLE;
	if (!c->resp_keep_alive)
		c->close_after_write = true;
	if (c->waited && c->reading)
		conn_idle_restart(c); /* the idle clock starts now */
	c->waited = false;
	slot_freed(c->w);
}

/* After the app ran (handler or callback): finished requests end here. */
static void conn_after_app(struct conn *c)
{
	if (!c->dead && app_ctx_finished(&c->ctx))
		conn_end_request(c);
}

static void conn_start(struct conn *c)
{
	struct async_worker *w = c->w;
	if (c->req.upgrade && h2_conn_upgrade(c))
		return; /* HTTP/2 now: the request became stream 1 */
	c->head = app_method_is_head(c->req.req.method);
	c->state = CS_REQ;
	w->inflight++;
	stats_counters.requests++;
	app_ctx_init(&c->ctx, &async_ops, w->opts->upstream);
	app_ctx_run(&c->ctx, w->app, &c->req.req);
	conn_after_app(c);
	if (c->state == CS_REQ)
		c->waited = true;
}

/* Answer a malformed request and close. */
static void conn_error(struct conn *c, int status)
{
	const char *why = http_status_reason(status);
	if (http1_write_response(conn_obuf(c), 1, status, "text/plain", why, strlen(why), false) !=
	    0)
		c->dead = true;
	c->close_after_write = true;
	c->linger = true;
}

/* The loop's cached clock in ms: cheap, and only read on the slow path. */
static int64_t worker_now_ms(struct async_worker *w)
{
	struct timeval tv;
	event_base_gettimeofday_cached(w->base, &tv);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A read left a request unfinished (bytes d[0..n) of it parsed): track its
 * head. The head must be complete within head_ms of its first byte however
 * slowly it trickles in (nginx's client_header_timeout); the body is left
 * to the read timeout. */
static void conn_head_track(struct conn *c, bool started, const char *d, size_t n)
{
	if (!started) {
		c->head_done = false;
		c->head_nl = 0;
		c->head_t0 = 0;
	}
	if (c->head_done)
		return;
	if (http1_head_scan(&c->head_nl, d, n)) {
		c->head_done = true;
		c->head_t0 = 0;
		return;
	}
	if (c->head_t0 == 0)
		c->head_t0 = worker_now_ms(c->w);
}

/* Parse and run requests from data while the connection may: one request
 * at a time, in order. Returns the bytes used; the rest must be kept. */
static size_t conn_process(struct conn *c, const char *data, size_t len)
{
	struct async_worker *w = c->w;
	size_t off = 0;
	if (c->fresh) {
		/* The first bytes say whether this is HTTP/2 with prior knowledge. */
		enum h2_preface p = h2_is_preface(data, len);
		if (p == H2_PREFACE_PARTIAL) {
			c->partial = true; /* not idle: the read timeout still runs */
			return 0;
		}
		c->fresh = false;
		if (p == H2_PREFACE_YES) {
			h2_conn_prior_knowledge(c, data, len);
			return len;
		}
	}
	while (off < len && c->state == CS_IDLE && !c->dead && !c->close_after_write &&
	       !c->writing) {
		size_t used = 0;
		enum http1_result r = http1_parse(c->parser, data + off, len - off, &used, &c->req);
		off += used;
		if (r == HTTP1_NEED_MORE) {
			conn_head_track(c, c->partial, data + off - used, used);
			c->partial = true;
			if (http1_parser_take_continue(c->parser) &&
			    http_obuf_append(conn_obuf(c), HTTP1_CONTINUE, sizeof(HTTP1_CONTINUE) - 1) !=
			        0)
				c->dead = true;
			break;
		}
		if (r == HTTP1_ERROR) {
			conn_error(c, http1_parser_error_status(c->parser));
			break;
		}
		c->partial = false;
		c->head_t0 = 0;
		if (w->inflight >= w->max_inflight) {
			c->state = CS_WAIT_SLOT;
			wait_push(w, c);
			break;
		}
		conn_start(c);
		if (c->h2) {
			/* Upgraded: what follows the request is HTTP/2. */
			h2_conn_input(c, data + off, len - off);
			return len;
		}
	}
	return off;
}

/* Run what the connection's own buffer holds. */
static void conn_process_kept(struct conn *c)
{
	if (c->ib.off == c->ib.len)
		return;
	c->ib.off += conn_process(c, c->ib.data + c->ib.off, c->ib.len - c->ib.off);
	if (c->ib.off == c->ib.len)
		c->ib.off = c->ib.len = 0;
}

/* Make room for n more bytes in the connection's own buffer. */
static int ib_reserve(struct conn *c, size_t n)
{
	if (c->ib.off > 0) {
		memmove(c->ib.data, c->ib.data + c->ib.off, c->ib.len - c->ib.off);
		c->ib.len -= c->ib.off;
		c->ib.off = 0;
	}
	if (c->ib.cap - c->ib.len >= n)
		return 0;
	size_t cap = c->ib.cap ? c->ib.cap : IBUF_MIN;
	while (cap - c->ib.len < n)
		cap *= 2;
	char *d = realloc(c->ib.data, cap);
	if (!d)
		return -1;
	c->ib.data = d;
	c->ib.cap = cap;
	return 0;
}

/* Keep input that the current request (or the slot queue) holds back. */
static void conn_keep(struct conn *c, const char *data, size_t len)
{
	if (ib_reserve(c, len) != 0) {
		c->dead = true;
		return;
	}
	memcpy(c->ib.data + c->ib.len, data, len);
	c->ib.len += len;
}

/* ---- reading ---- */

static void conn_on_eof(struct conn *c)
{
	if (c->state == CS_IDLE && (c->writing || c->out.len || c->w->out.len)) {
		/* Half-closed after its last request: answer, then close. */
		c->close_after_write = true;
		c->linger = false;
		return;
	}
	/* Idle, or a request still waiting (the client gave up, as nginx's
	 * "client prematurely closed connection"): close; conn_destroy cancels
	 * the fetches and timers it waits on. */
	c->dead = true;
}

static void conn_read(struct conn *c)
{
	struct async_worker *w = c->w;
	bool kept = c->ib.len > c->ib.off;
	char *buf;
	size_t room;
	if (kept) {
		if (c->ib.len - c->ib.off >= IBUF_MAX)
			return; /* conn_settle stops reading */
		if (ib_reserve(c, IBUF_MIN) != 0) {
			c->dead = true;
			return;
		}
		buf = c->ib.data + c->ib.len;
		room = c->ib.cap - c->ib.len;
	} else {
		buf = w->rbuf;
		room = sizeof(w->rbuf);
	}
	ssize_t n = recv(c->fd, buf, room, 0);
	if (n == 0) {
		conn_on_eof(c);
		return;
	}
	if (n < 0) {
		if (errno == EINTR)
			c->more = true;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->dead = true;
		return;
	}
	c->more = (size_t)n == room || c->rdhup;
	if (kept) {
		c->ib.len += (size_t)n;
		conn_process_kept(c);
	} else {
		size_t used = conn_process(c, buf, (size_t)n);
		if (used < (size_t)n && !c->dead)
			conn_keep(c, buf + used, (size_t)n - used);
	}
	/* Slowloris: each byte restarts the read timeout, the head deadline
	 * does not move. The read timeout (<= head_ms) checks it between bytes. */
	if (__builtin_expect(c->head_t0 != 0, 0) && c->partial &&
	    worker_now_ms(w) - c->head_t0 >= w->head_ms)
		c->dead = true;
}

static void conn_linger_read(struct conn *c)
{
	ssize_t n = recv(c->fd, c->w->rbuf, sizeof(c->w->rbuf), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		c->dead = true;
	c->more =
	    (n > 0 && ((size_t)n == sizeof(c->w->rbuf) || c->rdhup)) || (n < 0 && errno == EINTR);
}

/* Edge-triggered reading left input behind (see CONN_REV_FLAGS): read
 * again on the next loop turn. A connection that stopped reading needs
 * nothing: event_add() re-polls the socket when it reads again. */
static void conn_more(struct conn *c)
{
	c->more = false;
	if (c->reading)
		event_active(c->rev, EV_READ, 1);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	if (what & EV_CLOSED)
		c->rdhup = true;
	c->idle_from = coarse_now_ms();
	if (what & EV_TIMEOUT) {
		/* Idle too long. A request in the app, or queued for a slot, is
		 * not idle; a connection waiting to write has its own timer. */
		if (c->h2 && c->state != CS_LINGER)
			h2_conn_idle(c);
		else if (c->state == CS_LINGER || (c->state == CS_IDLE && !c->writing))
			c->dead = true;
	} else if (c->state == CS_LINGER) {
		conn_linger_read(c);
	} else if (c->h2) {
		h2_conn_read(c);
	} else {
		conn_read(c);
	}
	conn_settle(c);
}

/* Add or remove the read event. */
static void conn_want_read(struct conn *c, bool want)
{
	if (want == c->reading)
		return;
	if (want) {
		if (event_add(c->rev, NULL) != 0) {
			c->dead = true;
			return;
		}
		conn_idle_restart(c);
	} else {
		event_del(c->rev);
	}
	c->reading = want;
}

/* Shut down: drain the input until EOF or the linger timeout. */
static void conn_linger_start(struct conn *c)
{
	if (!c->reading && event_add(c->rev, NULL) != 0)
		c->dead = true;
	c->reading = true;
	conn_timer_arm(c, &c->w->linger_tv);
}

/* tev fired: the linger timeout, or the read timeout if the connection
 * was really idle for all of it (else re-armed for the rest). */
static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)what;
	c->tev_armed = false;
	if (c->state != CS_LINGER) {
		if (!c->reading)
			return; /* armed again when reading resumes */
		/* Within a few ms counts as done: the clock is a jiffy coarse. */
		int64_t left = c->w->ka_ms - (coarse_now_ms() - c->idle_from);
		if (left > 10) {
			if (left > c->w->ka_ms)
				left = c->w->ka_ms; /* (a clock that went back) */
			struct timeval tv = {.tv_sec = (time_t)(left / 1000),
			                     .tv_usec = (suseconds_t)(left % 1000) * 1000};
			conn_timer_arm(c, &tv);
			if (c->dead)
				conn_settle(c);
			return;
		}
		/* As a persistent event's timeout: the next one counts from here
		 * (a connection whose request waits is not idle: see below). */
		conn_idle_restart(c);
	}
	conn_on_read(fd, EV_TIMEOUT, c);
}

/* Match the read event to what the connection can take. */
static void conn_update_read(struct conn *c)
{
	conn_want_read(c, c->state != CS_WAIT_SLOT && !c->close_after_write &&
	                      c->ib.len - c->ib.off < IBUF_MAX);
}

static bool conn_is_idle(const struct conn *c)
{
	if (c->state == CS_LINGER)
		return true;
	return c->state == CS_IDLE && !c->partial && c->ib.len == c->ib.off && !c->writing &&
	       c->out.len == 0;
}

/* The end of every callback about c: run kept input, write, then close,
 * linger or keep reading as the state says. */
static void conn_settle(struct conn *c)
{
	struct async_worker *w = c->w;
	if (c->h2) {
		h2_conn_settle(c);
		return;
	}
	if (!c->dead && c->state == CS_IDLE && !c->writing)
		conn_process_kept(c);
	conn_flush(c);
	if (!c->dead && c->close_after_write && !c->writing && c->state == CS_IDLE) {
		if (!c->linger) {
			c->dead = true;
		} else {
			/* Shut our side, drain theirs, close on EOF or timeout. */
			shutdown(c->fd, SHUT_WR);
			c->state = CS_LINGER;
			conn_linger_start(c);
		}
	}
	if (!c->dead && w->stopping && conn_is_idle(c))
		c->dead = true;
	if (c->dead) {
		conn_destroy(c);
		return;
	}
	if (c->state != CS_LINGER)
		conn_update_read(c);
	if (c->dead)
		conn_destroy(c);
	else if (__builtin_expect(c->more, 0))
		conn_more(c);
}

/* ---- the app's side (app_ctx_ops) ---- */

static void op_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                       size_t len)
{
	struct conn *c = conn_of(ctx);
	struct async_worker *w = c->w;
	bool ka = c->req.keep_alive && !w->stopping && w->opts->keepalive_timeout > 0;
	int minor = c->req.req.http_minor;
	int rc = c->head ? http1_write_head(conn_obuf(c), minor, status, content_type, len, ka)
	                 : http1_write_response(conn_obuf(c), minor, status, content_type, body,
	                                        len, ka);
	if (rc != 0)
		c->dead = true;
	c->resp_keep_alive = ka;
}

/* Blocking style, ON PURPOSE: a synchronous transfer that stops the whole
 * worker until the upstream answers. See async_worker.h. */
static int fetch_blocking(struct async_worker *w, struct app_ctx *ctx, const char *url,
                          struct app_fetch_result *out)
{
	if (!w->fsync)
		w->fsync = fetch_sync_new(&w->fopts);
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

static int op_fetch_blocking(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	return fetch_blocking(conn_of(ctx)->w, ctx, url, out);
}

/* Blocking style, ON PURPOSE: a real sleep of the worker process. */
static void op_sleep_blocking(struct app_ctx *ctx, unsigned ms)
{
	(void)ctx;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void aop_fetch_done(void *arg, struct app_fetch_result *res, void *body)
{
	struct aop *op = arg;
	struct conn *c = op->c;
	struct h2s *s = op->s;
	app_fetch_cb cb = op->cb.fetch;
	void *cbarg = op->arg;
	aop_put(op);
	if (s) {
		app_ctx_deliver_fetch(&s->ctx, cb, cbarg, res, body);
		h2s_after_app(s);
		h2_conn_defer(c);
		return;
	}
	app_ctx_deliver_fetch(&c->ctx, cb, cbarg, res, body);
	conn_after_app(c);
	conn_settle(c);
}

/* Start a fetch for the request (c, s) whose calls are on list. */
static int start_fetch(struct conn *c, struct h2s *s, struct aop **list, const char *url,
                       app_fetch_cb cb, void *arg)
{
	struct aop *op = aop_get(c, s, list);
	if (!op)
		return APP_FETCH_ENOMEM;
	op->cb.fetch = cb;
	op->arg = arg;
	int err = fetcher_get(c->w->fetcher, url, aop_fetch_done, op, &op->freq);
	if (err != 0) {
		aop_put(op);
		return err;
	}
	return 0;
}

static int op_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	struct conn *c = conn_of(ctx);
	return start_fetch(c, NULL, &c->ops, url, cb, arg);
}

static void aop_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct aop *op = arg;
	struct conn *c = op->c;
	struct h2s *s = op->s;
	app_timer_cb cb = op->cb.timer;
	void *cbarg = op->arg;
	(void)fd;
	(void)what;
	aop_put(op);
	if (s) {
		app_ctx_deliver_timer(&s->ctx, cb, cbarg);
		h2s_after_app(s);
		h2_conn_defer(c);
		return;
	}
	app_ctx_deliver_timer(&c->ctx, cb, cbarg);
	conn_after_app(c);
	conn_settle(c);
}

/* Arm a timer for the request (c, s). -1 when it cannot be: the callback
 * would never run, and the caller gives up on the request. */
static int start_timer(struct conn *c, struct h2s *s, struct aop **list, unsigned ms,
                       app_timer_cb cb, void *arg)
{
	struct aop *op = aop_get(c, s, list);
	if (op && !op->tev)
		op->tev = evtimer_new(c->w->base, aop_timer_fired, op);
	if (!op || !op->tev) {
		if (op)
			aop_put(op);
		return -1;
	}
	op->cb.timer = cb;
	op->arg = arg;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	if (evtimer_add(op->tev, &tv) != 0) {
		aop_put(op);
		return -1;
	}
	return 0;
}

static void op_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	struct conn *c = conn_of(ctx);
	/* On failure give up on the connection rather than leave it hanging
	 * (conn_destroy releases the request). */
	if (start_timer(c, NULL, &c->ops, ms, cb, arg) != 0)
		c->dead = true;
}

static const struct app_ctx_ops async_ops = {
    .fetch = op_fetch_blocking,
    .sleep_ms = op_sleep_blocking,
    .fetch_async = op_fetch_async,
    .sleep_async = op_sleep_async,
    .respond = op_respond,
};

/* ---- HTTP/2: one session per connection, one state machine per stream ----
 *
 * A connection turns into HTTP/2 either on its first bytes (the client
 * preface: prior knowledge) or on an HTTP/1.1 request asking for h2c. From
 * then on the connection only moves bytes: h2_session_recv() hands
 * complete requests to h2_on_request(), each becomes a struct h2s whose app
 * runs exactly as an HTTP/1.1 request's does (same explicit calls, same
 * callbacks), and h2_conn_settle() flushes the session at the end of every
 * callback, so answers given from a fetch or timer callback go out at once.
 * See servers/http/H2.md. */

static struct h2s *h2s_of(struct app_ctx *ctx)
{
	return (struct h2s *)((char *)ctx - offsetof(struct h2s, ctx));
}

static const struct app_ctx_ops h2_ops;

/* The stream's record leaves the connection and goes back to the pool. */
static void h2s_free(struct h2s *s)
{
	struct conn *c = s->c;
	struct async_worker *w = c->w;
	if (s->answered)
		c->h2_answered_live--;
	w->nstreams--;
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = NULL;
	s->next = w->free_streams;
	w->free_streams = s;
}

/* The request is over for this worker: free what the app owned, give the
 * slot back, recycle the record. Its calls were cancelled or delivered. */
static void h2s_end(struct h2s *s)
{
	if (s->started) {
		app_ctx_release(&s->ctx);
		slot_freed(s->c->w);
	}
	h2s_free(s);
}

/* Give up on a stream: cancel its calls and reset it with code. On a
 * stream that is already closed or answered the reset sends nothing and
 * only lets the codec release the request. */
static void h2s_abort(struct h2s *s, uint32_t code)
{
	ops_cancel(&s->ops);
	h2_session_reset_stream(s->c->h2, s->id, code);
	h2s_end(s);
}

/* After the app ran (handler or callback). */
static void h2s_after_app(struct h2s *s)
{
	if (s->failed)
		h2s_abort(s, NGHTTP2_INTERNAL_ERROR); /* RST_STREAM on app failure */
	else if (app_ctx_finished(&s->ctx))
		h2s_end(s);
}

static void h2s_start(struct h2s *s)
{
	struct async_worker *w = s->c->w;
	s->started = true;
	w->inflight++;
	stats_counters.requests++;
	app_ctx_init(&s->ctx, &h2_ops, w->opts->upstream);
	app_ctx_run(&s->ctx, w->app, s->req);
	h2s_after_app(s);
}

static void h2_on_request(void *user, int32_t id, const struct app_request *req)
{
	struct conn *c = user;
	struct async_worker *w = c->w;
	struct h2s *s = w->free_streams;
	if (s) {
		w->free_streams = s->next;
	} else if (!(s = malloc(sizeof(*s)))) {
		h2_session_reset_stream(c->h2, id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	w->nstreams++;
	s->c = c;
	s->id = id;
	s->req = req;
	s->ops = NULL;
	s->wnext = NULL;
	s->started = s->failed = s->answered = false;
	s->prev = NULL;
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	if (c->h2_hold) {
		/* Stream 1 of an upgrade: run it once the client's preface is
		 * here, so that its answer does not share a read with the 101
		 * (curl 7.88 fails when more than its buffer follows the 101). */
		c->h2wait_head = c->h2wait_tail = s;
		return;
	}
	if (c->h2wait_head || w->inflight >= w->max_inflight) {
		/* --async N counts streams too: queue it behind the others of
		 * this connection, which stops reading until a slot frees. */
		if (c->h2wait_tail)
			c->h2wait_tail->wnext = s;
		else
			c->h2wait_head = s;
		c->h2wait_tail = s;
		if (c->state != CS_WAIT_SLOT) {
			c->state = CS_WAIT_SLOT;
			wait_push(w, c);
		}
		return;
	}
	h2s_start(s);
}

static void h2_on_stream_close(void *user, int32_t id, uint32_t error_code)
{
	struct conn *c = user;
	/* The usual case: the answer went out and the record is already gone.
	 * Only a stream answered by an app that still waits on calls can be
	 * live after a clean close. */
	if (error_code == NGHTTP2_NO_ERROR && c->h2_answered_live == 0)
		return;
	struct h2s *s = c->streams;
	while (s && s->id != id)
		s = s->next;
	if (!s)
		return;
	if (s->started) {
		/* Reset by the client (or answered while calls were pending):
		 * cancel what the app waits on; it never runs again. */
		h2s_abort(s, NGHTTP2_CANCEL);
		return;
	}
	/* Still queued for a slot: take it out. */
	struct h2s **pp = &c->h2wait_head, *last = NULL;
	while (*pp != s) {
		last = *pp;
		pp = &(*pp)->wnext;
	}
	*pp = s->wnext;
	if (c->h2wait_tail == s)
		c->h2wait_tail = last;
	if (!c->h2wait_head && c->state == CS_WAIT_SLOT) {
		wait_remove(c->w, c);
		c->state = CS_IDLE;
	}
	h2_session_reset_stream(c->h2, id, NGHTTP2_CANCEL);
	h2s_free(s);
}

static const struct h2_callbacks h2_cbs = {
    .on_request = h2_on_request,
    .on_stream_close = h2_on_stream_close,
};

/* Start queued streams while slots are free; requeue the rest. */
static void h2_conn_run_waiting(struct conn *c)
{
	struct async_worker *w = c->w;
	while (c->h2wait_head && w->inflight < w->max_inflight) {
		struct h2s *s = c->h2wait_head;
		c->h2wait_head = s->wnext;
		if (!c->h2wait_head)
			c->h2wait_tail = NULL;
		s->wnext = NULL;
		h2s_start(s);
	}
	if (c->h2wait_head) {
		c->state = CS_WAIT_SLOT;
		wait_push(w, c);
	}
}

/* Cancel every stream of the connection: their calls, their requests,
 * their slots (and the connection's place in the slot queue). */
static void h2_conn_cancel_streams(struct conn *c)
{
	if (c->state == CS_WAIT_SLOT) {
		wait_remove(c->w, c);
		c->state = CS_IDLE;
	}
	c->h2wait_head = c->h2wait_tail = NULL;
	while (c->streams) {
		struct h2s *s = c->streams;
		ops_cancel(&s->ops);
		h2s_end(s);
	}
}

/* For conn_destroy: the streams, then the session. */
static void h2_conn_drop(struct conn *c)
{
	h2_conn_cancel_streams(c);
	h2_session_free(c->h2);
	c->h2 = NULL;
	c->h2_hold = c->h2_goaway = false;
}

/* Feed bytes read from the client. A connection error has queued its
 * GOAWAY: send it, then close, draining what the client still sends. */
static void h2_conn_input(struct conn *c, const char *data, size_t len)
{
	if (len == 0)
		return;
	if (c->h2_hold) {
		c->h2_hold = false;
		h2_conn_run_waiting(c);
	}
	if (h2_session_recv(c->h2, data, len) != 0) {
		c->close_after_write = true;
		c->linger = true;
	}
}

static void h2_conn_prior_knowledge(struct conn *c, const char *data, size_t len)
{
	c->partial = false;
	c->h2 = h2_session_new(&c->w->h2_limits, &h2_cbs, c);
	if (!c->h2) {
		c->dead = true;
		return;
	}
	h2_conn_input(c, data, len); /* the preface too */
}

/* The HTTP/1.1 request in c->req asks for h2c: switch, or return false to
 * serve it as HTTP/1.1 (malformed HTTP2-Settings, out of memory). */
static bool h2_conn_upgrade(struct conn *c)
{
	struct app_str settings;
	if (!h2_upgrade_request(&c->req.req, &settings))
		return false;
	c->h2 = h2_session_new(&c->w->h2_limits, &h2_cbs, c);
	if (!c->h2)
		return false;
	c->h2_hold = true; /* stream 1 is held, see h2_on_request */
	if (h2_session_upgrade(c->h2, settings, &c->req.req) != 0) {
		h2_session_free(c->h2);
		c->h2 = NULL;
		c->h2_hold = false;
		return false;
	}
	struct http_obuf *out = conn_obuf(c);
	if (http_obuf_append(out, H2_UPGRADE_RESPONSE, sizeof(H2_UPGRADE_RESPONSE) - 1) != 0 ||
	    h2_session_flush(c->h2, out) != 0)
		c->dead = true;
	return true;
}

static void h2_conn_read(struct conn *c)
{
	struct async_worker *w = c->w;
	ssize_t n = recv(c->fd, w->rbuf, sizeof(w->rbuf), 0);
	if (n == 0) {
		c->dead = true; /* the client left: conn_destroy cancels its streams */
		return;
	}
	if (n < 0) {
		if (errno == EINTR)
			c->more = true;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->dead = true;
		return;
	}
	c->more = (size_t)n == sizeof(w->rbuf) || c->rdhup;
	h2_conn_input(c, w->rbuf, (size_t)n);
}

/* Nothing read for --keepalive-timeout: with no handler running, say
 * GOAWAY; the session then closes itself, or a timeout later we close it. */
static void h2_conn_idle(struct conn *c)
{
	if (c->h2_hold) {
		c->dead = true; /* upgraded, but no client preface ever came */
		return;
	}
	/* A handler still running is not idleness; a write has its own timer. */
	if (h2_session_unanswered_streams(c->h2) != 0 || c->writing)
		return;
	if (!c->h2_goaway) {
		c->h2_goaway = true;
		if (h2_session_goaway_graceful(c->h2) != 0)
			c->dead = true;
	} else if (h2_session_open_streams(c->h2) != 0) {
		/* A whole timeout after our GOAWAY its streams still wait on the
		 * client (a window it never opens): it takes no answer. */
		c->dead = true;
	}
}

/* conn_settle() for an HTTP/2 connection: flush the session, write, then
 * close, linger or keep reading. */
static void h2_conn_settle(struct conn *c)
{
	struct async_worker *w = c->w;
	if (w->stopping && !c->h2_goaway && !c->dead && c->state != CS_LINGER) {
		/* Graceful stop: streams already begun finish, newer ones are
		 * refused, and the session then closes itself (below). */
		c->h2_goaway = true;
		if (h2_session_goaway_graceful(c->h2) != 0)
			c->dead = true;
	}
	if (!c->dead && c->state != CS_LINGER) {
		/* Input kept behind an upgrade request that waited for a slot. */
		if (c->ib.len > c->ib.off && c->state != CS_WAIT_SLOT && !c->close_after_write) {
			size_t off = c->ib.off, len = c->ib.len;
			c->ib.off = c->ib.len = 0;
			h2_conn_input(c, c->ib.data + off, len - off);
		}
		if (h2_session_flush(c->h2, conn_obuf(c)) != 0)
			c->dead = true;
	}
	conn_flush(c);
	if (!c->dead && c->state != CS_LINGER && !c->writing &&
	    (c->close_after_write || h2_session_is_closed(c->h2))) {
		h2_conn_cancel_streams(c);
		if (!c->linger) {
			c->dead = true;
		} else {
			shutdown(c->fd, SHUT_WR);
			c->state = CS_LINGER;
			conn_linger_start(c);
		}
	}
	if (!c->dead && c->state != CS_LINGER)
		conn_want_read(c, c->state != CS_WAIT_SLOT && !c->close_after_write &&
		                      c->out.len < H2_OUT_MAX);
	if (c->dead)
		conn_destroy(c);
	else if (c->more)
		conn_more(c);
}

/* A stream of c was answered (or failed) from a fetch or timer callback:
 * settle the connection once, after every callback of this loop turn, so
 * that the answers of many streams leave in one send (proxy-async over h2
 * would otherwise make a send per stream). The worker's flush event is
 * activated now and runs after the callbacks already queued. */
static void h2_conn_defer(struct conn *c)
{
	struct async_worker *w = c->w;
	if (c->dead) {
		conn_settle(c); /* destroy it now */
		return;
	}
	if (c->h2_dirty)
		return;
	c->h2_dirty = true;
	c->dirty_next = w->h2_dirty;
	if (!w->h2_dirty)
		event_active(w->h2_flush_ev, EV_TIMEOUT, 1);
	w->h2_dirty = c;
}

/* conn_destroy: c must not be flushed later. */
static void h2_conn_undirty(struct conn *c)
{
	struct conn **pp = &c->w->h2_dirty;
	while (*pp != c)
		pp = &(*pp)->dirty_next;
	*pp = c->dirty_next;
	c->h2_dirty = false;
}

static void worker_h2_flush(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	while (w->h2_dirty) {
		struct conn *c = w->h2_dirty;
		w->h2_dirty = c->dirty_next;
		c->h2_dirty = false;
		conn_settle(c);
	}
}

/* ---- the app's side of an HTTP/2 stream ---- */

static void h2_op_respond(struct app_ctx *ctx, int status, const char *content_type,
                          const void *body, size_t len)
{
	struct h2s *s = h2s_of(ctx);
	s->answered = true;
	s->c->h2_answered_live++;
	/* -1: the client reset the stream (nothing is sent, the request is
	 * released); -2: out of memory, the codec reset it. Either way done. */
	h2_session_respond(s->c->h2, s->id, status, content_type, body, len);
}

static int h2_op_fetch_blocking(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	return fetch_blocking(h2s_of(ctx)->c->w, ctx, url, out);
}

static int h2_op_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	struct h2s *s = h2s_of(ctx);
	return start_fetch(s->c, s, &s->ops, url, cb, arg);
}

static void h2_op_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	struct h2s *s = h2s_of(ctx);
	if (start_timer(s->c, s, &s->ops, ms, cb, arg) != 0)
		s->failed = true; /* the callback could never run: reset the stream */
}

static const struct app_ctx_ops h2_ops = {
    .fetch = h2_op_fetch_blocking,
    .sleep_ms = op_sleep_blocking,
    .fetch_async = h2_op_fetch_async,
    .sleep_async = h2_op_sleep_async,
    .respond = h2_op_respond,
};

/* ---- connections ---- */

static struct conn *conn_new(struct async_worker *w)
{
	struct conn *c = w->free_conns;
	if (c) {
		w->free_conns = c->next;
		w->nfree--;
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->w = w;
	c->fd = -1;
	http_obuf_init(&c->out);
	c->parser = http1_parser_new(&w->limits);
	c->rev = event_new(w->base, -1, CONN_REV_FLAGS, conn_on_read, c);
	c->wev = event_new(w->base, -1, CONN_WEV_FLAGS, conn_on_write, c);
	c->tev = evtimer_new(w->base, conn_on_timer, c);
	if (!c->parser || !c->rev || !c->wev || !c->tev) {
		http1_parser_free(c->parser);
		if (c->rev)
			event_free(c->rev);
		if (c->wev)
			event_free(c->wev);
		if (c->tev)
			event_free(c->tev);
		free(c);
		return NULL;
	}
	return c;
}

static void conn_free_mem(struct conn *c)
{
	http1_parser_free(c->parser);
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->tev);
	free(c->ib.data);
	http_obuf_free(&c->out);
	free(c);
}

static void conn_destroy(struct conn *c)
{
	struct async_worker *w = c->w;
	ops_cancel(&c->ops);
	if (c->h2)
		h2_conn_drop(c);
	if (c->h2_dirty)
		h2_conn_undirty(c);
	if (c->state == CS_REQ) {
		app_ctx_release(&c->ctx);
		slot_freed(w);
	} else if (c->state == CS_WAIT_SLOT) {
		wait_remove(w, c);
	}
	event_del(c->rev);
	event_del(c->wev);
	event_del(c->tev);
	c->tev_armed = false;
	close(c->fd);
	c->fd = -1;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;

	if (w->nfree >= CONN_POOL_MAX) {
		conn_free_mem(c);
	} else {
		http1_parser_reset(c->parser);
		/* Do not pin big buffers in the pool. */
		if (c->ib.cap > IBUF_MIN) {
			free(c->ib.data);
			c->ib.data = NULL;
			c->ib.cap = 0;
		}
		c->ib.off = c->ib.len = 0;
		http_obuf_free(&c->out);
		c->prev = NULL;
		c->next = w->free_conns;
		w->free_conns = c;
		w->nfree++;
	}
	if (w->stopping && w->nconns == 0)
		event_base_loopbreak(w->base);
}

/* Serve fd, already non-blocking. */
static int conn_open(struct async_worker *w, int fd)
{
	struct conn *c = conn_new(w);
	if (!c) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not TCP: fails, fine */
	c->fd = fd;
	c->state = CS_IDLE;
	c->dead = c->writing = c->partial = c->close_after_write = c->linger = false;
	c->head_t0 = 0;
	c->waited = false;
	c->fresh = true;
	c->resp_keep_alive = true;
	c->ops = NULL;
	c->wait_prev = c->wait_next = NULL;
	c->more = c->rdhup = c->tev_armed = false;
	event_assign(c->rev, w->base, fd, CONN_REV_FLAGS, conn_on_read, c);
	event_assign(c->wev, w->base, fd, CONN_WEV_FLAGS, conn_on_write, c);
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	c->reading = false;
	conn_update_read(c);
	if (c->dead) {
		conn_destroy(c);
		return -1;
	}
	return 0;
}

int async_worker_adopt(struct async_worker *w, int fd)
{
	evutil_make_socket_nonblocking(fd);
	return conn_open(w, fd);
}

/* ---- the worker ---- */

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	while (w->wait_head && w->inflight < w->max_inflight) {
		struct conn *c = w->wait_head;
		wait_remove(w, c);
		c->state = CS_IDLE;
		if (c->h2)
			h2_conn_run_waiting(c);
		else
			conn_start(c);
		conn_settle(c);
	}
}

static void worker_accept(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)what;
	for (int i = 0; i < ACCEPT_BURST && !w->stopping; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment
				 * instead of spinning on a level-triggered event,
				 * saying so once per episode. */
				if (errno == EMFILE || errno == ENFILE)
					stats_accept_paused(errno);
				struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
				event_del(w->accept_ev);
				evtimer_add(w->accept_retry_ev, &tv);
			} else if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			           __builtin_expect(stats_accept_is_paused(), 0)) {
				/* Drained without running out: an episode ends. */
				stats_accept_resumed();
			}
			return;
		}
		conn_open(w, cfd);
	}
}

static void worker_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	if (!w->stopping)
		event_add(w->accept_ev, NULL);
}

struct async_worker *async_worker_new(struct event_base *base, const struct async_config *cfg,
                                      int listen_fd)
{
	struct async_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->base = base;
	w->opts = cfg->opts;
	w->app = cfg->app;
	w->max_inflight = cfg->max_inflight ? cfg->max_inflight : 1;
	w->listen_fd = listen_fd;
	http_obuf_init(&w->out);
	w->limits = http1_limits_default();
	w->limits.max_body_bytes = cfg->opts->max_body;
	w->h2_limits = h2_limits_default();
	w->h2_limits.http = w->limits;
	if (cfg->opts->h2_max_streams)
		w->h2_limits.max_streams = cfg->opts->h2_max_streams;
	struct timeval ka = {.tv_sec =
	                         cfg->opts->keepalive_timeout ? cfg->opts->keepalive_timeout : 1};
	w->ka_tv = event_base_init_common_timeout(base, &ka);
	w->ka_ms = (int64_t)ka.tv_sec * 1000;
	/* Answers left unread: close after --keepalive-timeout without write
	 * progress, as coro-server does. */
	unsigned send_sec =
	    cfg->opts->keepalive_timeout ? cfg->opts->keepalive_timeout : SEND_TIMEOUT_SEC;
	w->send_tv = (struct timeval){.tv_sec = send_sec};
	w->head_ms = (int64_t)send_sec * 1000;
	w->linger_tv = (struct timeval){.tv_sec = LINGER_TIMEOUT_SEC};
	w->fopts = fetch_opts_default();
	w->fopts.timeout_ms = cfg->opts->upstream_timeout_ms;
	w->fetcher = fetcher_new(base, &w->fopts);
	w->wake_ev = event_new(base, -1, 0, worker_wake, w);
	w->h2_flush_ev = event_new(base, -1, 0, worker_h2_flush, w);
	w->accept_retry_ev = evtimer_new(base, worker_accept_retry, w);
	if (listen_fd >= 0)
		w->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST, worker_accept, w);
	if (!w->ka_tv || !w->fetcher || !w->wake_ev || !w->h2_flush_ev || !w->accept_retry_ev ||
	    (listen_fd >= 0 && (!w->accept_ev || event_add(w->accept_ev, NULL) != 0))) {
		async_worker_free(w);
		errno = ENOMEM;
		return NULL;
	}
	return w;
}

void async_worker_stop(struct async_worker *w)
{
	if (w->stopping)
		return;
	w->stopping = true;
	if (w->accept_ev)
		event_del(w->accept_ev);
	event_del(w->accept_retry_ev);
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->h2) {
			conn_settle(c); /* says GOAWAY, see h2_conn_settle */
		} else if (conn_is_idle(c)) {
			conn_destroy(c);
		}
		c = next;
	}
	if (w->nconns == 0)
		event_base_loopbreak(w->base);
}

unsigned async_worker_conns(const struct async_worker *w)
{
	return w->nconns;
}

unsigned async_worker_inflight(const struct async_worker *w)
{
	return w->inflight;
}

void async_worker_free(struct async_worker *w)
{
	if (!w)
		return;
	bool stopping = w->stopping;
	w->stopping = false; /* no loopbreak from the teardown */
	while (w->conns)
		conn_destroy(w->conns);
	w->stopping = stopping;
	while (w->free_conns) {
		struct conn *c = w->free_conns;
		w->free_conns = c->next;
		conn_free_mem(c);
	}
	while (w->free_streams) {
		struct h2s *s = w->free_streams;
		w->free_streams = s->next;
		free(s);
	}
	while (w->free_ops) {
		struct aop *op = w->free_ops;
		w->free_ops = op->next;
		if (op->tev)
			event_free(op->tev);
		free(op);
	}
	if (w->fetcher)
		fetcher_free(w->fetcher);
	if (w->fsync)
		fetch_sync_free(w->fsync);
	if (w->accept_ev)
		event_free(w->accept_ev);
	if (w->accept_retry_ev)
		event_free(w->accept_retry_ev);
	if (w->wake_ev)
		event_free(w->wake_ev);
	if (w->h2_flush_ev)
		event_free(w->h2_flush_ev);
	http_obuf_free(&w->out);
	free(w);
}

/* ---- the process's entry point under master_run() ---- */

/* The gauges of stats.h; fetches come from the fetcher, and there are
 * no coroutines here. */
static void worker_stats_fill(void *arg, struct worker_stats *out)
{
	const struct async_worker *w = arg;
	out->conns = w->nconns;
	out->inflight = w->inflight;
	out->streams = w->nstreams;
	out->coros = 0;
	out->stack_pool = 0;
}

static void worker_on_usr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	stats_log();
}

struct worker_run {
	struct async_worker *w;
	struct event *grace_ev;
	unsigned graceful_timeout;
};

static void worker_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker_run *run = arg;
	(void)sig;
	(void)what;
	if (run->w->stopping)
		return;
	struct timeval tv = {.tv_sec = run->graceful_timeout};
	evtimer_add(run->grace_ev, &tv);
	async_worker_stop(run->w);
}

static void worker_on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(base); /* time is up: what is left is closed */
}

int async_worker_main(const struct worker_env *env, void *arg)
{
	const struct async_config *cfg = arg;
	signal(SIGPIPE, SIG_IGN);

	struct event_config *ec = event_config_new();
	if (!ec)
		return 1;
	/* Precise timers for apps that sleep or fetch: libcurl's and the apps'
	 * timers would otherwise be rounded up to epoll_wait's millisecond and
	 * read a jiffy-coarse clock. They cost a timerfd_settime() per loop
	 * turn (one per ~3 hello requests under wrk, 3% of the worker's CPU),
	 * so an app that never waits, whose only timers are the connections'
	 * second-long timeouts, runs without them (as coro-server does). */
	int fl = EVENT_BASE_FLAG_NOLOCK;
	if (cfg->app->flags & (APP_USES_BLOCKING | APP_USES_UPSTREAM))
		fl |= EVENT_BASE_FLAG_PRECISE_TIMER;
	event_config_set_flag(ec, fl);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!base)
		return 1;

	struct async_config c = *cfg;
	c.opts = env->opts;
	struct worker_run run = {.graceful_timeout = env->opts->graceful_timeout};
	run.w = async_worker_new(base, &c, env->listen_fd);
	run.grace_ev = evtimer_new(base, worker_on_grace, base);
	struct event *sigterm = evsignal_new(base, SIGTERM, worker_on_signal, &run);
	struct event *sigint = evsignal_new(base, SIGINT, worker_on_signal, &run);
	struct event *sigusr1 = evsignal_new(base, SIGUSR1, worker_on_usr1, NULL);
	int rc = 1;
	if (run.w && run.grace_ev && sigterm && sigint && sigusr1 &&
	    event_add(sigterm, NULL) == 0 && event_add(sigint, NULL) == 0 &&
	    event_add(sigusr1, NULL) == 0) {
		stats_bind("async-server", run.w->fetcher, worker_stats_fill, run.w);
		rc = event_base_dispatch(base) < 0 ? 1 : 0;
		stats_bind("async-server", NULL, NULL, NULL);
	}
	async_worker_free(run.w);
	if (sigusr1)
		event_free(sigusr1);
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (run.grace_ev)
		event_free(run.grace_ev);
	event_base_free(base);
	return rc;
}
