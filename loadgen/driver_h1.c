/* driver_h1: the HTTP/1.x protocol driver, one thread's share of the
 * connections on that thread's event loop (ev.h), whatever its back end.
 *
 * Each connection runs ab's state machine: connect, write the request,
 * read the response, keep alive or reconnect. Where a request goes out:
 * write_request() hands ab's request bytes to ev_send() (a keep-alive
 * connection's next request waits until the whole batch of events is
 * handled, then flush_pending() sends them all, as wrk does, so that the
 * server finds several per wake-up). Where its answer is read: on_event()
 * drains the socket with ev_recv() into got_bytes(), which finds the head
 * (resp.c) and the body's end. The counting rules (good/bad/done, the first
 * good response fixing the document length, which responses are
 * keep-alive, what ends a response) mirror ab's read_connection() and
 * close_connection(), so the deterministic figures match ab's. */
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CBUFFSIZE 8192  /* ab's header buffer: a head must fit in 8191 bytes */
#define SCAN_US 1000000 /* -s timeouts are looked for once a second */

enum cstate {
	ST_UNCONN,
	ST_CONNECTING,
	ST_WRITE,
	ST_READ,
	ST_IDLE,
	ST_RATEWAIT,
	ST_BUSY, /* a Unix listener's queue was full: connect again shortly */
	ST_PIPE, /* --pipeline: requests go out and answers come in at once */
};

/* --pipeline: one request in flight on a connection */
struct pl_req {
	uint64_t start, connect, endwrite;
};

struct h1t;

struct conn {
	struct ev_sock s; /* first: the handlers get the connection from it */
	struct h1t *h;
	int state;
	int keepalive, gotheader, chunked, chunk_done, has_status;
	int sending; /* the request is with ev_send() */
	int status;
	long cl; /* Content-Length seen, -1 if none */
	size_t read, bread, length;
	int cbx;
	char *cbuff; /* allocated only when a head arrives in pieces */
	uint64_t start, connect, endwrite, beginread;
	/* --rate (engine_int.h's schedule): start is when the request really
	 * started, its connect or (on a connection opened before it was due)
	 * its send */
	uint64_t intended;    /* when the request in flight was due */
	uint64_t due;         /* when the next one is: request k of connection j */
	uint64_t k;           /* requests this connection sent on its schedule */
	uint64_t free_at;     /* when its last request ended */
	uint32_t j;           /* the connection's number in the run */
	int opened_for;       /* the connection was opened for a request already due */
	int busy;             /* still busy with the previous request when this one was due */
	struct ev_timer rate; /* fires at due */
	struct resp_chunked ch;
	struct ev_timer retry; /* ST_BUSY: fires when the connect is tried again */
	/* --pipeline: the requests in flight, oldest (the one being answered)
	 * first, in a ring of cf->pipeline */
	struct pl_req *pl;
	int pl_head, pl_n;
	int pl_sending; /* the newest pl_sending of them are with ev_send() */
	int pl_fresh;   /* no request sent on this connection yet: the first carry its connect */
	int queued;     /* in h->plq, for its next requests */
};

struct h1t {
	struct thr *t;
	const struct lg_conf *cf;
	struct ev *ev;
	struct conn *conns;
	struct conn **pending; /* keep-alive connections whose next request waits */
	int npending;
	int nconns, initialized;
	int nratewait;     /* --rate: connections waiting for their start */
	int nretry;        /* connections in ST_BUSY */
	int pipe;          /* --pipeline: requests in flight per connection (1: off) */
	char *pipereq;     /* --pipeline: pipe copies of the request back to back */
	struct pl_req *plmem;
	struct conn **plq; /* --pipeline: connections to refill after the batch of events */
	int nplq;
	struct ev_timer scan;
};

static const struct ev_handler h1_handler, pl_handler;

static void start_connect(struct h1t *h, struct conn *c);
static void write_request(struct h1t *h, struct conn *c, uint64_t now);
static void pl_fill(struct h1t *h, struct conn *c, uint64_t now);

static void reset_conn(struct conn *c)
{
	c->read = c->bread = c->length = 0;
	c->keepalive = c->gotheader = c->chunked = c->chunk_done = 0;
	c->has_status = 0;
	c->cbx = 0;
	c->cl = -1;
	c->beginread = c->endwrite = 0;
}

static inline void save_request(struct thr *t, struct conn *c, uint64_t now, int ka, int ok)
{
	uint64_t start = c->start;
	if (t->cf->rate > 0) {
		lge_save_rate(t, c->intended, c->start, c->busy, now, ok);
		start = c->intended; /* the corrected time */
	}
	lge_save(t, start, c->connect, c->endwrite, c->beginread, now, ka, ok);
}

static inline int check_length(struct thr *t, struct conn *c)
{
	return lge_check_length(t, c->bread, c->gotheader, c->cl, c->has_status, c->status);
}

