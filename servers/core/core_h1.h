/* core_h1.h — HTTP/1.1 intake for both workers (core.h): bytes read from a
 * connection in, its requests served in order, answers appended to its
 * output buffer. The worker only reads, writes and waits.
 *
 * The per-request path (core_h1_feed and what it calls per request) is
 * inline here, so it compiles into each worker's read loop with no call of
 * its own; what is not per request (errors, the head deadline, HTTP/2, the
 * answer) is in core_h1.c. Measured with scripts/icount: as an out-of-line
 * call the intake cost the hello request ~30 instructions more.
 *
 * The rules kept here once:
 *   - the first bytes decide whether the connection is HTTP/2 with prior
 *     knowledge; a prefix of the preface waits for more;
 *   - a request runs when the previous one has finished (pipelining is
 *     answered in order), and only below the worker's in-flight cap;
 *   - an answer keeps the connection open only if the request allows it,
 *     keep-alive is on and the worker is not stopping, decided when the
 *     app answers (so a request in flight at SIGTERM says "close");
 *   - HEAD gets the head of the answer;
 *   - "Expect: 100-continue" gets its 100 once the head is in;
 *   - a request head must be complete within the read timeout of its first
 *     byte, however slowly it trickles in (nginx's client_header_timeout);
 *     time spent with answers waiting for the socket does not count
 *     (core_h1_sent);
 *   - a malformed request gets the parser's 400/413/431 with
 *     "Connection: close", then a lingering close;
 *   - "Upgrade: h2c" switches the connection to HTTP/2 (not while
 *     stopping).
 */
#ifndef COROBENCH_CORE_H1_H
#define COROBENCH_CORE_H1_H

#include "core.h"

/* May c take a request now (none in the app or queued, not closing, dead,
 * or held by output waiting for the socket)? */
static inline bool core_h1_ready(const struct core_conn *c)
{
	return !(c->busy | c->queued | c->close_after | c->dead | c->hold);
}

/* Run the request parsed into c->req (one that was queued). */
void core_h1_serve(struct core_conn *c);
/* The request finished (app_ctx_finished) after waiting: account it. */
void core_h1_done(struct core_conn *c);
/* The request was cancelled mid-way: release it; the connection closes. */
void core_h1_abort(struct core_conn *c);

/* How long the next read may wait, in ms: the read timeout, shortened for
 * a request head that must be complete within it of its first byte
 * (slowloris); 0 when that deadline has passed (close). */
unsigned core_read_ms_head(struct core_conn *c);
static inline unsigned core_read_ms(struct core_conn *c)
{
	if (__builtin_expect(c->head_t0 != 0 && c->partial, 0))
		return core_read_ms_head(c);
	return c->w->read_ms;
}

/* c's output is all written: a request head begun before it gets its
 * whole read timeout from now. The client was taking answers meanwhile
 * (the write timeout watched that), and the rest of the head waited
 * unread in the socket behind them (nginx starts client_header_timeout of
 * a pipelined request only once the answer before it is sent). While
 * output waits (c->hold) the head's clock does not run at all. A branch
 * that is not taken unless a head is pending. */
static inline void core_h1_sent(struct core_conn *c)
{
	if (__builtin_expect(c->head_t0 != 0, 0))
		c->head_t0 = core_loop_ms(c->w->base);
}

/* The slow paths of core_h1_feed (core_h1.c). */
size_t core_h1_sniff(struct core_conn *c, const char *data, size_t len);
void core_h1_need_more(struct core_conn *c, const char *d, size_t n);
void core_h1_error(struct core_conn *c);
bool core_h2_upgrade(struct core_conn *c);

/* ---- the per-request path ---- */

/* Field by field: app_ctx_init fills in the context, and zeroing the
 * whole record would be a rep stos per request. r's call lists are empty
 * already: they are at core_conn_open, and a request ends only with every
 * call delivered or cancelled. */
static inline void core_h1_start_(struct core_conn *c)
{
	struct core *w = c->w;
	c->head = app_method_is_head(c->req.req.method);
	c->busy = true;
	w->inflight++;
	stats_counters.requests++;
	app_ctx_init(&c->r.ctx, &w->h1_ops, w->opts->upstream);
	app_ctx_run(&c->r.ctx, w->app, &c->req.req);
}

/* One request fewer in flight; below the cap again, queued ones may go. */
static inline void core_slot_free_(struct core *w)
{
	if (__builtin_expect(w->inflight-- == w->max_inflight, 0) && w->cls->slot_freed)
		w->cls->slot_freed(w);
}

static inline void core_h1_done_(struct core_conn *c)
{
	app_ctx_release(&c->r.ctx);
	c->busy = false;
	if (!c->answer_ka)
		c->close_after = true;
	core_slot_free_(c->w);
}

/* Run the parsed request; it finishes now unless its handler left it
 * waiting (then the worker's h1_wait says). */
static inline void core_h1_serve_(struct core_conn *c)
{
	core_h1_start_(c);
	if (__builtin_expect(app_ctx_finished(&c->r.ctx), 1) || c->w->cls->h1_wait(c))
		core_h1_done_(c);
}

/* Parse data and serve its requests, in order, while the connection may
 * take them; call it only when it may take one (core_h1_ready). Returns
 * the bytes used; the rest must be fed again later. A prefix of the HTTP/2
 * preface is not used at all (read more, feed it all again). After the
 * call c->h2 may be set (prior knowledge or an upgrade: every byte went to
 * the session). */
static inline __attribute__((always_inline)) size_t core_h1_feed(struct core_conn *c, const char *data,
                                                                 size_t len)
{
	struct core *w = c->w;
	size_t off = 0;
	if (__builtin_expect(c->fresh, 0))
		return core_h1_sniff(c, data, len);
	while (off < len) {
		size_t used = 0;
		enum http1_result rc =
		    http1_parse(c->parser, data + off, len - off, &used, &c->req);
		off += used;
		if (rc == HTTP1_NEED_MORE) {
			core_h1_need_more(c, data + off - used, used);
			break;
		}
		c->partial = false;
		c->head_t0 = 0;
		if (__builtin_expect(rc == HTTP1_ERROR, 0)) {
			core_h1_error(c);
			break;
		}
		if (__builtin_expect(c->req.upgrade, 0) && !w->stopping && core_h2_upgrade(c)) {
			/* HTTP/2 now: the request is stream 1, what follows is
			 * the client's preface. */
			core_h2_input(c, data + off, len - off);
			return len;
		}
		if (__builtin_expect(w->inflight >= w->max_inflight, 0)) {
			c->queued = true;
			w->cls->h1_queue(c);
			break;
		}
		core_h1_serve_(c);
		/* Bitwise: one branch for the three ways the pipeline stops. */
		if (__builtin_expect(c->busy | c->close_after | c->dead, 0))
			break;
		if (__builtin_expect(core_obuf(c)->len >= CORE_FLUSH_AT, 0) &&
		    (w->cls->flush(c) != 0 || c->hold))
			break;
	}
	return off;
}

#endif
