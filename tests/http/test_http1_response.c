/* test_http1_response.c — unit tests of the response side of
 * servers/http/http1.h: exact bytes per version and keep-alive, the Date
 * header and its cache, reason phrases, the output buffer. The writer's
 * output is also read back with llhttp as a client would. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http1.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Write one response and compare it with the expected bytes; the Date is
 * taken around the call and the test retries if a second ticked over. */
static void expect_response(int minor, int status, const char *ct, const char *body,
                            bool keep_alive, const char *status_line, const char *conn_line)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		char date[32];
		snprintf(date, sizeof(date), "%s", http_date_now());
		struct http_obuf b;
		http_obuf_init(&b);
		assert_int_equal(http1_write_response(&b, minor, status, ct, body,
		                                      body ? strlen(body) : 0, keep_alive),
		                 0);
		if (strcmp(date, http_date_now()) != 0) {
			http_obuf_free(&b);
			continue;
		}
		char want[1024];
		int n = snprintf(want, sizeof(want),
		                 "%s\r\nDate: %s\r\nServer: corobench\r\nContent-Type: %s\r\n"
		                 "Content-Length: %zu\r\n%s\r\n%s",
		                 status_line, date, ct ? ct : "text/plain", body ? strlen(body) : 0,
		                 conn_line, body ? body : "");
		if ((size_t)n != b.len || memcmp(want, b.data, b.len) != 0)
			fail_msg("got:\n%.*s\nwant:\n%s", (int)b.len, b.data, want);
		http_obuf_free(&b);
		return;
	}
	fail_msg("the clock kept moving");
}

static void test_exact_bytes_11_keep_alive(void **state)
{
	(void)state;
	expect_response(1, 200, "text/plain", "Hello, World!", true, "HTTP/1.1 200 OK", "");
}

static void test_exact_bytes_11_close(void **state)
{
	(void)state;
	expect_response(1, 200, "text/plain", "Hello, World!", false, "HTTP/1.1 200 OK",
	                "Connection: close\r\n");
}

static void test_exact_bytes_10_keep_alive(void **state)
{
	(void)state;
	expect_response(0, 200, "application/json", "{\"message\":\"Hello, World!\"}", true,
	                "HTTP/1.0 200 OK", "Connection: keep-alive\r\n");
}

static void test_exact_bytes_10_close(void **state)
{
	(void)state;
	expect_response(0, 404, "text/plain", "nope", false, "HTTP/1.0 404 Not Found",
	                "Connection: close\r\n");
}

static void test_error_statuses_and_defaults(void **state)
{
	(void)state;
	expect_response(1, 431, NULL, "too big", false,
	                "HTTP/1.1 431 Request Header Fields Too Large", "Connection: close\r\n");
	expect_response(1, 413, "text/plain", "", false, "HTTP/1.1 413 Content Too Large",
	                "Connection: close\r\n");
	expect_response(1, 502, NULL, "upstream connection failed", true,
	                "HTTP/1.1 502 Bad Gateway", "");
	expect_response(1, 504, NULL, NULL, true, "HTTP/1.1 504 Gateway Timeout", "");
	/* unknown codes get the class's phrase; nonsense becomes 500 */
	expect_response(1, 299, NULL, "x", true, "HTTP/1.1 299 Success", "");
	expect_response(1, 42, NULL, "x", true, "HTTP/1.1 500 Internal Server Error", "");
	expect_response(1, 1000, NULL, "x", true, "HTTP/1.1 500 Internal Server Error", "");
}

static void test_write_head_only(void **state)
{
	(void)state;
	struct http_obuf b;
	http_obuf_init(&b);
	assert_int_equal(http1_write_head(&b, 1, 200, "text/plain", 1234567890, true), 0);
	assert_non_null(memmem(b.data, b.len, "Content-Length: 1234567890\r\n", 28));
	assert_true(b.len > 4);
	assert_memory_equal(b.data + b.len - 4, "\r\n\r\n", 4);
	assert_non_null(memmem(b.data, b.len, "Content-Type: text/plain\r\n", 26));
	http_obuf_free(&b);
}

