/* fanout — ?n= (default 4, 1..64) explicit fetches of --upstream in parallel;
 * answered when all are in, with their bodies concatenated in order. If any
 * failed, or answered other than 2xx (one answer cannot pass on n
 * statuses), the answer is the first failure's 502/504. */
#include "app.h"

#include <string.h>

struct fanout {
	unsigned n, left;
	enum app_fetch_error first_error;
	struct app_str parts[];
};

struct fanout_slot {
	struct fanout *f;
	unsigned i;
};

static void fanout_done(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg)
{
	struct fanout_slot *slot = arg;
	struct fanout *f = slot->f;
	enum app_fetch_error err = res->error;
	if (err == APP_FETCH_OK && (res->status < 200 || res->status > 299))
		err = APP_FETCH_ESTATUS;
	if (err != APP_FETCH_OK && f->first_error == APP_FETCH_OK)
		f->first_error = err;
	f->parts[slot->i] = (struct app_str){ res->body, res->len };
	if (--f->left > 0)
		return;
	if (f->first_error != APP_FETCH_OK) {
		const char *why = app_fetch_strerror(f->first_error);
		app_respond(ctx, app_error_status(f->first_error), NULL, why, strlen(why));
		return;
	}
	size_t total = 0;
	for (unsigned i = 0; i < f->n; i++)
		total += f->parts[i].len;
	char *out = app_alloc(ctx, total ? total : 1);
	if (!out) {
		static const char oom[] = "out of memory\n";
		app_respond(ctx, 503, NULL, oom, sizeof(oom) - 1);
		return;
	}
	size_t off = 0;
	for (unsigned i = 0; i < f->n; i++) {
		if (f->parts[i].len)
			memcpy(out + off, f->parts[i].base, f->parts[i].len);
		off += f->parts[i].len;
	}
	app_respond(ctx, 200, "text/plain", out, total);
}

static void fanout_handle(struct app_ctx *ctx, const struct app_request *req)
{
	static const char oom[] = "out of memory\n";
	unsigned long n = app_query_ulong(req, "n", 4);
	if (n < 1)
		n = 1;
	if (n > 64)
		n = 64;
	struct fanout *f = app_alloc(ctx, sizeof(*f) + n * sizeof(f->parts[0]));
	struct fanout_slot *slots = app_alloc(ctx, n * sizeof(*slots));
	if (!f || !slots) {
		app_respond(ctx, 503, NULL, oom, sizeof(oom) - 1);
		return;
	}
	f->n = (unsigned)n;
	f->left = (unsigned)n;
	f->first_error = APP_FETCH_OK;
	for (unsigned i = 0; i < n; i++) {
		slots[i] = (struct fanout_slot){ f, i };
		f->parts[i] = (struct app_str){ NULL, 0 };
		int err = app_fetch_async(ctx, app_upstream(ctx), fanout_done, &slots[i]);
		if (err != 0) {
			/* Account for the ones that never started, as failures. */
			if (f->first_error == APP_FETCH_OK)
				f->first_error = (enum app_fetch_error)err;
			f->left -= (unsigned)n - i;
			if (f->left == 0) {
				const char *why = app_fetch_strerror(f->first_error);
				app_respond(ctx, app_error_status(f->first_error), NULL, why,
					    strlen(why));
			}
			return;
		}
	}
}

const struct app app_fanout = {
	.name = "fanout",
	.summary = "?n= parallel explicit fetches of --upstream (default 4), answered when all are in",
	.flags = APP_USES_UPSTREAM,
	.handle = fanout_handle,
};
