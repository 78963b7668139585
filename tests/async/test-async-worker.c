/* test-async-worker.c — the async worker's connection state machine, driven
 * over socketpairs with a test app: pipelined answers stay in order behind a
 * waiting request, --async caps the requests in flight, a client that leaves
 * while its request waits cancels the wait (ASan checks nothing leaks),
 * malformed input gets 400 and a close, HEAD gets no body, a graceful stop
 * finishes the request in flight with "Connection: close", and an explicit
 * call that finds no memory gets its request a 503 while the worker lives on
 * (allocation failure injected: this executable links with
 * -Wl,--wrap=malloc, so the worker core's own malloc calls come through
 * __wrap_malloc below), and a loop turn's answers leave together at its
 * end unless --send-at-once (the worker's send() and recv() are wrapped
 * too, and logged). */
#include "async_worker.h"

#include "fetch.h"
#include "options.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- allocation failure, injected: the next fail_mallocs calls of malloc
 * from the statically linked code (the worker core, the codecs, this file)
 * return NULL; failed_mallocs counts them. */

static unsigned fail_mallocs, failed_mallocs;

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size)
{
	if (fail_mallocs) {
		fail_mallocs--;
		failed_mallocs++;
		return NULL;
	}
	return __real_malloc(size);
}

/* ---- the worker's send() and recv(), logged while io_log_on: 'r' or 's'
 * and the descriptor, in the order they were called. */

static bool io_log_on;
static char io_ops[64];
static int io_fds[64];
static unsigned io_n;

static void io_note(char op, int fd)
{
	if (io_log_on && io_n < sizeof(io_ops)) {
		io_ops[io_n] = op;
		io_fds[io_n++] = fd;
	}
}

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	io_note('s', fd);
	return __real_send(fd, buf, len, flags);
}

ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
	io_note('r', fd);
	return __real_recv(fd, buf, len, flags);
}

/* ---- the test app: /slow?ms=N answers "slow" after an explicit timer,
 * /chain?ms=N waits twice, /forget answers nothing, /nomem-sleep and
 * /nomem-proxy make their explicit call (app_sleep_async, and the real
 * proxy-async app's app_fetch_async) with the worker's next allocation
 * failing, anything else "fast". */

static unsigned max_seen_inflight;
static struct core *cur_worker;

static void slow_done(struct app_ctx *ctx, void *arg)
{
	(void)arg;
	app_respond(ctx, 200, NULL, "slow", 4);
}

static void chain_second(struct app_ctx *ctx, void *arg)
{
	app_sleep_async(ctx, (unsigned)(size_t)arg, slow_done, NULL);
}

static bool path_is(const struct app_request *req, const char *p)
{
	size_t n = strlen(p);
	return req->path.len == n && memcmp(req->path.base, p, n) == 0;
}

static void test_handle(struct app_ctx *ctx, const struct app_request *req)
{
	unsigned ms = (unsigned)app_query_ulong(req, "ms", 20);
	if (cur_worker && cur_worker->inflight > max_seen_inflight)
		max_seen_inflight = cur_worker->inflight;
	if (path_is(req, "/slow"))
		app_sleep_async(ctx, ms, slow_done, NULL);
	else if (path_is(req, "/chain"))
		app_sleep_async(ctx, ms, chain_second, (void *)(size_t)ms);
	else if (path_is(req, "/forget"))
		return;
	else if (path_is(req, "/nomem-sleep")) {
		fail_mallocs = 1;
		app_sleep_async(ctx, ms, slow_done, NULL); /* slow_done never runs */
		fail_mallocs = 0;
	} else if (path_is(req, "/nomem-proxy")) {
		fail_mallocs = 1;
		app_find("proxy-async")->handle(ctx, req);
		fail_mallocs = 0;
	} else
		app_respond(ctx, 200, NULL, "fast", 4);
}

static const struct app test_app = {.name = "test", .summary = "", .handle = test_handle};

/* ---- harness ---- */

struct rig {
	struct server_opts opts;
	struct event_base *base;
	struct core *w;
};

