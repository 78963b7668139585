/* test_options.c — the servers' shared command line (servers/runtime/options.c):
 * every flag in both spellings, every kind of error with its exact message,
 * and --help generated from the same table with every default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "app.h"
#include "options.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "coro-server"

/* ---- capturing stdout / stderr ---- */

struct capture {
	int fd, saved;
	FILE *tmp;
	char text[16384];
};

static void capture_begin(struct capture *c, FILE *stream)
{
	fflush(stream);
	c->fd = fileno(stream);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(c->fd);
	dup2(fileno(c->tmp), c->fd);
}

static const char *capture_end(struct capture *c, FILE *stream)
{
	fflush(stream);
	dup2(c->saved, c->fd);
	close(c->saved);
	rewind(c->tmp);
	size_t n = fread(c->text, 1, sizeof(c->text) - 1, c->tmp);
	c->text[n] = '\0';
	fclose(c->tmp);
	return c->text;
}

/* Parse a NULL-terminated argument list (argv[0] is added). */
static int parse_extra(struct server_opts *o, const struct opt_def *extra, const char *first,
                       va_list ap)
{
	char *argv[32] = {PROG};
	int argc = 1;
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	argv[argc] = NULL;
	return server_opts_parse(o, extra, argc, argv, PROG, "1.2.3");
}

static int parse(struct server_opts *o, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	server_opts_default(o);
	int rc = parse_extra(o, NULL, first, ap);
	va_end(ap);
	return rc;
}

/* Parse expecting failure; returns what went to stderr. */
static const char *parse_err(struct capture *c, const char *first, ...)
{
	struct server_opts o;
	server_opts_default(&o);
	va_list ap;
	va_start(ap, first);
	capture_begin(c, stderr);
	int rc = parse_extra(&o, NULL, first, ap);
	const char *err = capture_end(c, stderr);
	va_end(ap);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "Try '" PROG " --help'.\n"));
	return err;
}

/* ---- tests ---- */

static void test_defaults(void **state)
{
	(void)state;
	struct server_opts o;
	assert_int_equal(parse(&o, NULL), 0);
	assert_string_equal(o.listen, "127.0.0.1:8080");
	assert_int_equal(o.workers, 0);
	assert_string_equal(o.app, "hello");
	assert_string_equal(o.upstream, "http://127.0.0.1:9000/");
	assert_int_equal(o.graceful_timeout, 30);
	assert_false(o.cpu_affinity);
	assert_int_equal(o.keepalive_timeout, 5);
	assert_int_equal(o.upstream_timeout_ms, 10000);
	assert_int_equal(o.max_body, 1024 * 1024);
	assert_int_equal(o.backlog, 4096);
	assert_false(o.quiet);
	assert_int_equal(o.h2_max_streams, 100);
	assert_null(o.stats_path);
	assert_false(o.send_at_once);
}

static void check_all_set(const struct server_opts *o)
{
	assert_string_equal(o->listen, "[::1]:8081");
	assert_int_equal(o->workers, 4);
	assert_string_equal(o->app, "proxy-async");
	assert_string_equal(o->upstream, "http://127.0.0.1:9001/x?size=10");
	assert_int_equal(o->graceful_timeout, 3);
	assert_true(o->cpu_affinity);
	assert_int_equal(o->keepalive_timeout, 7);
	assert_int_equal(o->upstream_timeout_ms, 1500);
	assert_int_equal(o->max_body, 2048);
	assert_int_equal(o->backlog, 128);
	assert_true(o->quiet);
	assert_int_equal(o->h2_max_streams, 250);
	assert_string_equal(o->stats_path, "/_stats");
	assert_true(o->send_at_once);
}

static void test_every_flag_separate_value(void **state)
{
	(void)state;
	struct server_opts o;
	assert_int_equal(parse(&o, "--listen", "[::1]:8081", "--workers", "4", "--app",
	                       "proxy-async", "--upstream", "http://127.0.0.1:9001/x?size=10",
	                       "--graceful-timeout", "3", "--cpu-affinity", "--keepalive-timeout",
	                       "7", "--upstream-timeout", "1500", "--max-body", "2048", "--backlog",
	                       "128", "--quiet", "--h2-max-streams", "250", "--stats-path",
	                       "/_stats", "--send-at-once", NULL),
	                 0);
	check_all_set(&o);
}

