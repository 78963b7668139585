/* test_h2.c — unit tests of the HTTP/2 server codec (servers/http/h2.h).
 *
 * The peer is a real nghttp2 CLIENT session in this process; bytes are
 * pumped both ways through memory, so every case runs the same framing,
 * HPACK and flow control a socket would carry, without one. Raw bytes are
 * written by hand only for what no well-behaved client sends (malformed
 * frames). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "h2.h"

#include <nghttp2/nghttp2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAXS 1024 /* client streams tracked, by (id - 1) / 2 */

/* ---- the client side ---- */

struct cstream {
	int status;
	char ctype[64];
	long clen;
	char *body;
	size_t body_len;
	bool closed;
	uint32_t error;
};

struct upload {
	const char *p;
	size_t len, off;
	const char *trailer; /* value of an "x-trailer" field sent after the body */
};

struct client {
	nghttp2_session *ng;
	struct cstream st[MAXS];
	bool goaway;
	int32_t goaway_last;
	uint32_t goaway_error;
	struct upload up[8];
	int nup;
};

static struct cstream *cs(struct client *c, int32_t id)
{
	assert_true(id > 0 && id % 2 == 1 && (id - 1) / 2 < MAXS);
	return &c->st[(id - 1) / 2];
}

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *user)
{
	(void)ng, (void)flags;
	struct client *c = user;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct cstream *s = cs(c, frame->hd.stream_id);
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		s->status = atoi((const char *)value);
	else if (namelen == 12 && memcmp(name, "content-type", 12) == 0 &&
	         valuelen < sizeof(s->ctype)) {
		memcpy(s->ctype, value, valuelen);
		s->ctype[valuelen] = '\0';
	} else if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
		s->clen = atol((const char *)value);
	return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *user)
{
	(void)ng, (void)flags;
	struct cstream *s = cs(user, id);
	s->body = realloc(s->body, s->body_len + len + 1);
	assert_non_null(s->body);
	memcpy(s->body + s->body_len, data, len);
	s->body_len += len;
	s->body[s->body_len] = '\0';
	return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t error, void *user)
{
	(void)ng;
	struct cstream *s = cs(user, id);
	s->closed = true;
	s->error = error;
	return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	(void)ng;
	struct client *c = user;
	if (frame->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = true;
		c->goaway_last = frame->goaway.last_stream_id;
		c->goaway_error = frame->goaway.error_code;
	}
	return 0;
}

static ssize_t c_read_upload(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *user)
{
	(void)user;
	struct upload *u = src->ptr;
	size_t n = u->len - u->off;
	if (n > length)
		n = length;
	memcpy(buf, u->p + u->off, n);
	u->off += n;
	if (u->off == u->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (u->trailer) {
			nghttp2_nv t = {(uint8_t *)"x-trailer", (uint8_t *)u->trailer, 9,
			                strlen(u->trailer), NGHTTP2_NV_FLAG_NONE};
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			assert_int_equal(nghttp2_submit_trailer(ng, id, &t, 1), 0);
		}
	}
	return (ssize_t)n;
}

static struct client *client_new(bool send_settings)
{
	struct client *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	nghttp2_session_callbacks *cb;
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
	assert_int_equal(nghttp2_session_client_new(&c->ng, cb, c), 0);
	nghttp2_session_callbacks_del(cb);
	if (send_settings)
		assert_int_equal(nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	return c;
}

static void client_free(struct client *c)
{
	nghttp2_session_del(c->ng);
	for (int i = 0; i < MAXS; i++)
		free(c->st[i].body);
	free(c);
}

#define NVS(n, v)                                                                                  \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE         \
	}

/* Submit a request; extra holds name/value pairs, NULL-terminated. */
static int32_t request_ex(struct client *c, const char *method, const char *path, const char *body,
                          size_t body_len, const char *const *extra)
{
	nghttp2_nv nva[64] = {
	    NVS(":method", method),
	    NVS(":scheme", "http"),
	    NVS(":authority", "example.test"),
	    NVS(":path", path),
	};
	size_t n = 4;
	for (size_t i = 0; extra && extra[i]; i += 2)
		nva[n++] = (nghttp2_nv)NVS(extra[i], extra[i + 1]);
	nghttp2_data_provider prd, *pp = NULL;
	if (body) {
		/* a ring: at most 8 uploads in flight at once */
		struct upload *u = &c->up[c->nup++ % 8];
		*u = (struct upload){body, body_len, 0, NULL};
		prd.source.ptr = u;
		prd.read_callback = c_read_upload;
		pp = &prd;
	}
	int32_t id = nghttp2_submit_request(c->ng, NULL, nva, n, pp, NULL);
	assert_true(id > 0);
	return id;
}

static int32_t get(struct client *c, const char *path)
{
	return request_ex(c, "GET", path, NULL, 0, NULL);
}

