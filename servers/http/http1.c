/* http1.c — the HTTP/1.1 request parser both workers share, on llhttp.
 *
 * llhttp hands us spans of the caller's buffer; a span may be cut wherever a
 * read ended. Every byte of the head (method, target, header names and
 * values) is therefore copied into the parser's own storage, recorded as
 * offsets (the storage may grow), and turned into views once the request is
 * complete. The copy is one memcpy per read, not one per span: the spans of
 * one llhttp_execute() are recorded against the region of the input from
 * the first span's start to the last span's end, and that region is copied
 * when the head completes or the input ends (the bytes between spans come
 * along; they cost less than a call each). Regions of successive reads join
 * up in the storage, so a span cut by a read stays contiguous. The body
 * goes to a second buffer. Both buffers are kept between requests, so a
 * connection in its steady state parses without allocating.
 *
 * A plain request whose whole head is in the input skips llhttp: see "the
 * fast path" below.
 *
 * Pipelining: on_message_complete pauses llhttp, so one http1_parse() call
 * ends at the end of one request; llhttp_get_error_pos() says where, which
 * is what the caller is told it consumed.
 *
 * The header-block limit counts raw bytes: while the head is incomplete we
 * feed llhttp at most what is left of the budget, so a peer sending an
 * endless header (or endless whitespace, which produces no callback) is
 * stopped at exactly max_header_bytes.
 */
#include "http1_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct http1_limits http1_limits_default(void)
{
	return (struct http1_limits){
	    .max_header_bytes = 8192,
	    .max_headers = 100,
	    .max_body_bytes = 1024 * 1024,
	};
}

/* Record our own verdict; the callback then returns an error to llhttp. */
int http1_fail(struct http1_parser *p, int status, const char *reason)
{
	if (!p->err_status) {
		p->err_status = status;
		p->err_reason = reason;
	}
	return -1;
}

/* ---- the API ---- */

static void start_connection(struct http1_parser *p)
{
	llhttp_init(&p->ll, HTTP_REQUEST, &http1_llhttp_settings);
	p->ll.data = p;
	p->pend = NULL;
	p->ended = false;
	p->in_head = true;
	p->in_message = false;
	p->failed = false;
	p->continue_pending = false;
	p->raw_head = 0;
	p->err_status = 0;
	p->err_reason = NULL;
}

struct http1_parser *http1_parser_new(const struct http1_limits *limits)
{
	struct http1_parser *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->lim = limits ? *limits : http1_limits_default();
	start_connection(p);
	return p;
}

void http1_parser_free(struct http1_parser *p)
{
	if (!p)
		return;
	free(p->head);
	free(p->body);
	free(p->spans);
	free(p->headers);
	free(p);
}

void http1_parser_reset(struct http1_parser *p)
{
	/* Keep the buffers for the next connection, unless one upload made the
	 * body buffer large: that memory should not stay pinned by an idle
	 * pooled parser. */
	if (p->body_cap > 64 * 1024) {
		free(p->body);
		p->body = NULL;
		p->body_cap = 0;
	}
	p->body_len = 0;
	start_connection(p);
}

static int error_status_of(llhttp_errno_t err)
{
	(void)err;
	return 400; /* every llhttp verdict is a malformed request */
}

static enum http1_result set_failed(struct http1_parser *p, llhttp_errno_t err)
{
	p->failed = true;
	if (!p->err_status) {
		p->err_status = error_status_of(err);
		p->err_reason = llhttp_get_error_reason(&p->ll);
		if (!p->err_reason)
			p->err_reason = llhttp_errno_name(err);
	}
	return HTTP1_ERROR;
}

/* Split the request target into path and query; an absolute-form target
 * ("http://host/x?y", what proxies are sent) keeps only its path. Views are
 * never NULL, even when empty: NULL + 0 and memcpy(NULL, ..., 0) are
 * undefined behaviour in C, and apps do both. */
