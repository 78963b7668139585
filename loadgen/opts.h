/* opts: loadgen's command line. Every option is one row of one table (in
 * opts.c) that both parses it and prints it in --help: ab's options first,
 * with ab's letters, meanings, wording and error messages, then the long
 * options ab lacks, each with its default. Parsing fills a struct lg_opts
 * and checks the combination; errors come back as values (a status and the
 * message) for main() to print. */
#ifndef LOADGEN_OPTS_H
#define LOADGEN_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "request.h"
#include "url.h"

#define OPTS_MAX_LEVELS 64

enum opts_rc {
	OPTS_OK,
	OPTS_USAGE,   /* print err, then the usage text; exit status EINVAL (22), as ab */
	OPTS_FAIL,    /* print err; exit status 1 (ab's err()) */
	OPTS_VERSION, /* -V: print the version banner; exit status 0 */
	OPTS_HINT,    /* print err (one line with a hint), no usage; exit status EINVAL */
	OPTS_HELP,    /* --help: the usage text on stdout; exit status 0 */
	OPTS_VERSION_LINE, /* --version: "loadgen VERSION"; exit status 0 */
};

enum opts_method { METH_NONE, METH_GET, METH_HEAD, METH_PUT, METH_POST, METH_CUSTOM };

struct lg_opts {
	const char *prog; /* argv[0], as ab's messages name it */
	/* ab's options */
	long requests;         /* -n, or the 50000 -t implies */
	long nflag;            /* the last -n; 0 = none */
	int requests_set_last; /* -n came after the last -t */
	int concurrency;       /* -c */
	uint64_t tlimit_us;    /* -t or --duration; 0 = none */
	int duration_set;      /* the last of them was --duration: no request cap but -n */
	int timeout_s;         /* -s */
	int windowsize;        /* -b */
	int verbosity;         /* -v */
	long heartbeat;        /* "Completed N requests" every heartbeat; 0 = never (-q) */
	int quiet;             /* -q */
	int keepalive;         /* -k */
	int percentile;        /* cleared by -d */
	int confidence;        /* cleared by -S */
	int nolength;          /* -l */
	int recverrok;         /* -r */
	int use_html;          /* -w, -x, -y, -z */
	const char *tablestring, *trstring, *tdstring;
	enum opts_method method;
	const char *method_str; /* the method's name, set by opts_parse() */
	int head;               /* responses carry no body (-i, or -m HEAD) */
	const char *content_type, *gnuplot, *csvperc, *myhost;
	char *proxyhost; /* -X, inside argv */
	int proxyport, isproxy;
	struct req_lines lines; /* -C, -A, -P, -H */
	char *postdata;         /* -p/-u file's bytes (owned) */
	size_t postlen;
	int send_body;
	/* the long options */
	int threads, http11, h2, streams, streams_set;
	int report_us;         /* --format us */
	/* TLS (https:// URLs): ab's -f, -Z, -E, -I */
	int tls_proto; /* enum tls_proto */
	const char *tls_ciphers, *tls_cert;
	int no_sni;
	char opt_host[256]; /* the last -H Host: value, as ab keeps it */
	const char *unix_path; /* --unix */
	int pipeline;          /* --pipeline: requests in flight per connection */
	double rate, warmup;
	int engine; /* enum lg_engine */
	const char *json_file, *sweep, *sweep_streams;
	/* derived from the above by opts_parse() */
	const char *fullurl;
	struct url url;
	int levels[OPTS_MAX_LEVELS], nlevels;   /* -c, or each --sweep level */
	int slevels[OPTS_MAX_LEVELS], nslevels; /* --streams, or each --sweep-streams level */
	char err[600];                          /* the message of an OPTS_USAGE/OPTS_FAIL */
};

/* Parses argv into *o (which it initialises) and checks the combination.
 * On OPTS_USAGE, OPTS_FAIL and OPTS_HINT, o->err holds what to print before
 * (for OPTS_USAGE) opts_usage(). -h gives OPTS_USAGE with an empty err, as
 * ab's usage() exits 22; --help and --version, wherever they are, give
 * OPTS_HELP and OPTS_VERSION_LINE (exit status 0, as the servers'). */
enum opts_rc opts_parse(struct lg_opts *o, int argc, char **argv);

/* ab's usage text followed by the long options, generated from the table. */
void opts_usage(FILE *f, const char *progname);

/* What opts_parse() allocated. */
void opts_free(struct lg_opts *o);

#endif
