/* report: ab's report layouts and the JSON level, see report.h. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUND_MS(a) ((int64_t)(((a) + 500) / 1000))

static long failed_total(const struct lg_result *r)
{
	return r->bad + r->err_timeout + r->err_truncated + r->err_status + r->err_reset;
}

/* ab's statistics of one column: min, integer mean, sd around that mean,
 * its odd median (the mean of ranks n/2 and n/2+1 when n is odd), max; in
 * ab's rounded milliseconds, or in microseconds (us). */
struct col {
	int64_t min, mean, median, max;
	double sd;
};

static struct col column(const struct hist *h, long done, int us)
{
	struct col c;
	uint64_t n = (uint64_t)done;
	c.min = (int64_t)hist_min(h);
	c.max = (int64_t)hist_max(h);
	c.mean = (int64_t)(hist_sum(h) / n);
	c.sd = n > 1 ? sqrt(hist_sq_dev(h, (double)c.mean) / (double)(n - 1)) : 0;
	if (n > 1 && n % 2)
		c.median = (int64_t)((hist_at_rank(h, n / 2) + hist_at_rank(h, n / 2 + 1)) / 2);
	else
		c.median = (int64_t)hist_at_rank(h, n / 2);
	if (us)
		return c;
	c.min = ROUND_MS(c.min);
	c.mean = ROUND_MS(c.mean);
	c.median = ROUND_MS(c.median);
	c.max = ROUND_MS(c.max);
	c.sd = c.sd / 1000.0;
	return c;
}

/* ab's percentage lines of the samples in h. */
static void percent_lines(FILE *out, const struct hist *h)
{
	static const int percs[] = {50, 66, 75, 80, 90, 95, 98, 99, 100};
	uint64_t n = hist_count(h);
	for (size_t i = 0; i < sizeof percs / sizeof percs[0]; i++) {
		if (percs[i] >= 100)
			fprintf(out, " 100%%  %5" PRId64 " (longest request)\n",
			        ROUND_MS((int64_t)hist_max(h)));
		else
			fprintf(out, "  %d%%  %5" PRId64 "\n", percs[i],
			        ROUND_MS((int64_t)hist_at_rank(h, n * (uint64_t)percs[i] / 100)));
	}
}

static double mean_ms(const struct hist *h)
{
	uint64_t n = hist_count(h);
	return n ? (double)hist_sum(h) / (double)n / 1000.0 : 0.0;
}

#define RATE_TIMES_NOTE                                                                            \
	"(--rate: Connect is the time from each request's intended start to its send,\n"           \
	" Total the time from its intended start: corrected for coordinated omission)\n"

#define RATE_UNCORRECTED_NOTE                                                                      \
	"\nUncorrected: the same from each request's actual start, as a closed-loop client\n"      \
	"would report them (a stall's waiting requests left out)\n"

/* --rate: the target, whether it was kept, how late requests started, the
 * drain. */
static void rate_lines(FILE *out, const struct report_opts *o, const struct lg_result *r)
{
	fprintf(out,
	        "Target rate:            %.2f [#/sec] (%s: %ld of the %ld requests due in the %.3f "
	        "s schedule started in it)\n",
	        o->rate, lg_rate_kept(r) ? "kept" : "NOT kept", r->sent, r->scheduled,
	        r->schedule_s);
	uint64_t n = hist_count(r->late);
	fprintf(out,
	        "Started late:           %ld (%.2f%%) more than %d ms after their intended start",
	        r->late_n, n ? 100.0 * (double)r->late_n / (double)n : 0.0, LG_LATE_US / 1000);
	if (r->late_n)
		fprintf(out,
		        ", %ld of them with their connection still busy; the latest by %.3f ms",
		        r->late_busy, (double)hist_max(r->late) / 1000.0);
	fprintf(out, "\n");
	if (r->drain_s >= 0.0005)
		fprintf(out,
		        "Drain:                  %.3f seconds after the schedule, for the answers "
		        "to what it sent\n",
		        r->drain_s);
}

static void sane(FILE *out, const char *what, const struct col *c)
{
	double d = (double)c->mean - (double)c->median;
	if (d < 0)
		d = -d;
	if (d > 2 * c->sd)
		fprintf(out,
		        "ERROR: The median and mean for %s are more than twice the standard\n"
		        "       deviation apart. These results are NOT reliable.\n",
		        what);
	else if (d > c->sd)
		fprintf(out,
		        "WARNING: The median and mean for %s are not within a normal deviation\n"
		        "        These results are probably not that reliable.\n",
		        what);
}

