/* scenario_fields.c — field paths, typed getters and the per-field parsers
 * (CPU lists, expect, commands, signals, protocol) of the scenario checker.
 * Split out of scenario.c; see the comment there.
 */
#include "scenario.h"

#include "app.h"
#include "scenario_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- field paths ---- */

/* Paths are for messages: a too-long one is cut and marked, never overflowed. */
static void path_mark_cut(char *out, int n)
{
	if (n < 0 || n >= PATH_LEN)
		memcpy(out + PATH_LEN - 4, "...", 4);
}

void path_key(char *out, const char *parent, const char *key)
{
	int n;
	if (parent && *parent)
		n = snprintf(out, PATH_LEN, "%s.%s", parent, key);
	else
		n = snprintf(out, PATH_LEN, "%s", key);
	path_mark_cut(out, n);
}

void path_index(char *out, const char *parent, size_t i)
{
	int n = snprintf(out, PATH_LEN, "%s[%zu]", parent, i);
	path_mark_cut(out, n);
}

/* ---- typed getters: each reports its own error and returns false ---- */

const char *type_name(const json_t *v)
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

bool want_int(struct errs *e, const char *path, const json_t *v, long long min, long long max,
              long long *out)
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

bool want_num(struct errs *e, const char *path, const json_t *v, double min, double max,
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

bool want_bool(struct errs *e, const char *path, const json_t *v, bool *out)
{
	if (!json_is_boolean(v)) {
		err_add(e, path, "must be true or false, not %s", type_name(v));
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* A string with no NUL inside (jansson allows them), at most maxlen bytes. */
bool want_str(struct errs *e, const char *path, const json_t *v, size_t minlen, size_t maxlen,
              const char **out)
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
bool want_name(struct errs *e, const char *path, const json_t *v, const char **out)
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
bool want_origin_form(struct errs *e, const char *path, const json_t *v, const char **out)
{
	const char *s;
	if (!want_str(e, path, v, 1, 2048, &s))
		return false;
	if (s[0] != '/') {
		err_add(e, path,
		        "must start with '/' (an origin-form request target, RFC 9112 "
		        "§3.2.1)");
		return false;
	}
	static const char allowed[] = "-._~!$&'()*+,;=:@/?";
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || (c < 0x80 && strchr(allowed, c)))
			continue;
		static const char *const ctl[] = {
		    [' '] = "a space", ['\r'] = "a CR", ['\n'] = "an LF", ['\t'] = "a tab"};
		if (c == '%') {
			if (isxdigit((unsigned char)s[i + 1]) &&
			    isxdigit((unsigned char)s[i + 2])) {
				i += 2;
				continue;
			}
			err_add(
			    e, path,
			    "'%%' at offset %zu is not followed by two hex digits (percent-encode "
			    "a '%%' itself as %%25)",
			    i);
		} else if (c <= ' ' || c == 0x7f) {
			if (c < sizeof ctl / sizeof ctl[0] && ctl[c])
				err_add(
				    e, path,
				    "%s at offset %zu: a request target cannot hold it (it would "
				    "split the request line); percent-encode it as %%%02X",
				    ctl[c], i, c);
			else
				err_add(
				    e, path,
				    "control byte 0x%02x at offset %zu: a request target cannot "
				    "hold it; percent-encode it as %%%02X",
				    c, i, c);
		} else if (c == '#') {
			err_add(e, path,
			        "'#' at offset %zu: a fragment is never sent in a request target; "
			        "percent-encode it as %%23 if it belongs to the path",
			        i);
		} else if (c >= 0x80) {
			err_add(
			    e, path,
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

bool check_keys(struct errs *e, const char *path, const json_t *obj, const char *const *known)
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
json_t *parse_cpu_list(struct errs *e, const char *path, const json_t *v)
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

json_t *parse_expect(struct errs *e, const char *path, const json_t *v, bool has_upstream)
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
bool check_placeholders(struct errs *e, const char *path, const char *s)
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

json_t *parse_str_array(struct errs *e, const char *path, const json_t *v, size_t min, size_t max,
                        bool placeholders_ok)
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
json_t *parse_command(struct errs *e, const char *path, const json_t *v, const char *key,
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

json_t *parse_signal(struct errs *e, const char *path, const json_t *v)
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
int parse_protocol(struct errs *e, const char *path, const json_t *v)
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
void append_unique(json_t *arr, const char *name)
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
