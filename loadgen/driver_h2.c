/* driver_h2: the HTTP/2 protocol driver (--h2, cleartext with prior
 * knowledge, as h2load does for http:// URLs), one thread's share of the
 * load on that thread's event loop (ev.h). Each of the thread's -c
 * connections keeps one nghttp2 client session for the connection's life
 * with up to --streams requests in flight; a stream is counted like one of
 * ab's keep-alive requests (the same histograms, document-length and status
 * rules) and a stream that ends without a whole response (reset, refused by
 * GOAWAY, cut by the connection's end) fails as "reset".
 *
 * Where a request goes out: h2_pump() submits requests from one prebuilt
 * nghttp2_nv array (names and values never copied), serialises everything a
 * turn of the loop produced with nghttp2_session_mem_send() into the
 * connection's buffer and hands it to ev_send() at once. Where its answer
 * is read: on_event() drains the socket with ev_recv() into
 * nghttp2_session_mem_recv(), whose callbacks fill the stream's slot;
 * on_stream_close() counts it. Stream slots are preallocated per connection
 * and nghttp2's own small blocks come from a per-thread pool: nothing is
 * allocated per request by loadgen itself. */
#include "driver_h2_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "pool.h"

#define OUTBUFSIZE 65536          /* gather this much before one send */
#define H2_WINDOW ((1 << 30) - 1) /* h2load's default -w 30 / -W 30 */
#define SCAN_US 1000000           /* -s timeouts are looked for once a second */

/* The state (struct h2s/h2c/h2t) is in driver_h2_int.h, the nghttp2
 * callbacks in driver_h2_cb.c. */

static void h2_connect(struct h2t *ht, struct h2c *c);

static void mark_dirty(struct h2t *ht, struct h2c *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		ht->dirty[ht->ndirty++] = c;
	}
}

/* A stream is over: count it as ab counts a keep-alive request, or as a
 * reset when no whole response came. */
void finish_stream(struct h2t *ht, struct h2c *c, struct h2s *st, int ok_close, int recv_error)
{
	struct thr *t = ht->t;
	uint64_t now = ht->now;
	int rate = ht->cf->rate > 0;
	if (!st->timedout) {
		t->last = now;
		uint64_t start = rate ? st->intended : st->start;
		if (st->ended && ok_close) {
			t->r.good++;
			int s2xx = st->status >= 200 && st->status < 300;
			if (!s2xx) {
				t->r.err_response++;
				if (ht->cf->verbosity >= 2)
					printf("WARNING: Response code not 2xx (%d)\n", st->status);
			}
			int failed =
			    lge_check_length(t, st->bread, 1, st->cl, st->status > 0, st->status);
			if (rate)
				lge_save_rate(t, st->intended, st->start, st->busy, now,
				              !failed && s2xx);
			lge_save(t, start, st->connect, st->endwrite, st->beginread, now, 1,
			         !failed && s2xx);
		} else {
			if (recv_error) {
				t->r.err_recv++;
				t->r.bad++;
			} else {
				t->r.err_reset++;
			}
			if (rate)
				lge_save_rate(t, st->intended, st->start, st->busy, now, 0);
			lge_save(t, start, st->connect, st->endwrite, st->beginread, now, 0, 0);
		}
		lge_publish_failed(t);
	}
	st->inuse = 0;
	if (c->cst == st)
		c->cid = 0;
	st->next = c->free;
	c->free = st;
	if (c->inflight >= ht->streams)
		c->slot_free_at = now;
	c->inflight--;
	ht->inflight--;
	mark_dirty(ht, c);
}

/* Ends the connection: streams still in flight fail (as receive errors
 * after a recv() error with -r, as resets otherwise). Reconnects when
 * requests remain. */
static void h2_close(struct h2t *ht, struct h2c *c, int recv_error)
{
	if (c->sess) {
		for (int i = 0; i < ht->streams; i++)
			if (c->slots[i].inuse)
				finish_stream(ht, c, &c->slots[i], 0, recv_error);
		nghttp2_session_del(c->sess);
		c->sess = NULL;
	}
	c->cid = 0;
	if (c->s.fd >= 0)
		lge_close(ht->t, &c->s);
	c->outlen = 0;
	c->sending = 0;
	c->state = H2_UNCONN;
	h2_connect(ht, c);
}

