/* h2.c — the HTTP/2 server codec of h2.h, on nghttp2.
 *
 * nghttp2 does the protocol; this file turns its callbacks into complete
 * requests and back. Each stream gets a struct h2_stream: the header bytes
 * copied into one buffer (recorded as offsets while it may grow, turned into
 * views when the request is complete), the body in a second, the response
 * body in a third. Streams are recycled through a small free list that keeps
 * their buffers, so a connection in its steady state allocates nothing per
 * request but what nghttp2 itself allocates.
 *
 * Requests are handed out after nghttp2_session_mem_recv() returns, not from
 * inside nghttp2's callbacks, so on_request may do anything the header
 * allows, and a stream completed and reset within one read is never handed
 * out.
 *
 * A stream's storage lives while nghttp2 has the stream open or the worker
 * owes it an answer: a client reset of a stream whose handler still runs
 * keeps the handler's views alive until its (late, silent) answer.
 *
 * Output: frames are serialized with nghttp2_session_send() and a send
 * callback that appends to an http_obuf; DATA uses NGHTTP2_DATA_FLAG_NO_COPY
 * so the response body is copied once, from the stream into the buffer.
 * h2_session_recv() serializes what it queued right away into a staging
 * buffer: that is how a connection error (nghttp2 queues a GOAWAY and says
 * nothing else) is noticed, from the GOAWAY going out. h2_session_flush()
 * hands the staging buffer over by swapping it with an empty obuf.
 */
#include "h2.h"

#include <nghttp2/nghttp2.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Buffers above these sizes are not kept when a stream is recycled, and at
 * most POOL_MAX streams wait in the free list. */
#define KEEP_HEAD 16384
#define KEEP_BODY 65536
#define POOL_MAX 32
/* The connection-level receive window: request bodies of many streams are
 * taken as they come, so let them flow beyond the 64 KiB default. */
#define CONN_WINDOW (1 << 20)
/* A header block is answered 431 past max_header_bytes, but nghttp2 still
 * decodes the rest of it, and HPACK lets one byte on the wire name a 4 KB
 * table entry: a block that decodes to more than this many times the limit
 * (plus a floor for tiny limits) ends the connection with
 * ENHANCE_YOUR_CALM instead. Plain literal blocks never get there before
 * nghttp2's own CONTINUATION limit (8 frames) stops them. */
#define HEADER_HARD_FACTOR 4
#define HEADER_HARD_FLOOR (64 * 1024)
/* PING and SETTINGS each make the server answer. nghttp2 stops a client
 * that lets more than 1000 such answers queue up, but only within one
 * nghttp2_session_mem_recv() call, so whether a flood is caught depends on
 * the worker's read size; and any such frame restarts a worker's idle
 * timeout. More than this many in a row with no request frame received
 * and no response DATA sent ends the connection (ENHANCE_YOUR_CALM). */
#define MAX_IDLE_CONTROL 100

struct hspan {
	size_t name_off, name_len, value_off, value_len;
};

struct h2_stream {
	int32_t id;
	struct h2_stream *prev, *next; /* the live list, or the free list (next) */

	char *head; /* pseudo-header values, header names and values */
	size_t head_len, head_cap;
	struct hspan *spans;
	struct app_header *headers; /* views built on completion; one spare for host */
	size_t nspans, span_cap;
	char *body;
	size_t body_len, body_cap;
	char *resp; /* the response body, copied */
	size_t resp_len, resp_cap, resp_off;

	size_t method_off, method_len, path_off, path_len, auth_off, auth_len;
	size_t head_bytes; /* counted against max_header_bytes */
	int early_status;  /* 413 / 431 answered by the codec itself */
	bool has_auth, has_host, is_head;
	bool queued;    /* in the ready list */
	bool delivered; /* handed to on_request */
	bool answered;  /* responded or reset (by the worker or the codec) */
	bool closed;    /* nghttp2 closed it */
	bool closing;   /* inside on_stream_close: the callback releases it */
	struct app_request req;
};