/* ---- the server side ---- */

struct srv {
	struct h2_session *s;
	struct http_obuf out;
	int nreq;
	int32_t ids[512];
	struct app_request reqs[512]; /* views into the codec's storage */
	int nclose;
	int32_t close_ids[512];
	uint32_t close_codes[512];
	enum { KEEP, ECHO, RESET } mode;
	bool respond_on_close; /* answer (late) from inside on_stream_close */
	int last_rc;           /* of the last h2_session_recv */
	size_t max_open;       /* the most streams open at once */
};

static void s_on_request(void *user, int32_t id, const struct app_request *req)
{
	struct srv *v = user;
	assert_true(v->nreq < 512);
	v->ids[v->nreq] = id;
	v->reqs[v->nreq++] = *req;
	if (h2_session_open_streams(v->s) > v->max_open)
		v->max_open = h2_session_open_streams(v->s);
	if (v->mode == ECHO) {
		const struct app_str *b = req->body.len ? &req->body : &req->path;
		assert_int_equal(
		    h2_session_respond(v->s, id, 200, "application/octet-stream", b->base, b->len),
		    0);
	} else if (v->mode == RESET) {
		assert_int_equal(h2_session_reset_stream(v->s, id, NGHTTP2_INTERNAL_ERROR), 0);
	}
}

static void s_on_close(void *user, int32_t id, uint32_t code)
{
	struct srv *v = user;
	assert_true(v->nclose < 512);
	v->close_ids[v->nclose] = id;
	v->close_codes[v->nclose++] = code;
	if (v->respond_on_close && code != NGHTTP2_NO_ERROR)
		assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "x", 1), -1);
}

static struct srv *srv_new(const struct h2_limits *lim)
{
	struct srv *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	struct h2_callbacks cb = {s_on_request, s_on_close};
	v->s = h2_session_new(lim, &cb, v);
	assert_non_null(v->s);
	http_obuf_init(&v->out);
	return v;
}

static void srv_free(struct srv *v)
{
	h2_session_free(v->s);
	http_obuf_free(&v->out);
	free(v);
}

/* Move bytes both ways until both sides are quiet. The client's bytes reach
 * the server in pieces of at most chunk bytes (0: whole). */
static void pump_chunked(struct client *c, struct srv *v, size_t chunk)
{
	for (int round = 0; round < 10000; round++) {
		bool moved = false;
		for (;;) {
			const uint8_t *p;
			ssize_t n = nghttp2_session_mem_send(c->ng, &p);
			assert_true(n >= 0);
			if (n == 0)
				break;
			moved = true;
			size_t off = 0;
			while (off < (size_t)n) {
				size_t k = (size_t)n - off;
				if (chunk && k > chunk)
					k = chunk;
				v->last_rc = h2_session_recv(v->s, (const char *)p + off, k);
				off += k;
			}
		}
		assert_int_equal(h2_session_flush(v->s, &v->out), 0);
		if (v->out.len) {
			moved = true;
			ssize_t n = nghttp2_session_mem_recv(c->ng, (const uint8_t *)v->out.data,
			                                     v->out.len);
			assert_int_equal(n, (ssize_t)v->out.len);
			http_obuf_consume(&v->out, v->out.len);
		}
		if (!moved)
			return;
	}
	fail_msg("pump did not settle");
}

static void pump(struct client *c, struct srv *v)
{
	pump_chunked(c, v, 0);
}

static void assert_view(struct app_str v, const char *want)
{
	size_t n = strlen(want);
	if (v.len != n || (n && memcmp(v.base, want, n) != 0))
		fail_msg("view \"%.*s\" (len %zu) != \"%s\"", (int)v.len, v.base ? v.base : "",
		         v.len, want);
	assert_non_null(v.base);
}

static const struct app_str *header(const struct app_request *r, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->nheaders; i++)
		if (r->headers[i].name.len == n &&
		    strncasecmp(r->headers[i].name.base, name, n) == 0)
			return &r->headers[i].value;
	return NULL;
}

/* ---- cases ---- */