static void h2_open(struct h2t *ht, struct h2c *c)
{
	if (nghttp2_session_client_new3(&c->sess, ht->cbs, c, ht->opt, &ht->mem)) {
		lge_fatal(ht->t, "", "nghttp2_session_client_new", ENOMEM);
		return;
	}
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
	};
	nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
	nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, H2_WINDOW);
	c->state = H2_OPEN;
	c->fresh = 1;
	c->slot_free_at = ht->now; /* what was due before waited for the connection */
	mark_dirty(ht, c);
}

static const struct ev_handler h2_handler;

static void h2_connect(struct h2t *ht, struct h2c *c)
{
	struct thr *t = ht->t;
	for (;;) {
		if (!lge_may_start(t))
			return;
		uint64_t now = t->last = ev_now_update(t->ev);
		if (c->state != H2_BUSY)
			c->connstart = now; /* (a wait for a full queue is connect time) */
		/* TCP_NODELAY: many small writes in flight at once, which Nagle
		 * would hold back */
		int rc = lge_open(t, &c->s, &h2_handler, EV_READ | EV_WRITE, 1);
		if (rc == LGE_REFUSED)
			continue;
		if (rc == LGE_BUSY) {
			c->state = H2_BUSY;
			ht->nretry++;
			ev_timer_start(t->ev, &c->retry, now + LGE_BUSY_RETRY_US);
			return;
		}
		if (rc == LGE_CONNECTED)
			h2_open(ht, c);
		else if (rc == LGE_CONNECTING)
			c->state = H2_CONNECTING;
		return;
	}
}

static void h2_busy_due(struct ev_timer *tm, uint64_t now)
{
	(void)now;
	struct h2c *c = (struct h2c *)((char *)tm - offsetof(struct h2c, retry));
	c->ht->nretry--;
	if (c->state == H2_BUSY)
		h2_connect(c->ht, c);
}

/* The connect failed (refused...): the next address, or ab's answer. */
static void h2_connect_failed(struct h2t *ht, struct h2c *c, int e)
{
	struct thr *t = ht->t;
	lge_close(t, &c->s);
	c->state = H2_UNCONN;
	if (t->r.good == 0 && t->addr + 1 < ht->cf->naddrs) {
		t->addr++;
		h2_connect(ht, c);
		return;
	}
	t->r.err_recv++;
	if (!ht->cf->recverrok) {
		lge_fatal(t, "", "apr_socket_recv", e);
		return;
	}
	/* -r: as ab, the receive error and the poll's exception, and the
	 * request it would have carried is spent */
	t->r.bad += 2;
	t->r.err_except++;
	t->started++;
	uint64_t now = ev_now_update(t->ev);
	t->last = now;
	lge_save(t, c->connstart, now, now, now, now, 0, 0);
	lge_publish_failed(t);
	h2_connect(ht, c);
}

/* Submits requests up to --streams, then hands what nghttp2 has queued to
 * ev_send(), OUTBUFSIZE at a time. */
