/* fake_worker.c — the worker test double of fake_worker.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fake_req *fake_of(struct app_ctx *ctx)
{
	return (struct fake_req *)ctx;
}

static struct fake_outcome next_outcome(struct fake_req *f)
{
	if (f->next_script < f->nscript)
		return f->script[f->next_script++];
	return (struct fake_outcome){APP_FETCH_OK, 200, "up"};
}

/* Turn an outcome into a result whose body is a malloc'd block. */
static char *make_result(const struct fake_outcome *o, struct app_fetch_result *res)
{
	char *body = NULL;
	size_t len = 0;
	if (o->body) {
		len = strlen(o->body);
		body = malloc(len + 1);
		assert_non_null(body);
		memcpy(body, o->body, len + 1);
	}
	*res = (struct app_fetch_result){
	    .error = o->error,
	    .status = o->status ? o->status : (o->error == APP_FETCH_OK ? 200 : 0),
	    .body = body,
	    .len = len,
	    .elapsed_ms = 1.0,
	};
	return body;
}

static int fake_fetch(struct app_ctx *ctx, const char *url, struct app_fetch_result *out)
{
	struct fake_req *f = fake_of(ctx);
	f->fetches++;
	snprintf(f->last_url, sizeof(f->last_url), "%s", url);
	struct fake_outcome o = next_outcome(f);
	/* the body is owned by the request, as a worker does it */
	app_ctx_own(ctx, make_result(&o, out));
	return (int)out->error;
}

static void fake_sleep_ms(struct app_ctx *ctx, unsigned ms)
{
	fake_of(ctx)->slept_ms += ms;
}

static int fake_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg)
{
	struct fake_req *f = fake_of(ctx);
	int n = f->async_fetches++;
	snprintf(f->last_url, sizeof(f->last_url), "%s", url);
	if (n == f->fail_start_at)
		return (int)f->fail_start_err;
	assert_true(f->npending < FAKE_MAX_PENDING);
	struct fake_pending *p = &f->pending[f->npending++];
	*p = (struct fake_pending){.fetch_cb = cb, .arg = arg, .outcome = next_outcome(f)};
	snprintf(p->url, sizeof(p->url), "%s", url);
	return 0;
}

static void fake_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg)
{
	struct fake_req *f = fake_of(ctx);
	f->timers++;
	f->last_timer_ms = ms;
	assert_true(f->npending < FAKE_MAX_PENDING);
	f->pending[f->npending++] =
	    (struct fake_pending){.is_timer = true, .timer_cb = cb, .arg = arg, .ms = ms};
}

static void fake_respond(struct app_ctx *ctx, int status, const char *content_type,
                         const void *body, size_t len)
{
	struct fake_req *f = fake_of(ctx);
	f->responds++;
	assert_int_equal(f->responds, 1); /* app.c guarantees at most once */
	f->status = status;
	assert_non_null(content_type);
	snprintf(f->content_type, sizeof(f->content_type), "%s", content_type);
	/* body is only valid during the call: copy it */
	f->body = malloc(len + 1);
	assert_non_null(f->body);
	if (len)
		memcpy(f->body, body, len);
	f->body[len] = '\0';
	f->len = len;
}

static const struct app_ctx_ops fake_ops = {
    .fetch = fake_fetch,
    .sleep_ms = fake_sleep_ms,
    .fetch_async = fake_fetch_async,
    .sleep_async = fake_sleep_async,
    .respond = fake_respond,
};

void fake_init(struct fake_req *f, const char *upstream)
{
	memset(f, 0, sizeof(*f));
	f->fail_start_at = -1;
	app_ctx_init(&f->ctx, &fake_ops, upstream);
}

void fake_script(struct fake_req *f, enum app_fetch_error err, int status, const char *body)
{
	assert_true(f->nscript < FAKE_MAX_SCRIPT);
	f->script[f->nscript++] = (struct fake_outcome){err, status, body};
}

void fake_run(struct fake_req *f, const struct app *app, const struct app_request *req)
{
	app_ctx_run(&f->ctx, app, req);
	/* the bookkeeping agrees with what the fake saw queued */
	assert_int_equal(f->ctx.pending, f->npending);
}

void fake_deliver(struct fake_req *f, size_t i)
{
	assert_true(i < f->npending);
	struct fake_pending p = f->pending[i];
	memmove(&f->pending[i], &f->pending[i + 1], (f->npending - i - 1) * sizeof(p));
	f->npending--;
	if (p.is_timer) {
		app_ctx_deliver_timer(&f->ctx, p.timer_cb, p.arg);
	} else {
		struct app_fetch_result res;
		char *body = make_result(&p.outcome, &res);
		app_ctx_deliver_fetch(&f->ctx, p.fetch_cb, p.arg, &res, body);
	}
	assert_int_equal(f->ctx.pending, f->npending);
}

void fake_deliver_all(struct fake_req *f)
{
	while (f->npending > 0)
		fake_deliver(f, 0);
}

void fake_finish(struct fake_req *f)
{
	assert_int_equal(f->npending, 0);
	assert_int_equal(f->responds, 1);
	assert_true(app_ctx_finished(&f->ctx));
	app_ctx_release(&f->ctx);
	free(f->body);
	f->body = NULL;
}

struct app_request fake_request(const char *method, const char *path, const char *query,
                                const char *body, size_t body_len)
{
	return (struct app_request){
	    .method = {method, strlen(method)},
	    .path = {path, strlen(path)},
	    .query = {query, query ? strlen(query) : 0},
	    .body = {body, body_len},
	    .http_major = 1,
	    .http_minor = 1,
	};
}
