/* core_calls.c — the explicit calls of app.h (app_fetch_async,
 * app_sleep_async) for both workers: a pooled record per call, linked to
 * its request while it runs; on completion it moves to the request's queue
 * and the worker is told (core_class.wake), which delivers it now (async)
 * or on the request's own coroutine (coro), so a callback always runs where
 * the worker says requests run.
 *
 * Out of resources (no record, a timer libevent cannot arm): the call's
 * request is answered 503 and the worker lives on. A fetch reports it as
 * its error value (APP_FETCH_ENOMEM, which app_error_status maps to 503);
 * app_sleep_async has no error value, so the request is answered 503 here
 * and its callback, which can never come, is not waited for.
 *
 * Timers never fire early: the loop's cached time can be a whole busy
 * iteration old, so it is refreshed before a timer is armed.
 */
#include "core.h"

#include <event2/event.h>

#include <stdlib.h>

/* An explicit call's record, pooled by the worker. */
struct core_op {
	struct core_op *next, *prev; /* the request's list, its queue, or the free list */
	struct core_req *r;
	struct fetch_req *freq; /* the fetch in flight, else NULL */
	bool is_timer;
	union {
		app_fetch_cb fetch;
		app_timer_cb timer;
	} cb;
	void *arg;
	struct app_fetch_result res; /* a completed fetch, until delivered */
	void *body;
	struct event timer;
};

static struct core_op *op_get(struct core *w)
{
	struct core_op *op = w->free_ops;
	if (op) {
		w->free_ops = op->next;
		return op;
	}
	return malloc(sizeof(*op));
}

static void op_put(struct core *w, struct core_op *op)
{
	op->next = w->free_ops;
	w->free_ops = op;
}

static void op_link(struct core_req *r, struct core_op *op)
{
	op->r = r;
	op->prev = NULL;
	op->next = r->ops;
	if (r->ops)
		r->ops->prev = op;
	r->ops = op;
}

/* Completed: from the request's list to its queue; the worker delivers. */
static void op_complete(struct core_op *op)
{
	struct core_req *r = op->r;
	if (op->prev)
		op->prev->next = op->next;
	else
		r->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = NULL;
	if (r->done_tail)
		r->done_tail->next = op;
	else
		r->done = op;
	r->done_tail = op;
	r->w->cls->wake(r);
}

static void fetch_done(void *arg, struct app_fetch_result *res, void *body)
{
	struct core_op *op = arg;
	op->res = *res;
	op->body = body;
	op->freq = NULL;
	op_complete(op);
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	op_complete(arg);
}

/* The request of an app_ctx (the ops are only ever called with one). */
static struct core_req *req_of(struct app_ctx *ctx)
{
	return (struct core_req *)ctx;
}

int core_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	struct core_req *r = req_of(ctx);
	struct core *w = r->w;
	struct core_op *op = op_get(w);
	if (!op)
		return APP_FETCH_ENOMEM;
	op->is_timer = false;
	op->cb.fetch = cb;
	op->arg = arg;
	op->body = NULL;
	int rc = fetcher_get(w->fetcher, url, fetch_done, op, &op->freq);
	if (rc != 0) {
		op_put(w, op);
		return rc;
	}
	op_link(r, op);
	return 0;
}

void core_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	static const char busy[] = "out of resources\n";
	struct core_req *r = req_of(ctx);
	struct core *w = r->w;
	struct core_op *op = op_get(w);
	if (op) {
		op->is_timer = true;
		op->cb.timer = cb;
		op->arg = arg;
		op->freq = NULL;
		struct timeval tv = core_tv(ms);
		evtimer_assign(&op->timer, w->base, timer_fired, op);
		event_base_update_cache_time(w->base);
		if (evtimer_add(&op->timer, &tv) == 0) {
			op_link(r, op);
			return;
		}
		op_put(w, op);
	}
	/* The callback can never come: not counted as pending, and the
	 * request gets its answer now (the app's own, later, is ignored). */
	ctx->pending--;
	app_respond(ctx, 503, "text/plain", busy, sizeof(busy) - 1);
}

void core_req_deliver(struct core_req *r)
{
	struct core *w = r->w;
	while (r->done) {
		struct core_op *op = r->done;
		r->done = op->next;
		if (!r->done)
			r->done_tail = NULL;
		void *arg = op->arg;
		if (op->is_timer) {
			app_timer_cb cb = op->cb.timer;
			op_put(w, op);
			app_ctx_deliver_timer(&r->ctx, cb, arg);
		} else {
			struct app_fetch_result res = op->res;
			app_fetch_cb cb = op->cb.fetch;
			void *body = op->body;
			op_put(w, op);
			res.body = body;
			app_ctx_deliver_fetch(&r->ctx, cb, arg, &res, body);
		}
	}
}

void core_req_cancel(struct core_req *r)
{
	struct core *w = r->w;
	while (r->ops) {
		struct core_op *op = r->ops;
		r->ops = op->next;
		if (op->is_timer)
			evtimer_del(&op->timer);
		else if (op->freq)
			fetch_cancel(op->freq);
		op_put(w, op);
	}
	while (r->done) {
		struct core_op *op = r->done;
		r->done = op->next;
		free(op->body);
		op_put(w, op);
	}
	r->done_tail = NULL;
	r->ctx.pending = 0;
}

void core_calls_free(struct core *w)
{
	while (w->free_ops) {
		struct core_op *op = w->free_ops;
		w->free_ops = op->next;
		free(op);
	}
}