/* Closes c's socket; a request still going out was not sent after all. */
static void drop(struct h1t *h, struct conn *c)
{
	if (c->sending) {
		h->t->started--;
		c->sending = 0;
	}
	lge_close(h->t, &c->s);
}

/* --rate: c waits for its next request's due time. */
static void rate_wait(struct h1t *h, struct conn *c)
{
	c->state = ST_RATEWAIT;
	if (!ev_timer_armed(&c->rate))
		h->nratewait++;
	ev_timer_start(h->ev, &c->rate, c->due);
}

static void rate_due(struct ev_timer *tm, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)tm - offsetof(struct conn, rate));
	struct h1t *h = c->h;
	h->nratewait--;
	if (c->state != ST_RATEWAIT)
		return;
	if (c->s.fd < 0)
		start_connect(h, c);
	else
		write_request(h, c, now);
}

/* eof: the response ended with the connection (not with an error). */
static void close_connection(struct h1t *h, struct conn *c, int eof)
{
	struct thr *t = h->t;
	if (c->read == 0 && c->keepalive) {
		/* the server legitimately shut an idle keep-alive connection */
		if (t->r.good)
			t->r.good--;
	} else {
		int failed = check_length(t, c);
		if (eof && c->chunked && !c->chunk_done && !failed) {
			t->r.err_truncated++;
			failed = 1;
		}
		uint64_t now = ev_now_update(h->ev);
		t->last = now;
		save_request(t, c, now, 0,
		             eof && !failed && c->gotheader && c->status >= 200 && c->status < 300);
	}
	c->free_at = ev_now(h->ev);
	lge_publish_failed(t);
	if (c->s.fd >= 0)
		drop(h, c);
	c->state = ST_UNCONN;
	start_connect(h, c);
}

/* ST_BUSY's timer: the listener may have room now. */
static void busy_due(struct ev_timer *tm, uint64_t now)
{
	(void)now;
	struct conn *c = (struct conn *)((char *)tm - offsetof(struct conn, retry));
	c->h->nretry--;
	if (c->state == ST_BUSY)
		start_connect(c->h, c);
}

static void start_others(struct h1t *h)
{
	h->initialized = 1;
	for (int i = 1; i < h->nconns; i++)
		start_connect(h, &h->conns[i]);
	if (h->t->id == 0)
		lge_wake_all(h->t->g);
}

static void start_connect(struct h1t *h, struct conn *c)
{
	struct thr *t = h->t;
	for (;;) {
		if (!lge_may_start(t))
			return;
		reset_conn(c);
		uint64_t now = ev_now_update(h->ev);
		if (h->cf->rate > 0) {
			if (c->due >= t->g->sched_end)
				return; /* the schedule is over */
			/* a kept connection is opened at once and its requests
			 * wait for their time on it (as wrk2's do); without -k the
			 * connect is the request's start */
			if (!h->cf->keepalive && c->due > now) {
				rate_wait(h, c);
				return;
			}
			c->opened_for = c->due <= now;
		}
		if (c->state != ST_BUSY)
			c->start = now; /* (a wait for a full queue is connect time) */
		t->last = now;
		int rc = lge_open(t, &c->s, h->pipe > 1 ? &pl_handler : &h1_handler,
		                  EV_READ | EV_WRITE, 0);
		if (rc == LGE_REFUSED) {
			c->state = ST_UNCONN;
			continue;
		}
		if (rc == LGE_BUSY) {
			c->state = ST_BUSY;
			h->nretry++;
			ev_timer_start(h->ev, &c->retry, now + LGE_BUSY_RETRY_US);
		} else if (rc == LGE_CONNECTED && h->pipe > 1) {
			c->state = ST_PIPE;
			c->pl_fresh = 1;
			pl_fill(h, c, now);
		} else if (rc == LGE_CONNECTED) {
			c->state = ST_WRITE;
			write_request(h, c, now);
		} else if (rc == LGE_CONNECTING) {
			c->state = ST_CONNECTING;
		}
		return;
	}
}

static void send_failed(struct h1t *h, struct conn *c)
{
	h->t->started--; /* it did not go out after all */
	h->t->r.epipe++;
	printf("Send request failed!\n");
	close_connection(h, c, 0);
}

/* The request is out (at now): its response is read from here on. */
static inline void request_sent(struct h1t *h, struct conn *c, uint64_t now)
{
	c->endwrite = h->t->last = now;
	if (h->cf->keepalive && (c->s.watch & EV_WRITE))
		ev_watch(&c->s, EV_READ); /* once per connection; not worth it when it closes */
	c->state = ST_READ;
	ev_recheck(&c->s); /* what came while it went out */
}

/* --rate: whether c's next request may go out now; else it waits for its
 * time, or (the schedule is over) c idles. */