static void test_every_flag_equals(void **state)
{
	(void)state;
	struct server_opts o;
	assert_int_equal(parse(&o, "--listen=[::1]:8081", "--workers=4", "--app=proxy-async",
	                       "--upstream=http://127.0.0.1:9001/x?size=10", "--graceful-timeout=3",
	                       "--cpu-affinity", "--keepalive-timeout=7", "--upstream-timeout=1500",
	                       "--max-body=2048", "--backlog=128", "--quiet",
	                       "--h2-max-streams=250", "--stats-path=/_stats", "--send-at-once",
	                       NULL),
	                 0);
	check_all_set(&o);
}

static void test_last_one_wins(void **state)
{
	(void)state;
	struct server_opts o;
	assert_int_equal(parse(&o, "--workers", "2", "--workers=3", NULL), 0);
	assert_int_equal(o.workers, 3);
}

static void test_bad_number(void **state)
{
	(void)state;
	struct capture c;
	assert_string_equal(parse_err(&c, "--workers", "abc", NULL),
	                    PROG ": --workers: 'abc' is not a number (0..1024)\n"
	                         "Try '" PROG " --help'.\n");
	assert_non_null(strstr(parse_err(&c, "--workers=-1", NULL), "'-1' is not a number"));
	assert_non_null(strstr(parse_err(&c, "--backlog", "12x", NULL), "'12x' is not a number"));
	assert_non_null(strstr(parse_err(&c, "--backlog", "", NULL), "'' is not a number"));
	assert_non_null(strstr(parse_err(&c, "--max-body", " 5", NULL), "is not a number"));
	assert_non_null(strstr(parse_err(&c, "--max-body", "+5", NULL), "is not a number"));
}

static void test_out_of_range(void **state)
{
	(void)state;
	struct capture c;
	assert_string_equal(parse_err(&c, "--workers", "5000", NULL),
	                    PROG ": --workers: '5000' is out of range (0..1024)\n"
	                         "Try '" PROG " --help'.\n");
	assert_non_null(strstr(parse_err(&c, "--backlog=0", NULL),
	                       "--backlog: '0' is out of range (1..65535)"));
	assert_non_null(
	    strstr(parse_err(&c, "--upstream-timeout", "0", NULL), "is out of range (1..3600000)"));
	assert_non_null(strstr(parse_err(&c, "--graceful-timeout", "99999999999999999999", NULL),
	                       "is out of range"));
	assert_string_equal(parse_err(&c, "--h2-max-streams", "0", NULL),
	                    PROG ": --h2-max-streams: '0' is out of range (1..10000)\n"
	                         "Try '" PROG " --help'.\n");
	assert_non_null(strstr(parse_err(&c, "--h2-max-streams=10001", NULL),
	                       "--h2-max-streams: '10001' is out of range (1..10000)"));
}

static void test_unknown_flag(void **state)
{
	(void)state;
	struct capture c;
	assert_string_equal(parse_err(&c, "--nope", NULL),
	                    PROG ": unknown flag '--nope'\nTry '" PROG " --help'.\n");
	assert_non_null(strstr(parse_err(&c, "--nope=3", NULL), "unknown flag '--nope'"));
	assert_non_null(strstr(parse_err(&c, "-x", NULL), "unknown flag '-x'"));
	assert_non_null(strstr(parse_err(&c, "--work", "2", NULL), "unknown flag '--work'"));
	assert_non_null(strstr(parse_err(&c, "stray", NULL), "unexpected argument 'stray'"));
	assert_non_null(
	    strstr(parse_err(&c, "--", "--workers", NULL), "unexpected argument '--workers'"));
}

static void test_missing_and_extra_value(void **state)
{
	(void)state;
	struct capture c;
	assert_string_equal(parse_err(&c, "--workers", NULL),
	                    PROG ": --workers needs a value (N)\nTry '" PROG " --help'.\n");
	assert_non_null(strstr(parse_err(&c, "--quiet=yes", NULL), "--quiet takes no value"));
}

static void test_unknown_app(void **state)
{
	(void)state;
	struct capture c;
	const char *err = parse_err(&c, "--app", "nope", NULL);
	assert_non_null(strstr(err, PROG ": --app: unknown app 'nope' (known: hello, json"));
	/* every registered app is listed */
	for (const struct app *const *a = app_all(); *a; a++)
		assert_non_null(strstr(err, (*a)->name));
}

