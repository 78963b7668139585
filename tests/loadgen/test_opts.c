/* Unit tests of loadgen's command line (opts.c): what -t and --duration
 * mean (ab's -t takes whole seconds and implies -n 50000; --duration takes
 * a unit and caps nothing but -n), their refusals with a hint, --help and
 * --version wherever they are, the URL's one-line hint, --format, --unix
 * and --pipeline's checks. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "opts.h"

static struct lg_opts o;

/* Parses the words after "loadgen", NULL-terminated (copied: -X splits
 * its argument in place, as ab's does). */
static enum opts_rc parse(const char *first, ...)
{
	static char *argv[64];
	static char words[64][256];
	int argc = 0;
	argv[argc++] = "loadgen";
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *), argc++) {
		snprintf(words[argc], sizeof words[argc], "%s", a);
		argv[argc] = words[argc];
	}
	va_end(ap);
	argv[argc] = NULL;
	opts_free(&o);
	return opts_parse(&o, argc, argv);
}

#define URL "http://127.0.0.1:8080/"

static void test_t_is_abs(void **state)
{
	(void)state;
	assert_int_equal(parse("-t", "10", URL, NULL), OPTS_OK);
	assert_int_equal(o.tlimit_us, 10000000);
	assert_int_equal(o.requests, 50000); /* ab: -t implies -n 50000 */
	assert_int_equal(parse("-t", "10", "-n", "70", URL, NULL), OPTS_OK);
	assert_int_equal(o.requests, 70); /* a later -n overrides it */
	assert_int_equal(parse("-n", "70", "-t", "10", URL, NULL), OPTS_OK);
	assert_int_equal(o.requests, 50000); /* an earlier one does not */
	assert_int_equal(parse("-t", "0", URL, NULL), OPTS_OK);
	assert_int_equal(o.tlimit_us, 0); /* ab: no limit */
}

static void test_t_refuses_what_ab_truncates(void **state)
{
	(void)state;
	assert_int_equal(parse("-t", "1s", URL, NULL), OPTS_HINT);
	assert_non_null(strstr(o.err, "ab would read 1"));
	assert_non_null(strstr(o.err, "--duration 1s"));
	assert_int_equal(parse("-t", "0.5", URL, NULL), OPTS_HINT);
	assert_non_null(strstr(o.err, "ab would read 0: no time limit, 50000 requests"));
	assert_non_null(strstr(o.err, "--duration 0.5s"));
	assert_int_equal(parse("-t", "-3", URL, NULL), OPTS_HINT);
	assert_int_equal(parse("-t", "", URL, NULL), OPTS_HINT);
	/* one line */
	assert_ptr_equal(strchr(o.err, '\n'), o.err + strlen(o.err) - 1);
}

static void test_duration(void **state)
{
	(void)state;
	static const struct {
		const char *arg;
		uint64_t us;
	} ok[] = {{"10s", 10000000}, {"1m", 60000000},   {"500ms", 500000}, {"1.5s", 1500000},
	          {"2h", 7200000000}, {"250us", 250},     {"3", 3000000}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(parse("--duration", ok[i].arg, URL, NULL), OPTS_OK);
		assert_int_equal(o.tlimit_us, ok[i].us);
		/* no cap of 50000 requests: only the time ends the run */
		assert_true(o.requests > 1000000000L);
	}
	assert_int_equal(parse("--duration", "10s", "-n", "70", URL, NULL), OPTS_OK);
	assert_int_equal(o.requests, 70);
	assert_int_equal(parse("-n", "70", "--duration", "10s", URL, NULL), OPTS_OK);
	assert_int_equal(o.requests, 70);
	/* the last of -t and --duration decides */
	assert_int_equal(parse("-t", "5", "--duration", "1s", URL, NULL), OPTS_OK);
	assert_int_equal(o.tlimit_us, 1000000);
	assert_true(o.requests > 1000000000L);
	assert_int_equal(parse("--duration", "1s", "-t", "5", URL, NULL), OPTS_OK);
	assert_int_equal(o.requests, 50000);
	const char *bad[] = {"0", "1x", "-1s", "s", "", "1e30h", " 1s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(parse("--duration", bad[i], URL, NULL), OPTS_HINT);
}

static void test_help_version(void **state)
{
	(void)state;
	assert_int_equal(parse("--help", NULL), OPTS_HELP);
	assert_int_equal(parse(URL, "--help", NULL), OPTS_HELP); /* wherever it is */
	assert_int_equal(parse("--version", NULL), OPTS_VERSION_LINE);
	assert_int_equal(parse("-n", "3", "--version", URL, NULL), OPTS_VERSION_LINE);
	assert_int_equal(parse("-h", NULL), OPTS_USAGE); /* ab's -h: usage, 22 */
	assert_int_equal(parse("-V", NULL), OPTS_VERSION);
}

static void test_bad_url_hint(void **state)
{
	(void)state;
	assert_int_equal(parse("127.0.0.1:8080", NULL), OPTS_HINT);
	assert_non_null(strstr(o.err, "invalid URL '127.0.0.1:8080': no path"));
	assert_non_null(strstr(o.err, "e.g. http://127.0.0.1:8080/"));
	assert_ptr_equal(strchr(o.err, '\n'), o.err + strlen(o.err) - 1);
}

static void test_format(void **state)
{
	(void)state;
	assert_int_equal(parse("--format", "us", URL, NULL), OPTS_OK);
	assert_int_equal(o.report_us, 1);
	assert_int_equal(parse("--format", "ab", URL, NULL), OPTS_OK);
	assert_int_equal(o.report_us, 0);
	assert_int_equal(parse("--format", "ns", URL, NULL), OPTS_USAGE);
	assert_int_equal(parse("--format", "us", "-w", URL, NULL), OPTS_USAGE);
}

static void test_unix_pipeline(void **state)
{
	(void)state;
	assert_int_equal(parse("--unix", "/run/x.sock", URL, NULL), OPTS_OK);
	assert_string_equal(o.unix_path, "/run/x.sock");
	assert_int_equal(parse("--unix", "/run/x.sock", "-X", "h:1", URL, NULL), OPTS_FAIL);
	assert_int_equal(parse("-k", "--pipeline", "16", URL, NULL), OPTS_OK);
	assert_int_equal(o.pipeline, 16);
	assert_int_equal(parse("--pipeline", "16", URL, NULL), OPTS_USAGE); /* needs -k */
	assert_int_equal(parse("-k", "--pipeline", "2000", URL, NULL), OPTS_USAGE);
	assert_int_equal(parse("-k", "--h2", "--pipeline", "2", URL, NULL), OPTS_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_t_is_abs),     cmocka_unit_test(test_t_refuses_what_ab_truncates),
	    cmocka_unit_test(test_duration),     cmocka_unit_test(test_help_version),
	    cmocka_unit_test(test_bad_url_hint), cmocka_unit_test(test_format),
	    cmocka_unit_test(test_unix_pipeline),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	opts_free(&o);
	return rc;
}