static void test_get(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	const char *extra[] = {"x-test", "yes", NULL};
	int32_t id = request_ex(c, "GET", "/hello?x=1&y=2", NULL, 0, extra);
	pump_chunked(c, v, 7); /* frames cut anywhere */
	assert_int_equal(v->last_rc, 0);
	assert_int_equal(v->nreq, 1);
	assert_int_equal(v->ids[0], id);
	const struct app_request *r = &v->reqs[0];
	assert_view(r->method, "GET");
	assert_view(r->path, "/hello");
	assert_view(r->query, "x=1&y=2");
	assert_view(r->body, "");
	assert_int_equal(r->http_major, 2);
	assert_non_null(header(r, "x-test"));
	assert_view(*header(r, "x-test"), "yes");
	assert_non_null(header(r, "host"));
	assert_view(*header(r, "host"), "example.test");
	assert_int_equal(h2_session_open_streams(v->s), 1);
	assert_false(cs(c, id)->closed);

	assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "hi", 2), 0);
	assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "again", 5), -1);
	pump(c, v);
	struct cstream *s = cs(c, id);
	assert_true(s->closed);
	assert_int_equal(s->error, NGHTTP2_NO_ERROR);
	assert_int_equal(s->status, 200);
	assert_string_equal(s->ctype, "text/plain");
	assert_int_equal(s->clen, 2);
	assert_int_equal(s->body_len, 2);
	assert_memory_equal(s->body, "hi", 2);
	assert_int_equal(v->nclose, 1);
	assert_int_equal(v->close_ids[0], id);
	assert_int_equal(v->close_codes[0], NGHTTP2_NO_ERROR);
	assert_int_equal(h2_session_open_streams(v->s), 0);
	assert_true(h2_session_want_read(v->s));
	assert_false(h2_session_want_write(v->s));
	client_free(c);
	srv_free(v);
}

static void test_head_and_no_content(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	int32_t a = request_ex(c, "HEAD", "/x", NULL, 0, NULL);
	int32_t b = get(c, "/nothing");
	pump(c, v);
	assert_int_equal(v->nreq, 2);
	assert_int_equal(h2_session_respond(v->s, a, 200, "text/html", "hello", 5), 0);
	assert_int_equal(h2_session_respond(v->s, b, 204, NULL, "ignored", 7), 0);
	pump(c, v);
	assert_int_equal(cs(c, a)->status, 200);
	assert_int_equal(cs(c, a)->clen, 5);
	assert_int_equal(cs(c, a)->body_len, 0);
	assert_int_equal(cs(c, a)->error, NGHTTP2_NO_ERROR);
	assert_int_equal(cs(c, b)->status, 204);
	assert_int_equal(cs(c, b)->body_len, 0);
	assert_int_equal(cs(c, b)->error, NGHTTP2_NO_ERROR);
	client_free(c);
	srv_free(v);
}