static void test_listen_addresses(void **state)
{
	(void)state;
	static const char *const good[] = {"127.0.0.1:80", ":8080",       "[::1]:0",
	                                   "[::]:65535",   "localhost:1", "0.0.0.0:9"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct server_opts o;
		assert_int_equal(parse(&o, "--listen", good[i], NULL), 0);
		assert_string_equal(o.listen, good[i]);
	}
	static const char *const bad[] = {"foo",       "1.2.3.4", "127.0.0.1:", ":65536",
	                                  "[::1]80",   "[zz]:80", "::1:80",     "a b:80",
	                                  "host:http", ":123456", "[::1]:-1",   ""};
	struct capture c;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = parse_err(&c, "--listen", bad[i], NULL);
		char want[128];
		snprintf(want, sizeof(want), PROG ": --listen: '%s' is not an address", bad[i]);
		assert_non_null(strstr(err, want));
	}
}

static void test_bad_upstream(void **state)
{
	(void)state;
	struct capture c;
	assert_non_null(strstr(parse_err(&c, "--upstream", "127.0.0.1:9000", NULL),
	                       "--upstream: '127.0.0.1:9000' is not an http:// or https:// URL"));
	/* issue 19: a port out of range was accepted, and every request got 500 */
	static const struct {
		const char *url, *why;
	} bad[] = {
	    {"http://127.0.0.1:99999/", "has a bad port (expected 1..65535)"},
	    {"http://127.0.0.1:0/", "has a bad port (expected 1..65535)"},
	    {"http://h:port/", "has a bad port (expected 1..65535)"},
	    {"http://:80/", "has no host"},
	    {"https://a b/", "is not a URL libcurl can fetch"},
	    {"ftp://h/", "is not an http:// or https:// URL"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[160];
		snprintf(want, sizeof(want), "--upstream: '%s' %s\n", bad[i].url, bad[i].why);
		const char *err = parse_err(&c, "--upstream", bad[i].url, NULL);
		if (!strstr(err, want))
			fail_msg("%s: got %s", bad[i].url, err);
	}
	struct server_opts o;
	static const char *const good[] = {"http://127.0.0.1:1/", "https://[::1]:65535/x?y=1",
	                                   "http://example.com/"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(parse(&o, "--upstream", good[i], NULL), 0);
}

static void test_tls_flags_go_together(void **state)
{
	(void)state;
	struct capture c;
	assert_non_null(strstr(parse_err(&c, "--tls-cert", "c.pem", NULL),
	                       "--tls-cert and --tls-key go together"));
	assert_non_null(strstr(parse_err(&c, "--tls-key", "k.pem", NULL),
	                       "--tls-cert and --tls-key go together"));
	struct server_opts o;
	assert_int_equal(parse(&o, "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL), 0);
	assert_string_equal(o.tls_cert, "c.pem");
	assert_non_null(strstr(parse_err(&c, "--unix", "", NULL), "--unix: '' is not a socket path"));
	assert_int_equal(parse(&o, "--unix", "/tmp/x.sock", "--upstream-max-body", "4096", NULL), 0);
	assert_string_equal(o.unix_path, "/tmp/x.sock");
	assert_int_equal(o.upstream_max_body, 4096);
}

static void test_bad_stats_path(void **state)
{
	(void)state;
	struct capture c;
	assert_non_null(strstr(parse_err(&c, "--stats-path", "_stats", NULL),
	                       "--stats-path: '_stats' must start with '/'"));
}

static const char *const every_flag[] = {
    "--listen ADDR",
    "--workers N",
    "--app NAME",
    "--upstream URL",
    "--graceful-timeout S",
    "--cpu-affinity",
    "--keepalive-timeout S",
    "--upstream-timeout MS",
    "--max-body BYTES",
    "--backlog N",
    "--quiet",
    "--h2-max-streams N",
    "--stats-path PATH",
    "--upstream-max-body BYTES",
    "--unix PATH",
    "--shared-listener",
    "--tls-cert FILE",
    "--tls-key FILE",
    "--send-at-once",
    "--help",
    "--version",
};

static void test_help_lists_every_flag_with_default(void **state)
{
	(void)state;
	struct server_opts o;
	struct capture c;
	capture_begin(&c, stdout);
	/* --help wins even after other flags, and shows the defaults */
	int rc = parse(&o, "--workers", "9", "--help", NULL);
	const char *out = capture_end(&c, stdout);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "Usage: " PROG " [OPTION]..."));
	for (size_t i = 0; i < sizeof(every_flag) / sizeof(every_flag[0]); i++)
		assert_non_null(strstr(out, every_flag[i]));
	static const char *const defaults[] = {
	    "(default: 127.0.0.1:8080)",
	    "(default: 0)",
	    "(default: hello)",
	    "(default: http://127.0.0.1:9000/)",
	    "(default: 30)",
	    "(default: off)",
	    "(default: 5)",
	    "(default: 10000)",
	    "(default: 1048576)",
	    "(default: 4096)",
	    "(default: 100)",
	    "(default: none)",
	};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		assert_non_null(strstr(out, defaults[i]));
	/* one line per flag: every line with a default names a flag */
	size_t flags_with_default = 0;
	for (const char *p = out; (p = strstr(p, "(default: ")); p++)
		flags_with_default++;
	assert_int_equal(flags_with_default, 19);
	/* the apps, with their summaries */
	for (const struct app *const *a = app_all(); *a; a++)
		assert_non_null(strstr(out, (*a)->name));
	assert_null(strstr(out, "(default: 9)"));
}

static void test_usage_equals_help(void **state)
{
	(void)state;
	struct server_opts o;
	struct capture c;
	capture_begin(&c, stdout);
	assert_int_equal(parse(&o, "-h", NULL), 1);
	char help[16384];
	snprintf(help, sizeof(help), "%s", capture_end(&c, stdout));

	server_opts_default(&o);
	capture_begin(&c, stdout);
	server_opts_usage(stdout, &o, NULL, PROG);
	assert_string_equal(capture_end(&c, stdout), help);
}

static void test_version(void **state)
{
	(void)state;
	struct server_opts o;
	struct capture c;
	capture_begin(&c, stdout);
	int rc = parse(&o, "--version", NULL);
	assert_string_equal(capture_end(&c, stdout), PROG " 1.2.3\n");
	assert_int_equal(rc, 1);
}

static void test_extra_table(void **state)
{
	(void)state;
	int conns = 1000;
	const char *hub = "epoll";
	bool trace = false;
	const struct opt_def extra[] = {
	    {"worker-connections", OPT_INT, &conns, "N", "live coroutines per worker", 1, 100000},
	    {"hub", OPT_STR, &hub, "NAME", "event backend", 0, 0},
	    {"trace", OPT_FLAG, &trace, NULL, "trace switches", 0, 0},
	    {0},
	};
	struct server_opts o;
	server_opts_default(&o);
	char *argv[] = {
	    PROG, "--worker-connections=50", "--hub", "poll", "--trace", "--workers", "2", NULL};
	assert_int_equal(server_opts_parse(&o, extra, 7, argv, PROG, "1"), 0);
	assert_int_equal(conns, 50);
	assert_string_equal(hub, "poll");
	assert_true(trace);
	assert_int_equal(o.workers, 2);

	char *bad[] = {PROG, "--worker-connections", "0", NULL};
	struct capture c;
	capture_begin(&c, stderr);
	assert_int_equal(server_opts_parse(&o, extra, 3, bad, PROG, "1"), -1);
	assert_non_null(strstr(capture_end(&c, stderr),
	                       "--worker-connections: '0' is out of range (1..100000)"));

	conns = 1000;
	capture_begin(&c, stdout);
	server_opts_usage(stdout, &o, extra, PROG);
	const char *out = capture_end(&c, stdout);
	assert_non_null(strstr(out, "--worker-connections N"));
	assert_non_null(strstr(out, "live coroutines per worker (default: 1000)"));
	assert_non_null(strstr(out, "(default: poll)"));
	assert_non_null(strstr(out, "--trace"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_flag_separate_value),
	    cmocka_unit_test(test_every_flag_equals),
	    cmocka_unit_test(test_last_one_wins),
	    cmocka_unit_test(test_bad_number),
	    cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_unknown_flag),
	    cmocka_unit_test(test_missing_and_extra_value),
	    cmocka_unit_test(test_unknown_app),
	    cmocka_unit_test(test_listen_addresses),
	    cmocka_unit_test(test_bad_upstream),
	    cmocka_unit_test(test_tls_flags_go_together),
	    cmocka_unit_test(test_bad_stats_path),
	    cmocka_unit_test(test_help_lists_every_flag_with_default),
	    cmocka_unit_test(test_usage_equals_help),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_extra_table),
	};
	return cmocka_run_group_tests_name("runtime options", tests, NULL, NULL);
}
