/* options.c — the servers' command line, declared once in a table of
 * struct opt_def. The same table parses argv (both "--flag value" and
 * "--flag=value") and prints --help, where each default is read from the
 * destination the table points at, so the help text can never disagree with
 * what the server really does. Errors are one line naming the flag and the
 * accepted range, then a pointer to --help; nothing here exits.
 */
#include "options.h"

#include "app.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <sys/un.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SHARED_MAX 32

void server_opts_default(struct server_opts *o)
{
	*o = (struct server_opts){
	    .listen = "127.0.0.1:8080",
	    .workers = 0,
	    .app = "hello",
	    .upstream = "http://127.0.0.1:9000/",
	    .graceful_timeout = 30,
	    .cpu_affinity = false,
	    .keepalive_timeout = 5,
	    .upstream_timeout_ms = 10000,
	    .max_body = 1024UL * 1024,
	    .backlog = 4096,
	    .quiet = false,
	    .h2_max_streams = 100,
	    .stats_path = NULL,
	    .upstream_max_body = 1024UL * 1024,
	    .unix_path = NULL,
	    .shared_listener = false,
	    .tls_cert = NULL,
	    .tls_key = NULL,
	    .send_at_once = false,
	};
}

/* The shared table, pointing into o. --help and --version have no
 * destination: they are recognised by name. Returns the entry count. */
static size_t shared_table(struct server_opts *o, struct opt_def *t)
{
	const struct opt_def defs[] = {
	    {"listen", OPT_STR, &o->listen, "ADDR",
	     "HOST:PORT, [IPV6]:PORT or :PORT (every IPv4 address)", 0, 0},
	    {"unix", OPT_STR, &o->unix_path, "PATH",
	     "listen on a Unix-domain socket at PATH instead of --listen (a stale socket file "
	     "is replaced, any other file refused; removed at exit)",
	     0, 0},
	    {"shared-listener", OPT_FLAG, &o->shared_listener, NULL,
	     "one listen socket shared by the workers (the kernel wakes whichever waits) "
	     "instead of one SO_REUSEPORT socket per worker, which spreads connections evenly",
	     0, 0},
	    {"tls-cert", OPT_STR, &o->tls_cert, "FILE",
	     "serve TLS (ALPN h2 and http/1.1) with this PEM certificate chain; needs "
	     "--tls-key",
	     0, 0},
	    {"tls-key", OPT_STR, &o->tls_key, "FILE", "the PEM private key of --tls-cert", 0, 0},
	    {"workers", OPT_INT, &o->workers, "N", "worker processes; 0 = one per CPU", 0, 1024},
	    {"app", OPT_STR, &o->app, "NAME", "the app to serve (see the list below)", 0, 0},
	    {"upstream", OPT_STR, &o->upstream, "URL",
	     "what the proxy apps fetch (http:// or https:// URL)", 0, 0},
	    {"graceful-timeout", OPT_UINT, &o->graceful_timeout, "S",
	     "seconds given to requests in flight at shutdown", 0, 86400},
	    {"cpu-affinity", OPT_FLAG, &o->cpu_affinity, NULL,
	     "pin worker i to allowed CPU i (mod their count)", 0, 0},
	    {"send-at-once", OPT_FLAG, &o->send_at_once, NULL,
	     "send each HTTP/1.1 answer as soon as it is made, instead of all of a loop "
	     "turn's answers together at its end (which wakes the client's CPU once per turn)",
	     0, 0},
	    {"keepalive-timeout", OPT_UINT, &o->keepalive_timeout, "S",
	     "seconds an idle keep-alive connection stays open; also the most a request head "
	     "may take, and a client may go without taking answer bytes",
	     0, 3600},
	    {"upstream-timeout", OPT_UINT, &o->upstream_timeout_ms, "MS",
	     "upstream fetch timeout, whole transfer (then 504)", 1, 3600000},
	    {"upstream-max-body", OPT_ULONG, &o->upstream_max_body, "BYTES",
	     "largest upstream answer body a fetch buffers (then 502); each fetch in flight "
	     "may hold this much",
	     1, 1073741824L},
	    {"max-body", OPT_ULONG, &o->max_body, "BYTES",
	     "largest request body accepted (then 413)", 0, 1073741824L},
	    {"backlog", OPT_INT, &o->backlog, "N", "listen(2) backlog", 1, 65535},
	    {"quiet", OPT_FLAG, &o->quiet, NULL, "no informational log lines", 0, 0},
	    {"h2-max-streams", OPT_UINT, &o->h2_max_streams, "N",
	     "SETTINGS_MAX_CONCURRENT_STREAMS per HTTP/2 connection", 1, 10000},
	    {"stats-path", OPT_STR, &o->stats_path, "PATH",
	     "answer GET PATH with the worker's live counters as JSON (off by default; "
	     "SIGUSR1 logs them)",
	     0, 0},
	    {"help", OPT_FLAG, NULL, NULL, "print this help and exit", 0, 0},
	    {"version", OPT_FLAG, NULL, NULL, "print the version and exit", 0, 0},
	};
	size_t n = sizeof(defs) / sizeof(defs[0]);
	memcpy(t, defs, sizeof(defs));
	t[n] = (struct opt_def){0};
	return n;
}

