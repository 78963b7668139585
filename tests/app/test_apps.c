/* test_apps.c — every app of servers/app/apps/ through the worker test double
 * (fake_worker.h): the answers, upstream failures, fanout's ordering and
 * failure handling. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fake_worker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define UPSTREAM "http://127.0.0.1:1/up"

static const struct app *must_find(const char *name)
{
	const struct app *a = app_find(name);
	assert_non_null(a);
	return a;
}

/* Run a GET of app name with query (may be NULL); delivers nothing. */
static void run_get(struct fake_req *f, const char *name, const char *query)
{
	struct app_request req = fake_request("GET", "/", query, NULL, 0);
	fake_run(f, must_find(name), &req);
}

static void assert_answer(const struct fake_req *f, int status, const char *ct, const char *body)
{
	assert_int_equal(f->responds, 1);
	assert_int_equal(f->status, status);
	if (ct)
		assert_string_equal(f->content_type, ct);
	if (body) {
		assert_int_equal(f->len, strlen(body));
		assert_string_equal(f->body, body);
	}
}

/* ---- hello, json, echo ---- */

static void test_hello(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_get(&f, "hello", NULL);
	assert_answer(&f, 200, "text/plain", "Hello, World!");
	assert_int_equal(f.fetches + f.async_fetches + f.timers, 0);
	fake_finish(&f);
}

static void test_json(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_get(&f, "json", NULL);
	assert_answer(&f, 200, "application/json", "{\"message\":\"Hello, World!\"}");
	fake_finish(&f);
}

static void test_echo(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	static const char body[] = "some\0binary\r\nbody";
	struct app_request req = fake_request("POST", "/", NULL, body, sizeof(body) - 1);
	fake_run(&f, must_find("echo"), &req);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.content_type, "application/octet-stream");
	assert_int_equal(f.len, sizeof(body) - 1);
	assert_memory_equal(f.body, body, sizeof(body) - 1);
	fake_finish(&f);

	/* no body: an empty 200 */
	fake_init(&f, UPSTREAM);
	req = fake_request("GET", "/", NULL, NULL, 0);
	fake_run(&f, must_find("echo"), &req);
	assert_answer(&f, 200, NULL, "");
	fake_finish(&f);
}

/* ---- sleep, cpu ---- */

static void check_sleep(const char *query, unsigned want_ms)
{
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_get(&f, "sleep", query);
	assert_int_equal(f.slept_ms, want_ms);
	char body[64];
	snprintf(body, sizeof(body), "slept %u ms\n", want_ms);
	assert_answer(&f, 200, "text/plain", body);
	assert_int_equal(f.timers, 0); /* blocking style, not a timer */
	fake_finish(&f);
}

static void test_sleep(void **state)
{
	(void)state;
	check_sleep(NULL, 10);
	check_sleep("ms=25", 25);
	check_sleep("ms=0", 0);
	check_sleep("x=1&ms=7", 7);
	check_sleep("ms=60000", 60000);
	check_sleep("ms=60001", 60000);          /* capped */
	check_sleep("ms=99999999999999", 60000); /* capped */
	check_sleep("ms=abc", 10);               /* bad: default */
	check_sleep("ms=-5", 10);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_cpu(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	double t0 = now_ms();
	run_get(&f, "cpu", "us=3000");
	double took = now_ms() - t0;
	assert_true(took >= 3.0);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.content_type, "text/plain");
	assert_memory_equal(f.body, "busy 3000 us ", strlen("busy 3000 us "));
	fake_finish(&f);

	fake_init(&f, UPSTREAM);
	run_get(&f, "cpu", NULL);
	assert_memory_equal(f.body, "busy 100 us ", strlen("busy 100 us "));
	fake_finish(&f);

	fake_init(&f, UPSTREAM);
	run_get(&f, "cpu", "us=0");
	assert_memory_equal(f.body, "busy 0 us ", strlen("busy 0 us "));
	fake_finish(&f);

	fake_init(&f, UPSTREAM);
	run_get(&f, "cpu", "us=1x");
	assert_memory_equal(f.body, "busy 100 us ", strlen("busy 100 us "));
	fake_finish(&f);
}

