/* loadgen: an ApacheBench-compatible HTTP load generator.
 *
 * main() is the only place that prints errors and picks exit statuses: it
 * reads the options (opts.c, with ab's meanings, messages and exit codes),
 * builds ab's request bytes (request.c), resolves the target, runs one load
 * or a sweep of concurrency levels through the engine and prints ab's report
 * and/or writes the JSON document the bench pipeline reads. */
#include "corobench_config.h"
#include "engine.h"
#include "opts.h"
#include "outfile.h"
#include "rank.h"
#include "rank_job.h"
#include "report.h"
#include "request.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

static void copyright(int html)
{
	if (!html) {
		printf("This is loadgen, Version %s <ApacheBench 2.3 compatible>\n",
		       COROBENCH_VERSION);
		printf("Part of corobench; options and report follow ApacheBench (Adam Twiss, Zeus "
		       "Technology Ltd)\n");
		printf("and The Apache Software Foundation's ab, http://www.apache.org/\n");
		printf("\n");
	} else {
		printf("<p>\n");
		printf(
		    " This is loadgen, Version %s <i>&lt;ApacheBench 2.3 compatible&gt;</i><br>\n",
		    COROBENCH_VERSION);
		printf(" Part of corobench; options and report follow ApacheBench (Adam Twiss, "
		       "Zeus Technology Ltd)<br>\n");
		printf(" and The Apache Software Foundation's ab, http://www.apache.org/<br>\n");
		printf("</p>\n<p>\n");
	}
}

static char tls_sni[256]; /* https://: the server name TLS sends, "" for none */

/* The live progress line: stderr on a terminal only, once a second. */
struct progress {
	double last_t;
	uint64_t last_done;
	int shown;
};

static void progress_cb(void *arg, uint64_t done, uint64_t failed, double t)
{
	struct progress *p = arg;
	if (t - p->last_t < 1.0)
		return;
	double rps = (double)(done - p->last_done) / (t - p->last_t);
	fprintf(stderr, "\r\033[K[loadgen] %.0fs: %llu requests, %.0f req/s now, %llu failed", t,
	        (unsigned long long)done, rps, (unsigned long long)failed);
	fflush(stderr);
	p->last_t = t;
	p->last_done = done;
	p->shown = 1;
}

