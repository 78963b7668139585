/* async_h2.c — HTTP/2 on async-server's connections: every stream is a
 * small state machine of its own (struct h2s, pooled) whose app runs like an
 * HTTP/1.1 request's, queued for an --async slot when none is free; the
 * connection only moves bytes, and the answers given from callbacks of one
 * loop turn leave in one send per connection (h2_conn_defer).
 */
#include "async_conn.h"

#include <nghttp2/nghttp2.h>

#include <stdlib.h>

void async_h2_read(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	ssize_t n = async_conn_recv(c, w->rbuf, sizeof(w->rbuf));
	if (n < 0) {
		c->cc.dead = true; /* the client left: core_conn_close cancels its streams */
		return;
	}
	if (n > 0) {
		core_h2_input(&c->cc, w->rbuf, (size_t)n);
		async_conn_timeout_set(c, w->core.read_ms);
	}
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
	struct async_worker *w = async_worker_of(s->st.r.w);
	core_stream_end(&s->st, true);
	h2s_put(w, s);
}

void async_h2_request(struct core_h2 *h, int32_t id, const struct app_request *req)
{
	struct async_worker *w = async_worker_of(h->w);
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
		struct conn *c = async_conn_of(h->c);
		if (!c->in_wait)
			async_wait_push(c);
		return;
	}
	core_stream_run(&s->st, req);
	h2s_after_app(s);
}

/* Start queued streams while slots are free; requeue the rest. */
void async_h2_run_waiting(struct conn *c)
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
		async_wait_push(c);
}

/* The client reset a stream, or the connection goes: cancel it. */
void async_stream_cancel(struct core_stream *st)
{
	struct h2s *s = (struct h2s *)st;
	struct async_worker *w = async_worker_of(st->r.w);
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
	if (!hc->wait_head && hc->h.c && async_conn_of(hc->h.c)->in_wait)
		async_wait_remove(async_conn_of(hc->h.c));
	core_stream_drop(st);
	h2s_put(w, s);
}

/* async_conn_settle() for an HTTP/2 connection: flush the session, write, then
 * close, linger or keep reading. */
void async_h2_settle(struct conn *c)
{
	struct core_conn *cc = &c->cc;
	if (!cc->dead && !c->lingering && core_h2_flush(cc) != 0)
		cc->dead = true;
	async_conn_flush(c);
	if (!cc->dead && !c->lingering && !c->writing && (cc->close_after || core_h2_closed(cc))) {
		if (cc->linger)
			async_conn_linger_start(c);
		else
			cc->dead = true;
	}
	if (!cc->dead && !c->lingering)
		async_conn_want_read(c,
		                     !c->in_wait && !cc->close_after && cc->out.len < H2_OUT_MAX);
	if (cc->dead)
		async_conn_destroy(c);
	else if (c->more)
		async_conn_more(c);
}

/* A stream of c was answered from a fetch or timer callback: settle the
 * connection once, after every callback of this loop turn, so that the
 * answers of many streams leave in one send (proxy-async over h2 would
 * otherwise make a send per stream). */
static void h2_conn_defer(struct conn *c)
{
	struct async_worker *w = async_conn_worker(c);
	if (c->cc.dead) {
		async_conn_settle(c); /* destroy it now */
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

void async_h2_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct async_worker *w = arg;
	(void)fd;
	(void)what;
	while (w->dirty) {
		struct conn *c = w->dirty;
		w->dirty = c->dirty_next;
		c->dirty = false;
		async_conn_settle(c);
	}
}

/* An explicit call of stream s completed and was delivered. */
void async_h2_wake(struct h2s *s)
{
	struct conn *c = async_conn_of(s->st.h->c);
	h2s_after_app(s);
	h2_conn_defer(c);
}

/* The worker's stream pool goes (at its end). */
void async_h2_free_pool(struct async_worker *w)
{
	while (w->free_streams) {
		struct h2s *s = w->free_streams;
		w->free_streams = s->wnext;
		core_stream_free(&s->st);
		free(s);
	}
}
