/* test_app_host.c — the bookkeeping every worker shares (servers/app/app.c):
 * the automatic 500, exactly one response, pending callbacks, timers and
 * chains, request-lifetime memory; the query helpers; the registry; the
 * error-to-status mapping. Test apps defined here drive it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_worker.h"

#include <stdlib.h>
#include <string.h>

#define UPSTREAM "http://127.0.0.1:1/up"

static void run_app(struct fake_req *f, const struct app *a, const char *query)
{
	struct app_request req = fake_request("GET", "/", query, NULL, 0);
	fake_run(f, a, &req);
}

/* ---- the automatic 500 ---- */

static void forgetful_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)ctx;
	(void)req;
}

static const struct app forgetful = {.name = "forgetful", .handle = forgetful_handle};

static void test_500_when_handler_forgets(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_app(&f, &forgetful, NULL);
	assert_int_equal(f.responds, 1);
	assert_int_equal(f.status, 500);
	assert_string_equal(f.content_type, "text/plain");
	assert_string_equal(f.body, "app finished without a response\n");
	fake_finish(&f);
}

static void forget_in_cb(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg)
{
	(void)ctx;
	(void)res;
	(void)arg;
}

static void forget_async_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	assert_int_equal(app_fetch_async(ctx, app_upstream(ctx), forget_in_cb, NULL), 0);
	assert_int_equal(app_fetch_async(ctx, app_upstream(ctx), forget_in_cb, NULL), 0);
}

static const struct app forget_async = {.name = "forget-async", .handle = forget_async_handle};

static void test_500_when_callback_forgets(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_app(&f, &forget_async, NULL);
	assert_int_equal(f.responds, 0); /* two pending: wait */
	fake_deliver(&f, 0);
	assert_int_equal(f.responds, 0); /* one still pending */
	fake_deliver(&f, 0);
	assert_int_equal(f.responds, 1); /* the last one forgot too */
	assert_int_equal(f.status, 500);
	fake_finish(&f);
}

/* ---- exactly once ---- */

static void twice_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	app_respond(ctx, 201, "text/x-first", "first", 5);
	app_respond(ctx, 500, NULL, "second", 6); /* ignored */
	assert_true(ctx->responded);
}

static const struct app twice = {.name = "twice", .handle = twice_handle};

static void test_second_respond_ignored(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_app(&f, &twice, NULL);
	assert_int_equal(f.responds, 1);
	assert_int_equal(f.status, 201);
	assert_string_equal(f.content_type, "text/x-first");
	assert_string_equal(f.body, "first");
	fake_finish(&f);
}

static void late_cb(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg)
{
	(void)res;
	int *calls = arg;
	(*calls)++;
	app_respond(ctx, 502, NULL, "late", 4); /* already answered: ignored */
}

static int late_calls;

static void early_answer_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	assert_int_equal(app_fetch_async(ctx, app_upstream(ctx), late_cb, &late_calls), 0);
	app_respond(ctx, 200, NULL, "early", 5);
}

static const struct app early_answer = {.name = "early", .handle = early_answer_handle};

static void test_answer_before_callback(void **state)
{
	(void)state;
	/* an app may answer first and let a fetch finish later: the request
	 * is only finished once the callback ran */
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	late_calls = 0;
	run_app(&f, &early_answer, NULL);
	assert_int_equal(f.responds, 1);
	assert_false(app_ctx_finished(&f.ctx));
	fake_deliver_all(&f);
	assert_int_equal(late_calls, 1);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body, "early");
	fake_finish(&f);
}

/* ---- timers and chains ---- */

struct chain {
	int steps;
	unsigned order[8];
	int n;
};

static void chain_fetched(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg);

static void chain_timer(struct app_ctx *ctx, void *arg)
{
	struct chain *c = arg;
	c->order[c->n++] = 1;
	/* from a timer callback: another async call */
	assert_int_equal(app_fetch_async(ctx, app_upstream(ctx), chain_fetched, c), 0);
}

static void chain_fetched(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg)
{
	struct chain *c = arg;
	c->order[c->n++] = 2;
	assert_int_equal(res->error, APP_FETCH_OK);
	/* the body is owned by the request: copy it into request memory */
	char *out = app_alloc(ctx, res->len + 6);
	assert_non_null(out);
	memcpy(out, "done:", 5);
	memcpy(out + 5, res->body, res->len);
	app_respond(ctx, 200, NULL, out, res->len + 5);
}

