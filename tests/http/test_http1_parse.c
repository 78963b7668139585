/* test_http1_parse.c — unit tests of the HTTP/1.1 request parser
 * (servers/http/http1.h): framing, splitting at every byte, pipelining,
 * keep-alive rules, limits and the request-smuggling cases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http1.h"
#include "http1_internal.h" /* http1_lower, TOKEN_EQ */

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static void assert_view(struct app_str v, const char *want)
{
	size_t n = strlen(want);
	if (v.len != n || (n && memcmp(v.base, want, n) != 0)) {
		fail_msg("view \"%.*s\" (len %zu) != \"%s\"", (int)v.len, v.base ? v.base : "",
		         v.len, want);
	}
}

static const struct app_str *header(const struct http1_request *r, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->req.nheaders; i++)
		if (r->req.headers[i].name.len == n &&
		    strncasecmp(r->req.headers[i].name.base, name, n) == 0)
			return &r->req.headers[i].value;
	return NULL;
}

/* Feed one buffer expecting exactly one complete request that uses it all. */
static struct http1_parser *parse_one(const char *data, size_t len, struct http1_request *out)
{
	struct http1_parser *p = http1_parser_new(NULL);
	assert_non_null(p);
	size_t used = 0;
	enum http1_result r = http1_parse(p, data, len, &used, out);
	if (r != HTTP1_REQUEST)
		fail_msg("expected a request, got %d (%d %s)", r, http1_parser_error_status(p),
		         http1_parser_error_reason(p));
	assert_int_equal(used, len);
	return p;
}

/* Feed a buffer expecting an error; returns the status to answer. */
static int parse_error_with(const struct http1_limits *lim, const char *data, size_t len)
{
	struct http1_parser *p = http1_parser_new(lim);
	struct http1_request out;
	size_t used = 0;
	enum http1_result r = http1_parse(p, data, len, &used, &out);
	if (r != HTTP1_ERROR)
		fail_msg("expected an error for \"%.*s\", got %d", (int)len, data, r);
	int status = http1_parser_error_status(p);
	assert_non_null(http1_parser_error_reason(p));
	/* Errors are sticky. */
	assert_int_equal(http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &out), HTTP1_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(http1_parse_eof(p), HTTP1_ERROR);
	http1_parser_free(p);
	return status;
}

static int parse_error(const char *data, size_t len)
{
	return parse_error_with(NULL, data, len);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort(); /* cmocka's asserts are not known to stop the compiler's flow */
	return p;
}

/* ---- plain requests ---- */

static void test_simple_get(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), &r);
	assert_view(r.req.method, "GET");
	assert_view(r.req.path, "/");
	assert_int_equal(r.req.query.len, 0);
	assert_int_equal(r.req.body.len, 0);
	/* empty views are still not NULL (NULL + 0 is undefined in C) */
	assert_non_null(r.req.query.base);
	assert_non_null(r.req.body.base);
	assert_int_equal(r.req.http_major, 1);
	assert_int_equal(r.req.http_minor, 1);
	assert_int_equal(r.req.nheaders, 1);
	assert_view(r.req.headers[0].name, "Host");
	assert_view(r.req.headers[0].value, "x");
	assert_true(r.keep_alive);
	assert_false(r.expect_continue);
	assert_false(r.upgrade);
	assert_int_equal(http1_parse_eof(p), HTTP1_NEED_MORE);
	http1_parser_free(p);
}