/* --format us: ab's two tables with every time in microseconds, columns
 * wide enough for them (and no rounding to milliseconds on the way). */
/* --format us: ab's percentage lines in microseconds, unrounded */
static void percent_lines_us(FILE *out, const struct hist *h)
{
	static const int percs[] = {50, 66, 75, 80, 90, 95, 98, 99};
	uint64_t n = hist_count(h);
	for (size_t i = 0; i < sizeof percs / sizeof percs[0]; i++)
		fprintf(out, "  %d%%  %8" PRIu64 "\n", percs[i],
		        hist_at_rank(h, n * (uint64_t)percs[i] / 100));
	fprintf(out, " 100%%  %8" PRIu64 " (longest request)\n", hist_max(h));
}

static void report_us_tables(FILE *out, const struct report_opts *o, const struct lg_result *r,
                             const struct col *con, const struct col *d, const struct col *w,
                             const struct col *tot)
{
	const struct col *cols[] = {con, d, w, tot};
	static const char *const names[] = {"Connect:", "Processing:", "Waiting:", "Total:"};
	if (o->confidence)
		fprintf(out, "%12s%8s %16s %8s %9s\n", "", "min", "mean[+/-sd]", "median", "max");
	else
		fprintf(out, "%12s%8s %8s %9s\n", "", "min", "avg", "max");
	for (int i = 0; i < 4; i++) {
		const struct col *c = cols[i];
		if (o->confidence)
			fprintf(out, "%-12s%8" PRId64 " %8" PRId64 " %7.1f %8" PRId64 " %9" PRId64 "\n",
			        names[i], c->min, c->mean, c->sd, c->median, c->max);
		else
			fprintf(out, "%-12s%8" PRId64 " %8" PRId64 " %9" PRId64 "\n", names[i], c->min,
			        c->mean, c->max);
	}
	if (o->confidence) {
		sane(out, "the initial connection time", con);
		sane(out, "the processing time", d);
		sane(out, "the waiting time", w);
		sane(out, "the total time", tot);
	}
	if (o->rate > 0)
		fprintf(out, RATE_TIMES_NOTE);
	if (o->percentile && r->done > 1) {
		fprintf(out, "\nPercentage of the requests served within a certain time (us)\n");
		percent_lines_us(out, r->total);
		if (o->rate > 0 && hist_count(r->unc) > 1) {
			fprintf(out, RATE_UNCORRECTED_NOTE);
			percent_lines_us(out, r->unc);
		}
	}
}

