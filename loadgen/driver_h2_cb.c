/* driver_h2_cb.c: the HTTP/2 driver's nghttp2 session callbacks, split
 * out of driver_h2.c (house rule on file length; no logic changed). They
 * fill a stream's slot as a response's frames arrive and count the stream
 * when it closes (finish_stream() in driver_h2.c). */
#include "driver_h2_int.h"

#include <string.h>

struct h2s *stream_of(struct h2c *c, int32_t id)
{
	if (id != c->cid) {
		c->cst = nghttp2_session_get_stream_user_data(c->sess, id);
		c->cid = id;
	}
	return c->cst;
}

/* nghttp2 callbacks: user_data is the connection */

int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)s;
	struct h2c *c = ud;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		struct h2s *st = stream_of(c, f->hd.stream_id);
		if (st && !st->beginread)
			st->beginread = c->ht->now;
	}
	return 0;
}

int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
              const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	(void)flags;
	(void)s;
	struct h2c *c = ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct h2s *st = stream_of(c, f->hd.stream_id);
	if (!st)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3) {
		st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
	} else if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
		long v = 0;
		for (size_t i = 0; i < valuelen && value[i] >= '0' && value[i] <= '9'; i++)
			v = v * 10 + (value[i] - '0');
		st->cl = v;
	} else if (namelen == 6 && memcmp(name, "server", 6) == 0) {
		struct lg_result *r = &c->ht->t->r;
		if (!r->servername[0]) {
			size_t n = valuelen < sizeof r->servername - 1 ? valuelen
			                                               : sizeof r->servername - 1;
			memcpy(r->servername, value, n);
			r->servername[n] = 0;
		}
	}
	return 0;
}

int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *ud)
{
	(void)flags;
	(void)data;
	(void)s;
	struct h2c *c = ud;
	struct h2s *st = stream_of(c, id);
	if (st)
		st->bread += len;
	c->ht->t->r.totalbread += (int64_t)len;
	return 0;
}

int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)s;
	struct h2c *c = ud;
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		struct h2s *st = stream_of(c, f->hd.stream_id);
		if (st)
			st->ended = 1;
	}
	return 0;
}

int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	(void)s;
	struct h2c *c = ud;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		struct h2s *st = stream_of(c, f->hd.stream_id);
		if (st)
			st->endwrite = c->ht->now;
	}
	return 0;
}

int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
	(void)s;
	struct h2c *c = ud;
	struct h2s *st = stream_of(c, id);
	if (st && st->inuse)
		finish_stream(c->ht, c, st, error_code == NGHTTP2_NO_ERROR, 0);
	return 0;
}

/* -p/-u: the body of every request, from the one buffer */
ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *data_flags,
                  nghttp2_data_source *src, void *ud)
{
	(void)src;
	(void)s;
	struct h2c *c = ud;
	const struct lg_conf *cf = c->ht->cf;
	struct h2s *st = stream_of(c, id);
	size_t off = st ? st->bodyoff : cf->bodylen;
	size_t n = cf->bodylen - off < length ? cf->bodylen - off : length;
	memcpy(buf, cf->body + off, n);
	if (st)
		st->bodyoff += n;
	if (off + n >= cf->bodylen)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}
