/* main.c — async-server: the explicit-async-call worker's entry point. The
 * shared flags plus --async N, the app lookup, the one-line warning for apps
 * that block, then the shared pre-fork master runs async_worker_main() in
 * every worker. */
#include "async_worker.h"

#include "corobench_config.h"
#include "fetch.h"
#include "master.h"
#include "options.h"
#include "stats.h"

#include <stdio.h>
#include <sys/resource.h>

static const char prog[] = "async-server";

/* Idle keep-alive connections cost a descriptor each: use what the hard
 * limit allows, as nginx's worker_rlimit_nofile does. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct server_opts opts;
	server_opts_default(&opts);
	unsigned max_inflight = 1000;
	const struct opt_def extra[] = {
	    {"async", OPT_UINT, &max_inflight, "N",
	     "requests in flight per worker (uWSGI's async cores); beyond it the worker "
	     "stops reading new requests until one finishes",
	     1, 1000000},
	    {0},
	};
	int rc = server_opts_parse(&opts, extra, argc, argv, prog, COROBENCH_VERSION);
	if (rc > 0)
		return 0;
	if (rc < 0)
		return 2;
	const struct app *app = app_find(opts.app);
	if (!app) {
		fprintf(stderr, "%s: unknown app '%s' (see --help)\n", prog, opts.app);
		return 2;
	}
	if (app->flags & APP_USES_BLOCKING)
		fprintf(stderr,
		        "%s: warning: app '%s' makes blocking calls; on this worker they block the "
		        "whole worker process (by design, see README)\n",
		        prog, app->name);
	if (fetch_global_init() != 0) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", prog);
		return 1;
	}
	raise_nofile();
	/* --stats-path answers the worker's counters (stats.h) before the app. */
	struct async_config cfg = {.opts = &opts,
	                           .app = stats_app_wrap(app, opts.stats_path),
	                           .max_inflight = max_inflight};
	return master_run(&opts, async_worker_main, &cfg, prog);
}
