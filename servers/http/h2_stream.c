/* h2_stream.c — one HTTP/2 stream's storage in the codec of h2.h: the header
 * bytes copied into one buffer (recorded as offsets while it may grow,
 * turned into views when the request is complete), the body in a second,
 * the response body in a third, and the answer handed to nghttp2. Streams
 * are recycled through a small free list that keeps their buffers, so a
 * connection in its steady state allocates nothing per request but what
 * nghttp2 itself allocates.
 */
#include "h2_internal.h"

#include <stdlib.h>
#include <string.h>

/* Buffers above these sizes are not kept when a stream is recycled, and at
 * most POOL_MAX streams wait in the free list. */
#define KEEP_HEAD 16384
#define KEEP_BODY 65536
#define POOL_MAX 32
int h2_grow(void **buf, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : first;
	while (n < need)
		n = n > SIZE_MAX / 4 ? need : n * 2;
	if (n > SIZE_MAX / elem)
		return -1;
	void *b = realloc(*buf, n * elem);
	if (!b)
		return -1;
	*buf = b;
	*cap = n;
	return 0;
}

/* ---- streams ---- */

static void stream_clear(struct h2_stream *st)
{
	st->id = 0;
	st->head_len = st->nspans = st->body_len = 0;
	st->resp_len = st->resp_off = 0;
	st->method_off = st->method_len = st->path_off = st->path_len = 0;
	st->auth_off = st->auth_len = st->head_bytes = 0;
	st->early_status = 0;
	st->has_auth = st->has_host = st->is_head = false;
	st->queued = st->delivered = st->answered = st->closed = st->closing = false;
}

/* The stream has its answer (or reset); counts it off unanswered. */
void h2_mark_answered(struct h2_session *s, struct h2_stream *st)
{
	if (st->answered)
		return;
	st->answered = true;
	if (st->delivered)
		s->unanswered--;
}

void h2_stream_destroy(struct h2_stream *st)
{
	free(st->head);
	free(st->spans);
	free(st->headers);
	free(st->body);
	free(st->resp);
	free(st);
}

struct h2_stream *h2_stream_get(struct h2_session *s, int32_t id)
{
	struct h2_stream *st = s->pool;
	if (st) {
		s->pool = st->next;
		s->npool--;
	} else {
		st = calloc(1, sizeof(*st));
		if (!st)
			return NULL;
	}
	stream_clear(st);
	st->id = id;
	st->prev = NULL;
	st->next = s->live;
	if (s->live)
		s->live->prev = st;
	s->live = st;
	return st;
}

/* Storage no longer needed by nghttp2 nor by the worker. */
void h2_stream_release(struct h2_session *s, struct h2_stream *st)
{
	if (!st->closed)
		nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
	if (st->prev)
		st->prev->next = st->next;
	else
		s->live = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (s->npool >= POOL_MAX) {
		h2_stream_destroy(st);
		return;
	}
	if (st->head_cap > KEEP_HEAD) {
		free(st->head);
		st->head = NULL;
		st->head_cap = 0;
	}
	if (st->body_cap > KEEP_BODY) {
		free(st->body);
		st->body = NULL;
		st->body_cap = 0;
	}
	if (st->resp_cap > KEEP_BODY) {
		free(st->resp);
		st->resp = NULL;
		st->resp_cap = 0;
	}
	st->next = s->pool;
	s->pool = st;
	s->npool++;
}

/* The stream the worker names: open in nghttp2, or closed and still owed
 * an answer. */
struct h2_stream *h2_stream_find(struct h2_session *s, int32_t id)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
	if (st)
		return st;
	for (st = s->live; st; st = st->next)
		if (st->id == id && st->closed)
			return st;
	return NULL;
}

int h2_head_put(struct h2_stream *st, const void *p, size_t n, size_t *off)
{
	void *h = st->head;
	if (h2_grow(&h, &st->head_cap, st->head_len + n, 1, 512) != 0)
		return -1;
	st->head = h;
	*off = st->head_len;
	if (n)
		memcpy(st->head + st->head_len, p, n);
	st->head_len += n;
	return 0;
}

int h2_span_add(struct h2_stream *st, const void *name, size_t nlen, const void *value, size_t vlen)
{
	if (st->nspans == st->span_cap) {
		void *sp = st->spans;
		size_t cap = st->span_cap;
		if (h2_grow(&sp, &cap, st->nspans + 1, sizeof(struct hspan), 16) != 0)
			return -1;
		st->spans = sp;
		/* headers gets one spare slot for a host header made from :authority */
		void *hd = realloc(st->headers, (cap + 1) * sizeof(struct app_header));
		if (!hd)
			return -1;
		st->headers = hd;
		st->span_cap = cap;
	}
	struct hspan *h = &st->spans[st->nspans];
	h->name_len = nlen;
	h->value_len = vlen;
	if (h2_head_put(st, name, nlen, &h->name_off) != 0 ||
	    h2_head_put(st, value, vlen, &h->value_off) != 0)
		return -1;
	st->nspans++;
	return 0;
}