static void h2_pump(struct h2t *ht, struct h2c *c)
{
	struct thr *t = ht->t;
	if (c->state != H2_OPEN)
		return;
	int rate = ht->cf->rate > 0;
	while (c->inflight < ht->streams && c->free && lge_may_start(t) &&
	       nghttp2_session_check_request_allowed(c->sess)) {
		if (rate && !lge_rate_may_send(t, c->due, c->slot_free_at, ht->now))
			break; /* the schedule is over */
		if (rate && c->due > ht->now) {
			ev_timer_start(t->ev, &c->rate, c->due);
			break;
		}
		struct h2s *st = c->free;
		st->ended = st->timedout = st->status = 0;
		st->cl = -1;
		st->bread = st->bodyoff = 0;
		st->beginread = st->endwrite = 0;
		st->connect = ht->now;
		/* the first requests on a connection carry its connect time */
		st->start = c->fresh ? c->connstart : ht->now;
		if (rate) {
			/* a connection opened before the request was due is not
			 * part of it */
			if (st->start < c->due)
				st->start = ht->now;
			st->intended = c->due;
			st->busy = c->slot_free_at > c->due;
		}
		int32_t id = nghttp2_submit_request(c->sess, NULL, ht->nva, ht->nvlen,
		                                    ht->cf->body ? &ht->prd : NULL, st);
		if (id < 0)
			break;
		c->free = st->next;
		if (id == c->cid)
			c->cid = 0;
		st->id = id;
		st->inuse = 1;
		c->inflight++;
		ht->inflight++;
		t->started++;
		if (rate) {
			lge_rate_started(t, st->start);
			c->due = lge_due(t, c->j, ++c->k);
		}
	}
	c->fresh = 0;
	if (c->sending)
		return; /* on_sent() comes back here */
	for (;;) {
		while (c->outlen < OUTBUFSIZE) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(c->sess, &d);
			if (n < 0) {
				h2_close(ht, c, 0);
				return;
			}
			if (n == 0)
				break;
			if (c->outlen + (size_t)n > c->outcap) {
				size_t cap = c->outcap * 2 > c->outlen + (size_t)n
				                 ? c->outcap * 2
				                 : c->outlen + (size_t)n;
				uint8_t *p = realloc(c->out, cap);
				if (!p) {
					lge_fatal(t, "", "malloc", ENOMEM);
					return;
				}
				c->out = p;
				c->outcap = cap;
			}
			memcpy(c->out + c->outlen, d, (size_t)n);
			c->outlen += (size_t)n;
		}
		if (!c->outlen)
			break;
		ssize_t n = ev_send(&c->s, c->out, c->outlen);
		if (n < 0) {
			t->r.epipe++;
			h2_close(ht, c, 0);
			return;
		}
		t->r.totalposted += n;
		if ((size_t)n < c->outlen) {
			c->sending = 1;
			return;
		}
		c->outlen = 0;
	}
	if (c->s.watch & EV_WRITE)
		ev_watch(&c->s, EV_READ); /* the connect is over: once per connection */
	/* after a GOAWAY, once the last stream is over: a new connection now
	 * rather than wait for the server to close this one */
	if ((!c->inflight && !nghttp2_session_check_request_allowed(c->sess)) ||
	    (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess)))
		h2_close(ht, c, 0);
}

static void on_sent(struct ev_sock *s, size_t sent, int err, uint64_t now)
{
	(void)now;
	struct h2c *c = (struct h2c *)s;
	struct h2t *ht = c->ht;
	ht->t->r.totalposted += (int64_t)sent;
	c->sending = 0;
	c->outlen = 0;
	if (err) {
		ht->t->r.epipe++;
		h2_close(ht, c, 0);
		return;
	}
	mark_dirty(ht, c);
}

/* Feeds what the socket has to the session, until it is drained. */
static void h2_read(struct h2t *ht, struct h2c *c)
{
	struct thr *t = ht->t;
	const char *p;
	ssize_t r;
	while ((r = ev_recv(&c->s, &p)) > 0) {
		t->r.totalread += r;
		ht->now = ev_now(t->ev);
		if (nghttp2_session_mem_recv(c->sess, (const uint8_t *)p, (size_t)r) < 0) {
			h2_close(ht, c, 0); /* a protocol error: what is in flight is lost */
			return;
		}
	}
	if (r == -EAGAIN) {
		mark_dirty(ht, c);
	} else if (r == 0) {
		h2_close(ht, c, 0);
	} else if (!ht->cf->recverrok) {
		t->r.err_recv++;
		lge_fatal(t, "", "apr_socket_recv", (int)-r);
	} else {
		if (ht->cf->verbosity >= 1)
			fprintf(stderr, "%s: %s (%d)\n", "apr_socket_recv", strerror((int)-r),
			        (int)-r);
		h2_close(ht, c, 1);
	}
}

static void on_event(struct ev_sock *s, unsigned ev)
{
	struct h2c *c = (struct h2c *)s;
	struct h2t *ht = c->ht;
	ht->now = ev_now(ht->t->ev); /* when the loop woke */
	if (c->state == H2_CONNECTING) {
		if (ev & (EV_ERR | EV_HUP)) {
			int e = ev_sock_error(&c->s);
			h2_connect_failed(ht, c, e ? e : ECONNREFUSED);
			return;
		}
		if (!(ev & EV_WRITE))
			return;
		h2_open(ht, c);
	}
	if (c->state != H2_OPEN)
		return;
	if (ev & EV_WRITE)
		mark_dirty(ht, c);
	if (ev & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))
		h2_read(ht, c);
}

