/* opts: the option table, its parser (getopt_long, fed from the table) and
 * its --help printer. ab's rows keep ab's letters, argument names and
 * wording line for line, so that loadgen -h shows ab's usage text with the
 * long options after it. */
#include "opts.h"

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

#define MAX_CONCURRENCY 200000
#define MAX_REQUESTS 50000 /* what -t implies, as in ab */
#define MAX_STREAMS 100000
#define MAX_PIPELINE 1024

struct opt;
typedef enum opts_rc (*opt_set)(struct lg_opts *o, const struct opt *op, const char *arg);

struct opt {
	char letter;      /* ab's letter; 0 for a long option */
	const char *name; /* the long name; NULL for ab's */
	const char *arg;  /* the argument's name in --help; NULL: takes none */
	opt_set set;
	size_t field;     /* for the generic setters: where in struct lg_opts */
	int val;          /* for set_int_to: the value */
	const char *help; /* lines joined by '\n'; NULL: not listed (an alias) */
	const char *def;  /* the default, shown after the help; NULL: none shown */
	const char *left; /* what --help shows instead of "-x arg" */
};

static enum opts_rc fail(struct lg_opts *o, enum opts_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum opts_rc fail(struct lg_opts *o, enum opts_rc rc, const char *fmt, ...)
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
		return fail(o, OPTS_FAIL, "Invalid number of requests\n\n");
	return OPTS_OK;
}

/* "10s", "1m", "500ms", "2h", "250us"; a bare number is seconds. The
 * microseconds (> 0), or 0 when s is not such a time. */
static uint64_t parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !(v > 0) || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return 0;
	static const struct {
		const char *unit;
		double us;
	} units[] = {{"", 1e6}, {"s", 1e6}, {"ms", 1e3}, {"us", 1}, {"m", 60e6}, {"h", 3600e6}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) == 0) {
			double us = v * units[i].us;
			return us >= 1 && us < 1e15 ? (uint64_t)us : 0;
		}
	}
	return 0;
}

/* ab's -t: whole seconds (ab reads it with atoi(), so "1s" would be 1 and
 * "0.5" 0, which means no limit at all). Anything but digits is refused
 * with what ab would have made of it and the --duration that says it. */
static enum opts_rc set_tlimit(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	size_t n = strspn(arg, "0123456789");
	if (n == 0 || arg[n] || n > 9) {
		int ab = atoi(arg);
		char ab_reads[64];
		if (ab > 0)
			snprintf(ab_reads, sizeof ab_reads, "%d", ab);
		else
			snprintf(ab_reads, sizeof ab_reads, "%d: no time limit, 50000 requests", ab);
		uint64_t us = parse_duration(arg);
		return fail(o, OPTS_HINT,
		            "%s: -t %s: -t takes whole seconds, as ab's does (ab would read %s); %s%s%s\n",
		            o->prog, arg, ab_reads,
		            us ? "for that time use --duration " : "for a time with a unit use --duration, e.g. --duration 500ms",
		            us ? arg : "", us && arg[strspn(arg, "0123456789.")] == 0 ? "s" : "");
	}
	o->tlimit_us = (uint64_t)atoi(arg) * 1000000u;
	o->duration_set = 0;
	o->requests = MAX_REQUESTS; /* ab: need to size data array on something */
	o->requests_set_last = 0;
	return OPTS_OK;
}

/* --duration: a time with a unit, and no cap on the requests but -n's. */
static enum opts_rc set_duration(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->tlimit_us = parse_duration(arg);
	if (!o->tlimit_us)
		return fail(o, OPTS_HINT,
		            "%s: --duration %s: not a time; give e.g. 10s, 1m, 500ms, 1.5s or 2h\n",
		            o->prog, arg);
	o->duration_set = 1;
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
		return fail(o, OPTS_USAGE,
		            "%s: --format wants ab (ab's report, milliseconds) or us (microseconds)\n",
		            o->prog);
	return OPTS_OK;
}

