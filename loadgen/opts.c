/* opts: the option table, its parser (getopt_long, fed from the table) and
 * its --help printer. ab's rows keep ab's letters, argument names and
 * wording line for line, so that loadgen -h shows ab's usage text with the
 * long options after it. */
#include "opts.h"
#include "opts_int.h"

#include "engine.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

enum opts_rc opts_fail(struct lg_opts *o, enum opts_rc rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->err, sizeof o->err, fmt, ap);
	va_end(ap);
	return rc;
}

#define FIELD(f) offsetof(struct lg_opts, f), 0
#define TO(f, v) offsetof(struct lg_opts, f), (v)

/* the generic setters: ab reads numbers with atoi() */
static enum opts_rc set_atoi(struct lg_opts *o, const struct opt *op, const char *arg)
{
	*(int *)((char *)o + op->field) = atoi(arg);
	return OPTS_OK;
}

static enum opts_rc set_int_to(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)arg;
	*(int *)((char *)o + op->field) = op->val;
	return OPTS_OK;
}

static enum opts_rc set_str(struct lg_opts *o, const struct opt *op, const char *arg)
{
	*(const char **)((char *)o + op->field) = arg;
	return OPTS_OK;
}

/* -x, -y, -z: an HTML attribute string, which also means -w */
static enum opts_rc set_html_str(struct lg_opts *o, const struct opt *op, const char *arg)
{
	o->use_html = 1;
	return set_str(o, op, arg);
}

static enum opts_rc set_requests(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->requests = o->nflag = atoi(arg);
	o->requests_set_last = 1;
	if (o->requests <= 0)
		return opts_fail(o, OPTS_FAIL, "Invalid number of requests\n\n");
	return OPTS_OK;
}

static enum opts_rc set_format(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	if (strcmp(arg, "ab") == 0 || strcmp(arg, "ms") == 0)
		o->report_us = 0;
	else if (strcmp(arg, "us") == 0)
		o->report_us = 1;
	else
		return opts_fail(
		    o, OPTS_USAGE,
		    "%s: --format wants ab (ab's report, milliseconds) or us (microseconds)\n",
		    o->prog);
	return OPTS_OK;
}

static enum opts_rc set_pipeline(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->pipeline = atoi(arg);
	if (o->pipeline < 1 || o->pipeline > MAX_PIPELINE)
		return opts_fail(o, OPTS_USAGE, "%s: --pipeline wants 1..%d\n", o->prog,
		                 MAX_PIPELINE);
	return OPTS_OK;
}

static enum opts_rc set_quiet(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op, (void)arg;
	o->heartbeat = 0;
	o->quiet = 1;
	return OPTS_OK;
}

static enum opts_rc set_help(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op, (void)arg;
	o->err[0] = 0;
	return OPTS_USAGE;
}

static enum opts_rc set_version(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)o, (void)op, (void)arg;
	return OPTS_VERSION;
}

/* --help and --version (found before getopt runs, wherever they are) */
static enum opts_rc set_long_help(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)o, (void)arg;
	return op->name[0] == 'h' ? OPTS_HELP : OPTS_VERSION_LINE;
}

/* ab's -f: matched as ab does (case-insensitive prefixes, "TLS1" last);
 * what this OpenSSL cannot speak, or what ab would silently take as ALL, is
 * refused. */
static enum opts_rc set_tls_proto(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	static const struct {
		const char *name;
		enum tls_proto p;
	} protos[] = {{"ALL", TLS_ALL},
	              {"TLS1.1", TLS_1_1},
	              {"TLS1.2", TLS_1_2},
	              {"TLS1.3", TLS_1_3},
	              {"TLS1", TLS_1_0}};
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
		if (strncasecmp(arg, protos[i].name, strlen(protos[i].name)) == 0) {
			o->tls_proto = protos[i].p;
			return OPTS_OK;
		}
	}
	return opts_fail(
	    o, OPTS_USAGE,
	    "%s: -f %s: wants TLS1, TLS1.1, TLS1.2, TLS1.3 or ALL (SSL2 and SSL3 are not "
	    "in this OpenSSL)\n",
	    o->prog, arg);
}
static enum opts_rc set_threads(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->threads = atoi(arg);
	if (o->threads < 1 || o->threads > 1024)
		return opts_fail(o, OPTS_USAGE, "%s: --threads wants 1..1024\n", o->prog);
	return OPTS_OK;
}

