/* proxy — the 2012 post's gunicorn app: fetch the upstream URL in the blocking
 * style and answer with its status and body, as nginx passes them on. On a
 * failed fetch: 502/504 with the reason (app_fetch_status, README.md). */
#include "app.h"

#include <string.h>

void proxy_answer(struct app_ctx *ctx, const struct app_fetch_result *res);

void proxy_answer(struct app_ctx *ctx, const struct app_fetch_result *res)
{
	if (res->error != APP_FETCH_OK) {
		const char *why = app_fetch_strerror(res->error);
		app_respond(ctx, app_fetch_status(res), NULL, why, strlen(why));
		return;
	}
	app_respond(ctx, app_fetch_status(res), "text/plain", res->body, res->len);
}

static void proxy_handle(struct app_ctx *ctx, const struct app_request *req)
{
	struct app_fetch_result res;
	(void)req;
	app_fetch(ctx, app_upstream(ctx), &res);
	proxy_answer(ctx, &res);
}

const struct app app_proxy = {
	.name = "proxy",
	.summary = "blocking-style fetch of --upstream, its body back (gunicorn + gevent)",
	.flags = APP_USES_BLOCKING | APP_USES_UPSTREAM,
	.handle = proxy_handle,
};
