/* obuf.h — the one growable output buffer of the servers: answers and
 * frames are appended to it and written with one write per loop turn.
 * Every writer of bytes (the HTTP/1.1 response writer, the HTTP/2 codec's
 * frames, the workers' 100 Continue and 101) appends through it, so there
 * is one growth policy: doubling from 512 bytes, checked for overflow.
 *
 * The fast path of a reservation is inline: a buffer in its steady state
 * (capacity reached) costs a compare per append.
 */
#ifndef COROBENCH_OBUF_H
#define COROBENCH_OBUF_H

#include <stddef.h>
#include <string.h>

struct http_obuf {
	char *data;
	size_t len, cap;
};

void http_obuf_init(struct http_obuf *b);
void http_obuf_free(struct http_obuf *b);
/* Drop the first n bytes (they were written). */
void http_obuf_consume(struct http_obuf *b, size_t n);

/* Grow the buffer for `extra` more bytes: 0, or -1 (out of memory or an
 * absurd size; the buffer is unchanged). Use http_obuf_reserve. */
int http_obuf_grow(struct http_obuf *b, size_t extra);

/* Room for `extra` more bytes after len: 0, or -1. */
static inline int http_obuf_reserve(struct http_obuf *b, size_t extra)
{
	return b->cap - b->len >= extra ? 0 : http_obuf_grow(b, extra);
}

/* Append len bytes: 0, or -1 (nothing appended). */
static inline int http_obuf_append(struct http_obuf *b, const void *data, size_t len)
{
	if (http_obuf_reserve(b, len) != 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

#endif