static const struct ev_handler h2_handler = {on_event, on_sent};

/* --rate, after -t: whether a connection's next request fell due within
 * the schedule and is about to go (the drain waits for it). */
static bool due_soon(const struct h2t *ht)
{
	for (int i = 0; i < ht->nconns; i++)
		if (ev_timer_armed(&ht->conns[i].rate) && ht->conns[i].due < ht->t->g->sched_end)
			return true;
	return false;
}

/* --rate: the drain lasted -s; the streams still open are older than -s:
 * timeouts (driver_h1.c's drain_expired()). */
static void drain_expired(struct h2t *ht)
{
	for (int i = 0; i < ht->nconns; i++)
		for (int k = 0; k < ht->streams; k++) {
			const struct h2s *st = &ht->conns[i].slots[k];
			if (st->inuse && !st->timedout)
				ht->t->r.err_timeout++;
		}
	lge_publish_failed(ht->t);
}

/* --rate: a connection's next request is due. */
static void rate_due(struct ev_timer *tm, uint64_t now)
{
	struct h2c *c = (struct h2c *)((char *)tm - offsetof(struct h2c, rate));
	c->ht->now = now;
	h2_pump(c->ht, c);
}

/* -s: c's connect took too long: the request it would have carried first
 * is spent (lge_connect_expired(); h2_connect_failed() spends it too), and
 * c connects again for the next ones. */
static void connect_expired(struct h2t *ht, struct h2c *c)
{
	if (c->state == H2_BUSY)
		lge_retry_stop(ht->t->ev, &c->retry, &ht->nretry);
	else
		lge_close(ht->t, &c->s);
	c->state = H2_UNCONN;
	lge_connect_expired(ht->t, c->j, &c->k, &c->due);
	h2_connect(ht, c);
}

/* -s: a stream (or a connect) older than the timeout fails as a timeout. */
static void h2_timeouts(struct ev_timer *tm, uint64_t now)
{
	struct h2t *ht = (struct h2t *)((char *)tm - offsetof(struct h2t, scan));
	struct thr *t = ht->t;
	uint64_t limit = ht->cf->timeout_us;
	ev_timer_start(t->ev, tm, now + SCAN_US);
	for (int i = 0; i < ht->nconns; i++) {
		struct h2c *c = &ht->conns[i];
		if ((c->state == H2_BUSY || c->state == H2_CONNECTING) &&
		    now > c->connstart + limit) {
			connect_expired(ht, c);
			continue;
		}
		if (c->state != H2_OPEN)
			continue;
		for (int k = 0; k < ht->streams; k++) {
			struct h2s *st = &c->slots[k];
			uint64_t since = st->endwrite ? st->endwrite : st->start;
			if (!st->inuse || st->timedout || now <= since + limit)
				continue;
			st->timedout = 1;
			t->r.err_timeout++;
			lge_publish_failed(t);
			nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id,
			                          NGHTTP2_CANCEL);
		}
		mark_dirty(ht, c);
	}
}

static void h2_free(struct h2t *ht)
{
	if (ht->conns) {
		for (int i = 0; i < ht->nconns; i++) {
			struct h2c *c = &ht->conns[i];
			ev_timer_stop(ht->t->ev, &c->rate);
			if (c->sess)
				nghttp2_session_del(c->sess);
			if (c->s.fd >= 0)
				lge_close(ht->t, &c->s);
			free(c->out);
		}
		free(ht->conns[0].slots);
	}
	free(ht->conns);
	free(ht->dirty);
	free(ht->nva);
	if (ht->cbs)
		nghttp2_session_callbacks_del(ht->cbs);
	if (ht->opt)
		nghttp2_option_del(ht->opt);
	pool_destroy(&ht->pool); /* after the sessions gave their blocks back */
}

