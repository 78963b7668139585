/* coro_server.h — what the implicit-coroutine worker's two files share
 * (coro_server.c: the worker, HTTP/1.1 and the waits; coro_h2.c: HTTP/2):
 * the worker, a connection, an HTTP/2 connection, and the calls between
 * them. Internal to servers/coro. */
#ifndef COROBENCH_CORO_SERVER_H
#define COROBENCH_CORO_SERVER_H

#include "coro.h"
#include "hub.h"

#include "core.h"

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROG "coro-server"
/* Read buffer, on the coroutine's stack: pages it never fills cost no RSS. */
#define CONN_RBUF (16 * 1024)
/* Finished stacks kept for reuse: enough for bursts of new connections;
 * past it a finished stack is unmapped, so a burst of 10,000 connections
 * does not keep its dirty stack pages resident for good. */
#define STACKS_KEPT 1024

struct worker {
	struct core core; /* first */
	struct hub *hub;
	unsigned worker_connections;
	unsigned max_coros; /* hard cap on coroutines, streams included */
	bool at_coro_cap;   /* logged once per episode */
	/* The answers of one cleartext HTTP/1.1 connection at a time are
	 * gathered here instead of in its own buffer (conn_share): one warm
	 * buffer for the worker, not a cold one per connection for every
	 * answer's bytes (at c = 1000, ~19 more lines missed in a 1 MiB cache
	 * per request than async-server, which does the same). */
	struct http_obuf out;
	struct core_conn *out_by;  /* whose answers go to out now; NULL: nobody's */
	struct core_conn *feeding; /* cleartext HTTP/1.1, in core_h1_feed now */
};

struct conn {
	struct core_conn cc; /* first */
	struct hub_fd hfd;
	struct hub_task *task;
	bool idle; /* waiting for a next request, nothing half-read, no answer unsent */
};

/* An HTTP/2 connection. On the heap (core_h2): a stream coroutine may still
 * be unwinding when the connection's coroutine has ended; the last of them
 * frees it (core_h2_unref). */
struct h2conn {
	struct core_h2 h;     /* first */
	struct event kick_ev; /* a stream answered: wake the connection to flush */
	bool kicked;          /* an answer waits to be flushed */
	bool busy;            /* the connection's coroutine runs; it flushes before it parks */
};

static inline struct worker *worker_of(struct core *w)
{
	return (struct worker *)w;
}

static inline struct conn *conn_of(struct core_conn *cc)
{
	return (struct conn *)cc;
}

/* ---- coro_server.c, for coro_h2.c ---- */

/* Below the hard cap on coroutines? Says so once per episode when not. */
bool coro_cap_ok(struct worker *w);
/* Park a stream's request until it has answered and nothing it started is
 * pending; false when it was cancelled. */
bool coro_stream_wait(struct core_req *r);
/* Write what the connection has gathered: 0, or -1 (the connection is dead). */
int coro_conn_flush(struct core_conn *cc);
/* The lingering close: shut the write side, read and drop for a while. */
void coro_conn_linger(struct conn *c, char *buf);
/* TLS: plaintext into buf (as hub_read; woken: as hub_read_or_woken). */
ssize_t coro_conn_read_tls(struct conn *c, char *buf, size_t cap, unsigned ms, bool woken);

/* ---- coro_h2.c: the core_class hooks for HTTP/2 ---- */

int coro_h2_open(struct core_h2 *h);
void coro_h2_free(struct core_h2 *h);
void coro_h2_request(struct core_h2 *h, int32_t id, const struct app_request *req);
void coro_stream_cancel(struct core_stream *st);
/* A stream's answer is queued in the session (or the worker stops): make
 * the connection's coroutine flush it, through the loop. */
void coro_h2conn_kick(struct h2conn *hc);
/* Serve the connection as HTTP/2 until it closes. */
void coro_conn_h2(struct conn *c, char *rbuf);

#endif