static bool rate_start(struct h1t *h, struct conn *c, uint64_t now)
{
	struct thr *t = h->t;
	if (!lge_may_start(t) || !lge_rate_may_send(t, c->due, c->free_at, now)) {
		c->state = ST_IDLE;
		ev_recheck(&c->s);
		return false;
	}
	if (c->due > now) {
		rate_wait(h, c);
		return false;
	}
	/* on a connection opened before it was due, a request starts with
	 * its send */
	if (!c->opened_for)
		c->start = now;
	c->opened_for = 0;
	c->intended = c->due;
	c->busy = c->free_at > c->intended;
	c->due = lge_due(t, c->j, ++c->k);
	lge_rate_started(t, c->start);
	return true;
}

static void write_request(struct h1t *h, struct conn *c, uint64_t now)
{
	struct thr *t = h->t;
	const struct lg_conf *cf = h->cf;
	if (t->started >= t->requests) {
		c->state = ST_IDLE;
		ev_recheck(&c->s); /* read as an idle socket is read */
		return;
	}
	if (cf->rate > 0 && !rate_start(h, c, now))
		return;
	c->connect = now;
	c->state = ST_WRITE;
	/* counted as started now, so that no other connection sends past -n
	 * while this one's send is in flight */
	t->started++;
	ssize_t n = ev_send(&c->s, cf->req, cf->reqlen);
	if (n < 0) {
		send_failed(h, c);
		return;
	}
	t->r.totalposted += n;
	if ((size_t)n == cf->reqlen)
		request_sent(h, c, ev_now_update(h->ev));
	else
		c->sending = 1;
}

static void on_sent(struct ev_sock *s, size_t n, int err, uint64_t now)
{
	struct conn *c = (struct conn *)s;
	struct h1t *h = c->h;
	c->sending = 0;
	h->t->r.totalposted += (int64_t)n;
	if (err) {
		send_failed(h, c);
		return;
	}
	if (now > c->connect + h->cf->timeout_us) {
		h->t->started--;
		printf("Send request timed out!\n");
		close_connection(h, c, 0);
		return;
	}
	request_sent(h, c, now);
}

/* A response finished on a keep-alive connection: count it, then send the
 * next request on the same connection (ab's read_connection() tail). */
static void keepalive_done(struct h1t *h, struct conn *c, uint64_t now)
{
	struct thr *t = h->t;
	t->r.good++;
	int failed = check_length(t, c);
	save_request(t, c, now, 1, !failed && c->status >= 200 && c->status < 300);
	lge_publish_failed(t);
	reset_conn(c);
	c->start = c->connect = t->last = c->free_at = now;
	c->state = ST_WRITE;
	/* Sent after the whole batch of events is read, as wrk does: the
	 * server then finds several requests per wake-up instead of one. */
	h->pending[h->npending++] = c;
}

static void flush_pending(struct h1t *h)
{
	if (!h->npending)
		return;
	uint64_t now = ev_now_update(h->ev);
	for (int i = 0; i < h->npending; i++) {
		struct conn *c = h->pending[i];
		if (c->state == ST_WRITE && c->s.fd >= 0 && !c->sending)
			write_request(h, c, now);
	}
	h->npending = 0;
}

static void got_head(struct h1t *h, struct conn *c, const char *head, size_t hlen)
{
	struct thr *t = h->t;
	const struct lg_conf *cf = h->cf;
	if (!t->r.good)
		resp_server_name(head, hlen, t->r.servername, sizeof t->r.servername);
	struct resp_head rh;
	resp_parse_head(head, hlen, &rh);
	if (rh.code[0] != '2') {
		t->r.err_response++;
		if (cf->verbosity >= 2)
			printf("WARNING: Response code not 2xx (%s)\n", rh.code);
	} else if (cf->verbosity >= 3) {
		printf("LOG: Response code = %s\n", rh.code);
	}
	c->gotheader = 1;
	c->status = rh.status;
	c->has_status = 1;
	c->cl = rh.content_length;
	int nobody = cf->head || rh.status == 204 || rh.status == 304 ||
	             (rh.status >= 100 && rh.status < 200);
	if (cf->keepalive) {
		if (!cf->http11) {
			if (rh.ka_token) {
				c->keepalive = 1;
				c->length = (rh.content_length >= 0 && !cf->head)
				                ? (size_t)rh.content_length
				                : 0;
			}
		} else if (!rh.conn_close && (rh.http11 || rh.ka_token)) {
			if (nobody) {
				c->keepalive = 1;
				c->length = 0;
			} else if (rh.chunked) {
				c->keepalive = 1;
				c->chunked = 1;
				memset(&c->ch, 0, sizeof c->ch);
			} else if (rh.content_length >= 0) {
				c->keepalive = 1;
				c->length = (size_t)rh.content_length;
			}
		}
	}
	if (!h->initialized)
		start_others(h);
}

/* A head over 8 KiB or never ending: ab drops the connection, and gives up
 * after 10 such failures. */
