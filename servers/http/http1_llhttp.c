/* http1_llhttp.c — llhttp's callbacks for the HTTP/1.1 parser (http1.h):
 * every span llhttp reports is recorded against the parser's own storage,
 * the header block's limits and our stricter rules (tchar names, no
 * obs-fold, no Content-Length beside Transfer-Encoding, HTTP/1.x only) are
 * applied as they arrive, and on_message_complete pauses llhttp so that one
 * http1_parse() ends at the end of one request. See http1.c for the copy
 * scheme.
 */
#include "http1_internal.h"

#include <stdlib.h>
#include <string.h>

static struct http1_parser *from_ll(llhttp_t *ll)
{
	return ll->data;
}

/* A span of the head at at[0..len): its offset in head, where the pending
 * region (extended to cover it) will be copied. */
static inline size_t span_take(struct http1_parser *p, const char *at, size_t len)
{
	if (!p->pend) {
		p->pend = at;
		p->pend_base = p->head_len;
	}
	p->pend_end = at + len;
	return p->pend_base + (size_t)(at - p->pend);
}

/* Copy the pending region into head: before the input goes away, and
 * before the head is read (on_headers_complete). */
int http1_head_flush(struct http1_parser *p)
{
	if (!p->pend)
		return 0;
	size_t n = (size_t)(p->pend_end - p->pend);
	size_t need = p->pend_base + n;
	if (need > p->head_cap && http1_grow(&p->head, &p->head_cap, need, 1024) != 0) {
		p->pend = NULL;
		return http1_fail(p, 431, "out of memory for the header block");
	}
	memcpy(p->head + p->pend_base, p->pend, n);
	p->head_len = need;
	p->pend = NULL;
	return 0;
}

/* ---- llhttp callbacks ---- */

static int on_message_begin(llhttp_t *ll)
{
	struct http1_parser *p = from_ll(ll);
	p->in_message = true;
	p->head_len = 0;
	p->pend = NULL;
	p->body_len = 0;
	p->nheaders = 0;
	p->method_off = p->method_len = p->url_off = p->url_len = 0;
	p->trailer_bytes = 0;
	p->hstate = H_NONE;
	p->keep_alive = p->expect_continue = p->upgrade = p->continue_pending = false;
	return 0;
}

static int on_method(llhttp_t *ll, const char *at, size_t len)
{
	struct http1_parser *p = from_ll(ll);
	size_t off = span_take(p, at, len);
	if (p->method_len == 0)
		p->method_off = off;
	p->method_len += len;
	return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
	struct http1_parser *p = from_ll(ll);
	size_t off = span_take(p, at, len);
	if (p->url_len == 0)
		p->url_off = off;
	p->url_len += len;
	return 0;
}

static int on_version_complete(llhttp_t *ll)
{
	/* llhttp accepts 0.9 and 2.0 in an HTTP/1 request line; we speak 1.x. */
	if (ll->http_major != 1 || ll->http_minor > 1)
		return http1_fail(from_ll(ll), 400, "unsupported HTTP version");
	return 0;
}

static bool trailing(const llhttp_t *ll)
{
	return (ll->flags & F_TRAILING) != 0;
}

static int count_trailer(struct http1_parser *p, size_t len)
{
	p->trailer_bytes += len;
	if (p->trailer_bytes > p->lim.max_header_bytes)
		return http1_fail(p, 431, "trailers too large");
	return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
	struct http1_parser *p = from_ll(ll);
	for (size_t i = 0; i < len; i++)
		if (!http1_tchar[(unsigned char)at[i]])
			return http1_fail(p, 400, "invalid character in a header name");
	if (trailing(ll))
		return count_trailer(p, len);
	if (p->hstate != H_FIELD) {
		if (p->nheaders >= p->lim.max_headers)
			return http1_fail(p, 431, "too many headers");
		if (p->nheaders == p->hdr_cap && http1_hdr_grow(p) != 0)
			return http1_fail(p, 431, "out of memory for headers");
		size_t off = span_take(p, at, len);
		p->spans[p->nheaders++] = (struct hdr_span){.name_off = off, .value_off = off};
		p->hstate = H_FIELD;
	} else {
		span_take(p, at, len);
	}
	p->spans[p->nheaders - 1].name_len += len;
	return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
	struct http1_parser *p = from_ll(ll);
	if (trailing(ll))
		return count_trailer(p, len);
	if (p->hstate != H_VALUE_START && p->hstate != H_VALUE)
		return http1_fail(p, 400, "header without a name");
	struct hdr_span *s = &p->spans[p->nheaders - 1];
	size_t off = span_take(p, at, len);
	if (p->hstate == H_VALUE_START) {
		p->hstate = H_VALUE;
		s->value_off = off;
	} else if (!p->value_cut || (at > p->feed_start ? at[-1] : p->prev_byte) == '\n') {
		/* A second span of one value that the end of a read did not
		 * cause, or that starts a line: llhttp joined an obs-fold
		 * continuation line. RFC 9112 5.2 lets us refuse it, and that
		 * closes a smuggling path ("Host: x\r\n Transfer-Encoding: ..."). */
		return http1_fail(p, 400, "obsolete line folding");
	}
	p->value_cut = at + len == p->feed_end;
	s->value_len += len;
	return 0;
}