struct h2_session {
	nghttp2_session *ng;
	struct h2_limits lim;
	struct h2_callbacks cb;
	void *user;

	struct h2_stream *live; /* every stream with storage in use */
	struct h2_stream *pool; /* recycled, buffers kept */
	size_t npool;
	size_t open;              /* delivered and not closed */
	size_t unanswered;        /* delivered and not answered: handlers still running */
	size_t hard_header_bytes; /* decoded header block size that ends the connection */
	unsigned idle_control;    /* PING/SETTINGS received since the last progress */

	int32_t *ready; /* streams whose request completed in this recv */
	size_t nready, ready_cap;

	struct http_obuf stage; /* frames serialized by h2_session_recv */
	struct http_obuf *out;  /* where the send callbacks append */
	bool failed;            /* a connection error: GOAWAY queued or sent */
	bool calm;              /* that error is the client's excess: ENHANCE_YOUR_CALM */
};

struct h2_limits h2_limits_default(void)
{
	return (struct h2_limits){.http = http1_limits_default(), .max_streams = 100};
}

/* ---- small helpers ---- */

static int grow(void **buf, size_t *cap, size_t need, size_t elem, size_t first)
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

static bool lit_eq(const uint8_t *s, size_t n, const char *lit, size_t litlen)
{
	return n == litlen && memcmp(s, lit, n) == 0;
}

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
static void mark_answered(struct h2_session *s, struct h2_stream *st)
{
	if (st->answered)
		return;
	st->answered = true;
	if (st->delivered)
		s->unanswered--;
}

static void stream_destroy(struct h2_stream *st)
{
	free(st->head);
	free(st->spans);
	free(st->headers);
	free(st->body);
	free(st->resp);
	free(st);
}

static struct h2_stream *stream_get(struct h2_session *s, int32_t id)
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
static void stream_release(struct h2_session *s, struct h2_stream *st)
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
		stream_destroy(st);
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
static struct h2_stream *stream_find(struct h2_session *s, int32_t id)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
	if (st)
		return st;
	for (st = s->live; st; st = st->next)
		if (st->id == id && st->closed)
			return st;
	return NULL;
}

static int head_put(struct h2_stream *st, const void *p, size_t n, size_t *off)
{
	void *h = st->head;
	if (grow(&h, &st->head_cap, st->head_len + n, 1, 512) != 0)
		return -1;
	st->head = h;
	*off = st->head_len;
	if (n)
		memcpy(st->head + st->head_len, p, n);
	st->head_len += n;
	return 0;
}

static int span_add(struct h2_stream *st, const void *name, size_t nlen, const void *value,
                    size_t vlen)
{
	if (st->nspans == st->span_cap) {
		void *sp = st->spans;
		size_t cap = st->span_cap;
		if (grow(&sp, &cap, st->nspans + 1, sizeof(struct hspan), 16) != 0)
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
	if (head_put(st, name, nlen, &h->name_off) != 0 ||
	    head_put(st, value, vlen, &h->value_off) != 0)
		return -1;
	st->nspans++;
	return 0;
}

static bool too_long(const char *v, size_t n, size_t max)
{
	size_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false; /* nghttp2 rejects a malformed content-length */
		if (x > (SIZE_MAX - 9) / 10)
			return true;
		x = x * 10 + (size_t)(v[i] - '0');
	}
	return x > max;
}

/* Views of the complete request; path and query split at '?'. Views are
 * never NULL, even when empty (apps memcpy them). */
static void build_request(struct h2_stream *st)
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

static int send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
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

static int submit(struct h2_session *s, struct h2_stream *st, int status, const char *ctype,
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
		if (grow(&r, &st->resp_cap, send_len, 1, 1024) != 0)
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
	mark_answered(s, st);
	return 0;
}

