/* test-scenario.c — the scenario parser: a valid file normalizes with its
 * defaults, and every kind of mistake is reported with the file, the field's
 * JSON path and what is wrong. Also feeds it every prefix of a valid file and
 * some garbage (the sanitizer build catches any bad access). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

static const char valid[] =
    "{\"name\":\"t\",\"purpose\":\"p\",\"upstream\":{\"delay_ms\":20},"
    "\"levels\":[1,2,5],\"seconds\":2,"
    "\"cpus\":{\"server\":\"0\",\"loadgen\":\"1-2,4\",\"upstream\":[3,1,3]},"
    "\"expect\":{\"body_upstream\":1},"
    "\"servers\":[{\"kind\":\"coro\",\"app\":\"proxy\"},"
    "{\"kind\":\"async\",\"app\":\"proxy-async\",\"workers\":2},"
    "{\"kind\":\"nginx\",\"expect\":{\"body\":\"Hello, World!\"}},"
    "{\"kind\":\"external\",\"name\":\"g\",\"app\":\"wsgi\","
    "\"start\":[\"gunicorn\",\"-b\",\"{listen}\"],\"ready_url\":\"http://{host}:{port}/\","
    "\"stop_signal\":\"INT\",\"env\":{\"U\":\"{upstream}\"},\"requires\":[\"deb:x\"]}]}";

/* Parse text; expect failure and that every needle occurs in the errors. */
static void expect_errors(const char *text, ...)
{
	char *errors = NULL;
	struct scenario *s = scenario_parse(text, strlen(text), "x.json", &errors);
	if (s) {
		scenario_free(s);
		fail_msg("accepted: %s", text);
	}
	assert_non_null(errors);
	va_list ap;
	va_start(ap, text);
	const char *needle;
	while ((needle = va_arg(ap, const char *)) != NULL) {
		if (!strstr(errors, needle)) {
			print_error("errors were:\n%s", errors);
			fail_msg("missing \"%s\"", needle);
		}
	}
	va_end(ap);
	/* every line names the file */
	for (const char *line = errors; *line; line = strchr(line, '\n') + 1) {
		assert_true(strncmp(line, "x.json: ", 8) == 0);
		assert_non_null(strchr(line, '\n'));
	}
	free(errors);
}

/* Build a valid document with one substitution (a field replaced). */
static char *with(const char *from, const char *to)
{
	const char *at = strstr(valid, from);
	assert_non_null(at);
	size_t n = strlen(valid) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - valid), valid, to, at + strlen(from));
	return out;
}

static void expect_sub_error(const char *from, const char *to, const char *needle)
{
	char *doc = with(from, to);
	expect_errors(doc, needle, NULL);
	free(doc);
}

static void test_valid_normalizes(void **state)
{
	(void)state;
	char *errors = NULL;
	struct scenario *s = scenario_parse(valid, strlen(valid), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	assert_null(errors);
	assert_string_equal(scenario_name(s), "t");
	const json_t *d = scenario_json(s);
	assert_int_equal(json_integer_value(json_object_get(d, "repetitions")), 3);
	assert_true(json_is_true(json_object_get(d, "keepalive")));
	assert_true(json_is_false(json_object_get(d, "interleave")));
	assert_int_equal(json_integer_value(json_object_get(d, "plot_level")), 5);
	assert_true(json_is_null(json_object_get(d, "requests")));
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(d, "upstream"), "size")), 1024);
	assert_true(
	    json_is_false(json_object_get(json_object_get(d, "upstream"), "wake_per_request")));
	const json_t *lg = json_object_get(json_object_get(d, "cpus"), "loadgen");
	assert_int_equal(json_array_size(lg), 3);
	assert_int_equal(json_integer_value(json_array_get(lg, 2)), 4);
	const json_t *up = json_object_get(json_object_get(d, "cpus"), "upstream");
	assert_int_equal(json_array_size(up), 2); /* sorted, duplicates gone */
	const json_t *srv = json_object_get(d, "servers");
	assert_string_equal(json_string_value(json_object_get(json_array_get(srv, 0), "name")),
	                    "coro");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(srv, 1), "workers")), 2);
	const json_t *ng = json_array_get(srv, 2);
	assert_string_equal(json_string_value(json_object_get(ng, "app")), "hello");
	assert_string_equal(json_string_value(json_object_get(ng, "stop_signal")), "SIGQUIT");
	assert_true(json_is_null(json_object_get(json_object_get(ng, "expect"), "body_upstream")));
	const json_t *ext = json_array_get(srv, 3);
	assert_string_equal(json_string_value(json_object_get(ext, "stop_signal")), "SIGINT");
	/* servers inherit the top-level expect */
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(json_array_get(srv, 0), "expect"), "body_upstream")),
	                 1);
	scenario_free(s);
}

