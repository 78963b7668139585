/* test_fetch.c — the upstream fetcher (servers/runtime/fetch.c) against the
 * real upstream stub: it starts build/servers/upstream/upstream on a free
 * port and drives the fetcher on a libevent loop. Every failure the upstream
 * can provoke must come back as the right enum app_fetch_error (hence the
 * right 502/504), connections must be reused, callbacks must come from the
 * loop only, and cancelled transfers must neither call back nor leak.
 *
 * Usage: test_fetch PATH-TO-UPSTREAM (meson passes it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATTERN "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#define BODY_SIZE 1000

static const char *upstream_path;
static pid_t upstream_pid;
static char base_url[64];

/* A port nothing listens on right now: bind :0, read it, close. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	close(fd);
	return ntohs(sa.sin_port);
}

static int start_upstream(void **state)
{
	(void)state;
	int port = free_port();
	if (port <= 0)
		return -1;
	char listen[32], size[16];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(size, sizeof(size), "%d", BODY_SIZE);
	int pfd[2];
	if (pipe(pfd) != 0)
		return -1;
	upstream_pid = fork();
	if (upstream_pid < 0)
		return -1;
	if (upstream_pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execl(upstream_path, upstream_path, "--listen", listen, "--delay-ms", "0", "--size",
		      size, "--quiet", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/* Readiness: the line comes only once the socket listens. */
	FILE *f = fdopen(pfd[0], "r");
	char line[128] = "";
	bool ok = f && fgets(line, sizeof(line), f) && strstr(line, "upstream: listening on ");
	if (f)
		fclose(f);
	if (!ok) {
		fprintf(stderr, "upstream did not start (%s): '%s'\n", upstream_path, line);
		return -1;
	}
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", port);
	return 0;
}

static int stop_upstream(void **state)
{
	(void)state;
	int status = 0;
	if (upstream_pid > 0) {
		kill(upstream_pid, SIGTERM);
		waitpid(upstream_pid, &status, 0);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void url(char *out, size_t cap, const char *path)
{
	snprintf(out, cap, "%s%s", base_url, path);
}

/* ---- a loop per test ---- */

struct result {
	bool done;
	int calls;
	struct app_fetch_result res;
	size_t len;
	bool body_ok;
};

static bool inside_get; /* set around fetcher_get: no callback may run then */

static void on_done(void *arg, struct app_fetch_result *res, void *body)
{
	struct result *r = arg;
	assert_false(inside_get);
	assert_ptr_equal(res->body, body);
	r->calls++;
	r->done = true;
	r->res = *res;
	r->len = res->len;
	r->body_ok = true;
	for (size_t i = 0; i < res->len; i++)
		if (((const char *)body)[i] != PATTERN[i % 64])
			r->body_ok = false;
	r->res.body = NULL;
	free(body);
}

static int get(struct fetcher *f, const char *u, struct result *r, struct fetch_req **req)
{
	inside_get = true;
	int rc = fetcher_get(f, u, on_done, r, req);
	inside_get = false;
	return rc;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

static unsigned loop_turns; /* loop iterations run_until made: a busy loop shows */

/* Run the loop until every result is done or ms pass. */
static void run_until(struct event_base *base, struct result *rs, size_t n, unsigned ms)
{
	bool expired = false;
	struct event *deadline = evtimer_new(base, on_deadline, &expired);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(deadline, &tv);
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; i < n; i++)
			left += !rs[i].done;
		if (left == 0 || expired)
			break;
		event_base_loop(base, EVLOOP_ONCE);
		loop_turns++;
	}
	event_free(deadline);
}

/* Run the loop for ms regardless. */
static void run_for(struct event_base *base, unsigned ms)
{
	run_until(base, &(struct result){0}, 1, ms);
}

struct env {
	struct event_base *base;
	struct fetcher *f;
};

static int env_setup_opts(void **state, const struct fetch_opts *o)
{
	struct env *e = calloc(1, sizeof(*e));
	e->base = event_base_new();
	e->f = fetcher_new(e->base, o);
	*state = e;
	return e->base && e->f ? 0 : -1;
}

static int env_setup(void **state)
{
	return env_setup_opts(state, NULL);
}

static int env_setup_short(void **state)
{
	struct fetch_opts o = fetch_opts_default();
	o.timeout_ms = 300;
	o.max_body_bytes = 4000;
	return env_setup_opts(state, &o);
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	assert_int_equal(fetcher_inflight(e->f), 0);
	fetcher_free(e->f);
	event_base_free(e->base);
	free(e);
	return 0;
}

/* The upstream's counters, through the blocking fetcher. */
static void upstream_stats(struct fetch_sync *s, unsigned long *conns, unsigned long *reqs)
{
	char u[96];
	url(u, sizeof(u), "/_stats");
	struct app_fetch_result res;
	void *body;
	fetch_sync_get(s, u, &res, &body);
	assert_int_equal(res.error, APP_FETCH_OK);
	assert_non_null(body);
	assert_int_equal(sscanf(body, "connections %lu\nrequests %lu", conns, reqs), 2);
	free(body);
}

/* ---- the fetcher on the loop ---- */

static void test_ok(void **state)
{
	struct env *e = *state;
	char u[96];
	url(u, sizeof(u), "/");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	assert_false(r.done); /* never from inside fetcher_get */
	assert_int_equal(fetcher_inflight(e->f), 1);
	run_until(e->base, &r, 1, 5000);
	assert_true(r.done);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.res.status, 200);
	assert_int_equal(app_fetch_status(&r.res), 200);
	assert_int_equal(r.len, BODY_SIZE);
	assert_true(r.body_ok);
	assert_int_equal(fetcher_inflight(e->f), 0);

	url(u, sizeof(u), "/?size=300000");
	r = (struct result){0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.len, 300000);
	assert_true(r.body_ok);

	url(u, sizeof(u), "/?size=0");
	r = (struct result){0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.len, 0);
}