static void test_query_split(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("GET /a/b?x=1&y=two HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/a/b");
	assert_view(r.req.query, "x=1&y=two");
	http1_parser_free(p);

	p = parse_one(S("GET /only? HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/only");
	assert_view(r.req.query, "");
	http1_parser_free(p);

	p = parse_one(S("GET /a?b?c=d HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/a");
	assert_view(r.req.query, "b?c=d");
	http1_parser_free(p);

	/* absolute-form, as sent to a proxy */
	p = parse_one(S("GET http://example.com:8080/p/q?ms=5 HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/p/q");
	assert_view(r.req.query, "ms=5");
	http1_parser_free(p);

	p = parse_one(S("GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/");
	assert_view(r.req.query, "");
	http1_parser_free(p);

	p = parse_one(S("GET http://example.com?n=2 HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/");
	assert_view(r.req.query, "n=2");
	http1_parser_free(p);

	p = parse_one(S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.method, "OPTIONS");
	assert_view(r.req.path, "*");
	http1_parser_free(p);
}

static void test_headers(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("GET /h HTTP/1.1\r\n"
	                                     "Host: example.com\r\n"
	                                     "X-Mixed-Case:   spaced value  \r\n"
	                                     "Empty:\r\n"
	                                     "accept: */*\r\n"
	                                     "X-Tab:\tv\r\n"
	                                     "\r\n"),
	                                   &r);
	assert_int_equal(r.req.nheaders, 5);
	assert_view(r.req.headers[0].name, "Host");
	assert_view(r.req.headers[0].value, "example.com");
	assert_view(r.req.headers[1].name, "X-Mixed-Case");
	/* leading whitespace is not part of the value */
	assert_true(r.req.headers[1].value.len >= strlen("spaced value"));
	assert_memory_equal(r.req.headers[1].value.base, "spaced value", strlen("spaced value"));
	assert_view(r.req.headers[2].name, "Empty");
	assert_int_equal(r.req.headers[2].value.len, 0);
	assert_view(r.req.headers[3].name, "accept");
	assert_view(r.req.headers[3].value, "*/*");
	assert_view(r.req.headers[4].value, "v");
	assert_non_null(header(&r, "HOST"));
	http1_parser_free(p);

	/* Leading empty lines before a request are tolerated (RFC 9112 2.2). */
	p = parse_one(S("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), &r);
	assert_view(r.req.path, "/");
	http1_parser_free(p);
}

static void test_methods(void **state)
{
	(void)state;
	static const char *const methods[] = {"GET",    "HEAD",    "POST", "PUT",
	                                      "DELETE", "OPTIONS", "PATCH"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		char buf[128];
		int n = snprintf(buf, sizeof(buf), "%s /m HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		                 methods[i]);
		struct http1_request r;
		struct http1_parser *p = parse_one(buf, (size_t)n, &r);
		assert_view(r.req.method, methods[i]);
		http1_parser_free(p);
	}
}

static void test_post_content_length(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("POST /echo HTTP/1.1\r\nHost: h\r\n"
	                                     "Content-Length: 11\r\n"
	                                     "Content-Type: text/plain\r\n"
	                                     "\r\n"
	                                     "hello world"),
	                                   &r);
	assert_view(r.req.method, "POST");
	assert_view(r.req.body, "hello world");
	assert_true(r.keep_alive);
	http1_parser_free(p);

	p = parse_one(S("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), &r);
	assert_int_equal(r.req.body.len, 0);
	http1_parser_free(p);
}

static void test_body_binary(void **state)
{
	(void)state;
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 256\r\n\r\n");
	for (int i = 0; i < 256; i++)
		buf[n + i] = (char)i;
	struct http1_request r;
	struct http1_parser *p = parse_one(buf, (size_t)n + 256, &r);
	assert_int_equal(r.req.body.len, 256);
	assert_memory_equal(r.req.body.base, buf + n, 256);
	http1_parser_free(p);
}

static void test_large_body_in_pieces(void **state)
{
	(void)state;
	/* exactly the default limit, arriving in 1000-byte reads */
	const size_t body_len = 1024 * 1024;
	char head[96];
	int hn = snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n",
	                  body_len);
	size_t len = (size_t)hn + body_len;
	char *req = malloc(len);
	if (!req)
		abort();
	memcpy(req, head, (size_t)hn);
	for (size_t i = 0; i < body_len; i++)
		req[(size_t)hn + i] = (char)('a' + i % 26);
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t off = 0, used;
	enum http1_result res = HTTP1_NEED_MORE;
	while (off < len) {
		size_t n = len - off < 1000 ? len - off : 1000;
		res = http1_parse(p, req + off, n, &used, &r);
		assert_int_not_equal(res, HTTP1_ERROR);
		off += used;
	}
	assert_int_equal(res, HTTP1_REQUEST);
	assert_int_equal(r.req.body.len, body_len);
	assert_memory_equal(r.req.body.base, req + hn, body_len);
	/* a new connection on the same parser still works */
	http1_parser_reset(p);
	assert_int_equal(http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &r), HTTP1_REQUEST);
	assert_int_equal(r.req.body.len, 0);
	http1_parser_free(p);
	free(req);
}

/* Field names and the tokens the parser acts on are compared ASCII case
 * aside, through a table that must be ASCII's lower case and nothing else:
 * framing by upper-case names and values works, a name that differs in a
 * non-letter does not match ('\r' and '-' differ by 0x20 too). */
static void test_case_aside(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++)
		assert_int_equal(http1_lower[c], c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	assert_true(TOKEN_EQ("cOnTeNt-LeNgTh", 14, "content-length"));
	assert_false(TOKEN_EQ("content\rlength", 14, "content-length"));
	assert_false(TOKEN_EQ("CONTENT_LENGTH", 14, "content-length"));
	assert_false(TOKEN_EQ("content-lengt", 13, "content-length"));
	struct http1_request r;
	struct http1_parser *p =
	    parse_one(S("POST /u HTTP/1.1\r\nHOST: h\r\nCONTENT-LENGTH: 3\r\n\r\nabc"), &r);
	assert_view(r.req.body, "abc");
	http1_parser_free(p);
	p = parse_one(S("POST /c HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n"
	                "3\r\nabc\r\n0\r\n\r\n"),
	              &r);
	assert_view(r.req.body, "abc");
	http1_parser_free(p);
	p = parse_one(S("GET / HTTP/1.1\r\nHost: h\r\nCONNECTION: CLOSE\r\n\r\n"), &r);
	assert_false(r.keep_alive);
	http1_parser_free(p);
}

static void test_chunked(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("POST /c HTTP/1.1\r\nHost: h\r\n"
	                                     "Transfer-Encoding: chunked\r\n"
	                                     "\r\n"
	                                     "4;name=value\r\nWiki\r\n"
	                                     "5;a;b=\"q\"\r\npedia\r\n"
	                                     "E\r\n in\r\n\r\nchunks.\r\n"
	                                     "0\r\n"
	                                     "X-Trailer: yes\r\n"
	                                     "Another: one\r\n"
	                                     "\r\n"),
	                                   &r);
	assert_view(r.req.body, "Wikipedia in\r\n\r\nchunks.");
	/* trailers are not headers of the request */
	assert_int_equal(r.req.nheaders, 2);
	assert_null(header(&r, "X-Trailer"));
	assert_true(r.keep_alive);
	http1_parser_free(p);

	/* empty chunked body, upper-case hex, chunked with tab OWS */
	p = parse_one(S("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\r\n\r\n"
	                "A\r\n0123456789\r\n0\r\n\r\n"),
	              &r);
	assert_view(r.req.body, "0123456789");
	http1_parser_free(p);

	p = parse_one(S("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), &r);
	assert_int_equal(r.req.body.len, 0);
	http1_parser_free(p);
}

/* ---- split and pipelined input ---- */

/* What a worker does: append reads to a buffer, parse, keep leftovers. Feeds
 * the input in pieces cut at the given points; collects requests. */
struct collected {
	char method[16], path[64], query[64], body[256];
	size_t nheaders;
	bool keep_alive;
};

static void collect(struct collected *c, const struct http1_request *r)
{
	snprintf(c->method, sizeof(c->method), "%.*s", (int)r->req.method.len, r->req.method.base);
	snprintf(c->path, sizeof(c->path), "%.*s", (int)r->req.path.len, r->req.path.base);
	snprintf(c->query, sizeof(c->query), "%.*s", (int)r->req.query.len,
	         r->req.query.base ? r->req.query.base : "");
	snprintf(c->body, sizeof(c->body), "%.*s", (int)r->req.body.len,
	         r->req.body.base ? r->req.body.base : "");
	c->nheaders = r->req.nheaders;
	c->keep_alive = r->keep_alive;
}

static size_t feed_pieces(struct http1_parser *p, const char *data, size_t len, const size_t *cuts,
                          size_t ncuts, struct collected *got, size_t max)
{
	size_t n = 0, start = 0;
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		const char *chunk = data + start;
		size_t left = end - start;
		while (left > 0) {
			struct http1_request r;
			size_t used = 0;
			enum http1_result res = http1_parse(p, chunk, left, &used, &r);
			if (res == HTTP1_ERROR)
				fail_msg("error %d (%s) at cut %zu", http1_parser_error_status(p),
				         http1_parser_error_reason(p), end);
			assert_true(used <= left);
			if (res == HTTP1_REQUEST) {
				assert_true(n < max);
				collect(&got[n++], &r);
			} else {
				assert_int_equal(used, left);
			}
			chunk += used;
			left -= used;
		}
		start = end;
	}
	return n;
}

static const char pipeline[] = "GET /one?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                               "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                               "POST /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n"
                               "GET /four HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                               "GET /five HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

static void check_pipeline(const struct collected *got, size_t n)
{
	assert_int_equal(n, 5);
	assert_string_equal(got[0].method, "GET");
	assert_string_equal(got[0].path, "/one");
	assert_string_equal(got[0].query, "a=1");
	assert_string_equal(got[0].body, "");
	assert_true(got[0].keep_alive);
	assert_string_equal(got[1].method, "POST");
	assert_string_equal(got[1].path, "/two");
	assert_string_equal(got[1].body, "hello");
	assert_int_equal(got[1].nheaders, 2);
	assert_string_equal(got[2].path, "/three");
	assert_string_equal(got[2].body, "abcde");
	assert_int_equal(got[2].nheaders, 2);
	assert_string_equal(got[3].path, "/four");
	assert_true(got[3].keep_alive);
	assert_string_equal(got[4].path, "/five");
	assert_false(got[4].keep_alive);
}

static void test_pipelined_one_buffer(void **state)
{
	(void)state;
	struct http1_parser *p = http1_parser_new(NULL);
	struct collected got[8];
	size_t n = feed_pieces(p, pipeline, sizeof(pipeline) - 1, NULL, 0, got, 8);
	check_pipeline(got, n);
	assert_int_equal(http1_parse_eof(p), HTTP1_NEED_MORE);
	http1_parser_free(p);
}

static void test_pipelined_consumed_offsets(void **state)
{
	(void)state;
	static const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse(p, S(two), &used, &r), HTTP1_REQUEST);
	assert_int_equal(used, strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_view(r.req.path, "/a");
	size_t used2;
	assert_int_equal(http1_parse(p, two + used, sizeof(two) - 1 - used, &used2, &r),
	                 HTTP1_REQUEST);
	assert_int_equal(used + used2, sizeof(two) - 1);
	assert_view(r.req.path, "/b");
	assert_int_equal(http1_parse(p, "", 0, &used, &r), HTTP1_NEED_MORE);
	assert_int_equal(used, 0);
	http1_parser_free(p);
}

static void test_split_every_boundary(void **state)
{
	(void)state;
	const size_t len = sizeof(pipeline) - 1;
	struct http1_parser *p = http1_parser_new(NULL);
	for (size_t cut = 0; cut <= len; cut++) {
		struct collected got[8];
		size_t n = feed_pieces(p, pipeline, len, &cut, 1, got, 8);
		check_pipeline(got, n);
		/* the last request says close; start over as a new connection */
		http1_parser_reset(p);
	}
	http1_parser_free(p);
}

static void test_split_two_cuts(void **state)
{
	(void)state;
	/* every pair of cuts over one chunked request with trailers */
	static const char req[] =
	    "POST /x?q=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n4;e=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTr: x\r\n\r\n";
	const size_t len = sizeof(req) - 1;
	struct http1_parser *p = http1_parser_new(NULL);
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b++) {
			size_t cuts[2] = {a, b};
			struct collected got[2];
			size_t n = feed_pieces(p, req, len, cuts, 2, got, 2);
			assert_int_equal(n, 1);
			assert_string_equal(got[0].path, "/x");
			assert_string_equal(got[0].query, "q=1");
			assert_string_equal(got[0].body, "Wikipedia");
			assert_int_equal(got[0].nheaders, 2);
		}
	}
	http1_parser_free(p);
}

static void test_byte_at_a_time(void **state)
{
	(void)state;
	const size_t len = sizeof(pipeline) - 1;
	size_t cuts[sizeof(pipeline)];
	for (size_t i = 0; i < len; i++)
		cuts[i] = i;
	struct http1_parser *p = http1_parser_new(NULL);
	struct collected got[8];
	size_t n = feed_pieces(p, pipeline, len, cuts, len, got, 8);
	check_pipeline(got, n);
	http1_parser_free(p);
}

/* Random valid requests (random methods, headers, identity or chunked
 * bodies), pipelined and cut at random points: what comes out must be what
 * went in. A fixed seed keeps failures reproducible. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

struct gen_req {
	char path[32], body[200];
	size_t body_len, nheaders;
};

static size_t gen_one(char *out, struct gen_req *g)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	size_t n = 0;
	snprintf(g->path, sizeof(g->path), "/p%u", rnd(1000));
	n +=
	    (size_t)sprintf(out + n, "%s %s?k=%u HTTP/1.1\r\nHost: h\r\n", methods[rnd(4)], g->path, rnd(100));
	g->nheaders = rnd(6);
	for (size_t i = 0; i < g->nheaders; i++)
		n += (size_t)sprintf(out + n, "X-H%zu: %.*s\r\n", i, (int)rnd(40),
		                     "value value value value value value value value");
	g->body_len = rnd(4) == 0 ? 0 : rnd(sizeof(g->body));
	for (size_t i = 0; i < g->body_len; i++)
		g->body[i] = (char)rnd(256);
	if (g->body_len && rnd(2)) {
		g->nheaders++;
		n += (size_t)sprintf(out + n, "Transfer-Encoding: chunked\r\n\r\n");
		size_t off = 0;
		while (off < g->body_len) {
			size_t c = 1 + rnd((unsigned)(g->body_len - off));
			n += (size_t)sprintf(out + n, rnd(3) ? "%zx\r\n" : "%zX;ext=1\r\n", c);
			memcpy(out + n, g->body + off, c);
			n += c;
			off += c;
			n += (size_t)sprintf(out + n, "\r\n");
		}
		n += (size_t)sprintf(out + n, rnd(2) ? "0\r\n\r\n" : "0\r\nT: x\r\n\r\n");
	} else {
		g->nheaders++;
		n += (size_t)sprintf(out + n, "Content-Length: %zu\r\n\r\n", g->body_len);
		memcpy(out + n, g->body, g->body_len);
		n += g->body_len;
	}
	return n;
}

static void test_random_pipelines(void **state)
{
	(void)state;
	enum { NREQ = 12 };
	char *buf = xmalloc(NREQ * 1024);
	struct http1_parser *p = http1_parser_new(NULL);
	for (int round = 0; round < 300; round++) {
		struct gen_req want[NREQ];
		size_t len = 0;
		for (int i = 0; i < NREQ; i++)
			len += gen_one(buf + len, &want[i]);
		size_t got = 0, off = 0;
		while (off < len) {
			size_t read = 1 + rnd(rnd(2) ? 16 : 700);
			if (read > len - off)
				read = len - off;
			size_t left = read;
			while (left > 0) {
				struct http1_request r;
				size_t used;
				enum http1_result res = http1_parse(p, buf + off, left, &used, &r);
				assert_int_not_equal(res, HTTP1_ERROR);
				if (res == HTTP1_REQUEST) {
					assert_true(got < NREQ);
					struct gen_req *w = &want[got++];
					assert_true(r.req.path.len == strlen(w->path));
					assert_memory_equal(r.req.path.base, w->path,
					                    r.req.path.len);
					assert_int_equal(r.req.nheaders, w->nheaders + 1); /* + Host */
					assert_int_equal(r.req.body.len, w->body_len);
					if (w->body_len)
						assert_memory_equal(r.req.body.base, w->body,
						                    w->body_len);
					assert_true(r.keep_alive);
				}
				off += used;
				left -= used;
			}
		}
		assert_int_equal(got, NREQ);
		assert_int_equal(http1_parse_eof(p), HTTP1_NEED_MORE);
	}
	http1_parser_free(p);
	free(buf);
}