static void split_target(const char *u, size_t n, struct app_str *path, struct app_str *query)
{
	if (n > 0 && u[0] != '/' && u[0] != '*') {
		const char *sep = memchr(u, ':', n);
		if (sep && (size_t)(u + n - sep) >= 3 && sep[1] == '/' && sep[2] == '/') {
			const char *auth = sep + 3;
			const char *slash = memchr(auth, '/', (size_t)(u + n - auth));
			const char *q = memchr(auth, '?', (size_t)(u + n - auth));
			if (q && (!slash || q < slash)) {
				*path = APP_STR_LIT("/");
				*query = (struct app_str){q + 1, (size_t)(u + n - q - 1)};
				return;
			}
			if (!slash) {
				*path = APP_STR_LIT("/");
				*query = (struct app_str){"", 0};
				return;
			}
			n -= (size_t)(slash - u);
			u = slash;
		}
	}
	const char *q = memchr(u, '?', n);
	if (q) {
		*path = (struct app_str){u, (size_t)(q - u)};
		*query = (struct app_str){q + 1, (size_t)(u + n - q - 1)};
	} else {
		*path = (struct app_str){u, n};
		*query = (struct app_str){u + n, 0};
	}
}

static void fill_request(struct http1_parser *p, struct http1_request *out)
{
	struct app_request *r = &out->req;
	r->method = (struct app_str){p->head + p->method_off, p->method_len};
	split_target(p->head + p->url_off, p->url_len, &r->path, &r->query);
	for (size_t i = 0; i < p->nheaders; i++) {
		const struct hdr_span *s = &p->spans[i];
		p->headers[i].name = (struct app_str){p->head + s->name_off, s->name_len};
		p->headers[i].value = (struct app_str){p->head + s->value_off, s->value_len};
	}
	r->headers = p->headers;
	r->nheaders = p->nheaders;
	r->body = (struct app_str){p->body ? p->body : "", p->body_len};
	r->http_major = 1;
	r->http_minor = p->minor;
	out->keep_alive = p->keep_alive;
	out->expect_continue = p->expect_continue;
	out->upgrade = p->upgrade;
}

/* ---- the fast path ----
 *
 * Most requests are the plain shape below, and llhttp's state machine with
 * four callbacks per header costs more than the rest of a hello request in
 * user space. When a whole head of that shape is in the input, it is parsed
 * here in one pass; anything else -- another method or form of target, a
 * body, a header llhttp treats specially, whitespace it would have to
 * trim, any byte outside the plain sets, an incomplete head, a request
 * that does not keep the connection -- goes to llhttp from the same state,
 * so every verdict llhttp gives is unchanged. What the fast path accepts,
 * llhttp accepts the same way (checked differentially: every result and view
 * equal to the llhttp-only build, -DHTTP1_NO_FAST_PATH):
 *
 *   ("GET" | "HEAD") SP "/" pchar* SP "HTTP/1." ("0" | "1") CRLF
 *   *( tchar+ ":" SP vchar [ *(vchar | SP | HTAB) vchar ] CRLF )
 *   CRLF
 *
 * with at most max_headers fields and max_header_bytes bytes, and no
 * Connection, Proxy-Connection, Content-Length, Transfer-Encoding, Upgrade
 * or Expect header, except one "Connection: keep-alive" or "close". */

/* -DHTTP1_NO_FAST_PATH builds the codec without it: llhttp alone, for the
 * differential test (tests/http/diff_fastpath.py). */
#ifdef HTTP1_NO_FAST_PATH
#define FAST_PATH 0
#else
#define FAST_PATH 1
#endif

/* RFC 3986 pchar, '/', '?' and '%': a target that needs no thought. */
#define U8(c) [c] = 1
static const unsigned char urlchar[256] = {
    U8('!'), U8('$'), U8('%'), U8('&'), U8('\''), U8('('), U8(')'), U8('*'), U8('+'), U8(','),
    U8('-'), U8('.'), U8('/'), U8('0'), U8('1'),  U8('2'), U8('3'), U8('4'), U8('5'), U8('6'),
    U8('7'), U8('8'), U8('9'), U8(':'), U8(';'),  U8('='), U8('?'), U8('@'), U8('A'), U8('B'),
    U8('C'), U8('D'), U8('E'), U8('F'), U8('G'),  U8('H'), U8('I'), U8('J'), U8('K'), U8('L'),
    U8('M'), U8('N'), U8('O'), U8('P'), U8('Q'),  U8('R'), U8('S'), U8('T'), U8('U'), U8('V'),
    U8('W'), U8('X'), U8('Y'), U8('Z'), U8('_'),  U8('a'), U8('b'), U8('c'), U8('d'), U8('e'),
    U8('f'), U8('g'), U8('h'), U8('i'), U8('j'),  U8('k'), U8('l'), U8('m'), U8('n'), U8('o'),
    U8('p'), U8('q'), U8('r'), U8('s'), U8('t'),  U8('u'), U8('v'), U8('w'), U8('x'), U8('y'),
    U8('z'), U8('~'),
};
#undef U8

