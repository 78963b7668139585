/* scenario_int.h — internals shared by scenario.c, scenario_fields.c and
 * scenario_rules.c (the scenario parser, split by concern). Not a public API.
 */
#ifndef SCENARIO_INT_H
#define SCENARIO_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MAX_ERRORS 32
#define MAX_LEVELS 64
#define MAX_RATE 10000000 /* requests/s, a rate level's ceiling */
#define MAX_CONNECTIONS 100000
#define MAX_SERVERS 16
#define MAX_CPU 1023
#define PATH_LEN 160

struct errs {
	const char *origin;
	char *buf;
	size_t len, cap;
	int count;
	bool oom;
};

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

/* scenario.c: the error list */
void err_add(struct errs *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* scenario_fields.c: paths, typed getters and per-field parsers */
void path_key(char *out, const char *parent, const char *key);
void path_index(char *out, const char *parent, size_t i);
const char *type_name(const json_t *v);
bool want_int(struct errs *e, const char *path, const json_t *v, long long min, long long max,
              long long *out);
bool want_num(struct errs *e, const char *path, const json_t *v, double min, double max,
              bool min_exclusive, double *out);
bool want_bool(struct errs *e, const char *path, const json_t *v, bool *out);
bool want_str(struct errs *e, const char *path, const json_t *v, size_t minlen, size_t maxlen,
              const char **out);
bool want_name(struct errs *e, const char *path, const json_t *v, const char **out);
bool want_origin_form(struct errs *e, const char *path, const json_t *v, const char **out);
bool check_keys(struct errs *e, const char *path, const json_t *obj, const char *const *known);
json_t *parse_cpu_list(struct errs *e, const char *path, const json_t *v);
json_t *parse_expect(struct errs *e, const char *path, const json_t *v, bool has_upstream);
bool check_placeholders(struct errs *e, const char *path, const char *s);
json_t *parse_str_array(struct errs *e, const char *path, const json_t *v, size_t min, size_t max,
                        bool placeholders_ok);
json_t *parse_command(struct errs *e, const char *path, const json_t *v, const char *key,
                      size_t max);
json_t *parse_signal(struct errs *e, const char *path, const json_t *v);
int parse_protocol(struct errs *e, const char *path, const json_t *v);
void append_unique(json_t *arr, const char *name);

/* scenario_rules.c: servers, rate levels and cross-field rules */
json_t *parse_server(struct errs *e, const char *path, const json_t *v, const struct defaults *d);
void parse_rates(struct errs *e, const json_t *x, json_t *levels);
json_t *parse_rate_connections(struct errs *e, const json_t *x, const json_t *levels);
void check_little(struct errs *e, const json_t *out, const json_t *levels, const json_t *conns,
                  const json_t *servers);

#endif
