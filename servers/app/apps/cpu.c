/* cpu — ?us= microseconds (default 100, at most 1000000) of busy work on the
 * worker's CPU: where neither way of waiting helps. */
#include "app.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cpu_handle(struct app_ctx *ctx, const struct app_request *req)
{
	unsigned long us = app_query_ulong(req, "us", 100);
	if (us > 1000000)
		us = 1000000;
	uint64_t until = now_ns() + (uint64_t)us * 1000u;
	/* A data dependency the compiler cannot drop: xorshift rounds. */
	uint64_t x = 0x9e3779b97f4a7c15u, rounds = 0;
	do {
		for (int i = 0; i < 64; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		rounds++;
	} while (now_ns() < until);
	char body[64];
	int n = snprintf(body, sizeof(body), "busy %lu us %llx\n", us,
			 (unsigned long long)((x ^ rounds) & 0xff));
	app_respond(ctx, 200, "text/plain", body, (size_t)n);
}

const struct app app_cpu = {
	.name = "cpu",
	.summary = "?us= microseconds of busy work (default 100)",
	.handle = cpu_handle,
};
