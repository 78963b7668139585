/* http1_response.c — the response side of http1.h: the response head and
 * the Date cache.
 *
 * This runs once per request on both workers, so a head is assembled with
 * memcpy of prepared pieces: the status line comes from a table, "Date: ...
 * Server: ..." is one line rebuilt once a second, Content-Length is a hand
 * conversion, and the buffer grows at most once per response. Nothing here
 * calls printf or the allocator in the steady state.
 */
#include "http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- status lines ---- */

struct status_line {
	const char *text; /* "200 OK\r\n" */
	unsigned char len;
};

#define STATUS_LIST(X)                                                                             \
	X(100, "Continue")                                                                         \
	X(101, "Switching Protocols")                                                              \
	X(200, "OK")                                                                               \
	X(201, "Created")                                                                          \
	X(202, "Accepted")                                                                         \
	X(204, "No Content")                                                                       \
	X(206, "Partial Content")                                                                  \
	X(301, "Moved Permanently")                                                                \
	X(302, "Found")                                                                            \
	X(303, "See Other")                                                                        \
	X(304, "Not Modified")                                                                     \
	X(307, "Temporary Redirect")                                                               \
	X(308, "Permanent Redirect")                                                               \
	X(400, "Bad Request")                                                                      \
	X(401, "Unauthorized")                                                                     \
	X(403, "Forbidden")                                                                        \
	X(404, "Not Found")                                                                        \
	X(405, "Method Not Allowed")                                                               \
	X(408, "Request Timeout")                                                                  \
	X(409, "Conflict")                                                                         \
	X(411, "Length Required")                                                                  \
	X(413, "Content Too Large")                                                                \
	X(414, "URI Too Long")                                                                     \
	X(415, "Unsupported Media Type")                                                           \
	X(417, "Expectation Failed")                                                               \
	X(426, "Upgrade Required")                                                                 \
	X(429, "Too Many Requests")                                                                \
	X(431, "Request Header Fields Too Large")                                                  \
	X(500, "Internal Server Error")                                                            \
	X(501, "Not Implemented")                                                                  \
	X(502, "Bad Gateway")                                                                      \
	X(503, "Service Unavailable")                                                              \
	X(504, "Gateway Timeout")                                                                  \
	X(505, "HTTP Version Not Supported")

const char *http_status_reason(int status)
{
	switch (status) {
#define X(code, reason)                                                                            \
	case code:                                                                                 \
		return reason;
		STATUS_LIST(X)
#undef X
	}
	if (status >= 100 && status < 200)
		return "Informational";
	if (status >= 200 && status < 300)
		return "Success";
	if (status >= 300 && status < 400)
		return "Redirection";
	if (status >= 400 && status < 500)
		return "Client Error";
	return "Server Error";
}