static void test_missing_fields(void **state)
{
	(void)state;
	expect_errors("{}", "x.json: name: missing", "x.json: purpose: missing",
	              "x.json: levels: missing", "x.json: seconds: missing",
	              "x.json: servers: missing", NULL);
	expect_sub_error("{\"kind\":\"coro\",\"app\":\"proxy\"}", "{\"kind\":\"coro\"}",
	                 "x.json: servers[0].app: missing");
	expect_sub_error("\"start\":[\"gunicorn\",\"-b\",\"{listen}\"],", "",
	                 "x.json: servers[3].start: missing");
	expect_sub_error("{\"kind\":\"coro\",", "{", "x.json: servers[0].kind: missing");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":\"1,2,5\"",
	                 "x.json: levels: must be an array of concurrency levels, not a string");
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[1,2.5,5]",
	                 "x.json: levels[1]: must be an integer, not a number with a fraction");
	expect_sub_error("\"seconds\":2", "\"seconds\":\"1\"",
	                 "x.json: seconds: must be an integer, not a string");
	expect_sub_error("\"seconds\":2", "\"seconds\":1.5",
	                 "x.json: seconds: must be a whole number of seconds");
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"interleave\":1",
	                 "x.json: interleave: must be true or false, not an integer");
	expect_sub_error("\"workers\":2", "\"workers\":true",
	                 "x.json: servers[1].workers: must be an integer, not a boolean");
	expect_sub_error("\"purpose\":\"p\"", "\"purpose\":null",
	                 "x.json: purpose: must be a string, not null");
	expect_errors("[]", "x.json: the scenario must be a JSON object, not an array", NULL);
	expect_sub_error("\"env\":{\"U\":\"{upstream}\"}", "\"env\":{\"U\":1}",
	                 "x.json: servers[3].env.U: must be a string, not an integer");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[1,5,2]",
	                 "x.json: levels[2]: 2 must be above the previous level 5");
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[0]",
	                 "x.json: levels[0]: 0 is out of range");
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[]", "x.json: levels: must have 1");
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"requests\":10",
	                 "x.json: seconds: give either seconds or requests");
	expect_sub_error("\"seconds\":2", "\"requests\":2",
	                 "x.json: requests: 2 is below the highest level 5");
	expect_sub_error("\"seconds\":2", "\"seconds\":0", "x.json: seconds: 0 is out of range");
	expect_sub_error("\"name\":\"t\"", "\"name\":\"../t\"",
	                 "x.json: name: '../t' may only use");
	expect_sub_error("\"name\":\"t\"", "\"name\":\"t\",\"repetitons\":3",
	                 "x.json: repetitons: unknown field");
	expect_sub_error("\"delay_ms\":20", "\"delay_ms\":20,\"sise\":1",
	                 "x.json: upstream.sise: unknown field");
	expect_sub_error("\"delay_ms\":20", "\"delay_ms\":20,\"wake_per_request\":1",
	                 "x.json: upstream.wake_per_request: must be");
}