/* A header value's bytes: VCHAR, SP, HTAB (no CTL, DEL or obs-text). */
static bool valchar(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

/* The end of a run of value bytes from v: eight at a time while none is a
 * control byte (HTAB included: it goes the slow way), DEL or above --
 * the classic "has a byte less than / more than n" word tests -- then
 * byte by byte. */
static const char *valchar_span(const char *v, const char *e)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	while (e - v >= 8) {
		uint64_t w;
		memcpy(&w, v, 8);
		uint64_t below = (w - ones * 0x20) & ~w;        /* a byte < 0x20 */
		uint64_t above = (w + ones * (127 - 0x7e)) | w; /* a byte > 0x7e */
		if ((below | above) & highs)
			break;
		v += 8;
	}
	while (v < e && valchar((unsigned char)*v))
		v++;
	return v;
}

/* A header name that llhttp or on_headers_complete acts on. */
static bool special_name(const char *n, size_t len)
{
	switch (len) {
	case 6:
		return TOKEN_EQ(n, len, "expect");
	case 7:
		return TOKEN_EQ(n, len, "upgrade");
	case 10:
		return TOKEN_EQ(n, len, "connection");
	case 14:
		return TOKEN_EQ(n, len, "content-length");
	case 16:
		return TOKEN_EQ(n, len, "proxy-connection");
	case 17:
		return TOKEN_EQ(n, len, "transfer-encoding");
	}
	return false;
}

/* HTTP1_REQUEST, or HTTP1_NEED_MORE: not taken, nothing changed that
 * matters (llhttp parses it). */
static enum http1_result fast_parse(struct http1_parser *p, const char *d, size_t len,
                                    size_t *consumed, struct http1_request *out)
{
	const char *e = d + (len < p->lim.max_header_bytes ? len : p->lim.max_header_bytes);
	const char *u;
	size_t mlen;
	if (e - d >= 5 && memcmp(d, "GET /", 5) == 0)
		mlen = 3;
	else if (e - d >= 6 && memcmp(d, "HEAD /", 6) == 0)
		mlen = 4;
	else
		return HTTP1_NEED_MORE;
	u = d + mlen + 1;
	const char *q = u + 1;
	while (q < e && urlchar[(unsigned char)*q])
		q++;
	if (e - q < 11 || memcmp(q, " HTTP/1.", 8) != 0 || (q[8] != '0' && q[8] != '1') ||
	    q[9] != '\r' || q[10] != '\n')
		return HTTP1_NEED_MORE;
	unsigned minor = (unsigned)(q[8] - '0');
	const char *l = q + 11;
	size_t nh = 0;
	int conn = 0; /* 1 keep-alive, 2 close */
	for (;;) {
		if (e - l < 2)
			return HTTP1_NEED_MORE;
		if (l[0] == '\r') {
			if (l[1] != '\n')
				return HTTP1_NEED_MORE;
			l += 2;
			break;
		}
		const char *n = l;
		while (e - l >= 4 && http1_tchar[(unsigned char)l[0]] &&
		       http1_tchar[(unsigned char)l[1]] && http1_tchar[(unsigned char)l[2]] &&
		       http1_tchar[(unsigned char)l[3]])
			l += 4;
		while (l < e && http1_tchar[(unsigned char)*l])
			l++;
		if (l == n || e - l < 3 || l[0] != ':' || l[1] != ' ' || l[2] == ' ' ||
		    l[2] == '\t')
			return HTTP1_NEED_MORE;
		size_t nlen = (size_t)(l - n);
		const char *v = l + 2, *ve = valchar_span(v, e);
		/* ve > v: v[0] is neither SP nor HTAB, so an empty value ends
		 * in the ": " before it and is refused here. */
		if (e - ve < 2 || ve[0] != '\r' || ve[1] != '\n' || ve[-1] == ' ' || ve[-1] == '\t')
			return HTTP1_NEED_MORE;
		size_t vlen = (size_t)(ve - v);
		if (special_name(n, nlen)) {
			if (conn || !TOKEN_EQ(n, nlen, "connection"))
				return HTTP1_NEED_MORE;
			if (TOKEN_EQ(v, vlen, "keep-alive"))
				conn = 1;
			else if (TOKEN_EQ(v, vlen, "close"))
				conn = 2;
			else
				return HTTP1_NEED_MORE;
		}
		if (nh >= p->lim.max_headers || (nh == p->hdr_cap && http1_hdr_grow(p) != 0))
			return HTTP1_NEED_MORE;
		p->spans[nh++] = (struct hdr_span){.name_off = (size_t)(n - d),
		                                   .name_len = nlen,
		                                   .value_off = (size_t)(v - d),
		                                   .value_len = vlen};
		l = ve + 2;
	}
	/* A request that ends the connection goes through llhttp, whose state
	 * then says so to any input after it. */
	if (minor == 1 ? conn == 2 : conn != 1)
		return HTTP1_NEED_MORE;
	size_t head = (size_t)(l - d);
	if (head > p->head_cap && http1_grow(&p->head, &p->head_cap, head, 1024) != 0)
		return HTTP1_NEED_MORE;
	memcpy(p->head, d, head);
	p->head_len = head;
	p->nheaders = nh;
	p->method_off = 0;
	p->method_len = mlen;
	p->url_off = (size_t)(u - d);
	p->url_len = (size_t)(q - u);
	p->body_len = 0;
	p->minor = (unsigned char)minor;
	p->keep_alive = true;
	p->expect_continue = p->upgrade = p->continue_pending = false;
	fill_request(p, out);
	*consumed = head;
	return HTTP1_REQUEST;
}