static int h2_setup(struct h2t *ht)
{
	const struct lg_conf *cf = ht->cf;
	struct thr *t = ht->t;
	ht->nconns = t->nconns;
	ht->streams = cf->streams > 0 ? cf->streams : 1;
	ht->conns = calloc((size_t)ht->nconns, sizeof *ht->conns);
	ht->dirty = calloc((size_t)ht->nconns, sizeof *ht->dirty);
	ht->nva = calloc((size_t)cf->h2nhdrs, sizeof *ht->nva);
	struct h2s *slots = calloc((size_t)ht->nconns * (size_t)ht->streams, sizeof *slots);
	if (!ht->conns || !ht->dirty || !ht->nva || !slots ||
	    nghttp2_session_callbacks_new(&ht->cbs) || nghttp2_option_new(&ht->opt)) {
		free(slots);
		return -1;
	}
	for (int i = 0; i < ht->nconns; i++) {
		struct h2c *c = &ht->conns[i];
		c->ht = ht;
		c->retry.fire = h2_busy_due;
		c->s.fd = -1;
		c->rate.fire = rate_due;
		if (cf->rate > 0) {
			c->j = lge_conn_index(t, i);
			c->due = lge_due(t, c->j, 0);
		}
		c->slots = slots + (size_t)i * (size_t)ht->streams;
		for (int k = ht->streams - 1; k >= 0; k--) {
			c->slots[k].next = c->free;
			c->free = &c->slots[k];
		}
		c->outcap = OUTBUFSIZE + 16384;
		if (!(c->out = malloc(c->outcap)))
			return -1;
	}
	for (int i = 0; i < cf->h2nhdrs; i++) {
		const struct lg_hdr *h = &cf->h2hdrs[i];
		ht->nva[i] = (nghttp2_nv){
		    (uint8_t *)(uintptr_t)h->name, (uint8_t *)(uintptr_t)h->value, h->namelen,
		    h->valuelen, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
	}
	ht->nvlen = (size_t)cf->h2nhdrs;
	ht->prd.read_callback = read_body;
	nghttp2_session_callbacks *cb = ht->cbs;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option_set_no_closed_streams(ht->opt, 1);
	ht->mem = (nghttp2_mem){&ht->pool, pool_malloc, pool_free, pool_calloc, pool_realloc};
	ht->scan.fire = h2_timeouts;
	return 0;
}

void lge_h2_run(struct thr *t)
{
	const struct lg_conf *cf = t->cf;
	struct shared *g = t->g;
	struct h2t ht = {.t = t, .cf = cf};

	if (h2_setup(&ht)) {
		lge_fatal(t, "", "malloc", ENOMEM);
		h2_free(&ht);
		return;
	}
	ht.now = ev_now_update(t->ev);
	for (int i = 0; i < ht.nconns; i++)
		h2_connect(&ht, &ht.conns[i]);
	ev_timer_start(t->ev, &ht.scan, ht.now + SCAN_US);
	for (;;) {
		/* a stack: a connection is on it at most once (its dirty flag), even
		 * when pumping it closes and reopens it and so marks it again */
		while (ht.ndirty) {
			struct h2c *c = ht.dirty[--ht.ndirty];
			c->dirty = 0;
			h2_pump(&ht, c);
		}
		if (atomic_load_explicit(&g->stop, memory_order_relaxed))
			break;
		if (t->started >= t->requests && ht.inflight == 0)
			break;
		if (cf->tlimit_us && t->last >= g->stoptime && cf->rate <= 0)
			break;
		uint64_t now = ev_now_update(t->ev);
		if (cf->tlimit_us && now >= g->stoptime) {
			/* --rate: the drain, as over HTTP/1 (driver_h1.c) */
			if (cf->rate <= 0 || (ht.inflight == 0 && !due_soon(&ht)))
				break;
			if (now >= g->stoptime + cf->timeout_us) {
				drain_expired(&ht);
				break;
			}
		}
		if (t->active == 0 && !ht.nretry)
			break; /* nothing left that could finish a request */
		uint64_t wait_us = 1000000;
		if (cf->tlimit_us && now < g->stoptime && g->stoptime - now < wait_us)
			wait_us = g->stoptime - now;
		lge_check_begin(t, now, &wait_us);
		int n = ev_run_once(t->ev, wait_us);
		if (n < 0) {
			lge_fatal(t, "", t->ev->what, -n);
			break;
		}
		ht.now = ev_now(t->ev); /* the last read's, as the pumps' time */
	}
	ev_timer_stop(t->ev, &ht.scan);
	for (int i = 0; ht.conns && i < ht.nconns; i++)
		ev_timer_stop(t->ev, &ht.conns[i].retry);
	h2_free(&ht);
}