static void test_elapsed(void **state)
{
	struct env *e = *state;
	char u[96];
	url(u, sizeof(u), "/?delay=100");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_true(r.res.elapsed_ms >= 95.0);
	assert_true(r.res.elapsed_ms < 3000.0);
}

#define WAVE 100

/* 100 at once all answered; a second wave reuses the first one's connections. */
static void test_concurrent_and_reuse(void **state)
{
	struct env *e = *state;
	struct fetch_sync *s = fetch_sync_new(NULL);
	assert_non_null(s);
	unsigned long c0, r0, c1, r1, c2, r2;
	upstream_stats(s, &c0, &r0);

	char u[96];
	url(u, sizeof(u), "/?delay=50");
	static struct result rs[WAVE];
	for (int wave = 0; wave < 2; wave++) {
		memset(rs, 0, sizeof(rs));
		for (int i = 0; i < WAVE; i++)
			assert_int_equal(get(e->f, u, &rs[i], NULL), 0);
		assert_int_equal(fetcher_inflight(e->f), WAVE);
		run_until(e->base, rs, WAVE, 10000);
		for (int i = 0; i < WAVE; i++) {
			assert_true(rs[i].done);
			assert_int_equal(rs[i].calls, 1);
			assert_int_equal(rs[i].res.error, APP_FETCH_OK);
			assert_int_equal(rs[i].len, BODY_SIZE);
			assert_true(rs[i].body_ok);
		}
		if (wave == 0)
			upstream_stats(s, &c1, &r1);
	}
	upstream_stats(s, &c2, &r2);
	/* the stats fetch itself: one connection, kept by the sync handle */
	assert_true(c1 - c0 <= WAVE + 1);
	assert_int_equal(r1 - r0, WAVE + 1);
	assert_int_equal(c2 - c1, 0); /* the second wave opened nothing */
	assert_int_equal(r2 - r1, WAVE + 1);
	fetch_sync_free(s);
}

