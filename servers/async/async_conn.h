/* async_conn.h — what the two files of async-server's worker share
 * (async_worker.c: connections, their callbacks, the slots, the class;
 * async_h2.c: HTTP/2 streams on them). Not an API: the server's API is
 * async_worker.h.
 */
#ifndef COROBENCH_ASYNC_CONN_H
#define COROBENCH_ASYNC_CONN_H

#include "async_worker.h"

#include "core_h1.h"

#include <event2/event.h>

#include <errno.h>
#include <sys/socket.h>

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
	struct core_stall stall; /* the write timeout, while writing (clock.h) */
	bool reading;         /* rev is added */
	bool writing;         /* wev is added: output waits for the socket */
	bool lingering;       /* after an error answer: draining input until EOF */
	bool waited;          /* the request outlived the callback that started it */
	bool more;            /* the socket may hold input that no edge will report */
	bool read_on;         /* a short read may leave input: EV_CLOSED (the peer's FIN
	                         is queued behind the data), or not a TCP socket */
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
 * async_conn_more() reads again on the next loop turn. */
#define CONN_REV_FLAGS (EV_READ | EV_CLOSED | EV_PERSIST | EV_ET)
#define CONN_WEV_FLAGS (EV_WRITE | EV_ET)

static inline struct async_worker *async_worker_of(struct core *w)
{
	return (struct async_worker *)w;
}

static inline struct async_worker *async_conn_worker(struct conn *c)
{
	return async_worker_of(c->cc.w);
}

static inline struct conn *async_conn_of(struct core_conn *cc)
{
	return (struct conn *)cc;
}

/* ---- output ---- */

/* Bytes waiting for the socket: over TLS the records in the TLS layer's
 * output (answers are encrypted at once, so cc.out stays empty there),
 * else cc.out. What HTTP/2's read throttle (H2_OUT_MAX) must look at. */
static inline size_t async_conn_unsent(struct conn *c)
{
	return c->cc.tls ? tls_conn_out(c->cc.tls)->len : c->cc.out.len;
}

/* Write what the current callback produced: one send() per connection per
 * callback. A remainder moves to the connection (by swapping buffers, no
 * copy), answers queue behind it there (cc.obuf), and it waits for
 * EV_WRITE; the connection parses nothing more meanwhile (cc.hold). Forced
 * inline: HTTP/2's settle calls it too, and an out-of-line call would cost
 * the HTTP/1.1 hot path. */
void async_conn_flush_tls(struct conn *c);

/* The worker's buffer, with the answers in it, becomes c's (a swap, no
 * copy: c's empty one becomes the worker's); c parses no more until they
 * are written (cc.hold). */
static inline __attribute__((always_inline)) void async_conn_keep_out(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	struct http_obuf t = c->cc.out; /* empty: answers went to w->out */
	c->cc.out = w->out;
	w->out = t;
	w->out.len = 0;
	c->cc.obuf = &c->cc.out;
	c->cc.hold = true;
}

/* Output waits for the socket: EV_WRITE, or the write timeout (a whole
 * one; c->stall says whether the client moved meanwhile). */
static inline void async_conn_wait_write_tv(struct conn *c, const struct timeval *tv)
{
	if (event_add(&c->wev, tv) != 0)
		c->cc.dead = true;
	else
		c->writing = true;
}

static inline void async_conn_wait_write(struct conn *c)
{
	async_conn_wait_write_tv(c, &async_conn_worker(c)->send_tv);
}

/* ...or for what is left of it (a send that took nothing). */
static inline void async_conn_wait_write_ms(struct conn *c, unsigned ms)
{
	struct timeval tv = core_tv(ms);
	async_conn_wait_write_tv(c, &tv);
}

static inline __attribute__((always_inline)) void async_conn_send(struct conn *c, bool cork)
{
	struct async_worker *w = async_conn_worker(c);
	if (__builtin_expect(c->cc.tls != NULL, 0)) {
		async_conn_flush_tls(c); /* the handshake may have output of its own */
		return;
	}
	if (w->out.len == 0)
		return;
	if (c->cc.dead || c->writing) {
		/* Dead: drop it. Writing (or corked): answers went to cc.out, not here. */
		w->out.len = 0;
		return;
	}
	if (cork && !c->cc.close_after && !c->cc.h2 && core_cork_worth(c->cc.w)) {
		/* core.h: sent at the end of the loop turn (uncork_hook); it
		 * counts as writing until then */
		async_conn_keep_out(c);
		c->writing = true;
		core_cork(&c->cc);
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
	async_conn_keep_out(c);
	http_obuf_consume(&c->cc.out, (size_t)n);
	core_stall_start(&c->stall, c->cc.fd, w->core.read_ms);
	async_conn_wait_write(c);
}

/* The end of a callback: the answers wait for the end of the loop turn
 * (core_cork), unless --send-at-once or the connection closes after them. */
static inline __attribute__((always_inline)) void async_conn_flush(struct conn *c)
{
	async_conn_send(c, true);
}

/* The read timeout (lazy, clock.h): one clock read per read. */
static inline __attribute__((always_inline)) void async_conn_timeout_set(struct conn *c,
                                                                         unsigned ms)
{
	if (core_lazy_begin(&c->tmo, ms)) {
		struct async_worker *w = async_conn_worker(c);
		struct timeval tv = core_tv(ms);
		if (core_lazy_arm(&c->tmo, ms == w->core.read_ms ? w->read_tv : &tv) != 0)
			c->cc.dead = true;
	}
}

/* recv(): the bytes read; 0 when there is nothing more for now (an error
 * marks the connection dead); -1 at EOF. */
static inline __attribute__((always_inline)) ssize_t async_conn_recv(struct conn *c, char *buf,
                                                                     size_t room)
{
	ssize_t n = recv(c->cc.fd, buf, room, 0);
	if (n > 0) {
		c->more = (size_t)n == room || c->read_on;
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

/* TLS: as async_conn_recv, but the bytes are plaintext (tls.h); the
 * socket's ciphertext is decrypted in place. */
ssize_t async_conn_recv_tls(struct conn *c, char *buf, size_t room);

void async_conn_settle(struct conn *c);
void async_conn_destroy(struct conn *c);
void async_conn_more(struct conn *c);
void async_conn_want_read(struct conn *c, bool want);
void async_conn_linger_start(struct conn *c);
void async_wait_push(struct conn *c);
void async_wait_remove(struct conn *c);

/* async_h2.c */
void async_h2_read(struct conn *c);
void async_h2_settle(struct conn *c);
void async_h2_request(struct core_h2 *h, int32_t id, const struct app_request *req);
void async_stream_cancel(struct core_stream *st);
void async_h2_run_waiting(struct conn *c);
void async_h2_wake(struct h2s *s);
void async_h2_flush_cb(evutil_socket_t fd, short what, void *arg);
void async_h2_free_pool(struct async_worker *w);

#endif
