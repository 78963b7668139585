/* upstream_http.c — the upstream stub's HTTP text: the reason phrases and
 * answer heads, and the parsing of request tokens and of the query that
 * overrides the defaults per request (?delay= ?size= ?status= ?close=
 * ?reset= ?stall=). Pure functions: no server state, no I/O.
 */
#include "upstream.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *upstream_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Status";
	}
}

size_t upstream_format_head(char *out, size_t cap, int status, unsigned long len,
                            const char *connection)
{
	int n = snprintf(out, cap,
	                 "HTTP/1.1 %d %s\r\nServer: upstream\r\n"
	                 "Content-Type: application/octet-stream\r\nContent-Length: %lu\r\n%s\r\n",
	                 status, upstream_reason(status), len, connection);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---- request parsing ---- */

bool upstream_token_eq(const char *p, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(p, lit, len) == 0;
}

/* Does the comma-separated header value hold token lit? */
bool upstream_has_token(const char *v, size_t len, const char *lit)
{
	const char *end = v + len;
	while (v < end) {
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		const char *t = v;
		while (v < end && *v != ',')
			v++;
		const char *te = v;
		while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if (upstream_token_eq(t, (size_t)(te - t), lit))
			return true;
	}
	return false;
}

/* Decimal; false when empty, not digits or above max. */
bool upstream_parse_ulong(const char *p, size_t len, unsigned long max, unsigned long *out)
{
	if (len == 0 || len > 19)
		return false;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Apply ?delay= &size= &status= &close=1 &reset=1 &stall=1; unknown keys
 * are ignored (clients add cache busters). false on a bad value. */
bool upstream_parse_query(const char *q, size_t len, struct overrides *o)
{
	const char *end = q + len;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		const char *k = q, *ke = eq ? eq : stop;
		const char *v = eq ? eq + 1 : stop;
		size_t klen = (size_t)(ke - k), vlen = (size_t)(stop - v);
		unsigned long flag = 0;
		if (upstream_token_eq(k, klen, "delay")) {
			if (!upstream_parse_ulong(v, vlen, MAX_DELAY, &o->delay))
				return false;
		} else if (upstream_token_eq(k, klen, "size")) {
			if (!upstream_parse_ulong(v, vlen, MAX_SIZE, &o->size))
				return false;
		} else if (upstream_token_eq(k, klen, "status")) {
			if (!upstream_parse_ulong(v, vlen, 599, &o->status) || o->status < 200)
				return false;
		} else if (upstream_token_eq(k, klen, "close") ||
		           upstream_token_eq(k, klen, "reset") ||
		           upstream_token_eq(k, klen, "stall")) {
			if (vlen && !upstream_parse_ulong(v, vlen, 1, &flag))
				return false;
			bool on = vlen == 0 || flag == 1;
			if (k[0] == 'c' || k[0] == 'C')
				o->close = on;
			else if (k[0] == 'r' || k[0] == 'R')
				o->reset = on;
			else
				o->stall = on;
		}
		q = amp ? amp + 1 : end;
	}
	return true;
}
