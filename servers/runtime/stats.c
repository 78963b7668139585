/* stats.c — the live counters of one worker process, their two outputs (a
 * log line on SIGUSR1, JSON at --stats-path) and the once-per-episode log
 * of accept pauses when descriptors run out. Nothing here is on the hot
 * path except the path compare of the stats app, present only on request.
 */
#include "stats.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "fetch.h"

struct worker_stats stats_counters;

static const char *stats_prog = "server";
static const struct fetcher *stats_fetcher;
static stats_fill_fn stats_fill;
static void *stats_fill_arg;
static bool stats_paused;

void stats_bind(const char *prog, const struct fetcher *fetcher, stats_fill_fn fill, void *arg)
{
	stats_prog = prog ? prog : "server";
	stats_fetcher = fetcher;
	stats_fill = fill;
	stats_fill_arg = arg;
}

void stats_snapshot(struct worker_stats *out)
{
	*out = stats_counters;
	if (stats_fill)
		stats_fill(stats_fill_arg, out);
	out->fetches = stats_fetcher ? fetcher_inflight(stats_fetcher) : 0;
}

static int fit(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int stats_format_line(char *buf, size_t cap)
{
	struct worker_stats s;
	stats_snapshot(&s);
	return fit(snprintf(buf, cap,
	                    "%s[%ld]: stats conns=%lu inflight=%lu streams=%lu fetches=%lu "
	                    "coros=%lu stack_pool=%lu requests=%llu accept_pauses=%llu\n",
	                    stats_prog, (long)getpid(), s.conns, s.inflight, s.streams, s.fetches,
	                    s.coros, s.stack_pool, s.requests, s.accept_pauses),
	           cap);
}

int stats_format_json(char *buf, size_t cap)
{
	struct worker_stats s;
	stats_snapshot(&s);
	return fit(snprintf(buf, cap,
	                    "{\"server\":\"%s\",\"pid\":%ld,\"conns\":%lu,\"inflight\":%lu,"
	                    "\"streams\":%lu,\"fetches\":%lu,\"coros\":%lu,\"stack_pool\":%lu,"
	                    "\"requests\":%llu,\"accept_pauses\":%llu}\n",
	                    stats_prog, (long)getpid(), s.conns, s.inflight, s.streams, s.fetches,
	                    s.coros, s.stack_pool, s.requests, s.accept_pauses),
	           cap);
}

void stats_log(void)
{
	char line[512];
	int n = stats_format_line(line, sizeof(line));
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* ---- the stats endpoint, wrapped around the worker's app ---- */

static const struct app *wrap_inner;
static const char *wrap_path;
static size_t wrap_path_len;

static void stats_handle(struct app_ctx *ctx, const struct app_request *req)
{
	if (req->path.len == wrap_path_len &&
	    memcmp(req->path.base, wrap_path, wrap_path_len) == 0 &&
	    ((req->method.len == 3 && memcmp(req->method.base, "GET", 3) == 0) ||
	     app_method_is_head(req->method))) {
		char body[512];
		int n = stats_format_json(body, sizeof(body));
		if (n < 0)
			app_respond(ctx, 500, "text/plain", "stats\n", 6);
		else
			app_respond(ctx, 200, "application/json", body, (size_t)n);
		return;
	}
	wrap_inner->handle(ctx, req);
}

static struct app wrap_app;

const struct app *stats_app_wrap(const struct app *inner, const char *path)
{
	if (!path || !*path || !inner)
		return inner;
	wrap_inner = inner;
	wrap_path = path;
	wrap_path_len = strlen(path);
	wrap_app = *inner;
	wrap_app.handle = stats_handle;
	return &wrap_app;
}

/* ---- running out of descriptors ---- */

int stats_open_fds(void)
{
	/* opendir needs a descriptor of its own: at EMFILE it fails, and then
	 * the limit itself is the count. */
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

void stats_accept_paused(int err)
{
	if (stats_paused)
		return;
	stats_paused = true;
	stats_counters.accept_pauses++;
	int n = stats_open_fds();
	char line[256];
	int len;
	if (n >= 0)
		len = snprintf(line, sizeof(line),
		               "%s[%ld]: out of file descriptors (%d open: %s); pausing accept\n",
		               stats_prog, (long)getpid(), n, strerror(err));
	else
		len = snprintf(line, sizeof(line),
		               "%s[%ld]: out of file descriptors (%s); pausing accept\n",
		               stats_prog, (long)getpid(), strerror(err));
	if (len > 0)
		(void)!write(STDERR_FILENO, line,
		             (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
}

void stats_accept_resumed(void)
{
	if (!stats_paused)
		return;
	stats_paused = false;
	char line[160];
	int len =
	    snprintf(line, sizeof(line), "%s[%ld]: file descriptors available again; accepting\n",
	             stats_prog, (long)getpid());
	if (len > 0)
		(void)!write(STDERR_FILENO, line,
		             (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
}

bool stats_accept_is_paused(void)
{
	return stats_paused;
}