static enum opts_rc set_pipeline(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->pipeline = atoi(arg);
	if (o->pipeline < 1 || o->pipeline > MAX_PIPELINE)
		return fail(o, OPTS_USAGE, "%s: --pipeline wants 1..%d\n", o->prog, MAX_PIPELINE);
	return OPTS_OK;
}

static enum opts_rc set_quiet(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op, (void)arg;
	o->heartbeat = 0;
	o->quiet = 1;
	return OPTS_OK;
}

static enum opts_rc set_head(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op, (void)arg;
	if (o->method != METH_NONE)
		return fail(o, OPTS_FAIL, "Cannot mix HEAD with other methods\n\n");
	o->method = METH_HEAD;
	return OPTS_OK;
}

/* -p and -u: ab reads the file at once */
static enum opts_rc set_body(struct lg_opts *o, const struct opt *op, const char *file)
{
	int post = op->letter == 'p';
	if (o->method != METH_NONE)
		return fail(o, OPTS_FAIL, "Cannot mix %s with other methods\n\n",
		            post ? "POST" : "PUT");
	FILE *f = fopen(file, "rb");
	if (!f)
		return fail(o, OPTS_FAIL, "%s: Could not open POST data file (%s): %s\n", o->prog,
		            file, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st)) {
		int e = errno;
		fclose(f);
		return fail(o, OPTS_FAIL, "%s: Could not stat POST data file (%s): %s\n", o->prog,
		            file, strerror(e));
	}
	free(o->postdata);
	o->postdata = malloc((size_t)st.st_size + 1);
	if (!o->postdata) {
		fclose(f);
		return fail(o, OPTS_FAIL, "Could not allocate memory\n");
	}
	if (fread(o->postdata, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		int e = errno;
		fclose(f);
		return fail(o, OPTS_FAIL, "%s: Could not read POST data file: %s\n", o->prog,
		            strerror(e));
	}
	fclose(f);
	o->postlen = (size_t)st.st_size;
	o->method = post ? METH_POST : METH_PUT;
	o->send_body = 1;
	return OPTS_OK;
}

static enum opts_rc set_method(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->method = METH_CUSTOM;
	o->method_str = arg;
	return OPTS_OK;
}

