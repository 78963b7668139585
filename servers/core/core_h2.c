/* core_h2.c — the HTTP/2 side of a connection for both workers, on the
 * shared codec (servers/http/h2.h): the session and its two ways in (the
 * client preface, or an HTTP/1.1 request asking for h2c), each stream's
 * start, answer and end, and the connection-level rules (GOAWAY when
 * stopping or idle). The worker runs a stream (a coroutine, or callbacks)
 * and moves the bytes.
 *
 * Rules kept here once:
 *   - stream 1 of an upgrade is held until the client's preface has come:
 *     its answer must not share a read with the 101 (curl 7.88 fails when
 *     more than its buffer follows the 101);
 *   - an answer is kept with the stream until the request is finished
 *     (handler and callbacks returned) and only then given to the codec,
 *     because answering may release the request's views, which app.h
 *     keeps valid until then; an unanswered stream is reset
 *     (INTERNAL_ERROR);
 *   - a connection error (the codec queued its GOAWAY) is written, then the
 *     connection closes after draining the input, as for HTTP/1.1 errors;
 *   - idle for the read timeout with no handler running: GOAWAY, and a
 *     timeout later the close; an upgraded connection whose preface never
 *     came closes at once.
 */
#include "core.h"

#include <nghttp2/nghttp2.h>

#include <stdlib.h>
#include <string.h>

static void on_request(void *user, int32_t id, const struct app_request *req)
{
	struct core_h2 *h = user;
	if (h->holding) {
		h->held_id = id;
		h->held_req = req;
		return;
	}
	h->w->cls->h2_request(h, id, req);
}

static void on_stream_close(void *user, int32_t id, uint32_t error_code)
{
	struct core_h2 *h = user;
	/* Closed after its answer went out: its request ended before that. */
	if (error_code == NGHTTP2_NO_ERROR)
		return;
	if (h->held_req && h->held_id == id) {
		h->held_req = NULL;
		(void)h2_session_reset_stream(h->s, id, NGHTTP2_CANCEL); /* releases it */
		return;
	}
	for (struct core_stream *st = h->streams; st; st = st->next) {
		if (st->id == id) {
			h->w->cls->stream_cancel(st); /* the client gave up on it */
			return;
		}
	}
}

static const struct h2_callbacks callbacks = {
    .on_request = on_request,
    .on_stream_close = on_stream_close,
};

/* c's session, in the worker's own struct of cls->h2_size bytes. */
static struct core_h2 *h2_new(struct core_conn *c)
{
	struct core *w = c->w;
	struct core_h2 *h = calloc(1, w->cls->h2_size);
	if (!h)
		return NULL;
	h->s = h2_session_new(&w->h2_limits, &callbacks, h);
	h->w = w;
	h->c = c;
	h->refs = 1;
	if (!h->s || (w->cls->h2_open && w->cls->h2_open(h) != 0)) {
		h2_session_free(h->s);
		free(h);
		return NULL;
	}
	return h;
}

static void h2_destroy(struct core_h2 *h)
{
	if (h->w->cls->h2_free)
		h->w->cls->h2_free(h);
	h2_session_free(h->s);
	free(h);
}

void core_h2_unref(struct core_h2 *h)
{
	if (--h->refs > 0)
		return;
	if (h->c)
		h->c->h2 = NULL;
	h2_destroy(h);
}

/* ---- the two ways in ---- */

int core_h2_prior_knowledge(struct core_conn *c, const char *data, size_t len)
{
	c->h2 = h2_new(c);
	if (!c->h2) {
		c->dead = true;
		return -1;
	}
	return core_h2_input(c, data, len); /* the preface too */
}

/* The HTTP/1.1 request in c->req asks for h2c: switch (the 101 and our
 * SETTINGS are appended to the output, after the answers before it), or
 * return false to serve it as HTTP/1.1 (malformed HTTP2-Settings, out of
 * memory). */
bool core_h2_upgrade(struct core_conn *c)
{
	struct app_str settings;
	if (!h2_upgrade_request(&c->req.req, &settings))
		return false;
	struct core_h2 *h = h2_new(c);
	if (!h)
		return false;
	h->holding = true; /* stream 1 becomes held_req, see on_request */
	int rc = h2_session_upgrade(h->s, settings, &c->req.req);
	h->holding = false;
	if (rc != 0) {
		h2_destroy(h);
		return false;
	}
	c->h2 = h;
	c->partial = false;
	struct http_obuf *out = core_obuf(c);
	if (http_obuf_append(out, H2_UPGRADE_RESPONSE, sizeof(H2_UPGRADE_RESPONSE) - 1) != 0 ||
	    h2_session_flush(h->s, out) != 0)
		c->dead = true;
	return true;
}

/* ---- the connection ---- */