static void on_sigint(int sig)
{
	(void)sig;
	lg_stop();
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* --json's document through outfile (never clobbering what the name is). */
static int write_json(const char *file, json_t *doc)
{
	struct outfile of;
	if (outfile_open(&of, file))
		return -1;
	if (json_dumpf(doc, of.f, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0 ||
	    fputc('\n', of.f) == EOF) {
		int e = errno ? errno : EIO;
		outfile_discard(&of);
		errno = e;
		return -1;
	}
	return outfile_close(&of);
}

/* ab's request (and its HTTP/2 form); exits as ab does when too long. */
static void build_request(const struct lg_opts *o, struct req *rq)
{
	struct req_spec spec = {
	    .method = o->method_str,
	    .target = o->isproxy ? o->fullurl : o->url.path,
	    .path = o->url.path,
	    .host_field = o->url.host_field,
	    .colonhost = o->url.colonhost,
	    .http11 = o->http11,
	    .keepalive = o->keepalive,
	    .lines = &o->lines,
	    .body = o->send_body ? o->postdata : NULL,
	    .bodylen = o->send_body ? o->postlen : 0,
	    .content_type = o->content_type,
	    .h2 = o->h2,
	    .tls = o->url.tls,
	};
	int rc = req_build(rq, &spec);
	if (rc == -1) {
		fprintf(stderr, "Request too long\n\n");
		exit(1);
	}
	if (rc) {
		fprintf(stderr, "Could not allocate memory\n");
		exit(1);
	}
}

/* -B's address, then the target's (or the proxy's), as ab resolves them;
 * ab's banner goes out between the two, so a resolver error follows it. */
static void resolve(const struct lg_opts *o, const struct req *rq, struct lg_conf *cf)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (o->myhost) {
		if (getaddrinfo(o->myhost, NULL, &hints, &res) != 0 || !res) {
			fprintf(stderr, "apr_sockaddr_info_get() for %s: %s\n", o->myhost,
			        "Could not resolve the -B address");
			exit(1);
		}
		memcpy(&cf->bind_addr, res->ai_addr, res->ai_addrlen);
		cf->bind_len = res->ai_addrlen;
		hints.ai_family = res->ai_family;
		freeaddrinfo(res);
		res = NULL;
	}
	const char *host = o->isproxy ? o->proxyhost : o->url.host;
	char port[16];
	snprintf(port, sizeof port, "%d", o->isproxy ? o->proxyport : o->url.port);
	/* --unix: the socket's path is the address; the URL names the rest */
	int gai = o->unix_path ? 0 : getaddrinfo(host, port, &hints, &res);
	copyright(o->use_html);
	if (!o->use_html) {
		printf("Benchmarking %s ", o->url.host);
		if (o->isproxy)
			printf("[through %s:%d] ", o->proxyhost, o->proxyport);
		printf("(be patient)%s", o->heartbeat ? "\n" : "...");
		fflush(stdout);
	}
	if (o->verbosity >= 2)
		printf("INFO: %s header == \n---\n%.*s\n---\n", o->method_str, (int)rq->headlen,
		       rq->bytes);
	if (o->unix_path) {
		struct sockaddr_un *un = (struct sockaddr_un *)&cf->addrs[0];
		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof un->sun_path, "%s", o->unix_path);
		cf->addrlens[0] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		                              strlen(un->sun_path) + 1);
		cf->naddrs = 1;
		return;
	}
	if (gai != 0 || !res) {
		/* APR reports resolver errors as APR_OS_START_EAIERR (670000) + |EAI_*| */
		int code = gai == EAI_SYSTEM ? errno : 670000 + (gai < 0 ? -gai : gai);
		fprintf(stderr, "apr_sockaddr_info_get() for %s: %s (%d)\n", host,
		        gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai), code);
		exit(code);
	}
	for (struct addrinfo *ai = res; ai && cf->naddrs < LG_MAX_ADDRS; ai = ai->ai_next) {
		memcpy(&cf->addrs[cf->naddrs], ai->ai_addr, ai->ai_addrlen);
		cf->addrlens[cf->naddrs++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
}

/* -g: the rows go to a scratch file during the run (ab's header line
 * first) and to the named file, sorted, at the end; exits as ab does when
 * it cannot. */
static int open_gnuplot(const char *file)
{
	int fd = outfile_scratch(file);
	static const char head[] = "starttime\tseconds\tctime\tdtime\tttime\twait\n";
	if (fd < 0 || write(fd, head, sizeof head - 1) < 0) {
		perror("Cannot open gnuplot output file");
		exit(1);
	}
	return fd;
}

static int write_gnuplot(const char *file, int fd)
{
	struct outfile of;
	int rc = outfile_open(&of, file);
	if (rc == 0 && report_gnuplot_write(fd, of.f) != 0) {
		int e = errno ? errno : EIO;
		outfile_discard(&of);
		errno = e;
		rc = -1;
	} else if (rc == 0) {
		rc = outfile_close(&of);
	}
	if (rc)
		perror("Cannot open gnuplot output file");
	close(fd);
	return rc;
}

static int write_csv(const char *file, const struct lg_result *r)
{
	struct outfile of;
	if (outfile_open(&of, file))
		return -1;
	if (report_csv(of.f, r) != 0) {
		int e = errno ? errno : EIO;
		outfile_discard(&of);
		errno = e;
		return -1;
	}
	return outfile_close(&of);
}

/* Before anything runs: every output can be written (one line says why
 * not), and at most one of them is standard output, whose report then goes
 * to stderr so that stdout carries the document alone. The exit status,
 * 0 when all is well. */
static int check_outputs(const struct lg_opts *o)
{
	const struct {
		const char *flag, *path;
	} outs[] = {{"--json", o->json_file}, {"-g", o->gnuplot}, {"-e", o->csvperc}};
	const char *to_stdout = NULL;
	for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
		if (!outs[i].path)
			continue;
		char why[PATH_MAX + 128];
		if (outfile_check(outs[i].path, why, sizeof why)) {
			fprintf(stderr, "%s: %s %s\n", o->prog, outs[i].flag, why);
			return 1;
		}
		if (strcmp(outs[i].path, "-") != 0)
			continue;
		if (to_stdout) {
			fprintf(stderr, "%s: %s - and %s -: only one output can be standard output\n",
			        o->prog, to_stdout, outs[i].flag);
			return 1;
		}
		to_stdout = outs[i].flag;
	}
	if (to_stdout) {
		int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
		if (fd < 0 || dup2(2, 1) < 0) {
			perror("dup");
			return 1;
		}
		outfile_set_stdout(fd);
	}
	return 0;
}

