/* scenario_rules.c — one server entry, rate levels and the cross-field rules
 * (rates/connections, Little's law) of the scenario checker.
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

/* ---- one server ---- */

enum kind { K_CORO, K_ASYNC, K_NGINX, K_EXTERNAL, K_BAD };
static const char *const kind_names[] = {"coro", "async", "nginx", "external"};

json_t *parse_server(struct errs *e, const char *path, const json_t *v, const struct defaults *d)
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
void parse_rates(struct errs *e, const json_t *x, json_t *levels)
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
json_t *parse_rate_connections(struct errs *e, const json_t *x, const json_t *levels)
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
void check_little(struct errs *e, const json_t *out, const json_t *levels, const json_t *conns,
                  const json_t *servers)
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
