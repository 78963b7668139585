/* fake_worker.h — a test double of a worker for the apps (servers/app).
 *
 * It implements struct app_ctx_ops the way a worker would, minus the
 * network: app_fetch answers synchronously from a script, app_fetch_async
 * and app_sleep_async queue their callbacks, and the test delivers them after
 * the handler returned (app_ctx_deliver_*), in any order it likes. respond
 * records what the app answered and counts the calls.
 */
#ifndef COROBENCH_TESTS_FAKE_WORKER_H
#define COROBENCH_TESTS_FAKE_WORKER_H

#include "app_host.h"

#include <stdbool.h>
#include <stddef.h>

#define FAKE_MAX_PENDING 128
#define FAKE_MAX_SCRIPT 128

/* What one fetch (blocking or async) will return. */
struct fake_outcome {
	enum app_fetch_error error;
	int status;       /* upstream status; 0 means 200 when error is OK */
	const char *body; /* copied into a malloc'd block the ctx takes over */
};

struct fake_pending {
	bool is_timer;
	app_fetch_cb fetch_cb;
	app_timer_cb timer_cb;
	void *arg;
	unsigned ms;
	struct fake_outcome outcome;
	char url[256];
};

struct fake_req {
	struct app_ctx ctx; /* first: the ops get a struct app_ctx * */

	/* the answer */
	int responds; /* respond() calls: must end up exactly 1 */
	int status;
	char content_type[64];
	char *body;
	size_t len;

	/* the script for fetches, consumed in order; past its end: OK "up" */
	struct fake_outcome script[FAKE_MAX_SCRIPT];
	size_t nscript, next_script;
	int fail_start_at; /* fetch_async number (0-based) that cannot start, -1 none */
	enum app_fetch_error fail_start_err;

	/* what the app asked for */
	int fetches, async_fetches, timers;
	unsigned slept_ms, last_timer_ms;
	char last_url[256];

	/* queued callbacks, delivered by the test */
	struct fake_pending pending[FAKE_MAX_PENDING];
	size_t npending;
};

void fake_init(struct fake_req *f, const char *upstream);
/* Queue an outcome for the next fetch. */
void fake_script(struct fake_req *f, enum app_fetch_error err, int status, const char *body);
/* Run the app's handler through app_ctx_run. */
void fake_run(struct fake_req *f, const struct app *app, const struct app_request *req);
/* Deliver queued callback i (removing it); callbacks may queue more. */
void fake_deliver(struct fake_req *f, size_t i);
/* Deliver everything, oldest first, until nothing is queued. */
void fake_deliver_all(struct fake_req *f);
/* Check the request is finished with one answer, then release it. */
void fake_finish(struct fake_req *f);

/* A request with the given method, path, query and body (views of the
 * caller's strings). */
struct app_request fake_request(const char *method, const char *path, const char *query,
                                const char *body, size_t body_len);

#endif