static int env_setup_two_conns(void **state)
{
	struct fetch_opts o = fetch_opts_default();
	o.max_host_connections = 2;
	return env_setup_opts(state, &o);
}

/* With a per-host cap, transfers queue for the capped connections. */
static void test_max_host_connections(void **state)
{
	struct env *e = *state;
	struct fetch_sync *s = fetch_sync_new(NULL);
	unsigned long c0, r0, c1, r1;
	upstream_stats(s, &c0, &r0);
	char u[96];
	url(u, sizeof(u), "/?delay=20");
	struct result rs[10] = {0};
	for (int i = 0; i < 10; i++)
		assert_int_equal(get(e->f, u, &rs[i], NULL), 0);
	run_until(e->base, rs, 10, 10000);
	for (int i = 0; i < 10; i++)
		assert_int_equal(rs[i].res.error, APP_FETCH_OK);
	upstream_stats(s, &c1, &r1);
	assert_true(c1 - c0 <= 2);
	assert_int_equal(r1 - r0, 11);
	fetch_sync_free(s);
}

static void test_refused(void **state)
{
	struct env *e = *state;
	char u[96];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", free_port());
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_ECONNECT);
	assert_int_equal(app_fetch_status(&r.res), 502);
	assert_int_equal(r.res.status, 0);
	assert_int_equal(r.len, 0);
}

static void test_status_5xx(void **state)
{
	struct env *e = *state;
	char u[96];
	url(u, sizeof(u), "/?status=503");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	/* an answer, passed on as it is (issue 19: nginx does; it was 502) */
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.res.status, 503);
	assert_int_equal(app_fetch_status(&r.res), 503);
	assert_true(r.len > 0);

	/* a 4xx is an answer, not a failure: the app decides */
	url(u, sizeof(u), "/?status=404");
	r = (struct result){0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.res.status, 404);
	assert_int_equal(app_fetch_status(&r.res), 404);
}

static void test_timeout(void **state)
{
	struct env *e = *state; /* timeout_ms = 300 */
	char u[96];
	url(u, sizeof(u), "/?stall=1");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_ETIMEOUT);
	assert_int_equal(app_fetch_status(&r.res), 504);
	assert_true(r.res.elapsed_ms >= 250.0 && r.res.elapsed_ms < 3000.0);
}

static void test_reset_mid_body(void **state)
{
	struct env *e = *state;
	char u[96];
	url(u, sizeof(u), "/?reset=1");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_true(r.res.error == APP_FETCH_ERESET || r.res.error == APP_FETCH_EPROTO);
	assert_int_equal(app_fetch_status(&r.res), 502);
	assert_int_equal(r.len, 0);
}

static void test_closed_without_answer(void **state)
{
	struct env *e = *state;
	char u[96];
	url(u, sizeof(u), "/?close=1");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_ERESET);
	assert_int_equal(app_fetch_status(&r.res), 502);
}

static void test_body_too_big(void **state)
{
	struct env *e = *state; /* max_body_bytes = 4000 */
	char u[96];
	url(u, sizeof(u), "/?size=4001");
	struct result r = {0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_EPROTO);
	assert_int_equal(app_fetch_status(&r.res), 502);

	url(u, sizeof(u), "/?size=4000");
	r = (struct result){0};
	assert_int_equal(get(e->f, u, &r, NULL), 0);
	run_until(e->base, &r, 1, 5000);
	assert_int_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(r.len, 4000);
}

static void test_bad_url_reported_from_loop(void **state)
{
	struct env *e = *state;
	struct result r = {0};
	assert_int_equal(get(e->f, "gopher://127.0.0.1:1/", &r, NULL), 0);
	assert_false(r.done);
	run_until(e->base, &r, 1, 5000);
	assert_true(r.done);
	assert_int_not_equal(r.res.error, APP_FETCH_OK);
	assert_int_equal(app_fetch_status(&r.res), 502);
}

