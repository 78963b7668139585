/* driver_h2_int.h: what driver_h2.c and driver_h2_cb.c share -- the
 * per-stream, per-connection and per-thread state of the HTTP/2 driver, and
 * the helpers and nghttp2 callbacks one defines and the other uses. Internal
 * to loadgen's HTTP/2 driver. */
#ifndef LOADGEN_DRIVER_H2_INT_H
#define LOADGEN_DRIVER_H2_INT_H

#include "engine_int.h"

#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "pool.h"

enum { H2_UNCONN, H2_CONNECTING, H2_OPEN, H2_BUSY /* a Unix listener was full: retry */ };

struct h2s {
	struct h2s *next; /* free list */
	int32_t id;
	int inuse, ended, timedout, status;
	long cl;
	size_t bread, bodyoff;
	uint64_t start, connect, endwrite, beginread;
	uint64_t intended; /* --rate: when it was due (start is when it really started) */
	int busy;          /* --rate: every stream of its connection was busy then */
};

struct h2t;

struct h2c {
	struct ev_sock s; /* first: the handlers get the connection from it */
	struct h2t *ht;
	int state, dirty, fresh;
	struct ev_timer retry; /* H2_BUSY: the connect is tried again then */
	int sending;           /* out[0..outlen) is with ev_send() */
	nghttp2_session *sess;
	struct h2s *slots, *free;
	struct h2s *cst; /* the stream of the last lookup: a response's */
	int32_t cid;     /* frames and headers come one stream at a time */
	int inflight;
	uint64_t connstart;
	/* --rate (engine_int.h's schedule): one timer per connection, armed
	 * for its next request's due time. A connection is what carries a
	 * schedule, as over HTTP/1, so that both protocols offer the same
	 * arrivals at the same rate; with free streams a late answer does not
	 * hold the next request back, with none the request waits (busy) */
	struct ev_timer rate;
	uint64_t due, k;       /* request k of connection j is due at due */
	uint64_t slot_free_at; /* when a stream last became free on a full connection */
	uint32_t j;
	uint8_t *out;
	size_t outcap, outlen;
};

struct h2t {
	struct thr *t;
	const struct lg_conf *cf;
	struct h2c *conns;
	struct h2c **dirty;
	int ndirty, nconns, streams;
	int nretry; /* connections in H2_BUSY */
	long inflight;
	uint64_t now; /* of the event being handled: one clock read per read */
	struct ev_timer scan;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	nghttp2_nv *nva;
	size_t nvlen;
	nghttp2_data_provider prd;
	struct pool pool;
	nghttp2_mem mem;
};

/* driver_h2.c */
void finish_stream(struct h2t *ht, struct h2c *c, struct h2s *st, int ok_close, int recv_error);

/* driver_h2_cb.c: the nghttp2 session callbacks (user_data is the
 * connection) and the lookup of a stream's slot they share */
struct h2s *stream_of(struct h2c *c, int32_t id);
int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
              const uint8_t *value, size_t valuelen, uint8_t flags, void *ud);
int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *ud);
int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud);
int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud);
ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *data_flags,
                  nghttp2_data_source *src, void *ud);

#endif