static enum opts_rc set_rate(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->rate = atof(arg);
	if (o->rate <= 0)
		return opts_fail(o, OPTS_USAGE,
		                 "%s: --rate wants a positive number of requests/s\n", o->prog);
	return OPTS_OK;
}

static enum opts_rc set_warmup(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->warmup = atof(arg);
	if (o->warmup < 0)
		return opts_fail(o, OPTS_USAGE, "%s: --warmup wants seconds >= 0\n", o->prog);
	return OPTS_OK;
}

static enum opts_rc set_streams(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->streams = atoi(arg);
	o->streams_set = 1;
	if (o->streams < 1 || o->streams > MAX_STREAMS)
		return opts_fail(o, OPTS_USAGE, "%s: --streams wants 1..%d\n", o->prog,
		                 MAX_STREAMS);
	return OPTS_OK;
}

static enum opts_rc set_engine(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	if (strcmp(arg, "epoll") == 0)
		o->engine = LG_ENGINE_EPOLL;
	else if (strcmp(arg, "uring") == 0 || strcmp(arg, "io_uring") == 0)
		o->engine = LG_ENGINE_URING;
	else if (strcmp(arg, "auto") == 0)
		o->engine = LG_ENGINE_AUTO;
	else
		return opts_fail(o, OPTS_USAGE, "%s: --engine wants epoll, uring or auto\n",
		                 o->prog);
	return OPTS_OK;
}