static void rig_init_opts(struct rig *r, unsigned max_inflight, bool send_at_once)
{
	server_opts_default(&r->opts);
	r->opts.send_at_once = send_at_once;
	r->base = event_base_new();
	assert_non_null(r->base);
	struct async_config cfg = {.max_inflight = max_inflight};
	r->w = core_new(r->base, &async_worker_class, &r->opts, &test_app, &cfg, -1);
	assert_non_null(r->w);
	cur_worker = r->w;
	max_seen_inflight = 0;
}

static void rig_init(struct rig *r, unsigned max_inflight)
{
	rig_init_opts(r, max_inflight, false);
}

static void rig_free(struct rig *r)
{
	cur_worker = NULL;
	core_free(r->w);
	event_base_free(r->base);
}

/* A connected pair: the worker owns one end, the test returns the other. */
static int rig_client(struct rig *r)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(core_adopt(r->w, sv[0]), 0);
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	return sv[1];
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void send_all(int fd, const char *s)
{
	size_t len = strlen(s);
	assert_int_equal(write(fd, s, len), (ssize_t)len);
}

/* Run the loop and collect what fd receives until `until` occurs `count`
 * times, EOF (returns 1), or timeout_ms (fails). */
struct got {
	char data[65536];
	size_t len;
	bool eof;
};

static int count_of(const struct got *g, const char *needle)
{
	int n = 0;
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= g->len; i++)
		if (memcmp(g->data + i, needle, nl) == 0)
			n++;
	return n;
}

static void pump(struct rig *r, int fd, struct got *g, const char *until, int count,
                 double timeout_ms)
{
	double end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		for (;;) {
			if (fd < 0 || g->eof)
				break;
			ssize_t n = read(fd, g->data + g->len, sizeof(g->data) - 1 - g->len);
			if (n > 0) {
				g->len += (size_t)n;
				g->data[g->len] = 0;
				continue;
			}
			if (n == 0)
				g->eof = true;
			break;
		}
		if (until && count_of(g, until) >= count)
			return;
		if (!until && g->eof)
			return;
		usleep(500);
	}
	fail_msg("timed out waiting for %s x%d; got %zu bytes: %.*s", until ? until : "EOF", count,
	         g->len, (int)g->len, g->data);
}

/* Run the loop for ms milliseconds. */
static void spin(struct rig *r, double ms)
{
	double end = now_ms() + ms;
	while (now_ms() < end) {
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		usleep(500);
	}
}

/* ---- tests ---- */

static void test_keepalive_sequential(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int fd = rig_client(&r);
	static struct got g;
	memset(&g, 0, sizeof(g));
	for (int i = 1; i <= 50; i++) {
		send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
		pump(&r, fd, &g, "fast", i, 2000);
	}
	assert_int_equal(count_of(&g, "HTTP/1.1 200 OK"), 50);
	assert_int_equal(r.w->nconns, 1);
	assert_int_equal(r.w->inflight, 0);
	close(fd);
	spin(&r, 20);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r);
}

static void test_pipeline_in_order(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int fd = rig_client(&r);
	static struct got g;
	memset(&g, 0, sizeof(g));
	/* A slow request, then fast ones and a chained slow one, in one write. */
	send_all(fd, "GET /slow?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n"
	             "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
	             "GET /chain?ms=10 HTTP/1.1\r\nHost: t\r\n\r\n"
	             "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(&r, fd, &g, "HTTP/1.1 200", 4, 3000);
	const char *p1 = strstr(g.data, "slow");
	const char *p2 = p1 ? strstr(p1 + 4, "fast") : NULL;
	const char *p3 = p2 ? strstr(p2 + 4, "slow") : NULL;
	const char *p4 = p3 ? strstr(p3 + 4, "fast") : NULL;
	assert_non_null(p4);
	assert_int_equal(r.w->inflight, 0);
	close(fd);
	spin(&r, 20);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r);
}