static void test_views_survive_split_head(void **state)
{
	(void)state;
	/* a header name and value cut in the middle must come out contiguous,
	 * even once the caller's buffers are gone */
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	char a[] = "GET /pa";
	char b[] = "th?k=v HTTP/1.1\r\nHost: h\r\nX-Lo";
	char c[] = "ng-Name: val";
	char d[] = "ue-here\r\n\r\n";
	assert_int_equal(http1_parse(p, a, strlen(a), &used, &r), HTTP1_NEED_MORE);
	memset(a, 'Z', strlen(a));
	assert_int_equal(http1_parse(p, b, strlen(b), &used, &r), HTTP1_NEED_MORE);
	memset(b, 'Z', strlen(b));
	assert_int_equal(http1_parse(p, c, strlen(c), &used, &r), HTTP1_NEED_MORE);
	memset(c, 'Z', strlen(c));
	assert_int_equal(http1_parse(p, d, strlen(d), &used, &r), HTTP1_REQUEST);
	memset(d, 'Z', strlen(d));
	assert_view(r.req.path, "/path");
	assert_view(r.req.query, "k=v");
	assert_int_equal(r.req.nheaders, 2);
	assert_view(r.req.headers[1].name, "X-Long-Name");
	assert_view(r.req.headers[1].value, "value-here");
	http1_parser_free(p);
}

