/* loadgen: an ApacheBench-compatible HTTP load generator.
 *
 * main() is the only place that prints errors and picks exit statuses: it
 * parses ab's options (with ab's meanings, messages and exit codes) and the
 * long options ab lacks, builds ab's request bytes, runs one load or a sweep
 * of concurrency levels through the engine and prints ab's report and/or
 * writes the JSON document the bench pipeline reads. */
#include "corobench_config.h"
#include "engine.h"
#include "report.h"
#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_CONCURRENCY 200000
#define MAX_REQUESTS 50000 /* what -t implies, as in ab */
#define REQ_MAX 8192       /* ab's request buffer */
#define MAX_LEVELS 64
#define MAX_STREAMS 100000
#define MAX_H2_HDRS 128

static const char *progname;

/* Every option, once: ab's in ab's order and wording, then ours. */
static const char *const usage_lines[] = {
    "    -n requests     Number of requests to perform",
    "    -c concurrency  Number of multiple requests to make at a time",
    "    -t timelimit    Seconds to max. to spend on benchmarking",
    "                    This implies -n 50000",
    "    -s timeout      Seconds to max. wait for each response",
    "                    Default is 30 seconds",
    "    -b windowsize   Size of TCP send/receive buffer, in bytes",
    "    -B address      Address to bind to when making outgoing connections",
    "    -p postfile     File containing data to POST. Remember also to set -T",
    "    -u putfile      File containing data to PUT. Remember also to set -T",
    "    -T content-type Content-type header to use for POST/PUT data, eg.",
    "                    'application/x-www-form-urlencoded'",
    "                    Default is 'text/plain'",
    "    -v verbosity    How much troubleshooting info to print",
    "    -w              Print out results in HTML tables",
    "    -i              Use HEAD instead of GET",
    "    -x attributes   String to insert as table attributes",
    "    -y attributes   String to insert as tr attributes",
    "    -z attributes   String to insert as td or th attributes",
    "    -C attribute    Add cookie, eg. 'Apache=1234'. (repeatable)",
    "    -H attribute    Add Arbitrary header line, eg. 'Accept-Encoding: gzip'",
    "                    Inserted after all normal header lines. (repeatable)",
    "    -A attribute    Add Basic WWW Authentication, the attributes",
    "                    are a colon separated username and password.",
    "    -P attribute    Add Basic Proxy Authentication, the attributes",
    "                    are a colon separated username and password.",
    "    -X proxy:port   Proxyserver and port number to use",
    "    -V              Print version number and exit",
    "    -k              Use HTTP KeepAlive feature",
    "    -d              Do not show percentiles served table.",
    "    -S              Do not show confidence estimators and warnings.",
    "    -q              Do not show progress when doing more than 150 requests",
    "    -l              Accept variable document length (use this for dynamic pages)",
    "    -g filename     Output collected data to gnuplot format file.",
    "    -e filename     Output CSV file with percentages served",
    "    -r              Don't exit on socket receive errors.",
    "    -m method       Method name",
    "    -h              Display usage information (this message)",
    "    -I -Z -f -E     TLS options: not supported (plain HTTP only)",
    "Long options (beyond ab):",
    "    --threads N     Event loops (threads), connections spread over them. Default 1",
    "    --http1.1       Send HTTP/1.1 requests (default HTTP/1.0, like ab)",
    "    --rate R        Open model: R requests/s in total; latency counted from each",
    "                    request's intended start (coordinated omission). Default off",
    "    --sweep LIST    Run each concurrency level of LIST (e.g. 1,2,5,10) in turn,",
    "                    -n requests or -t seconds each. Default off",
    "    --warmup S      Seconds of unrecorded load before each level. Default 0",
    "    --json FILE     Write every level's figures as JSON (corobench/loadgen/v1)",
    "    --h2            HTTP/2 over cleartext with prior knowledge (h2c), as h2load",
    "                    does for http:// URLs; -c is then the connections",
    "    --streams N     With --h2: concurrent streams per connection (h2load's -m;",
    "                    loadgen's -m stays ab's method). Alias --max-streams. Default 1",
    "    --sweep-streams LIST  With --h2: run each streams level of LIST in turn",
    "                    (with --sweep: every streams level at every -c level)",
    "    --engine E      HTTP/1 event loop: epoll, uring (io_uring) or auto (uring",
    "                    when the kernel has it; --rate and --h2 use epoll). Default auto",
    "    --help          This message",
};