/* Views of the complete request; path and query split at '?'. Views are
 * never NULL, even when empty (apps memcpy them). */
void h2_build_request(struct h2_stream *st)
{
	struct app_request *r = &st->req;
	const char *h = st->head ? st->head : "";
	r->method = (struct app_str){h + st->method_off, st->method_len};
	const char *u = h + st->path_off;
	const char *q = st->path_len ? memchr(u, '?', st->path_len) : NULL;
	if (q) {
		r->path = (struct app_str){u, (size_t)(q - u)};
		r->query = (struct app_str){q + 1, (size_t)(u + st->path_len - q - 1)};
	} else {
		r->path = (struct app_str){u, st->path_len};
		r->query = (struct app_str){u + st->path_len, 0};
	}
	size_t n = 0;
	for (size_t i = 0; i < st->nspans; i++, n++) {
		const struct hspan *sp = &st->spans[i];
		st->headers[n].name = (struct app_str){h + sp->name_off, sp->name_len};
		st->headers[n].value = (struct app_str){h + sp->value_off, sp->value_len};
	}
	/* HTTP/1.1 apps read Host; HTTP/2 clients send :authority instead.
	 * The array has a spare slot for it; a stream that never had a
	 * header field gets its (pooled) array here. */
	if (!st->headers)
		st->headers = malloc(sizeof(struct app_header));
	if (!st->has_host && st->has_auth && st->headers) {
		st->headers[n].name = APP_STR_LIT("host");
		st->headers[n].value = (struct app_str){h + st->auth_off, st->auth_len};
		n++;
	}
	r->headers = st->headers;
	r->nheaders = n;
	r->body = (struct app_str){st->body ? st->body : "", st->body_len};
	r->http_major = 2;
	r->http_minor = 0;
}

/* ---- responses ---- */

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
	(void)ng, (void)id, (void)buf, (void)user;
	struct h2_stream *st = src->ptr;
	size_t n = st->resp_len - st->resp_off;
	if (n > length)
		n = length;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (st->resp_off + n == st->resp_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

int h2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                 nghttp2_data_source *src, void *user)
{
	(void)ng, (void)frame; /* no padding: we set no select_padding callback */
	struct h2_session *s = user;
	struct h2_stream *st = src->ptr;
	if (http_obuf_reserve(s->out, 9 + length) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	(void)http_obuf_append(s->out, framehd, 9);
	(void)http_obuf_append(s->out, st->resp + st->resp_off, length);
	st->resp_off += length;
	return 0;
}

static void put_decimal(char *buf, size_t *len, size_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	*len = n;
}

#define NV(n, v, vl)                                                                               \
	((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE})

int h2_submit(struct h2_session *s, struct h2_stream *st, int status, const char *ctype,
              const void *body, size_t len)
{
	if (status < 200 || status > 999)
		status = 500; /* a 1xx cannot end a stream */
	if (!ctype)
		ctype = "text/plain";
	bool no_content = status == 204 || status == 304;
	size_t send_len = (no_content || st->is_head) ? 0 : len;
	if (send_len) {
		void *r = st->resp;
		if (h2_grow(&r, &st->resp_cap, send_len, 1, 1024) != 0)
			return -2;
		st->resp = r;
		memcpy(st->resp, body, send_len);
	}
	st->resp_len = send_len;
	st->resp_off = 0;

	char code[3] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
	                (char)('0' + status % 10)};
	char clen[24];
	size_t clen_len;
	put_decimal(clen, &clen_len, no_content ? 0 : len);
	nghttp2_nv nva[5];
	size_t n = 0;
	nva[n++] = NV(":status", code, 3);
	nva[n++] = NV("content-type", ctype, strlen(ctype));
	if (!no_content)
		nva[n++] = NV("content-length", clen, clen_len);
	nva[n++] = NV("date", http_date_now(), 29);
	nva[n++] = NV("server", HTTP_SERVER_NAME, sizeof(HTTP_SERVER_NAME) - 1);
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	/* nghttp2 copies the header fields; the body stays in st->resp. */
	if (nghttp2_submit_response(s->ng, st->id, nva, n, send_len ? &prd : NULL) != 0)
		return -2;
	h2_mark_answered(s, st);
	return 0;
}

void h2_answer_early(struct h2_session *s, struct h2_stream *st)
{
	const char *reason = http_status_reason(st->early_status);
	if (h2_submit(s, st, st->early_status, "text/plain", reason, strlen(reason)) != 0) {
		nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		h2_mark_answered(s, st);
	}
}