static void test_post_echo(void **state)
{
	(void)state;
	/* Over the 64 KiB initial window: needs WINDOW_UPDATEs both ways. */
	size_t n = 200000;
	char *body = malloc(n);
	assert_non_null(body);
	for (size_t i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	v->mode = ECHO;
	int32_t id = request_ex(c, "POST", "/echo", body, n, NULL);
	int32_t id2 = request_ex(c, "POST", "/echo", "small", 5, NULL);
	pump_chunked(c, v, 1000);
	assert_int_equal(v->nreq, 2);
	struct cstream *s = cs(c, id);
	assert_true(s->closed);
	assert_int_equal(s->error, NGHTTP2_NO_ERROR);
	assert_int_equal(s->status, 200);
	assert_int_equal(s->clen, (long)n);
	assert_int_equal(s->body_len, n);
	assert_memory_equal(s->body, body, n);
	assert_int_equal(cs(c, id2)->body_len, 5);
	assert_memory_equal(cs(c, id2)->body, "small", 5);
	client_free(c);
	srv_free(v);
	free(body);
}

static void test_100_streams_out_of_order(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	char paths[100][16];
	int32_t ids[100];
	for (int i = 0; i < 100; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/n/%d", i);
		ids[i] = get(c, paths[i]);
	}
	pump(c, v);
	assert_int_equal(v->nreq, 100);
	assert_int_equal(h2_session_open_streams(v->s), 100);
	/* Answer in a scrambled order, pumping now and then. */
	for (int k = 0; k < 100; k++) {
		int j = (k * 37 + 11) % 100;
		const struct app_request *r = &v->reqs[j];
		char body[64];
		int len = snprintf(body, sizeof(body), "%.*s!", (int)r->path.len, r->path.base);
		assert_int_equal(h2_session_respond(v->s, v->ids[j], 200, NULL, body, (size_t)len),
		                 0);
		if (k % 10 == 9)
			pump(c, v);
	}
	pump(c, v);
	for (int i = 0; i < 100; i++) {
		struct cstream *s = cs(c, ids[i]);
		char want[32];
		snprintf(want, sizeof(want), "%s!", paths[i]);
		assert_true(s->closed);
		assert_int_equal(s->status, 200);
		assert_int_equal(s->body_len, strlen(want));
		assert_memory_equal(s->body, want, strlen(want));
	}
	assert_int_equal(v->nclose, 100);
	assert_int_equal(h2_session_open_streams(v->s), 0);
	client_free(c);
	srv_free(v);
}

static void test_client_reset(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	int32_t id = get(c, "/slow");
	pump(c, v);
	assert_int_equal(v->nreq, 1);
	assert_int_equal(nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL),
	                 0);
	pump(c, v);
	assert_int_equal(v->nclose, 1);
	assert_int_equal(v->close_ids[0], id);
	assert_int_equal(v->close_codes[0], NGHTTP2_CANCEL);
	assert_int_equal(h2_session_open_streams(v->s), 0);
	/* The handler may still read its request (ASan watches)... */
	assert_view(v->reqs[0].path, "/slow");
	assert_view(*header(&v->reqs[0], "host"), "example.test");
	/* ...and its late answer is harmless and sends nothing. */
	assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "late", 4), -1);
	assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "late", 4), -1);
	assert_int_equal(h2_session_reset_stream(v->s, id, NGHTTP2_INTERNAL_ERROR), -1);
	pump(c, v);
	assert_int_equal(cs(c, id)->status, 0);

	/* A reset in the middle of an upload never reaches on_request. */
	nghttp2_nv nva[] = {NVS(":method", "POST"), NVS(":scheme", "http"), NVS(":authority", "x"),
	                    NVS(":path", "/up")};
	int32_t up = nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE, -1, NULL, nva, 4, NULL);
	assert_true(up > 0);
	pump(c, v);
	assert_int_equal(nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, up, NGHTTP2_CANCEL),
	                 0);
	pump(c, v);
	assert_int_equal(v->nreq, 1);
	assert_int_equal(v->nclose, 1);

	/* The connection goes on. */
	int32_t id2 = get(c, "/after");
	pump(c, v);
	assert_int_equal(v->nreq, 2);
	assert_int_equal(h2_session_respond(v->s, id2, 200, NULL, "ok", 2), 0);
	pump(c, v);
	assert_int_equal(cs(c, id2)->status, 200);
	assert_int_equal(v->last_rc, 0);

	/* A stream reset while the worker holds it, then the session freed:
	 * the storage goes with the session (ASan checks for leaks). */
	int32_t id3 = get(c, "/held");
	pump(c, v);
	assert_int_equal(nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id3, NGHTTP2_CANCEL),
	                 0);
	pump(c, v);
	assert_int_equal(v->close_ids[v->nclose - 1], id3);

	/* A worker that answers from inside on_stream_close. */
	v->respond_on_close = true;
	int32_t id4 = get(c, "/cancelled");
	pump(c, v);
	assert_int_equal(nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id4, NGHTTP2_CANCEL),
	                 0);
	pump(c, v);
	assert_int_equal(v->close_ids[v->nclose - 1], id4);
	assert_int_equal(h2_session_respond(v->s, id4, 200, NULL, "x", 1), -1);
	client_free(c);
	srv_free(v);
}

static void test_app_failure_reset(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	v->mode = RESET;
	int32_t id = get(c, "/boom");
	pump(c, v);
	assert_int_equal(v->nreq, 1);
	assert_true(cs(c, id)->closed);
	assert_int_equal(cs(c, id)->error, NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(v->nclose, 1);
	assert_int_equal(v->close_codes[0], NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(h2_session_respond(v->s, id, 200, NULL, "x", 1), -1);
	client_free(c);
	srv_free(v);
}

static void test_goaway_graceful(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	int32_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = get(c, "/inflight");
	pump(c, v);
	assert_int_equal(v->nreq, 3);
	assert_int_equal(h2_session_goaway_graceful(v->s), 0);
	assert_true(h2_session_want_write(v->s));
	/* The GOAWAY is on its way; meanwhile the client, not knowing yet,
	 * opens one more stream: it is past the last stream id, not served. */
	struct http_obuf held;
	http_obuf_init(&held);
	assert_int_equal(h2_session_flush(v->s, &held), 0);
	int32_t crossing = get(c, "/crossing");
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->ng, &p);
		if (n <= 0)
			break;
		assert_int_equal(h2_session_recv(v->s, (const char *)p, (size_t)n), 0);
	}
	assert_int_equal(v->nreq, 3);
	assert_int_equal(nghttp2_session_mem_recv(c->ng, (const uint8_t *)held.data, held.len),
	                 (ssize_t)held.len);
	http_obuf_free(&held);
	pump(c, v);
	assert_true(c->goaway);
	assert_int_equal(c->goaway_error, NGHTTP2_NO_ERROR);
	assert_int_equal(c->goaway_last, ids[2]);
	assert_true(cs(c, crossing)->closed);
	assert_int_equal(cs(c, crossing)->error, NGHTTP2_REFUSED_STREAM);
	assert_true(h2_session_want_read(v->s)); /* streams in flight */
	assert_false(h2_session_is_closed(v->s));

	/* The client opens no new stream after the GOAWAY. */
	int32_t late = get(c, "/late");
	pump(c, v);
	assert_true(cs(c, late)->closed);
	assert_int_equal(cs(c, late)->error, NGHTTP2_REFUSED_STREAM);
	assert_int_equal(v->nreq, 3);

	/* The streams in flight complete. */
	for (int i = 2; i >= 0; i--)
		assert_int_equal(h2_session_respond(v->s, ids[i], 200, NULL, "done", 4), 0);
	pump(c, v);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cs(c, ids[i])->status, 200);
		assert_int_equal(cs(c, ids[i])->body_len, 4);
	}
	assert_true(h2_session_is_closed(v->s));
	assert_false(h2_session_want_read(v->s));
	client_free(c);
	srv_free(v);
}