void report_text(FILE *out, const struct report_opts *o, const struct lg_result *r)
{
	double tt = r->timetaken;
	long done = r->done;
	fprintf(out, "\n\n");
	fprintf(out, "Server Software:        %s\n", r->servername);
	fprintf(out, "Server Hostname:        %s\n", o->hostname);
	fprintf(out, "Server Port:            %u\n", o->port);
	if (o->tls_proto && o->tls_proto[0])
		fprintf(out, "SSL/TLS Protocol:       %s\n", o->tls_proto);
	if (o->tls_tmpkey && o->tls_tmpkey[0])
		fprintf(out, "Server Temp Key:        %s\n", o->tls_tmpkey);
	if (o->tls_sni && o->tls_sni[0])
		fprintf(out, "TLS Server Name:        %s\n", o->tls_sni);
	fprintf(out, "\n");
	fprintf(out, "Document Path:          %s\n", o->path);
	if (o->nolength)
		fprintf(out, "Document Length:        Variable\n");
	else
		fprintf(out, "Document Length:        %" PRIu64 " bytes\n", r->doclen);
	fprintf(out, "\n");
	fprintf(out, "Concurrency Level:      %d\n", o->concurrency);
	if (o->streams)
		fprintf(out, "HTTP/2 connections:     %d (up to %d streams each)\n", o->h2conns,
		        o->streams);
	if (o->pipeline > 1)
		fprintf(out, "Pipelined connections:  %d (up to %d requests each)\n",
		        o->concurrency / o->pipeline, o->pipeline);
	fprintf(out, "Time taken for tests:   %.3f seconds\n", tt);
	fprintf(out, "Complete requests:      %ld\n", done);
	fprintf(out, "Failed requests:        %ld\n", failed_total(r));
	if (failed_total(r))
		fprintf(out, "   (Connect: %ld, Receive: %ld, Length: %ld, Exceptions: %ld)\n",
		        r->err_conn, r->err_recv, r->err_length, r->err_except);
	if (o->streams && (r->err_timeout || r->err_truncated || r->err_status || r->err_reset))
		fprintf(out, "   (Timeout: %ld, Truncated: %ld, Status: %ld, Reset: %ld)\n",
		        r->err_timeout, r->err_truncated, r->err_status, r->err_reset);
	else if (r->err_timeout || r->err_truncated || r->err_status)
		fprintf(out, "   (Timeout: %ld, Truncated: %ld, Status: %ld)\n", r->err_timeout,
		        r->err_truncated, r->err_status);
	if (r->epipe)
		fprintf(out, "Write errors:           %ld\n", r->epipe);
	if (r->err_response)
		fprintf(out, "Non-2xx responses:      %ld\n", r->err_response);
	if (o->keepalive)
		fprintf(out, "Keep-Alive requests:    %ld\n", r->doneka);
	fprintf(out, "Total transferred:      %" PRId64 " bytes\n", r->totalread);
	if (o->send_body)
		fprintf(out, "Total body sent:        %" PRId64 "\n", r->totalposted);
	fprintf(out, "HTML transferred:       %" PRId64 " bytes\n", r->totalbread);
	const char *unit = o->us ? "us" : "ms";
	double per_s = o->us ? 1e6 : 1e3;
	if (tt > 0 && done) {
		fprintf(out, "Requests per second:    %.2f [#/sec] (mean)\n", (double)done / tt);
		if (o->rate > 0) {
			/* ab's concurrency x time / requests holds for a closed loop
			 * only: the measured means instead, both ways */
			double k = o->us ? 1000.0 : 1.0;
			fprintf(out,
			        "Time per request:       %.3f [%s] (mean, from each request's "
			        "intended start)\n",
			        mean_ms(r->total) * k, unit);
			fprintf(out,
			        "Time per request:       %.3f [%s] (mean, from each request's "
			        "actual start: uncorrected)\n",
			        mean_ms(r->unc) * k, unit);
		} else {
			fprintf(out, "Time per request:       %.3f [%s] (mean)\n",
			        (double)o->concurrency * tt * per_s / (double)done, unit);
		}
		fprintf(
		    out,
		    "Time per request:       %.3f [%s] (mean, across all concurrent requests)\n",
		    tt * per_s / (double)done, unit);
		fprintf(out, "Transfer rate:          %.2f [Kbytes/sec] received\n",
		        (double)r->totalread / 1024 / tt);
		if (o->send_body) {
			fprintf(out, "                        %.2f kb/s sent\n",
			        (double)r->totalposted / 1024 / tt);
			fprintf(out, "                        %.2f kb/s total\n",
			        (double)(r->totalread + r->totalposted) / 1024 / tt);
		}
	}
	if (o->rate > 0)
		rate_lines(out, o, r);
	if (done <= 0) {
		/* ab prints nothing here; say why rather than leave a gap */
		fprintf(out, "\nNo successful requests: no connection times to report.\n");
		return;
	}
	struct col con = column(r->ctime, done, o->us), d = column(r->dtime, done, o->us),
	           w = column(r->wait, done, o->us), tot = column(r->total, done, o->us);
	fprintf(out, "\nConnection Times (%s)\n", unit);
	if (o->us) {
		report_us_tables(out, o, r, &con, &d, &w, &tot);
		return;
	}
	if (o->confidence) {
#define CONF_FMT "%5" PRId64 " %4" PRId64 " %5.1f %6" PRId64 " %7" PRId64 "\n"
		fprintf(out, "              min  mean[+/-sd] median   max\n");
		fprintf(out, "Connect:    " CONF_FMT, con.min, con.mean, con.sd, con.median,
		        con.max);
		fprintf(out, "Processing: " CONF_FMT, d.min, d.mean, d.sd, d.median, d.max);
		fprintf(out, "Waiting:    " CONF_FMT, w.min, w.mean, w.sd, w.median, w.max);
		fprintf(out, "Total:      " CONF_FMT, tot.min, tot.mean, tot.sd, tot.median,
		        tot.max);
#undef CONF_FMT
		if (o->rate > 0)
			fprintf(out, RATE_TIMES_NOTE);
		sane(out, "the initial connection time", &con);
		sane(out, "the processing time", &d);
		sane(out, "the waiting time", &w);
		sane(out, "the total time", &tot);
	} else {
#define CONF_FMT "%5" PRId64 " %5" PRId64 "%5" PRId64 "\n"
		fprintf(out, "              min   avg   max\n");
		fprintf(out, "Connect:    " CONF_FMT, con.min, con.mean, con.max);
		fprintf(out, "Processing: " CONF_FMT, d.min, d.mean, d.max);
		fprintf(out, "Waiting:    " CONF_FMT, w.min, w.mean, w.max);
		fprintf(out, "Total:      " CONF_FMT, tot.min, tot.mean, tot.max);
#undef CONF_FMT
		if (o->rate > 0)
			fprintf(out, RATE_TIMES_NOTE);
	}
	if (o->percentile && done > 1) {
		fprintf(out, "\nPercentage of the requests served within a certain time (ms)\n");
		percent_lines(out, r->total);
		if (o->rate > 0 && hist_count(r->unc) > 1) {
			fprintf(out, RATE_UNCORRECTED_NOTE);
			percent_lines(out, r->unc);
		}
	}
}

