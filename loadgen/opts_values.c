/* opts_values: the setters of loadgen's option table that read a value
 * beyond a plain number or string (moved out of opts.c, which keeps the
 * table, the parser and --help): times with units for -t and --duration,
 * and the request's method, body file, cookies, headers, credentials and
 * proxy (-i, -p, -u, -m, -C, -H, -A, -P, -X). */
#include "opts_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
enum opts_rc opts_set_tlimit(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	size_t n = strspn(arg, "0123456789");
	if (n == 0 || arg[n] || n > 9) {
		int ab = atoi(arg);
		char ab_reads[64];
		if (ab > 0)
			snprintf(ab_reads, sizeof ab_reads, "%d", ab);
		else
			snprintf(ab_reads, sizeof ab_reads, "%d: no time limit, 50000 requests",
			         ab);
		uint64_t us = parse_duration(arg);
		return opts_fail(
		    o, OPTS_HINT,
		    "%s: -t %s: -t takes whole seconds, as ab's does (ab would read %s); %s%s%s\n",
		    o->prog, arg, ab_reads,
		    us ? "for that time use --duration "
		       : "for a time with a unit use --duration, e.g. --duration 500ms",
		    us ? arg : "", us && arg[strspn(arg, "0123456789.")] == 0 ? "s" : "");
	}
	o->tlimit_us = (uint64_t)atoi(arg) * 1000000u;
	o->duration_set = 0;
	o->requests = MAX_REQUESTS; /* ab: need to size data array on something */
	o->requests_set_last = 0;
	return OPTS_OK;
}

/* --duration: a time with a unit, and no cap on the requests but -n's. */
enum opts_rc opts_set_duration(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->tlimit_us = parse_duration(arg);
	if (!o->tlimit_us)
		return opts_fail(
		    o, OPTS_HINT,
		    "%s: --duration %s: not a time; give e.g. 10s, 1m, 500ms, 1.5s or 2h\n",
		    o->prog, arg);
	o->duration_set = 1;
	return OPTS_OK;
}

enum opts_rc opts_set_head(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op, (void)arg;
	if (o->method != METH_NONE)
		return opts_fail(o, OPTS_FAIL, "Cannot mix HEAD with other methods\n\n");
	o->method = METH_HEAD;
	return OPTS_OK;
}

/* -p and -u: ab reads the file at once */
enum opts_rc opts_set_body(struct lg_opts *o, const struct opt *op, const char *file)
{
	int post = op->letter == 'p';
	if (o->method != METH_NONE)
		return opts_fail(o, OPTS_FAIL, "Cannot mix %s with other methods\n\n",
		                 post ? "POST" : "PUT");
	FILE *f = fopen(file, "rb");
	if (!f)
		return opts_fail(o, OPTS_FAIL, "%s: Could not open POST data file (%s): %s\n",
		                 o->prog, file, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st)) {
		int e = errno;
		fclose(f);
		return opts_fail(o, OPTS_FAIL, "%s: Could not stat POST data file (%s): %s\n",
		                 o->prog, file, strerror(e));
	}
	free(o->postdata);
	o->postdata = malloc((size_t)st.st_size + 1);
	if (!o->postdata) {
		fclose(f);
		return opts_fail(o, OPTS_FAIL, "Could not allocate memory\n");
	}
	if (fread(o->postdata, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		int e = errno;
		fclose(f);
		return opts_fail(o, OPTS_FAIL, "%s: Could not read POST data file: %s\n", o->prog,
		                 strerror(e));
	}
	fclose(f);
	o->postlen = (size_t)st.st_size;
	o->method = post ? METH_POST : METH_PUT;
	o->send_body = 1;
	return OPTS_OK;
}

enum opts_rc opts_set_method(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	o->method = METH_CUSTOM;
	o->method_str = arg;
	return OPTS_OK;
}

enum opts_rc opts_set_cookie(struct lg_opts *o, const struct opt *op, const char *arg)
{
	(void)op;
	if (req_add_cookie(&o->lines, arg))
		return opts_fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

enum opts_rc opts_set_header(struct lg_opts *o, const struct opt *op, const char *arg)
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
		return opts_fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

enum opts_rc opts_set_auth(struct lg_opts *o, const struct opt *op, const char *arg)
{
	int proxy = op->letter == 'P';
	int rc = req_add_auth(&o->lines, proxy, arg);
	if (rc == -2)
		return opts_fail(o, OPTS_FAIL, "%s credentials too long\n\n",
		                 proxy ? "Proxy" : "Authentication");
	if (rc)
		return opts_fail(o, OPTS_FAIL, "Could not allocate memory\n");
	return OPTS_OK;
}

enum opts_rc opts_set_proxy(struct lg_opts *o, const struct opt *op, const char *arg)
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
