/* report: turns an lg_result into ab's outputs (the text report, the -w
 * HTML tables, the -e CSV of percentiles, the -g rows' order) and into the
 * corobench/loadgen/v1 JSON level object the bench pipeline reads. Figures
 * are computed the way ab's output_results() computes them; with --rate the
 * figures that only a closed loop gives (ab's "Time per request" from the
 * concurrency) become measured ones, and the open model's own are added. */
#ifndef LOADGEN_REPORT_H
#define LOADGEN_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include "engine.h"

struct report_opts {
	const char *hostname;
	unsigned port;
	const char *path;
	int nolength, concurrency, keepalive, send_body;
	int h2conns, streams;       /* --h2: connections and streams per connection; 0 = HTTP/1.x */
	int pipeline;               /* --pipeline: requests in flight per connection; <= 1 off */
	int confidence, percentile; /* -S and -d turn them off */
	int us;                     /* --format us: the text report's times in microseconds */
	/* https://: ab's "SSL/TLS Protocol", "Server Temp Key" and "TLS Server
	 * Name" lines (NULL or "": not printed) */
	const char *tls_proto, *tls_tmpkey, *tls_sni;
	double rate;                /* --rate: the target, requests/s; 0 = closed model */
	const char *tablestring, *trstring, *tdstring; /* -x -y -z */
};

void report_text(FILE *out, const struct report_opts *o, const struct lg_result *r);
void report_html(FILE *out, const struct report_opts *o, const struct lg_result *r);
/* -e: ab's CSV of percentiles; 0, or -1 when writing failed. */
int report_csv(FILE *out, const struct lg_result *r);
/* -g: the rows streamed into fd during the run (header first), sorted by
 * total time as ab writes them (left in completion order when they are
 * too many to sort in memory comfortably); 0, or -1 when writing failed. */
int report_gnuplot_write(int fd, FILE *out);

/* One "levels" entry of the JSON contract. concurrency: connections;
 * streams: per connection with --h2 (0 = HTTP/1.x, no "streams" field);
 * rate: --rate's target (0 = closed model, no "rate" field). cpu_user/cpu_sys
 * in seconds. */
json_t *report_json_level(const struct lg_result *r, int concurrency, int streams, double rate,
                          double cpu_user, double cpu_sys);

#endif
