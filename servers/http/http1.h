/* http1.h — the HTTP/1.1 codec both workers share. Bytes in, requests out,
 * bytes out; it never touches a socket.
 *
 * Parsing is incremental (llhttp underneath): feed whatever a read returned;
 * a request split across reads is assembled, and several pipelined requests
 * in one read come out one at a time, in order. The request handed out is a
 * set of views into the parser's own storage, valid until the next call of
 * http1_parse() or http1_parser_reset()/free on that parser.
 *
 * Limits and the answers a worker must give (then close the connection):
 *   header block (request line + headers) over limits.max_header_bytes -> 431
 *   more than limits.max_headers header lines                          -> 431
 *   body over limits.max_body_bytes (declared or chunked)              -> 413
 *   Content-Length together with Transfer-Encoding                     -> 400
 *   anything malformed                                                 -> 400
 * Keep-alive follows HTTP/1.0 and 1.1 rules (llhttp_should_keep_alive).
 */
#ifndef COROBENCH_HTTP1_H
#define COROBENCH_HTTP1_H

#include "app.h"  /* struct app_str, struct app_header, struct app_request */
#include "obuf.h" /* struct http_obuf: where responses are appended */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http1_limits {
	size_t max_header_bytes; /* default 8192 */
	size_t max_headers;      /* default 100 */
	size_t max_body_bytes;   /* default 1 MiB */
};

/* The defaults above. */
struct http1_limits http1_limits_default(void);

struct http1_request {
	struct app_request req; /* method, path, query, headers, body, version */
	bool keep_alive;        /* may the connection serve another request? */
	bool expect_continue;   /* "Expect: 100-continue" was sent */
	bool upgrade;           /* an Upgrade request (h2c, later) */
};

enum http1_result {
	HTTP1_NEED_MORE = 0, /* all input consumed, no complete request yet */
	HTTP1_REQUEST = 1,   /* *out holds a complete request */
	HTTP1_ERROR = -1,    /* answer http1_parser_error_status() and close */
};

struct http1_parser;

struct http1_parser *http1_parser_new(const struct http1_limits *limits);
void http1_parser_free(struct http1_parser *p);
/* Forget any partial request; ready for a new connection. */
void http1_parser_reset(struct http1_parser *p);

/* Parse from data[0..len). *consumed is set to the bytes used; on
 * HTTP1_REQUEST the rest (data + *consumed) belongs to the next request and
 * must be fed again by the caller. */
enum http1_result http1_parse(struct http1_parser *p, const char *data, size_t len,
			      size_t *consumed, struct http1_request *out);

/* After HTTP1_ERROR: 400, 413 or 431. */
int http1_parser_error_status(const struct http1_parser *p);
/* After HTTP1_ERROR: a short reason for logs. */
const char *http1_parser_error_reason(const struct http1_parser *p);

/* The peer closed its side: returns HTTP1_REQUEST if that completes a
 * request whose body runs to EOF (never for requests; kept for symmetry),
 * HTTP1_ERROR if a request was cut short, HTTP1_NEED_MORE when idle. */
enum http1_result http1_parse_eof(struct http1_parser *p);

/* After HTTP1_NEED_MORE: true (once per request) when an HTTP/1.1 request
 * with "Expect: 100-continue" has its head in and no body byte yet. The
 * worker then writes HTTP1_CONTINUE so the client sends the body instead of
 * waiting for its timeout. (Addition to the original contract.) */
bool http1_parser_take_continue(struct http1_parser *p);

#define HTTP1_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* For a request-head deadline (slowloris): does d[0..n) hold the blank line
 * that ends a request head? *state carries the scan across reads (start it
 * at 0; 1 after "\n", 2 after "\n\r") and is reset when the end is found.
 * Cheap enough to run only on reads that leave a request unfinished. */
bool http1_head_scan(uint8_t *state, const char *d, size_t n);

/* ---- responses ---- */

/* Append a complete response: status line, Date (cached, refreshed once a
 * second), Server, Content-Type, Content-Length, Connection, blank line,
 * body. http_minor selects "HTTP/1.0" or "HTTP/1.1" and the Connection
 * header semantics (1.0 + keep-alive -> "Connection: keep-alive"; 1.1 and
 * !keep_alive -> "Connection: close"). Returns 0, or -1 out of memory. */
int http1_write_response(struct http_obuf *b, int http_minor, int status,
			 const char *content_type, const void *body, size_t len,
			 bool keep_alive);

/* The head alone, announcing content_length body bytes that are not
 * appended: the answer to a HEAD request. Same rules as above.
 * (Addition to the original contract.) */
int http1_write_head(struct http_obuf *b, int http_minor, int status, const char *content_type,
		     size_t content_length, bool keep_alive);

/* The reason phrase for status ("OK", "Bad Request", ...). */
const char *http_status_reason(int status);

/* The current Date header value ("Sun, 06 Nov 1994 08:49:37 GMT"), cached
 * for the second; 29 bytes, NUL-terminated. */
const char *http_date_now(void);

/* The Server header value. */
#define HTTP_SERVER_NAME "corobench"

#endif
