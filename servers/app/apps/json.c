/* json — {"message":"Hello, World!"} serialised with jansson on every request,
 * as the TechEmpower JSON test does: a little real CPU work per request. */
#include "app.h"

#include <jansson.h>
#include <stdlib.h>

static void json_handle(struct app_ctx *ctx, const struct app_request *req)
{
	static const char oom[] = "out of memory\n";
	(void)req;
	json_t *obj = json_pack("{s:s}", "message", "Hello, World!");
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!text) {
		app_respond(ctx, 500, NULL, oom, sizeof(oom) - 1);
		return;
	}
	size_t len = 0;
	while (text[len])
		len++;
	app_respond(ctx, 200, "application/json", text, len);
	free(text);
}

const struct app app_json = {
	.name = "json",
	.summary = "{\"message\":\"Hello, World!\"} serialised with jansson per request",
	.handle = json_handle,
};