/* One descriptor per connection, SIGPIPE off, Ctrl-C stops the load (the
 * report for what was done still comes, as ab's does). */
static void process_setup(void)
{
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_sigint};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* --warmup: unrecorded load at cf's level; nonzero when it was stopped. */
static int warm_up(const struct lg_conf *cf, double seconds)
{
	struct lg_conf w = *cf;
	struct lg_result wr;
	w.requests = LONG_MAX / 2;
	w.tlimit_us = (uint64_t)(seconds * 1e6);
	w.heartbeat = 0;
	w.gnuplot_fd = -1;
	w.verbosity = 0;
	w.progress = NULL;
	w.clear_line = 0;
	if (lg_result_init(&wr)) {
		fprintf(stderr, "Could not allocate memory\n\n");
		exit(1);
	}
	lg_run(&w, &wr);
	int stopped = wr.interrupted || wr.fatal;
	lg_result_free(&wr);
	return stopped;
}

/* One level's outputs (rank 0's alone with --mpi): ab's report, -e's
 * CSV, the level's JSON object (with each rank's own, per_rank, which it
 * takes). 0, or 1 when an output failed. */
static int report_level(const struct lg_opts *o, const struct lg_conf *cf, struct report_opts *ro,
                        const struct lg_result *r, int li, const double cpu[2], json_t *per_rank,
                        json_t *jlevels)
{
	int status = 0;
	if (!r->interrupted) {
		if (o->heartbeat)
			fprintf(stderr, "Finished %ld requests\n", r->done);
		else
			printf("..done\n");
	}
	char tls_proto[160], tls_key[96];
	if (cf->tls) {
		tls_ctx_info(cf->tls, tls_proto, sizeof tls_proto, tls_key, sizeof tls_key);
		ro->tls_proto = tls_proto;
		ro->tls_tmpkey = tls_key;
		ro->tls_sni = tls_sni;
	}
	if (o->use_html)
		report_html(stdout, ro, r);
	else
		report_text(stdout, ro, r);
	ro->tls_proto = ro->tls_tmpkey = ro->tls_sni = NULL;
	if (o->csvperc && r->done > 0 && write_csv(o->csvperc, r) != 0) {
		perror("Cannot open CSV output file");
		status = 1;
	}
	if (!r->interrupted) {
		json_t *l = report_json_level(r, o->levels[li], o->h2 ? cf->streams : 0, o->rate,
		                              cpu[0], cpu[1]);
		if (per_rank)
			json_object_set_new(l, "per_rank", per_rank);
		json_array_append_new(jlevels, l);
	} else {
		json_decref(per_rank);
	}
	return status;
}