/* 204 and 304 carry neither body nor Content-Length; 405 says Allow. */
static void test_special_statuses(void **state)
{
	(void)state;
	static const int bodyless[] = {204, 304};
	for (size_t i = 0; i < 2; i++) {
		for (int head = 0; head < 2; head++) {
			struct http_obuf b;
			http_obuf_init(&b);
			int rc = head ? http1_write_head(&b, 1, bodyless[i], NULL, 5, true)
			              : http1_write_response(&b, 1, bodyless[i], NULL, "hello", 5,
			                                     true);
			assert_int_equal(rc, 0);
			char *text = strndup(b.data, b.len);
			assert_null(strstr(text, "Content-Length"));
			assert_non_null(strstr(text, "\r\n\r\n"));
			assert_int_equal(strstr(text, "\r\n\r\n") + 4 - text, (long)b.len);
			free(text);
			http_obuf_free(&b);
		}
	}
	struct http_obuf b;
	http_obuf_init(&b);
	assert_int_equal(http1_write_response(&b, 1, 405, NULL, "no", 2, false), 0);
	char *text = strndup(b.data, b.len);
	assert_non_null(strstr(text, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(text, "\r\nAllow: " HTTP_METHODS_SERVED "\r\n"));
	assert_non_null(strstr(text, "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"));
	free(text);
	http_obuf_free(&b);
}

static void test_content_length_digits(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 9, 10, 99, 100, 12345, 1048576};
	char *body = malloc(1048576);
	assert_non_null(body);
	memset(body, 'x', 1048576);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct http_obuf b;
		http_obuf_init(&b);
		assert_int_equal(http1_write_response(&b, 1, 200, NULL, body, sizes[i], true), 0);
		char want[64];
		int n = snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n\r\n", sizes[i]);
		char *at = memmem(b.data, b.len, want, (size_t)n);
		assert_non_null(at);
		assert_int_equal((size_t)(at + n - b.data) + sizes[i], b.len);
		http_obuf_free(&b);
	}
	free(body);
}

static void test_date_format(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 3; attempt++) {
		time_t t = time(NULL);
		const char *d = http_date_now();
		if (time(NULL) != t)
			continue;
		assert_int_equal(strlen(d), 29);
		struct tm tm;
		gmtime_r(&t, &tm);
		/* strftime in the C locale is the reference (IMF-fixdate) */
		char want[64];
		strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		assert_string_equal(d, want);
		return;
	}
	fail_msg("the clock kept moving");
}

static void test_date_cached_and_refreshed(void **state)
{
	(void)state;
	char first[32];
	snprintf(first, sizeof(first), "%s", http_date_now());
	/* within the second, the same text */
	for (int i = 0; i < 1000; i++) {
		const char *d = http_date_now();
		if (strcmp(d, first) != 0)
			snprintf(first, sizeof(first), "%s", d); /* a second ticked: follow it */
	}
	/* a second later, a new one */
	usleep(1100 * 1000);
	assert_string_not_equal(http_date_now(), first);
	/* and the response carries the current one */
	struct http_obuf b;
	http_obuf_init(&b);
	char date[32];
	snprintf(date, sizeof(date), "%s", http_date_now());
	assert_int_equal(http1_write_response(&b, 1, 200, NULL, "", 0, true), 0);
	if (strcmp(date, http_date_now()) == 0)
		assert_non_null(memmem(b.data, b.len, date, 29));
	http_obuf_free(&b);
}

static void test_reason_phrases(void **state)
{
	(void)state;
	assert_string_equal(http_status_reason(100), "Continue");
	assert_string_equal(http_status_reason(200), "OK");
	assert_string_equal(http_status_reason(204), "No Content");
	assert_string_equal(http_status_reason(301), "Moved Permanently");
	assert_string_equal(http_status_reason(400), "Bad Request");
	assert_string_equal(http_status_reason(404), "Not Found");
	assert_string_equal(http_status_reason(413), "Content Too Large");
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_reason(500), "Internal Server Error");
	assert_string_equal(http_status_reason(502), "Bad Gateway");
	assert_string_equal(http_status_reason(503), "Service Unavailable");
	assert_string_equal(http_status_reason(504), "Gateway Timeout");
	assert_string_equal(http_status_reason(199), "Informational");
	assert_string_equal(http_status_reason(299), "Success");
	assert_string_equal(http_status_reason(399), "Redirection");
	assert_string_equal(http_status_reason(499), "Client Error");
	assert_string_equal(http_status_reason(599), "Server Error");
	assert_string_equal(http_status_reason(-1), "Server Error");
}