static void test_cancel(void **state)
{
	struct env *e = *state;
	char u[96];
	struct result slow = {0}, stall = {0}, fine = {0};
	struct fetch_req *r1, *r2;
	url(u, sizeof(u), "/?stall=1");
	assert_int_equal(get(e->f, u, &stall, &r2), 0);
	url(u, sizeof(u), "/?delay=100");
	assert_int_equal(get(e->f, u, &slow, &r1), 0);
	assert_int_equal(get(e->f, u, &fine, NULL), 0); /* also ?delay=100 */
	assert_int_equal(fetcher_inflight(e->f), 3);
	run_for(e->base, 20); /* let them connect and send */
	fetch_cancel(r1);
	fetch_cancel(r2);
	fetch_cancel(r2); /* a second cancel (before any reuse) is harmless */
	assert_int_equal(fetcher_inflight(e->f), 1);
	run_for(e->base, 300);
	assert_int_equal(slow.calls, 0);
	assert_int_equal(stall.calls, 0);
	assert_int_equal(fine.calls, 1);
	assert_int_equal(fine.res.error, APP_FETCH_OK);

	/* cancelled at once, before the loop ever ran */
	url(u, sizeof(u), "/");
	struct result never = {0};
	struct fetch_req *r3;
	assert_int_equal(get(e->f, u, &never, &r3), 0);
	fetch_cancel(r3);
	run_for(e->base, 100);
	assert_int_equal(never.calls, 0);
	assert_int_equal(fetcher_inflight(e->f), 0);
}

/* A recycled transfer handle pointed at another URL fetches that URL: the
 * fetcher keeps each handle's parsed URL and must notice the change. */
static void test_url_changes_on_reused_handle(void **state)
{
	struct env *e = *state;
	static const char *paths[] = {"/?size=10", "/?size=20", "/?size=20", "/?size=10", "/"};
	static const size_t lens[] = {10, 20, 20, 10, BODY_SIZE};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char u[96];
		url(u, sizeof(u), paths[i]);
		struct result r = {0};
		assert_int_equal(get(e->f, u, &r, NULL), 0);
		run_until(e->base, &r, 1, 5000);
		assert_int_equal(r.res.error, APP_FETCH_OK);
		assert_int_equal(r.len, lens[i]);
		assert_true(r.body_ok);
	}
	/* and a bad one after good ones, then a good one again */
	struct result bad = {0}, good = {0};
	assert_int_equal(get(e->f, "http://[::1", &bad, NULL), 0);
	run_until(e->base, &bad, 1, 5000);
	assert_true(bad.done);
	assert_int_not_equal(bad.res.error, APP_FETCH_OK);
	char u[96];
	url(u, sizeof(u), "/?size=10");
	assert_int_equal(get(e->f, u, &good, NULL), 0);
	run_until(e->base, &good, 1, 5000);
	assert_int_equal(good.res.error, APP_FETCH_OK);
	assert_int_equal(good.len, 10);
}

/* A tiny upstream in a child process: answers one keep-alive request per
 * connection, closes each connection 50 ms after answering, and exits with
 * the number of requests it served. */
static pid_t start_closing_upstream(int n_conns, int *port)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	*port = ntohs(sa.sin_port);
	pid_t pid = fork();
	if (pid != 0) {
		close(lfd);
		return pid;
	}
	alarm(10); /* gone by itself should the test fail half-way */
	int served = 0;
	for (int i = 0; i < n_conns; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(100);
		char req[2048];
		size_t got = 0;
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		if (!strstr(req, "\r\n\r\n"))
			_exit(101);
		static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nABC";
		if (write(c, ans, sizeof(ans) - 1) != (ssize_t)(sizeof(ans) - 1))
			_exit(102);
		served++;
		usleep(50 * 1000);
		close(c);
	}
	_exit(served);
}