static void answer_early(struct h2_session *s, struct h2_stream *st)
{
	const char *reason = http_status_reason(st->early_status);
	if (submit(s, st, st->early_status, "text/plain", reason, strlen(reason)) != 0) {
		nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		mark_answered(s, st);
	}
}

/* ---- nghttp2 callbacks ---- */

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
	(void)ng, (void)flags;
	struct h2_session *s = user;
	if (http_obuf_append(s->out, data, len) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_session *s = user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct h2_stream *st = stream_get(s, frame->hd.stream_id);
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
	nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
	(void)flags;
	struct h2_session *s = user;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!st)
		return 0;
	/* Trailers count against the header budget, as in http1.c, but are
	 * not kept (apps see no trailers). Counted even once answered 431:
	 * see HEADER_HARD_FACTOR. */
	st->head_bytes += namelen + valuelen + 4;
	if (st->head_bytes > s->hard_header_bytes) {
		s->calm = true;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (st->early_status)
		return 0;
	if (st->head_bytes > s->lim.http.max_header_bytes) {
		st->early_status = 431;
		return 0;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	size_t off;
	if (namelen && name[0] == ':') {
		if (lit_eq(name, namelen, ":method", 7)) {
			if (head_put(st, value, valuelen, &off) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->method_off = off;
			st->method_len = valuelen;
			st->is_head = app_method_is_head((struct app_str){(const char *)value, valuelen});
		} else if (lit_eq(name, namelen, ":path", 5)) {
			if (head_put(st, value, valuelen, &off) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->path_off = off;
			st->path_len = valuelen;
		} else if (lit_eq(name, namelen, ":authority", 10)) {
			if (head_put(st, value, valuelen, &off) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->auth_off = off;
			st->auth_len = valuelen;
			st->has_auth = true;
		}
		return 0;
	}
	/* The host header made from :authority (pseudo-headers come first,
	 * so has_auth is known) counts against the limit, as Host does in
	 * HTTP/1.1. */
	size_t synthetic = st->has_auth && !st->has_host;
	if (st->nspans + synthetic >= s->lim.http.max_headers) {
		st->early_status = 431;
		return 0;
	}
	if (lit_eq(name, namelen, "host", 4))
		st->has_host = true;
	else if (lit_eq(name, namelen, "content-length", 14) &&
	         too_long((const char *)value, valuelen, s->lim.http.max_body_bytes))
		st->early_status = 413;
	if (span_add(st, name, namelen, value, valuelen) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
	(void)flags;
	struct h2_session *s = user;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st || st->early_status)
		return 0; /* discarded; nghttp2 still returns the window */
	if (len > s->lim.http.max_body_bytes - st->body_len) {
		st->early_status = 413;
		return 0;
	}
	void *b = st->body;
	if (grow(&b, &st->body_cap, st->body_len + len, 1, 1024) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->body = b;
	memcpy(st->body + st->body_len, data, len);
	st->body_len += len;
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_session *s = user;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
		if ((frame->hd.type == NGHTTP2_PING || frame->hd.type == NGHTTP2_SETTINGS) &&
		    !(frame->hd.flags & NGHTTP2_FLAG_ACK) && ++s->idle_control > MAX_IDLE_CONTROL) {
			s->calm = true;
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		return 0;
	}
	s->idle_control = 0;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!st || st->answered)
		return 0;
	if (st->early_status) {
		answer_early(s, st);
		return 0;
	}
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || st->queued)
		return 0;
	void *r = s->ready;
	if (grow(&r, &s->ready_cap, s->nready + 1, sizeof(int32_t), 16) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->ready = r;
	s->ready[s->nready++] = st->id;
	st->queued = true;
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_session *s = user;
	if (frame->hd.type == NGHTTP2_GOAWAY) {
		if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
			s->failed = true;
		return 0;
	}
	if (frame->hd.type == NGHTTP2_DATA)
		s->idle_control = 0; /* a long download with the client's PINGs is progress */
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	/* An answer sent before the request ended: ask the client to stop. */
	if (st && st->early_status &&
	    nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
		                          NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
	(void)ng;
	struct h2_session *s = user;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st)
		return 0;
	st->closed = true;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (st->delivered) {
		s->open--;
		st->closing = true;
		if (s->cb.on_stream_close)
			s->cb.on_stream_close(s->user, id, error_code);
		st->closing = false;
	}
	if (!st->delivered || st->answered)
		stream_release(s, st);
	/* else: the worker still owes an answer and may hold the views */
	return 0;
}

/* ---- the session ---- */

struct h2_session *h2_session_new(const struct h2_limits *limits, const struct h2_callbacks *cb,
                                  void *user)
{
	struct h2_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->lim = limits ? *limits : h2_limits_default();
	if (s->lim.max_streams == 0)
		s->lim.max_streams = 100;
	s->cb = *cb;
	s->user = user;
	size_t mh = s->lim.http.max_header_bytes;
	s->hard_header_bytes = mh > (SIZE_MAX - HEADER_HARD_FLOOR) / HEADER_HARD_FACTOR
	                           ? SIZE_MAX
	                           : mh * HEADER_HARD_FACTOR + HEADER_HARD_FLOOR;
	http_obuf_init(&s->stage);

	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_send_callback(cbs, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	/* Closed streams are kept only for RFC 7540 priorities, which we ignore. */
	nghttp2_option_set_no_closed_streams(opt, 1);
	int rv = nghttp2_session_server_new2(&s->ng, cbs, s, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	cbs = NULL;
	opt = NULL;
	if (rv != 0)
		goto fail;

	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->lim.max_streams},
	};
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) !=
	        0 ||
	    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
		goto fail;
	return s;
fail:
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	h2_session_free(s);
	return NULL;
}

void h2_session_free(struct h2_session *s)
{
	if (!s)
		return;
	nghttp2_session_del(s->ng); /* calls none of our callbacks */
	while (s->live) {
		struct h2_stream *st = s->live;
		s->live = st->next;
		stream_destroy(st);
	}
	while (s->pool) {
		struct h2_stream *st = s->pool;
		s->pool = st->next;
		stream_destroy(st);
	}
	free(s->ready);
	http_obuf_free(&s->stage);
	free(s);
}

static void fail_connection(struct h2_session *s, int lib_error)
{
	uint32_t code = lib_error == NGHTTP2_ERR_NOMEM || lib_error == NGHTTP2_ERR_CALLBACK_FAILURE
	                    ? NGHTTP2_INTERNAL_ERROR
	                    : NGHTTP2_PROTOCOL_ERROR;
	if (lib_error == NGHTTP2_ERR_FLOODED || s->calm)
		code = NGHTTP2_ENHANCE_YOUR_CALM;
	nghttp2_session_terminate_session(s->ng, code);
	s->failed = true;
}

int h2_session_recv(struct h2_session *s, const char *data, size_t len)
{
	if (s->failed)
		return -1;
	ssize_t n = nghttp2_session_mem_recv(s->ng, (const uint8_t *)data, len);
	if (n < 0) {
		fail_connection(s, (int)n);
		s->nready = 0;
		return -1;
	}
	/* Serialize now: a connection error shows as its GOAWAY going out. */
	s->out = &s->stage;
	int rv = nghttp2_session_send(s->ng);
	s->out = NULL;
	if (rv != 0)
		fail_connection(s, rv);
	if (s->failed) {
		s->nready = 0;
		return -1;
	}
	for (size_t i = 0; i < s->nready; i++) {
		struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, s->ready[i]);
		if (!st || st->closed || st->delivered || st->answered)
			continue;
		build_request(st);
		st->delivered = true;
		s->open++;
		s->unanswered++;
		s->cb.on_request(s->user, st->id, &st->req);
	}
	s->nready = 0;
	return 0;
}

int h2_session_respond(struct h2_session *s, int32_t stream_id, int status,
                       const char *content_type, const void *body, size_t len)
{
	struct h2_stream *st = stream_find(s, stream_id);
	if (!st || !st->delivered || st->answered)
		return -1;
	if (st->closed) {
		mark_answered(s, st);
		if (!st->closing)
			stream_release(s, st);
		return -1;
	}
	int rv = submit(s, st, status, content_type, body, len);
	if (rv != 0) {
		nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, stream_id,
		                          NGHTTP2_INTERNAL_ERROR);
		mark_answered(s, st);
	}
	return rv;
}

int h2_session_reset_stream(struct h2_session *s, int32_t stream_id, uint32_t error_code)
{
	struct h2_stream *st = stream_find(s, stream_id);
	if (!st || !st->delivered || st->answered)
		return -1;
	mark_answered(s, st);
	if (st->closed) {
		if (!st->closing)
			stream_release(s, st);
		return 0;
	}
	return nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, stream_id, error_code) == 0 ? 0
	                                                                                       : -1;
}