static int on_header_field_complete(llhttp_t *ll)
{
	struct http1_parser *p = from_ll(ll);
	if (trailing(ll))
		return 0;
	/* llhttp reports an empty name as a zero-length span */
	if (p->hstate != H_FIELD || p->spans[p->nheaders - 1].name_len == 0)
		return http1_fail(p, 400, "header without a name");
	p->hstate = H_VALUE_START;
	return 0;
}

static int on_header_value_complete(llhttp_t *ll)
{
	from_ll(ll)->hstate = H_NONE;
	return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
	struct http1_parser *p = from_ll(ll);
	p->in_head = false;
	if (http1_head_flush(p) != 0)
		return -1;
	/* A request line without a version is HTTP/0.9 to llhttp. */
	if (ll->http_major != 1 || ll->http_minor > 1)
		return http1_fail(p, 400, "unsupported HTTP version");
	/* llhttp refuses most of these itself; checking first makes the answer
	 * 400 rather than a 413 for a huge Content-Length beside a chunked TE. */
	if ((ll->flags & F_TRANSFER_ENCODING) && (ll->flags & F_CONTENT_LENGTH))
		return http1_fail(p, 400, "Content-Length together with Transfer-Encoding");
	if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > p->lim.max_body_bytes)
		return http1_fail(p, 413, "declared body too large");
	for (size_t i = 0; i < p->nheaders; i++) {
		const struct hdr_span *s = &p->spans[i];
		if (TOKEN_EQ(p->head + s->name_off, s->name_len, "expect") &&
		    TOKEN_EQ(p->head + s->value_off, s->value_len, "100-continue"))
			p->expect_continue = true;
	}
	p->upgrade = ll->upgrade != 0;
	/* We answer an upgrade request as a plain HTTP/1.1 request (RFC 9110
	 * lets a server ignore Upgrade), so llhttp must keep parsing HTTP/1.1
	 * after it instead of stopping with HPE_PAUSED_UPGRADE. */
	ll->upgrade = 0;
	if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > 0) {
		/* Size the buffer for the body up front, but only up to 64 KiB:
		 * a peer that merely announces a large body gets no memory for it
		 * until the bytes arrive. */
		size_t want = ll->content_length < 65536 ? (size_t)ll->content_length : 65536;
		if (want > p->body_cap && http1_grow(&p->body, &p->body_cap, want, 4096) != 0)
			return http1_fail(p, 413, "out of memory for the body");
		p->continue_pending = p->expect_continue && ll->http_minor >= 1;
	} else if (ll->flags & F_CHUNKED) {
		p->continue_pending = p->expect_continue && ll->http_minor >= 1;
	}
	return 0;
}

static int on_chunk_header(llhttp_t *ll)
{
	struct http1_parser *p = from_ll(ll);
	/* Refuse an oversized chunk before its bytes arrive. */
	if (ll->content_length > p->lim.max_body_bytes - p->body_len)
		return http1_fail(p, 413, "chunked body too large");
	return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
	struct http1_parser *p = from_ll(ll);
	if (len > p->lim.max_body_bytes - p->body_len)
		return http1_fail(p, 413, "body too large");
	if (p->body_len + len > p->body_cap &&
	    http1_grow(&p->body, &p->body_cap, p->body_len + len, 4096) != 0)
		return http1_fail(p, 413, "out of memory for the body");
	memcpy(p->body + p->body_len, at, len);
	p->body_len += len;
	p->continue_pending = false;
	return 0;
}

static int on_message_complete(llhttp_t *ll)
{
	struct http1_parser *p = from_ll(ll);
	p->minor = ll->http_minor; /* on_version_complete: 1.0 or 1.1 */
	p->keep_alive = llhttp_should_keep_alive(ll) != 0;
	p->continue_pending = false;
	return HPE_PAUSED;
}

const llhttp_settings_t http1_llhttp_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
