/* app_host.h — the worker-facing side of app.h.
 *
 * Apps see only app.h. A worker (coro, async, a test double) embeds a
 * struct app_ctx at the start of its per-request state, fills in the ops
 * table with its own way of waiting, and drives the request through
 * app_ctx_run() and the app_ctx_deliver_*() calls. The bookkeeping that must
 * be identical on every worker lives here once: exactly-one response, the
 * pending-callback count, the automatic 500 when an app forgets to answer,
 * and memory that follows the request.
 */
#ifndef COROBENCH_APP_HOST_H
#define COROBENCH_APP_HOST_H

#include "app.h"

#include <stdbool.h>

struct app_ctx_ops {
	int (*fetch)(struct app_ctx *ctx, const char *url, struct app_fetch_result *out);
	void (*sleep_ms)(struct app_ctx *ctx, unsigned ms);
	/* Start the fetch; return 0 when started (the worker later calls
	 * app_ctx_deliver_fetch exactly once), else an enum app_fetch_error. */
	int (*fetch_async)(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg);
	/* Arm the timer; the worker later calls app_ctx_deliver_timer once. */
	void (*sleep_async)(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg);
	/* Emit the response. Called at most once per request. body is only
	 * valid during the call (copy it). */
	void (*respond)(struct app_ctx *ctx, int status, const char *content_type,
			const void *body, size_t len);
};

struct app_mem;

struct app_ctx {
	const struct app_ctx_ops *ops;
	const char *upstream;
	struct app_mem *mem; /* app_alloc blocks and owned fetch bodies */
	void *owned;         /* the first owned block: a proxied request's body
	                      * needs no list node (one malloc and free fewer) */
	unsigned pending;    /* async calls started, not yet delivered */
	bool responded;
	bool running;        /* inside the handler */
};

void app_ctx_init(struct app_ctx *ctx, const struct app_ctx_ops *ops, const char *upstream);

/* Free everything the request owns. Call once the request is finished
 * (app_ctx_finished() is true) or when the connection dies mid-request
 * (then pending callbacks must have been cancelled by the worker first). */
void app_ctx_release(struct app_ctx *ctx);

/* Hand a malloc'd block to the request: freed by app_ctx_release().
 * Returns 0, or -1 when out of memory: then the block was freed at once. */
int app_ctx_own(struct app_ctx *ctx, void *block);

/* Call the app's handler. If it returns with no response and nothing
 * pending, answers 500. */
void app_ctx_run(struct app_ctx *ctx, const struct app *app, const struct app_request *req);

/* Deliver an async result: the ctx takes ownership of body (malloc'd, may be
 * NULL), the pending count drops, cb runs, then the 500 rule is applied. If
 * the body cannot be tracked (out of memory) it is freed and cb sees
 * APP_FETCH_ENOMEM instead. */
void app_ctx_deliver_fetch(struct app_ctx *ctx, app_fetch_cb cb, void *arg,
			   struct app_fetch_result *res, void *body);
void app_ctx_deliver_timer(struct app_ctx *ctx, app_timer_cb cb, void *arg);

/* True once the app responded and no callback is pending. */
static inline bool app_ctx_finished(const struct app_ctx *ctx)
{
	return ctx->responded && ctx->pending == 0 && !ctx->running;
}

#endif