int h2_session_flush(struct h2_session *s, struct http_obuf *out)
{
	if (s->stage.len) {
		if (out->len == 0) {
			struct http_obuf t = *out;
			*out = s->stage;
			s->stage = t;
		} else {
			if (http_obuf_append(out, s->stage.data, s->stage.len) != 0)
				return -1;
			s->stage.len = 0;
		}
	}
	s->out = out;
	int rv = nghttp2_session_send(s->ng);
	s->out = NULL;
	return rv == 0 ? 0 : -1;
}

int h2_session_goaway_graceful(struct h2_session *s)
{
	int32_t last = nghttp2_session_get_last_proc_stream_id(s->ng);
	int rv = nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
	return rv == 0 || rv == NGHTTP2_ERR_INVALID_STATE ? 0 : -1;
}

bool h2_session_want_write(const struct h2_session *s)
{
	return s->stage.len > 0 || nghttp2_session_want_write(s->ng);
}

bool h2_session_want_read(const struct h2_session *s)
{
	return !s->failed && nghttp2_session_want_read(s->ng);
}

bool h2_session_is_closed(const struct h2_session *s)
{
	return !h2_session_want_read(s) && !h2_session_want_write(s);
}

size_t h2_session_open_streams(const struct h2_session *s)
{
	return s->open;
}

