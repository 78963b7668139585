/* fuzz_h2.c — libFuzzer target for the HTTP/2 server codec
 * (servers/http/h2.h, on nghttp2): any client bytes, fed in fuzzer-chosen
 * pieces, with answers given at once or deferred, by respond or by reset,
 * must never crash, leak, or hand out a request whose views cannot be read.
 * Input: byte 0 = piece size, byte 1 = flags (bit 0 defer answers, bit 1
 * reset every other stream, bit 2 graceful GOAWAY half-way, bit 3 no client
 * preface prepended), then the client's bytes. */
#include "h2.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MAX_PENDING 64

struct fuzz_h2 {
	struct h2_session *s;
	unsigned flags;
	int32_t pending[MAX_PENDING];
	size_t npending;
	unsigned nreq;
	bool goaway;
};

static void touch(const struct app_str *v)
{
	volatile unsigned char sink = 0;
	if (v->len && !v->base)
		abort();
	for (size_t k = 0; k < v->len; k++)
		sink ^= (unsigned char)v->base[k];
	(void)sink;
}

static void answer(struct fuzz_h2 *f, int32_t id)
{
	if ((f->flags & 2) && (f->nreq & 1))
		h2_session_reset_stream(f->s, id, 2);
	else
		h2_session_respond(f->s, id, 200, NULL, "ok", 2);
}

static void on_request(void *user, int32_t id, const struct app_request *req)
{
	struct fuzz_h2 *f = user;
	f->nreq++;
	touch(&req->method);
	touch(&req->path);
	touch(&req->query);
	touch(&req->body);
	for (size_t h = 0; h < req->nheaders; h++) {
		touch(&req->headers[h].name);
		touch(&req->headers[h].value);
	}
	/* The limits below must hold. Known bug (results/HISTORY.md, F1;
	 * fixed): h2.c added a "host" header made from :authority after
	 * counting, so nheaders could be max_headers + 1; FUZZ_H2_KNOWN_F1=1
	 * tolerates that one to keep fuzzing the rest. */
	static int slack = -1;
	if (slack < 0)
		slack = getenv("FUZZ_H2_KNOWN_F1") != NULL;
	if (req->body.len > 256 || req->nheaders > 8u + (unsigned)slack)
		abort();
	if ((f->flags & 1) && f->npending < MAX_PENDING)
		f->pending[f->npending++] = id;
	else
		answer(f, id);
}

static void on_stream_close(void *user, int32_t id, uint32_t error_code)
{
	(void)user;
	(void)id;
	(void)error_code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = data[0] ? data[0] : 1;
	struct fuzz_h2 f = {.flags = data[1]};
	data += 2;
	size -= 2;
	(void)h2_is_preface((const char *)data, size);

	struct h2_limits lim = h2_limits_default();
	lim.http.max_header_bytes = 512;
	lim.http.max_headers = 8;
	lim.http.max_body_bytes = 256;
	lim.max_streams = 4;
	struct h2_callbacks cb = {.on_request = on_request, .on_stream_close = on_stream_close};
	f.s = h2_session_new(&lim, &cb, &f);
	if (!f.s)
		return 0;
	struct http_obuf out;
	http_obuf_init(&out);

	int rc = 0;
	if (!(f.flags & 8))
		rc = h2_session_recv(f.s, PREFACE, sizeof(PREFACE) - 1);
	size_t off = 0;
	while (rc == 0 && off < size) {
		size_t piece = size - off < step ? size - off : step;
		rc = h2_session_recv(f.s, (const char *)data + off, piece);
		off += piece;
		/* deferred answers come "later": after the read that brought them */
		for (size_t i = 0; i < f.npending; i++)
			answer(&f, f.pending[i]);
		f.npending = 0;
		if ((f.flags & 4) && off >= size / 2 && !f.goaway) {
			f.goaway = true;
			h2_session_goaway_graceful(f.s);
		}
		if (h2_session_flush(f.s, &out) != 0)
			break;
		http_obuf_consume(&out, out.len);
		(void)h2_session_want_read(f.s);
		(void)h2_session_want_write(f.s);
		(void)h2_session_open_streams(f.s);
		if (h2_session_is_closed(f.s))
			break;
	}
	if (rc != 0)
		h2_session_flush(f.s, &out); /* the GOAWAY it queued */
	http_obuf_free(&out);
	h2_session_free(f.s);
	return 0;
}
