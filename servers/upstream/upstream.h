/* upstream.h — what the two files of the upstream stub share (upstream.c:
 * the server; upstream_setup.c: its command line and listen socket). The
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
};

/* The command line into cfg (defaults already there): 0 go on, 1 --help or
 * --version done, -1 bad usage (message printed). */
int upstream_parse_args(struct config *cfg, int argc, char **argv);
/* Bind HOST:PORT, [V6]:PORT or :PORT and listen. The fd (non-blocking), its
 * address in bound; -1 with *why. */
int upstream_listen(const char *spec, int backlog, const char **why, char *bound, size_t boundcap);
/* p[0..len) as a decimal at most max: true and *out, or false. */
bool upstream_parse_ulong(const char *p, size_t len, unsigned long max, unsigned long *out);

#endif