static const struct status_line *status_line_of(int status)
{
	switch (status) {
#define X(code, reason)                                                                            \
	case code: {                                                                               \
		static const struct status_line l = {#code " " reason "\r\n",                      \
		                                     sizeof(#code " " reason "\r\n") - 1};         \
		return &l;                                                                         \
	}
		STATUS_LIST(X)
#undef X
	}
	return NULL;
}

/* ---- Date cache ---- */

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: corobench\r\n" */
#define DATE_PREFIX "Date: "
#define DATE_LEN 29
#define SERVER_LINE "Server: " HTTP_SERVER_NAME "\r\n"
#define DATE_LINES_LEN (sizeof(DATE_PREFIX) - 1 + DATE_LEN + 2 + sizeof(SERVER_LINE) - 1)

/* Per thread, so that a threaded user never races on it; the workers are
 * single-threaded processes and pay nothing for it. */
static _Thread_local struct {
	time_t second;
	char lines[DATE_LINES_LEN + 1];
} date_cache = {.second = -1};

static void put2(char *d, unsigned v)
{
	d[0] = (char)('0' + v / 10 % 10);
	d[1] = (char)('0' + v % 10);
}

static void format_date(char *d, time_t t)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	gmtime_r(&t, &tm);
	memcpy(d, days + 3 * tm.tm_wday, 3);
	d[3] = ',';
	d[4] = ' ';
	put2(d + 5, (unsigned)tm.tm_mday);
	d[7] = ' ';
	memcpy(d + 8, months + 3 * tm.tm_mon, 3);
	d[11] = ' ';
	unsigned y = (unsigned)(tm.tm_year + 1900);
	put2(d + 12, y / 100);
	put2(d + 14, y % 100);
	d[16] = ' ';
	put2(d + 17, (unsigned)tm.tm_hour);
	d[19] = ':';
	put2(d + 20, (unsigned)tm.tm_min);
	d[22] = ':';
	put2(d + 23, (unsigned)tm.tm_sec);
	memcpy(d + 25, " GMT", 4);
}

static const char *date_lines(void)
{
	time_t now = time(NULL);
	if (now != date_cache.second) {
		char *d = date_cache.lines;
		memcpy(d, DATE_PREFIX, sizeof(DATE_PREFIX) - 1);
		d += sizeof(DATE_PREFIX) - 1;
		format_date(d, now);
		d += DATE_LEN;
		memcpy(d, "\r\n" SERVER_LINE, 2 + sizeof(SERVER_LINE) - 1);
		date_cache.lines[DATE_LINES_LEN] = '\0';
		date_cache.second = now;
	}
	return date_cache.lines;
}

const char *http_date_now(void)
{
	/* The cached line holds the value NUL-free; keep a terminated copy. */
	static _Thread_local char value[DATE_LEN + 1];
	memcpy(value, date_lines() + sizeof(DATE_PREFIX) - 1, DATE_LEN);
	value[DATE_LEN] = '\0';
	return value;
}

/* ---- the head ---- */

#define CT_PREFIX "Content-Type: "
#define CL_PREFIX "\r\nContent-Length: "
#define CONN_CLOSE "\r\nConnection: close\r\n\r\n"
#define CONN_KEEP_ALIVE "\r\nConnection: keep-alive\r\n\r\n"
#define CONN_NONE "\r\n\r\n"
#define LIT(d, s) (memcpy((d), (s), sizeof(s) - 1), (d) + sizeof(s) - 1)

static char *put_head(struct http_obuf *b, int http_minor, int status, const char *content_type,
                      size_t content_length, bool keep_alive, size_t body_len)
{
	if (status < 100 || status > 999)
		status = 500;
	if (!content_type)
		content_type = "text/plain";

	const struct status_line *sl = status_line_of(status);
	const char *reason = NULL;
	size_t sl_len, reason_len = 0;
	if (sl) {
		sl_len = sl->len;
	} else {
		reason = http_status_reason(status);
		reason_len = strlen(reason);
		sl_len = 4 + reason_len + 2;
	}

	char digits[20];
	size_t nd = 0;
	do {
		digits[sizeof(digits) - 1 - nd++] = (char)('0' + content_length % 10);
		content_length /= 10;
	} while (content_length);

	const char *conn;
	size_t conn_len;
	if (http_minor == 0) {
		conn = keep_alive ? CONN_KEEP_ALIVE : CONN_CLOSE;
		conn_len = keep_alive ? sizeof(CONN_KEEP_ALIVE) - 1 : sizeof(CONN_CLOSE) - 1;
	} else {
		conn = keep_alive ? CONN_NONE : CONN_CLOSE;
		conn_len = keep_alive ? sizeof(CONN_NONE) - 1 : sizeof(CONN_CLOSE) - 1;
	}

	size_t ct_len = strlen(content_type);
	size_t head_len = 9 + sl_len + DATE_LINES_LEN + sizeof(CT_PREFIX) - 1 + ct_len +
	                  sizeof(CL_PREFIX) - 1 + nd + conn_len;
	if (body_len > SIZE_MAX / 2 || http_obuf_reserve(b, head_len + body_len) != 0)
		return NULL;

	char *d = b->data + b->len;
	d = LIT(d, "HTTP/1.1 ");
	if (http_minor == 0)
		d[-2] = '0';
	if (sl) {
		memcpy(d, sl->text, sl_len);
		d += sl_len;
	} else {
		d[0] = (char)('0' + status / 100);
		d[1] = (char)('0' + status / 10 % 10);
		d[2] = (char)('0' + status % 10);
		d[3] = ' ';
		memcpy(d + 4, reason, reason_len);
		d += 4 + reason_len;
		d = LIT(d, "\r\n");
	}
	memcpy(d, date_lines(), DATE_LINES_LEN);
	d += DATE_LINES_LEN;
	d = LIT(d, CT_PREFIX);
	memcpy(d, content_type, ct_len);
	d += ct_len;
	d = LIT(d, CL_PREFIX);
	memcpy(d, digits + sizeof(digits) - nd, nd);
	d += nd;
	memcpy(d, conn, conn_len);
	d += conn_len;
	return d;
}

int http1_write_head(struct http_obuf *b, int http_minor, int status, const char *content_type,
                     size_t content_length, bool keep_alive)
{
	char *d = put_head(b, http_minor, status, content_type, content_length, keep_alive, 0);
	if (!d)
		return -1;
	b->len = (size_t)(d - b->data);
	return 0;
}

int http1_write_response(struct http_obuf *b, int http_minor, int status, const char *content_type,
                         const void *body, size_t len, bool keep_alive)
{
	char *d = put_head(b, http_minor, status, content_type, len, keep_alive, len);
	if (!d)
		return -1;
	if (len) {
		memcpy(d, body, len);
		d += len;
	}
	b->len = (size_t)(d - b->data);
	return 0;
}