void report_html(FILE *out, const struct report_opts *o, const struct lg_result *r)
{
	const char *ts = o->tablestring, *tr = o->trstring, *td = o->tdstring;
	double tt = r->timetaken;
	long done = r->done;
	fprintf(out, "\n\n<table %s>\n", ts);
	fprintf(out, "<tr %s><th colspan=2 %s>Server Software:</th><td colspan=2 %s>%s</td></tr>\n",
	        tr, td, td, r->servername);
	fprintf(out, "<tr %s><th colspan=2 %s>Server Hostname:</th><td colspan=2 %s>%s</td></tr>\n",
	        tr, td, td, o->hostname);
	fprintf(out, "<tr %s><th colspan=2 %s>Server Port:</th><td colspan=2 %s>%u</td></tr>\n", tr,
	        td, td, o->port);
	fprintf(out, "<tr %s><th colspan=2 %s>Document Path:</th><td colspan=2 %s>%s</td></tr>\n",
	        tr, td, td, o->path);
	if (o->nolength)
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Document Length:</th><td colspan=2 "
		        "%s>Variable</td></tr>\n",
		        tr, td, td);
	else
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Document Length:</th><td colspan=2 %s>%" PRIu64
		        " bytes</td></tr>\n",
		        tr, td, td, r->doclen);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>Concurrency Level:</th><td colspan=2 %s>%d</td></tr>\n",
	        tr, td, td, o->concurrency);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>Time taken for tests:</th><td colspan=2 %s>%.3f "
	        "seconds</td></tr>\n",
	        tr, td, td, tt);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>Complete requests:</th><td colspan=2 %s>%ld</td></tr>\n",
	        tr, td, td, done);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>Failed requests:</th><td colspan=2 %s>%ld</td></tr>\n", tr,
	        td, td, failed_total(r));
	if (failed_total(r))
		fprintf(out,
		        "<tr %s><td colspan=4 %s >   (Connect: %ld, Length: %ld, Exceptions: "
		        "%ld)</td></tr>\n",
		        tr, td, r->err_conn, r->err_length, r->err_except);
	if (r->err_response)
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Non-2xx responses:</th><td colspan=2 "
		        "%s>%ld</td></tr>\n",
		        tr, td, td, r->err_response);
	if (o->keepalive)
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Keep-Alive requests:</th><td colspan=2 "
		        "%s>%ld</td></tr>\n",
		        tr, td, td, r->doneka);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>Total transferred:</th><td colspan=2 %s>%" PRId64
	        " bytes</td></tr>\n",
	        tr, td, td, r->totalread);
	if (o->send_body)
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Total body sent:</th><td colspan=2 %s>%" PRId64
		        "</td></tr>\n",
		        tr, td, td, r->totalposted);
	fprintf(out,
	        "<tr %s><th colspan=2 %s>HTML transferred:</th><td colspan=2 %s>%" PRId64
	        " bytes</td></tr>\n",
	        tr, td, td, r->totalbread);
	if (tt > 0) {
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Requests per second:</th><td colspan=2 "
		        "%s>%.2f</td></tr>\n",
		        tr, td, td, (double)done / tt);
		fprintf(out,
		        "<tr %s><th colspan=2 %s>Transfer rate:</th><td colspan=2 %s>%.2f kb/s "
		        "received</td></tr>\n",
		        tr, td, td, (double)r->totalread / 1024 / tt);
		if (o->rate > 0)
			fprintf(out,
			        "<tr %s><th colspan=2 %s>Target rate:</th><td colspan=2 %s>%.2f "
			        "(%s)</td></tr>\n",
			        tr, td, td, o->rate, lg_rate_kept(r) ? "kept" : "NOT kept");
		if (o->send_body) {
			fprintf(out,
			        "<tr %s><td colspan=2 %s>&nbsp;</td><td colspan=2 %s>%.2f kb/s "
			        "sent</td></tr>\n",
			        tr, td, td, (double)r->totalposted / 1024 / tt);
			fprintf(out,
			        "<tr %s><td colspan=2 %s>&nbsp;</td><td colspan=2 %s>%.2f kb/s "
			        "total</td></tr>\n",
			        tr, td, td, (double)(r->totalread + r->totalposted) / 1024 / tt);
		}
	}
	if (done > 0) {
		int64_t mincon = ROUND_MS((int64_t)hist_min(r->ctime));
		int64_t mintot = ROUND_MS((int64_t)hist_min(r->total));
		int64_t maxcon = ROUND_MS((int64_t)hist_max(r->ctime));
		int64_t maxtot = ROUND_MS((int64_t)hist_max(r->total));
		int64_t totalcon = ROUND_MS((int64_t)hist_sum(r->ctime));
		int64_t total = ROUND_MS((int64_t)hist_sum(r->total));
		fprintf(out, "<tr %s><th %s colspan=4>Connection Times (ms)</th></tr>\n", tr, td);
		fprintf(out,
		        "<tr %s><th %s>&nbsp;</th> <th %s>min</th>   <th %s>avg</th>   <th "
		        "%s>max</th></tr>\n",
		        tr, td, td, td, td);
		fprintf(out,
		        "<tr %s><th %s>Connect:</th><td %s>%5" PRId64 "</td><td %s>%5" PRId64
		        "</td><td %s>%5" PRId64 "</td></tr>\n",
		        tr, td, td, mincon, td, totalcon / done, td, maxcon);
		fprintf(out,
		        "<tr %s><th %s>Processing:</th><td %s>%5" PRId64 "</td><td %s>%5" PRId64
		        "</td><td %s>%5" PRId64 "</td></tr>\n",
		        tr, td, td, mintot - mincon, td, (total / done) - (totalcon / done), td,
		        maxtot - maxcon);
		fprintf(out,
		        "<tr %s><th %s>Total:</th><td %s>%5" PRId64 "</td><td %s>%5" PRId64
		        "</td><td %s>%5" PRId64 "</td></tr>\n",
		        tr, td, td, mintot, td, total / done, td, maxtot);
	}
	fprintf(out, "</table>\n");
}