static void test_bad_cpu_lists(void **state)
{
	(void)state;
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"1-\"",
	                 "x.json: cpus.loadgen: bad CPU list '1-': a range needs an end");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"3-1\"",
	                 "x.json: cpus.loadgen: bad CPU list '3-1': range 3-1 runs backwards");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"a\"",
	                 "x.json: cpus.loadgen: bad CPU list 'a'");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"1,\"",
	                 "x.json: cpus.loadgen: bad CPU list '1,'");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"1;2\"",
	                 "x.json: cpus.loadgen: bad CPU list '1;2': unexpected ';'");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"99999999999999999999\"",
	                 "x.json: cpus.loadgen: bad CPU list");
	expect_sub_error("\"loadgen\":\"1-2,4\"", "\"loadgen\":\"\"",
	                 "x.json: cpus.loadgen: must not be empty");
	expect_sub_error("\"upstream\":[3,1,3]", "\"upstream\":[-1]",
	                 "x.json: cpus.upstream[0]: -1 is out of range");
	expect_sub_error("\"upstream\":[3,1,3]", "\"upstream\":[]",
	                 "x.json: cpus.upstream: must list at least one CPU");
	expect_sub_error("\"server\":\"0\"", "\"server\":0",
	                 "x.json: cpus.server: must be a CPU list string");
	expect_sub_error("\"server\":\"0\"", "\"sever\":\"0\"",
	                 "x.json: cpus.sever: unknown field");
}

/* A path must be an origin-form request target (RFC 9112 §3.2.1): what
 * would split the request line (a space, CR, LF, a control byte), a
 * fragment, a bad %-escape and anything unencoded are refused with the
 * field and the offset, for the scenario's path and a server's. */