/* ---- keep-alive ---- */

static bool keep_alive_of(const char *req)
{
	struct http1_request r;
	struct http1_parser *p = parse_one(req, strlen(req), &r);
	bool ka = r.keep_alive;
	http1_parser_free(p);
	return ka;
}

static void test_keep_alive_rules(void **state)
{
	(void)state;
	assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\nconnection: Close\r\n\r\n"));
	assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
	assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
	assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"));
	/* ab -k sends exactly this */
	assert_true(
	    keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: "
	                  "127.0.0.1\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n"));
	assert_true(keep_alive_of("POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
	                          "Content-Length: 2\r\n\r\nok"));
}

static void test_http10_version(void **state)
{
	(void)state;
	struct http1_request r;
	struct http1_parser *p = parse_one(S("GET /old HTTP/1.0\r\n\r\n"), &r);
	assert_int_equal(r.req.http_major, 1);
	assert_int_equal(r.req.http_minor, 0);
	assert_false(r.keep_alive);
	http1_parser_free(p);
}

/* ---- limits ---- */

static char *repeat(const char *prefix, char fill, size_t n, const char *suffix, size_t *len)
{
	size_t a = strlen(prefix), c = strlen(suffix);
	char *s = xmalloc(a + n + c + 1);
	memcpy(s, prefix, a);
	memset(s + a, fill, n);
	memcpy(s + a + n, suffix, c + 1);
	*len = a + n + c;
	return s;
}