/* Every level of the sweep (one level without --sweep), each with ab's
 * report; each finished level goes into jlevels. With --mpi every rank
 * runs its share of each level, all starting together, and rank 0 alone
 * reports the merge. The exit status. */
static int run_levels(const struct lg_opts *o, struct lg_conf *cf, json_t *jlevels)
{
	struct progress prog = {0};
	if (cf->progress)
		cf->progress_arg = &prog;
	struct report_opts ro = {
	    .hostname = o->url.host,
	    .port = o->url.port,
	    .path = o->url.path,
	    .nolength = o->nolength,
	    .keepalive = o->keepalive || o->h2, /* HTTP/2: every stream is on a kept connection */
	    .send_body = o->send_body,
	    .confidence = o->confidence,
	    .percentile = o->percentile,
	    .us = o->report_us,
	    .rate = o->rate,
	    .tablestring = o->tablestring,
	    .trstring = o->trstring,
	    .tdstring = o->tdstring,
	};
	int status = 0, self = rank_self(), nranks = rank_count();
	char err[512];
	for (int lj = 0; lj < o->nlevels * o->nslevels; lj++) {
		int li = lj / o->nslevels;
		cf->concurrency = (int)rank_share(o->levels[li], self, nranks);
		/* ab's concurrency: requests in flight at a time */
		ro.concurrency = o->levels[li] * o->pipeline;
		ro.pipeline = o->pipeline;
		if (o->h2) {
			cf->streams = o->slevels[lj % o->nslevels];
			ro.h2conns = o->levels[li];
			ro.streams = cf->streams;
			ro.concurrency = o->levels[li] * cf->streams;
		}
		/* --warmup: in the closed model on one rank, the load's first
		 * seconds, unrecorded, on the connections the timed load goes on
		 * with (as h2load's --warm-up-time): a run of its own would leave
		 * the timed load to open every connection again, c first requests
		 * with a connect each (at c = 1000 on one core, 1 % of a 3 s run
		 * and its p99). With --rate (the schedule starts with the timed
		 * load) and across ranks (the barrier starts the timed load at
		 * once everywhere), a run of its own. */
		cf->warmup_us = 0;
		if (o->warmup > 0 && cf->rate <= 0 && nranks == 1) {
			cf->warmup_us = (uint64_t)(o->warmup * 1e6);
		} else if (o->warmup > 0) {
			if (rank_barrier(err, sizeof err))
				goto mpi_error;
			int stopped = warm_up(cf, o->warmup), any;
			if (rank_max(stopped, &any, err, sizeof err))
				goto mpi_error;
			if (any)
				return 1;
		}
		struct lg_result r;
		if (lg_result_init(&r)) {
			fprintf(stderr, "Could not allocate memory\n\n");
			exit(1);
		}
		struct rusage ru0, ru1;
		/* --mpi: every rank starts the timed load at once */
		if (rank_barrier(err, sizeof err)) {
			lg_result_free(&r);
			goto mpi_error;
		}
		getrusage(RUSAGE_SELF, &ru0);
		prog = (struct progress){0};
		lg_run(cf, &r);
		getrusage(RUSAGE_SELF, &ru1);
		if (prog.shown)
			fprintf(stderr, "\r\033[K");
		double cpu[2] = {tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime),
		                 tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime)};
		json_t *per_rank = NULL;
		int bad = o->mpi ? ranks_failed(&r, err, sizeof err) : 0;
		if (bad == 0 && o->mpi) {
			int any;
			if (rank_max(r.interrupted, &any, err, sizeof err) ||
			    ranks_merge(&r, cf, cpu, &per_rank, err, sizeof err))
				bad = -1;
			r.interrupted = any;
		}
		if (bad) {
			lg_result_free(&r);
			if (bad < 0)
				goto mpi_error;
			return 1;
		}
		if (r.fatal) {
			fprintf(stderr, "%s\n", r.fatal_msg);
			if (r.done)
				printf("Total of %ld requests completed\n", r.done);
			status = r.fatal_code & 0xff ? r.fatal_code : 1;
			lg_result_free(&r);
			return status;
		}
		if (self == 0)
			status |= report_level(o, cf, &ro, &r, li, cpu, per_rank, jlevels);
		int stopped = r.interrupted;
		lg_result_free(&r);
		fflush(stdout);
		if (stopped)
			return 1; /* ab exits 1 after printing the report on SIGINT */
	}
	return status;
