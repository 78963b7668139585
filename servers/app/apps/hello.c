/* hello — the fixed "Hello, World!" answer: the per-request floor of a server. */
#include "app.h"

static void hello_handle(struct app_ctx *ctx, const struct app_request *req)
{
	static const char body[] = "Hello, World!";
	(void)req;
	app_respond(ctx, 200, "text/plain", body, sizeof(body) - 1);
}

const struct app app_hello = {
	.name = "hello",
	.summary = "fixed \"Hello, World!\"",
	.handle = hello_handle,
};