/* An idle kept-alive connection that the upstream closes: the fetcher still
 * listens to it (it stays registered between transfers) and must neither
 * spin on it nor hand it to the next transfer, which goes out on a new
 * connection. */
static void test_idle_connection_closed_by_upstream(void **state)
{
	struct env *e = *state;
	int port = 0;
	pid_t pid = start_closing_upstream(2, &port);
	assert_true(pid > 0);
	char u[96];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
	for (int i = 0; i < 2; i++) {
		struct result r = {0};
		assert_int_equal(get(e->f, u, &r, NULL), 0);
		run_until(e->base, &r, 1, 5000);
		assert_int_equal(r.res.error, APP_FETCH_OK);
		assert_int_equal(r.len, 3);
		assert_true(r.body_ok);
		loop_turns = 0;
		run_for(e->base, 150);        /* the upstream closes it meanwhile */
		assert_true(loop_turns < 20); /* an EOF watched forever would spin */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
}

/* An upstream named rather than numbered goes through libcurl's threaded
 * resolver, whose socket (reported to the fetcher, then closed by libcurl
 * itself) gives its fd number back to the connection opened right after.
 * Whatever the name resolves to, every transfer must end, and numbered
 * transfers beside it must not suffer. */
static void test_named_upstream(void **state)
{
	struct env *e = *state;
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	const char *port = strrchr(base_url, ':');
	char named[400], numbered[96];
	snprintf(named, sizeof(named), "http://%s%s/?size=10", host, port);
	url(numbered, sizeof(numbered), "/?delay=5");
	for (int i = 0; i < 3; i++) {
		struct result rs[3] = {0};
		assert_int_equal(get(e->f, named, &rs[0], NULL), 0);
		assert_int_equal(get(e->f, numbered, &rs[1], NULL), 0);
		assert_int_equal(get(e->f, numbered, &rs[2], NULL), 0);
		run_until(e->base, rs, 3, 8000);
		assert_true(rs[0].done);
		assert_true(rs[0].res.error == APP_FETCH_OK ||
		            rs[0].res.error == APP_FETCH_ECONNECT);
		for (int j = 1; j < 3; j++) {
			assert_true(rs[j].done);
			assert_int_equal(rs[j].res.error, APP_FETCH_OK);
			assert_int_equal(rs[j].len, BODY_SIZE);
		}
	}
}

/* A callback that starts the next fetch: chains work from the loop. */
struct chain {
	struct fetcher *f;
	char url[96];
	int left;
	struct result last;
};

static void on_chain(void *arg, struct app_fetch_result *res, void *body)
{
	struct chain *c = arg;
	free(body);
	c->last.res = *res;
	if (--c->left > 0 && res->error == APP_FETCH_OK)
		assert_int_equal(fetcher_get(c->f, c->url, on_chain, c, NULL), 0);
	else
		c->last.done = true;
}

static void test_chain_from_callback(void **state)
{
	struct env *e = *state;
	struct chain c = {.f = e->f, .left = 20};
	url(c.url, sizeof(c.url), "/");
	assert_int_equal(fetcher_get(e->f, c.url, on_chain, &c, NULL), 0);
	run_until(e->base, &c.last, 1, 5000);
	assert_true(c.last.done);
	assert_int_equal(c.left, 0);
	assert_int_equal(c.last.res.error, APP_FETCH_OK);
}

/* Freeing the fetcher with transfers in flight: no callback, no leak. */
static void test_free_with_inflight(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct fetcher *f = fetcher_new(base, NULL);
	assert_non_null(f);
	char u[96];
	struct result rs[5] = {0};
	url(u, sizeof(u), "/?stall=1");
	for (int i = 0; i < 4; i++)
		assert_int_equal(get(f, u, &rs[i], NULL), 0);
	assert_int_equal(get(f, "gopher://x/", &rs[4], NULL), 0);
	run_for(base, 50);
	fetcher_free(f);
	run_for(base, 50);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rs[i].calls, 0);
	event_base_free(base);
}

