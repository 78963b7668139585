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
#include "scenario_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scenario {
	json_t *doc; /* normalized */
	const char *name;
};

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

void err_add(struct errs *e, const char *field, const char *fmt, ...)
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

/* ---- the whole scenario ---- */

static json_t *check_doc(struct errs *e, const json_t *root)
{
	static const char *const known[] = {
	    "schema",          "name",       "purpose",          "upstream",    "levels",
	    "seconds",         "requests",   "warmup_s",         "repetitions", "keepalive",
	    "loadgen_threads", "timeout_s",  "workers",          "cpus",        "path",
	    "expect",          "servers",    "plot_level",       "protocol",    "sweep",
	    "connections",     "streams",    "h2load_reference", "rates",       "knee_factor",
	    "load_hosts",      "load_ranks", "interleave",       NULL,
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
		static const char *const ukeys[] = {"delay_ms", "size", "wake_per_request", NULL};
		if (!json_is_object(x)) {
			err_add(e, "upstream", "must be an object or null, not %s", type_name(x));
		} else {
			check_keys(e, "upstream", x, ukeys);
			long long delay = 0, size = 1024;
			bool wake = false;
			json_t *y;
			if ((y = json_object_get(x, "delay_ms")))
				want_int(e, "upstream.delay_ms", y, 0, 600000, &delay);
			if ((y = json_object_get(x, "size")))
				want_int(e, "upstream.size", y, 0, 64LL << 20, &size);
			if ((y = json_object_get(x, "wake_per_request")))
				want_bool(e, "upstream.wake_per_request", y, &wake);
			json_object_set_new(out, "upstream",
			                    json_pack("{s:I,s:I,s:b}", "delay_ms",
			                              (json_int_t)delay, "size", (json_int_t)size,
			                              "wake_per_request", wake));
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
