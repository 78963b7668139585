/* app.c — the calls of app.h that are the same on every worker: dispatch to
 * the worker's ops, the exactly-once response rule, request-lifetime memory,
 * query helpers and the registry. */
#include "app_host.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct app_mem {
	struct app_mem *next;
	void *block; /* owned block, or NULL when the data follows inline */
	alignas(max_align_t) unsigned char data[];
};

void app_ctx_init(struct app_ctx *ctx, const struct app_ctx_ops *ops, const char *upstream)
{
	ctx->ops = ops;
	ctx->upstream = upstream ? upstream : "";
	ctx->mem = NULL;
	ctx->owned = NULL;
	ctx->pending = 0;
	ctx->responded = false;
	ctx->running = false;
}

void app_ctx_release(struct app_ctx *ctx)
{
	free(ctx->owned);
	ctx->owned = NULL;
	struct app_mem *m = ctx->mem;
	while (m) {
		struct app_mem *next = m->next;
		free(m->block);
		free(m);
		m = next;
	}
	ctx->mem = NULL;
}

int app_ctx_own(struct app_ctx *ctx, void *block)
{
	if (!block)
		return 0;
	if (!ctx->owned) {
		ctx->owned = block;
		return 0;
	}
	struct app_mem *m = malloc(sizeof(*m));
	if (!m) {
		/* Cannot track it: free now rather than leak. */
		free(block);
		return -1;
	}
	m->block = block;
	m->next = ctx->mem;
	ctx->mem = m;
	return 0;
}

void *app_alloc(struct app_ctx *ctx, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct app_mem))
		return NULL;
	struct app_mem *m = malloc(sizeof(*m) + size);
	if (!m)
		return NULL;
	m->block = NULL;
	m->next = ctx->mem;
	ctx->mem = m;
	return m->data;
}

static void answer_if_forgotten(struct app_ctx *ctx)
{
	static const char msg[] = "app finished without a response\n";
	if (!ctx->responded && ctx->pending == 0 && !ctx->running)
		app_respond(ctx, 500, NULL, msg, sizeof(msg) - 1);
}

#ifdef COROBENCH_SLOWDOWN_NS
/* The regression drill of results/REGRESSION.md (-Dslowdown_ns=N): burn a
 * fixed number of loop iterations per request, about one nanosecond each on
 * the reference machine. A fixed count rather than a clock-driven wait, so
 * the extra work is the same number of instructions everywhere (also under
 * valgrind, where a clock-driven wait would shrink to almost nothing), which
 * is what a real CPU regression looks like. */
static void slowdown(void)
{
	for (unsigned long i = 0; i < (unsigned long)COROBENCH_SLOWDOWN_NS; i++)
		__asm__ volatile("" ::: "memory");
}
#else
static inline void slowdown(void)
{
}
#endif

void app_ctx_run(struct app_ctx *ctx, const struct app *app, const struct app_request *req)
{
	slowdown();
	ctx->running = true;
	app->handle(ctx, req);
	ctx->running = false;
	answer_if_forgotten(ctx);
}

void app_ctx_deliver_fetch(struct app_ctx *ctx, app_fetch_cb cb, void *arg,
			   struct app_fetch_result *res, void *body)
{
	if (app_ctx_own(ctx, body) != 0) {
		/* The body is gone: the app must not see it. */
		res->error = APP_FETCH_ENOMEM;
		res->body = NULL;
		res->len = 0;
	}
	ctx->pending--;
	ctx->running = true;
	cb(ctx, res, arg);
	ctx->running = false;
	answer_if_forgotten(ctx);
}

void app_ctx_deliver_timer(struct app_ctx *ctx, app_timer_cb cb, void *arg)
{
	ctx->pending--;
	ctx->running = true;
	cb(ctx, arg);
	ctx->running = false;
	answer_if_forgotten(ctx);
}

int app_fetch(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	return ctx->ops->fetch(ctx, url, out);
}

void app_sleep_ms(struct app_ctx *ctx, unsigned ms)
{
	ctx->ops->sleep_ms(ctx, ms);
}

int app_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	int rc = ctx->ops->fetch_async(ctx, url, cb, arg);
	if (rc == 0)
		ctx->pending++;
	return rc;
}

void app_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	ctx->pending++;
	ctx->ops->sleep_async(ctx, ms, cb, arg);
}

void app_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
		 size_t len)
{
	if (ctx->responded)
		return;
	ctx->responded = true;
	ctx->ops->respond(ctx, status, content_type ? content_type : "text/plain", body, len);
}

const char *app_upstream(const struct app_ctx *ctx)
{
	return ctx->upstream;
}

int app_error_status(enum app_fetch_error err)
{
	switch (err) {
	case APP_FETCH_OK:
		return 200;
	case APP_FETCH_ETIMEOUT:
		return 504;
	case APP_FETCH_ENOMEM:
		return 503;
	case APP_FETCH_EINTERNAL:
		return 500;
	case APP_FETCH_ECONNECT:
	case APP_FETCH_ERESET:
	case APP_FETCH_EPROTO:
	case APP_FETCH_ESTATUS:
		break;
	}
	return 502;
}

int app_fetch_status(const struct app_fetch_result *res)
{
	return res->error == APP_FETCH_OK ? res->status : app_error_status(res->error);
}

const char *app_fetch_strerror(enum app_fetch_error err)
{
	switch (err) {
	case APP_FETCH_OK:
		return "ok";
	case APP_FETCH_ECONNECT:
		return "upstream connection failed";
	case APP_FETCH_ERESET:
		return "upstream connection reset";
	case APP_FETCH_EPROTO:
		return "upstream sent a malformed answer";
	case APP_FETCH_ETIMEOUT:
		return "upstream timed out";
	case APP_FETCH_ESTATUS:
		return "upstream answered with an error status";
	case APP_FETCH_ENOMEM:
		return "out of resources";
	case APP_FETCH_EINTERNAL:
		break;
	}
	return "internal error";
}

int app_query_param(const struct app_request *req, const char *name, struct app_str *out)
{
	/* An absent query may be {NULL, 0}: NULL + 0 is undefined behaviour. */
	if (!req->query.base || req->query.len == 0)
		return -1;
	size_t nlen = strlen(name);
	const char *p = req->query.base, *end = p + req->query.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
			out->base = eq ? eq + 1 : stop;
			out->len = (size_t)(stop - out->base);
			return 0;
		}
		p = amp ? amp + 1 : end;
	}
	return -1;
}

unsigned long app_query_ulong(const struct app_request *req, const char *name, unsigned long def)
{
	struct app_str v;
	if (app_query_param(req, name, &v) != 0 || v.len == 0 || v.len > 18)
		return def;
	unsigned long n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.base[i] < '0' || v.base[i] > '9')
			return def;
		n = n * 10 + (unsigned long)(v.base[i] - '0');
	}
	return n;
}