static void test_431_big_header_block(void **state)
{
	(void)state;
	size_t len;
	char *big = repeat("GET / HTTP/1.1\r\nHost: h\r\nX-Big: ", 'a', 9000, "\r\n\r\n", &len);
	assert_int_equal(parse_error(big, len), 431);
	free(big);

	/* a long target counts too */
	big = repeat("GET /", 'u', 9000, " HTTP/1.1\r\nHost: h\r\n\r\n", &len);
	assert_int_equal(parse_error(big, len), 431);
	free(big);

	/* endless whitespace produces no callbacks but is still counted */
	big = repeat("GET / HTTP/1.1\r\nHost: h\r\nX:", ' ', 20000, "", &len);
	assert_int_equal(parse_error(big, len), 431);
	free(big);
}

static void test_431_exact_boundary(void **state)
{
	(void)state;
	struct http1_limits lim = http1_limits_default();
	lim.max_header_bytes = 64;
	/* exactly 64 bytes of head: accepted; 65: refused */
	const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
	size_t fill = 64 - strlen(pre) - 4;
	size_t len;
	char *req = repeat(pre, 'v', fill, "\r\n\r\n", &len);
	assert_int_equal(len, 64);
	struct http1_parser *p = http1_parser_new(&lim);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse(p, req, len, &used, &r), HTTP1_REQUEST);
	/* the limit is per request: a second one of the same size passes too */
	assert_int_equal(http1_parse(p, req, len, &used, &r), HTTP1_REQUEST);
	http1_parser_free(p);
	free(req);

	req = repeat(pre, 'v', fill + 1, "\r\n\r\n", &len);
	assert_int_equal(parse_error_with(&lim, req, len), 431);
	free(req);
}

static void test_431_big_header_in_pieces(void **state)
{
	(void)state;
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\nX-Big: "), &used, &r),
	                 HTTP1_NEED_MORE);
	char piece[100];
	memset(piece, 'b', sizeof(piece));
	enum http1_result res = HTTP1_NEED_MORE;
	int rounds = 0;
	while (res == HTTP1_NEED_MORE && rounds++ < 200)
		res = http1_parse(p, piece, sizeof(piece), &used, &r);
	assert_int_equal(res, HTTP1_ERROR);
	assert_int_equal(http1_parser_error_status(p), 431);
	/* stopped at the limit, not at the end of the input */
	assert_true(rounds <= 8192 / 100 + 1);
	http1_parser_free(p);
}

static char *many_headers(size_t n, size_t *len)
{
	char *s = xmalloc(64 + n * 16);
	size_t off = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (size_t i = 1; i < n; i++) /* Host is one of the n */
		off += (size_t)sprintf(s + off, "H%zu: v\r\n", i);
	off += (size_t)sprintf(s + off, "\r\n");
	*len = off;
	return s;
}

static void test_431_too_many_headers(void **state)
{
	(void)state;
	size_t len;
	char *req = many_headers(100, &len);
	struct http1_request r;
	struct http1_parser *p = parse_one(req, len, &r);
	assert_int_equal(r.req.nheaders, 100);
	assert_view(r.req.headers[0].name, "Host");
	assert_view(r.req.headers[99].name, "H99");
	http1_parser_free(p);
	free(req);

	req = many_headers(101, &len);
	assert_int_equal(parse_error(req, len), 431);
	free(req);

	struct http1_limits lim = http1_limits_default();
	lim.max_headers = 3;
	req = many_headers(4, &len);
	assert_int_equal(parse_error_with(&lim, req, len), 431);
	free(req);
}

static void test_413_declared_body(void **state)
{
	(void)state;
	/* refused at the head, before any body byte arrives */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n")), 413);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n")),
	                 413);

	struct http1_limits lim = http1_limits_default();
	lim.max_body_bytes = 10;
	struct http1_parser *p = http1_parser_new(&lim);
	struct http1_request r;
	size_t used;
	assert_int_equal(
	    http1_parse(p, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"), &used, &r),
	    HTTP1_REQUEST);
	assert_view(r.req.body, "0123456789");
	http1_parser_free(p);
	assert_int_equal(parse_error_with(&lim, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n")),
	                 413);
}

static void test_413_chunked_body(void **state)
{
	(void)state;
	struct http1_limits lim = http1_limits_default();
	lim.max_body_bytes = 10;
	/* accumulated over chunks */
	assert_int_equal(
	    parse_error_with(&lim, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                             "\r\n6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n")),
	    413);
	/* one announced chunk too big: refused before its data */
	assert_int_equal(
	    parse_error_with(&lim, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                             "\r\nB\r\n")),
	    413);
	/* default limit, huge chunk size */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "\r\n100000000\r\n")),
	                 413);
	/* exactly at the limit: fine */
	struct http1_parser *p = http1_parser_new(&lim);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse(p,
	                             S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"),
	                             &used, &r),
	                 HTTP1_REQUEST);
	assert_view(r.req.body, "abcdefghij");
	http1_parser_free(p);
}