static void head_too_big(struct h1t *h, struct conn *c)
{
	struct thr *t = h->t;
	drop(h, c);
	c->state = ST_UNCONN;
	t->r.err_response++;
	if (t->r.bad++ > 10) {
		pthread_mutex_lock(&t->g->mu);
		if (!t->g->fatal) {
			t->g->fatal = 1;
			t->g->fatal_code = 1;
			snprintf(t->g->fatal_msg, sizeof t->g->fatal_msg,
			         "\nTest aborted after 10 failures\n\n");
		}
		pthread_mutex_unlock(&t->g->mu);
		lge_stop_shared(t->g);
		lge_wake_all(t->g);
		return;
	}
	start_connect(h, c);
}

/* Feeds r bytes just read; 1 when a keep-alive response finished (its
 * connection is queued for its next request), 0 otherwise. */
static int got_bytes(struct h1t *h, struct conn *c, const char *p, size_t r, uint64_t now)
{
	struct thr *t = h->t;
	const struct lg_conf *cf = h->cf;
	t->r.totalread += (int64_t)r;
	if (c->read == 0)
		c->beginread = now;
	c->read += r;
	const char *body = p;
	size_t blen = 0;
	if (!c->gotheader) {
		int tl;
		if (c->cbx == 0 && cf->verbosity < 2) {
			/* common case: the whole head is in this read, parse in place */
			size_t lim = r < CBUFFSIZE - 1 ? r : CBUFFSIZE - 1;
			long e = resp_head_end(p, lim, &tl);
			if (e >= 0) {
				got_head(h, c, p, (size_t)e);
				c->bread = r - (size_t)e - (size_t)tl;
				body = p + e + tl;
				blen = c->bread;
				t->r.totalbread += (int64_t)c->bread;
				goto body;
			}
		}
		if (!c->cbuff && !(c->cbuff = malloc(CBUFFSIZE))) {
			lge_fatal(t, "", "malloc", ENOMEM);
			return 0;
		}
		size_t space = CBUFFSIZE - 1 - (size_t)c->cbx;
		size_t tocopy = space < r ? space : r;
		memcpy(c->cbuff + c->cbx, p, tocopy);
		c->cbx += (int)tocopy;
		space -= tocopy;
		c->cbuff[c->cbx] = 0;
		if (cf->verbosity >= 2)
			printf("LOG: header received:\n%s\n", c->cbuff);
		long e = resp_head_end(c->cbuff, (size_t)c->cbx, &tl);
		if (e < 0) {
			if (!space)
				head_too_big(h, c);
			return 0;
		}
		got_head(h, c, c->cbuff, (size_t)e);
		c->bread += (size_t)c->cbx - (size_t)e - (size_t)tl + r - tocopy;
		t->r.totalbread += (int64_t)c->bread;
		/* the body bytes: what followed the head in cbuff, then the rest of p */
		if (c->chunked) {
			size_t used;
			size_t inbuf = (size_t)c->cbx - (size_t)e - (size_t)tl;
			int k = resp_chunked_feed(&c->ch, c->cbuff + e + tl, inbuf, &used);
			if (k == 0 && r > tocopy)
				k = resp_chunked_feed(&c->ch, p + tocopy, r - tocopy, &used);
			if (k != 0)
				c->chunk_done = 1;
		}
		goto done_check;
	} else {
		c->bread += r;
		t->r.totalbread += (int64_t)r;
		blen = r;
	}
body:
	if (c->chunked && blen) {
		size_t used;
		if (resp_chunked_feed(&c->ch, body, blen, &used) != 0)
			c->chunk_done = 1;
	}
done_check:
	if (c->keepalive && (c->chunked ? c->chunk_done : c->bread >= c->length)) {
		keepalive_done(h, c, now);
		return 1;
	}
	return 0;
}

static void recv_failed(struct h1t *h, struct conn *c, int e)
{
	struct thr *t = h->t;
	t->r.err_recv++;
	if (!h->cf->recverrok) {
		lge_fatal(t, "", "apr_socket_recv", e);
		return;
	}
	t->r.bad++;
	close_connection(h, c, 0);
	if (h->cf->verbosity >= 1)
		fprintf(stderr, "%s: %s (%d)\n", "apr_socket_recv", strerror(e), e);
}

/* Reads until the socket is drained, the response ends or the
 * connection does. */
static void read_connection(struct h1t *h, struct conn *c)
{
	const char *p;
	ssize_t r;
	while ((r = ev_recv(&c->s, &p)) > 0) {
		if (got_bytes(h, c, p, (size_t)r, ev_now(h->ev)) || c->s.fd < 0 ||
		    c->state != ST_READ)
			return;
	}
	if (r == 0) {
		h->t->r.good++;
		close_connection(h, c, 1);
	} else if (r != -EAGAIN) {
		recv_failed(h, c, (int)-r);
	}
}