/* ---- proxy (blocking style) ---- */

static void test_proxy_ok(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "the upstream body");
	run_get(&f, "proxy", NULL);
	assert_int_equal(f.fetches, 1);
	assert_int_equal(f.async_fetches, 0);
	assert_string_equal(f.last_url, UPSTREAM);
	assert_answer(&f, 200, "text/plain", "the upstream body");
	fake_finish(&f);

	/* an empty upstream body */
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, NULL);
	run_get(&f, "proxy", NULL);
	assert_answer(&f, 200, "text/plain", "");
	fake_finish(&f);
}

struct failure_case {
	enum app_fetch_error err;
	int status;
};

static const struct failure_case failures[] = {
    {APP_FETCH_ECONNECT, 502}, {APP_FETCH_ERESET, 502}, {APP_FETCH_EPROTO, 502},
    {APP_FETCH_ETIMEOUT, 504}, {APP_FETCH_ENOMEM, 503}, {APP_FETCH_EINTERNAL, 500},
};
#define NFAILURES (sizeof(failures) / sizeof(failures[0]))

static void test_proxy_failures(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFAILURES; i++) {
		struct fake_req f;
		fake_init(&f, UPSTREAM);
		fake_script(&f, failures[i].err, 0, NULL);
		run_get(&f, "proxy", NULL);
		assert_answer(&f, failures[i].status, "text/plain",
		              app_fetch_strerror(failures[i].err));
		fake_finish(&f);
	}
}

/* Issue 19: the upstream's status is passed on with its body, as nginx
 * does (it was 200 for a 404 or 302, 502 for a 5xx). */
static void test_proxy_passes_status(void **state)
{
	(void)state;
	static const int statuses[] = {201, 204, 302, 404, 500, 503, 599};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		for (int explicit = 0; explicit < 2; explicit++) {
			struct fake_req f;
			fake_init(&f, UPSTREAM);
			fake_script(&f, APP_FETCH_OK, statuses[i], "upstream page");
			run_get(&f, explicit ? "proxy-async" : "proxy", NULL);
			fake_deliver_all(&f);
			assert_answer(&f, statuses[i], "text/plain", "upstream page");
			fake_finish(&f);
		}
	}
}

/* ---- proxy-async (explicit style) ---- */

static void test_proxy_async_ok(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "async body");
	run_get(&f, "proxy-async", NULL);
	/* nothing answered until the callback runs */
	assert_int_equal(f.responds, 0);
	assert_int_equal(f.npending, 1);
	assert_int_equal(f.fetches, 0);
	assert_string_equal(f.pending[0].url, UPSTREAM);
	assert_false(app_ctx_finished(&f.ctx));
	fake_deliver_all(&f);
	assert_answer(&f, 200, "text/plain", "async body");
	fake_finish(&f);
}

static void test_proxy_async_failures(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFAILURES; i++) {
		struct fake_req f;
		fake_init(&f, UPSTREAM);
		fake_script(&f, failures[i].err, 0, NULL);
		run_get(&f, "proxy-async", NULL);
		assert_int_equal(f.responds, 0);
		fake_deliver_all(&f);
		assert_answer(&f, failures[i].status, "text/plain",
		              app_fetch_strerror(failures[i].err));
		fake_finish(&f);
	}
}

static void test_proxy_async_cannot_start(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	f.fail_start_at = 0;
	f.fail_start_err = APP_FETCH_ENOMEM;
	run_get(&f, "proxy-async", NULL);
	/* answered at once, nothing pending */
	assert_int_equal(f.npending, 0);
	assert_answer(&f, 503, "text/plain", app_fetch_strerror(APP_FETCH_ENOMEM));
	fake_finish(&f);

	fake_init(&f, UPSTREAM);
	f.fail_start_at = 0;
	f.fail_start_err = APP_FETCH_ECONNECT;
	run_get(&f, "proxy-async", NULL);
	assert_answer(&f, 502, "text/plain", app_fetch_strerror(APP_FETCH_ECONNECT));
	fake_finish(&f);
}