static void test_goaway_idle(void **state)
{
	(void)state;
	struct srv *v = srv_new(NULL);
	assert_int_equal(h2_session_goaway_graceful(v->s), 0);
	assert_true(h2_session_want_write(v->s));
	assert_int_equal(h2_session_flush(v->s, &v->out), 0);
	assert_true(v->out.len > 0);
	assert_true(h2_session_is_closed(v->s));
	srv_free(v);
}

/* Find the first GOAWAY in server output; returns its error code or -1. */
static long find_goaway(const struct http_obuf *b)
{
	size_t off = 0;
	while (off + 9 <= b->len) {
		const uint8_t *p = (const uint8_t *)b->data + off;
		size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
		if (p[3] == NGHTTP2_GOAWAY && off + 9 + len <= b->len && len >= 8)
			return (long)((uint32_t)p[13] << 24 | (uint32_t)p[14] << 16 |
			              (uint32_t)p[15] << 8 | p[16]);
		off += 9 + len;
	}
	return -1;
}

static void expect_fatal(struct srv *v, const void *bytes, size_t len, long want_code)
{
	assert_int_equal(h2_session_recv(v->s, bytes, len), -1);
	assert_false(h2_session_want_read(v->s));
	assert_true(h2_session_want_write(v->s));
	assert_int_equal(h2_session_flush(v->s, &v->out), 0);
	long code = find_goaway(&v->out);
	if (want_code >= 0)
		assert_int_equal(code, want_code);
	else
		assert_true(code >= 0);
	/* Anything more is refused, nothing crashes, and the session is done. */
	assert_int_equal(h2_session_recv(v->s, "more", 4), -1);
	assert_int_equal(h2_session_flush(v->s, &v->out), 0);
	assert_true(h2_session_is_closed(v->s));
}

static void test_malformed(void **state)
{
	(void)state;
	/* Garbage where the client's SETTINGS must be. */
	struct srv *v = srv_new(NULL);
	const char garbage[] = H2_PREFACE "this is not an HTTP/2 frame, not at all";
	expect_fatal(v, garbage, sizeof(garbage) - 1, NGHTTP2_PROTOCOL_ERROR);
	srv_free(v);

	/* Not a preface at all. */
	v = srv_new(NULL);
	const char h1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	expect_fatal(v, h1, sizeof(h1) - 1, -1);
	srv_free(v);

	/* After a good handshake: a frame header announcing more than
	 * SETTINGS_MAX_FRAME_SIZE, with a request in flight. */
	struct client *c = client_new(true);
	v = srv_new(NULL);
	get(c, "/inflight");
	pump(c, v);
	assert_int_equal(v->nreq, 1);
	static const uint8_t big[] = {0x10, 0, 0, NGHTTP2_DATA, 0, 0, 0, 0, 1, 'x', 'y'};
	expect_fatal(v, big, sizeof(big), NGHTTP2_FRAME_SIZE_ERROR);
	/* The held request's late answer is harmless too. */
	h2_session_respond(v->s, v->ids[0], 200, NULL, "x", 1);
	client_free(c);
	srv_free(v);

	/* HEADERS on stream 0. */
	c = client_new(true);
	v = srv_new(NULL);
	pump(c, v);
	static const uint8_t h0[] = {0, 0, 1, NGHTTP2_HEADERS, 5, 0, 0, 0, 0, 0x82};
	expect_fatal(v, h0, sizeof(h0), NGHTTP2_PROTOCOL_ERROR);
	client_free(c);
	srv_free(v);

	/* A SETTINGS frame of the wrong length. */
	c = client_new(true);
	v = srv_new(NULL);
	pump(c, v);
	static const uint8_t bad_settings[] = {0, 0, 5, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0, 1, 2,
	                                       3, 4, 5};
	expect_fatal(v, bad_settings, sizeof(bad_settings), NGHTTP2_FRAME_SIZE_ERROR);
	client_free(c);
	srv_free(v);
}