static void connect_failed(struct h1t *h, struct conn *c, int e)
{
	struct thr *t = h->t;
	if (t->r.good == 0 && t->addr + 1 < h->cf->naddrs) {
		t->addr++;
		drop(h, c);
		c->state = ST_UNCONN;
		start_connect(h, c);
		return;
	}
	/* ab's poll loop reads a refused socket first (the recv error, which
	 * with -r closes it and starts the next connect on the same slot), then
	 * counts the poll's error flag as an exception and reads the slot
	 * again: that is the new connect, whose refusal on loopback is already
	 * there, so it fails too. Per poll event ab counts two receive errors
	 * and one exception (ab -r -n 10 against a closed port: Receive 10,
	 * Exceptions 5). */
	recv_failed(h, c, e);
	if (h->cf->recverrok) {
		t->r.bad++;
		t->r.err_except++;
		int e2;
		if (c->state == ST_CONNECTING && (e2 = ev_sock_error(&c->s)) != 0)
			recv_failed(h, c, e2);
	}
}

static void on_event(struct ev_sock *s, unsigned ev)
{
	struct conn *c = (struct conn *)s;
	struct h1t *h = c->h;
	switch (c->state) {
	case ST_CONNECTING:
		if (ev & (EV_ERR | EV_HUP)) {
			int e = ev_sock_error(&c->s);
			connect_failed(h, c, e ? e : ECONNREFUSED);
			return;
		}
		if (ev & EV_WRITE) {
			c->state = ST_WRITE;
			write_request(h, c, ev_now_update(h->ev));
		}
		return;
	case ST_READ:
	case ST_IDLE:
		if (ev & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))
			read_connection(h, c);
		if ((ev & EV_ERR) && !atomic_load_explicit(&h->t->g->stop, memory_order_relaxed)) {
			/* ab's poll loop counts the error flag as an exception even
			 * after the read already failed (with -r it goes on) */
			h->t->r.bad++;
			h->t->r.err_except++;
		}
		return;
	case ST_RATEWAIT:
		/* --rate: a kept connection waiting for its next request's time
		 * has nothing to read; the server closed it (its keep-alive
		 * timeout) or broke it: open another now, quietly, no request
		 * was lost */
		if (c->s.fd >= 0 && (ev & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))) {
			lge_close(h->t, &c->s);
			start_connect(h, c);
		}
		return;
	default:
		/* the request is not out yet: what came is read once it is, by
		 * request_sent()'s ev_recheck() */
		return;
	}
}

static const struct ev_handler h1_handler = {on_event, on_sent};

/* --pipeline: up to h->pipe requests in flight on each keep-alive
 * connection, their answers read in order from one stream of bytes. The
 * requests go out in batches: a connection whose answers came is queued
 * (keepalive_done()'s list) and refilled by pl_fill() after the batch of
 * events, with the copies of the request it lacks in one ev_send(). Each
 * request's time runs from when it was handed over to the end of its own
 * answer (so it includes waiting behind the answers before it). An answer
 * is cut from the stream exactly (Content-Length, chunked framing, or none
 * for HEAD, 204 and 304); ab's counting rules are kept: good, the document
 * length, Non-2xx, Keep-Alive requests. When the server ends the
 * connection, requests it did not answer at all are given back to the
 * budget and go out again on the next connection (as ab does when a server
 * shuts an idle keep-alive connection); the one being answered counts as a
 * failure as it would without pipelining. */

/* Requests not answered are given back; the connection is closed. */
static void pl_drop(struct h1t *h, struct conn *c, int keep)
{
	h->t->started -= c->pl_n - keep;
	c->pl_n = c->pl_sending = 0;
	c->sending = 0;
	lge_close(h->t, &c->s);
}

static void pl_reconnect(struct h1t *h, struct conn *c)
{
	lge_publish_failed(h->t);
	c->state = ST_UNCONN;
	start_connect(h, c);
}

/* How an answer ended: framed on a kept connection, with the stream, or cut
 * by an error (counted as a receive error alone). */
enum { PL_KEPT, PL_EOF, PL_ERR };

/* The answer at the head ended at now. */
static void pl_done(struct h1t *h, struct conn *c, uint64_t now, int how)
{
	struct thr *t = h->t;
	struct pl_req *q = &c->pl[c->pl_head];
	uint64_t endwrite = q->endwrite ? q->endwrite : c->beginread;
	int ka = how == PL_KEPT;
	int failed = how == PL_ERR || check_length(t, c);
	if (how == PL_EOF && c->chunked && !c->chunk_done && !failed) {
		t->r.err_truncated++;
		failed = 1;
	}
	t->last = now;
	lge_save(t, q->start, q->connect, endwrite, c->beginread, now, ka,
	         !failed && c->gotheader && c->status >= 200 && c->status < 300);
	lge_publish_failed(t);
	c->pl_head = c->pl_head + 1 == h->pipe ? 0 : c->pl_head + 1;
	c->pl_n--;
	if (c->pl_sending > c->pl_n)
		c->pl_sending = c->pl_n;
	reset_conn(c);
	if (!c->queued) {
		c->queued = 1;
		h->plq[h->nplq++] = c;
	}
}