/* ---- value checks ---- */

/* "HOST:PORT", "[V6]:PORT" or ":PORT", port 0..65535 (0: any free port). */
static bool listen_ok(const char *s)
{
	const char *port;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || close - s - 1 <= 0 ||
		    close - s - 1 >= INET6_ADDRSTRLEN)
			return false;
		char host[INET6_ADDRSTRLEN];
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		port = close + 2;
	} else {
		const char *colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return false;
		/* A name or an IPv4 address; the master resolves names. */
		for (const char *p = s; p < colon; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
				return false;
		port = colon + 1;
	}
	size_t plen = strlen(port);
	if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
		return false;
	return strtoul(port, NULL, 10) <= 65535;
}

/* What is wrong with an --upstream URL, or NULL: parsed as libcurl will
 * parse it, then the scheme (http, https), a host and a port in 1..65535
 * (libcurl takes port 0 and fails each fetch; a port over 65535 made every
 * request a 500). */
static const char *upstream_problem(const char *v)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
		return "is not an http:// or https:// URL";
	CURLU *u = curl_url();
	if (!u)
		return "cannot be checked (out of memory)";
	const char *why = NULL;
	char *host = NULL, *port = NULL;
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, v, 0);
	if (rc == CURLUE_BAD_PORT_NUMBER)
		why = "has a bad port (expected 1..65535)";
	else if (rc == CURLUE_NO_HOST)
		why = "has no host";
	else if (rc != CURLUE_OK)
		why = "is not a URL libcurl can fetch";
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
		why = "has no host";
	else if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	         (strtoul(port, NULL, 10) < 1 || strtoul(port, NULL, 10) > 65535))
		why = "has a bad port (expected 1..65535)";
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return why;
}

static void print_apps(FILE *f, const char *sep)
{
	const struct app *const *all = app_all();
	for (size_t i = 0; all[i]; i++)
		fprintf(f, "%s%s", i ? sep : "", all[i]->name);
}

/* Check a string value of the shared table. 0 when fine, else -1 with the
 * message printed. */
