/* driver_h1: the HTTP/1.x protocol driver, one thread's share of the
 * connections on that thread's event loop (ev.h), whatever its back end.
 *
 * Each connection runs ab's state machine: connect, write the request,
 * read the response, keep alive or reconnect. Where a request goes out:
 * write_request() hands ab's request bytes to ev_send() (a keep-alive
 * connection's next request waits until the whole batch of events is
 * handled, then flush_pending() sends them all, as wrk does, so that the
 * server finds several per wake-up). Where its answer is read: dh1_on_event()
 * drains the socket with ev_recv() into got_bytes(), which finds the head
 * (resp.c) and the body's end. The counting rules (good/bad/done, the first
 * good response fixing the document length, which responses are
 * keep-alive, what ends a response) mirror ab's read_connection() and
 * close_connection(), so the deterministic figures match ab's. */
#include "driver_h1_int.h"
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ev_handler h1_handler;

static void write_request(struct h1t *h, struct conn *c, uint64_t now);

static inline void save_request(struct thr *t, struct conn *c, uint64_t now, int ka, int ok)
{
	uint64_t start = c->start;
	if (t->cf->rate > 0) {
		lge_save_rate(t, c->intended, c->start, c->busy, now, ok);
		start = c->intended; /* the corrected time */
	}
	lge_save(t, start, c->connect, c->endwrite, c->beginread, now, ka, ok);
}

void dh1_drop(struct h1t *h, struct conn *c)
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
		dh1_start_connect(h, c);
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
		dh1_drop(h, c);
	c->state = ST_UNCONN;
	dh1_start_connect(h, c);
}

/* ST_BUSY's timer: the listener may have room now. */
static void busy_due(struct ev_timer *tm, uint64_t now)
{
	(void)now;
	struct conn *c = (struct conn *)((char *)tm - offsetof(struct conn, retry));
	c->h->nretry--;
	if (c->state == ST_BUSY)
		dh1_start_connect(c->h, c);
}

static void start_others(struct h1t *h)
{
	h->initialized = 1;
	for (int i = 1; i < h->nconns; i++)
		dh1_start_connect(h, &h->conns[i]);
	if (h->t->id == 0)
		lge_wake_all(h->t->g);
}

void dh1_start_connect(struct h1t *h, struct conn *c)
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
		int rc = lge_open(t, &c->s, h->pipe > 1 ? &dh1_pl_handler : &h1_handler,
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
			dh1_pl_start(h, c, now);
		} else if (rc == LGE_CONNECTED) {
			c->state = ST_WRITE;
			write_request(h, c, now);
		} else if (rc == LGE_CONNECTING) {
			c->state = ST_CONNECTING;
		}
		return;
	}
}

/* The request did not go out whole: its send failed (err, an errno: the
 * server reset the connection, EPIPE or ECONNRESET, at once or part way)
 * or took longer than -s (err 0). As in ab, it is counted here, once:
 * close_connection() makes it a complete request, failed by its length
 * (none read), and the connection starts again. So its place in -n stays
 * spent (t->started): given back as well, as it was, one request more than
 * -n went out (the run's last, never counted: the server saw n + 1 for n
 * complete). ab does that too, since it counts a request as started only
 * once it is written and counts this one complete all the same. */
static void send_ended(struct h1t *h, struct conn *c, int err)
{
	if (err) {
		h->t->r.epipe++;
		printf("Send request failed!\n");
	} else {
		printf("Send request timed out!\n");
	}
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
		send_ended(h, c, (int)-n);
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
	if (err || now > c->connect + h->cf->timeout_us) {
		send_ended(h, c, err);
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

void dh1_got_head(struct h1t *h, struct conn *c, const char *head, size_t hlen)
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
 * after 10 such failures. As in ab the request is not complete; its place
 * in -n is spent (t->spent), so the run still ends with another connection
 * kept alive and idle (it waited for -n complete requests for ever). */
void dh1_head_too_big(struct h1t *h, struct conn *c)
{
	struct thr *t = h->t;
	dh1_drop(h, c);
	c->state = ST_UNCONN;
	t->spent++;
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
	dh1_start_connect(h, c);
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
				dh1_got_head(h, c, p, (size_t)e);
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
				dh1_head_too_big(h, c);
			return 0;
		}
		dh1_got_head(h, c, c->cbuff, (size_t)e);
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
		dh1_drop(h, c);
		c->state = ST_UNCONN;
		dh1_start_connect(h, c);
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

/* ab's poll loop counts a poll event's error flag as an exception, after
 * reading what came with it (with -r it goes on; not once the run is
 * stopped). */
static void error_flag(struct h1t *h)
{
	if (!atomic_load_explicit(&h->t->g->stop, memory_order_relaxed)) {
		h->t->r.bad++;
		h->t->r.err_except++;
	}
}

void dh1_on_event(struct ev_sock *s, unsigned ev)
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
		if (ev & EV_ERR)
			error_flag(h); /* even after the read already failed */
		return;
	case ST_WRITE:
		/* Not sending yet: a keep-alive answer was just read and the next
		 * request waits for the batch's end (flush_pending()). An error
		 * now came with that answer: epoll reports it beside it (counted
		 * above, as ab does: Exceptions 1, then the send fails: Length 1,
		 * Write errors 1), io_uring as a completion of its own after it.
		 * Counted the same here, and taken: held, it was read by the
		 * ev_recheck() of a connection gone idle at -n, a receive error
		 * that ended the run. (While a send is in flight the error is the
		 * send's, found by on_sent(), as epoll's dispatch() has it.) */
		if ((ev & EV_ERR) && !c->sending) {
			const char *p;
			(void)ev_recv(&c->s, &p);
			error_flag(h);
		}
		return;
	case ST_RATEWAIT:
		/* --rate: a kept connection waiting for its next request's time
		 * has nothing to read; the server closed it (its keep-alive
		 * timeout) or broke it: open another now, quietly, no request
		 * was lost */
		if (c->s.fd >= 0 && (ev & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))) {
			lge_close(h->t, &c->s);
			dh1_start_connect(h, c);
		}
		return;
	default:
		/* the request is not out yet: what came is read once it is, by
		 * request_sent()'s ev_recheck() */
		return;
	}
}

static const struct ev_handler h1_handler = {dh1_on_event, on_sent};

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
	h->scan.fire = dh1_check_timeouts;
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
	dh1_start_connect(&h, &h.conns[0]);
	ev_timer_start(h.ev, &h.scan, ev_now_update(h.ev) + SCAN_US);
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		if (lge_all_over(t))
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
				dh1_drain_expired(&h);
				break;
			}
		}
		if (t->active == 0 && !h.nratewait && !h.nretry)
			break; /* nothing left that could finish a request */
		uint64_t wait_us = 1000000;
		if (cf->tlimit_us && now < g->stoptime && g->stoptime - now < wait_us)
			wait_us = g->stoptime - now;
		lge_check_begin(t, now, &wait_us);
		int n = ev_run_once(h.ev, wait_us);
		if (n < 0) {
			lge_fatal(t, "", h.ev->what, -n);
			break;
		}
		flush_pending(&h);
		if (h.nplq)
			dh1_pl_flush(&h);
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