int report_csv(FILE *out, const struct lg_result *r)
{
	uint64_t done = (uint64_t)r->done;
	fprintf(out, "Percentage served,Time in ms\n");
	for (int i = 0; i <= 100; i++) {
		uint64_t v;
		if (i == 0)
			v = hist_min(r->total);
		else if (i == 100)
			v = hist_max(r->total);
		else
			v = hist_at_rank(r->total, (uint64_t)(0.5 + (double)done * i / 100.0));
		fprintf(out, "%d,%.3f\n", i, (double)v / 1000.0);
	}
	return ferror(out) ? -1 : 0;
}

struct gp_line {
	const char *s;
	size_t len;
	long ttime;
	size_t seq;
};

static int gp_cmp(const void *a, const void *b)
{
	const struct gp_line *x = a, *y = b;
	if (x->ttime != y->ttime)
		return x->ttime < y->ttime ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The rows in completion order, as they were streamed (too many to sort). */
static int gp_copy(int fd, FILE *out)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n)
			return -1;
		off += n;
	}
	return n < 0 ? -1 : 0;
}

/* The rows as (start, length, ttime), in the order they came. */
static struct gp_line *gp_lines(char *data, size_t size, char *first, size_t *count)
{
	size_t n = 0, cap = 1024;
	struct gp_line *lines = malloc(cap * sizeof *lines);
	for (char *p = first + 1; lines && p < data + size;) {
		char *e = memchr(p, '\n', (size_t)(data + size - p));
		size_t len = e ? (size_t)(e - p) + 1 : (size_t)(data + size - p);
		if (n == cap) {
			cap *= 2;
			struct gp_line *nl = realloc(lines, cap * sizeof *lines);
			if (!nl) {
				free(lines);
				return NULL;
			}
			lines = nl;
		}
		/* ttime is the fifth column */
		const char *q = p;
		for (int tab = 0; tab < 4 && q; tab++) {
			q = memchr(q, '\t', (size_t)(p + len - q));
			if (q)
				q++;
		}
		lines[n] = (struct gp_line){p, len, q ? atol(q) : 0, n};
		n++;
		p += len;
	}
	*count = n;
	return lines;
}