/* Feeds bytes of the answer at the head; the bytes it took (what is left
 * begins the next answer). */
static size_t pl_feed(struct h1t *h, struct conn *c, const char *p, size_t len, uint64_t now)
{
	struct thr *t = h->t;
	size_t took = 0;
	if (c->read == 0)
		c->beginread = now;
	if (!c->gotheader) {
		const char *head = p;
		int tl;
		long e = -1;
		if (c->cbx == 0)
			e = resp_head_end(p, len < CBUFFSIZE - 1 ? len : CBUFFSIZE - 1, &tl);
		if (e >= 0) {
			took = (size_t)e + (size_t)tl;
		} else {
			/* the head comes in pieces: gathered in cbuff */
			if (!c->cbuff && !(c->cbuff = malloc(CBUFFSIZE))) {
				lge_fatal(t, "", "malloc", ENOMEM);
				return len;
			}
			size_t space = CBUFFSIZE - 1 - (size_t)c->cbx;
			size_t tocopy = space < len ? space : len;
			memcpy(c->cbuff + c->cbx, p, tocopy);
			c->cbx += (int)tocopy;
			c->cbuff[c->cbx] = 0;
			e = resp_head_end(c->cbuff, (size_t)c->cbx, &tl);
			if (e < 0) {
				c->read += tocopy;
				if (tocopy == space) {
					/* the one being answered fails as without
					 * pipelining; the others are given back */
					t->started -= c->pl_n - 1;
					c->pl_n = c->pl_sending = c->sending = 0;
					head_too_big(h, c);
				}
				return len;
			}
			head = c->cbuff;
			took = (size_t)e + (size_t)tl - ((size_t)c->cbx - tocopy);
		}
		c->read += took;
		got_head(h, c, head, (size_t)e);
	}
	size_t avail = len - took, body = avail;
	int done = 0;
	if (c->keepalive && c->chunked) {
		done = resp_chunked_feed(&c->ch, p + took, avail, &body) != 0;
		c->chunk_done = done;
	} else if (c->keepalive) {
		size_t need = c->length - c->bread;
		if (body >= need) {
			body = need;
			done = 1;
		}
	}
	c->bread += body;
	c->read += body;
	t->r.totalbread += (int64_t)body;
	took += body;
	if (done) {
		t->r.good++;
		pl_done(h, c, now, PL_KEPT);
	}
	return took;
}

/* The connection ended: with the answer being read when it ran to the end
 * of the stream (eof), else with an error (e). */
static void pl_end(struct h1t *h, struct conn *c, int eof, int e)
{
	struct thr *t = h->t;
	if (!eof && !h->cf->recverrok) {
		t->r.err_recv++;
		lge_fatal(t, "", "apr_socket_recv", e);
		return;
	}
	int answered = c->pl_n > 0 && c->read > 0;
	if (!eof && c->pl_n > 0) {
		t->r.err_recv++;
		t->r.bad++;
		if (h->cf->verbosity >= 1)
			fprintf(stderr, "%s: %s (%d)\n", "apr_socket_recv", strerror(e), e);
	} else if (answered) {
		t->r.good++;
	}
	if (answered || (!eof && c->pl_n > 0))
		pl_done(h, c, ev_now_update(h->ev), eof ? PL_EOF : PL_ERR);
	pl_drop(h, c, 0);
	pl_reconnect(h, c);
}

static void pl_read(struct h1t *h, struct conn *c)
{
	struct thr *t = h->t;
	const char *p;
	ssize_t r;
	uint32_t gen = c->s.gen;
	while ((r = ev_recv(&c->s, &p)) > 0) {
		uint64_t now = ev_now(h->ev);
		t->r.totalread += r;
		for (size_t off = 0; off < (size_t)r && c->pl_n > 0;) {
			off += pl_feed(h, c, p + off, (size_t)r - off, now);
			if (c->s.gen != gen)
				return; /* closed: a head too big, or the run's end */
		}
	}
	if (r == 0)
		pl_end(h, c, 1, 0);
	else if (r != -EAGAIN)
		pl_end(h, c, 0, (int)-r);
}