size_t h2_session_unanswered_streams(const struct h2_session *s)
{
	return s->unanswered;
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
	struct h2_stream *st = stream_get(s, 1);
	if (!st)
		return -1;
	size_t off;
	bool ok = head_put(st, req->method.base, req->method.len, &st->method_off) == 0;
	st->method_len = req->method.len;
	st->is_head = app_method_is_head(req->method);
	/* :path is the HTTP/1.1 target again: path '?' query. */
	ok = ok && head_put(st, req->path.base, req->path.len, &st->path_off) == 0;
	st->path_len = req->path.len;
	if (ok && req->query.len) {
		ok = head_put(st, "?", 1, &off) == 0 &&
		     head_put(st, req->query.base, req->query.len, &off) == 0;
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
		ok = span_add(st, h->name.base, h->name.len, h->value.base, h->value.len) == 0;
	}
	if (ok && req->body.len) {
		void *b = st->body;
		ok = grow(&b, &st->body_cap, req->body.len, 1, 1024) == 0;
		st->body = b;
		if (ok) {
			memcpy(st->body, req->body.base, req->body.len);
			st->body_len = req->body.len;
		}
	}
	if (!ok || nghttp2_session_upgrade2(s->ng, payload, (size_t)plen, st->is_head, NULL) != 0) {
		st->closed = true; /* not known to nghttp2: skip its user data */
		stream_release(s, st);
		return -1;
	}
	nghttp2_session_set_stream_user_data(s->ng, 1, st);
	build_request(st);
	st->delivered = true;
	s->open++;
	s->unanswered++;
	s->cb.on_request(s->user, 1, &st->req);
	return 0;
}