static int check_str(const struct server_opts *o, const struct opt_def *d, const char *v,
                     const char *prog)
{
	if (d->dest == &o->listen && !listen_ok(v)) {
		fprintf(stderr,
		        "%s: --listen: '%s' is not an address (HOST:PORT, [IPV6]:PORT or :PORT)\n",
		        prog, v);
		return -1;
	}
	if (d->dest == &o->app && !app_find(v)) {
		fprintf(stderr, "%s: --app: unknown app '%s' (known: ", prog, v);
		print_apps(stderr, ", ");
		fprintf(stderr, ")\n");
		return -1;
	}
	if (d->dest == &o->upstream) {
		const char *why = upstream_problem(v);
		if (why) {
			fprintf(stderr, "%s: --upstream: '%s' %s\n", prog, v, why);
			return -1;
		}
	}
	if (d->dest == &o->unix_path &&
	    (v[0] == '\0' || strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))) {
		fprintf(stderr, "%s: --unix: '%s' is not a socket path (1..%zu bytes)\n", prog, v,
		        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	if ((d->dest == &o->tls_cert || d->dest == &o->tls_key) && v[0] == '\0') {
		fprintf(stderr, "%s: --%s: a file name is needed\n", prog, d->name);
		return -1;
	}
	if (d->dest == &o->stats_path && v[0] != '/') {
		fprintf(stderr, "%s: --stats-path: '%s' must start with '/'\n", prog, v);
		return -1;
	}
	return 0;
}

/* Decimal only: no sign unless the range allows negatives, no spaces, no
 * suffix. Returns 0, -1 (not a number) or -2 (out of range). */
static int parse_number(const char *s, long min, long max, long *out)
{
	if (*s == '\0' || (*s == '-' && min >= 0) || *s == '+' || *s == ' ')
		return -1;
	const char *digits = *s == '-' ? s + 1 : s;
	if (*digits == '\0' || strspn(digits, "0123456789") != strlen(digits))
		return -1;
	errno = 0;
	long v = strtol(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return -2;
	*out = v;
	return 0;
}

/* ---- the engine ---- */

static const struct opt_def *find(const struct opt_def *const tables[2], const char *name,
                                  size_t len)
{
	for (int t = 0; t < 2; t++)
		for (const struct opt_def *d = tables[t]; d && d->name; d++)
			if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
				return d;
	return NULL;
}

static int set_value(const struct server_opts *o, const struct opt_def *d, const char *v,
                     const char *prog)
{
	long n = 0;
	int rc = 0;
	switch (d->kind) {
	case OPT_STR:
		if (check_str(o, d, v, prog) != 0)
			return -1;
		*(const char **)d->dest = v;
		return 0;
	case OPT_INT:
	case OPT_UINT:
	case OPT_ULONG:
		rc = parse_number(v, d->min, d->max, &n);
		break;
	case OPT_FLAG:
		return 0; /* not reached: flags take no value */
	}
	if (rc != 0) {
		fprintf(stderr, "%s: --%s: '%s' %s (%ld..%ld)\n", prog, d->name, v,
		        rc == -1 ? "is not a number" : "is out of range", d->min, d->max);
		return -1;
	}
	if (d->kind == OPT_INT)
		*(int *)d->dest = (int)n;
	else if (d->kind == OPT_UINT)
		*(unsigned *)d->dest = (unsigned)n;
	else
		*(unsigned long *)d->dest = (unsigned long)n;
	return 0;
}

static int bad_usage(const char *prog)
{
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return -1;
}

static void usage_tables(FILE *f, const struct opt_def *const tables[2], const char *prog)
{
	int width = 0;
	for (int t = 0; t < 2; t++)
		for (const struct opt_def *d = tables[t]; d && d->name; d++) {
			int w = 2 + (int)strlen(d->name) +
			        (d->metavar ? 1 + (int)strlen(d->metavar) : 0);
			if (w > width)
				width = w;
		}
	fprintf(f, "Usage: %s [OPTION]...\n\nOptions (--flag VALUE or --flag=VALUE):\n", prog);
	for (int t = 0; t < 2; t++)
		for (const struct opt_def *d = tables[t]; d && d->name; d++) {
			char lhs[96];
			snprintf(lhs, sizeof(lhs), "--%s%s%s", d->name, d->metavar ? " " : "",
			         d->metavar ? d->metavar : "");
			fprintf(f, "  %-*s  %s", width, lhs, d->help ? d->help : "");
			if (!d->dest) {
				fputc('\n', f);
				continue;
			}
			switch (d->kind) {
			case OPT_FLAG:
				fprintf(f, " (default: %s)\n",
				        *(const bool *)d->dest ? "on" : "off");
				break;
			case OPT_INT:
				fprintf(f, " (default: %d)\n", *(const int *)d->dest);
				break;
			case OPT_UINT:
				fprintf(f, " (default: %u)\n", *(const unsigned *)d->dest);
				break;
			case OPT_ULONG:
				fprintf(f, " (default: %lu)\n", *(const unsigned long *)d->dest);
				break;
			case OPT_STR: {
				const char *s = *(const char *const *)d->dest;
				fprintf(f, " (default: %s)\n", s ? s : "none");
				break;
			}
			}
		}
	fprintf(f, "\nApps:\n");
	const struct app *const *all = app_all();
	for (size_t i = 0; all[i]; i++)
		fprintf(f, "  %-12s  %s\n", all[i]->name, all[i]->summary ? all[i]->summary : "");
}

void server_opts_usage(FILE *f, const struct server_opts *o, const struct opt_def *extra,
                       const char *prog)
{
	struct opt_def shared[SHARED_MAX];
	/* The table only reads through dest here. */
	shared_table((struct server_opts *)o, shared);
	const struct opt_def *const tables[2] = {shared, extra};
	usage_tables(f, tables, prog);
}

int server_opts_parse(struct server_opts *o, const struct opt_def *extra, int argc, char **argv,
                      const char *prog, const char *version)
{
	struct opt_def shared[SHARED_MAX];
	shared_table(o, shared);
	const struct opt_def *const tables[2] = {shared, extra};

	/* --help and --version win wherever they are, and show the defaults
	 * rather than whatever came before them on the line. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_tables(stdout, tables, prog);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("%s %s\n", prog, version ? version : "");
			return 1;
		}
	}

	bool only_args = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && strcmp(a, "--") == 0) {
			only_args = true;
			continue;
		}
		if (only_args || a[0] != '-' || a[1] == '\0') {
			fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
			return bad_usage(prog);
		}
		if (a[1] != '-') {
			fprintf(stderr, "%s: unknown flag '%s'\n", prog, a);
			return bad_usage(prog);
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt_def *d = find(tables, name, len);
		if (!d || !d->dest) {
			fprintf(stderr, "%s: unknown flag '--%.*s'\n", prog, (int)len, name);
			return bad_usage(prog);
		}
		if (d->kind == OPT_FLAG) {
			if (eq) {
				fprintf(stderr, "%s: --%s takes no value\n", prog, d->name);
				return bad_usage(prog);
			}
			*(bool *)d->dest = true;
			continue;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			fprintf(stderr, "%s: --%s needs a value (%s)\n", prog, d->name,
			        d->metavar ? d->metavar : "VALUE");
			return bad_usage(prog);
		}
		if (set_value(o, d, v, prog) != 0)
			return bad_usage(prog);
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "%s: --tls-cert and --tls-key go together\n", prog);
		return bad_usage(prog);
	}
	return 0;
}