int report_gnuplot_write(int fd, FILE *out)
{
	struct stat st;
	if (fstat(fd, &st))
		return -1;
	if (st.st_size > (off_t)256 * 1024 * 1024)
		return gp_copy(fd, out); /* too big to sort in memory */
	size_t size = (size_t)st.st_size;
	char *data = malloc(size + 1);
	if (!data || pread(fd, data, size, 0) != (ssize_t)size) {
		free(data);
		return data ? -1 : gp_copy(fd, out);
	}
	data[size] = 0;
	char *first = memchr(data, '\n', size);
	size_t n = 0;
	struct gp_line *lines = first ? gp_lines(data, size, first, &n) : NULL;
	if (!lines) {
		free(data);
		return gp_copy(fd, out);
	}
	qsort(lines, n, sizeof *lines, gp_cmp);
	fwrite(data, 1, (size_t)(first + 1 - data), out);
	for (size_t i = 0; i < n; i++)
		fwrite(lines[i].s, 1, lines[i].len, out);
	free(lines);
	free(data);
	return ferror(out) ? -1 : 0;
}

static json_t *ms_or_null(const struct hist *h, int what, double p)
{
	uint64_t n = hist_count(h);
	if (!n)
		return json_null();
	switch (what) {
	case 0:
		return json_real((double)hist_min(h) / 1000.0);
	case 1:
		return json_real((double)hist_sum(h) / (double)n / 1000.0);
	case 2: {
		double m = (double)hist_sum(h) / (double)n;
		return json_real(n > 1 ? sqrt(hist_sq_dev(h, m) / (double)(n - 1)) / 1000.0 : 0.0);
	}
	case 3:
		return json_real((double)hist_max(h) / 1000.0);
	default:
		return json_real((double)hist_percentile(h, p) / 1000.0);
	}
}

/* The latency_ms object of the samples in h. */
static json_t *latency_json(const struct hist *h)
{
	json_t *lat = json_object();
	json_object_set_new(lat, "min", ms_or_null(h, 0, 0));
	json_object_set_new(lat, "mean", ms_or_null(h, 1, 0));
	json_object_set_new(lat, "stdev", ms_or_null(h, 2, 0));
	json_object_set_new(lat, "p50", ms_or_null(h, 4, 50));
	json_object_set_new(lat, "p90", ms_or_null(h, 4, 90));
	json_object_set_new(lat, "p99", ms_or_null(h, 4, 99));
	json_object_set_new(lat, "p999", ms_or_null(h, 4, 99.9));
	json_object_set_new(lat, "max", ms_or_null(h, 3, 0));
	return lat;
}

/* The histogram object of the samples in h: [upper_us, count] per
 * non-empty bucket. */
static json_t *histogram_json(const struct hist *h)
{
	json_t *buckets = json_array();
	unsigned pos = 0;
	uint64_t upper, count;
	while (hist_next_bucket(h, &pos, &upper, &count)) {
		json_t *b = json_array();
		json_array_append_new(b, json_integer((json_int_t)upper));
		json_array_append_new(b, json_integer((json_int_t)count));
		json_array_append_new(buckets, b);
	}
	json_t *hist = json_object();
	json_object_set_new(hist, "unit", json_string("us"));
	json_object_set_new(hist, "buckets", buckets);
	return hist;
}

