/* opts_int.h: what opts.c and opts_values.c share, inside loadgen's
 * command line: a row of the option table, the error helper, and the
 * setters that live in opts_values.c. Not for the rest of loadgen. */
#ifndef LOADGEN_OPTS_INT_H
#define LOADGEN_OPTS_INT_H

#include "opts.h"

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

/* Formats the message into o->err and returns rc. */
enum opts_rc opts_fail(struct lg_opts *o, enum opts_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* opts_values.c: -t and --duration (times with units) */
enum opts_rc opts_set_tlimit(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_duration(struct lg_opts *o, const struct opt *op, const char *arg);
/* opts_values.c: the request's method, body, headers and proxy */
enum opts_rc opts_set_head(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_body(struct lg_opts *o, const struct opt *op, const char *file);
enum opts_rc opts_set_method(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_cookie(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_header(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_auth(struct lg_opts *o, const struct opt *op, const char *arg);
enum opts_rc opts_set_proxy(struct lg_opts *o, const struct opt *op, const char *arg);

#endif