/* Every option, once: ab's in ab's order and wording, then ours. */
static const struct opt table[] = {
    {'n', NULL, "requests", set_requests, 0, 0, "Number of requests to perform", NULL, NULL},
    {'c', NULL, "concurrency", set_atoi, FIELD(concurrency),
     "Number of multiple requests to make at a time", NULL, NULL},
    {'t', NULL, "timelimit", opts_set_tlimit, 0, 0,
     "Seconds to max. to spend on benchmarking\nThis implies -n 50000", NULL, NULL},
    {'s', NULL, "timeout", set_atoi, FIELD(timeout_s),
     "Seconds to max. wait for each response\nDefault is 30 seconds", NULL, NULL},
    {'b', NULL, "windowsize", set_atoi, FIELD(windowsize),
     "Size of TCP send/receive buffer, in bytes", NULL, NULL},
    {'B', NULL, "address", set_str, FIELD(myhost),
     "Address to bind to when making outgoing connections", NULL, NULL},
    {'p', NULL, "postfile", opts_set_body, 0, 0,
     "File containing data to POST. Remember also to set -T", NULL, NULL},
    {'u', NULL, "putfile", opts_set_body, 0, 0,
     "File containing data to PUT. Remember also to set -T", NULL, NULL},
    {'T', NULL, "content-type", set_str, FIELD(content_type),
     "Content-type header to use for POST/PUT data, eg.\n"
     "'application/x-www-form-urlencoded'\n"
     "Default is 'text/plain'",
     NULL, NULL},
    {'v', NULL, "verbosity", set_atoi, FIELD(verbosity), "How much troubleshooting info to print",
     NULL, NULL},
    {'w', NULL, NULL, set_int_to, TO(use_html, 1), "Print out results in HTML tables", NULL, NULL},
    {'i', NULL, NULL, opts_set_head, 0, 0, "Use HEAD instead of GET", NULL, NULL},
    {'x', NULL, "attributes", set_html_str, FIELD(tablestring),
     "String to insert as table attributes", NULL, NULL},
    {'y', NULL, "attributes", set_html_str, FIELD(trstring), "String to insert as tr attributes",
     NULL, NULL},
    {'z', NULL, "attributes", set_html_str, FIELD(tdstring),
     "String to insert as td or th attributes", NULL, NULL},
    {'C', NULL, "attribute", opts_set_cookie, 0, 0, "Add cookie, eg. 'Apache=1234'. (repeatable)",
     NULL, NULL},
    {'H', NULL, "attribute", opts_set_header, 0, 0,
     "Add Arbitrary header line, eg. 'Accept-Encoding: gzip'\n"
     "Inserted after all normal header lines. (repeatable)",
     NULL, NULL},
    {'A', NULL, "attribute", opts_set_auth, 0, 0,
     "Add Basic WWW Authentication, the attributes\n"
     "are a colon separated username and password.",
     NULL, NULL},
    {'P', NULL, "attribute", opts_set_auth, 0, 0,
     "Add Basic Proxy Authentication, the attributes\n"
     "are a colon separated username and password.",
     NULL, NULL},
    {'X', NULL, "proxy:port", opts_set_proxy, 0, 0, "Proxyserver and port number to use", NULL,
     NULL},
    {'V', NULL, NULL, set_version, 0, 0, "Print version number and exit", NULL, NULL},
    {'k', NULL, NULL, set_int_to, TO(keepalive, 1), "Use HTTP KeepAlive feature", NULL, NULL},
    {'d', NULL, NULL, set_int_to, TO(percentile, 0), "Do not show percentiles served table.", NULL,
     NULL},
    {'S', NULL, NULL, set_int_to, TO(confidence, 0),
     "Do not show confidence estimators and warnings.", NULL, NULL},
    {'q', NULL, NULL, set_quiet, 0, 0, "Do not show progress when doing more than 150 requests",
     NULL, NULL},
    {'l', NULL, NULL, set_int_to, TO(nolength, 1),
     "Accept variable document length (use this for dynamic pages)", NULL, NULL},
    {'g', NULL, "filename", set_str, FIELD(gnuplot),
     "Output collected data to gnuplot format file.", NULL, NULL},
    {'e', NULL, "filename", set_str, FIELD(csvperc), "Output CSV file with percentages served",
     NULL, NULL},
    {'r', NULL, NULL, set_int_to, TO(recverrok, 1), "Don't exit on socket receive errors.", NULL,
     NULL},
    {'m', NULL, "method", opts_set_method, 0, 0, "Method name", NULL, NULL},
    {'h', NULL, NULL, set_help, 0, 0, "Display usage information (this message)", NULL, NULL},
    /* ab's TLS options (https:// URLs), in ab's words */
    {'I', NULL, NULL, set_int_to, TO(no_sni, 1),
     "Disable TLS Server Name Indication (SNI) extension", NULL, NULL},
    {'Z', NULL, "ciphersuite", set_str, FIELD(tls_ciphers),
     "Specify SSL/TLS cipher suite (See openssl ciphers)", NULL, NULL},
    {'f', NULL, "protocol", set_tls_proto, 0, 0,
     "Specify SSL/TLS protocol\n(SSL2, TLS1, TLS1.1, TLS1.2, TLS1.3 or ALL)", NULL, NULL},
    {'E', NULL, "certfile", set_str, FIELD(tls_cert),
     "Specify optional client certificate chain and private key", NULL, NULL},
    /* beyond ab */
    {0, "threads", "N", set_threads, 0, 0, "Event loops (threads), connections spread over them.",
     "1", NULL},
    {0, "http1.1", NULL, set_int_to, TO(http11, 1), "Send HTTP/1.1 requests.", "HTTP/1.0, like ab",
     NULL},
    {0, "rate", "R", set_rate, 0, 0,
     "Open model: R requests/s in total, R/c per connection; latency\n"
     "counted from each request's intended start (corrected for\n"
     "coordinated omission) and from its send (uncorrected).",
     "off", NULL},
    {0, "sweep", "LIST", set_str, FIELD(sweep),
     "Run each concurrency level of LIST (e.g. 1,2,5,10) in turn,\n"
     "-n requests or -t seconds (or --duration) each.",
     "off", NULL},
    {0, "warmup", "S", set_warmup, 0, 0, "Seconds of unrecorded load before each level.", "0",
     NULL},
    {0, "json", "FILE", set_str, FIELD(json_file),
     "Write every level's figures as JSON (corobench/loadgen/v1).", "none", NULL},
    {0, "h2", NULL, set_int_to, TO(h2, 1),
     "HTTP/2 over cleartext with prior knowledge (h2c), as h2load\n"
     "does for http:// URLs; -c is then the connections.",
     "off", NULL},
    {0, "streams", "N", set_streams, 0, 0,
     "With --h2: concurrent streams per connection (h2load's -m;\n"
     "loadgen's -m stays ab's method). Alias --max-streams.",
     "1", NULL},
    {0, "max-streams", "N", set_streams, 0, 0, NULL, NULL, NULL},
    {0, "sweep-streams", "LIST", set_str, FIELD(sweep_streams),
     "With --h2: run each streams level of LIST in turn\n"
     "(with --sweep: every streams level at every -c level).",
     "off", NULL},
    {0, "engine", "E", set_engine, 0, 0,
     "HTTP/1 event loop: epoll, uring (io_uring) or auto (uring\n"
     "when the kernel has it; --h2 uses epoll).",
     "auto", NULL},
    {0, "duration", "T", opts_set_duration, 0, 0,
     "Run for T (10s, 1m, 500ms, 1.5s), with no cap on requests\n"
     "but -n's (ab's -t takes whole seconds and implies -n 50000).",
     "off", NULL},
    {0, "format", "F", set_format, 0, 0,
     "The text report's times: ab (ab's milliseconds) or us\n"
     "(microseconds, for fast servers).",
     "ab", NULL},
    {0, "unix", "PATH", set_str, FIELD(unix_path),
     "Connect to the Unix-domain socket PATH; the URL still gives\n"
     "the Host header and the path.",
     "off", NULL},
    {0, "pipeline", "N", set_pipeline, 0, 0,
     "With -k: N HTTP/1.x requests in flight on each connection,\n"
     "answers matched in order (HTTP/1.1 pipelining).",
     "1", NULL},
    {0, "mpi", NULL, set_int_to, TO(mpi, 1),
     "Run as one rank of an Open MPI job (mpirun -np N [-H hosts]):\n"
     "-n, -c, --rate (and so the streams) are split over the ranks,\n"
     "the histograms merged exactly; rank 0 reports.",
     "off", NULL},
    {0, "help", NULL, set_long_help, 0, 0, "This message, on stdout.", NULL, NULL},
    {0, "version", NULL, set_long_help, 0, 0, "Print the version and exit.", NULL, NULL},
};

