/* core_h1.c — HTTP/1.1 intake, the parts that are not per request (the
 * per-request path is inline in core_h1.h): the answer, the error answer,
 * the head deadline, the sniffing of the first bytes.
 */
#include "core_h1.h"

#include <string.h>

/* ---- a request ---- */

static struct core_conn *conn_of(struct app_ctx *ctx)
{
	return (struct core_conn *)((char *)ctx - offsetof(struct core_conn, r.ctx));
}

void core_h1_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
                     size_t len)
{
	struct core_conn *c = conn_of(ctx);
	bool ka = c->req.keep_alive & c->w->ka_now;
	int minor = c->req.req.http_minor;
	int rc = c->head ? http1_write_head(core_obuf(c), minor, status, content_type, len, ka)
	                 : http1_write_response(core_obuf(c), minor, status, content_type, body,
	                                        len, ka);
	if (rc != 0)
		c->dead = true;
	c->answer_ka = ka;
}

void core_h1_done(struct core_conn *c)
{
	core_h1_done_(c);
}

void core_h1_abort(struct core_conn *c)
{
	app_ctx_release(&c->r.ctx);
	c->busy = false;
	c->dead = true;
	core_slot_free_(c->w);
}

void core_h1_serve(struct core_conn *c)
{
	c->queued = false;
	core_h1_serve_(c);
}

/* ---- errors ---- */

/* Answer a malformed request, then close after draining the input. */
void core_h1_error(struct core_conn *c)
{
	int status = http1_parser_error_status(c->parser);
	const char *why = http_status_reason(status);
	if (http1_write_response(core_obuf(c), 1, status, "text/plain", why, strlen(why), false) !=
	    0)
		c->dead = true;
	c->close_after = true;
	c->linger = true;
}

/* ---- the request-head deadline ---- */

/* A read left a request unfinished (bytes d[0..n) of it parsed): track
 * its head, and say 100 Continue when its head is in and it asks for it.
 * Reads that complete requests never come here. */
void core_h1_need_more(struct core_conn *c, const char *d, size_t n)
{
	if (!c->partial) {
		c->head_done = false;
		c->head_nl = 0;
		c->head_t0 = 0;
	}
	c->partial = true;
	if (http1_parser_take_continue(c->parser) &&
	    http_obuf_append(core_obuf(c), HTTP1_CONTINUE, sizeof(HTTP1_CONTINUE) - 1) != 0)
		c->dead = true;
	if (c->head_done)
		return;
	if (http1_head_scan(&c->head_nl, d, n)) {
		c->head_done = true;
		c->head_t0 = 0;
		return;
	}
	if (c->head_t0 == 0)
		c->head_t0 = core_loop_ms(c->w->base);
}

unsigned core_read_ms_head(struct core_conn *c)
{
	unsigned ms = c->w->read_ms;
	if (c->hold)
		return ms; /* answers wait for the socket: the head's clock is stopped */
	int64_t left = c->head_t0 + (int64_t)ms - core_loop_ms(c->w->base);
	if (left <= 0)
		return 0;
	return left < (int64_t)ms ? (unsigned)left : ms;
}

/* ---- the first bytes ---- */

int core_h2_prior_knowledge(struct core_conn *c, const char *data, size_t len);

/* A fresh connection's first bytes: HTTP/2 prior knowledge, a prefix of
 * its preface (nothing used: read more), or HTTP/1.1. */
size_t core_h1_sniff(struct core_conn *c, const char *data, size_t len)
{
	enum h2_preface p = h2_is_preface(data, len);
	if (p == H2_PREFACE_PARTIAL) {
		c->partial = true; /* not idle: the read timeout still runs */
		return 0;
	}
	c->fresh = false;
	if (p == H2_PREFACE_YES) {
		c->partial = false;
		core_h2_prior_knowledge(c, data, len);
		return len;
	}
	return core_h1_feed(c, data, len);
}