static void chain_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	struct chain *c = app_alloc(ctx, sizeof(*c));
	assert_non_null(c);
	memset(c, 0, sizeof(*c));
	c->order[c->n++] = 0;
	app_sleep_async(ctx, 0, chain_timer, c);
	/* never called from inside the call, even for 0 ms */
	assert_int_equal(c->n, 1);
}

static const struct app chain_app = {.name = "chain", .handle = chain_handle};

static void test_timer_then_fetch_chain(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "payload");
	run_app(&f, &chain_app, NULL);
	assert_int_equal(f.timers, 1);
	assert_int_equal(f.last_timer_ms, 0);
	assert_int_equal(f.responds, 0);
	assert_int_equal(f.ctx.pending, 1);
	fake_deliver(&f, 0); /* the timer: starts the fetch */
	assert_int_equal(f.responds, 0);
	assert_int_equal(f.ctx.pending, 1);
	assert_true(f.pending[0].fetch_cb == chain_fetched);
	fake_deliver(&f, 0);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body, "done:payload");
	fake_finish(&f);
}

static void timers_cb(struct app_ctx *ctx, void *arg)
{
	unsigned *left = arg;
	if (--*left == 0)
		app_respond(ctx, 200, NULL, "timers", 6);
}

static void timers_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	unsigned *left = app_alloc(ctx, sizeof(*left));
	*left = 3;
	app_sleep_async(ctx, 30, timers_cb, left);
	app_sleep_async(ctx, 10, timers_cb, left);
	app_sleep_async(ctx, 20, timers_cb, left);
}

static const struct app timers_app = {.name = "timers", .handle = timers_handle};

static void test_parallel_timers(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_app(&f, &timers_app, NULL);
	assert_int_equal(f.npending, 3);
	/* fire in deadline order, as a loop would */
	assert_int_equal(f.pending[1].ms, 10);
	fake_deliver(&f, 1);
	assert_int_equal(f.pending[1].ms, 20);
	fake_deliver(&f, 1);
	assert_int_equal(f.responds, 0);
	fake_deliver(&f, 0);
	assert_int_equal(f.status, 200);
	fake_finish(&f);
}

/* ---- request memory ---- */

static void alloc_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	/* many blocks, all freed by app_ctx_release (ASan would see a leak) */
	for (int i = 0; i < 100; i++) {
		char *p = app_alloc(ctx, (size_t)i * 13 + 1);
		assert_non_null(p);
		memset(p, 'x', (size_t)i * 13 + 1);
	}
	/* alignment fit for any type */
	for (int i = 0; i < 8; i++) {
		void *p = app_alloc(ctx, (size_t)i + 1);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
	}
	assert_null(app_alloc(ctx, SIZE_MAX)); /* no overflow into a small block */
	assert_non_null(app_alloc(ctx, 0));
	app_ctx_own(ctx, NULL); /* harmless */
	/* the first owned block needs no node, the next ones do: all freed */
	assert_int_equal(app_ctx_own(ctx, malloc(16)), 0);
	assert_int_equal(app_ctx_own(ctx, malloc(32)), 0);
	assert_int_equal(app_ctx_own(ctx, malloc(48)), 0);
	app_respond(ctx, 200, NULL, "ok", 2);
}

static const struct app alloc_app = {.name = "alloc", .handle = alloc_handle};

static void test_request_memory(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_app(&f, &alloc_app, NULL);
	assert_int_equal(f.status, 200);
	fake_finish(&f);
	assert_null(f.ctx.mem);
	assert_null(f.ctx.owned);
	app_ctx_release(&f.ctx); /* twice is harmless */
}

static void test_release_mid_request(void **state)
{
	(void)state;
	/* the connection died with a fetch pending: the worker cancels the
	 * callback and releases; nothing leaks */
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "blocking body");
	run_app(&f, app_find("proxy"), NULL); /* owns a fetch body */
	free(f.body);
	app_ctx_release(&f.ctx);

	fake_init(&f, UPSTREAM);
	run_app(&f, app_find("fanout"), NULL);
	assert_int_equal(f.npending, 4);
	f.npending = 0; /* cancelled */
	app_ctx_release(&f.ctx);
}

