/* Unit tests of loadgen's URL parsing: the forms ab accepts and refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "url.h"

static void test_plain(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("http://example.com/a/b?c=d", &u), URL_OK);
	assert_string_equal(u.host, "example.com");
	assert_string_equal(u.host_field, "example.com");
	assert_int_equal(u.port, 80);
	assert_string_equal(u.colonhost, "");
	assert_string_equal(u.path, "/a/b?c=d");
}

static void test_port_and_no_scheme(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("127.0.0.1:8080/", &u), URL_OK);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 8080);
	assert_string_equal(u.colonhost, ":8080");
	assert_string_equal(u.path, "/");
}

static void test_ipv6(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("http://[::1]:9000/x", &u), URL_OK);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.host_field, "[::1]");
	assert_int_equal(u.port, 9000);
	assert_int_equal(url_parse("http://[::1]/x", &u), URL_OK);
	assert_int_equal(u.port, 80);
	assert_int_equal(url_parse("http://[fe80::1%eth0]/", &u), URL_INVALID); /* scope id */
	assert_int_equal(url_parse("http://[::1/", &u), URL_INVALID);
	assert_int_equal(url_parse("http://[nothex]/", &u), URL_INVALID);
}

static void test_invalid(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("http://example.com", &u), URL_INVALID); /* no path */
	assert_int_equal(url_parse("127.0.0.1:8080", &u), URL_INVALID);
	assert_int_equal(url_parse("http:///x", &u), URL_INVALID);     /* no host */
	assert_int_equal(url_parse("http://8080/x", &u), URL_INVALID); /* only a port */
	assert_int_equal(url_parse("http://:8080/x", &u), URL_INVALID);
	assert_int_equal(url_parse("http://h:0/x", &u), URL_INVALID);
	assert_int_equal(url_parse("http://h:70000/x", &u), URL_INVALID);
	assert_int_equal(url_parse("", &u), URL_INVALID);
}

static void test_https(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("https://example.com/", &u), URL_OK);
	assert_int_equal(u.tls, 1);
	assert_int_equal(u.port, 443);
	assert_string_equal(u.colonhost, "");
	assert_int_equal(url_parse("https://example.com:8443/x", &u), URL_OK);
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.colonhost, ":8443");
	assert_int_equal(url_parse("https://example.com:80/", &u), URL_OK);
	assert_string_equal(u.colonhost, ":80");
	assert_int_equal(url_parse("http://example.com/", &u), URL_OK);
	assert_int_equal(u.tls, 0);
}

/* A refusal says what is wrong. */
static void test_why(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("127.0.0.1:8080", &u), URL_INVALID);
	assert_non_null(strstr(u.why, "no path"));
	assert_int_equal(url_parse("ftp://h/", &u), URL_INVALID);
	assert_non_null(strstr(u.why, "http://"));
	assert_int_equal(url_parse("http://h:99999/", &u), URL_INVALID);
	assert_non_null(strstr(u.why, "port"));
	assert_int_equal(url_parse("http:///x", &u), URL_INVALID);
	assert_non_null(strstr(u.why, "no host"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_port_and_no_scheme),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_https),
	    cmocka_unit_test(test_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