/* --rate: the open model's figures (README, "JSON"). */
static json_t *rate_json(const struct lg_result *r, int concurrency, double rate)
{
	json_t *late = json_object();
	json_object_set_new(late, "threshold_ms", json_real(LG_LATE_US / 1000.0));
	json_object_set_new(late, "count", json_integer(r->late_n));
	json_object_set_new(late, "busy", json_integer(r->late_busy));
	json_object_set_new(late, "mean_ms", ms_or_null(r->late, 1, 0));
	json_object_set_new(late, "p50_ms", ms_or_null(r->late, 4, 50));
	json_object_set_new(late, "p99_ms", ms_or_null(r->late, 4, 99));
	json_object_set_new(late, "max_ms", ms_or_null(r->late, 3, 0));
	json_t *o = json_object();
	json_object_set_new(o, "corrected", json_true());
	json_object_set_new(o, "target_rps", json_real(rate));
	json_object_set_new(o, "per_connection_rps", json_real(rate / concurrency));
	json_object_set_new(o, "schedule_s", json_real(r->schedule_s));
	json_object_set_new(o, "scheduled", json_integer(r->scheduled));
	json_object_set_new(o, "sent", json_integer(r->sent));
	json_object_set_new(o, "sent_rps",
	                    json_real(r->schedule_s > 0 ? (double)r->sent / r->schedule_s : 0.0));
	json_object_set_new(o, "kept", json_boolean(lg_rate_kept(r)));
	json_object_set_new(o, "late", late);
	json_object_set_new(o, "drain_s", json_real(r->drain_s));
	json_object_set_new(o, "latency_ms_uncorrected", latency_json(r->unc_ok));
	json_object_set_new(o, "histogram_uncorrected", histogram_json(r->unc_ok));
	return o;
}

json_t *report_json_level(const struct lg_result *r, int concurrency, int streams, double rate,
                          double cpu_user, double cpu_sys)
{
	double tt = r->timetaken;
	long not_complete = r->err_conn + r->err_except + r->err_timeout;
	/* latency of the successful requests only: a refused connection or an
	 * error page answered in 50 us would flatter the figures */
	json_t *lat = latency_json(r->ok);

	json_t *fail = json_object();
	json_object_set_new(fail, "connect", json_integer(r->err_conn));
	json_object_set_new(fail, "receive", json_integer(r->err_recv));
	json_object_set_new(fail, "length", json_integer(r->err_length));
	json_object_set_new(fail, "exceptions", json_integer(r->err_except));
	json_object_set_new(fail, "timeout", json_integer(r->err_timeout));
	json_object_set_new(fail, "truncated", json_integer(r->err_truncated));
	json_object_set_new(fail, "status", json_integer(r->err_status));
	if (streams)
		json_object_set_new(fail, "reset", json_integer(r->err_reset));

	json_t *hist = histogram_json(r->ok);

	json_t *cpu = json_object();
	json_object_set_new(cpu, "user_s", json_real(cpu_user));
	json_object_set_new(cpu, "sys_s", json_real(cpu_sys));

	json_t *l = json_object();
	json_object_set_new(l, "concurrency", json_integer(concurrency));
	if (streams)
		json_object_set_new(l, "streams", json_integer(streams));
	json_object_set_new(l, "requests", json_integer(r->done + not_complete));
	json_object_set_new(l, "complete", json_integer(r->done));
	json_object_set_new(l, "failed", json_integer(failed_total(r)));
	json_object_set_new(l, "failures", fail);
	json_object_set_new(l, "non2xx", json_integer(r->err_response));
	json_object_set_new(l, "keepalive_requests", json_integer(r->doneka));
	json_object_set_new(l, "duration_s", json_real(tt));
	json_object_set_new(l, "rps", json_real(tt > 0 ? (double)r->done / tt : 0.0));
	json_object_set_new(l, "bytes_total", json_integer(r->totalread));
	json_object_set_new(l, "bytes_html", json_integer(r->totalbread));
	json_object_set_new(l, "transfer_kbps",
	                    json_real(tt > 0 ? (double)r->totalread / 1024 / tt : 0.0));
	json_object_set_new(l, "latency_ms", lat);
	json_object_set_new(l, "cpu", cpu);
	json_object_set_new(l, "histogram", hist);
	if (rate > 0)
		json_object_set_new(l, "rate", rate_json(r, concurrency, rate));
	return l;
}
