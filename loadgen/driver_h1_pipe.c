/* driver_h1_pipe: driver_h1.c's --pipeline handler (dh1_pl_handler), split out
 * of driver_h1.c to keep each file a readable size; the state it shares
 * with driver_h1.c is in driver_h1_int.h. */
#include "driver_h1_int.h"
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --pipeline: up to h->pipe requests in flight on each keep-alive
 * connection, their answers read in order from one stream of bytes. The
 * requests go out in batches: a connection whose answers came is queued
 * (keepalive_done()'s list) and refilled by dh1_pl_fill() after the batch of
 * events, with the copies of the request it lacks in one ev_send(). Each
 * request's time runs from when it was handed over to the end of its own
 * answer (so it includes waiting behind the answers before it). An answer
 * is cut from the stream exactly (Content-Length, chunked framing, or none
 * for HEAD, 204 and 304); ab's counting rules are kept: good, the document
 * length, Non-2xx, Keep-Alive requests. When the server ends the
 * connection, requests it did not answer at all are given back to the
 * budget and go out again on the next connection (as ab does when a server
 * shuts an idle keep-alive connection); the one being answered counts as a
 * failure as it would without pipelining. A send that fails (the server
 * ended the connection) does not end it by itself: the read side does,
 * with what the server sent before. */

/* Requests not answered are given back; the connection is closed. */
void dh1_pl_drop(struct h1t *h, struct conn *c, int keep)
{
	h->t->started -= c->pl_n - keep;
	c->pl_n = c->pl_sending = 0;
	c->sending = 0;
	lge_close(h->t, &c->s);
}

void dh1_pl_reconnect(struct h1t *h, struct conn *c)
{
	lge_publish_failed(h->t);
	c->state = ST_UNCONN;
	dh1_start_connect(h, c);
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
					dh1_head_too_big(h, c);
				}
				return len;
			}
			head = c->cbuff;
			took = (size_t)e + (size_t)tl - ((size_t)c->cbx - tocopy);
		}
		c->read += took;
		dh1_got_head(h, c, head, (size_t)e);
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
	/* An error with no request on the connection is an end of the stream:
	 * the server reset it after the last answer it owed, and nothing
	 * failed. As a receive error it ended the run (without -r): on io_uring
	 * always (the error is a completion of its own after the answer), on
	 * epoll when the reset came with the answer's edge. Nor is it ab's
	 * exception, as it is without --pipeline: epoll reads dry an edge that
	 * came before the reset and never sees it, so that count would depend
	 * on the engine and the timing. */
	if (!eof && c->pl_n == 0)
		eof = 1;
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
	dh1_pl_drop(h, c, 0);
	dh1_pl_reconnect(h, c);
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

/* A send failed: the server ended the connection (a reset; EPIPE once it
 * had shut its side). No more requests go out on it, but it is not closed
 * here: what the server sent before it ended may still be unread, and the
 * end itself (end of stream or error) comes to the read side, where
 * pl_end() counts by it: the answer being read counts once, the requests
 * not answered are given back. Closing here instead gave back the one
 * being read too (a Connection: close answer is read until the end of the
 * stream), whose body bytes were already in HTML transferred: it went out
 * again, its body was counted twice, the server answered it twice. A
 * connection that a failed send did not end (rare: ENOBUFS, a TLS record
 * that could not be written) is ended by the -s scan, its oldest request
 * a timeout. */
static void pl_send_failed(struct conn *c)
{
	c->h->t->r.epipe++;
	printf("Send request failed!\n");
	c->pl_sendfail = 1;
	c->sending = c->pl_sending = 0;
}

/* Hands the requests c lacks to ev_send() in one piece. */
void dh1_pl_fill(struct h1t *h, struct conn *c, uint64_t now)
{
	struct thr *t = h->t;
	if (c->sending || c->pl_sendfail || c->s.fd < 0)
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
		pl_send_failed(c);
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

/* c's connection is up: its first requests go out. */
void dh1_pl_start(struct h1t *h, struct conn *c, uint64_t now)
{
	c->state = ST_PIPE;
	c->pl_fresh = 1;
	c->pl_sendfail = 0;
	dh1_pl_fill(h, c, now);
}

static void pl_on_sent(struct ev_sock *s, size_t n, int err, uint64_t now)
{
	struct conn *c = (struct conn *)s;
	struct h1t *h = c->h;
	c->sending = 0;
	h->t->r.totalposted += (int64_t)n;
	if (err) {
		pl_send_failed(c);
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
		ev_watch(&c->s, EV_READ);
		dh1_pl_start(h, c, ev_now_update(h->ev));
		return;
	}
	dh1_on_event(s, ev); /* a connect that failed */
}

const struct ev_handler dh1_pl_handler = {pl_on_event, pl_on_sent};

/* After a batch of events: the connections whose answers came get the
 * requests they lack. */
void dh1_pl_flush(struct h1t *h)
{
	uint64_t now = ev_now_update(h->ev);
	for (int i = 0; i < h->nplq; i++) {
		struct conn *c = h->plq[i];
		c->queued = 0;
		if (c->state == ST_PIPE)
			dh1_pl_fill(h, c, now);
	}
	h->nplq = 0;
}