/* ---- the blocking variant ---- */

static void sync_get(struct fetch_sync *s, const char *path, struct app_fetch_result *res,
                     void **body)
{
	char u[96];
	url(u, sizeof(u), path);
	fetch_sync_get(s, u, res, body);
	assert_ptr_equal(res->body, *body);
}

static void test_sync(void **state)
{
	(void)state;
	struct fetch_opts o = fetch_opts_default();
	o.timeout_ms = 300;
	struct fetch_sync *s = fetch_sync_new(&o);
	assert_non_null(s);
	struct app_fetch_result res;
	void *body;

	unsigned long c0, r0, c1, r1;
	upstream_stats(s, &c0, &r0);
	for (int i = 0; i < 3; i++) {
		sync_get(s, "/", &res, &body);
		assert_int_equal(res.error, APP_FETCH_OK);
		assert_int_equal(res.status, 200);
		assert_int_equal(res.len, BODY_SIZE);
		assert_memory_equal(body, PATTERN, 64);
		free(body);
	}
	upstream_stats(s, &c1, &r1);
	assert_int_equal(c1 - c0, 0); /* one kept connection for all of them */
	assert_int_equal(r1 - r0, 4);

	sync_get(s, "/?status=502", &res, &body);
	assert_int_equal(res.error, APP_FETCH_OK);
	assert_int_equal(res.status, 502);
	assert_int_equal(app_fetch_status(&res), 502);
	free(body);

	sync_get(s, "/?stall=1", &res, &body);
	assert_int_equal(res.error, APP_FETCH_ETIMEOUT);
	assert_int_equal(app_fetch_status(&res), 504);
	assert_null(body);

	sync_get(s, "/?reset=1", &res, &body);
	assert_true(res.error == APP_FETCH_ERESET || res.error == APP_FETCH_EPROTO);
	assert_null(body);

	sync_get(s, "/?close=1", &res, &body);
	assert_int_equal(res.error, APP_FETCH_ERESET);
	assert_null(body);

	sync_get(s, "/?size=0", &res, &body);
	assert_int_equal(res.error, APP_FETCH_OK);
	assert_int_equal(res.len, 0);
	assert_null(body);

	char u[96];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", free_port());
	fetch_sync_get(s, u, &res, &body);
	assert_int_equal(res.error, APP_FETCH_ECONNECT);
	assert_int_equal(app_fetch_status(&res), 502);

	/* still good after all the failures */
	sync_get(s, "/", &res, &body);
	assert_int_equal(res.error, APP_FETCH_OK);
	free(body);
	fetch_sync_free(s);
}

int main(int argc, char **argv)
{
	upstream_path = argc > 1 ? argv[1] : getenv("COROBENCH_UPSTREAM");
	if (!upstream_path) {
		fprintf(stderr, "usage: %s PATH-TO-UPSTREAM\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (fetch_global_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ok, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_elapsed, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_and_reuse, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_max_host_connections, env_setup_two_conns,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_refused, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_status_5xx, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, env_setup_short, env_teardown),
	    cmocka_unit_test_setup_teardown(test_reset_mid_body, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_closed_without_answer, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_body_too_big, env_setup_short, env_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_url_reported_from_loop, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_chain_from_callback, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_url_changes_on_reused_handle, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_idle_connection_closed_by_upstream, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_named_upstream, env_setup, env_teardown),
	    cmocka_unit_test(test_free_with_inflight),
	    cmocka_unit_test(test_sync),
	};
	int failed =
	    cmocka_run_group_tests_name("runtime fetch", tests, start_upstream, stop_upstream);
	curl_global_cleanup();
	return failed;
}