int core_h2_input(struct core_conn *c, const char *data, size_t len)
{
	struct core_h2 *h = c->h2;
	if (len == 0 || !h)
		return 0;
	if (h->held_req) {
		/* The client's next bytes (its preface) are in: stream 1 of the
		 * upgrade runs now, before the streams they may bring. */
		const struct app_request *req = h->held_req;
		h->held_req = NULL;
		c->w->cls->h2_request(h, h->held_id, req);
	}
	if (h2_session_recv(h->s, data, len) != 0) {
		c->close_after = true;
		c->linger = true;
		return -1;
	}
	return 0;
}

int core_h2_flush(struct core_conn *c)
{
	struct core_h2 *h = c->h2;
	if (c->w->stopping && !h->goaway) {
		/* Graceful stop: streams already begun finish, newer ones are
		 * refused, and the session then closes itself. */
		h->goaway = true;
		if (h2_session_goaway_graceful(h->s) != 0)
			return -1;
	}
	return h2_session_flush(h->s, core_obuf(c));
}

bool core_h2_closed(const struct core_conn *c)
{
	return h2_session_is_closed(c->h2->s);
}

bool core_h2_busy(const struct core_conn *c)
{
	/* Stream 1 of an upgrade is unanswered while it is held, but what it
	 * waits for is the client's preface: that is idleness. */
	const struct core_h2 *h = c->h2;
	return h2_session_unanswered_streams(h->s) > (h->held_req ? 1u : 0u);
}

bool core_h2_idle(struct core_conn *c)
{
	struct core_h2 *h = c->h2;
	if (h->held_req)
		return true; /* upgraded, but no client preface ever came */
	if (core_h2_busy(c))
		return false; /* a handler still running is not idleness */
	if (h->goaway)
		return true; /* a whole timeout after our GOAWAY: it takes no answer */
	h->goaway = true;
	return h2_session_goaway_graceful(h->s) != 0;
}

/* ---- streams ---- */

void core_stream_init(struct core_stream *st, struct core_h2 *h, int32_t id)
{
	struct core *w = h->w;
	st->h = h;
	st->id = id;
	st->run = st->answered = false;
	st->r.w = w;
	st->r.ops = st->r.done = st->r.done_tail = NULL;
	st->prev = NULL;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	h->refs++;
	w->nstreams++;
}

void core_stream_run(struct core_stream *st, const struct app_request *req)
{
	struct core *w = st->r.w;
	st->run = true;
	w->inflight++;
	stats_counters.requests++;
	app_ctx_init(&st->r.ctx, &w->h2_ops, w->opts->upstream);
	app_ctx_run(&st->r.ctx, w->app, req);
}

/* app_respond for a stream: keep the answer until the request is finished. */
void core_h2_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                     size_t len)
{
	static const char busy[] = "out of resources\n";
	struct core_stream *st = (struct core_stream *)ctx;
	size_t ct_len = strlen(content_type); /* app_respond never passes NULL */
	char *buf = st->inl;
	if (ct_len + 1 + len > sizeof(st->inl)) {
		st->big.len = 0;
		if (http_obuf_reserve(&st->big, ct_len + 1 + len) != 0) {
			/* Out of memory: the request gets 503 (fits inline). */
			status = 503;
			content_type = "text/plain";
			ct_len = strlen(content_type);
			body = busy;
			len = sizeof(busy) - 1;
		} else {
			buf = st->big.data;
		}
	}
	memcpy(buf, content_type, ct_len + 1);
	if (len)
		memcpy(buf + ct_len + 1, body, len);
	st->ans = buf;
	st->ct_len = ct_len;
	st->len = len;
	st->status = status;
	st->answered = true;
}

static void stream_unlink(struct core_stream *st)
{
	struct core_h2 *h = st->h;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->r.w->nstreams--;
}

void core_stream_end(struct core_stream *st, bool ok)
{
	struct core *w = st->r.w;
	struct core_h2 *h = st->h;
	stream_unlink(st);
	/* Answer even a stream the client reset: that late answer sends
	 * nothing and releases the request's storage. */
	if (ok && st->answered)
		(void)h2_session_respond(h->s, st->id, st->status, st->ans,
		                         st->ans + st->ct_len + 1, st->len);
	else
		(void)h2_session_reset_stream(h->s, st->id, NGHTTP2_INTERNAL_ERROR);
	if (st->run) {
		app_ctx_release(&st->r.ctx);
		if (__builtin_expect(w->inflight-- == w->max_inflight, 0) && w->cls->slot_freed)
			w->cls->slot_freed(w);
	}
	core_h2_unref(h);
}

void core_stream_drop(struct core_stream *st)
{
	struct core_h2 *h = st->h;
	stream_unlink(st);
	(void)h2_session_reset_stream(h->s, st->id, NGHTTP2_CANCEL);
	core_h2_unref(h);
}

void core_stream_free(struct core_stream *st)
{
	http_obuf_free(&st->big);
}