static void test_431_big_trailers(void **state)
{
	(void)state;
	size_t len;
	char *req = repeat("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ", 't',
	                   9000, "\r\n\r\n", &len);
	assert_int_equal(parse_error(req, len), 431);
	free(req);
}

/* ---- malformed and smuggling ---- */

static void test_400_request_line(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("GET\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET /\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("G@T / HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("FOO / HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1 extra\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")), 400);
}

static void test_400_bad_version(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("GET / HTTP/1.2\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/2.0\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/0.9\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/3.1\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTX/1.1\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.x\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/11\r\n\r\n")), 400);
}

static void test_400_bad_header(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nX\x01Y: x\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n: empty-name\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nA:\r\n:\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f"
	                               "b\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "zz\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "3\r\nabcX\r\n")),
	                 400);
	/* chunk size that overflows 64 bits */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "1ffffffffffffffff\r\n")),
	                 400);
}

static void test_400_cl_and_te(void **state)
{
	(void)state;
	/* CL.TE and TE.CL, both orders, with and without a body */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n"
	                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
	                               "Transfer-Encoding: chunked\r\n\r\n")),
	                 400);
	/* a huge CL beside TE is still a 400, not a 413 */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "Content-Length: 99999999\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n"
	                               "Transfer-Encoding: chunked\r\n\r\n")),
	                 400);
}

static void test_400_duplicate_content_length(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	                               "Content-Length: 6\r\n\r\nhello!")),
	                 400);
	/* llhttp refuses identical duplicates too; RFC 9112 6.3 allows that */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	                               "Content-Length: 5\r\n\r\nhello")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!")),
	                 400);
}

static void test_400_obfuscated_te(void **state)
{
	(void)state;
	/* A coding other than chunked alone: 501, as nginx answers it. */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"
	                               "0\r\n\r\n")),
	                 501);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n"
	                               "0\r\n\r\n")),
	                 501);
	/* chunked not last: strict llhttp refuses it itself, 400 */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n"
	                               "\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n")),
	                 501);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
	                               "\r\n0\r\n\r\n")),
	                 501);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n"
	                               "\r\n0\r\n\r\n")),
	                 501);
	/* twice, even both chunked; on HTTP/1.0 */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n"
	                               "0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "Transfer-Encoding: x\r\n\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	                               "Content-Length: 4\r\nTransfer-Encoding: cow\r\n\r\n")),
	                 400);
	/* obs-fold hiding the value on a continuation line */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n"
	                               "Content-Length: 3\r\n\r\nabc")),
	                 400);
	/* a TE header hidden in an obs-fold continuation of another header */
	assert_int_equal(
	    parse_error(S("POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n"
	                  "Content-Length: 3\r\n\r\nabc")),
	    400);
}

/* Issue 19: what strict HTTP/1.1 refuses, each with the status nginx gives. */
static void test_strict_chunk_framing(void **state)
{
	(void)state;
	/* Any two bytes after a chunk's data were its CRLF: the request after
	 * "XX" was parsed as a second one. */
	static const char xx[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                         "5\r\nhelloXX0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
	assert_int_equal(parse_error(S(xx)), 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "5\r\nhello\n0\r\n\r\n")),
	                 400);
	/* chunk sizes: space before or after, bare LF, a sign, 2^64 */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               " 5\r\nhello\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "5 \r\nhello\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "5\nhello\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "+5\r\nhello\r\n0\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "10000000000000000\r\n")),
	                 400);
	/* a framing field in the trailers */
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "0\r\nTransfer-Encoding: chunked\r\n\r\n")),
	                 400);
	assert_int_equal(parse_error(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "0\r\ncontent-length: 5\r\n\r\n")),
	                 400);
	/* chunk extensions past the header budget */
	struct http1_limits lim = http1_limits_default();
	lim.max_header_bytes = 256;
	size_t len;
	char *ext = repeat("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=",
	                   'e', 300, "\r\nx\r\n0\r\n\r\n", &len);
	assert_int_equal(parse_error_with(&lim, ext, len), 400);
	free(ext);
	/* an extension and an ordinary trailer are fine */
	struct http1_request r;
	struct http1_parser *p =
	    parse_one(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "5;name=\"v w\"\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"),
	              &r);
	assert_view(r.req.body, "hello");
	http1_parser_free(p);
}

static void test_strict_host(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")), 400);
	assert_int_equal(parse_error(S("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n")), 400);
	static const char *const bad[] = {"a b", "a/b", "a@b", "a:b", "a:1:2", "a:8x", "[::1",
	                                  "[]", "a\\b", "a?b", "a#b", "[::1]x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[128];
		int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		if (parse_error(buf, (size_t)n) != 400)
			fail_msg("Host: %s was not refused", bad[i]);
	}
	static const char *const good[] = {"",         "a",        "a.b.c:8080", "127.0.0.1:1",
	                                   "[::1]",    "[::1]:80", "xn--d-x.y",  "a_b~c%20",
	                                   "example."};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char buf[128];
		int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
		struct http1_request r;
		http1_parser_free(parse_one(buf, (size_t)n, &r));
	}
	/* HTTP/1.0 needs none */
	struct http1_request r;
	http1_parser_free(parse_one(S("GET / HTTP/1.0\r\n\r\n"), &r));
}

static void test_strict_methods(void **state)
{
	(void)state;
	assert_int_equal(parse_error(S("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")), 405);
	assert_int_equal(parse_error(S("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n")), 405);
	assert_int_equal(parse_error(S("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n")), 501);
	assert_int_equal(parse_error(S("PURGE / HTTP/1.1\r\nHost: a\r\n\r\n")), 501);
	/* the refusal comes after the framing is known to be sane */
	assert_int_equal(parse_error(S("CONNECT a:443 HTTP/1.1\r\n\r\n")), 400);
	assert_int_equal(http_method_refusal(S("GET")), 0);
	assert_int_equal(http_method_refusal(S("PATCH")), 0);
	assert_int_equal(http_method_refusal(S("get")), 501);
	assert_int_equal(http_method_refusal(S("CONNECT")), 405);
	/* "*" is OPTIONS's target only */
	assert_int_equal(parse_error(S("GET * HTTP/1.1\r\nHost: a\r\n\r\n")), 400);
	struct http1_request r;
	http1_parser_free(parse_one(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &r));
}