static void test_paths(void **state)
{
	(void)state;
	static const struct {
		const char *path, *needle;
	} bad[] = {
	    {"/a b", "a space at offset 2: a request target cannot hold it"},
	    {"/a\\r\\nX: y", "a CR at offset 2"},
	    {"/\\n", "an LF at offset 1"},
	    {"/\\t", "a tab at offset 1"},
	    {"/\\u0001", "control byte 0x01 at offset 1"},
	    {"/\\u007f", "control byte 0x7f at offset 1"},
	    {"/a#frag", "'#' at offset 2: a fragment is never sent"},
	    {"/%zz", "'%' at offset 1 is not followed by two hex digits"},
	    {"/%4", "'%' at offset 1 is not followed by two hex digits"},
	    {"/a%", "'%' at offset 2"},
	    {"/<x>", "'<' at offset 1 is not allowed in a request target unencoded; "
	             "percent-encode it as %3C"},
	    {"/a\\\\b", "'\\' at offset 2"},
	    {"/\\u00e9", "byte 0xc3 at offset 1 is not ASCII"},
	    {"/a|b", "'|' at offset 2"},
	    {"x/y", "must start with '/'"},
	    {"http://h/", "must start with '/'"},
	    {"*", "must start with '/'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char top[128], srv[128], want[256];
		snprintf(top, sizeof top, "\"path\":\"%s\",\"name\":\"t\"", bad[i].path);
		snprintf(want, sizeof want, "x.json: path: %s", bad[i].needle);
		expect_sub_error("\"name\":\"t\"", top, want);
		snprintf(srv, sizeof srv, "{\"kind\":\"coro\",\"path\":\"%s\",", bad[i].path);
		snprintf(want, sizeof want, "x.json: servers[0].path: %s", bad[i].needle);
		expect_sub_error("{\"kind\":\"coro\",", srv, want);
	}
	/* what a request target may hold passes, as it is */
	static const char *const good[] = {"/", "/a/b?c=d&e=f", "/~x/-._!$&'()*+,;=:@/",
	                                   "/q?x=/y?z", "/%20%2F%7e"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char top[128], *errors = NULL;
		snprintf(top, sizeof top, "\"path\":\"%s\",\"name\":\"t\"", good[i]);
		char *doc = with("\"name\":\"t\"", top);
		struct scenario *sc = scenario_parse(doc, strlen(doc), "x.json", &errors);
		if (!sc)
			fail_msg("%s rejected: %s", good[i], errors);
		assert_string_equal(json_string_value(json_object_get(scenario_json(sc), "path")),
		                    good[i]);
		scenario_free(sc);
		free(doc);
	}
}

static void test_servers(void **state)
{
	(void)state;
	expect_sub_error("{\"kind\":\"coro\",", "{\"kind\":\"gevent\",",
	                 "x.json: servers[0].kind: unknown server kind 'gevent' (one of: coro, "
	                 "async, nginx, external)");
	expect_sub_error("\"app\":\"proxy-async\"", "\"app\":\"proxi\"",
	                 "x.json: servers[1].app: unknown app 'proxi' (known: hello");
	expect_sub_error("\"upstream\":{\"delay_ms\":20},", "",
	                 "x.json: servers[0].app: app 'proxy' fetches the upstream, and the "
	                 "scenario has no upstream");
	expect_sub_error("\"upstream\":{\"delay_ms\":20},", "",
	                 "x.json: expect.body_upstream: needs an upstream");
	expect_sub_error(
	    "{\"kind\":\"nginx\",", "{\"kind\":\"coro\",",
	    "x.json: servers[2].name: 'coro' is already the name of an earlier server");
	expect_sub_error("{\"kind\":\"nginx\",", "{\"kind\":\"nginx\",\"app\":\"proxy\",",
	                 "x.json: servers[2].app: nginx serves only 'hello'");
	expect_sub_error("\"{listen}\"", "\"{lisen}\"",
	                 "x.json: servers[3].start[2]: unknown placeholder '{lisen}'");
	expect_sub_error("\"{listen}\"", "\"{listen\"",
	                 "x.json: servers[3].start[2]: unmatched '{'");
	expect_sub_error("\"stop_signal\":\"INT\"", "\"stop_signal\":\"SIGFOO\"",
	                 "x.json: servers[3].stop_signal: unknown signal 'SIGFOO'");
	expect_sub_error("\"ready_url\":\"http://", "\"ready_url\":\"ftp://",
	                 "x.json: servers[3].ready_url: must start with http://");
	expect_sub_error("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	                 "{\"kind\":\"coro\",\"app\":\"proxy\",\"start\":[\"x\"]}",
	                 "x.json: servers[0].start: only for external servers");
	expect_sub_error(",\"name\":\"g\"", "", "x.json: servers[3].name: missing");
	expect_sub_error("\"servers\":[", "\"servers\":[1,",
	                 "x.json: servers[0]: must be an object, not an integer");
	expect_sub_error("\"expect\":{\"body_upstream\":1}",
	                 "\"expect\":{\"body_upstream\":1,\"body\":\"x\"}",
	                 "x.json: expect.body_upstream: give either body or body_upstream");
	expect_sub_error("\"expect\":{\"body_upstream\":1}", "\"expect\":{\"status\":99}",
	                 "x.json: expect.status: 99 is out of range");
	expect_sub_error("{\"body\":\"Hello, World!\"}", "{\"bodi\":\"\"}",
	                 "x.json: servers[2].expect.bodi: unknown field");
}

static void test_invalid_json(void **state)
{
	(void)state;
	expect_errors("{\"name\": }", "x.json: line 1, column 10: invalid JSON", NULL);
	expect_errors("", "invalid JSON", NULL);
	expect_errors("{\"a\":1,\"a\":2}", "invalid JSON", NULL); /* duplicate keys */
	expect_errors("{\"name\":\"a\\u0000b\"}", "x.json: name: must not contain a NUL", NULL);
}

static void test_plot_level(void **state)
{
	(void)state;
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"plot_level\":3",
	                 "x.json: plot_level: 3 is not one of the levels");
}

/* Every prefix of a valid file, and bytes flipped, must be handled cleanly. */
static void test_robust(void **state)
{
	(void)state;
	size_t n = strlen(valid);
	for (size_t len = 0; len < n; len++) {
		char *errors = NULL;
		struct scenario *s = scenario_parse(valid, len, "x.json", &errors);
		assert_null(s);
		assert_non_null(errors);
		free(errors);
	}
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	static const char subst[] = "{}[]\",:0-x\\";
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizeof(subst) - 1; k++) {
			memcpy(buf, valid, n + 1);
			buf[i] = subst[k];
			char *errors = NULL;
			struct scenario *s = scenario_parse(buf, n, "x.json", &errors);
			if (s) {
				assert_null(errors);
				assert_non_null(scenario_json(s));
				scenario_free(s);
			} else {
				assert_non_null(errors);
				free(errors);
			}
		}
	}
	free(buf);
	/* the error list is capped */
	char big[8192] = "{";
	for (int i = 0; i < 100; i++) {
		char k[32];
		snprintf(k, sizeof(k), "%s\"k%d\":1", i ? "," : "", i);
		strcat(big, k);
	}
	strcat(big, "}");
	char *errors = NULL;
	assert_null(scenario_parse(big, strlen(big), "x.json", &errors));
	assert_non_null(strstr(errors, "more errors not shown"));
	free(errors);
}