/* ---- fanout ---- */

static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static void test_fanout_default_and_order(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	for (int i = 0; i < 4; i++)
		fake_script(&f, APP_FETCH_OK, 200, digits[i]);
	run_get(&f, "fanout", NULL);
	assert_int_equal(f.async_fetches, 4); /* default n=4, all in parallel */
	assert_int_equal(f.npending, 4);
	assert_int_equal(f.responds, 0);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(f.pending[i].url, UPSTREAM);
	/* arrivals in reverse: the answer is still in request order */
	fake_deliver(&f, 3);
	fake_deliver(&f, 2);
	fake_deliver(&f, 1);
	assert_int_equal(f.responds, 0); /* not before all are in */
	fake_deliver(&f, 0);
	assert_answer(&f, 200, "text/plain", "0123");
	fake_finish(&f);
}

static void test_fanout_shuffled(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	for (int i = 0; i < 10; i++)
		fake_script(&f, APP_FETCH_OK, 200, digits[i]);
	run_get(&f, "fanout", "n=10");
	assert_int_equal(f.npending, 10);
	/* deliver 7, 2, 9, 0, ... (index into what is left) */
	static const size_t picks[] = {7, 2, 7, 0, 3, 1, 2, 0, 1, 0};
	for (size_t k = 0; k < 10; k++) {
		assert_int_equal(f.responds, 0);
		fake_deliver(&f, picks[k]);
	}
	assert_answer(&f, 200, "text/plain", "0123456789");
	fake_finish(&f);
}

static void check_fanout_n(const char *query, int want)
{
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	run_get(&f, "fanout", query);
	assert_int_equal(f.async_fetches, want);
	fake_deliver_all(&f);
	assert_int_equal(f.status, 200);
	assert_int_equal(f.len, 2 * (size_t)want); /* "up" each */
	fake_finish(&f);
}

static void test_fanout_n_bounds(void **state)
{
	(void)state;
	check_fanout_n("n=1", 1);
	check_fanout_n("n=0", 1);
	check_fanout_n("n=64", 64);
	check_fanout_n("n=65", 64);
	check_fanout_n("n=100000", 64);
	check_fanout_n("n=bad", 4);
}

/* One answer cannot pass on n statuses: a part that is not 2xx fails it. */
static void test_fanout_non_2xx(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "a");
	fake_script(&f, APP_FETCH_OK, 404, "missing");
	run_get(&f, "fanout", "n=2");
	fake_deliver_all(&f);
	assert_answer(&f, 502, "text/plain", app_fetch_strerror(APP_FETCH_ESTATUS));
	fake_finish(&f);
}

static void test_fanout_one_failure(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "a");
	fake_script(&f, APP_FETCH_OK, 200, "b");
	fake_script(&f, APP_FETCH_ETIMEOUT, 0, NULL);
	fake_script(&f, APP_FETCH_OK, 200, "d");
	run_get(&f, "fanout", NULL);
	fake_deliver(&f, 2);             /* the failure arrives first */
	assert_int_equal(f.responds, 0); /* still waits for the others */
	fake_deliver(&f, 0);
	fake_deliver(&f, 0);
	assert_int_equal(f.responds, 0);
	fake_deliver(&f, 0);
	assert_answer(&f, 504, "text/plain", app_fetch_strerror(APP_FETCH_ETIMEOUT));
	fake_finish(&f);
}

static void test_fanout_first_failure_wins(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	fake_script(&f, APP_FETCH_OK, 200, "a");
	fake_script(&f, APP_FETCH_ETIMEOUT, 0, NULL);
	fake_script(&f, APP_FETCH_OK, 200, "c");
	fake_script(&f, APP_FETCH_ECONNECT, 0, NULL);
	run_get(&f, "fanout", NULL);
	fake_deliver(&f, 3); /* ECONNECT arrives first */
	fake_deliver_all(&f);
	assert_answer(&f, 502, "text/plain", app_fetch_strerror(APP_FETCH_ECONNECT));
	fake_finish(&f);
}