static void test_async_cap(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 2);
	int fds[5];
	static struct got g[5];
	double t0 = now_ms();
	for (int i = 0; i < 5; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		fds[i] = rig_client(&r);
		send_all(fds[i], "GET /slow?ms=40 HTTP/1.1\r\nHost: t\r\n\r\n");
	}
	for (int i = 0; i < 5; i++)
		pump(&r, fds[i], &g[i], "slow", 1, 3000);
	double took = now_ms() - t0;
	/* 5 requests, 2 at a time, 40 ms each: three rounds. */
	assert_true(max_seen_inflight <= 2);
	assert_true(took >= 115.0);
	assert_int_equal(r.w->inflight, 0);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	spin(&r, 20);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r);
}

static void test_client_leaves_while_waiting(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 1);
	int fd = rig_client(&r);
	int fd2 = rig_client(&r);
	send_all(fd, "GET /chain?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
	/* The second one queues for the single slot. */
	send_all(fd2, "GET /slow?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
	spin(&r, 30);
	assert_int_equal(r.w->inflight, 1);
	close(fd);
	close(fd2);
	spin(&r, 50);
	assert_int_equal(r.w->nconns, 0);
	assert_int_equal(r.w->inflight, 0);
	rig_free(&r); /* ASan: the cancelled timers and contexts are gone */
}

static void test_malformed_400(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int fd = rig_client(&r);
	static struct got g;
	memset(&g, 0, sizeof(g));
	send_all(fd, "BLAH\x01 / HTTP/1.1\r\n\r\n");
	pump(&r, fd, &g, NULL, 0, 3000);
	assert_non_null(strstr(g.data, "HTTP/1.1 400"));
	assert_non_null(strstr(g.data, "Connection: close"));
	close(fd);
	spin(&r, 10);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r);
}

