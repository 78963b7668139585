/* resp: reads an HTTP/1.x response head the way ApacheBench does (its
 * lenient strstr-based rules decide what counts as keep-alive, the body
 * length and the status), plus the few facts ab ignores that loadgen needs
 * to be truthful: the numeric status, "Connection: close", HTTP/1.1 and a
 * chunked body's end. Pure functions over byte views: no I/O, no allocation. */
#ifndef LOADGEN_RESP_H
#define LOADGEN_RESP_H

#include <stddef.h>
#include <stdint.h>

struct resp_head {
	char code[4];        /* ab's respcode: 3 chars after "HTTP/1.x ", else "500" */
	int status;          /* code as a number, 0 when not digits */
	int http11;          /* status line says HTTP/1.1 */
	int ka_token;        /* "keep-alive" anywhere in the head (ab's test) */
	int conn_close;      /* a "Connection: close" header */
	int chunked;         /* Transfer-Encoding: chunked */
	long content_length; /* ab's atoi() after "Content-Length:", -1 if absent */
};

/* Where the head ends, searched as ab does: the first "\r\n\r\n", else the
 * first "\n\n". Returns the offset of the terminator and sets *term_len to
 * its length (4 or 2), or returns -1 when buf holds no complete head. */
long resp_head_end(const char *buf, size_t len, int *term_len);

/* Parses the head buf[0..len) (terminator excluded). */
void resp_parse_head(const char *buf, size_t len, struct resp_head *out);

/* ab's "Server Software": the bytes after "Server: " up to the first
 * control or space character. Writes a NUL-terminated string. */
void resp_server_name(const char *buf, size_t len, char *out, size_t cap);

/* Finds the end of a chunked body fed in pieces. */
struct resp_chunked {
	int state;
	uint64_t left;
};
/* Feeds body bytes. Returns 1 when the body ended (*used bytes of p were
 * part of it), 0 when more is needed (all consumed), -1 on a malformed body. */
int resp_chunked_feed(struct resp_chunked *c, const char *p, size_t len, size_t *used);

/* Case-insensitive search of needle in hay[0..len); NULL when absent. */
const char *resp_find_ci(const char *hay, size_t len, const char *needle);

#endif
