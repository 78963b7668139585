/* fetch.h — the upstream fetcher: libcurl's multi interface driven by a
 * libevent loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), with
 * connections to the upstream kept alive and reused, a per-transfer timeout,
 * and every failure turned into an enum app_fetch_error (hence 502/504).
 *
 * One fetcher per event loop (per worker process). Not thread-safe.
 */
#ifndef COROBENCH_FETCH_H
#define COROBENCH_FETCH_H

#include "app.h"

#include <stddef.h>

struct event_base;
struct fetcher;

struct fetch_opts {
	unsigned timeout_ms;          /* whole transfer; default 10000 */
	unsigned connect_timeout_ms;  /* default 2000 */
	unsigned max_host_connections;/* 0: unlimited (default) */
	size_t max_body_bytes;        /* larger answers fail as EPROTO; default 1 MiB */
};

struct fetch_opts fetch_opts_default(void);

/* Completion: res describes the outcome (error APP_FETCH_OK with the
 * upstream's final status, whatever it is, 200..599; a 101, a framing
 * error or a body over max_body_bytes is APP_FETCH_EPROTO); body is malloc'd (NULL when empty
 * or failed) and now belongs to the callback, which must free it or hand
 * it on (app_ctx_deliver_fetch takes it). res->body == body. The callback
 * may start new fetches and may free nothing of the fetcher. */
typedef void (*fetch_done_fn)(void *arg, struct app_fetch_result *res, void *body);

/* NULL on failure (errno set). */
struct fetcher *fetcher_new(struct event_base *base, const struct fetch_opts *opts);
/* Cancels every transfer still running (their callbacks are NOT called). */
void fetcher_free(struct fetcher *f);

struct fetch_req; /* one transfer in flight */

/* Start a GET. Returns 0 and (if out_req) the handle, or an enum
 * app_fetch_error. done runs exactly once, from the event loop, never from
 * inside this call — unless fetch_cancel() is called first. */
int fetcher_get(struct fetcher *f, const char *url, fetch_done_fn done, void *arg,
		struct fetch_req **out_req);

/* Abort a transfer whose requester went away; done will not run. */
void fetch_cancel(struct fetch_req *req);

/* Transfers in flight (for stats and leak checks). */
unsigned fetcher_inflight(const struct fetcher *f);

/* A synchronous GET with its own reused easy handle: blocks the caller
 * until done. This is what the async worker's blocking-style calls use, on
 * purpose. body is malloc'd (NULL when empty), as above. */
struct fetch_sync;
struct fetch_sync *fetch_sync_new(const struct fetch_opts *opts);
void fetch_sync_free(struct fetch_sync *s);
void fetch_sync_get(struct fetch_sync *s, const char *url, struct app_fetch_result *res,
		    void **body);

/* curl_global_init once per process, before any fork/thread. 0 on success. */
int fetch_global_init(void);

#endif