/* Hands the requests c lacks to ev_send() in one piece. */
static void pl_fill(struct h1t *h, struct conn *c, uint64_t now)
{
	struct thr *t = h->t;
	if (c->sending || c->s.fd < 0)
		return;
	long k = h->pipe - c->pl_n;
	if (k > t->requests - t->started)
		k = t->requests - t->started;
	if (k <= 0 || atomic_load_explicit(&t->g->stop, memory_order_relaxed))
		return;
	/* the first requests on a connection carry its connect time */
	struct pl_req q = {c->pl_fresh ? c->start : now, now, 0};
	c->pl_fresh = 0;
	for (long i = 0; i < k; i++)
		c->pl[(c->pl_head + c->pl_n + (int)i) % h->pipe] = q;
	c->pl_n += (int)k;
	c->pl_sending = (int)k;
	t->started += k;
	size_t len = (size_t)k * h->cf->reqlen;
	ssize_t n = ev_send(&c->s, h->pipereq, len);
	if (n < 0) {
		t->r.epipe++;
		printf("Send request failed!\n");
		pl_drop(h, c, 0);
		pl_reconnect(h, c);
		return;
	}
	t->r.totalposted += n;
	if ((size_t)n < len) {
		c->sending = 1;
		return;
	}
	now = ev_now_update(h->ev);
	for (int i = 0; i < c->pl_sending; i++)
		c->pl[(c->pl_head + c->pl_n - 1 - i) % h->pipe].endwrite = now;
	c->pl_sending = 0;
	t->last = now;
}

static void pl_on_sent(struct ev_sock *s, size_t n, int err, uint64_t now)
{
	struct conn *c = (struct conn *)s;
	struct h1t *h = c->h;
	c->sending = 0;
	h->t->r.totalposted += (int64_t)n;
	if (err) {
		h->t->r.epipe++;
		printf("Send request failed!\n");
		pl_drop(h, c, 0);
		pl_reconnect(h, c);
		return;
	}
	for (int i = 0; i < c->pl_sending; i++)
		c->pl[(c->pl_head + c->pl_n - 1 - i) % h->pipe].endwrite = now;
	c->pl_sending = 0;
	h->t->last = now;
	if (!c->queued) {
		c->queued = 1;
		h->plq[h->nplq++] = c;
	}
}

static void pl_on_event(struct ev_sock *s, unsigned ev)
{
	struct conn *c = (struct conn *)s;
	struct h1t *h = c->h;
	if (c->state == ST_PIPE) {
		if (ev & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))
			pl_read(h, c);
		return;
	}
	if (c->state == ST_CONNECTING && !(ev & (EV_ERR | EV_HUP)) && (ev & EV_WRITE)) {
		c->state = ST_PIPE;
		c->pl_fresh = 1;
		ev_watch(&c->s, EV_READ);
		pl_fill(h, c, ev_now_update(h->ev));
		return;
	}
	on_event(s, ev); /* a connect that failed */
}

static const struct ev_handler pl_handler = {pl_on_event, pl_on_sent};

/* After a batch of events: the connections whose answers came get the
 * requests they lack. */
static void pl_flush(struct h1t *h)
{
	uint64_t now = ev_now_update(h->ev);
	for (int i = 0; i < h->nplq; i++) {
		struct conn *c = h->plq[i];
		c->queued = 0;
		if (c->state == ST_PIPE)
			pl_fill(h, c, now);
	}
	h->nplq = 0;
}

/* -s: a request (connect, send or wait) older than the timeout fails. */
static void check_timeouts(struct ev_timer *tm, uint64_t now)
{
	struct h1t *h = (struct h1t *)((char *)tm - offsetof(struct h1t, scan));
	ev_timer_start(h->ev, tm, now + SCAN_US);
	for (int i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];
		if (c->state == ST_BUSY && now > c->start + h->cf->timeout_us) {
			/* still no room: a timeout, and the wait starts again */
			h->t->r.err_timeout++;
			lge_publish_failed(h->t);
			c->start = now;
			continue;
		}
		if (c->state == ST_PIPE && c->pl_n > 0) {
			struct pl_req *q = &c->pl[c->pl_head];
			if (now <= (q->endwrite ? q->endwrite : q->start) + h->cf->timeout_us)
				continue;
			h->t->r.err_timeout++;
			pl_drop(h, c, 1); /* the one that timed out is spent, as without pipelining */
			pl_reconnect(h, c);
			continue;
		}
		if (c->state != ST_CONNECTING && c->state != ST_WRITE && c->state != ST_READ)
			continue;
		uint64_t since = c->state == ST_READ && c->endwrite ? c->endwrite : c->start;
		if (now > since + h->cf->timeout_us) {
			h->t->r.err_timeout++;
			lge_publish_failed(h->t);
			c->free_at = now;
			drop(h, c);
			c->state = ST_UNCONN;
			start_connect(h, c);
		}
	}
}