static void usage(void)
{
	fprintf(stderr, "Usage: %s [options] [http://]hostname[:port]/path\n", progname);
	fprintf(stderr, "Options are:\n");
	for (size_t i = 0; i < sizeof usage_lines / sizeof usage_lines[0]; i++)
		fprintf(stderr, "%s\n", usage_lines[i]);
	exit(EINVAL);
}

static long done_so_far;

/* ab's err(): message, the count so far, status 1. */
static void die(const char *s)
{
	fprintf(stderr, "%s\n", s);
	if (done_so_far)
		printf("Total of %ld requests completed\n", done_so_far);
	exit(1);
}

static void copyright(int html)
{
	if (!html) {
		printf("This is loadgen, Version %s <ApacheBench 2.3 compatible>\n",
		       COROBENCH_VERSION);
		printf("Part of corobench; options and report follow ApacheBench (Adam Twiss, Zeus "
		       "Technology Ltd)\n");
		printf("and The Apache Software Foundation's ab, http://www.apache.org/\n");
		printf("\n");
	} else {
		printf("<p>\n");
		printf(
		    " This is loadgen, Version %s <i>&lt;ApacheBench 2.3 compatible&gt;</i><br>\n",
		    COROBENCH_VERSION);
		printf(" Part of corobench; options and report follow ApacheBench (Adam Twiss, "
		       "Zeus Technology Ltd)<br>\n");
		printf(" and The Apache Software Foundation's ab, http://www.apache.org/<br>\n");
		printf("</p>\n<p>\n");
	}
}

static void base64(const char *in, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), i;
	char *p = out;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
		             (unsigned char)in[i + 2];
		*p++ = tab[v >> 18];
		*p++ = tab[(v >> 12) & 63];
		*p++ = tab[(v >> 6) & 63];
		*p++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		*p++ = tab[v >> 18];
		*p++ = tab[(v >> 12) & 63];
		*p++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	*p = 0;
}

/* A growing string for the header lines. */
struct sbuf {
	char *s;
	size_t len;
};

static void sb_add(struct sbuf *b, const char *a, const char *c, const char *d)
{
	size_t la = strlen(a), lc = c ? strlen(c) : 0, ld = d ? strlen(d) : 0;
	char *n = realloc(b->s, b->len + la + lc + ld + 1);
	if (!n)
		die("Could not allocate memory");
	b->s = n;
	memcpy(b->s + b->len, a, la);
	if (c)
		memcpy(b->s + b->len + la, c, lc);
	if (d)
		memcpy(b->s + b->len + la + lc, d, ld);
	b->len += la + lc + ld;
	b->s[b->len] = 0;
}

static const char *sb_str(const struct sbuf *b)
{
	return b->s ? b->s : "";
}

static char *read_postfile(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "%s: Could not open POST data file (%s): %s\n", progname, file,
		        strerror(errno));
		exit(1);
	}
	struct stat st;
	if (fstat(fileno(f), &st)) {
		fprintf(stderr, "%s: Could not stat POST data file (%s): %s\n", progname, file,
		        strerror(errno));
		exit(1);
	}
	char *data = malloc((size_t)st.st_size + 1);
	if (!data)
		die("Could not allocate memory");
	if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "%s: Could not read POST data file: %s\n", progname,
		        strerror(errno));
		exit(1);
	}
	fclose(f);
	*len = (size_t)st.st_size;
	return data;
}

static int parse_levels(const char *s, int *levels)
{
	int n = 0;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > MAX_CONCURRENCY || n == MAX_LEVELS)
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

/* The live progress line: stderr on a terminal only, once a second. */
struct progress {
	double last_t;
	uint64_t last_done;
	int shown;
};

static void progress_cb(void *arg, uint64_t done, uint64_t failed, double t)
{
	struct progress *p = arg;
	if (t - p->last_t < 1.0)
		return;
	double rps = (double)(done - p->last_done) / (t - p->last_t);
	fprintf(stderr, "\r\033[K[loadgen] %.0fs: %llu requests, %.0f req/s now, %llu failed", t,
	        (unsigned long long)done, rps, (unsigned long long)failed);
	fflush(stderr);
	p->last_t = t;
	p->last_done = done;
	p->shown = 1;
}