static void test_load_missing_file(void **state)
{
	(void)state;
	char *errors = NULL;
	assert_null(scenario_load("/nonexistent/dir/none.json", &errors));
	assert_non_null(strstr(errors, "/nonexistent/dir/none.json: cannot open"));
	free(errors);
}

/* ---- HTTP/2: protocol, sweep, connections, streams, h2load_reference ---- */

static const char h2_valid[] =
    "{\"name\":\"h\",\"purpose\":\"p\",\"upstream\":{\"delay_ms\":20},"
    "\"levels\":[1,10,100],\"seconds\":2,\"protocol\":\"h2\",\"sweep\":\"streams\","
    "\"connections\":4,\"h2load_reference\":true,\"expect\":{\"body_upstream\":1},"
    "\"servers\":[{\"kind\":\"coro\",\"app\":\"proxy\"},"
    "{\"kind\":\"async\",\"app\":\"proxy-async\",\"h2load_reference\":false},"
    "{\"kind\":\"nginx\",\"expect\":{\"body\":\"Hello, World!\"}}]}";

static char *h2_with(const char *from, const char *to)
{
	const char *at = strstr(h2_valid, from);
	assert_non_null(at);
	size_t n = strlen(h2_valid) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - h2_valid), h2_valid, to, at + strlen(from));
	return out;
}

static void expect_h2_error(const char *from, const char *to, const char *needle)
{
	char *doc = h2_with(from, to);
	expect_errors(doc, needle, NULL);
	free(doc);
}

static bool has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
	{
		if (strcmp(json_string_value(x), s) == 0)
			return true;
	}
	return false;
}