mpi_error:
	fprintf(stderr, "%s: %s\n", o->prog, err);
	return 1;
}

/* https://: the TLS context every connection uses, as ab sets it up: -f's
 * versions, -Z's ciphers, -E's client certificate, the server name (the
 * -H Host: value, else the URL's host; none for an address, or with -I)
 * and, with --h2, h2 by ALPN. Exits 1 with OpenSSL's words when it fails. */
static struct tls_ctx *tls_setup(const struct lg_opts *o, char *sni, size_t cap)
{
	snprintf(sni, cap, "%s", o->opt_host[0] ? o->opt_host : o->url.host);
	struct in6_addr a;
	if (o->no_sni || !sni[0] || inet_pton(AF_INET, sni, &a) == 1 ||
	    inet_pton(AF_INET6, sni, &a) == 1)
		sni[0] = 0;
	struct tls_conf tc = {
	    .proto = (enum tls_proto)o->tls_proto,
	    .ciphers = o->tls_ciphers,
	    .certfile = o->tls_cert,
	    .sni = sni[0] ? sni : NULL,
	    .alpn_h2 = o->h2,
	};
	char err[512];
	struct tls_ctx *x = tls_ctx_new(&tc, err, sizeof err);
	if (!x) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return x;
}

/* --json: the run's document, written atomically; the exit status. With
 * --mpi, hosts lists each rank's host. */