enum http1_result http1_parse(struct http1_parser *p, const char *data, size_t len,
                              size_t *consumed, struct http1_request *out)
{
	size_t off = 0;
	*consumed = 0;
	if (p->failed)
		return HTTP1_ERROR;
	/* Between requests llhttp is at the start of a message: the fast
	 * path may take the next one whole. */
	if (FAST_PATH && !p->in_message && !p->ended &&
	    fast_parse(p, data, len, consumed, out) == HTTP1_REQUEST)
		return HTTP1_REQUEST;
	while (off < len) {
		size_t n = len - off;
		if (p->in_head && n > p->lim.max_header_bytes - p->raw_head)
			n = p->lim.max_header_bytes - p->raw_head;
		bool was_head = p->in_head;
		p->feed_start = data + off;
		p->feed_end = data + off + n;
		llhttp_errno_t err = llhttp_execute(&p->ll, data + off, n);
		if (p->pend && http1_head_flush(p) != 0 && err == HPE_OK)
			err = HPE_USER;
		if (err == HPE_PAUSED) {
			/* on_message_complete: one whole request ends here. */
			size_t used = (size_t)(llhttp_get_error_pos(&p->ll) - (data + off));
			llhttp_resume(&p->ll);
			off += used;
			*consumed = off;
			fill_request(p, out);
			p->ended = !p->keep_alive;
			p->in_message = false;
			p->in_head = true;
			p->raw_head = 0;
			return HTTP1_REQUEST;
		}
		if (err != HPE_OK) {
			*consumed = off;
			return set_failed(p, err);
		}
		off += n;
		p->prev_byte = data[off - 1];
		if (was_head && p->in_head) {
			p->raw_head += n;
			if (p->raw_head >= p->lim.max_header_bytes) {
				*consumed = off;
				http1_fail(p, 431, "header block too large");
				return set_failed(p, HPE_USER);
			}
		}
	}
	*consumed = off;
	return HTTP1_NEED_MORE;
}

int http1_parser_error_status(const struct http1_parser *p)
{
	return p->err_status ? p->err_status : 400;
}

const char *http1_parser_error_reason(const struct http1_parser *p)
{
	return p->err_reason ? p->err_reason : "no error";
}

enum http1_result http1_parse_eof(struct http1_parser *p)
{
	if (p->failed)
		return HTTP1_ERROR;
	if (!p->in_message)
		return HTTP1_NEED_MORE;
	http1_fail(p, 400, "connection closed mid-request");
	p->failed = true;
	return HTTP1_ERROR;
}

bool http1_parser_take_continue(struct http1_parser *p)
{
	bool c = p->continue_pending;
	p->continue_pending = false;
	return c;
}

bool http1_head_scan(uint8_t *state, const char *d, size_t n)
{
	uint8_t s = *state;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n') {
			if (s != 0) {
				*state = 0;
				return true;
			}
			s = 1;
		} else {
			s = (d[i] == '\r' && s == 1) ? 2 : 0;
		}
	}
	*state = s;
	return false;
}