static void test_max_streams(void **state)
{
	(void)state;
	struct h2_limits lim = h2_limits_default();
	lim.max_streams = 2;
	struct client *c = client_new(true);
	struct srv *v = srv_new(&lim);
	/* Sent before the client has seen our SETTINGS: 3 over the limit. */
	int32_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = get(c, "/first");
	pump(c, v);
	assert_int_equal(v->nreq, 2);
	int refused = 0;
	for (int i = 0; i < 5; i++)
		if (cs(c, ids[i])->closed && cs(c, ids[i])->error == NGHTTP2_REFUSED_STREAM)
			refused++;
	assert_int_equal(refused, 3);
	for (int i = 0; i < 2; i++)
		assert_int_equal(h2_session_respond(v->s, v->ids[i], 200, NULL, "ok", 2), 0);
	pump(c, v);

	/* Now the client knows: 6 more are queued by it, 2 at a time. */
	int32_t more[6];
	for (int i = 0; i < 6; i++)
		more[i] = get(c, "/second");
	int answered = 2;
	for (int round = 0; round < 20 && answered < 8; round++) {
		pump(c, v);
		assert_true(h2_session_open_streams(v->s) <= 2);
		for (; answered < v->nreq; answered++)
			assert_int_equal(
			    h2_session_respond(v->s, v->ids[answered], 200, NULL, "ok", 2), 0);
	}
	pump(c, v);
	assert_int_equal(v->nreq, 8);
	assert_true(v->max_open <= 2);
	for (int i = 0; i < 6; i++)
		assert_int_equal(cs(c, more[i])->status, 200);
	client_free(c);
	srv_free(v);
}

static void test_limits(void **state)
{
	(void)state;
	struct h2_limits lim = h2_limits_default();
	lim.http.max_header_bytes = 300;
	lim.http.max_headers = 5;
	lim.http.max_body_bytes = 1000;
	struct client *c = client_new(true);
	struct srv *v = srv_new(&lim);
	v->mode = ECHO;

	char big[400];
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *big_hdr[] = {"x-big", big, NULL};
	int32_t a = request_ex(c, "GET", "/a", NULL, 0, big_hdr);
	const char *many[] = {"h1", "1",  "h2", "2",  "h3", "3", "h4",
	                      "4",  "h5", "5",  "h6", "6",  NULL};
	int32_t b = request_ex(c, "GET", "/b", NULL, 0, many);
	static char upload[5000];
	memset(upload, 'u', sizeof(upload));
	int32_t d = request_ex(c, "POST", "/d", upload, sizeof(upload), NULL);
	const char *declared[] = {"content-length", "5000", NULL};
	int32_t e = request_ex(c, "POST", "/e", upload, sizeof(upload), declared);
	int32_t ok = request_ex(c, "POST", "/ok", upload, 1000, NULL);
	pump(c, v);
	assert_int_equal(cs(c, a)->status, 431);
	assert_int_equal(cs(c, b)->status, 431);
	assert_int_equal(cs(c, d)->status, 413);
	assert_int_equal(cs(c, e)->status, 413);
	assert_int_equal(cs(c, ok)->status, 200);
	assert_int_equal(cs(c, ok)->body_len, 1000);
	assert_true(cs(c, d)->closed && cs(c, e)->closed);
	assert_int_equal(v->nreq, 1); /* only /ok reached the worker */
	assert_view(v->reqs[0].path, "/ok");
	assert_int_equal(v->nclose, 1);
	assert_int_equal(v->last_rc, 0);
	assert_true(h2_session_want_read(v->s));
	/* The body of an answered-early stream was read and dropped. */
	assert_int_equal(h2_session_open_streams(v->s), 0);
	/* Trailers count against the header budget: small ones pass (and are
	 * not shown to the app), big ones get a 431. */
	int32_t t1 = request_ex(c, "POST", "/t1", "body", 4, NULL);
	c->up[(c->nup - 1) % 8].trailer = "small";
	int32_t t2 = request_ex(c, "POST", "/t2", "body", 4, NULL);
	c->up[(c->nup - 1) % 8].trailer = big;
	v->mode = KEEP;
	pump(c, v);
	assert_view(v->reqs[1].path, "/t1");
	assert_view(v->reqs[1].body, "body");
	assert_null(header(&v->reqs[1], "x-trailer"));
	assert_int_equal(h2_session_respond(v->s, t1, 200, NULL, "body", 4), 0);
	pump(c, v);
	assert_int_equal(cs(c, t1)->status, 200);
	assert_memory_equal(cs(c, t1)->body, "body", 4);
	assert_int_equal(cs(c, t2)->status, 431);
	assert_int_equal(v->nreq, 2);
	client_free(c);
	srv_free(v);
}

