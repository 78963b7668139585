/* upstream.h — what the three files of the upstream stub share (upstream.c:
 * the server; upstream_setup.c: its command line and listen socket;
 * upstream_http.c: its HTTP text helpers and query overrides). The
 * stub is a program, not a library: nothing outside this folder uses it.
 */
#ifndef COROBENCH_UPSTREAM_H
#define COROBENCH_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#define PROG "upstream"
#define MAX_SIZE (1UL << 30)      /* largest body, bytes */
#define MAX_DELAY (3600UL * 1000) /* longest delay, ms */

struct config {
	const char *listen;
	unsigned long delay_ms;
	unsigned long size;
	int backlog;
	bool quiet;
	bool wake_per_request;
};

/* The command line into cfg (defaults already there): 0 go on, 1 --help or
 * --version done, -1 bad usage (message printed). */
int upstream_parse_args(struct config *cfg, int argc, char **argv);
/* Bind HOST:PORT, [V6]:PORT or :PORT and listen. The fd (non-blocking), its
 * address in bound; -1 with *why. */
int upstream_listen(const char *spec, int backlog, const char **why, char *bound, size_t boundcap);
/* p[0..len) as a decimal at most max: true and *out, or false. */
bool upstream_parse_ulong(const char *p, size_t len, unsigned long max, unsigned long *out);

/* upstream_http.c: the HTTP text helpers upstream.c uses. */
struct overrides {
	unsigned long delay, size, status;
	bool close, reset, stall;
};
/* The reason phrase of status ("Status" when unknown). */
const char *upstream_reason(int status);
/* An answer head into out: its length, 0 when it does not fit. */
size_t upstream_format_head(char *out, size_t cap, int status, unsigned long len,
                            const char *connection);
/* p[0..len) equals lit, ignoring case. */
bool upstream_token_eq(const char *p, size_t len, const char *lit);
/* Does the comma-separated header value hold token lit? */
bool upstream_has_token(const char *v, size_t len, const char *lit);
/* Apply ?delay= &size= &status= &close=1 &reset=1 &stall=1; unknown keys
 * are ignored (clients add cache busters). false on a bad value. */
bool upstream_parse_query(const char *q, size_t len, struct overrides *o);

#endif