static void test_head_and_forgotten(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int fd = rig_client(&r);
	static struct got g;
	memset(&g, 0, sizeof(g));
	send_all(fd, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /forget HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(&r, fd, &g, "HTTP/1.1 ", 2, 2000);
	pump(&r, fd, &g, "app finished without a response", 1, 2000);
	assert_non_null(strstr(g.data, "Content-Length: 4\r\n"));
	assert_null(strstr(g.data, "fast"));
	assert_non_null(strstr(g.data, "HTTP/1.1 500"));
	close(fd);
	spin(&r, 10);
	rig_free(&r);
}

static void test_graceful_stop(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int busy = rig_client(&r);
	int idle = rig_client(&r);
	static struct got g, gi;
	memset(&g, 0, sizeof(g));
	memset(&gi, 0, sizeof(gi));
	send_all(busy, "GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n");
	spin(&r, 10);
	assert_int_equal(r.w->inflight, 1);
	core_stop(r.w);
	assert_int_equal(r.w->nconns, 1); /* the idle one went at once */
	pump(&r, idle, &gi, NULL, 0, 1000);
	assert_int_equal(event_base_dispatch(r.base), 0); /* breaks when the last conn ends */
	pump(&r, busy, &g, NULL, 0, 1000);
	assert_non_null(strstr(g.data, "slow"));
	assert_non_null(strstr(g.data, "Connection: close"));
	assert_int_equal(r.w->nconns, 0);
	close(busy);
	close(idle);
	rig_free(&r);
}

/* The one out-of-resources policy (servers/core/core_calls.c): an explicit
 * call whose record cannot be had gets its request 503, on both calls, and
 * the connection and the worker go on serving; nothing is left in flight. */
/* Three clients' requests are all readable when the loop turn begins. By
 * default (core_cork) the worker reads all three before it sends the first
 * answer, and sends each once; with --send-at-once each answer goes right
 * after its own request's read. Either way every client gets its answer,
 * and the connections live on. */
static void turn_case(bool send_at_once)
{
	struct rig r;
	rig_init_opts(&r, 10, send_at_once);
	enum { N = 3 };
	int fd[N];
	for (int i = 0; i < N; i++)
		fd[i] = rig_client(&r);
	spin(&r, 5); /* the connections are set up, nothing to read yet */
	for (int i = 0; i < N; i++)
		send_all(fd[i], "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	io_n = 0;
	io_log_on = true;
	event_base_loop(r.base, EVLOOP_ONCE);
	io_log_on = false;
	unsigned reads = 0, sends = 0, first_send = io_n, last_read = 0;
	for (unsigned i = 0; i < io_n; i++) {
		if (io_ops[i] == 'r') {
			reads++;
			last_read = i;
		} else {
			sends++;
			if (first_send == io_n)
				first_send = i;
		}
	}
	assert_int_equal(sends, N);
	assert_true(reads >= N);
	if (send_at_once) {
		/* the first answer leaves before the turn's last read */
		assert_true(first_send < last_read);
		/* ...right after its own request was read */
		assert_int_equal(io_ops[first_send - 1], 'r');
		assert_int_equal(io_fds[first_send - 1], io_fds[first_send]);
	} else {
		for (unsigned i = first_send; i < io_n; i++)
			assert_int_equal(io_ops[i], 's'); /* no read after the first send */
	}
	for (int i = 0; i < N; i++) {
		static struct got g;
		memset(&g, 0, sizeof(g));
		pump(&r, fd[i], &g, "fast", 1, 2000);
		assert_int_equal(count_of(&g, "HTTP/1.1 200 OK"), 1);
	}
	assert_int_equal(r.w->nconns, N);
	assert_int_equal(r.w->inflight, 0);
	for (int i = 0; i < N; i++)
		close(fd[i]);
	spin(&r, 20);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r);
}

static void test_answers_at_turn_end(void **state)
{
	(void)state;
	turn_case(false);
}

static void test_send_at_once(void **state)
{
	(void)state;
	turn_case(true);
}

static void test_out_of_resources_503(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 10);
	int fd = rig_client(&r);
	static struct got g;
	memset(&g, 0, sizeof(g));
	failed_mallocs = 0;
	send_all(fd, "GET /nomem-sleep?ms=5 HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(&r, fd, &g, "out of resources\n", 1, 2000);
	assert_int_equal(failed_mallocs, 1);
	assert_non_null(strstr(g.data, "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_null(strstr(g.data, "Connection: close"));
	assert_int_equal(r.w->inflight, 0);
	/* The timer it could not arm never answers later: nothing but the 503. */
	spin(&r, 30);
	assert_int_equal(count_of(&g, "HTTP/1.1 "), 1);
	assert_null(strstr(g.data, "slow"));

	/* The proxy-async app's fetch: APP_FETCH_ENOMEM, which it answers 503. */
	send_all(fd, "GET /nomem-proxy HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(&r, fd, &g, "out of resources", 2, 2000);
	assert_int_equal(count_of(&g, "HTTP/1.1 503 Service Unavailable\r\n"), 2);
	assert_int_equal(failed_mallocs, 2);
	assert_int_equal(r.w->inflight, 0);

	/* The worker lives on: the same connection, a call that can allocate. */
	send_all(fd, "GET /slow?ms=5 HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(&r, fd, &g, "slow", 1, 2000);
	assert_int_equal(count_of(&g, "HTTP/1.1 200 OK"), 1);
	assert_int_equal(r.w->inflight, 0);
	assert_int_equal(r.w->nconns, 1);
	close(fd);
	spin(&r, 20);
	assert_int_equal(r.w->nconns, 0);
	rig_free(&r); /* ASan: nothing of the failed calls is left behind */
}

int main(void)
{
	if (fetch_global_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keepalive_sequential),
	    cmocka_unit_test(test_pipeline_in_order),
	    cmocka_unit_test(test_async_cap),
	    cmocka_unit_test(test_client_leaves_while_waiting),
	    cmocka_unit_test(test_malformed_400),
	    cmocka_unit_test(test_head_and_forgotten),
	    cmocka_unit_test(test_graceful_stop),
	    cmocka_unit_test(test_out_of_resources_503),
	    cmocka_unit_test(test_answers_at_turn_end),
	    cmocka_unit_test(test_send_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
