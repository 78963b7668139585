/* scenario.c — parse, check and normalize a scenario file (see scenario.h).
 *
 * The checker walks the input once, field by field, and builds the
 * normalized document as it goes. Every problem is appended to an error list
 * that names the file and the JSON path of the field; checking carries on so
 * that one run shows every mistake. Unknown fields are errors too (a typo in
 * "repetitons" must not silently fall back to a default), except keys that
 * start with '_', which are comments. The input may be anything — this code
 * is fuzzed — so nothing here trusts a type, a length or a range.
 */
#include "scenario.h"

#include "app.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 32
#define MAX_LEVELS 64
#define MAX_RATE 10000000 /* requests/s, a rate level's ceiling */
#define MAX_CONNECTIONS 100000
#define MAX_SERVERS 16
#define MAX_CPU 1023
#define PATH_LEN 160

struct scenario {
	json_t *doc; /* normalized */
	const char *name;
};

struct errs {
	const char *origin;
	char *buf;
	size_t len, cap;
	int count;
	bool oom;
};

static void err_add(struct errs *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_append(struct errs *e, const char *text, size_t n)
{
	if (e->oom)
		return;
	if (e->len + n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap : 256;
		while (cap < e->len + n + 1)
			cap *= 2;
		char *nb = realloc(e->buf, cap);
		if (!nb) {
			e->oom = true;
			return;
		}
		e->buf = nb;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, text, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void err_add(struct errs *e, const char *field, const char *fmt, ...)
{
	char line[512];
	int n;
	e->count++;
	if (e->count > MAX_ERRORS) {
		if (e->count == MAX_ERRORS + 1) {
			n = snprintf(line, sizeof(line), "%s: (more errors not shown)\n",
			             e->origin);
			err_append(e, line,
			           (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		}
		return;
	}
	if (field && *field)
		n = snprintf(line, sizeof(line), "%s: %s: ", e->origin, field);
	else
		n = snprintf(line, sizeof(line), "%s: ", e->origin);
	if (n < 0)
		return;
	size_t off = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	if (n > 0)
		off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
	if (off >= sizeof(line) - 1)
		off = sizeof(line) - 2;
	line[off++] = '\n';
	err_append(e, line, off);
}

/* ---- field paths ---- */

/* Paths are for messages: a too-long one is cut and marked, never overflowed. */
static void path_mark_cut(char *out, int n)
{
	if (n < 0 || n >= PATH_LEN)
		memcpy(out + PATH_LEN - 4, "...", 4);
}

static void path_key(char *out, const char *parent, const char *key)
{
	int n;
	if (parent && *parent)
		n = snprintf(out, PATH_LEN, "%s.%s", parent, key);
	else
		n = snprintf(out, PATH_LEN, "%s", key);
	path_mark_cut(out, n);
}

static void path_index(char *out, const char *parent, size_t i)
{
	int n = snprintf(out, PATH_LEN, "%s[%zu]", parent, i);
	path_mark_cut(out, n);
}

/* ---- typed getters: each reports its own error and returns false ---- */

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

static bool want_int(struct errs *e, const char *path, const json_t *v, long long min,
                     long long max, long long *out)
{
	if (!json_is_integer(v)) {
		err_add(e, path, "must be an integer, not %s", type_name(v));
		return false;
	}
	long long x = json_integer_value(v);
	if (x < min || x > max) {
		err_add(e, path, "%lld is out of range (%lld..%lld)", x, min, max);
		return false;
	}
	*out = x;
	return true;
}

static bool want_num(struct errs *e, const char *path, const json_t *v, double min, double max,
                     bool min_exclusive, double *out)
{
	if (!json_is_number(v)) {
		err_add(e, path, "must be a number, not %s", type_name(v));
		return false;
	}
	double x = json_number_value(v);
	if (x < min || x > max || (min_exclusive && x <= min)) {
		err_add(e, path, "%g is out of range (%s%g..%g)", x, min_exclusive ? "above " : "",
		        min, max);
		return false;
	}
	*out = x;
	return true;
}

static bool want_bool(struct errs *e, const char *path, const json_t *v, bool *out)
{
	if (!json_is_boolean(v)) {
		err_add(e, path, "must be true or false, not %s", type_name(v));
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* A string with no NUL inside (jansson allows them), at most maxlen bytes. */
static bool want_str(struct errs *e, const char *path, const json_t *v, size_t minlen,
                     size_t maxlen, const char **out)
{
	if (!json_is_string(v)) {
		err_add(e, path, "must be a string, not %s", type_name(v));
		return false;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n) {
		err_add(e, path, "must not contain a NUL character");
		return false;
	}
	if (n < minlen) {
		err_add(e, path, "must not be empty");
		return false;
	}
	if (n > maxlen) {
		err_add(e, path, "is too long (%zu bytes, at most %zu)", n, maxlen);
		return false;
	}
	*out = s;
	return true;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/* Names end up in file names and chart titles: a safe alphabet, no "..". */
static bool want_name(struct errs *e, const char *path, const json_t *v, const char **out)
{
	const char *s;
	if (!want_str(e, path, v, 1, 64, &s))
		return false;
	for (const char *p = s; *p; p++) {
		if (!is_name_char(*p)) {
			err_add(e, path, "'%s' may only use letters, digits, '-', '_' and '.'", s);
			return false;
		}
	}
	if (s[0] == '.') {
		err_add(e, path, "'%s' must not start with '.'", s);
		return false;
	}
	*out = s;
	return true;
}

/* A request path as the runner sends it: origin-form (RFC 9112 §3.2.1),
 * absolute-path [ "?" query ], each byte a pchar, '/' or '?' (RFC 3986:
 * unreserved, sub-delims, ':', '@', or a well-formed %XX). A space, CR, LF
 * or any control byte would split or corrupt the request line, '#' is never
 * sent, and the others must be percent-encoded. Reports the first fault. */
static bool want_origin_form(struct errs *e, const char *path, const json_t *v,
                             const char **out)
{
	const char *s;
	if (!want_str(e, path, v, 1, 2048, &s))
		return false;
	if (s[0] != '/') {
		err_add(e, path, "must start with '/' (an origin-form request target, RFC 9112 "
		                 "§3.2.1)");
		return false;
	}
	static const char allowed[] = "-._~!$&'()*+,;=:@/?";
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || (c < 0x80 && strchr(allowed, c)))
			continue;
		static const char *const ctl[] = {[' '] = "a space", ['\r'] = "a CR",
		                                  ['\n'] = "an LF", ['\t'] = "a tab"};
		if (c == '%') {
			if (isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
				i += 2;
				continue;
			}
			err_add(e, path,
			        "'%%' at offset %zu is not followed by two hex digits (percent-encode "
			        "a '%%' itself as %%25)",
			        i);
		} else if (c <= ' ' || c == 0x7f) {
			if (c < sizeof ctl / sizeof ctl[0] && ctl[c])
				err_add(e, path,
				        "%s at offset %zu: a request target cannot hold it (it would "
				        "split the request line); percent-encode it as %%%02X",
				        ctl[c], i, c);
			else
				err_add(e, path,
				        "control byte 0x%02x at offset %zu: a request target cannot "
				        "hold it; percent-encode it as %%%02X",
				        c, i, c);
		} else if (c == '#') {
			err_add(e, path,
			        "'#' at offset %zu: a fragment is never sent in a request target; "
			        "percent-encode it as %%23 if it belongs to the path",
			        i);
		} else if (c >= 0x80) {
			err_add(e, path,
			        "byte 0x%02x at offset %zu is not ASCII: percent-encode it (%%%02X)", c,
			        i, c);
		} else {
			err_add(e, path,
			        "'%c' at offset %zu is not allowed in a request target unencoded; "
			        "percent-encode it as %%%02X",
			        c, i, c);
		}
		return false;
	}
	*out = s;
	return true;
}

/* ---- object walking: known keys, unknown keys are errors ---- */

static bool check_keys(struct errs *e, const char *path, const json_t *obj,
                       const char *const *known)
{
	const char *key;
	json_t *v;
	bool ok = true;
	json_object_foreach((json_t *)obj, key, v)
	{
		(void)v;
		if (key[0] == '_')
			continue; /* comment */
		bool found = false;
		for (size_t i = 0; known[i]; i++)
			if (strcmp(key, known[i]) == 0)
				found = true;
		if (!found) {
			char p[PATH_LEN];
			char shown[48];
			snprintf(shown, sizeof(shown), "%s", key);
			for (char *c = shown; *c; c++)
				if ((unsigned char)*c < 0x20)
					*c = '?';
			path_key(p, path, shown);
			err_add(e, p, "unknown field (known: see scenarios/README.md)");
			ok = false;
		}
	}
	return ok;
}

/* ---- CPU lists: "0", "0-3", "0,2-3" or [0, 2, 3] ---- */

/* Parses spec into a sorted, duplicate-free array of CPU numbers. */
static json_t *parse_cpu_list(struct errs *e, const char *path, const json_t *v)
{
	bool seen[MAX_CPU + 1];
	memset(seen, 0, sizeof(seen));
	if (json_is_array(v)) {
		size_t i;
		json_t *x;
		if (json_array_size(v) == 0) {
			err_add(e, path, "must list at least one CPU");
			return NULL;
		}
		json_array_foreach(v, i, x)
		{
			char p[PATH_LEN];
			long long c;
			path_index(p, path, i);
			if (!want_int(e, p, x, 0, MAX_CPU, &c))
				return NULL;
			seen[c] = true;
		}
	} else if (json_is_string(v)) {
		const char *s;
		if (!want_str(e, path, v, 1, 256, &s))
			return NULL;
		const char *p = s;
		for (;;) {
			char *end;
			if (*p < '0' || *p > '9') {
				err_add(e, path,
				        "bad CPU list '%s': expected a CPU number at offset %td "
				        "(form: 0 or 0-3 or 0,2-3)",
				        s, p - s);
				return NULL;
			}
			errno = 0;
			unsigned long a = strtoul(p, &end, 10), b = a;
			if (errno || a > MAX_CPU) {
				err_add(e, path, "bad CPU list '%s': CPU number above %d", s,
				        MAX_CPU);
				return NULL;
			}
			p = end;
			if (*p == '-') {
				p++;
				if (*p < '0' || *p > '9') {
					err_add(
					    e, path,
					    "bad CPU list '%s': a range needs an end at offset %td",
					    s, p - s);
					return NULL;
				}
				errno = 0;
				b = strtoul(p, &end, 10);
				if (errno || b > MAX_CPU) {
					err_add(e, path, "bad CPU list '%s': CPU number above %d",
					        s, MAX_CPU);
					return NULL;
				}
				if (b < a) {
					err_add(e, path,
					        "bad CPU list '%s': range %lu-%lu runs backwards",
					        s, a, b);
					return NULL;
				}
				p = end;
			}
			for (unsigned long c = a; c <= b; c++)
				seen[c] = true;
			if (*p == '\0')
				break;
			if (*p != ',') {
				err_add(e, path, "bad CPU list '%s': unexpected '%c' at offset %td",
				        s, *p, p - s);
				return NULL;
			}
			p++;
		}
	} else {
		err_add(
		    e, path,
		    "must be a CPU list string like \"0,2-3\" or an array of CPU numbers, not %s",
		    type_name(v));
		return NULL;
	}
	json_t *out = json_array();
	if (!out)
		return NULL;
	for (int c = 0; c <= MAX_CPU; c++)
		if (seen[c])
			json_array_append_new(out, json_integer(c));
	return out;
}

/* ---- the answer a server must give ---- */

static json_t *parse_expect(struct errs *e, const char *path, const json_t *v, bool has_upstream)
{
	static const char *const known[] = {"status",      "body",        "body_upstream",
	                                    "body_prefix", "body_length", NULL};
	if (!json_is_object(v)) {
		err_add(e, path, "must be an object, not %s", type_name(v));
		return NULL;
	}
	check_keys(e, path, v, known);
	char p[PATH_LEN];
	json_t *out = json_pack("{s:i,s:n,s:n,s:n,s:n}", "status", 200, "body", "body_upstream",
	                        "body_prefix", "body_length");
	if (!out)
		return NULL;
	json_t *x;
	long long n;
	const char *s;
	if ((x = json_object_get(v, "status"))) {
		path_key(p, path, "status");
		if (want_int(e, p, x, 100, 599, &n))
			json_object_set_new(out, "status", json_integer(n));
	}
	bool body = false, body_up = false;
	if ((x = json_object_get(v, "body"))) {
		path_key(p, path, "body");
		if (want_str(e, p, x, 0, 65536, &s)) {
			json_object_set_new(out, "body", json_string(s));
			body = true;
		}
	}
	if ((x = json_object_get(v, "body_upstream"))) {
		path_key(p, path, "body_upstream");
		if (want_int(e, p, x, 1, 64, &n)) {
			json_object_set_new(out, "body_upstream", json_integer(n));
			body_up = true;
			if (!has_upstream)
				err_add(e, p, "needs an upstream, and the scenario has none");
		}
	}
	if (body && body_up) {
		path_key(p, path, "body_upstream");
		err_add(e, p, "give either body or body_upstream, not both");
	}
	if ((x = json_object_get(v, "body_prefix"))) {
		path_key(p, path, "body_prefix");
		if (want_str(e, p, x, 1, 65536, &s))
			json_object_set_new(out, "body_prefix", json_string(s));
	}
	if ((x = json_object_get(v, "body_length"))) {
		path_key(p, path, "body_length");
		if (want_int(e, p, x, 0, 1LL << 32, &n))
			json_object_set_new(out, "body_length", json_integer(n));
	}
	return out;
}

/* ---- placeholders in external servers' commands ---- */

static const char *const placeholders[] = {
    "host", "port", "listen", "upstream", "workers", "source", "build", "tmp", "app", "name", NULL};

/* "{name}" must be a known placeholder; "{{" and "}}" are literal braces. */
static bool check_placeholders(struct errs *e, const char *path, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '{' && p[1] == '{') {
			p++;
			continue;
		}
		if (*p == '}' && p[1] == '}') {
			p++;
			continue;
		}
		if (*p == '}') {
			err_add(e, path, "unmatched '}' (write '}}' for a literal brace)");
			return false;
		}
		if (*p != '{')
			continue;
		const char *end = strchr(p + 1, '}');
		if (!end) {
			err_add(e, path, "unmatched '{' (write '{{' for a literal brace)");
			return false;
		}
		size_t n = (size_t)(end - p - 1);
		bool found = false;
		for (size_t i = 0; placeholders[i]; i++)
			if (strlen(placeholders[i]) == n && memcmp(placeholders[i], p + 1, n) == 0)
				found = true;
		if (!found) {
			err_add(e, path,
			        "unknown placeholder '{%.*s}' (known: {host} {port} {listen} "
			        "{upstream} {workers} {source} {build} {tmp} {app} {name})",
			        (int)(n > 40 ? 40 : n), p + 1);
			return false;
		}
		p = end;
	}
	return true;
}

static json_t *parse_str_array(struct errs *e, const char *path, const json_t *v, size_t min,
                               size_t max, bool placeholders_ok)
{
	if (!json_is_array(v)) {
		err_add(e, path, "must be an array of strings, not %s", type_name(v));
		return NULL;
	}
	if (json_array_size(v) < min) {
		err_add(e, path, "must have at least %zu element%s", min, min == 1 ? "" : "s");
		return NULL;
	}
	if (json_array_size(v) > max) {
		err_add(e, path, "has too many elements (at most %zu)", max);
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	json_t *x;
	bool ok = true;
	json_array_foreach(v, i, x)
	{
		char p[PATH_LEN];
		const char *s;
		path_index(p, path, i);
		if (!want_str(e, p, x, 0, 4096, &s) ||
		    (placeholders_ok && !check_placeholders(e, p, s))) {
			ok = false;
			continue;
		}
		json_array_append_new(out, json_string(s));
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* An optional command at v's key: an array of strings with placeholders,
 * or JSON null when it is absent or wrong (the error is reported). */
static json_t *parse_command(struct errs *e, const char *path, const json_t *v, const char *key,
                             size_t max)
{
	char p[PATH_LEN];
	path_key(p, path, key);
	const json_t *x = json_object_get(v, key);
	json_t *a = x ? parse_str_array(e, p, x, 1, max, true) : NULL;
	return a ? a : json_null();
}

static const char *const signals[] = {"SIGTERM", "SIGINT",  "SIGQUIT", "SIGHUP",
                                      "SIGKILL", "SIGUSR1", "SIGUSR2", NULL};

static json_t *parse_signal(struct errs *e, const char *path, const json_t *v)
{
	const char *s;
	if (!want_str(e, path, v, 1, 16, &s))
		return NULL;
	const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; signals[i]; i++)
		if (strcmp(signals[i] + 3, bare) == 0)
			return json_string(signals[i]);
	err_add(e, path,
	        "unknown signal '%s' (known: SIGTERM SIGINT SIGQUIT SIGHUP SIGKILL SIGUSR1 "
	        "SIGUSR2)",
	        s);
	return NULL;
}

/* ---- the protocol loadgen speaks to a server ---- */

/* "h1" (HTTP/1.1, the default) or "h2" (cleartext HTTP/2 with prior
 * knowledge, loadgen --h2). Returns 1 for h2, 0 for h1, -1 on error. */
static int parse_protocol(struct errs *e, const char *path, const json_t *v)
{
	const char *s;
	if (!want_str(e, path, v, 1, 16, &s))
		return -1;
	if (strcmp(s, "h1") == 0)
		return 0;
	if (strcmp(s, "h2") == 0)
		return 1;
	err_add(e, path, "unknown protocol '%s' (one of: h1, h2)", s);
	return -1;
}

/* Appends name to the array of strings unless it is there already. */
static void append_unique(json_t *arr, const char *name)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
	{
		if (json_is_string(x) && strcmp(json_string_value(x), name) == 0)
			return;
	}
	json_array_append_new(arr, json_string(name));
}

/* ---- one server ---- */

enum kind { K_CORO, K_ASYNC, K_NGINX, K_EXTERNAL, K_BAD };
static const char *const kind_names[] = {"coro", "async", "nginx", "external"};

struct defaults {
	bool has_upstream;
	bool keepalive;
	long long workers;
	const char *path;
	const json_t *expect; /* normalized */
	bool h2;              /* the top-level protocol is h2 */
	bool h2load_ref;      /* the top-level h2load_reference */
	bool sweep_streams;   /* levels are streams per connection */
};

static json_t *parse_server(struct errs *e, const char *path, const json_t *v,
                            const struct defaults *d)
{
	static const char *const known[] = {
	    "name",
	    "kind",
	    "app",
	    "workers",
	    "args",
	    "path",
	    "expect",
	    "start",
	    "ready_url",
	    "stop_signal",
	    "cwd",
	    "env",
	    "requires",
	    "missing_hint",
	    "startup_timeout_s",
	    "keepalive",
	    "protocol",
	    "h2load_reference",
	    "style",
	    "optional",
	    "build",
	    "runtime_version",
	    NULL,
	};
	char p[PATH_LEN];
	if (!json_is_object(v)) {
		err_add(e, path, "must be an object, not %s", type_name(v));
		return NULL;
	}
	check_keys(e, path, v, known);

	enum kind kind = K_BAD;
	const char *s;
	json_t *x = json_object_get(v, "kind");
	path_key(p, path, "kind");
	if (!x) {
		err_add(e, p, "missing (one of: coro, async, nginx, external)");
	} else if (want_str(e, p, x, 1, 64, &s)) {
		for (int k = 0; k < K_BAD; k++)
			if (strcmp(s, kind_names[k]) == 0)
				kind = (enum kind)k;
		if (kind == K_BAD)
			err_add(e, p,
			        "unknown server kind '%s' (one of: coro, async, nginx, external)",
			        s);
	}
	if (kind == K_BAD)
		return NULL;

	json_t *out = json_object();
	json_object_set_new(out, "kind", json_string(kind_names[kind]));

	/* name: defaults to the kind, except for external servers */
	path_key(p, path, "name");
	if ((x = json_object_get(v, "name"))) {
		if (want_name(e, p, x, &s))
			json_object_set_new(out, "name", json_string(s));
	} else if (kind == K_EXTERNAL) {
		err_add(e, p, "missing (an external server needs a name)");
	} else {
		json_object_set_new(out, "name", json_string(kind_names[kind]));
	}

	/* app: a registry name for the built-in workers, a label otherwise */
	path_key(p, path, "app");
	x = json_object_get(v, "app");
	if (kind == K_CORO || kind == K_ASYNC) {
		if (!x) {
			err_add(e, p, "missing (the app the %s server runs)", kind_names[kind]);
		} else if (want_str(e, p, x, 1, 64, &s)) {
			const struct app *a = app_find(s);
			if (!a) {
				char list[256] = "";
				size_t off = 0;
				for (const struct app *const *it = app_all(); *it; it++) {
					int n = snprintf(list + off, sizeof(list) - off, "%s%s",
					                 off ? " " : "", (*it)->name);
					if (n < 0 || (size_t)n >= sizeof(list) - off)
						break;
					off += (size_t)n;
				}
				err_add(e, p, "unknown app '%s' (known: %s)", s, list);
			} else {
				json_object_set_new(out, "app", json_string(s));
				if ((a->flags & APP_USES_UPSTREAM) && !d->has_upstream)
					err_add(
					    e, p,
					    "app '%s' fetches the upstream, and the scenario has "
					    "no upstream",
					    s);
			}
		}
	} else if (kind == K_NGINX) {
		if (x) {
			if (want_str(e, p, x, 1, 64, &s) && strcmp(s, "hello") != 0)
				err_add(e, p,
				        "nginx serves only 'hello' (a fixed answer), not '%s'", s);
		}
		json_object_set_new(out, "app", json_string("hello"));
	} else {
		if (!x)
			err_add(e, p, "missing (a label for what the external server runs)");
		else if (want_name(e, p, x, &s))
			json_object_set_new(out, "app", json_string(s));
	}

	long long n;
	path_key(p, path, "workers");
	json_object_set_new(out, "workers", json_integer(d->workers));
	if ((x = json_object_get(v, "workers")) && want_int(e, p, x, 0, 1024, &n))
		json_object_set_new(out, "workers", json_integer(n));

	bool h2 = d->h2;
	path_key(p, path, "protocol");
	if ((x = json_object_get(v, "protocol"))) {
		int r = parse_protocol(e, p, x);
		if (r >= 0)
			h2 = r == 1;
	}
	if (!h2 && d->sweep_streams)
		err_add(e, p,
		        "is h1, but the scenario sweeps streams per connection (\"sweep\": "
		        "\"streams\"), which needs h2");
	json_object_set_new(out, "protocol", json_string(h2 ? "h2" : "h1"));

	/* h2load's figures on the same server, as a reference series */
	bool ref = d->h2load_ref && h2;
	path_key(p, path, "h2load_reference");
	if ((x = json_object_get(v, "h2load_reference")) && want_bool(e, p, x, &ref) && ref && !h2)
		err_add(e, p, "needs protocol h2 (h2load is run over HTTP/2 only)");
	json_object_set_new(out, "h2load_reference", json_boolean(ref && h2));

	bool ka = d->keepalive;
	path_key(p, path, "keepalive");
	if ((x = json_object_get(v, "keepalive")))
		want_bool(e, p, x, &ka);
	json_object_set_new(out, "keepalive", json_boolean(ka));

	/* How a request's wait is written: the charts group rows by it. The
	 * built-in workers are labelled by their way of waiting. */
	path_key(p, path, "style");
	json_t *style = kind == K_CORO    ? json_string("implicit")
	                : kind == K_ASYNC ? json_string("explicit")
	                                  : json_null();
	if ((x = json_object_get(v, "style")) && want_str(e, p, x, 1, 16, &s)) {
		if (strcmp(s, "implicit") == 0 || strcmp(s, "explicit") == 0) {
			json_decref(style);
			style = json_string(s);
		} else {
			err_add(e, p, "unknown style '%s' (one of: implicit, explicit)", s);
		}
	}
	json_object_set_new(out, "style", style);

	bool optional = false;
	path_key(p, path, "optional");
	if ((x = json_object_get(v, "optional")))
		want_bool(e, p, x, &optional);
	json_object_set_new(out, "optional", json_boolean(optional));

	path_key(p, path, "args");
	if ((x = json_object_get(v, "args"))) {
		if (kind == K_EXTERNAL || kind == K_NGINX) {
			err_add(e, p,
			        "only for coro and async servers (an external server's "
			        "command is in start)");
		} else {
			json_t *a = parse_str_array(e, p, x, 0, 64, true);
			if (a)
				json_object_set_new(out, "args", a);
		}
	}
	if (!json_object_get(out, "args"))
		json_object_set_new(out, "args", json_array());

	path_key(p, path, "path");
	json_object_set_new(out, "path", json_string(d->path));
	if ((x = json_object_get(v, "path")) && want_origin_form(e, p, x, &s))
		json_object_set_new(out, "path", json_string(s));

	path_key(p, path, "expect");
	if ((x = json_object_get(v, "expect"))) {
		json_t *ex = parse_expect(e, p, x, d->has_upstream);
		if (ex)
			json_object_set_new(out, "expect", ex);
	}
	if (!json_object_get(out, "expect") && d->expect)
		json_object_set_new(out, "expect", json_deep_copy(d->expect));

	/* external-only fields */
	static const char *const ext_only[] = {
	    "start",        "ready_url", "stop_signal",     "cwd", "env", "requires",
	    "missing_hint", "build",     "runtime_version", NULL};
	if (kind != K_EXTERNAL) {
		for (size_t i = 0; ext_only[i]; i++) {
			if (json_object_get(v, ext_only[i])) {
				path_key(p, path, ext_only[i]);
				err_add(e, p, "only for external servers (kind is '%s')",
				        kind_names[kind]);
			}
		}
	}
	json_t *start = json_null(), *ready = json_null(), *cwd = json_null();
	json_t *build = json_null(), *runtime = json_null();
	json_t *sig = json_string(kind == K_EXTERNAL ? "SIGTERM" : "SIGTERM");
	json_t *env = json_object(), *req = json_array(), *hint = json_null();
	if (kind == K_NGINX) {
		json_array_append_new(req, json_string("nginx"));
		json_decref(hint);
		hint = json_string("run scripts/deps (it installs nginx-light)");
		json_decref(sig);
		sig = json_string("SIGQUIT"); /* nginx's graceful stop */
	}
	if (kind == K_EXTERNAL) {
		path_key(p, path, "start");
		if (!(x = json_object_get(v, "start"))) {
			err_add(e, p, "missing (the command that starts the server, as an array)");
		} else {
			json_t *a = parse_str_array(e, p, x, 1, 256, true);
			if (a) {
				json_decref(start);
				start = a;
			}
		}
		/* optional commands: one that builds the server before it starts,
		 * one whose first line of output names its runtime and version */
		json_decref(build);
		build = parse_command(e, path, v, "build", 256);
		json_decref(runtime);
		runtime = parse_command(e, path, v, "runtime_version", 64);
		path_key(p, path, "ready_url");
		if (!(x = json_object_get(v, "ready_url"))) {
			err_add(e, p, "missing (a URL that answers once the server is ready)");
		} else if (want_str(e, p, x, 1, 2048, &s) && check_placeholders(e, p, s)) {
			if (strncmp(s, "http://", 7) != 0)
				err_add(e, p, "must start with http://");
			else {
				json_decref(ready);
				ready = json_string(s);
			}
		}
		path_key(p, path, "stop_signal");
		if ((x = json_object_get(v, "stop_signal"))) {
			json_t *sg = parse_signal(e, p, x);
			if (sg) {
				json_decref(sig);
				sig = sg;
			}
		}
		path_key(p, path, "cwd");
		if ((x = json_object_get(v, "cwd")) && want_str(e, p, x, 1, 1024, &s) &&
		    check_placeholders(e, p, s)) {
			json_decref(cwd);
			cwd = json_string(s);
		}
		path_key(p, path, "env");
		if ((x = json_object_get(v, "env"))) {
			if (!json_is_object(x)) {
				err_add(e, p, "must be an object of strings, not %s", type_name(x));
			} else {
				const char *k;
				json_t *val;
				json_object_foreach(x, k, val)
				{
					char pk[PATH_LEN];
					char shown[48];
					snprintf(shown, sizeof(shown), "%s", k);
					path_key(pk, p, shown);
					bool bad_key = k[0] == '\0' || strchr(k, '=') != NULL;
					for (const char *c = k; *c; c++)
						if ((unsigned char)*c < 0x20)
							bad_key = true;
					if (bad_key) {
						err_add(e, pk, "bad variable name");
						continue;
					}
					if (want_str(e, pk, val, 0, 4096, &s) &&
					    check_placeholders(e, pk, s))
						json_object_set_new(env, k, json_string(s));
				}
			}
		}
		path_key(p, path, "requires");
		if ((x = json_object_get(v, "requires"))) {
			json_t *a = parse_str_array(e, p, x, 0, 32, false);
			if (a) {
				size_t i;
				json_t *it;
				json_array_foreach(a, i, it)
				{
					const char *r = json_string_value(it);
					if (r[0] == '\0') {
						char pi[PATH_LEN];
						path_index(pi, p, i);
						err_add(e, pi, "must not be empty");
					}
				}
				json_decref(req);
				req = a;
			}
		}
		path_key(p, path, "missing_hint");
		if ((x = json_object_get(v, "missing_hint")) && want_str(e, p, x, 1, 512, &s)) {
			json_decref(hint);
			hint = json_string(s);
		}
	}
	json_object_set_new(out, "start", start);
	json_object_set_new(out, "build", build);
	json_object_set_new(out, "runtime_version", runtime);
	json_object_set_new(out, "ready_url", ready);
	json_object_set_new(out, "stop_signal", sig);
	json_object_set_new(out, "cwd", cwd);
	json_object_set_new(out, "env", env);
	/* an h2 server is verified with curl --http2-prior-knowledge */
	if (h2) {
		append_unique(req, "curl");
		if (ref)
			append_unique(req, "h2load");
		if (json_is_null(hint))
			hint =
			    json_string("run scripts/deps (it installs curl and nghttp2-client)");
	}
	json_object_set_new(out, "requires", req);
	json_object_set_new(out, "missing_hint", hint);

	double t = 20;
	path_key(p, path, "startup_timeout_s");
	if ((x = json_object_get(v, "startup_timeout_s")))
		want_num(e, p, x, 0, 600, true, &t);
	json_object_set_new(out, "startup_timeout_s", json_real(t));
	return out;
}

/* ---- rate levels (the open model) ---- */

/* rates: requests/s, whole, rising; appended to levels. */
static void parse_rates(struct errs *e, const json_t *x, json_t *levels)
{
	if (!json_is_array(x)) {
		err_add(e, "rates", "must be an array of rates (requests/s), not %s", type_name(x));
		return;
	}
	if (json_array_size(x) == 0 || json_array_size(x) > MAX_LEVELS) {
		err_add(e, "rates", "must have 1 to %d rates, not %zu", MAX_LEVELS,
		        json_array_size(x));
		return;
	}
	size_t i;
	json_t *y;
	long long prev = 0, n;
	json_array_foreach(x, i, y)
	{
		char p[PATH_LEN];
		path_index(p, "rates", i);
		if (!want_int(e, p, y, 1, MAX_RATE, &n))
			continue;
		if (n <= prev)
			err_add(e, p, "%lld must be above the previous rate %lld (rates rise)", n,
			        prev);
		prev = n;
		json_array_append_new(levels, json_integer(n));
	}
}

/* connections with rates: one number for every rate, or one per rate. The
 * normalized array, one per rate (null after an error). */
static json_t *parse_rate_connections(struct errs *e, const json_t *x, const json_t *levels)
{
	size_t nl = json_array_size(levels);
	long long n;
	if (!x) {
		err_add(e, "connections",
		        "missing (with rates: the connections that carry them, one number or "
		        "one per rate)");
		return json_null();
	}
	json_t *out = json_array();
	if (json_is_array(x)) {
		if (json_array_size(x) != nl) {
			err_add(e, "connections",
			        "has %zu numbers for %zu rates (give one per rate, or one number)",
			        json_array_size(x), nl);
			json_decref(out);
			return json_null();
		}
		size_t i;
		json_t *y;
		json_array_foreach(x, i, y)
		{
			char p[PATH_LEN];
			path_index(p, "connections", i);
			if (want_int(e, p, y, 1, MAX_CONNECTIONS, &n))
				json_array_append_new(out, json_integer(n));
		}
	} else if (json_is_integer(x)) {
		if (want_int(e, "connections", x, 1, MAX_CONNECTIONS, &n))
			for (size_t i = 0; i < nl; i++)
				json_array_append_new(out, json_integer(n));
	} else {
		err_add(e, "connections",
		        "must be a number of connections or an array of one per rate, not %s",
		        type_name(x));
	}
	if (json_array_size(out) != nl) {
		json_decref(out);
		return json_null();
	}
	return out;
}

/* Little's law: a rate R whose requests each wait at least the upstream's
 * D ms keeps R*D/1000 requests in flight on average, and C connections
 * carry at most C (times the streams over h2) at a time: fewer cannot keep
 * the rate however fast the server, so such a level would measure the
 * scenario, not the server. Checked where a built-in server's app waits on
 * the upstream. */
static void check_little(struct errs *e, const json_t *out, const json_t *levels,
                         const json_t *conns, const json_t *servers)
{
	const json_t *up = json_object_get(out, "upstream");
	double delay =
	    json_is_object(up) ? (double)json_integer_value(json_object_get(up, "delay_ms")) : 0;
	if (delay <= 0 || !json_is_array(conns))
		return;
	long long streams = 1;
	bool waits = false;
	for (size_t i = 0; i < json_array_size(servers); i++) {
		const json_t *srv = json_array_get(servers, i);
		const char *kind = json_string_value(json_object_get(srv, "kind"));
		const char *app = json_string_value(json_object_get(srv, "app"));
		const struct app *a = app ? app_find(app) : NULL;
		if (kind && (strcmp(kind, "coro") == 0 || strcmp(kind, "async") == 0) && a &&
		    (a->flags & APP_USES_UPSTREAM))
			waits = true;
	}
	if (json_is_integer(json_object_get(out, "streams")))
		streams = json_integer_value(json_object_get(out, "streams"));
	if (!waits)
		return;
	for (size_t i = 0; i < json_array_size(levels); i++) {
		long long r = json_integer_value(json_array_get(levels, i));
		long long c = json_integer_value(json_array_get(conns, i));
		double need = (double)r * delay / 1000.0;
		if ((double)(c * streams) < need) {
			char p[PATH_LEN];
			path_index(p, "connections", i);
			err_add(e, p,
			        "%lld connection%s cannot carry %lld requests/s through a %g ms "
			        "upstream: Little's law keeps %.0f requests in flight (give at "
			        "least that many connections%s)",
			        c, c == 1 ? "" : "s", r, delay, need,
			        streams > 1 ? " x streams" : "");
		}
	}
}

/* ---- the whole scenario ---- */

static json_t *check_doc(struct errs *e, const json_t *root)
{
	static const char *const known[] = {
	    "schema",      "name",       "purpose",     "upstream",  "levels",           "seconds",
	    "requests",    "warmup_s",   "repetitions", "keepalive", "loadgen_threads",  "timeout_s",
	    "workers",     "cpus",       "path",        "expect",    "servers",          "plot_level",
	    "protocol",    "sweep",      "connections", "streams",   "h2load_reference", "rates",
	    "knee_factor", "load_hosts", "load_ranks",  "interleave", NULL,
	};
	if (!json_is_object(root)) {
		err_add(e, "", "the scenario must be a JSON object, not %s", type_name(root));
		return NULL;
	}
	check_keys(e, "", root, known);
	json_t *out = json_object();
	json_object_set_new(out, "schema", json_string(SCENARIO_SCHEMA));
	json_t *x;
	const char *s;
	long long n;
	double d;

	if ((x = json_object_get(root, "schema")) && want_str(e, "schema", x, 1, 64, &s) &&
	    strcmp(s, SCENARIO_SCHEMA) != 0)
		err_add(e, "schema", "'%s' is not %s", s, SCENARIO_SCHEMA);

	if (!(x = json_object_get(root, "name")))
		err_add(e, "name", "missing");
	else if (want_name(e, "name", x, &s))
		json_object_set_new(out, "name", json_string(s));

	if (!(x = json_object_get(root, "purpose")))
		err_add(e, "purpose", "missing (one sentence: what this scenario shows)");
	else if (want_str(e, "purpose", x, 1, 4096, &s))
		json_object_set_new(out, "purpose", json_string(s));

	/* upstream */
	bool has_upstream = false;
	json_object_set_new(out, "upstream", json_null());
	if ((x = json_object_get(root, "upstream")) && !json_is_null(x)) {
		static const char *const ukeys[] = {"delay_ms", "size", NULL};
		if (!json_is_object(x)) {
			err_add(e, "upstream", "must be an object or null, not %s", type_name(x));
		} else {
			check_keys(e, "upstream", x, ukeys);
			long long delay = 0, size = 1024;
			json_t *y;
			if ((y = json_object_get(x, "delay_ms")))
				want_int(e, "upstream.delay_ms", y, 0, 600000, &delay);
			if ((y = json_object_get(x, "size")))
				want_int(e, "upstream.size", y, 0, 64LL << 20, &size);
			json_object_set_new(out, "upstream",
			                    json_pack("{s:I,s:I}", "delay_ms", (json_int_t)delay,
			                              "size", (json_int_t)size));
			has_upstream = true;
		}
	}

	/* levels: concurrency (the closed model), or rates (the open model) */
	json_t *levels = json_array();
	const json_t *rates_in = json_object_get(root, "rates");
	bool rate_sweep = rates_in != NULL;
	if (rate_sweep) {
		if (json_object_get(root, "levels"))
			err_add(e, "rates",
			        "give either levels (connections) or rates (requests/s), not both");
		parse_rates(e, rates_in, levels);
	} else if (!(x = json_object_get(root, "levels"))) {
		err_add(e, "levels",
		        "missing (the concurrency levels, e.g. [1, 10, 100]; or rates, in "
		        "requests/s)");
	} else if (!json_is_array(x)) {
		err_add(e, "levels", "must be an array of concurrency levels, not %s",
		        type_name(x));
	} else if (json_array_size(x) == 0 || json_array_size(x) > MAX_LEVELS) {
		err_add(e, "levels", "must have 1 to %d levels, not %zu", MAX_LEVELS,
		        json_array_size(x));
	} else {
		size_t i;
		json_t *y;
		long long prev = 0;
		json_array_foreach(x, i, y)
		{
			char p[PATH_LEN];
			path_index(p, "levels", i);
			if (!want_int(e, p, y, 1, 100000, &n))
				continue;
			if (n <= prev)
				err_add(e, p,
				        "%lld must be above the previous level %lld (levels rise)",
				        n, prev);
			prev = n;
			json_array_append_new(levels, json_integer(n));
		}
	}
	json_object_set_new(out, "levels", levels);

	/* seconds xor requests */
	json_t *secs = json_object_get(root, "seconds"), *reqs = json_object_get(root, "requests");
	json_object_set_new(out, "seconds", json_null());
	json_object_set_new(out, "requests", json_null());
	if (secs && reqs)
		err_add(e, "seconds", "give either seconds or requests per level, not both");
	else if (!secs && !reqs)
		err_add(e, "seconds", "missing (give seconds or requests per level)");
	else if (secs && json_is_real(secs))
		err_add(e, "seconds",
		        "must be a whole number of seconds (loadgen's -t, like ab's, "
		        "takes whole seconds)");
	else if (secs && want_int(e, "seconds", secs, 1, 3600, &n))
		json_object_set_new(out, "seconds", json_integer(n));
	else if (reqs && rate_sweep)
		err_add(e, "requests",
		        "not with rates: a rate's schedule is timed (give seconds per rate)");
	else if (reqs && want_int(e, "requests", reqs, 1, 1000000000, &n)) {
		json_object_set_new(out, "requests", json_integer(n));
		/* ab (and loadgen) refuse fewer requests than connections; in a
		 * streams sweep the levels are not connections (checked below) */
		size_t nl = json_array_size(levels);
		long long top = nl ? json_integer_value(json_array_get(levels, nl - 1)) : 0;
		const json_t *sw = json_object_get(root, "sweep");
		bool levels_are_streams =
		    json_is_string(sw) && strcmp(json_string_value(sw), "streams") == 0;
		if (n < top && !levels_are_streams)
			err_add(e, "requests",
			        "%lld is below the highest level %lld (each "
			        "connection needs at least one request)",
			        n, top);
	}

	d = 1;
	if ((x = json_object_get(root, "warmup_s")))
		want_num(e, "warmup_s", x, 0, 600, false, &d);
	json_object_set_new(out, "warmup_s", json_real(d));

	n = 3;
	if ((x = json_object_get(root, "repetitions")))
		want_int(e, "repetitions", x, 1, 100, &n);
	json_object_set_new(out, "repetitions", json_integer(n));

	bool interleave = false;
	if ((x = json_object_get(root, "interleave")))
		want_bool(e, "interleave", x, &interleave);
	json_object_set_new(out, "interleave", json_boolean(interleave));

	bool keepalive = true;
	if ((x = json_object_get(root, "keepalive")))
		want_bool(e, "keepalive", x, &keepalive);
	json_object_set_new(out, "keepalive", json_boolean(keepalive));

	n = 1;
	if ((x = json_object_get(root, "loadgen_threads")))
		want_int(e, "loadgen_threads", x, 1, 256, &n);
	json_object_set_new(out, "loadgen_threads", json_integer(n));

	/* several load hosts (issue 17): loadgen --mpi through mpirun over this
	 * hostfile, load_ranks ranks (0: the hostfile's slots); absent: one
	 * loadgen on this machine */
	const char *hostfile;
	if ((x = json_object_get(root, "load_hosts")) &&
	    want_str(e, "load_hosts", x, 1, 4096, &hostfile))
		json_object_set_new(out, "load_hosts", json_string(hostfile));
	if ((x = json_object_get(root, "load_ranks"))) {
		n = 0;
		if (!json_object_get(root, "load_hosts"))
			err_add(e, "load_ranks",
			        "needs load_hosts (the hostfile the ranks run on)");
		else if (want_int(e, "load_ranks", x, 0, 4096, &n))
			json_object_set_new(out, "load_ranks", json_integer(n));
	}

	d = 30;
	if ((x = json_object_get(root, "timeout_s")))
		want_num(e, "timeout_s", x, 0, 3600, true, &d);
	json_object_set_new(out, "timeout_s", json_real(d));

	long long workers = 1;
	if ((x = json_object_get(root, "workers")))
		want_int(e, "workers", x, 0, 1024, &workers);
	json_object_set_new(out, "workers", json_integer(workers));

	/* cpus */
	json_t *cpus = json_pack("{s:n,s:n,s:n}", "server", "loadgen", "upstream");
	if ((x = json_object_get(root, "cpus")) && !json_is_null(x)) {
		static const char *const ckeys[] = {"server", "loadgen", "upstream", NULL};
		if (!json_is_object(x)) {
			err_add(e, "cpus", "must be an object {server, loadgen, upstream}, not %s",
			        type_name(x));
		} else {
			check_keys(e, "cpus", x, ckeys);
			for (size_t i = 0; ckeys[i]; i++) {
				json_t *y = json_object_get(x, ckeys[i]);
				if (!y || json_is_null(y))
					continue;
				char p[PATH_LEN];
				path_key(p, "cpus", ckeys[i]);
				json_t *list = parse_cpu_list(e, p, y);
				if (list)
					json_object_set_new(cpus, ckeys[i], list);
			}
		}
	}
	json_object_set_new(out, "cpus", cpus);

	const char *path = "/";
	if ((x = json_object_get(root, "path")) && want_origin_form(e, "path", x, &s))
		path = s;
	json_object_set_new(out, "path", json_string(path));

	json_t *expect = NULL;
	if ((x = json_object_get(root, "expect")))
		expect = parse_expect(e, "expect", x, has_upstream);
	if (!expect)
		expect = json_pack("{s:i,s:n,s:n,s:n,s:n}", "status", 200, "body", "body_upstream",
		                   "body_prefix", "body_length");
	json_object_set_new(out, "expect", expect);

	/* HTTP/2: the protocol, and what the levels count (see README.md) */
	bool h2 = false;
	if ((x = json_object_get(root, "protocol"))) {
		int r = parse_protocol(e, "protocol", x);
		if (r >= 0)
			h2 = r == 1;
	}
	json_object_set_new(out, "protocol", json_string(h2 ? "h2" : "h1"));

	bool sweep_streams = false;
	if ((x = json_object_get(root, "sweep")) && want_str(e, "sweep", x, 1, 32, &s)) {
		if (strcmp(s, "streams") == 0)
			sweep_streams = true;
		else if (strcmp(s, "rate") == 0 && !rate_sweep)
			err_add(e, "sweep", "'rate' needs rates (the requests/s of each level)");
		else if (strcmp(s, "connections") != 0 && strcmp(s, "rate") != 0)
			err_add(e, "sweep",
			        "unknown sweep '%s' (one of: connections, streams, rate)", s);
		if (rate_sweep && strcmp(s, "rate") != 0)
			err_add(e, "sweep", "is '%s', but rates make it a rate sweep ('rate')", s);
	}
	if (rate_sweep)
		sweep_streams = false;
	json_object_set_new(out, "sweep",
	                    json_string(rate_sweep      ? "rate"
	                                : sweep_streams ? "streams"
	                                                : "connections"));

	json_t *conns = json_null();
	json_t *rate_conns = json_null();
	x = json_object_get(root, "connections");
	if (rate_sweep) {
		rate_conns = parse_rate_connections(e, x, levels);
	} else if (sweep_streams && !x) {
		err_add(e, "connections",
		        "missing (with \"sweep\": \"streams\" the levels are streams per "
		        "connection over this many connections)");
	} else if (x && !sweep_streams) {
		err_add(e, "connections",
		        "only with \"sweep\": \"streams\" (otherwise the levels are the "
		        "connections)");
	} else if (x && want_int(e, "connections", x, 1, 100000, &n)) {
		json_decref(conns);
		conns = json_integer(n);
		long long reqs_n = json_integer_value(json_object_get(out, "requests"));
		if (reqs_n > 0 && reqs_n < n)
			err_add(e, "requests",
			        "%lld is below the %lld connections (each connection needs at "
			        "least one request)",
			        reqs_n, n);
	}
	json_object_set_new(out, "connections", conns);
	json_object_set_new(out, "rates", rate_sweep ? json_deep_copy(levels) : json_null());
	json_object_set_new(out, "rate_connections", rate_conns);

	/* the knee: the highest rate whose p99 stays within this factor of the
	 * unloaded one (the lowest rate's) */
	json_t *knee = json_null();
	if ((x = json_object_get(root, "knee_factor"))) {
		if (!rate_sweep)
			err_add(e, "knee_factor", "only with rates (the knee is a rate's)");
		else if (want_num(e, "knee_factor", x, 1, 1000, true, &d))
			knee = json_real(d);
	} else if (rate_sweep) {
		knee = json_real(2);
	}
	json_object_set_new(out, "knee_factor", knee);

	/* streams per connection at every level of a connections sweep over h2;
	 * null until a server speaks h2 (checked once the servers are read) */
	long long streams = 1;
	json_t *streams_v = json_object_get(root, "streams");
	if (streams_v && sweep_streams)
		err_add(e, "streams",
		        "not with \"sweep\": \"streams\" (the levels are the streams per "
		        "connection; give \"connections\")");
	else if (streams_v)
		want_int(e, "streams", streams_v, 1, 100000, &streams);

	bool h2load_ref = false;
	if ((x = json_object_get(root, "h2load_reference")))
		want_bool(e, "h2load_reference", x, &h2load_ref);
	json_object_set_new(out, "h2load_reference", json_boolean(h2load_ref));

	/* servers */
	json_t *servers = json_array();
	struct defaults defs = {has_upstream, keepalive, workers,    path,
	                        expect,       h2,        h2load_ref, sweep_streams};
	if (!(x = json_object_get(root, "servers"))) {
		err_add(e, "servers", "missing (the servers to compare)");
	} else if (!json_is_array(x)) {
		err_add(e, "servers", "must be an array of servers, not %s", type_name(x));
	} else if (json_array_size(x) == 0 || json_array_size(x) > MAX_SERVERS) {
		err_add(e, "servers", "must have 1 to %d servers, not %zu", MAX_SERVERS,
		        json_array_size(x));
	} else {
		size_t i;
		json_t *y;
		json_array_foreach(x, i, y)
		{
			char p[PATH_LEN];
			path_index(p, "servers", i);
			json_t *srv = parse_server(e, p, y, &defs);
			if (!srv)
				continue;
			const char *nm = json_string_value(json_object_get(srv, "name"));
			for (size_t j = 0; nm && j < json_array_size(servers); j++) {
				const char *other = json_string_value(
				    json_object_get(json_array_get(servers, j), "name"));
				if (other && strcmp(other, nm) == 0) {
					char pn[PATH_LEN];
					path_key(pn, p, "name");
					err_add(
					    e, pn,
					    "'%s' is already the name of an earlier server (names "
					    "must differ)",
					    nm);
				}
			}
			json_array_append_new(servers, srv);
		}
	}
	json_object_set_new(out, "servers", servers);

	bool any_h2 = false;
	for (size_t i = 0; i < json_array_size(servers); i++) {
		const char *pr =
		    json_string_value(json_object_get(json_array_get(servers, i), "protocol"));
		if (pr && strcmp(pr, "h2") == 0)
			any_h2 = true;
	}
	if (streams_v && !any_h2 && json_array_size(servers) > 0)
		err_add(e, "streams",
		        "streams per connection need protocol h2, and no server uses it "
		        "(add \"protocol\": \"h2\")");
	if (h2load_ref && !any_h2 && json_array_size(servers) > 0)
		err_add(e, "h2load_reference",
		        "needs protocol h2 (h2load is run over HTTP/2 only), and no server uses "
		        "it");
	if (rate_sweep) {
		for (size_t i = 0; i < json_array_size(servers); i++)
			if (json_is_true(
			        json_object_get(json_array_get(servers, i), "h2load_reference"))) {
				err_add(
				    e, "h2load_reference",
				    "not with rates (h2load has no schedule to offer a rate on)");
				break;
			}
		check_little(e, out, levels, rate_conns, servers);
	}
	json_object_set_new(out, "streams",
	                    any_h2 && !sweep_streams ? json_integer(streams) : json_null());

	/* the level the percentile-distribution chart shows */
	long long plot_level = 0;
	if (json_array_size(levels) > 0)
		plot_level =
		    json_integer_value(json_array_get(levels, json_array_size(levels) - 1));
	if ((x = json_object_get(root, "plot_level")) &&
	    want_int(e, "plot_level", x, 1, 100000, &n)) {
		bool found = false;
		for (size_t i = 0; i < json_array_size(levels); i++)
			if (json_integer_value(json_array_get(levels, i)) == n)
				found = true;
		if (!found)
			err_add(e, "plot_level", "%lld is not one of the levels", n);
		else
			plot_level = n;
	}
	json_object_set_new(out, "plot_level", json_integer(plot_level));
	return out;
}

static char *errs_take(struct errs *e)
{
	if (e->oom || !e->buf) {
		free(e->buf);
		return strdup("out of memory while reporting errors\n");
	}
	return e->buf;
}

struct scenario *scenario_parse(const char *text, size_t len, const char *origin, char **errors)
{
	struct errs e = {.origin = origin ? origin : "(scenario)"};
	*errors = NULL;
	if (len > SCENARIO_MAX_BYTES) {
		err_add(&e, "", "file too large (%zu bytes, at most %d)", len, SCENARIO_MAX_BYTES);
		*errors = errs_take(&e);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		char where[64];
		snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
		err_add(&e, where, "invalid JSON: %s", jerr.text);
		*errors = errs_take(&e);
		return NULL;
	}
	json_t *doc = check_doc(&e, root);
	json_decref(root);
	if (e.count > 0 || !doc) {
		json_decref(doc);
		if (e.count == 0)
			err_add(&e, "", "out of memory");
		*errors = errs_take(&e);
		return NULL;
	}
	free(e.buf);
	struct scenario *s = malloc(sizeof(*s));
	if (!s) {
		json_decref(doc);
		*errors = strdup("out of memory\n");
		return NULL;
	}
	s->doc = doc;
	s->name = json_string_value(json_object_get(doc, "name"));
	return s;
}

struct scenario *scenario_load(const char *path, char **errors)
{
	struct errs e = {.origin = path};
	*errors = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		err_add(&e, "", "cannot open: %s", strerror(errno));
		*errors = errs_take(&e);
		return NULL;
	}
	char *buf = malloc(SCENARIO_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, SCENARIO_MAX_BYTES + 1, f) : 0;
	bool bad = !buf || ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		err_add(&e, "", "cannot read the file");
		*errors = errs_take(&e);
		return NULL;
	}
	struct scenario *s = scenario_parse(buf, n, path, errors);
	free(buf);
	return s;
}

const json_t *scenario_json(const struct scenario *s)
{
	return s->doc;
}

const char *scenario_name(const struct scenario *s)
{
	return s->name;
}

void scenario_free(struct scenario *s)
{
	if (!s)
		return;
	json_decref(s->doc);
	free(s);
}