#define NOPTS (sizeof table / sizeof table[0])

void opts_usage(FILE *f, const char *progname)
{
	fprintf(f, "Usage: %s [options] [http[s]://]hostname[:port]/path\n", progname);
	fprintf(f, "Options are:\n");
	int longs = 0;
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *op = &table[i];
		if (!op->help)
			continue;
		if (!op->letter && !longs) {
			fprintf(f, "Long options (beyond ab):\n");
			longs = 1;
		}
		char left[64];
		if (op->left)
			snprintf(left, sizeof left, "%s", op->left);
		else if (op->letter)
			snprintf(left, sizeof left, "-%c %s", op->letter, op->arg ? op->arg : "");
		else
			snprintf(left, sizeof left, "--%s%s%s", op->name, op->arg ? " " : "",
			         op->arg ? op->arg : "");
		/* ab's layout: the text from column 20, continuation lines too */
		const char *h = op->help;
		for (int first = 1;; first = 0) {
			const char *nl = strchr(h, '\n');
			int n = nl ? (int)(nl - h) : (int)strlen(h);
			if (first && strlen(left) > 15)
				fprintf(f, "    %s  %.*s", left, n, h);
			else
				fprintf(f, "    %-15s %.*s", first ? left : "", n, h);
			if (!nl)
				break;
			fputc('\n', f);
			h = nl + 1;
		}
		if (op->def)
			fprintf(f, " Default %s", op->def);
		fputc('\n', f);
	}
}

/* "1,2,5,10": 1..max each; the count, or -1. */
static int parse_levels(const char *s, int *levels, long max)
{
	int n = 0;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > max || n == OPTS_MAX_LEVELS)
			return -1;
		levels[n++] = (int)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return n;
}

/* A --sweep or --sweep-streams list; beyond ab, a sweep with -t alone is
 * time-limited only, not capped at the 50000 requests -t implies for ab
 * compatibility. The count, or -1. */
