/* sleep — waits ?ms= milliseconds (default 10, at most 60000) in the blocking
 * style: parks a coroutine on the coro worker, blocks the async worker. */
#include "app.h"

#include <stdio.h>

static void sleep_handle(struct app_ctx *ctx, const struct app_request *req)
{
	unsigned long ms = app_query_ulong(req, "ms", 10);
	if (ms > 60000)
		ms = 60000;
	app_sleep_ms(ctx, (unsigned)ms);
	char body[48];
	int n = snprintf(body, sizeof(body), "slept %lu ms\n", ms);
	app_respond(ctx, 200, "text/plain", body, (size_t)n);
}

const struct app app_sleep = {
	.name = "sleep",
	.summary = "?ms= milliseconds of blocking-style sleep (default 10)",
	.flags = APP_USES_BLOCKING | APP_USES_SLEEP,
	.handle = sleep_handle,
};
