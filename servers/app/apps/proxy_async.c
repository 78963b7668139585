/* proxy-async — the 2012 post's grequests app: the same fetch as proxy, made
 * explicitly; the callback answers. */
#include "app.h"

#include <string.h>

void proxy_answer(struct app_ctx *ctx, const struct app_fetch_result *res);

static void proxy_async_done(struct app_ctx *ctx, const struct app_fetch_result *res, void *arg)
{
	(void)arg;
	proxy_answer(ctx, res);
}

static void proxy_async_handle(struct app_ctx *ctx, const struct app_request *req)
{
	(void)req;
	int err = app_fetch_async(ctx, app_upstream(ctx), proxy_async_done, NULL);
	if (err != 0) {
		const char *why = app_fetch_strerror((enum app_fetch_error)err);
		app_respond(ctx, app_error_status((enum app_fetch_error)err), NULL, why,
			    strlen(why));
	}
}

const struct app app_proxy_async = {
	.name = "proxy-async",
	.summary = "explicit fetch of --upstream, answered from the callback (uWSGI + grequests)",
	.flags = APP_USES_UPSTREAM,
	.handle = proxy_async_handle,
};