static int write_doc(const struct lg_opts *o, enum lg_engine used, struct tls_ctx *tls,
                     json_t *jlevels, json_t *hosts)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "schema", json_string("corobench/loadgen/v1"));
	json_object_set_new(doc, "tool", json_string("loadgen"));
	json_object_set_new(doc, "version", json_string(COROBENCH_VERSION));
	json_object_set_new(doc, "url", json_string(o->fullurl));
	json_object_set_new(doc, "method", json_string(o->method_str));
	json_object_set_new(doc, "keepalive", json_boolean(o->keepalive || o->h2));
	json_object_set_new(doc, "http", json_string(o->h2 ? "2" : o->http11 ? "1.1" : "1.0"));
	json_object_set_new(doc, "threads", json_integer(o->threads));
	json_object_set_new(doc, "engine", json_string(lg_engine_name(used)));
	if (tls) {
		char proto[160], key[96];
		tls_ctx_info(tls, proto, sizeof proto, key, sizeof key);
		json_object_set_new(doc, "tls", json_pack("{s:s, s:s}", "protocol", proto,
		                                          "server_temp_key", key));
	}
	if (o->pipeline > 1)
		json_object_set_new(doc, "pipeline", json_integer(o->pipeline));
	if (hosts) {
		json_object_set_new(doc, "ranks", json_integer((json_int_t)json_array_size(hosts)));
		json_object_set_new(doc, "hosts", json_incref(hosts));
	}
	json_object_set_new(doc, "levels", json_incref(jlevels));
	int rc = write_json(o->json_file, doc);
	if (rc)
		fprintf(stderr, "%s: cannot write %s: %s\n", o->prog, o->json_file,
		        strerror(errno));
	json_decref(doc);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct lg_opts o;
	switch (opts_parse(&o, argc, argv)) {
	case OPTS_OK:
		break;
	case OPTS_VERSION:
		copyright(0);
		return 0;
	case OPTS_USAGE:
		fputs(o.err, stderr);
		opts_usage(stderr, argv[0]);
		return EINVAL;
	case OPTS_HINT:
		fputs(o.err, stderr);
		return EINVAL;
	case OPTS_HELP:
		opts_usage(stdout, argv[0]);
		return 0;
	case OPTS_VERSION_LINE:
		printf("loadgen %s\n", COROBENCH_VERSION);
		return 0;
	case OPTS_FAIL:
		fputs(o.err, stderr);
		return 1;
	}
	json_t *hosts = NULL;
	int status = start_ranks(&o, &hosts);
	if (status) {
		rank_end();
		return status;
	}
	/* --h2 runs on epoll whatever --engine says (README) */
	struct lg_conf want = {.engine = o.engine, .h2 = o.h2};
	char why[160];
	enum lg_engine used = lg_engine_pick(&want, why, sizeof why);
	int bad = 0;
	if (o.engine == LG_ENGINE_URING && used != LG_ENGINE_URING && why[0]) {
		fprintf(stderr, "%s: --engine uring: io_uring unusable here: %s\n", o.prog, why);
		bad = 1;
	}
	if (!bad && rank_self() == 0)
		bad = check_outputs(&o);
	/* --mpi: one rank's refusal stops them all, none left waiting */
	char err[512];
	if (rank_max(bad, &bad, err, sizeof err)) {
		fprintf(stderr, "%s: %s\n", o.prog, err);
		bad = 1;
	}
	if (bad) {
		json_decref(hosts);
		rank_end();
		return 1;
	}
	struct req rq;
	build_request(&o, &rq);

	static struct lg_conf cf;
	if (o.url.tls)
		cf.tls = tls_setup(&o, tls_sni, sizeof tls_sni);
	resolve(&o, &rq, &cf);
	cf.req = rq.bytes;
	cf.reqlen = rq.len;
	cf.threads = o.threads;
	cf.requests = rank_share(o.requests, rank_self(), rank_count());
	cf.tlimit_us = o.tlimit_us;
	cf.timeout_us = (uint64_t)(o.timeout_s > 0 ? o.timeout_s : 30) * 1000000u;
	cf.keepalive = o.keepalive;
	cf.http11 = o.http11;
	cf.head = o.head;
	cf.nolength = o.nolength;
	cf.recverrok = o.recverrok;
	cf.verbosity = o.verbosity;
	cf.windowsize = o.windowsize;
	/* --mpi: "Completed N requests" would count one rank's part */
	cf.heartbeat = rank_count() > 1 ? 0 : o.heartbeat;
	cf.rate = o.rate / rank_count();
	cf.engine = o.engine;
	cf.pipeline = o.pipeline;
	if (o.verbosity >= 2)
		printf("INFO: engine == %s%s%s\n", lg_engine_name(used),
		       why[0] ? ", io_uring: " : "", why);
	cf.gnuplot_fd = o.gnuplot ? open_gnuplot(o.gnuplot) : -1;
	cf.h2 = o.h2;
	cf.h2hdrs = rq.h2;
	cf.h2nhdrs = rq.nh2;
	cf.body = o.send_body ? o.postdata : NULL;
	cf.bodylen = o.send_body ? o.postlen : 0;
	if (isatty(2) && !o.quiet && o.requests > 1 && rank_count() == 1) {
		cf.progress = progress_cb;
		cf.clear_line = 1;
	}
	process_setup();

	json_t *jlevels = json_array();
	status = run_levels(&o, &cf, jlevels);
	if (cf.gnuplot_fd >= 0 && write_gnuplot(o.gnuplot, cf.gnuplot_fd) && !status)
		status = 1;
	if (o.json_file && rank_self() == 0 && write_doc(&o, used, cf.tls, jlevels, hosts) &&
	    !status)
		status = 1;
	json_decref(jlevels);
	json_decref(hosts);
	rank_end();
	tls_ctx_free(cf.tls);
	req_free(&rq);
	opts_free(&o);
	return status;
}
