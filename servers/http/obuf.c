/* obuf.c — the output buffer of obuf.h: its growth and its consumption. */
#include "obuf.h"

#include <stdint.h>
#include <stdlib.h>

void http_obuf_init(struct http_obuf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void http_obuf_free(struct http_obuf *b)
{
	free(b->data);
	http_obuf_init(b);
}

void http_obuf_consume(struct http_obuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

int http_obuf_grow(struct http_obuf *b, size_t extra)
{
	if (extra > SIZE_MAX / 4 - b->len)
		return -1;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t n = b->cap ? b->cap : 512;
	while (n < need)
		n *= 2;
	char *d = realloc(b->data, n);
	if (!d)
		return -1;
	b->data = d;
	b->cap = n;
	return 0;
}