static int sweep_levels(struct lg_opts *o, const char *list, int *levels, long max)
{
	int n = parse_levels(list, levels, max);
	if (n > 0 && o->tlimit_us && !o->requests_set_last)
		o->requests = LONG_MAX / 2;
	return n;
}

/* What ab checks after its option loop, and what the long options need. */
static enum opts_rc check(struct lg_opts *o)
{
	static const char *const names[] = {"bug", "GET", "HEAD", "PUT", "POST"};
	if (o->method == METH_NONE)
		o->method = METH_GET;
	if (o->method != METH_CUSTOM)
		o->method_str = names[o->method];
	o->head = o->method == METH_HEAD ||
	          (o->method == METH_CUSTOM && strcasecmp(o->method_str, "HEAD") == 0);
	if (url_parse(o->fullurl, &o->url) != URL_OK)
		return opts_fail(
		    o, OPTS_HINT,
		    "%s: invalid URL '%s': %s (the form is [http[s]://]host[:port]/path, "
		    "e.g. http://127.0.0.1:8080/)\n",
		    o->prog, o->fullurl, o->url.why);
	if (o->duration_set)
		o->requests = o->nflag ? o->nflag : LONG_MAX / 2;
	if (o->report_us && o->use_html)
		return opts_fail(o, OPTS_USAGE,
		                 "%s: --format us is for the text report, not -w's tables\n",
		                 o->prog);
	if (o->url.tls && o->isproxy)
		return opts_fail(
		    o, OPTS_FAIL,
		    "%s: https:// through -X is not supported (it would need CONNECT)\n", o->prog);
	if (o->unix_path && strlen(o->unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return opts_fail(o, OPTS_FAIL, "%s: --unix %s: the path is too long for a socket\n",
		                 o->prog, o->unix_path);
	if (o->unix_path && (o->isproxy || o->myhost))
		return opts_fail(o, OPTS_FAIL, "%s: --unix does not go with %s\n", o->prog,
		                 o->isproxy ? "-X (a proxy is reached over TCP)"
		                            : "-B (an address to bind)");
	if (o->pipeline > 1 && (!o->keepalive || o->h2 || o->rate > 0))
		return opts_fail(o, OPTS_USAGE, "%s: --pipeline %s\n", o->prog,
		                 o->h2 ? "is HTTP/1.x's; with --h2 use --streams"
		                 : o->rate > 0
		                     ? "does not go with --rate"
		                     : "needs -k (requests follow each other on kept connections)");
	if (o->mpi && o->gnuplot)
		return opts_fail(
		    o, OPTS_FAIL,
		    "%s: -g does not go with --mpi (its rows stay on each rank's host)\n", o->prog);
	if (!o->h2 && (o->sweep_streams || o->streams_set))
		return opts_fail(o, OPTS_USAGE, "%s: %s needs --h2\n", o->prog,
		                 o->sweep_streams ? "--sweep-streams" : "--streams");
	if (o->h2 && o->isproxy)
		return opts_fail(o, OPTS_FAIL, "%s: --h2 does not support -X (a proxy)\n", o->prog);
	/* --rate with -t alone: the schedule is the time, not ab's 50000
	 * requests (as with --sweep) */
	if (o->rate > 0 && o->tlimit_us && !o->requests_set_last)
		o->requests = LONG_MAX / 2;
	o->slevels[0] = o->streams;
	o->nslevels = 1;
	if (o->sweep_streams &&
	    (o->nslevels = sweep_levels(o, o->sweep_streams, o->slevels, MAX_STREAMS)) <= 0)
		return opts_fail(o, OPTS_USAGE,
		                 "%s: --sweep-streams wants levels like 1,10,100 (1..%d)\n",
		                 o->prog, MAX_STREAMS);
	o->levels[0] = o->concurrency;
	o->nlevels = 1;
	if (o->sweep && (o->nlevels = sweep_levels(o, o->sweep, o->levels, MAX_CONCURRENCY)) <= 0)
		return opts_fail(o, OPTS_USAGE, "%s: --sweep wants levels like 1,2,5,10 (1..%d)\n",
		                 o->prog, MAX_CONCURRENCY);
	for (int i = 0; i < o->nlevels; i++) {
		if (o->levels[i] <= 0 || o->levels[i] > MAX_CONCURRENCY)
			return opts_fail(o, OPTS_USAGE, "%s: Invalid Concurrency [Range 0..%d]\n",
			                 o->prog, MAX_CONCURRENCY);
		if (o->levels[i] > o->requests)
			return opts_fail(
			    o, OPTS_USAGE,
			    "%s: Cannot use concurrency level greater than total number of "
			    "requests\n",
			    o->prog);
	}
	if (o->heartbeat && o->requests > 150) {
		o->heartbeat = o->requests / 10;
		if (o->heartbeat < 100)
			o->heartbeat = 100;
	} else {
		o->heartbeat = 0;
	}
	return OPTS_OK;
}

/* getopt_long's message for a bad option, as apr_getopt() words it for
 * ab's letters. ab's loop then stops and, unless the URL alone is left,
 * says "wrong number of arguments" too. */
static enum opts_rc bad_option(struct lg_opts *o, const char *base, int c, int argc, char **argv)
{
	const char *what = argv[optind - 1];
	int n;
	if (c == ':' && optopt && optopt < 256)
		n = snprintf(o->err, sizeof o->err, "%s: option requires an argument -- %c\n", base,
		             optopt);
	else if (c == ':')
		n = snprintf(o->err, sizeof o->err, "%s: option %s requires an argument\n", base,
		             what);
	else if (optopt && optopt < 256)
		n = snprintf(o->err, sizeof o->err, "%s: illegal option -- %c\n", base, optopt);
	else
		n = snprintf(o->err, sizeof o->err, "%s: illegal option %s\n", base, what);
	if (optopt && optopt < 256 && optind != argc - 1 && n > 0 && (size_t)n < sizeof o->err)
		snprintf(o->err + n, sizeof o->err - (size_t)n, "%s: wrong number of arguments\n",
		         o->prog);
	return OPTS_USAGE;
}

enum opts_rc opts_parse(struct lg_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->prog = argv[0];
	o->requests = 1;
	o->heartbeat = 100;
	o->concurrency = 1;
	o->timeout_s = 30;
	o->percentile = 1;
	o->confidence = 1;
	o->threads = 1;
	o->streams = 1;
	o->pipeline = 1;
	o->engine = LG_ENGINE_AUTO;
	o->tablestring = "";
	o->trstring = "";
	o->tdstring = "bgcolor=white";
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];

	/* getopt_long's two tables, from ours: "+" stops at the URL as ab's
	 * apr_getopt() does, ":" reports a missing argument apart */
	char shorts[2 + 2 * NOPTS + 1] = "+:";
	struct option longs[NOPTS + 1];
	size_t ns = 2, nl = 0;
	for (size_t i = 0; i < NOPTS; i++) {
		if (table[i].letter) {
			shorts[ns++] = table[i].letter;
			if (table[i].arg)
				shorts[ns++] = ':';
		} else {
			longs[nl++] = (struct option){
			    table[i].name, table[i].arg ? required_argument : no_argument, NULL,
			    256 + (int)i};
		}
	}
	shorts[ns] = 0;
	longs[nl] = (struct option){0};

	/* --help and --version win wherever they are, as the servers' do */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return OPTS_HELP;
		if (strcmp(argv[i], "--version") == 0)
			return OPTS_VERSION_LINE;
	}
	opterr = 0;
	optind = 0; /* 0: glibc starts afresh (a second parse, as in the unit test) */
	int c;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct opt *op = NULL;
		if (c >= 256) {
			op = &table[c - 256];
		} else {
			for (size_t i = 0; i < NOPTS && !op; i++)
				if (table[i].letter && table[i].letter == c)
					op = &table[i];
		}
		if (!op)
			return bad_option(o, base, c, argc, argv);
		enum opts_rc rc = op->set(o, op, optarg);
		if (rc != OPTS_OK)
			return rc;
	}
	if (optind != argc - 1)
		return opts_fail(o, OPTS_USAGE, "%s: wrong number of arguments\n", o->prog);
	o->fullurl = argv[optind];
	return check(o);
}

void opts_free(struct lg_opts *o)
{
	free(o->postdata);
	o->postdata = NULL;
	req_lines_free(&o->lines);
}
