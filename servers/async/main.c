/* main.c — async-server: the explicit-async-call worker's entry point. The
 * shared flags plus --async N; the worker core (core_main) does the rest:
 * the app, the warning for apps that block, the pre-fork master. */
#include "async_worker.h"

int main(int argc, char **argv)
{
	static struct async_config cfg = {.max_inflight = 1000};
	const struct opt_def extra[] = {
	    {"async", OPT_UINT, &cfg.max_inflight, "N",
	     "requests in flight per worker (uWSGI's async cores); beyond it the worker "
	     "stops reading new requests until one finishes",
	     1, 1000000},
	    {0},
	};
	return core_main(argc, argv, &async_worker_class, extra, &cfg);
}
