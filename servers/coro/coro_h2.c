/* coro_h2.c — HTTP/2 on the implicit-coroutine worker: the connection's
 * coroutine owns the session and the socket (coro_conn_h2), every stream
 * runs in a coroutine of its own (stream_task) and parks the way an
 * HTTP/1.1 request does; an answered stream wakes the connection through
 * the loop to flush (coro_h2conn_kick). The rest of the worker: coro_server.c. */
#include "coro_server.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

/* ---- HTTP/2: the connection's coroutine owns the session and the
 * socket, every stream runs in a coroutine of its own ---- */

static void h2_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct h2conn *hc = arg;
	if (hc->h.c)
		hub_wake(conn_of(hc->h.c)->task);
}

/* A stream's answer is queued in the session: make the connection's
 * coroutine flush it. Through the loop, not a direct resume: a stream must
 * never run the connection's coroutine on top of itself (the connection
 * could end and free what the stream still uses). */
void coro_h2conn_kick(struct h2conn *hc)
{
	if (!hc->h.c || hc->kicked)
		return;
	hc->kicked = true;
	if (!hc->busy)
		event_active(&hc->kick_ev, EV_TIMEOUT, 1);
}

int coro_h2_open(struct core_h2 *h)
{
	struct h2conn *hc = (struct h2conn *)h;
	hc->busy = true;
	return event_assign(&hc->kick_ev, h->w->base, -1, 0, h2_kick_cb, hc);
}

void coro_h2_free(struct core_h2 *h)
{
	event_del(&((struct h2conn *)h)->kick_ev);
}

struct stream_start {
	struct core_h2 *h;
	int32_t id;
	const struct app_request *req;
};

static void stream_task(struct hub *hub, void *arg)
{
	struct stream_start start = *(struct stream_start *)arg;
	struct core_stream st; /* not zeroed as a whole: its inline answer needs no zeroing */
	http_obuf_init(&st.big);
	st.r.waiter = hub_self(hub);
	core_stream_init(&st, start.h, start.id);
	core_stream_run(&st, start.req);
	bool ok = coro_stream_wait(&st.r);
	struct h2conn *hc = (struct h2conn *)start.h;
	coro_h2conn_kick(hc); /* before the end, which may free the session */
	core_stream_end(&st, ok);
	core_stream_free(&st);
}

/* A stream's coroutine starts at once and runs to its first wait (hello
 * answers right there, inside h2_session_recv). */
void coro_h2_request(struct core_h2 *h, int32_t id, const struct app_request *req)
{
	struct stream_start start = {h, id, req};
	if (!coro_cap_ok(worker_of(h->w))) {
		/* The client may retry a refused stream: nothing of it ran. */
		(void)h2_session_reset_stream(h->s, id, NGHTTP2_REFUSED_STREAM);
		return;
	}
	if (hub_spawn(worker_of(h->w)->hub, stream_task, &start) != 0)
		(void)h2_session_reset_stream(h->s, id, NGHTTP2_INTERNAL_ERROR);
}

/* The client gave up on a stream: every wait of its coroutine now fails,
 * so its calls are cancelled and it unwinds, here and now. */
void coro_stream_cancel(struct core_stream *st)
{
	if (!hub_cancelled(st->r.waiter))
		hub_cancel(st->r.waiter);
}

/* Serve the connection as HTTP/2 until it closes; what was read so far
 * went to the session already (core_h1_feed). */
void coro_conn_h2(struct conn *c, char *rbuf)
{
	struct core_conn *cc = &c->cc;
	struct h2conn *hc = (struct h2conn *)cc->h2;
	for (;;) {
		hc->busy = true;
		hc->kicked = false;
		if (core_h2_flush(cc) != 0 || coro_conn_flush(cc) != 0)
			return;
		if (cc->close_after) {
			if (cc->linger)
				coro_conn_linger(c, rbuf);
			return;
		}
		if (core_h2_closed(cc))
			return;
		if (hc->kicked)
			continue; /* a stream answered while we wrote */
		hc->busy = false;
		/* No read timeout while a handler runs; idle (every open stream,
		 * if any, waits on the client): GOAWAY, then the close. */
		unsigned ms = core_h2_busy(cc) ? 0 : cc->w->read_ms;
		ssize_t n = cc->tls ? coro_conn_read_tls(c, rbuf, CONN_RBUF, ms, true)
		                    : hub_read_or_woken(&c->hfd, rbuf, CONN_RBUF, ms);
		hc->busy = true;
		if (n == -EAGAIN)
			continue; /* woken: an answer to flush, or the shutdown */
		if (n == -ETIMEDOUT) {
			if (core_h2_idle(cc))
				return;
			continue;
		}
		if (n <= 0)
			return; /* closed, failed or cancelled */
		core_h2_input(cc, rbuf, (size_t)n);
	}
}
