/* bench_h2.c — what the HTTP/2 server codec costs per request on this
 * machine: a hello GET in, its answer out, with 1 and with 100 streams per
 * read (the h2load -m 100 case). The client's frames are built by hand once
 * (HPACK static-table and literal fields, no client session in the loop), so
 * the figure is the server side alone: nghttp2 + h2.c. Run by
 * `meson test --benchmark --suite h2`; ns per request, median of 5 runs
 * (noisy on a busy machine). */
#include "h2.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 200000
#define HELLO "Hello, World!"

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

static void frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	p[5] = (uint8_t)(id >> 24);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8);
	p[8] = (uint8_t)id;
}

/* GET http://127.0.0.1:8080/ as h2load sends it, minus the dynamic table:
 * :method GET, :scheme http, :path /, :authority and user-agent as literals
 * without indexing (0x0f 0x2b: static name index 58, user-agent). */
static const uint8_t block[] = {
    0x82, 0x86, 0x84, 0x01, 14,  '1', '2',  '7',  '.', '0', '.', '0', '.',
    '1',  ':',  '8',  '0',  '8', '0', 0x0f, 0x2b, 15,  'h', '2', 'l', 'o',
    'a',  'd',  ' ',  'n',  'g', 'h', 't',  't',  'p', '2', '/',
};

static struct h2_session *sess; /* the one being measured */
static long answered;

static void on_request(void *user, int32_t id, const struct app_request *req)
{
	(void)user, (void)req;
	if (h2_session_respond(sess, id, 200, "text/plain", HELLO, sizeof(HELLO) - 1) != 0)
		abort();
	answered++;
}

static void feed(const uint8_t *p, size_t n)
{
	if (h2_session_recv(sess, (const char *)p, n) != 0)
		abort();
}

/* ns per request with `per` requests per read, on one connection. */
static double run(int per)
{
	struct h2_callbacks cb = {on_request, NULL};
	sess = h2_session_new(NULL, &cb, NULL);
	if (!sess)
		abort();
	struct http_obuf out;
	http_obuf_init(&out);
	/* preface, empty SETTINGS, and a connection window big enough */
	static uint8_t hello[H2_PREFACE_LEN + 9 + 13];
	memcpy(hello, H2_PREFACE, H2_PREFACE_LEN);
	frame_head(hello + H2_PREFACE_LEN, 0, 0x4, 0, 0);
	uint8_t *wu = hello + H2_PREFACE_LEN + 9;
	frame_head(wu, 4, 0x8, 0, 0);
	wu[9] = 0x7f, wu[10] = 0xff, wu[11] = 0, wu[12] = 0; /* +2147418112 */
	feed(hello, sizeof(hello));

	static uint8_t buf[100 * (9 + sizeof(block))];
	uint32_t id = 1;
	answered = 0;
	double t = now_s();
	for (int i = 0; i < N / per; i++) {
		size_t len = 0;
		for (int k = 0; k < per; k++) {
			/* HEADERS, END_STREAM | END_HEADERS */
			frame_head(buf + len, sizeof(block), 0x1, 0x5, id);
			memcpy(buf + len + 9, block, sizeof(block));
			len += 9 + sizeof(block);
			id += 2;
		}
		feed(buf, len);
		if (h2_session_flush(sess, &out) != 0)
			abort();
		out.len = 0;
	}
	double ns = (now_s() - t) / N * 1e9;
	if (answered != N / per * per)
		abort();
	h2_session_free(sess);
	http_obuf_free(&out);
	return ns;
}

int main(void)
{
	double r[2][5];
	for (int k = 0; k < 5; k++) {
		r[0][k] = run(1);
		r[1][k] = run(100);
	}
	static const char *const what[] = {"GET + hello, 1/read", "GET + hello, 100/read"};
	for (int i = 0; i < 2; i++) {
		qsort(r[i], 5, sizeof(double), cmp);
		printf("%-22s %6.0f ns/request\n", what[i], r[i][2]);
	}
	return 0;
}
