/* Unit tests of loadgen's response-head reading: ab's lenient rules for
 * the head's end, status, keep-alive and length, and the chunked decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "resp.h"

#define S(x) x, sizeof(x) - 1

static void test_head_end(void **state)
{
	(void)state;
	int tl = 0;
	assert_int_equal(resp_head_end(S("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), &tl), 21);
	assert_int_equal(tl, 4);
	assert_int_equal(resp_head_end(S("HTTP/1.0 200 OK\nA: b\n\nbody"), &tl), 20);
	assert_int_equal(tl, 2);
	assert_int_equal(resp_head_end(S("HTTP/1.1 200 OK\r\nA: b\r\n"), &tl), -1);
}

static void test_parse_keepalive(void **state)
{
	(void)state;
	struct resp_head h;
	const char head[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1 (Debian)\r\n"
	                    "content-length: 6\r\nConnection: keep-alive";
	resp_parse_head(S(head), &h);
	assert_string_equal(h.code, "200");
	assert_int_equal(h.status, 200);
	assert_int_equal(h.http11, 1);
	assert_int_equal(h.ka_token, 1);
	assert_int_equal(h.conn_close, 0);
	assert_int_equal(h.chunked, 0);
	assert_int_equal(h.content_length, 6);
	char name[64];
	resp_server_name(S(head), name, sizeof name);
	assert_string_equal(name, "nginx/1.22.1"); /* ab stops at the space */
}

static void test_parse_close_chunked(void **state)
{
	(void)state;
	struct resp_head h;
	resp_parse_head(S("HTTP/1.0 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
	                  "Connection: close"),
	                &h);
	assert_string_equal(h.code, "404");
	assert_int_equal(h.http11, 0);
	assert_int_equal(h.ka_token, 0);
	assert_int_equal(h.conn_close, 1);
	assert_int_equal(h.chunked, 1);
	assert_int_equal(h.content_length, -1);
}

static void test_parse_garbage(void **state)
{
	(void)state;
	struct resp_head h;
	resp_parse_head(S("garbage"), &h);
	assert_string_equal(h.code, "500"); /* ab's default when no status line */
	assert_int_equal(h.status, 500);
	char name[8];
	resp_server_name(S("X: y"), name, sizeof name);
	assert_string_equal(name, "");
}

static void test_find_ci(void **state)
{
	(void)state;
	const char *h = "Connection: KEEP-ALIVE";
	assert_ptr_equal(resp_find_ci(h, strlen(h), "keep-alive"), h + 12);
	assert_null(resp_find_ci(h, strlen(h), "keep-alivex"));
	assert_ptr_equal(resp_find_ci(h, strlen(h), "connection"), h);
	assert_null(resp_find_ci(h, 5, "Connection"));
	/* all letters: both cases of each, and nothing else, match */
	const char *c = "Connection: {LOSE} cLoSe";
	assert_ptr_equal(resp_find_ci(c, strlen(c), "close"), c + 19);
	assert_ptr_equal(resp_find_ci(c, strlen(c), "CLOSE"), c + 19);
	assert_null(resp_find_ci(c, strlen(c) - 1, "close"));
	assert_ptr_equal(resp_find_ci(c, strlen(c), ""), c);
}

/* The heads' own searches (for Keep-Alive, Content-Length:, close) find
 * them in any case, and only whole. */
static void test_parse_case(void **state)
{
	(void)state;
	struct resp_head h;
	const char head[] = "HTTP/1.1 200 OK\r\ncontent-LENGTH: 12\r\nCONNECTION: Close\r\n"
	                    "X-Note: KEEP-alive";
	resp_parse_head(S(head), &h);
	assert_int_equal(h.content_length, 12);
	assert_int_equal(h.conn_close, 1);
	assert_int_equal(h.ka_token, 1);
	const char none[] = "HTTP/1.1 200 OK\r\nContent-Lengt: 12\r\nConnection: clos\r\n"
	                    "X: Keep-Aliv";
	resp_parse_head(S(none), &h);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(h.conn_close, 0);
	assert_int_equal(h.ka_token, 0);
}

static void test_chunked(void **state)
{
	(void)state;
	struct resp_chunked c = {0};
	size_t used = 0;
	const char body[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
	/* byte by byte: the decoder must keep its place across reads */
	int done = 0;
	size_t i;
	for (i = 0; i < sizeof body - 1 && !done; i++) {
		done = resp_chunked_feed(&c, body + i, 1, &used);
		assert_true(done >= 0);
	}
	assert_int_equal(done, 1);
	assert_int_equal(i, sizeof body - 1 - 4);
	struct resp_chunked d = {0};
	assert_int_equal(resp_chunked_feed(&d, S(body), &used), 1);
	assert_int_equal(used, sizeof body - 1 - 4);
	struct resp_chunked e = {0};
	assert_int_equal(resp_chunked_feed(&e, S("zz\r\n"), &used), -1);
	struct resp_chunked f = {0};
	assert_int_equal(resp_chunked_feed(&f, S("0\r\nTrailer: x\r\n\r\n"), &used), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_end),
	    cmocka_unit_test(test_parse_keepalive),
	    cmocka_unit_test(test_parse_close_chunked),
	    cmocka_unit_test(test_parse_garbage),
	    cmocka_unit_test(test_find_ci),
	    cmocka_unit_test(test_parse_case),
	    cmocka_unit_test(test_chunked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
