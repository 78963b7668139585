/* bench_http1.c — what the codec costs per request on this machine: parsing
 * the request ab sends, the one wrk sends, 16 pipelined ones, and writing
 * the hello response. Run by `meson test --benchmark --suite http`; the
 * figures are ns per request (median of 5 runs; noisy on a busy machine). */
#include "http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 500000

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static const char ab_req[] =
    "GET /hello HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1:8080\r\n"
    "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n";
static const char wrk_req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/* Parse buf (one or more whole requests) N / per times; ns per request. */
static double parse_ns(struct http1_parser *p, const char *buf, size_t len, int per)
{
	double t = now_s();
	for (int i = 0; i < N / per; i++) {
		size_t off = 0;
		while (off < len) {
			struct http1_request r;
			size_t used;
			if (http1_parse(p, buf + off, len - off, &used, &r) != HTTP1_REQUEST)
				abort();
			off += used;
		}
	}
	return (now_s() - t) / N * 1e9;
}

static double write_ns(struct http_obuf *b)
{
	double t = now_s();
	for (int i = 0; i < N; i++) {
		if (http1_write_response(b, 0, 200, "text/plain", "Hello, World!", 13, true) != 0)
			abort();
		b->len = 0;
	}
	return (now_s() - t) / N * 1e9;
}

int main(void)
{
	struct http1_parser *p = http1_parser_new(NULL);
	struct http_obuf b;
	http_obuf_init(&b);
	char pipe[16 * sizeof(wrk_req)];
	size_t plen = 0;
	for (int i = 0; i < 16; i++) {
		memcpy(pipe + plen, wrk_req, sizeof(wrk_req) - 1);
		plen += sizeof(wrk_req) - 1;
	}
	double r[4][5];
	for (int k = 0; k < 5; k++) {
		r[0][k] = parse_ns(p, ab_req, sizeof(ab_req) - 1, 1);
		r[1][k] = parse_ns(p, wrk_req, sizeof(wrk_req) - 1, 1);
		r[2][k] = parse_ns(p, pipe, plen, 16);
		r[3][k] = write_ns(&b);
	}
	static const char *const what[] = {"parse ab request", "parse wrk request",
	                                   "parse 16 pipelined", "write hello response"};
	for (int i = 0; i < 4; i++) {
		qsort(r[i], 5, sizeof(double), cmp);
		printf("%-22s %6.0f ns/request\n", what[i], r[i][2]);
	}
	http_obuf_free(&b);
	http1_parser_free(p);
	return 0;
}