static void test_fanout_start_failure(void **state)
{
	(void)state;
	/* the third fetch cannot start: the two started ones are still
	 * awaited, then the failure is the answer */
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	f.fail_start_at = 2;
	f.fail_start_err = APP_FETCH_ENOMEM;
	run_get(&f, "fanout", "n=5");
	assert_int_equal(f.async_fetches, 3); /* stopped at the failure */
	assert_int_equal(f.npending, 2);
	assert_int_equal(f.responds, 0);
	fake_deliver(&f, 1);
	assert_int_equal(f.responds, 0);
	fake_deliver(&f, 0);
	assert_answer(&f, 503, "text/plain", app_fetch_strerror(APP_FETCH_ENOMEM));
	fake_finish(&f);

	/* the very first cannot start: answered at once */
	fake_init(&f, UPSTREAM);
	f.fail_start_at = 0;
	f.fail_start_err = APP_FETCH_ECONNECT;
	run_get(&f, "fanout", NULL);
	assert_int_equal(f.npending, 0);
	assert_answer(&f, 502, "text/plain", app_fetch_strerror(APP_FETCH_ECONNECT));
	fake_finish(&f);
}

static void test_fanout_all_fail(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	for (int i = 0; i < 3; i++)
		fake_script(&f, APP_FETCH_ERESET, 0, NULL);
	run_get(&f, "fanout", "n=3");
	fake_deliver_all(&f);
	assert_answer(&f, 502, "text/plain", app_fetch_strerror(APP_FETCH_ERESET));
	fake_finish(&f);
}

static void test_fanout_empty_bodies(void **state)
{
	(void)state;
	struct fake_req f;
	fake_init(&f, UPSTREAM);
	for (int i = 0; i < 3; i++)
		fake_script(&f, APP_FETCH_OK, 200, NULL);
	run_get(&f, "fanout", "n=3");
	fake_deliver_all(&f);
	assert_answer(&f, 200, "text/plain", "");
	fake_finish(&f);
}

/* Every app answers exactly once whatever the order of events, and leaves
 * nothing behind (the ASan build checks the leaks). */
static void test_every_app_answers_once(void **state)
{
	(void)state;
	for (const struct app *const *a = app_all(); *a; a++) {
		struct fake_req f;
		fake_init(&f, UPSTREAM);
		const char *q = strcmp((*a)->name, "cpu") == 0 ? "us=10" : "ms=1";
		struct app_request req = fake_request("POST", "/", q, "b", 1);
		fake_run(&f, *a, &req);
		fake_deliver_all(&f);
		assert_int_equal(f.responds, 1);
		assert_true(f.status == 200);
		fake_finish(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_echo),
	    cmocka_unit_test(test_sleep),
	    cmocka_unit_test(test_cpu),
	    cmocka_unit_test(test_proxy_ok),
	    cmocka_unit_test(test_proxy_failures),
	    cmocka_unit_test(test_proxy_passes_status),
	    cmocka_unit_test(test_proxy_async_ok),
	    cmocka_unit_test(test_proxy_async_failures),
	    cmocka_unit_test(test_proxy_async_cannot_start),
	    cmocka_unit_test(test_fanout_default_and_order),
	    cmocka_unit_test(test_fanout_shuffled),
	    cmocka_unit_test(test_fanout_n_bounds),
	    cmocka_unit_test(test_fanout_non_2xx),
	    cmocka_unit_test(test_fanout_one_failure),
	    cmocka_unit_test(test_fanout_first_failure_wins),
	    cmocka_unit_test(test_fanout_start_failure),
	    cmocka_unit_test(test_fanout_all_fail),
	    cmocka_unit_test(test_fanout_empty_bodies),
	    cmocka_unit_test(test_every_app_answers_once),
	};
	return cmocka_run_group_tests_name("apps", tests, NULL, NULL);
}
