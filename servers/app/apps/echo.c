/* echo — the request body back: exercises request-body parsing (chunked too). */
#include "app.h"

static void echo_handle(struct app_ctx *ctx, const struct app_request *req)
{
	app_respond(ctx, 200, "application/octet-stream", req->body.base, req->body.len);
}

const struct app app_echo = {
	.name = "echo",
	.summary = "the request body back",
	.handle = echo_handle,
};
