/* options.h — the command line both servers share, declared once in a table
 * that parses it and prints --help with every flag and its default. A
 * worker adds its own flags (--worker-connections, --async, ...) with a
 * second table of the same shape.
 */
#ifndef COROBENCH_OPTIONS_H
#define COROBENCH_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

struct server_opts {
	const char *listen;           /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
	int workers;                  /* 0 = one per CPU */
	const char *app;              /* registry name, default "hello" */
	const char *upstream;         /* URL, default "http://127.0.0.1:9000/" */
	unsigned graceful_timeout;    /* seconds, default 30 */
	bool cpu_affinity;            /* pin worker i to CPU i mod allowed */
	unsigned keepalive_timeout;   /* seconds idle before close, default 5 */
	unsigned upstream_timeout_ms; /* default 10000 */
	unsigned long max_body;       /* request body limit, bytes, default 1 MiB */
	int backlog;                  /* listen backlog, default 4096 */
	bool quiet;                   /* no access/info log lines */
	unsigned h2_max_streams;      /* SETTINGS_MAX_CONCURRENT_STREAMS per HTTP/2
	                                 connection, default 100 */
	const char *stats_path;       /* answer GET PATH with the worker's counters
	                                 (JSON); NULL (default): off */
	unsigned long upstream_max_body; /* largest upstream answer body a fetch
	                                    keeps (then 502), default 1 MiB */
	const char *unix_path;        /* listen on this Unix-domain socket instead of
	                                 --listen; NULL (default): TCP */
	bool shared_listener;         /* one listen socket for every worker instead
	                                 of one SO_REUSEPORT socket each */
	const char *tls_cert, *tls_key; /* PEM files: the listener speaks TLS
	                                   (ALPN h2, http/1.1); NULL: cleartext */
	bool send_at_once;            /* send each answer when made, not at the end
	                                 of the loop turn with the others */
};

enum opt_kind { OPT_FLAG, OPT_INT, OPT_UINT, OPT_ULONG, OPT_STR };

struct opt_def {
	const char *name; /* long name without "--" */
	enum opt_kind kind;
	void *dest;          /* bool*, int*, unsigned*, unsigned long*, const char** */
	const char *metavar; /* "N", "ADDR", NULL for flags */
	const char *help;    /* one line; the default is printed from *dest */
	long min, max;       /* range for numbers (inclusive) */
};

void server_opts_default(struct server_opts *o);

/* Parse argv against the shared table plus extra (may be NULL, ended by a
 * {0} entry). Returns 0 to go on, 1 when --help or --version was handled
 * (exit 0), -1 on a bad flag (message already on stderr, exit 2).
 * prog is the binary's name for messages; version its version string. */
int server_opts_parse(struct server_opts *o, const struct opt_def *extra, int argc, char **argv,
                      const char *prog, const char *version);

/* Print usage to f (the same text as --help). */
void server_opts_usage(FILE *f, const struct server_opts *o, const struct opt_def *extra,
                       const char *prog);

#endif
