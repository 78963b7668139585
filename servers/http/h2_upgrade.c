/* h2_upgrade.c — HTTP/2 on the HTTP/1.1 port (h2.h): the client preface
 * (prior knowledge) and the h2c upgrade of RFC 7540 3.2, whose request
 * becomes stream 1 of a fresh session.
 */
#include "h2_internal.h"

#include <string.h>

static bool ieq(const char *a, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != lit[i])
			return false;
	}
	return true;
}

/* ---- detection and upgrade ---- */

enum h2_preface h2_is_preface(const char *data, size_t len)
{
	if (len >= H2_PREFACE_LEN)
		return memcmp(data, H2_PREFACE, H2_PREFACE_LEN) == 0 ? H2_PREFACE_YES
		                                                     : H2_PREFACE_NO;
	return len == 0 || memcmp(data, H2_PREFACE, len) == 0 ? H2_PREFACE_PARTIAL : H2_PREFACE_NO;
}

/* Is token (lowercase) one of the comma-separated tokens of v? */
static bool has_token(struct app_str v, const char *token)
{
	size_t i = 0;
	while (i < v.len) {
		while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ','))
			i++;
		size_t start = i;
		while (i < v.len && v.base[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
			end--;
		if (end > start && ieq(v.base + start, end - start, token))
			return true;
	}
	return false;
}

bool h2_upgrade_request(const struct app_request *req, struct app_str *settings)
{
	if (req->http_major != 1 || req->http_minor != 1)
		return false;
	bool h2c = false;
	size_t nsettings = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct app_header *h = &req->headers[i];
		if (ieq(h->name.base, h->name.len, "upgrade") && has_token(h->value, "h2c"))
			h2c = true;
		else if (ieq(h->name.base, h->name.len, "http2-settings")) {
			*settings = h->value;
			nsettings++;
		}
	}
	return h2c && nsettings == 1;
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

/* base64url without padding (RFC 7540 3.2.1); '=' padding and the plain
 * alphabet are tolerated. -1 when malformed or over cap bytes. */
static long b64url_decode(struct app_str in, uint8_t *out, size_t cap)
{
	size_t n = in.len;
	while (n > 0 && in.base[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(in.base[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)o;
}

/* The values RFC 9113 6.5.2 (and RFC 8441 for 8) allows. nghttp2 takes
 * an upgrade's settings without checking them and only then fails the
 * session, after the worker has written its 101: check them first, so that
 * the request is served as HTTP/1.1 instead. */
static bool settings_valid(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i += 6) {
		uint32_t id = (uint32_t)p[i] << 8 | p[i + 1];
		uint32_t v = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 |
		             (uint32_t)p[i + 4] << 8 | p[i + 5];
		if ((id == NGHTTP2_SETTINGS_ENABLE_PUSH && v > 1) ||
		    (id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE &&
		     v > (uint32_t)NGHTTP2_MAX_WINDOW_SIZE) ||
		    (id == NGHTTP2_SETTINGS_MAX_FRAME_SIZE && (v < 16384 || v > 16777215)) ||
		    (id == 8 /* SETTINGS_ENABLE_CONNECT_PROTOCOL */ && v > 1))
			return false;
	}
	return true;
}

int h2_session_upgrade(struct h2_session *s, struct app_str settings, const struct app_request *req)
{
	uint8_t payload[6 * 64]; /* 64 settings are plenty; there are 7 kinds */
	long plen = b64url_decode(settings, payload, sizeof(payload));
	if (plen < 0 || plen % 6 != 0 || !settings_valid(payload, (size_t)plen))
		return -1;
	struct h2_stream *st = h2_stream_get(s, 1);
	if (!st)
		return -1;
	size_t off;
	bool ok = h2_head_put(st, req->method.base, req->method.len, &st->method_off) == 0;
	st->method_len = req->method.len;
	st->is_head = app_method_is_head(req->method);
	/* :path is the HTTP/1.1 target again: path '?' query. */
	ok = ok && h2_head_put(st, req->path.base, req->path.len, &st->path_off) == 0;
	st->path_len = req->path.len;
	if (ok && req->query.len) {
		ok = h2_head_put(st, "?", 1, &off) == 0 &&
		     h2_head_put(st, req->query.base, req->query.len, &off) == 0;
		st->path_len += 1 + req->query.len;
	}
	for (size_t i = 0; ok && i < req->nheaders; i++) {
		const struct app_header *h = &req->headers[i];
		/* Hop-by-hop fields of the upgrade itself do not belong to the request. */
		if (ieq(h->name.base, h->name.len, "connection") ||
		    ieq(h->name.base, h->name.len, "upgrade") ||
		    ieq(h->name.base, h->name.len, "http2-settings"))
			continue;
		if (ieq(h->name.base, h->name.len, "host"))
			st->has_host = true;
		ok = h2_span_add(st, h->name.base, h->name.len, h->value.base, h->value.len) == 0;
	}
	if (ok && req->body.len) {
		void *b = st->body;
		ok = h2_grow(&b, &st->body_cap, req->body.len, 1, 1024) == 0;
		st->body = b;
		if (ok) {
			memcpy(st->body, req->body.base, req->body.len);
			st->body_len = req->body.len;
		}
	}
	if (!ok || nghttp2_session_upgrade2(s->ng, payload, (size_t)plen, st->is_head, NULL) != 0) {
		st->closed = true; /* not known to nghttp2: skip its user data */
		h2_stream_release(s, st);
		return -1;
	}
	nghttp2_session_set_stream_user_data(s->ng, 1, st);
	h2_build_request(st);
	st->delivered = true;
	s->open++;
	s->unanswered++;
	s->cb.on_request(s->user, 1, &st->req);
	return 0;
}