static void test_h2_normalizes(void **state)
{
	(void)state;
	char *errors = NULL;
	struct scenario *s = scenario_parse(h2_valid, strlen(h2_valid), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	const json_t *d = scenario_json(s);
	assert_string_equal(json_string_value(json_object_get(d, "protocol")), "h2");
	assert_string_equal(json_string_value(json_object_get(d, "sweep")), "streams");
	assert_int_equal(json_integer_value(json_object_get(d, "connections")), 4);
	assert_true(json_is_null(json_object_get(d, "streams")));
	const json_t *srv = json_object_get(d, "servers");
	const json_t *coro = json_array_get(srv, 0), *async = json_array_get(srv, 1);
	assert_string_equal(json_string_value(json_object_get(coro, "protocol")), "h2");
	assert_true(json_is_true(json_object_get(coro, "h2load_reference")));
	assert_true(json_is_false(json_object_get(async, "h2load_reference")));
	/* verified with curl; h2load only where it runs */
	assert_true(has_string(json_object_get(coro, "requires"), "curl"));
	assert_true(has_string(json_object_get(coro, "requires"), "h2load"));
	assert_false(has_string(json_object_get(async, "requires"), "h2load"));
	assert_true(has_string(json_object_get(json_array_get(srv, 2), "requires"), "nginx"));
	scenario_free(s);

	/* an h1 scenario gets the defaults: h1, connections sweep, no streams */
	s = scenario_parse(valid, strlen(valid), "x.json", &errors);
	assert_non_null(s);
	d = scenario_json(s);
	assert_string_equal(json_string_value(json_object_get(d, "protocol")), "h1");
	assert_string_equal(json_string_value(json_object_get(d, "sweep")), "connections");
	assert_true(json_is_null(json_object_get(d, "connections")));
	assert_true(json_is_null(json_object_get(d, "streams")));
	assert_true(json_is_false(json_object_get(d, "h2load_reference")));
	const json_t *s0 = json_array_get(json_object_get(d, "servers"), 0);
	assert_string_equal(json_string_value(json_object_get(s0, "protocol")), "h1");
	assert_false(has_string(json_object_get(s0, "requires"), "curl"));
	scenario_free(s);

	/* fixed streams per connection over a connections sweep; mixed protocols */
	char *doc = h2_with("\"sweep\":\"streams\",\"connections\":4,", "\"streams\":8,");
	s = scenario_parse(doc, strlen(doc), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	d = scenario_json(s);
	assert_string_equal(json_string_value(json_object_get(d, "sweep")), "connections");
	assert_int_equal(json_integer_value(json_object_get(d, "streams")), 8);
	assert_true(json_is_null(json_object_get(d, "connections")));
	scenario_free(s);
	free(doc);
}

static void test_h2_errors(void **state)
{
	(void)state;
	expect_h2_error("\"protocol\":\"h2\"", "\"protocol\":\"h3\"",
	                "x.json: protocol: unknown protocol 'h3' (one of: h1, h2)");
	expect_h2_error("\"protocol\":\"h2\"", "\"protocol\":2",
	                "x.json: protocol: must be a string, not an integer");
	expect_h2_error(
	    "\"sweep\":\"streams\"", "\"sweep\":\"stream\"",
	    "x.json: sweep: unknown sweep 'stream' (one of: connections, streams, rate)");
	expect_h2_error("\"connections\":4,", "",
	                "x.json: connections: missing (with \"sweep\": \"streams\"");
	expect_h2_error("\"connections\":4,", "\"connections\":0,",
	                "x.json: connections: 0 is out of range (1..100000)");
	expect_h2_error("\"sweep\":\"streams\",", "",
	                "x.json: connections: only with \"sweep\": \"streams\"");
	expect_h2_error("\"connections\":4,", "\"connections\":4,\"streams\":10,",
	                "x.json: streams: not with \"sweep\": \"streams\"");
	expect_h2_error("\"sweep\":\"streams\",\"connections\":4,", "\"streams\":-1,",
	                "x.json: streams: -1 is out of range (1..100000)");
	expect_h2_error("\"h2load_reference\":true", "\"h2load_reference\":\"yes\"",
	                "x.json: h2load_reference: must be true or false, not a string");
	expect_h2_error("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	                "{\"kind\":\"coro\",\"app\":\"proxy\",\"protocol\":\"h1\"}",
	                "x.json: servers[0].protocol: is h1, but the scenario sweeps streams");
	expect_h2_error("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	                "{\"kind\":\"coro\",\"app\":\"proxy\",\"protocol\":\"spdy\"}",
	                "x.json: servers[0].protocol: unknown protocol 'spdy'");
	expect_h2_error("\"seconds\":2", "\"requests\":3",
	                "x.json: requests: 3 is below the 4 connections");
	/* h1-only fields in an h1 scenario */
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"streams\":10",
	                 "x.json: streams: streams per connection need protocol h2, and no "
	                 "server uses it");
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"h2load_reference\":true",
	                 "x.json: h2load_reference: needs protocol h2");
	expect_sub_error("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	                 "{\"kind\":\"coro\",\"app\":\"proxy\",\"h2load_reference\":true}",
	                 "x.json: servers[0].h2load_reference: needs protocol h2");
	expect_sub_error("\"seconds\":2", "\"seconds\":2,\"sweep\":\"streams\",\"connections\":2",
	                 "x.json: servers[0].protocol: is h1, but the scenario sweeps streams");
}

/* Style, optional rows, build and runtime commands (the reference rows of
 * issue 16). */
static void test_style_and_runtime(void **state)
{
	(void)state;
	char *errors = NULL;
	struct scenario *s = scenario_parse(valid, strlen(valid), "x.json", &errors);
	assert_non_null(s);
	const json_t *srv = json_object_get(scenario_json(s), "servers");
	/* the built-in workers are labelled by their way of waiting; the others
	 * are unlabelled unless the scenario says */
	assert_string_equal(json_string_value(json_object_get(json_array_get(srv, 0), "style")),
	                    "implicit");
	assert_string_equal(json_string_value(json_object_get(json_array_get(srv, 1), "style")),
	                    "explicit");
	for (size_t i = 0; i < 4; i++) {
		const json_t *x = json_array_get(srv, i);
		if (i >= 2)
			assert_true(json_is_null(json_object_get(x, "style")));
		assert_true(json_is_false(json_object_get(x, "optional")));
		assert_true(json_is_null(json_object_get(x, "build")));
		assert_true(json_is_null(json_object_get(x, "runtime_version")));
	}
	scenario_free(s);

	char *doc = with("\"requires\":[\"deb:x\"]",
	                 "\"requires\":[\"go\"],\"style\":\"implicit\",\"optional\":true,"
	                 "\"build\":[\"{source}/b\",\"{build}/out\"],"
	                 "\"runtime_version\":[\"{build}/out\",\"--version\"]");
	s = scenario_parse(doc, strlen(doc), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	const json_t *ext = json_array_get(json_object_get(scenario_json(s), "servers"), 3);
	assert_string_equal(json_string_value(json_object_get(ext, "style")), "implicit");
	assert_true(json_is_true(json_object_get(ext, "optional")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(ext, "build"), 1)),
	                    "{build}/out");
	assert_int_equal(json_array_size(json_object_get(ext, "runtime_version")), 2);
	scenario_free(s);
	free(doc);

	/* a worker's label can be overridden */
	doc = with("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	           "{\"kind\":\"coro\",\"app\":\"proxy\",\"style\":\"explicit\"}");
	s = scenario_parse(doc, strlen(doc), "x.json", &errors);
	assert_non_null(s);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(scenario_json(s), "servers"), 0), "style")),
	    "explicit");
	scenario_free(s);
	free(doc);

	expect_sub_error("\"requires\":[\"deb:x\"]", "\"requires\":[],\"style\":\"green\"",
	                 "x.json: servers[3].style: unknown style 'green' (one of: implicit, "
	                 "explicit)");
	expect_sub_error("\"requires\":[\"deb:x\"]", "\"requires\":[],\"optional\":1",
	                 "x.json: servers[3].optional: must be true or false, not an integer");
	expect_sub_error("\"requires\":[\"deb:x\"]", "\"requires\":[],\"build\":[]",
	                 "x.json: servers[3].build: must have at least 1 element");
	expect_sub_error("\"requires\":[\"deb:x\"]", "\"requires\":[],\"build\":[\"{bild}\"]",
	                 "x.json: servers[3].build[0]: unknown placeholder '{bild}' (known: {host} "
	                 "{port} {listen} {upstream} {workers} {source} {build} {tmp}");
	expect_sub_error("\"requires\":[\"deb:x\"]",
	                 "\"requires\":[],\"runtime_version\":\"go version\"",
	                 "x.json: servers[3].runtime_version: must be an array of strings");
	expect_sub_error("{\"kind\":\"coro\",\"app\":\"proxy\"}",
	                 "{\"kind\":\"coro\",\"app\":\"proxy\",\"build\":[\"make\"]}",
	                 "x.json: servers[0].build: only for external servers");
	expect_sub_error("{\"kind\":\"nginx\",", "{\"kind\":\"nginx\",\"runtime_version\":[\"x\"],",
	                 "x.json: servers[2].runtime_version: only for external servers");
}

