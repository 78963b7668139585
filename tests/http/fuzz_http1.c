/* fuzz_http1.c — libFuzzer target for the HTTP/1.1 parser: any bytes, cut
 * into reads of fuzzer-chosen sizes, must never crash, leak or break the
 * parser's promises (consumed <= len, views inside sane bounds, limits
 * held). Built with -Dfuzz=true (clang). */
#include "http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct http1_request *r, const struct http1_limits *lim)
{
	/* touching every byte lets ASan catch a view past its storage */
	volatile unsigned char sink = 0;
	const struct app_str *v[] = {&r->req.method, &r->req.path, &r->req.query, &r->req.body};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i]->len && !v[i]->base)
			abort();
		for (size_t k = 0; k < v[i]->len; k++)
			sink ^= (unsigned char)v[i]->base[k];
	}
	if (r->req.nheaders > lim->max_headers || r->req.body.len > lim->max_body_bytes)
		abort();
	for (size_t h = 0; h < r->req.nheaders; h++) {
		if (r->req.headers[h].name.len == 0)
			abort();
		for (size_t k = 0; k < r->req.headers[h].name.len; k++)
			sink ^= (unsigned char)r->req.headers[h].name.base[k];
		for (size_t k = 0; k < r->req.headers[h].value.len; k++)
			sink ^= (unsigned char)r->req.headers[h].value.base[k];
	}
	if (r->req.http_major != 1 || r->req.http_minor > 1)
		abort();
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct http1_limits lim = http1_limits_default();
	lim.max_header_bytes = 512; /* small limits so the fuzzer reaches them */
	lim.max_headers = 8;
	lim.max_body_bytes = 256;
	unsigned step = data[0] ? data[0] : 1;
	data++;
	size--;
	struct http1_parser *p = http1_parser_new(&lim);
	struct http_obuf out;
	http_obuf_init(&out);
	size_t off = 0;
	enum http1_result res = HTTP1_NEED_MORE;
	while (off < size && res != HTTP1_ERROR) {
		size_t left = size - off < step ? size - off : step;
		while (left > 0) {
			struct http1_request r;
			size_t used = 0;
			res = http1_parse(p, (const char *)data + off, left, &used, &r);
			if (used > left)
				abort();
			if (res == HTTP1_ERROR) {
				int st = http1_parser_error_status(p);
				if (st != 400 && st != 405 && st != 413 && st != 431 && st != 501)
					abort();
				break;
			}
			if (res == HTTP1_REQUEST) {
				check(&r, &lim);
				http1_write_response(&out, r.req.http_minor, 200, NULL,
				                     r.req.body.base, r.req.body.len, r.keep_alive);
				http_obuf_consume(&out, out.len);
			} else if (used != left) {
				abort();
			}
			off += used;
			left -= used;
		}
	}
	if (res != HTTP1_ERROR)
		http1_parse_eof(p);
	http_obuf_free(&out);
	http1_parser_free(p);
	return 0;
}
