/* h2.c — the HTTP/2 server codec of h2.h, on nghttp2.
 *
 * nghttp2 does the protocol; this file turns its callbacks into complete
 * requests and back, and runs the session. A stream's storage, request and
 * answer are h2_stream.c's; detection and the h2c upgrade h2_upgrade.c's.
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
#include "h2_internal.h"

#include <stdlib.h>
#include <string.h>

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

struct h2_limits h2_limits_default(void)
{
	return (struct h2_limits){.http = http1_limits_default(), .max_streams = 100};
}

/* ---- small helpers ---- */

static bool lit_eq(const uint8_t *s, size_t n, const char *lit, size_t litlen)
{
	return n == litlen && memcmp(s, lit, n) == 0;
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
	struct h2_stream *st = h2_stream_get(s, frame->hd.stream_id);
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
			if (h2_head_put(st, value, valuelen, &off) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->method_off = off;
			st->method_len = valuelen;
			st->is_head =
			    app_method_is_head((struct app_str){(const char *)value, valuelen});
		} else if (lit_eq(name, namelen, ":path", 5)) {
			if (h2_head_put(st, value, valuelen, &off) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->path_off = off;
			st->path_len = valuelen;
		} else if (lit_eq(name, namelen, ":authority", 10)) {
			if (h2_head_put(st, value, valuelen, &off) != 0)
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
	if (h2_span_add(st, name, namelen, value, valuelen) != 0)
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
	if (h2_grow(&b, &st->body_cap, st->body_len + len, 1, 1024) != 0)
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
		h2_answer_early(s, st);
		return 0;
	}
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || st->queued)
		return 0;
	void *r = s->ready;
	if (h2_grow(&r, &s->ready_cap, s->nready + 1, sizeof(int32_t), 16) != 0)
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
		h2_stream_release(s, st);
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
	nghttp2_session_callbacks_set_send_data_callback(cbs, h2_send_data);
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
		h2_stream_destroy(st);
	}
	while (s->pool) {
		struct h2_stream *st = s->pool;
		s->pool = st->next;
		h2_stream_destroy(st);
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
		h2_build_request(st);
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
	struct h2_stream *st = h2_stream_find(s, stream_id);
	if (!st || !st->delivered || st->answered)
		return -1;
	if (st->closed) {
		h2_mark_answered(s, st);
		if (!st->closing)
			h2_stream_release(s, st);
		return -1;
	}
	int rv = h2_submit(s, st, status, content_type, body, len);
	if (rv != 0) {
		nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, stream_id,
		                          NGHTTP2_INTERNAL_ERROR);
		h2_mark_answered(s, st);
	}
	return rv;
}

int h2_session_reset_stream(struct h2_session *s, int32_t stream_id, uint32_t error_code)
{
	struct h2_stream *st = h2_stream_find(s, stream_id);
	if (!st || !st->delivered || st->answered)
		return -1;
	h2_mark_answered(s, st);
	if (st->closed) {
		if (!st->closing)
			h2_stream_release(s, st);
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