/* rates: the open model's levels, their connections, the knee's factor */
static void test_rates(void **state)
{
	(void)state;
	char *errors = NULL;
	char *doc = with("\"levels\":[1,2,5]", "\"rates\":[100,500,2000],\"connections\":[5,20,60],"
	                                       "\"knee_factor\":3,\"plot_level\":500");
	struct scenario *s = scenario_parse(doc, strlen(doc), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	const json_t *d = scenario_json(s);
	assert_string_equal(json_string_value(json_object_get(d, "sweep")), "rate");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "levels"), 2)), 2000);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(d, "rates"), 0)), 100);
	assert_int_equal(
	    json_integer_value(json_array_get(json_object_get(d, "rate_connections"), 1)), 20);
	assert_true(json_is_null(json_object_get(d, "connections")));
	assert_true(json_real_value(json_object_get(d, "knee_factor")) == 3.0);
	assert_int_equal(json_integer_value(json_object_get(d, "plot_level")), 500);
	scenario_free(s);
	free(doc);

	/* one number for every rate; the knee factor's default */
	doc = with("\"levels\":[1,2,5]", "\"rates\":[10,20],\"connections\":8");
	s = scenario_parse(doc, strlen(doc), "x.json", &errors);
	if (!s)
		fail_msg("rejected: %s", errors);
	d = scenario_json(s);
	assert_int_equal(json_array_size(json_object_get(d, "rate_connections")), 2);
	assert_int_equal(
	    json_integer_value(json_array_get(json_object_get(d, "rate_connections"), 1)), 8);
	assert_true(json_real_value(json_object_get(d, "knee_factor")) == 2.0);
	scenario_free(s);
	free(doc);

	/* a concurrency sweep has none of it */
	s = scenario_parse(valid, strlen(valid), "x.json", &errors);
	assert_non_null(s);
	d = scenario_json(s);
	assert_true(json_is_null(json_object_get(d, "rates")));
	assert_true(json_is_null(json_object_get(d, "rate_connections")));
	assert_true(json_is_null(json_object_get(d, "knee_factor")));
	assert_string_equal(json_string_value(json_object_get(d, "sweep")), "connections");
	scenario_free(s);

	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[10,20]",
	                 "x.json: connections: missing (with rates: the connections");
	expect_sub_error("\"levels\":[1,2,5]",
	                 "\"levels\":[1,2,5],\"rates\":[10],\"connections\":2",
	                 "x.json: rates: give either levels (connections) or rates");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[20,10],\"connections\":2",
	                 "x.json: rates[1]: 10 must be above the previous rate 20 (rates rise)");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[0],\"connections\":2",
	                 "x.json: rates[0]: 0 is out of range (1..10000000)");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":\"10\",\"connections\":2",
	                 "x.json: rates: must be an array of rates (requests/s), not a string");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[10,20],\"connections\":[2]",
	                 "x.json: connections: has 1 numbers for 2 rates");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[10],\"connections\":[0]",
	                 "x.json: connections[0]: 0 is out of range (1..100000)");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[10],\"connections\":\"2\"",
	                 "x.json: connections: must be a number of connections or an array");
	expect_sub_error("\"levels\":[1,2,5],\"seconds\":2",
	                 "\"rates\":[10],\"connections\":2,\"requests\":100",
	                 "x.json: requests: not with rates");
	expect_sub_error("\"levels\":[1,2,5]",
	                 "\"rates\":[10],\"connections\":2,\"sweep\":\"streams\"",
	                 "x.json: sweep: is 'streams', but rates make it a rate sweep");
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[1,2,5],\"sweep\":\"rate\"",
	                 "x.json: sweep: 'rate' needs rates");
	expect_sub_error("\"levels\":[1,2,5]", "\"levels\":[1,2,5],\"knee_factor\":2",
	                 "x.json: knee_factor: only with rates");
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[10],\"connections\":2,\"knee_factor\":1",
	                 "x.json: knee_factor: 1 is out of range (above 1..1000)");
	/* Little's law: 4000 requests/s through the 20 ms upstream keep 80 in
	 * flight */
	expect_sub_error("\"levels\":[1,2,5]", "\"rates\":[100,4000],\"connections\":[10,50]",
	                 "x.json: connections[1]: 50 connections cannot carry 4000 requests/s "
	                 "through a 20 ms upstream: Little's law keeps 80 requests in flight");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_normalizes),  cmocka_unit_test(test_missing_fields),
	    cmocka_unit_test(test_wrong_types),       cmocka_unit_test(test_bad_cpu_lists),
	    cmocka_unit_test(test_servers),           cmocka_unit_test(test_invalid_json),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_plot_level),        cmocka_unit_test(test_robust),
	    cmocka_unit_test(test_bad_values),        cmocka_unit_test(test_load_missing_file),
	    cmocka_unit_test(test_h2_normalizes),     cmocka_unit_test(test_h2_errors),
	    cmocka_unit_test(test_style_and_runtime), cmocka_unit_test(test_rates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