static void test_upstream_and_init(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, NULL);
	assert_non_null(app_upstream(&f.ctx));
	assert_string_equal(app_upstream(&f.ctx), "");
	assert_false(f.ctx.responded);
	assert_int_equal(f.ctx.pending, 0);
	assert_false(app_ctx_finished(&f.ctx));
	fake_init(&f, UPSTREAM);
	assert_string_equal(app_upstream(&f.ctx), UPSTREAM);
}

/* ---- query helpers ---- */

static struct app_request with_query(const char *q)
{
	return fake_request("GET", "/", q, NULL, 0);
}

static void assert_param(const char *query, const char *name, const char *want)
{
	struct app_request req = with_query(query);
	struct app_str v = {"sentinel", 8};
	int rc = app_query_param(&req, name, &v);
	if (!want) {
		assert_int_equal(rc, -1);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(v.len, strlen(want));
	if (v.len)
		assert_memory_equal(v.base, want, v.len);
}

static void test_query_param(void **state)
{
	(void)state;
	assert_param("a=1&b=2", "a", "1");
	assert_param("a=1&b=2", "b", "2");
	assert_param("a=1&b=2", "c", NULL);
	assert_param("", "a", NULL);
	assert_param(NULL, "a", NULL);
	assert_param("aa=1&a=2", "a", "2"); /* whole names only */
	assert_param("a=1", "aa", NULL);
	assert_param("ab=1", "a", NULL);
	assert_param("a=1&a=2", "a", "1"); /* the first one wins */
	assert_param("flag", "flag", "");  /* present, no value */
	assert_param("flag&x=1", "flag", "");
	assert_param("a=", "a", "");
	assert_param("a=&b=2", "b", "2");
	assert_param("&&a=3&", "a", "3");
	assert_param("=5&a=4", "a", "4");
	assert_param("=5", "", "5");
	assert_param("a=b=c", "a", "b=c");
	assert_param("a=%20x", "a", "%20x"); /* no decoding */
	assert_param("x=1&ms=25", "ms", "25");

	/* views are not NUL-terminated: the query ends where its length says */
	static const char buf[] = "ms=123456";
	struct app_request req = fake_request("GET", "/", NULL, NULL, 0);
	req.query = (struct app_str){buf, 5};
	struct app_str v;
	assert_int_equal(app_query_param(&req, "ms", &v), 0);
	assert_int_equal(v.len, 2);
	assert_memory_equal(v.base, "12", 2);
}

static void assert_ulong(const char *query, unsigned long def, unsigned long want)
{
	struct app_request req = with_query(query);
	assert_int_equal(app_query_ulong(&req, "n", def), want);
}

static void test_query_ulong(void **state)
{
	(void)state;
	assert_ulong("n=0", 7, 0);
	assert_ulong("n=42", 7, 42);
	assert_ulong("n=007", 7, 7);
	assert_ulong(NULL, 7, 7);
	assert_ulong("m=3", 7, 7);
	assert_ulong("n", 7, 7);
	assert_ulong("n=", 7, 7);
	assert_ulong("n=abc", 7, 7);
	assert_ulong("n=12x", 7, 7);
	assert_ulong("n=-1", 7, 7);
	assert_ulong("n=+1", 7, 7);
	assert_ulong("n= 1", 7, 7);
	assert_ulong("n=1.5", 7, 7);
	assert_ulong("n=999999999999999999", 7, 999999999999999999ul); /* 18 digits */
	assert_ulong("n=1000000000000000000", 7, 7);                   /* 19: refused */
	assert_ulong("n=99999999999999999999999", 7, 7);               /* no overflow */
	assert_ulong("x=1&n=5&y=2", 7, 5);
	/* a view cut before the terminating NUL */
	static const char buf[] = "n=12345";
	struct app_request req = fake_request("GET", "/", NULL, NULL, 0);
	req.query = (struct app_str){buf, 4};
	assert_int_equal(app_query_ulong(&req, "n", 7), 12);
}

/* ---- registry ---- */

static void test_registry(void **state)
{
	(void)state;
	static const char *const names[] = {"hello", "json",  "echo",        "sleep",
	                                    "cpu",   "proxy", "proxy-async", "fanout"};
	const struct app *const *all = app_all();
	size_t n = 0;
	while (all[n])
		n++;
	assert_int_equal(n, sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < n; i++) {
		/* stable order */
		assert_string_equal(all[i]->name, names[i]);
		assert_ptr_equal(app_find(names[i]), all[i]);
		assert_non_null(all[i]->handle);
		assert_non_null(all[i]->summary);
		assert_true(strlen(all[i]->summary) > 0);
		/* unique names */
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(all[i]->name, all[j]->name);
	}
	assert_ptr_equal(app_all(), all);
	assert_null(app_find("nope"));
	assert_null(app_find(""));
	assert_null(app_find("Hello"));
	assert_null(app_find("proxy-"));
	assert_null(app_find("hell"));

	/* flags say who needs what */
	assert_int_equal(app_find("hello")->flags, 0);
	assert_int_equal(app_find("json")->flags, 0);
	assert_int_equal(app_find("echo")->flags, 0);
	assert_int_equal(app_find("cpu")->flags, 0);
	assert_int_equal(app_find("sleep")->flags, APP_USES_BLOCKING | APP_USES_SLEEP);
	assert_int_equal(app_find("proxy")->flags, APP_USES_BLOCKING | APP_USES_UPSTREAM);
	assert_int_equal(app_find("proxy-async")->flags, APP_USES_UPSTREAM);
	assert_int_equal(app_find("fanout")->flags, APP_USES_UPSTREAM);
}

/* ---- errors to statuses ---- */

static void test_error_mapping(void **state)
{
	(void)state;
	assert_int_equal(app_error_status(APP_FETCH_OK), 200);
	assert_int_equal(app_error_status(APP_FETCH_ECONNECT), 502);
	assert_int_equal(app_error_status(APP_FETCH_ERESET), 502);
	assert_int_equal(app_error_status(APP_FETCH_EPROTO), 502);
	assert_int_equal(app_error_status(APP_FETCH_ESTATUS), 502);
	assert_int_equal(app_error_status(APP_FETCH_ETIMEOUT), 504);
	assert_int_equal(app_error_status(APP_FETCH_ENOMEM), 503);
	assert_int_equal(app_error_status(APP_FETCH_EINTERNAL), 500);
	assert_int_equal(app_error_status((enum app_fetch_error)99), 502);
	struct app_fetch_result r = {.error = APP_FETCH_ETIMEOUT};
	assert_int_equal(app_fetch_status(&r), 504);
	/* an answer: its own status, passed on */
	r = (struct app_fetch_result){.error = APP_FETCH_OK, .status = 200};
	assert_int_equal(app_fetch_status(&r), 200);
	r.status = 404;
	assert_int_equal(app_fetch_status(&r), 404);
	r.status = 503;
	assert_int_equal(app_fetch_status(&r), 503);

	assert_string_equal(app_fetch_strerror(APP_FETCH_OK), "ok");
	assert_string_equal(app_fetch_strerror(APP_FETCH_ETIMEOUT), "upstream timed out");
	assert_string_equal(app_fetch_strerror((enum app_fetch_error)99), "internal error");
	/* every error has its own words */
	for (int a = APP_FETCH_OK; a <= APP_FETCH_EINTERNAL; a++)
		for (int b = APP_FETCH_OK; b < a; b++)
			assert_string_not_equal(app_fetch_strerror((enum app_fetch_error)a),
			                        app_fetch_strerror((enum app_fetch_error)b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_500_when_handler_forgets),
	    cmocka_unit_test(test_500_when_callback_forgets),
	    cmocka_unit_test(test_second_respond_ignored),
	    cmocka_unit_test(test_answer_before_callback),
	    cmocka_unit_test(test_timer_then_fetch_chain),
	    cmocka_unit_test(test_parallel_timers),
	    cmocka_unit_test(test_request_memory),
	    cmocka_unit_test(test_release_mid_request),
	    cmocka_unit_test(test_upstream_and_init),
	    cmocka_unit_test(test_query_param),
	    cmocka_unit_test(test_query_ulong),
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_error_mapping),
	};
	return cmocka_run_group_tests_name("app host", tests, NULL, NULL);
}