static void test_strict_connection_list(void **state)
{
	(void)state;
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
	                           "Connection: close\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"));
	assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive, te\r\n\r\n"));
}

/* Feed data cut at one point; return the outcome of the last call. */
static enum http1_result parse_cut(struct http1_parser *p, const char *data, size_t len, size_t cut,
                                   struct http1_request *r)
{
	size_t used;
	enum http1_result res = http1_parse(p, data, cut, &used, r);
	if (res != HTTP1_NEED_MORE)
		return res;
	return http1_parse(p, data + cut, len - cut, &used, r);
}

static void test_obs_fold_refused_at_every_cut(void **state)
{
	(void)state;
	static const char folded[] = "POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n"
	                             "Content-Length: 3\r\n\r\nabc";
	static const char spaced[] = "POST / HTTP/1.1\r\nHost: x\r\nX:  a \t b   c\r\n"
	                             "Content-Length: 3\r\n\r\nabc";
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	for (size_t cut = 0; cut <= sizeof(folded) - 1; cut++) {
		http1_parser_reset(p);
		assert_int_equal(parse_cut(p, S(folded), cut, &r), HTTP1_ERROR);
		assert_int_equal(http1_parser_error_status(p), 400);
	}
	for (size_t cut = 0; cut <= sizeof(spaced) - 1; cut++) {
		http1_parser_reset(p);
		assert_int_equal(parse_cut(p, S(spaced), cut, &r), HTTP1_REQUEST);
		assert_int_equal(r.req.nheaders, 3);
		assert_view(r.req.headers[1].value, "a \t b   c");
		assert_view(r.req.body, "abc");
	}
	http1_parser_free(p);
}

static void test_parse_eof(void **state)
{
	(void)state;
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse_eof(p), HTTP1_NEED_MORE); /* idle */

	/* mid-head */
	assert_int_equal(http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\nHo"), &used, &r), HTTP1_NEED_MORE);
	assert_int_equal(http1_parse_eof(p), HTTP1_ERROR);
	assert_int_equal(http1_parser_error_status(p), 400);
	http1_parser_reset(p);

	/* mid-body */
	assert_int_equal(
	    http1_parse(p, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc"), &used, &r),
	    HTTP1_NEED_MORE);
	assert_int_equal(http1_parse_eof(p), HTTP1_ERROR);
	http1_parser_reset(p);

	/* mid-chunked-body */
	assert_int_equal(http1_parse(p,
	                             S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "3\r\nabc\r\n"),
	                             &used, &r),
	                 HTTP1_NEED_MORE);
	assert_int_equal(http1_parse_eof(p), HTTP1_ERROR);
	http1_parser_reset(p);

	/* after a complete request: idle again */
	assert_int_equal(http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &r), HTTP1_REQUEST);
	assert_int_equal(http1_parse_eof(p), HTTP1_NEED_MORE);

	/* only empty lines so far: idle */
	http1_parser_reset(p);
	assert_int_equal(http1_parse(p, S("\r\n"), &used, &r), HTTP1_NEED_MORE);
	http1_parser_free(p);
}

