/* app.h — the ONE interface both workers host.
 *
 * An app is a name and a handler. The worker parses a request, builds a
 * struct app_request (views into its own buffers) and calls the handler with a
 * per-request context. The app finishes the request with app_respond(), either
 * before the handler returns or later, from a callback of one of the explicit
 * async calls.
 *
 * Two ways to wait, one per style of the 2012 experiment:
 *
 *   blocking style (gunicorn -k gevent, monkey-patched code):
 *       app_fetch(), app_sleep_ms() return when the result is there.
 *       On the coroutine worker they park the request's coroutine and the hub
 *       serves other connections meanwhile. On the async worker they REALLY
 *       block the whole worker process (a synchronous libcurl transfer, a real
 *       nanosleep): that is what a blocking call does inside an explicit-async
 *       server, and it is kept on purpose so the pitfall can be measured.
 *
 *   explicit style (uWSGI async + grequests / gevent.spawn):
 *       app_fetch_async(), app_sleep_async() return at once; the callback runs
 *       later on the worker's event loop (the hub, on the coroutine worker) and
 *       the app calls app_respond() from it.
 *
 * Rules that hold on both workers:
 *   - Every view (struct app_str) in the request stays valid until the request
 *     is finished (app_respond() was called and the handler and every pending
 *     callback have returned). Views are NOT NUL-terminated.
 *   - app_respond() copies the body; the caller keeps ownership of its buffer.
 *     It must be called exactly once per request. A second call is ignored
 *     (and logged by debug builds).
 *   - The body of a struct app_fetch_result is owned by the request context:
 *     it stays valid until the request is finished and is then freed by the
 *     worker. Do not free it.
 *   - app_alloc() memory lives exactly as long as the request (cleanup
 *     follows the request; an early return cannot leak).
 *   - From a callback the app may call anything in this header, including more
 *     async calls (chains) and app_respond().
 *   - Upstream failure never aborts the request: the fetch returns/reports an
 *     error value, and app_fetch_status() says what to answer (502 or 504).
 *   - If a handler returns without responding and with no async call pending,
 *     the worker answers 500 so that no client ever hangs.
 */
#ifndef COROBENCH_APP_H
#define COROBENCH_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A view: bytes owned by someone else, length known, no NUL promised. */
struct app_str {
	const char *base;
	size_t len;
};

#define APP_STR_LIT(s) ((struct app_str){ (s), sizeof(s) - 1 })

struct app_header {
	struct app_str name; /* as sent by the client (case preserved) */
	struct app_str value;
};

struct app_request {
	struct app_str method; /* "GET", "POST", ... */
	struct app_str path;   /* "/x/y", no query */
	struct app_str query;  /* after '?', without it; len 0 when absent */
	const struct app_header *headers;
	size_t nheaders;
	struct app_str body; /* de-chunked request body; len 0 when none */
	int http_major, http_minor;
};

/* The HEAD rule, for every worker and codec: a HEAD request's answer is
 * the head of the GET answer, without the body. Methods are case-sensitive
 * (RFC 9110 9.1). */
static inline bool app_method_is_head(struct app_str method)
{
	return method.len == 4 && memcmp(method.base, "HEAD", 4) == 0;
}

struct app_ctx; /* one per request, owned by the worker */

/* What happened to an upstream fetch. */
enum app_fetch_error {
	APP_FETCH_OK = 0,
	APP_FETCH_ECONNECT,  /* refused, unreachable, DNS: answer 502 */
	APP_FETCH_ERESET,    /* connection reset / closed mid-response: 502 */
	APP_FETCH_EPROTO,    /* malformed answer, wrong length: 502 */
	APP_FETCH_ETIMEOUT,  /* the upstream did not answer in time: 504 */
	APP_FETCH_ESTATUS,   /* the upstream answered with a 5xx status: 502 */
	APP_FETCH_ENOMEM,    /* resources ran out on our side: 503 */
	APP_FETCH_EINTERNAL, /* anything else: 500 */
};

struct app_fetch_result {
	enum app_fetch_error error;
	int status;        /* the upstream's HTTP status, 0 when none arrived */
	const char *body;  /* owned by the request context, see above */
	size_t len;
	double elapsed_ms; /* time from start to completion */
};

/* The HTTP status an app should answer with for a failed fetch
 * (502 / 504 / 503 / 500), or 200 when res->error is APP_FETCH_OK. */
int app_fetch_status(const struct app_fetch_result *res);
/* The same for an error value (e.g. the return of app_fetch_async). */
int app_error_status(enum app_fetch_error err);
/* A short human-readable name for res->error ("upstream timed out"). */
const char *app_fetch_strerror(enum app_fetch_error err);

typedef void (*app_fetch_cb)(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg);
typedef void (*app_timer_cb)(struct app_ctx *ctx, void *arg);

/* ---- blocking style ---- */

/* Fetch url (GET) and fill *out. Returns 0 on success, or the non-zero
 * enum app_fetch_error (also stored in out->error). On the async worker this
 * blocks the whole worker process. */
int app_fetch(struct app_ctx *ctx, const char *url, struct app_fetch_result *out);

/* Wait ms milliseconds. On the async worker this blocks the worker. */
void app_sleep_ms(struct app_ctx *ctx, unsigned ms);

/* ---- explicit style ---- */

/* Start a GET of url; cb runs exactly once, later, on the worker's loop,
 * with the result (never from inside this call). Returns 0 when started;
 * non-zero (an enum app_fetch_error) when it could not start, and then cb
 * is not called. */
int app_fetch_async(struct app_ctx *ctx, const char *url, app_fetch_cb cb, void *arg);

/* Run cb after ms milliseconds on the worker's loop (never from inside
 * this call, even for ms == 0). */
void app_sleep_async(struct app_ctx *ctx, unsigned ms, app_timer_cb cb, void *arg);

/* ---- finishing and helpers ---- */

/* Answer the request. content_type may be NULL (text/plain). body is copied. */
void app_respond(struct app_ctx *ctx, int status, const char *content_type, const void *body,
		 size_t len);

/* Memory that lives as long as the request; NULL when out of memory. */
void *app_alloc(struct app_ctx *ctx, size_t size);

/* The upstream URL the server was started with (--upstream); never NULL. */
const char *app_upstream(const struct app_ctx *ctx);

/* Value of query parameter name as a view; 0 when present, -1 when absent. */
int app_query_param(const struct app_request *req, const char *name, struct app_str *out);
/* Query parameter name parsed as an unsigned decimal; def when absent or bad. */
unsigned long app_query_ulong(const struct app_request *req, const char *name, unsigned long def);

/* ---- the registry ---- */

enum app_flags {
	APP_USES_BLOCKING = 1u << 0, /* calls app_fetch / app_sleep_ms */
	APP_USES_UPSTREAM = 1u << 1, /* needs --upstream */
};

struct app {
	const char *name;
	const char *summary; /* one line for --help */
	unsigned flags;      /* enum app_flags */
	void (*handle)(struct app_ctx *ctx, const struct app_request *req);
};

/* The app called name, or NULL. */
const struct app *app_find(const char *name);
/* All apps, NULL-terminated, in a stable order. */
const struct app *const *app_all(void);

#endif
