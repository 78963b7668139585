/* async_worker.h — the explicit-async-call worker (uWSGI's --async mode with
 * explicit calls), on the worker core (servers/core/core.h): every
 * connection is driven by libevent callbacks, read -> parse -> app -> write
 * -> keep-alive or close. There are no coroutines here: a request that
 * waits must have made an explicit call (app_fetch_async, app_sleep_async)
 * whose callback finishes it.
 *
 * THE BLOCKING-CALL PITFALL, KEPT ON PURPOSE. The blocking-style calls of
 * app.h (app_fetch, app_sleep_ms) really block this worker process here: a
 * synchronous libcurl transfer (fetch_sync_get) and a real nanosleep. While
 * one request sleeps in them, no other connection of the worker is served.
 * That is what a blocking call does inside an explicit-async server, and it
 * is why the 2012 post's earlier uWSGI numbers collapsed; this worker keeps
 * it so it can be measured (see servers/async/README.md).
 *
 * One request at a time per connection: pipelined requests are parsed and
 * answered strictly in order, the next one starting only when the previous
 * one has finished. Answers produced in one callback are gathered into one
 * buffer and written with one send() per connection.
 *
 * --async N caps the requests in flight per worker; a connection whose next
 * request would exceed it stops reading and waits in a FIFO for a free slot.
 *
 * Cleartext HTTP/2 is served on the same port: prior knowledge (the client
 * preface) and the HTTP/1.1 "Upgrade: h2c" path. Each stream is an explicit
 * state machine of its own, with the same explicit calls and callbacks as an
 * HTTP/1.1 request; streams count against --async N; a stream reset by the
 * client cancels its fetches and timers; a graceful stop says GOAWAY and
 * lets the streams already begun finish; --h2-max-streams sets
 * SETTINGS_MAX_CONCURRENT_STREAMS.
 */
#ifndef COROBENCH_ASYNC_WORKER_H
#define COROBENCH_ASYNC_WORKER_H

#include "core.h"

struct async_config {
	unsigned max_inflight; /* --async N */
};

/* The worker core's class of this worker. core_main() runs it in every
 * worker process, and core_new() on a loop of one's own (tests), with a
 * const struct async_config *. */
extern const struct core_class async_worker_class;

#endif