static void test_reset_forgets_partial(void **state)
{
	(void)state;
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	assert_int_equal(
	    http1_parse(p, S("POST /old HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nxx"), &used, &r),
	    HTTP1_NEED_MORE);
	http1_parser_reset(p);
	assert_int_equal(http1_parse(p, S("GET /new HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &r), HTTP1_REQUEST);
	assert_view(r.req.path, "/new");
	assert_int_equal(r.req.body.len, 0);

	/* reset also clears a previous error */
	assert_int_equal(http1_parse(p, S("BAD\r\n\r\n"), &used, &r), HTTP1_ERROR);
	http1_parser_reset(p);
	assert_int_equal(http1_parse(p, S("GET /again HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &r),
	                 HTTP1_REQUEST);
	assert_view(r.req.path, "/again");
	http1_parser_free(p);
}

static void test_expect_continue(void **state)
{
	(void)state;
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	assert_int_equal(http1_parse(p,
	                             S("POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
	                               "Content-Length: 4\r\n\r\n"),
	                             &used, &r),
	                 HTTP1_NEED_MORE);
	assert_true(http1_parser_take_continue(p));
	assert_false(http1_parser_take_continue(p)); /* once */
	assert_int_equal(http1_parse(p, S("data"), &used, &r), HTTP1_REQUEST);
	assert_true(r.expect_continue);
	assert_view(r.req.body, "data");

	/* the body came along with the head: nothing to announce */
	assert_int_equal(http1_parse(p,
	                             S("POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
	                               "Content-Length: 4\r\n\r\nda"),
	                             &used, &r),
	                 HTTP1_NEED_MORE);
	assert_false(http1_parser_take_continue(p));
	assert_int_equal(http1_parse(p, S("ta"), &used, &r), HTTP1_REQUEST);
	assert_true(r.expect_continue);

	/* no Expect */
	assert_int_equal(
	    http1_parse(p, S("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"), &used, &r),
	    HTTP1_NEED_MORE);
	assert_false(http1_parser_take_continue(p));
	assert_int_equal(http1_parse(p, S("data"), &used, &r), HTTP1_REQUEST);
	assert_false(r.expect_continue);

	/* HTTP/1.0 clients never get a 100 */
	assert_int_equal(http1_parse(p,
	                             S("POST /e HTTP/1.0\r\nConnection: keep-alive\r\n"
	                               "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
	                             &used, &r),
	                 HTTP1_NEED_MORE);
	assert_false(http1_parser_take_continue(p));
	http1_parser_free(p);
}

static void test_upgrade_flagged(void **state)
{
	(void)state;
	static const char req[] =
	    "GET /u HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
	    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
	    "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used, total = 0;
	assert_int_equal(http1_parse(p, S(req), &used, &r), HTTP1_REQUEST);
	assert_true(r.upgrade);
	assert_view(r.req.path, "/u");
	total += used;
	/* answered as plain HTTP/1.1: the next request still parses */
	assert_int_equal(http1_parse(p, req + total, sizeof(req) - 1 - total, &used, &r),
	                 HTTP1_REQUEST);
	assert_false(r.upgrade);
	assert_view(r.req.path, "/next");
	http1_parser_free(p);

	struct http1_request r2;
	p = parse_one(S("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"), &r2);
	assert_false(r2.upgrade); /* no "Connection: upgrade": not an upgrade */
	http1_parser_free(p);
}

static void test_no_steady_state_malloc(void **state)
{
	(void)state;
	static const char req[] = "POST /s?x=1 HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n"
	                          "Content-Length: 5\r\n\r\nhello"
	                          "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nhello\r\n0\r\n\r\n";
	struct http1_parser *p = http1_parser_new(NULL);
	struct http1_request r;
	size_t used;
	for (int warm = 0; warm < 4; warm++) {
		size_t off = 0;
		while (off < sizeof(req) - 1) {
			assert_int_equal(
			    http1_parse(p, req + off, sizeof(req) - 1 - off, &used, &r),
			    HTTP1_REQUEST);
			off += used;
		}
	}
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < 1000; i++) {
		size_t off = 0;
		while (off < sizeof(req) - 1) {
			assert_int_equal(
			    http1_parse(p, req + off, sizeof(req) - 1 - off, &used, &r),
			    HTTP1_REQUEST);
			off += used;
		}
	}
	struct mallinfo2 after = mallinfo2();
	assert_int_equal(before.uordblks, after.uordblks);
	http1_parser_free(p);
}

/* The end-of-head scan behind the workers' request-head deadline: found
 * whole, split at every byte, with bare LF, and not fooled by one CRLF. */
static void test_head_scan(void **state)
{
	(void)state;
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n = sizeof(req) - 1;
	uint8_t st = 0;
	assert_true(http1_head_scan(&st, req, n));
	assert_int_equal(st, 0);
	for (size_t cut = 1; cut < n; cut++) {
		st = 0;
		assert_false(http1_head_scan(&st, req, cut));
		assert_true(http1_head_scan(&st, req + cut, n - cut));
	}
	st = 0;
	assert_true(http1_head_scan(&st, "GET / HTTP/1.0\n\n", 16));
	st = 0;
	assert_false(http1_head_scan(&st, "GET / HTTP/1.1\r\nHost: x\r\n", 25));
	assert_int_not_equal(st, 0);
	assert_false(http1_head_scan(&st, "Accept: */*\r", 12));
	assert_true(http1_head_scan(&st, "\n\r\n", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),
	    cmocka_unit_test(test_query_split),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_methods),
	    cmocka_unit_test(test_post_content_length),
	    cmocka_unit_test(test_body_binary),
	    cmocka_unit_test(test_large_body_in_pieces),
	    cmocka_unit_test(test_case_aside),
	    cmocka_unit_test(test_chunked),
	    cmocka_unit_test(test_strict_chunk_framing),
	    cmocka_unit_test(test_strict_host),
	    cmocka_unit_test(test_strict_methods),
	    cmocka_unit_test(test_strict_connection_list),
	    cmocka_unit_test(test_pipelined_one_buffer),
	    cmocka_unit_test(test_pipelined_consumed_offsets),
	    cmocka_unit_test(test_split_every_boundary),
	    cmocka_unit_test(test_split_two_cuts),
	    cmocka_unit_test(test_byte_at_a_time),
	    cmocka_unit_test(test_random_pipelines),
	    cmocka_unit_test(test_views_survive_split_head),
	    cmocka_unit_test(test_keep_alive_rules),
	    cmocka_unit_test(test_http10_version),
	    cmocka_unit_test(test_431_big_header_block),
	    cmocka_unit_test(test_431_exact_boundary),
	    cmocka_unit_test(test_431_big_header_in_pieces),
	    cmocka_unit_test(test_431_too_many_headers),
	    cmocka_unit_test(test_431_big_trailers),
	    cmocka_unit_test(test_413_declared_body),
	    cmocka_unit_test(test_413_chunked_body),
	    cmocka_unit_test(test_400_request_line),
	    cmocka_unit_test(test_400_bad_version),
	    cmocka_unit_test(test_400_bad_header),
	    cmocka_unit_test(test_400_cl_and_te),
	    cmocka_unit_test(test_400_duplicate_content_length),
	    cmocka_unit_test(test_400_obfuscated_te),
	    cmocka_unit_test(test_obs_fold_refused_at_every_cut),
	    cmocka_unit_test(test_parse_eof),
	    cmocka_unit_test(test_reset_forgets_partial),
	    cmocka_unit_test(test_expect_continue),
	    cmocka_unit_test(test_upgrade_flagged),
	    cmocka_unit_test(test_no_steady_state_malloc),
	    cmocka_unit_test(test_head_scan),
	};
	return cmocka_run_group_tests_name("http1 parser", tests, NULL, NULL);
}