static void on_sigint(int sig)
{
	(void)sig;
	lg_stop();
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int write_json(const char *file, json_t *doc)
{
	size_t n = strlen(file);
	char *tmp = malloc(n + 16);
	if (!tmp)
		return -1;
	snprintf(tmp, n + 16, "%s.tmp.%d", file, (int)getpid());
	int rc = json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	if (rc == 0 && rename(tmp, file) != 0)
		rc = -1;
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* --h2: the request as HTTP/2 header fields, from the HTTP/1 header lines
 * already built for ab's request ("Name: value\r\n" each): pseudo-headers
 * first, names lowercased, Host turned into :authority and the
 * connection-specific fields HTTP/2 forbids left out. The strings live in
 * *store (freed by the caller). Returns the number of fields, -1 when too many. */
static int h2_headers(struct lg_hdr *out, char **store, const char *method, const char *path,
                      const char *lines, size_t bodylen, const char *ctype)
{
	size_t ll = strlen(lines), cl = ctype ? strlen(ctype) : 0;
	char *buf = malloc(ll + 1 + 32);
	if (!buf)
		die("Could not allocate memory");
	memcpy(buf, lines, ll + 1);
	*store = buf;
	int n = 0;
#define ADD(nm, nl, v, vl)                                                                         \
	do {                                                                                       \
		if (n == MAX_H2_HDRS)                                                              \
			return -1;                                                                 \
		out[n++] = (struct lg_hdr){(nm), (v), (nl), (vl)};                                 \
	} while (0)
	ADD(":method", 7, method, strlen(method));
	ADD(":scheme", 7, "http", 4);
	int authority = n;
	ADD(":authority", 10, "", 0);
	ADD(":path", 5, path, strlen(path));
	for (char *p = buf; *p;) {
		char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		*eol = 0;
		char *colon = strchr(p, ':');
		if (colon) {
			size_t nl = (size_t)(colon - p);
			for (size_t i = 0; i < nl; i++)
				p[i] = (char)tolower((unsigned char)p[i]);
			char *v = colon + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			static const char *const skip[] = {"connection", "keep-alive",
			                                   "proxy-connection", "transfer-encoding",
			                                   "upgrade"};
			int drop = 0;
			for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
				if (nl == strlen(skip[i]) && memcmp(p, skip[i], nl) == 0)
					drop = 1;
			if (nl == 4 && memcmp(p, "host", 4) == 0)
				out[authority] = (struct lg_hdr){":authority", v, 10, strlen(v)};
			else if (!drop && nl)
				ADD(p, nl, v, strlen(v));
		}
		p = eol + 2;
	}
	if (bodylen || ctype) {
		char *num = buf + ll + 1;
		snprintf(num, 32, "%zu", bodylen);
		ADD("content-length", 14, num, strlen(num));
		ADD("content-type", 12, ctype ? ctype : "text/plain", ctype ? cl : 10);
	}
#undef ADD
	return n;
}

int main(int argc, char **argv)
{
	progname = argv[0];
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];

	long requests = 1, heartbeat = 100;
	int concurrency = 1, tlimit = 0, keepalive = 0, windowsize = 0, verbosity = 0;
	int percentile = 1, nolength = 0, confidence = 1, recverrok = 0, use_html = 0;
	int timeout_s = 30, threads = 1, http11 = 0, requests_set_last = 0, qflag = 0;
	double rate = 0, warmup = 0;
	int h2 = 0, streams = 1, streams_set = 0;
	enum lg_engine engine = LG_ENGINE_AUTO;
	const char *sweep_streams = NULL;
	enum { NO_METH, GET, HEAD, PUT, POST, CUSTOM } method = NO_METH;
	const char *method_str = NULL, *content_type = NULL, *gnuplot = NULL, *csvperc = NULL;
	const char *tablestring = "", *trstring = "", *tdstring = "bgcolor=white";
	const char *myhost = NULL, *json_file = NULL, *sweep = NULL;
	char *proxyhost = NULL, *opt_host = NULL;
	int proxyport = 0, isproxy = 0, opt_useragent = 0, opt_accept = 0, send_body = 0;
	char *postdata = NULL;
	size_t postlen = 0;
	struct sbuf cookie = {0}, auth = {0}, hdrs = {0};
	char tmp[1400];

	enum {
		O_THREADS = 1000,
		O_HTTP11,
		O_RATE,
		O_SWEEP,
		O_WARMUP,
		O_JSON,
		O_HELP,
		O_H2,
		O_STREAMS,
		O_SWEEP_STREAMS,
		O_ENGINE
	};
	static const struct option longopts[] = {
	    {"threads", required_argument, NULL, O_THREADS},
	    {"http1.1", no_argument, NULL, O_HTTP11},
	    {"rate", required_argument, NULL, O_RATE},
	    {"sweep", required_argument, NULL, O_SWEEP},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"json", required_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, O_HELP},
	    {"h2", no_argument, NULL, O_H2},
	    {"streams", required_argument, NULL, O_STREAMS},
	    {"max-streams", required_argument, NULL, O_STREAMS},
	    {"sweep-streams", required_argument, NULL, O_SWEEP_STREAMS},
	    {"engine", required_argument, NULL, O_ENGINE},
	    {NULL, 0, NULL, 0},
	};
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv,
	                        "+:n:c:t:s:b:T:p:u:v:lrkVhwiIx:y:z:C:H:P:A:g:X:de:SqB:m:Z:f:E:",
	                        longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			requests = atoi(optarg);
			requests_set_last = 1;
			if (requests <= 0)
				die("Invalid number of requests\n");
			break;
		case 'k':
			keepalive = 1;
			break;
		case 'q':
			heartbeat = 0;
			qflag = 1;
			break;
		case 'c':
			concurrency = atoi(optarg);
			break;
		case 'b':
			windowsize = atoi(optarg);
			break;
		case 'i':
			if (method != NO_METH)
				die("Cannot mix HEAD with other methods\n");
			method = HEAD;
			break;
		case 'g':
			gnuplot = optarg;
			break;
		case 'd':
			percentile = 0;
			break;
		case 'e':
			csvperc = optarg;
			break;
		case 'S':
			confidence = 0;
			break;
		case 's':
			timeout_s = atoi(optarg);
			break;
		case 'p':
		case 'u':
			if (method != NO_METH)
				die(c == 'p' ? "Cannot mix POST with other methods\n"
				             : "Cannot mix PUT with other methods\n");
			postdata = read_postfile(optarg, &postlen);
			method = c == 'p' ? POST : PUT;
			send_body = 1;
			break;
		case 'l':
			nolength = 1;
			break;
		case 'r':
			recverrok = 1;
			break;
		case 'v':
			verbosity = atoi(optarg);
			break;
		case 't':
			tlimit = atoi(optarg);
			requests = MAX_REQUESTS; /* ab: need to size data array on something */
			requests_set_last = 0;
			break;
		case 'T':
			content_type = optarg;
			break;
		case 'C':
			/* ab's help says repeatable but ab keeps only the last; we
			 * keep them all, in one header as RFC 6265 wants */
			if (cookie.len) {
				cookie.len -= 2; /* drop the CRLF */
				sb_add(&cookie, "; ", optarg, "\r\n");
			} else {
				sb_add(&cookie, "Cookie: ", optarg, "\r\n");
			}
			break;
		case 'A':
		case 'P': {
			const char *a = optarg;
			while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r' || *a == '\f' ||
			       *a == '\v')
				a++;
			if ((strlen(a) + 2) / 3 * 4 + 1 > 1024)
				die(c == 'A' ? "Authentication credentials too long\n"
				             : "Proxy credentials too long\n");
			base64(a, tmp);
			sb_add(&auth,
			       c == 'A' ? "Authorization: Basic " : "Proxy-Authorization: Basic ",
			       tmp, "\r\n");
			break;
		}
		case 'H':
			sb_add(&hdrs, optarg, "\r\n", NULL);
			if (strncasecmp(optarg, "Host:", 5) == 0) {
				const char *h = optarg + 5;
				while (*h == ' ' || *h == '\t')
					h++;
				free(opt_host);
				opt_host = strdup(h);
				size_t l = opt_host ? strlen(opt_host) : 0;
				while (l && (opt_host[l - 1] == ' ' || opt_host[l - 1] == '\t'))
					opt_host[--l] = 0;
			} else if (strncasecmp(optarg, "Accept:", 7) == 0) {
				opt_accept = 1;
			} else if (strncasecmp(optarg, "User-Agent:", 11) == 0) {
				opt_useragent = 1;
			}
			break;
		case 'w':
			use_html = 1;
			break;
		case 'x':
			use_html = 1;
			tablestring = optarg;
			break;
		case 'y':
			use_html = 1;
			trstring = optarg;
			break;
		case 'z':
			use_html = 1;
			tdstring = optarg;
			break;
		case 'X': {
			char *p = strchr(optarg, ':');
			if (p) {
				*p++ = 0;
				proxyport = atoi(p);
			}
			proxyhost = optarg;
			isproxy = 1;
			break;
		}
		case 'h':
		case O_HELP:
			usage();
			break;
		case 'V':
			copyright(0);
			return 0;
		case 'B':
			myhost = optarg;
			break;
		case 'm':
			method = CUSTOM;
			method_str = optarg;
			break;
		case 'Z':
		case 'f':
		case 'E':
		case 'I':
			fprintf(stderr,
			        "%s: TLS options (-%c) are not supported: loadgen speaks plain "
			        "HTTP only\n",
			        progname, c);
			exit(1);
		case O_THREADS:
			threads = atoi(optarg);
			if (threads < 1 || threads > 1024) {
				fprintf(stderr, "%s: --threads wants 1..1024\n", progname);
				usage();
			}
			break;
		case O_HTTP11:
			http11 = 1;
			break;
		case O_RATE:
			rate = atof(optarg);
			if (rate <= 0) {
				fprintf(stderr,
				        "%s: --rate wants a positive number of requests/s\n",
				        progname);
				usage();
			}
			break;
		case O_SWEEP:
			sweep = optarg;
			break;
		case O_WARMUP:
			warmup = atof(optarg);
			if (warmup < 0) {
				fprintf(stderr, "%s: --warmup wants seconds >= 0\n", progname);
				usage();
			}
			break;
		case O_JSON:
			json_file = optarg;
			break;
		case O_H2:
			h2 = 1;
			break;
		case O_STREAMS:
			streams = atoi(optarg);
			streams_set = 1;
			if (streams < 1 || streams > MAX_STREAMS) {
				fprintf(stderr, "%s: --streams wants 1..%d\n", progname,
				        MAX_STREAMS);
				usage();
			}
			break;
		case O_SWEEP_STREAMS:
			sweep_streams = optarg;
			break;
		case O_ENGINE:
			if (strcmp(optarg, "epoll") == 0)
				engine = LG_ENGINE_EPOLL;
			else if (strcmp(optarg, "uring") == 0 || strcmp(optarg, "io_uring") == 0)
				engine = LG_ENGINE_URING;
			else if (strcmp(optarg, "auto") == 0)
				engine = LG_ENGINE_AUTO;
			else {
				fprintf(stderr, "%s: --engine wants epoll, uring or auto\n",
				        progname);
				usage();
			}
			break;
		case ':':
			if (optopt >= 1000 || optopt == 0)
				fprintf(stderr, "%s: option %s requires an argument\n", base,
				        argv[optind - 1]);
			else
				fprintf(stderr, "%s: option requires an argument -- %c\n", base,
				        optopt);
			usage();
			break;
		default:
			if (optopt)
				fprintf(stderr, "%s: illegal option -- %c\n", base, optopt);
			else
				fprintf(stderr, "%s: illegal option %s\n", base, argv[optind - 1]);
			usage();
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: wrong number of arguments\n", progname);
		usage();
	}
	if (method == NO_METH)
		method = GET;
	static const char *const names[] = {"bug", "GET", "HEAD", "PUT", "POST"};
	if (method != CUSTOM)
		method_str = names[method];

	const char *fullurl = argv[optind];
	struct url u;
	enum url_status us = url_parse(fullurl, &u);
	if (us == URL_UNSUPPORTED) {
		fprintf(stderr, "%s: https is not supported: loadgen speaks plain HTTP only\n",
		        progname);
		exit(1);
	}
	if (us != URL_OK) {
		fprintf(stderr, "%s: invalid URL\n", progname);
		usage();
	}
	if (!h2 && (sweep_streams || streams_set)) {
		fprintf(stderr, "%s: %s needs --h2\n", progname,
		        sweep_streams ? "--sweep-streams" : "--streams");
		usage();
	}
	if (h2 && (isproxy || rate > 0)) {
		fprintf(stderr, "%s: --h2 does not support %s\n", progname,
		        isproxy ? "-X (a proxy)" : "--rate");
		exit(1);
	}
	/* --h2 and --rate run on epoll whatever --engine says (README) */
	struct lg_conf want = {.engine = (int)engine, .h2 = h2, .rate = rate};
	char why[160];
	enum lg_engine used = lg_engine_pick(&want, why, sizeof why);
	if (engine == LG_ENGINE_URING && used != LG_ENGINE_URING && why[0]) {
		fprintf(stderr, "%s: --engine uring: io_uring unusable here: %s\n", progname, why);
		exit(1);
	}
	int slevels[MAX_LEVELS], nslevels = 1;
	slevels[0] = streams;
	if (sweep_streams) {
		nslevels = parse_levels(sweep_streams, slevels);
		for (int i = 0; i < nslevels; i++)
			if (slevels[i] > MAX_STREAMS)
				nslevels = -1;
		if (nslevels <= 0) {
			fprintf(stderr, "%s: --sweep-streams wants levels like 1,10,100 (1..%d)\n",
			        progname, MAX_STREAMS);
			usage();
		}
		if (tlimit && !requests_set_last)
			requests = LONG_MAX / 2;
	}
	int levels[MAX_LEVELS], nlevels = 1;
	levels[0] = concurrency;
	if (sweep) {
		nlevels = parse_levels(sweep, levels);
		if (nlevels <= 0) {
			fprintf(stderr, "%s: --sweep wants levels like 1,2,5,10 (1..%d)\n",
			        progname, MAX_CONCURRENCY);
			usage();
		}
		/* beyond ab: a sweep with -t alone is time-limited only, not capped
		 * at the 50000 requests -t implies for ab compatibility */
		if (tlimit && !requests_set_last)
			requests = LONG_MAX / 2;
	}
	for (int i = 0; i < nlevels; i++) {
		if (levels[i] < 0 || levels[i] > MAX_CONCURRENCY || levels[i] == 0) {
			fprintf(stderr, "%s: Invalid Concurrency [Range 0..%d]\n", progname,
			        MAX_CONCURRENCY);
			usage();
		}
		if (levels[i] > requests) {
			fprintf(stderr,
			        "%s: Cannot use concurrency level greater than total number of "
			        "requests\n",
			        progname);
			usage();
		}
	}
	if (heartbeat && requests > 150) {
		heartbeat = requests / 10;
		if (heartbeat < 100)
			heartbeat = 100;
	} else {
		heartbeat = 0;
	}

	/* ab's request, byte for byte (the User-Agent names loadgen) */
	const char *connecthost = isproxy ? proxyhost : u.host;
	int connectport = isproxy ? proxyport : u.port;
	if (!opt_host)
		sb_add(&hdrs, "Host: ", u.host_field, u.colonhost),
		    sb_add(&hdrs, "\r\n", NULL, NULL);
	if (!opt_useragent)
		sb_add(&hdrs, "User-Agent: loadgen/", COROBENCH_VERSION, "\r\n");
	if (!opt_accept)
		sb_add(&hdrs, "Accept: */*\r\n", NULL, NULL);
	const char *conn_hdr = keepalive ? (http11 ? "" : "Connection: Keep-Alive\r\n")
	                                 : (http11 ? "Connection: close\r\n" : "");
	char *request = malloc(REQ_MAX + postlen);
	if (!request)
		die("Could not allocate memory");
	int len;
	if (!send_body)
		len = snprintf(request, REQ_MAX, "%s %s HTTP/1.%d\r\n%s%s%s%s\r\n", method_str,
		               isproxy ? fullurl : u.path, http11, conn_hdr, sb_str(&cookie),
		               sb_str(&auth), sb_str(&hdrs));
	else
		len = snprintf(
		    request, REQ_MAX,
		    "%s %s HTTP/1.%d\r\n%s%s%sContent-length: %zu\r\nContent-type: %s\r\n%s\r\n",
		    method_str, isproxy ? fullurl : u.path, http11, conn_hdr, sb_str(&cookie),
		    sb_str(&auth), postlen, content_type ? content_type : "text/plain",
		    sb_str(&hdrs));
	if (len < 0 || len >= REQ_MAX)
		die("Request too long\n");
	size_t reqlen = (size_t)len;
	struct lg_hdr h2hdrs[MAX_H2_HDRS];
	int nh2hdrs = 0;
	char *h2store = NULL;
	if (h2) {
		struct sbuf lines = {0};
		sb_add(&lines, sb_str(&cookie), sb_str(&auth), sb_str(&hdrs));
		nh2hdrs = h2_headers(
		    h2hdrs, &h2store, method_str, u.path, sb_str(&lines), send_body ? postlen : 0,
		    send_body ? (content_type ? content_type : "text/plain") : NULL);
		free(lines.s);
		if (nh2hdrs < 0)
			die("Request too long\n");
	}

	/* addresses: the target (or proxy), then -B */
	static struct lg_conf cf;
	memset(&cf, 0, sizeof cf);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	char portstr[16];
	if (myhost) {
		if (getaddrinfo(myhost, NULL, &hints, &res) != 0 || !res) {
			fprintf(stderr, "apr_sockaddr_info_get() for %s: %s\n", myhost,
			        "Could not resolve the -B address");
			exit(1);
		}
		memcpy(&cf.bind_addr, res->ai_addr, res->ai_addrlen);
		cf.bind_len = res->ai_addrlen;
		hints.ai_family = res->ai_family;
		freeaddrinfo(res);
		res = NULL;
	}
	snprintf(portstr, sizeof portstr, "%d", connectport);
	int gai = getaddrinfo(connecthost, portstr, &hints, &res);
	copyright(use_html);
	if (!use_html) {
		printf("Benchmarking %s ", u.host);
		if (isproxy)
			printf("[through %s:%d] ", proxyhost, proxyport);
		printf("(be patient)%s", heartbeat ? "\n" : "...");
		fflush(stdout);
	}
	if (verbosity >= 2)
		printf("INFO: %s header == \n---\n%s\n---\n", method_str, request);
	if (gai != 0 || !res) {
		/* APR reports resolver errors as APR_OS_START_EAIERR (670000) + |EAI_*| */
		int code = gai == EAI_SYSTEM ? errno : 670000 + (gai < 0 ? -gai : gai);
		fprintf(stderr, "apr_sockaddr_info_get() for %s: %s (%d)\n", connecthost,
		        gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai), code);
		exit(code);
	}
	for (ai = res; ai && cf.naddrs < LG_MAX_ADDRS; ai = ai->ai_next) {
		memcpy(&cf.addrs[cf.naddrs], ai->ai_addr, ai->ai_addrlen);
		cf.addrlens[cf.naddrs++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (send_body)
		memcpy(request + reqlen, postdata, postlen);

	cf.req = request;
	cf.reqlen = reqlen + (send_body ? postlen : 0);
	cf.threads = threads;
	cf.requests = requests;
	cf.tlimit_us = (uint64_t)tlimit * 1000000u;
	cf.timeout_us = (uint64_t)(timeout_s > 0 ? timeout_s : 30) * 1000000u;
	cf.keepalive = keepalive;
	cf.http11 = http11;
	cf.head = method == HEAD || (method == CUSTOM && strcasecmp(method_str, "HEAD") == 0);
	cf.nolength = nolength;
	cf.recverrok = recverrok;
	cf.verbosity = verbosity;
	cf.windowsize = windowsize;
	cf.heartbeat = heartbeat;
	cf.rate = rate;
	cf.engine = engine;
	if (verbosity >= 2)
		printf("INFO: engine == %s%s%s\n", lg_engine_name(used),
		       why[0] ? ", io_uring: " : "", why);
	cf.gnuplot_fd = -1;
	cf.h2 = h2;
	cf.h2hdrs = h2hdrs;
	cf.h2nhdrs = nh2hdrs;
	cf.body = send_body ? postdata : NULL;
	cf.bodylen = send_body ? postlen : 0;
	struct progress prog = {0};
	if (isatty(2) && !qflag && requests > 1) {
		cf.progress = progress_cb;
		cf.progress_arg = &prog;
		cf.clear_line = 1;
	}
	if (gnuplot) {
		cf.gnuplot_fd =
		    open(gnuplot, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (cf.gnuplot_fd < 0) {
			perror("Cannot open gnuplot output file");
			exit(1);
		}
		static const char head[] = "starttime\tseconds\tctime\tdtime\tttime\twait\n";
		if (write(cf.gnuplot_fd, head, sizeof head - 1) < 0) {
			perror("Cannot open gnuplot output file");
			exit(1);
		}
	}
	/* one descriptor per connection: allow as many as the hard limit does */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_sigint};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct report_opts ro = {
	    .hostname = u.host,
	    .port = u.port,
	    .path = u.path,
	    .nolength = nolength,
	    .keepalive = keepalive || h2, /* HTTP/2: every stream is on a kept connection */
	    .send_body = send_body,
	    .confidence = confidence,
	    .percentile = percentile,
	    .tablestring = tablestring,
	    .trstring = trstring,
	    .tdstring = tdstring,
	};
	json_t *jlevels = json_array();
	int status = 0;
	for (int lj = 0; lj < nlevels * nslevels; lj++) {
		int li = lj / nslevels;
		cf.concurrency = levels[li];
		ro.concurrency = levels[li];
		if (h2) {
			cf.streams = slevels[lj % nslevels];
			ro.h2conns = levels[li];
			ro.streams = cf.streams;
			/* ab's concurrency: requests in flight at a time */
			ro.concurrency = levels[li] * cf.streams;
		}
		if (warmup > 0) {
			struct lg_conf w = cf;
			struct lg_result wr;
			w.requests = LONG_MAX / 2;
			w.tlimit_us = (uint64_t)(warmup * 1e6);
			w.heartbeat = 0;
			w.gnuplot_fd = -1;
			w.verbosity = 0;
			w.progress = NULL;
			w.clear_line = 0;
			if (lg_result_init(&wr))
				die("Could not allocate memory");
			lg_run(&w, &wr);
			int stopped = wr.interrupted, fat = wr.fatal;
			lg_result_free(&wr);
			if (stopped || fat) {
				status = 1;
				break;
			}
		}
		struct lg_result r;
		if (lg_result_init(&r))
			die("Could not allocate memory");
		struct rusage ru0, ru1;
		getrusage(RUSAGE_SELF, &ru0);
		prog = (struct progress){0};
		lg_run(&cf, &r);
		getrusage(RUSAGE_SELF, &ru1);
		if (prog.shown)
			fprintf(stderr, "\r\033[K");
		done_so_far = r.done;
		if (r.fatal) {
			fprintf(stderr, "%s\n", r.fatal_msg);
			if (r.done)
				printf("Total of %ld requests completed\n", r.done);
			status = r.fatal_code & 0xff ? r.fatal_code : 1;
			lg_result_free(&r);
			break;
		}
		if (!r.interrupted) {
			if (heartbeat)
				fprintf(stderr, "Finished %ld requests\n", r.done);
			else
				printf("..done\n");
		}
		if (use_html)
			report_html(stdout, &ro, &r);
		else
			report_text(stdout, &ro, &r);
		if (csvperc && r.done > 0 && report_csv(csvperc, &r) != 0) {
			perror("Cannot open CSV output file");
			status = 1;
		}
		if (!r.interrupted)
			json_array_append_new(
			    jlevels, report_json_level(&r, levels[li], h2 ? cf.streams : 0,
			                               tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime),
			                               tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime)));
		int stopped = r.interrupted;
		lg_result_free(&r);
		fflush(stdout);
		if (stopped) {
			status = 1; /* ab exits 1 after printing the report on SIGINT */
			break;
		}
	}
	if (cf.gnuplot_fd >= 0) {
		close(cf.gnuplot_fd);
		report_gnuplot_sort(gnuplot);
	}
	if (json_file) {
		json_t *doc = json_object();
		json_object_set_new(doc, "schema", json_string("corobench/loadgen/v1"));
		json_object_set_new(doc, "tool", json_string("loadgen"));
		json_object_set_new(doc, "version", json_string(COROBENCH_VERSION));
		json_object_set_new(doc, "url", json_string(fullurl));
		json_object_set_new(doc, "method", json_string(method_str));
		json_object_set_new(doc, "keepalive", json_boolean(keepalive || h2));
		json_object_set_new(doc, "http", json_string(h2 ? "2" : http11 ? "1.1" : "1.0"));
		json_object_set_new(doc, "threads", json_integer(threads));
		json_object_set_new(doc, "engine", json_string(lg_engine_name(used)));
		json_object_set_new(doc, "levels", jlevels);
		if (write_json(json_file, doc) != 0) {
			fprintf(stderr, "%s: cannot write %s: %s\n", progname, json_file,
			        strerror(errno));
			if (!status)
				status = 1;
		}
		json_decref(doc);
	} else {
		json_decref(jlevels);
	}
	free(request);
	free(postdata);
	free(cookie.s);
	free(auth.s);
	free(hdrs.s);
	free(opt_host);
	free(h2store);
	return status;
}
