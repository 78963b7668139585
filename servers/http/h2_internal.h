/* h2_internal.h — what the files of the HTTP/2 codec share (h2.c: nghttp2's
 * callbacks and the session; h2_stream.c: a stream's storage, its request
 * and its response; h2_upgrade.c: detection and the h2c upgrade). Not an
 * API: everything outside servers/http uses h2.h.
 */
#ifndef COROBENCH_H2_INTERNAL_H
#define COROBENCH_H2_INTERNAL_H

#include "h2.h"

#include <nghttp2/nghttp2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Grow *buf (elements of elem bytes, *cap of them) to hold need, doubling
 * from first. 0, or -1 out of memory. */
int h2_grow(void **buf, size_t *cap, size_t need, size_t elem, size_t first);

/* A stream's storage, from the session's pool, on the live list. */
struct h2_stream *h2_stream_get(struct h2_session *s, int32_t id);
/* Back to the pool: neither nghttp2 nor the worker needs it any more. */
void h2_stream_release(struct h2_session *s, struct h2_stream *st);
void h2_stream_destroy(struct h2_stream *st);
/* The stream the worker names: open in nghttp2, or closed and still owed
 * an answer. */
struct h2_stream *h2_stream_find(struct h2_session *s, int32_t id);
/* Copy n bytes into the stream's header storage; *off is where. */
int h2_head_put(struct h2_stream *st, const void *p, size_t n, size_t *off);
/* One header field, name and value copied. */
int h2_span_add(struct h2_stream *st, const void *name, size_t nlen, const void *value,
                size_t vlen);
/* The views of the complete request (st->req). */
void h2_build_request(struct h2_stream *st);
/* The stream has its answer (or reset); counts it off unanswered. */
void h2_mark_answered(struct h2_session *s, struct h2_stream *st);
/* Queue the answer: 0, or -2 out of memory. */
int h2_submit(struct h2_session *s, struct h2_stream *st, int status, const char *ctype,
              const void *body, size_t len);
/* nghttp2's send_data callback: a DATA frame's header and its body (from
 * the stream's response copy, NGHTTP2_DATA_FLAG_NO_COPY) into s->out. */
int h2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                 nghttp2_data_source *src, void *user);
/* The codec's own 413/431 for st (early_status). */
void h2_answer_early(struct h2_session *s, struct h2_stream *st);

#endif