static void b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = a[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

static void test_upgrade(void **state)
{
	(void)state;
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
	                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535}};
	uint8_t payload[64];
	ssize_t plen = nghttp2_pack_settings_payload(payload, sizeof(payload), iv, 2);
	assert_true(plen == 12);
	char settings[64];
	b64url(payload, (size_t)plen, settings);

	struct app_header hdrs[] = {
	    {APP_STR_LIT("Host"), APP_STR_LIT("localhost")},
	    {APP_STR_LIT("Connection"), APP_STR_LIT("Upgrade, HTTP2-Settings")},
	    {APP_STR_LIT("Upgrade"), APP_STR_LIT("h2c")},
	    {APP_STR_LIT("HTTP2-Settings"), {settings, strlen(settings)}},
	    {APP_STR_LIT("X-Kept"), APP_STR_LIT("1")},
	};
	struct app_request req = {
	    .method = APP_STR_LIT("POST"),
	    .path = APP_STR_LIT("/up"),
	    .query = APP_STR_LIT("a=b"),
	    .headers = hdrs,
	    .nheaders = 5,
	    .body = APP_STR_LIT("payload"),
	    .http_major = 1,
	    .http_minor = 1,
	};
	struct app_str sv;
	assert_true(h2_upgrade_request(&req, &sv));
	assert_view(sv, settings);

	struct srv *v = srv_new(NULL);
	assert_int_equal(h2_session_upgrade(v->s, sv, &req), 0);
	assert_int_equal(v->nreq, 1);
	assert_int_equal(v->ids[0], 1);
	const struct app_request *r = &v->reqs[0];
	assert_view(r->method, "POST");
	assert_view(r->path, "/up");
	assert_view(r->query, "a=b");
	assert_view(r->body, "payload");
	assert_view(*header(r, "host"), "localhost");
	assert_view(*header(r, "x-kept"), "1");
	assert_null(header(r, "upgrade"));
	assert_null(header(r, "http2-settings"));
	assert_int_equal(h2_session_respond(v->s, 1, 200, NULL, "upgraded", 8), 0);

	/* The worker writes the 101, then the session's frames. */
	size_t l101 = sizeof(H2_UPGRADE_RESPONSE) - 1;
	struct http_obuf o;
	http_obuf_init(&o);
	o.data = malloc(l101);
	assert_non_null(o.data);
	memcpy(o.data, H2_UPGRADE_RESPONSE, l101);
	o.len = o.cap = l101;
	assert_int_equal(h2_session_flush(v->s, &o), 0);
	assert_true(o.len > l101);
	assert_memory_equal(o.data, H2_UPGRADE_RESPONSE, l101);

	struct client *c = client_new(false);
	assert_int_equal(nghttp2_session_upgrade2(c->ng, payload, (size_t)plen, 0, NULL), 0);
	ssize_t n = nghttp2_session_mem_recv(c->ng, (const uint8_t *)o.data + l101, o.len - l101);
	assert_int_equal(n, (ssize_t)(o.len - l101));
	http_obuf_free(&o);
	pump(c, v); /* client preface + SETTINGS, ACKs */
	struct cstream *s = cs(c, 1);
	assert_true(s->closed);
	assert_int_equal(s->status, 200);
	assert_int_equal(s->body_len, 8);
	assert_memory_equal(s->body, "upgraded", 8);
	assert_int_equal(v->last_rc, 0);

	/* And the connection carries further streams. */
	v->mode = ECHO;
	int32_t id = get(c, "/next");
	pump(c, v);
	assert_int_equal(id, 3);
	assert_int_equal(cs(c, id)->status, 200);
	assert_memory_equal(cs(c, id)->body, "/next", 5);
	client_free(c);
	srv_free(v);

	/* Refusals: nothing to upgrade to, or settings that do not decode. */
	struct app_request plain = req;
	plain.nheaders = 1;
	assert_false(h2_upgrade_request(&plain, &sv));
	struct app_header ws[] = {{APP_STR_LIT("Upgrade"), APP_STR_LIT("websocket")},
	                          {APP_STR_LIT("HTTP2-Settings"), APP_STR_LIT("")}};
	plain.headers = ws;
	plain.nheaders = 2;
	assert_false(h2_upgrade_request(&plain, &sv));
	struct app_header list[] = {{APP_STR_LIT("upgrade"), APP_STR_LIT("foo, H2C")},
	                            {APP_STR_LIT("http2-settings"), APP_STR_LIT("")}};
	plain.headers = list;
	assert_true(h2_upgrade_request(&plain, &sv));
	plain.http_minor = 0;
	assert_false(h2_upgrade_request(&plain, &sv));

	v = srv_new(NULL);
	assert_int_equal(h2_session_upgrade(v->s, APP_STR_LIT("!!not base64!!"), &req), -1);
	assert_int_equal(h2_session_upgrade(v->s, APP_STR_LIT("AAEAAA"), &req), -1); /* 4 bytes */
	assert_int_equal(v->nreq, 0);
	srv_free(v);
	/* An empty HTTP2-Settings is a valid (empty) SETTINGS payload. */
	v = srv_new(NULL);
	assert_int_equal(h2_session_upgrade(v->s, APP_STR_LIT(""), &req), 0);
	assert_int_equal(v->nreq, 1);
	srv_free(v);
}