static enum opts_rc set_cookie(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	if (req_add_cookie(&o->lines, arg))
		return fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

static enum opts_rc set_header(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	if (strncasecmp(arg, "Host:", 5) == 0) {
		/* ab's opt_host (the TLS server name): the value, trimmed */
		const char *v = arg + 5;
		while (isspace((unsigned char)*v))
			v++;
		size_t n = strlen(v);
		while (n && isspace((unsigned char)v[n - 1]))
			n--;
		snprintf(o->opt_host, sizeof o->opt_host, "%.*s", (int)n, v);
	}
	if (req_add_header(&o->lines, arg))
		return fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

static enum opts_rc set_auth(struct lg_opts *o, const struct opt *op, const char *arg)
{
	int proxy = op->letter == 'P';
	int rc = req_add_auth(&o->lines, proxy, arg);
	if (rc == -2)
		return fail(o, OPTS_FAIL, "%s credentials too long\n\n",
		            proxy ? "Proxy" : "Authentication");
	if (rc)
		return fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

static enum opts_rc set_proxy(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	char *a = (char *)arg; /* inside argv: ab splits it in place */
	char *p = strchr(a, ':');
	if (p) {
		*p++ = 0;
		o->proxyport = atoi(p);
	}
	o->proxyhost = a;
	o->isproxy = 1;
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
	} protos[] = {{"ALL", TLS_ALL},       {"TLS1.1", TLS_1_1}, {"TLS1.2", TLS_1_2},
	              {"TLS1.3", TLS_1_3},    {"TLS1", TLS_1_0}};
	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
		if (strncasecmp(arg, protos[i].name, strlen(protos[i].name)) == 0) {
			o->tls_proto = protos[i].p;
			return OPTS_OK;
		}
	}
	return fail(o, OPTS_USAGE,
	            "%s: -f %s: wants TLS1, TLS1.1, TLS1.2, TLS1.3 or ALL (SSL2 and SSL3 are not "
	            "in this OpenSSL)\n",
	            o->prog, arg);
}
static enum opts_rc set_threads(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->threads = atoi(arg);
	if (o->threads < 1 || o->threads > 1024)
		return fail(o, OPTS_USAGE, "%s: --threads wants 1..1024\n", o->prog);
	return OPTS_OK;
}

static enum opts_rc set_rate(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->rate = atof(arg);
	if (o->rate <= 0)
		return fail(o, OPTS_USAGE, "%s: --rate wants a positive number of requests/s\n",
		            o->prog);
	return OPTS_OK;
}

static enum opts_rc set_warmup(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->warmup = atof(arg);
	if (o->warmup < 0)
		return fail(o, OPTS_USAGE, "%s: --warmup wants seconds >= 0\n", o->prog);
	return OPTS_OK;
}

static enum opts_rc set_streams(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->streams = atoi(arg);
	o->streams_set = 1;
	if (o->streams < 1 || o->streams > MAX_STREAMS)
		return fail(o, OPTS_USAGE, "%s: --streams wants 1..%d\n", o->prog, MAX_STREAMS);
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
		return fail(o, OPTS_USAGE, "%s: --engine wants epoll, uring or auto\n", o->prog);
	return OPTS_OK;
}

/* Every option, once: ab's in ab's order and wording, then ours. */
static const struct opt table[] = {
    {'n', NULL, "requests", set_requests, 0, 0, "Number of requests to perform", NULL, NULL},
    {'c', NULL, "concurrency", set_atoi, FIELD(concurrency),
     "Number of multiple requests to make at a time", NULL, NULL},
    {'t', NULL, "timelimit", set_tlimit, 0, 0,
     "Seconds to max. to spend on benchmarking\nThis implies -n 50000", NULL, NULL},
    {'s', NULL, "timeout", set_atoi, FIELD(timeout_s),
     "Seconds to max. wait for each response\nDefault is 30 seconds", NULL, NULL},
    {'b', NULL, "windowsize", set_atoi, FIELD(windowsize),
     "Size of TCP send/receive buffer, in bytes", NULL, NULL},
    {'B', NULL, "address", set_str, FIELD(myhost),
     "Address to bind to when making outgoing connections", NULL, NULL},
    {'p', NULL, "postfile", set_body, 0, 0, "File containing data to POST. Remember also to set -T",
     NULL, NULL},
    {'u', NULL, "putfile", set_body, 0, 0, "File containing data to PUT. Remember also to set -T",
     NULL, NULL},
    {'T', NULL, "content-type", set_str, FIELD(content_type),
     "Content-type header to use for POST/PUT data, eg.\n"
     "'application/x-www-form-urlencoded'\n"
     "Default is 'text/plain'",
     NULL, NULL},
    {'v', NULL, "verbosity", set_atoi, FIELD(verbosity), "How much troubleshooting info to print",
     NULL, NULL},
    {'w', NULL, NULL, set_int_to, TO(use_html, 1), "Print out results in HTML tables", NULL, NULL},
    {'i', NULL, NULL, set_head, 0, 0, "Use HEAD instead of GET", NULL, NULL},
    {'x', NULL, "attributes", set_html_str, FIELD(tablestring),
     "String to insert as table attributes", NULL, NULL},
    {'y', NULL, "attributes", set_html_str, FIELD(trstring), "String to insert as tr attributes",
     NULL, NULL},
    {'z', NULL, "attributes", set_html_str, FIELD(tdstring),
     "String to insert as td or th attributes", NULL, NULL},
    {'C', NULL, "attribute", set_cookie, 0, 0, "Add cookie, eg. 'Apache=1234'. (repeatable)", NULL,
     NULL},
    {'H', NULL, "attribute", set_header, 0, 0,
     "Add Arbitrary header line, eg. 'Accept-Encoding: gzip'\n"
     "Inserted after all normal header lines. (repeatable)",
     NULL, NULL},
    {'A', NULL, "attribute", set_auth, 0, 0,
     "Add Basic WWW Authentication, the attributes\n"
     "are a colon separated username and password.",
     NULL, NULL},
    {'P', NULL, "attribute", set_auth, 0, 0,
     "Add Basic Proxy Authentication, the attributes\n"
     "are a colon separated username and password.",
     NULL, NULL},
    {'X', NULL, "proxy:port", set_proxy, 0, 0, "Proxyserver and port number to use", NULL, NULL},
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
    {'m', NULL, "method", set_method, 0, 0, "Method name", NULL, NULL},
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
    {0, "duration", "T", set_duration, 0, 0,
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
		return fail(o, OPTS_HINT,
		            "%s: invalid URL '%s': %s (the form is [http[s]://]host[:port]/path, "
		            "e.g. http://127.0.0.1:8080/)\n",
		            o->prog, o->fullurl, o->url.why);
	if (o->duration_set)
		o->requests = o->nflag ? o->nflag : LONG_MAX / 2;
	if (o->report_us && o->use_html)
		return fail(o, OPTS_USAGE, "%s: --format us is for the text report, not -w's tables\n",
		            o->prog);
	if (o->url.tls && o->isproxy)
		return fail(o, OPTS_FAIL,
		            "%s: https:// through -X is not supported (it would need CONNECT)\n",
		            o->prog);
	if (o->unix_path && strlen(o->unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return fail(o, OPTS_FAIL, "%s: --unix %s: the path is too long for a socket\n",
		            o->prog, o->unix_path);
	if (o->unix_path && (o->isproxy || o->myhost))
		return fail(o, OPTS_FAIL, "%s: --unix does not go with %s\n", o->prog,
		            o->isproxy ? "-X (a proxy is reached over TCP)" : "-B (an address to bind)");
	if (o->pipeline > 1 && (!o->keepalive || o->h2 || o->rate > 0))
		return fail(o, OPTS_USAGE, "%s: --pipeline %s\n", o->prog,
		            o->h2      ? "is HTTP/1.x's; with --h2 use --streams"
		            : o->rate > 0 ? "does not go with --rate"
		                        : "needs -k (requests follow each other on kept connections)");
	if (!o->h2 && (o->sweep_streams || o->streams_set))
		return fail(o, OPTS_USAGE, "%s: %s needs --h2\n", o->prog,
		            o->sweep_streams ? "--sweep-streams" : "--streams");
	if (o->h2 && o->isproxy)
		return fail(o, OPTS_FAIL, "%s: --h2 does not support -X (a proxy)\n", o->prog);
	/* --rate with -t alone: the schedule is the time, not ab's 50000
	 * requests (as with --sweep) */
	if (o->rate > 0 && o->tlimit_us && !o->requests_set_last)
		o->requests = LONG_MAX / 2;
	o->slevels[0] = o->streams;
	o->nslevels = 1;
	if (o->sweep_streams &&
	    (o->nslevels = sweep_levels(o, o->sweep_streams, o->slevels, MAX_STREAMS)) <= 0)
		return fail(o, OPTS_USAGE,
		            "%s: --sweep-streams wants levels like 1,10,100 (1..%d)\n", o->prog,
		            MAX_STREAMS);
	o->levels[0] = o->concurrency;
	o->nlevels = 1;
	if (o->sweep && (o->nlevels = sweep_levels(o, o->sweep, o->levels, MAX_CONCURRENCY)) <= 0)
		return fail(o, OPTS_USAGE, "%s: --sweep wants levels like 1,2,5,10 (1..%d)\n",
		            o->prog, MAX_CONCURRENCY);
	for (int i = 0; i < o->nlevels; i++) {
		if (o->levels[i] <= 0 || o->levels[i] > MAX_CONCURRENCY)
			return fail(o, OPTS_USAGE, "%s: Invalid Concurrency [Range 0..%d]\n",
			            o->prog, MAX_CONCURRENCY);
		if (o->levels[i] > o->requests)
			return fail(o, OPTS_USAGE,
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
		return fail(o, OPTS_USAGE, "%s: wrong number of arguments\n", o->prog);
	o->fullurl = argv[optind];
	return check(o);
}

void opts_free(struct lg_opts *o)
{
	free(o->postdata);
	o->postdata = NULL;
	req_lines_free(&o->lines);
}