static int h1_setup(struct h1t *h, struct thr *t)
{
	h->t = t;
	h->cf = t->cf;
	h->ev = t->ev;
	h->nconns = t->nconns;
	h->conns = calloc((size_t)h->nconns, sizeof *h->conns);
	/* a connection can be queued twice in one flush, when bytes that came
	 * before its request complete a response */
	h->pending = calloc((size_t)h->nconns * 2, sizeof *h->pending);
	if (!h->conns || !h->pending)
		return -1;
	h->pipe = h->cf->pipeline > 1 ? h->cf->pipeline : 1;
	if (h->pipe > 1) {
		/* the requests of one batch go out in one send: pipe copies */
		size_t len = h->cf->reqlen;
		h->pipereq = malloc((size_t)h->pipe * len);
		h->plmem = calloc((size_t)h->nconns * (size_t)h->pipe, sizeof *h->plmem);
		h->plq = calloc((size_t)h->nconns, sizeof *h->plq);
		if (!h->pipereq || !h->plmem || !h->plq)
			return -1;
		for (int i = 0; i < h->pipe; i++)
			memcpy(h->pipereq + (size_t)i * len, h->cf->req, len);
		for (int k = 0; k < h->nconns; k++)
			h->conns[k].pl = h->plmem + (size_t)k * (size_t)h->pipe;
	}
	for (int k = 0; k < h->nconns; k++) {
		struct conn *c = &h->conns[k];
		c->s.fd = -1;
		c->h = h;
		c->rate.fire = rate_due;
		c->retry.fire = busy_due;
		if (h->cf->rate > 0) {
			c->j = lge_conn_index(t, k);
			c->due = lge_due(t, c->j, 0);
		}
	}
	h->scan.fire = check_timeouts;
	return 0;
}

/* --rate, after -t: whether a request is still on its way, or due within
 * the schedule and about to go (the drain waits for it). */
static bool in_flight(const struct h1t *h)
{
	for (int i = 0; i < h->nconns; i++) {
		const struct conn *c = &h->conns[i];
		if (c->state == ST_CONNECTING || c->state == ST_WRITE || c->state == ST_READ ||
		    (c->state == ST_RATEWAIT && c->due < h->t->g->sched_end))
			return true;
	}
	return false;
}

/* --rate: the drain lasted -s; what is still on its way was sent before the
 * schedule's end, so it is older than -s: a timeout, as the -s scan (once
 * a second) would have found it. */
static void drain_expired(struct h1t *h)
{
	for (int i = 0; i < h->nconns; i++) {
		const struct conn *c = &h->conns[i];
		if (c->state == ST_WRITE || c->state == ST_READ ||
		    (c->state == ST_CONNECTING && (!h->cf->keepalive || c->opened_for)))
			h->t->r.err_timeout++;
	}
	lge_publish_failed(h->t);
}

void lge_h1_run(struct thr *t)
{
	const struct lg_conf *cf = t->cf;
	struct shared *g = t->g;
	struct h1t h = {0};
	if (h1_setup(&h, t)) {
		lge_fatal(t, "", "malloc", ENOMEM);
		goto out;
	}
	if (cf->rate > 0) {
		/* the schedule is the run's: every connection follows it from
		 * the start, none waits for a first answer */
		start_others(&h);
	} else if (t->id != 0) {
		/* the others start once the first head arrived, as ab's
		 * connections after its first */
		pthread_mutex_lock(&g->mu);
		while (!g->go && !atomic_load(&g->stop))
			pthread_cond_wait(&g->cv, &g->mu);
		pthread_mutex_unlock(&g->mu);
		start_others(&h);
	}
	start_connect(&h, &h.conns[0]);
	ev_timer_start(h.ev, &h.scan, ev_now_update(h.ev) + SCAN_US);
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		if (t->r.done >= t->requests)
			break;
		if (cf->tlimit_us && t->last >= g->stoptime && cf->rate <= 0)
			break;
		uint64_t now = ev_now_update(h.ev);
		if (cf->tlimit_us && now >= g->stoptime) {
			/* --rate: the schedule is over; the answers to what it
			 * sent still count (at most -s more), else a run would
			 * leave out its slowest requests */
			if (cf->rate <= 0 || !in_flight(&h))
				break;
			if (now >= g->stoptime + cf->timeout_us) {
				drain_expired(&h);
				break;
			}
		}
		if (t->active == 0 && !h.nratewait && !h.nretry)
			break; /* nothing left that could finish a request */
		uint64_t wait_us = 1000000;
		if (cf->tlimit_us && now < g->stoptime && g->stoptime - now < wait_us)
			wait_us = g->stoptime - now;
		int n = ev_run_once(h.ev, wait_us);
		if (n < 0) {
			lge_fatal(t, "", h.ev->what, -n);
			break;
		}
		flush_pending(&h);
		if (h.nplq)
			pl_flush(&h);
	}
out:
	ev_timer_stop(h.ev, &h.scan);
	for (int i = 0; h.conns && i < h.nconns; i++) {
		ev_timer_stop(h.ev, &h.conns[i].rate);
		ev_timer_stop(h.ev, &h.conns[i].retry);
		if (h.conns[i].s.fd >= 0)
			ev_close(&h.conns[i].s);
		free(h.conns[i].cbuff);
	}
	free(h.conns);
	free(h.pending);
	free(h.pipereq);
	free(h.plmem);
	free(h.plq);
}