static void test_preface(void **state)
{
	(void)state;
	assert_int_equal(h2_is_preface("", 0), H2_PREFACE_PARTIAL);
	assert_int_equal(h2_is_preface("P", 1), H2_PREFACE_PARTIAL);
	assert_int_equal(h2_is_preface("PRI * HT", 8), H2_PREFACE_PARTIAL);
	assert_int_equal(h2_is_preface(H2_PREFACE, 23), H2_PREFACE_PARTIAL);
	assert_int_equal(h2_is_preface(H2_PREFACE, 24), H2_PREFACE_YES);
	assert_int_equal(h2_is_preface(H2_PREFACE "\0\0\0\4", 28), H2_PREFACE_YES);
	assert_int_equal(h2_is_preface(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN),
	                 H2_PREFACE_YES);
	assert_int_equal(h2_is_preface("GET / HTTP/1.1\r\n", 16), H2_PREFACE_NO);
	assert_int_equal(h2_is_preface("G", 1), H2_PREFACE_NO);
	assert_int_equal(h2_is_preface("PRX", 3), H2_PREFACE_NO);
	assert_int_equal(h2_is_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r!", 24), H2_PREFACE_NO);
	assert_int_equal(h2_is_preface("PRI * HTTP/1.1\r\n", 16), H2_PREFACE_NO);
}

/* Streams are recycled: many requests in sequence on one session keep the
 * pool bounded and nothing leaks (ASan). */
static void test_many_sequential(void **state)
{
	(void)state;
	struct client *c = client_new(true);
	struct srv *v = srv_new(NULL);
	v->mode = ECHO;
	for (int i = 0; i < 300; i++) {
		int32_t id = request_ex(c, "POST", "/seq", "abc", 3, NULL);
		pump(c, v);
		assert_int_equal(cs(c, id)->status, 200);
		if (v->nreq == 512)
			v->nreq = 0;
		v->nclose = 0;
	}
	client_free(c);
	srv_free(v);
}

/* Mutated client byte streams (fixed seed): whatever arrives, the codec
 * answers or fails cleanly, and frees everything (ASan, UBSan). */
static void test_mutations(void **state)
{
	(void)state;
	/* A real client's bytes: preface, SETTINGS, a GET, a POST with a body. */
	struct client *c = client_new(true);
	const char *extra[] = {"x-a", "1", "cookie", "k=v", NULL};
	request_ex(c, "GET", "/m?q=1", NULL, 0, extra);
	request_ex(c, "POST", "/p", "0123456789abcdef", 16, NULL);
	uint8_t good[4096];
	size_t glen = 0;
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->ng, &p);
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true(glen + (size_t)n <= sizeof(good));
		memcpy(good + glen, p, (size_t)n);
		glen += (size_t)n;
	}
	client_free(c);

	uint32_t seed = 12345;
	uint8_t buf[4096];
	int failed = 0, served = 0;
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(buf, good, glen);
		int flips = 1 + iter % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = H2_PREFACE_LEN + (seed >> 8) % (glen - H2_PREFACE_LEN);
			seed = seed * 1103515245u + 12345u;
			buf[at] = (uint8_t)(seed >> 16);
		}
		struct srv *v = srv_new(NULL);
		size_t cut = 1 + iter % 97; /* and cut into pieces */
		int rc = 0;
		for (size_t off = 0; off < glen && rc == 0; off += cut) {
			size_t k = glen - off < cut ? glen - off : cut;
			rc = h2_session_recv(v->s, (const char *)buf + off, k);
		}
		for (int i = 0; i < v->nreq; i++)
			h2_session_respond(v->s, v->ids[i], 200, NULL, "ok", 2);
		assert_int_equal(h2_session_flush(v->s, &v->out), 0);
		failed += rc != 0;
		served += v->nreq;
		srv_free(v);
	}
	/* Both outcomes happen: the mutations are neither all fatal nor all harmless. */
	assert_true(failed > 0);
	assert_true(served > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_head_and_no_content),
	    cmocka_unit_test(test_post_echo),
	    cmocka_unit_test(test_100_streams_out_of_order),
	    cmocka_unit_test(test_client_reset),
	    cmocka_unit_test(test_app_failure_reset),
	    cmocka_unit_test(test_goaway_graceful),
	    cmocka_unit_test(test_goaway_idle),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_max_streams),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_upgrade),
	    cmocka_unit_test(test_preface),
	    cmocka_unit_test(test_many_sequential),
	    cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests_name("h2", tests, NULL, NULL);
}
