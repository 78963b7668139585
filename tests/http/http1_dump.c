/* http1_dump: prints what the HTTP/1.1 codec makes of each input record, so
 * that two builds of the codec can be compared byte for byte. Built twice by
 * tests/http/meson.build: with the one-pass fast path of http1.c and without
 * it (-DHTTP1_NO_FAST_PATH, llhttp alone); diff_fastpath.py feeds both the
 * same generated inputs and requires identical output.
 *
 * Input (stdin): records of a 4-byte little-endian length, a 1-byte chunk
 * size (0: all at once) and the bytes. Each record gets a fresh parser with
 * small limits, is fed in chunks of that size (as reads would cut it), and
 * its requests are printed until an error, the input's end, or 20 requests. */
#include "http1.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void field(const char *tag, struct app_str s)
{
	printf("%s=", tag);
	fwrite(s.base, 1, s.len, stdout);
	putchar('|');
}

static void dump_request(const struct http1_request *r)
{
	field("m", r->req.method);
	field("p", r->req.path);
	field("q", r->req.query);
	printf("v%d.%d ka%d up%d ex%d n%zu ", r->req.http_major, r->req.http_minor,
	       r->keep_alive, r->upgrade, r->expect_continue, r->req.nheaders);
	for (size_t i = 0; i < r->req.nheaders; i++) {
		field("h", r->req.headers[i].name);
		field("", r->req.headers[i].value);
	}
	printf("b%zu ", r->req.body.len);
}

/* Feeds data as a worker does: the unconsumed tail stays in front of the
 * next read's bytes. */
static void run(const char *data, size_t len, size_t chunk)
{
	struct http1_limits lim = http1_limits_default();
	lim.max_headers = 8;
	lim.max_header_bytes = 300;
	lim.max_body_bytes = 64;
	struct http1_parser *p = http1_parser_new(&lim);
	if (!p) {
		fputs("http1_dump: out of memory\n", stderr);
		exit(1);
	}
	static char buf[1 << 17];
	size_t have = 0, fed = 0;
	int requests = 0;
	for (;;) {
		size_t n = chunk ? chunk : len;
		if (n > len - fed)
			n = len - fed;
		memcpy(buf + have, data + fed, n);
		have += n;
		fed += n;
		size_t off = 0;
		enum http1_result res;
		do {
			struct http1_request r;
			size_t used = 0;
			res = http1_parse(p, buf + off, have - off, &used, &r);
			off += used;
			if (res == HTTP1_REQUEST) {
				printf("[R u%zu ", off);
				dump_request(&r);
				putchar(']');
				if (++requests == 20 || !r.keep_alive)
					goto done;
			}
		} while (res == HTTP1_REQUEST && off < have);
		if (res == HTTP1_ERROR) {
			printf("[E%d]", http1_parser_error_status(p));
			goto done;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (fed == len) {
			if (http1_parse_eof(p) == HTTP1_ERROR)
				printf("[eof E%d]", http1_parser_error_status(p));
			else
				printf("[eof]");
			goto done;
		}
	}
done:
	putchar('\n');
	http1_parser_free(p);
}

int main(void)
{
	static char data[1 << 16];
	unsigned char hdr[5];
	while (fread(hdr, 1, 5, stdin) == 5) {
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		               (uint32_t)hdr[3] << 24;
		if (len > sizeof(data) || fread(data, 1, len, stdin) != len) {
			fputs("http1_dump: truncated record\n", stderr);
			return 1;
		}
		run(data, len, hdr[4]);
	}
	return 0;
}