static void test_obuf_consume(void **state)
{
	(void)state;
	struct http_obuf b;
	http_obuf_init(&b);
	assert_int_equal(b.len, 0);
	http_obuf_consume(&b, 0);
	http_obuf_consume(&b, 5); /* more than there is: empty, no harm */
	assert_int_equal(b.len, 0);

	assert_int_equal(http1_write_response(&b, 1, 200, NULL, "first", 5, true), 0);
	size_t one = b.len;
	assert_int_equal(http1_write_response(&b, 1, 200, NULL, "second", 6, false), 0);
	size_t both = b.len;
	char *copy = malloc(both);
	assert_non_null(copy);
	memcpy(copy, b.data, both);

	/* a partial write: the rest moves to the front, in order */
	http_obuf_consume(&b, 3);
	assert_int_equal(b.len, both - 3);
	assert_memory_equal(b.data, copy + 3, both - 3);
	http_obuf_consume(&b, one - 3);
	assert_int_equal(b.len, both - one);
	assert_memory_equal(b.data, copy + one, both - one);
	assert_memory_equal(b.data + b.len - 6, "second", 6);
	http_obuf_consume(&b, b.len);
	assert_int_equal(b.len, 0);

	/* the buffer is reused: appending again works from the start */
	assert_int_equal(http1_write_response(&b, 1, 200, NULL, "first", 5, true), 0);
	assert_int_equal(b.len, one);
	free(copy);
	http_obuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_obuf_grows_for_many(void **state)
{
	(void)state;
	struct http_obuf b;
	http_obuf_init(&b);
	size_t one = 0;
	for (int i = 0; i < 1000; i++) {
		size_t before = b.len;
		assert_int_equal(http1_write_response(&b, 1, 200, NULL, "Hello, World!", 13, true),
		                 0);
		if (i == 0)
			one = b.len - before;
		assert_int_equal(b.len - before, one);
	}
	assert_int_equal(b.len, 1000 * one);
	assert_true(b.cap >= b.len);
	http_obuf_free(&b);
}

/* Read the writer's output back as a client would. */
struct client_view {
	int status, completed;
	uint64_t content_length;
	char body[64];
	size_t body_len;
	bool keep_alive;
};

static int cv_body(llhttp_t *ll, const char *at, size_t len)
{
	struct client_view *cv = ll->data;
	memcpy(cv->body + cv->body_len, at, len);
	cv->body_len += len;
	return 0;
}

static int cv_headers(llhttp_t *ll)
{
	struct client_view *cv = ll->data;
	cv->status = ll->status_code;
	cv->content_length = ll->content_length;
	return 0;
}

static int cv_complete(llhttp_t *ll)
{
	struct client_view *cv = ll->data;
	cv->keep_alive = llhttp_should_keep_alive(ll) != 0;
	cv->completed++;
	return 0;
}

static void test_client_reads_it_back(void **state)
{
	(void)state;
	static const llhttp_settings_t s = {
	    .on_headers_complete = cv_headers,
	    .on_body = cv_body,
	    .on_message_complete = cv_complete,
	};
	for (int minor = 0; minor <= 1; minor++) {
		for (int ka = 0; ka <= 1; ka++) {
			struct http_obuf b;
			http_obuf_init(&b);
			assert_int_equal(
			    http1_write_response(&b, minor, 201, "text/plain", "abc", 3, ka), 0);
			struct client_view cv = {0};
			llhttp_t ll;
			llhttp_init(&ll, HTTP_RESPONSE, &s);
			ll.data = &cv;
			assert_int_equal(llhttp_execute(&ll, b.data, b.len), HPE_OK);
			assert_int_equal(cv.completed, 1);
			assert_int_equal(cv.status, 201);
			assert_int_equal(cv.content_length, 3);
			assert_int_equal(cv.body_len, 3);
			assert_memory_equal(cv.body, "abc", 3);
			assert_int_equal(cv.keep_alive, ka);
			http_obuf_free(&b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_bytes_11_keep_alive),
	    cmocka_unit_test(test_exact_bytes_11_close),
	    cmocka_unit_test(test_exact_bytes_10_keep_alive),
	    cmocka_unit_test(test_exact_bytes_10_close),
	    cmocka_unit_test(test_error_statuses_and_defaults),
	    cmocka_unit_test(test_write_head_only),
	    cmocka_unit_test(test_special_statuses),
	    cmocka_unit_test(test_content_length_digits),
	    cmocka_unit_test(test_date_format),
	    cmocka_unit_test(test_date_cached_and_refreshed),
	    cmocka_unit_test(test_reason_phrases),
	    cmocka_unit_test(test_obuf_consume),
	    cmocka_unit_test(test_obuf_grows_for_many),
	    cmocka_unit_test(test_client_reads_it_back),
	};
	return cmocka_run_group_tests_name("http1 response writer", tests, NULL, NULL);
}
