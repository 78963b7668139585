/* engine: one load run (lg_run): the threads, each with its event loop
 * (ev.h) on the back end chosen once for the run and the protocol driver
 * the run asks for (driver_h1.c, or driver_h2.c with --h2); what the
 * drivers share (opening a connection, ab's counting rules, the -g rows,
 * the fatal stop); and the exact merge of the threads' results. */
#include "engine_int.h"
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

static struct shared *volatile lg_current;

uint64_t lg_now_us(void)
{
	return ev_clock_us();
}

/* The stop eventfd stays readable: every loop's wait ends at once. */
void lge_stop_shared(struct shared *g)
{
	atomic_store(&g->stop, 1);
	uint64_t one = 1;
	ssize_t w = write(g->stopfd, &one, sizeof one);
	(void)w;
}

void lg_stop(void)
{
	struct shared *g = lg_current;
	if (g)
		lge_stop_shared(g);
}

/* Lets the threads waiting for the first head go (or see the stop). */
void lge_wake_all(struct shared *g)
{
	pthread_mutex_lock(&g->mu);
	g->go = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void lge_fatal(struct thr *t, const char *prefix, const char *what, int code)
{
	struct shared *g = t->g;
	/* a TLS failure says OpenSSL's reason first, as ab prints it */
	const char *tls = t->cf->tls && code == EPROTO ? tls_last_error() : "";
	pthread_mutex_lock(&g->mu);
	if (!g->fatal) {
		g->fatal = 1;
		g->fatal_code = code;
		snprintf(g->fatal_msg, sizeof g->fatal_msg, "%s%s%s%s%s: %s (%d)",
		         tls[0] ? "SSL/TLS failed: " : "", tls, tls[0] ? "\n" : "", prefix, what,
		         strerror(code), code);
	}
	pthread_mutex_unlock(&g->mu);
	lge_stop_shared(g);
	lge_wake_all(g);
}

void lge_gp_flush(struct thr *t)
{
	if (t->gplen) {
		pthread_mutex_lock(&t->g->gpmu);
		ssize_t w = write(t->cf->gnuplot_fd, t->gp, t->gplen);
		pthread_mutex_unlock(&t->g->gpmu);
		(void)w;
		t->gplen = 0;
	}
}

#define ROUND_MS(a) ((int64_t)(((a) + 500) / 1000))

static void gp_row(struct thr *t, uint64_t start, uint64_t ctime, uint64_t time, uint64_t wait)
{
	uint64_t wall = start + t->g->wall_off;
	uint64_t sec = wall / 1000000u;
	if (sec != t->gp_sec || !t->gp_date[0]) {
		/* apr_ctime()'s "Wed Jun 03 21:49:08 1993", once a second */
		time_t tt = (time_t)sec;
		struct tm tm;
		localtime_r(&tt, &tm);
		strftime(t->gp_date, sizeof t->gp_date, "%a %b %d %H:%M:%S %Y", &tm);
		t->gp_sec = sec;
	}
	if (t->gplen > GPBUFSIZE - 128)
		lge_gp_flush(t);
	int n = snprintf(t->gp + t->gplen, GPBUFSIZE - t->gplen,
	                 "%s\t%llu\t%lld\t%lld\t%lld\t%lld\n", t->gp_date, (unsigned long long)sec,
	                 (long long)ROUND_MS(ctime), (long long)ROUND_MS(time - ctime),
	                 (long long)ROUND_MS(time), (long long)ROUND_MS(wait));
	if (n > 0)
		t->gplen += (size_t)n;
}

void lge_save(struct thr *t, uint64_t start, uint64_t connect, uint64_t endwrite,
              uint64_t beginread, uint64_t now, int ka, int ok)
{
	if (!t->recording) {
		t->warm_done++;
		return;
	}
	if (lge_all_over(t))
		return;
	t->r.done++;
	if (ka)
		t->r.doneka++;
	/* start: with --rate, the intended start */
	uint64_t ctime = connect > start ? connect - start : 0;
	uint64_t time = now > start ? now - start : 0;
	uint64_t wait = beginread > endwrite ? beginread - endwrite : 0;
	if (ctime > time)
		ctime = time;
	hist_record(t->r.ctime, ctime);
	hist_record(t->r.dtime, time - ctime);
	hist_record(t->r.wait, wait);
	hist_record(t->r.total, time);
	if (ok)
		hist_record(t->r.ok, time);
	if (t->cf->gnuplot_fd >= 0)
		gp_row(t, start, ctime, time, wait);
	atomic_store_explicit(&t->p_done, (uint64_t)t->r.done, memory_order_relaxed);
	long hb = t->cf->heartbeat;
	if (hb) {
		long d = t->nthreads > 1 ? atomic_fetch_add(&t->g->done_total, 1) + 1 : t->r.done;
		if (d % hb == 0) {
			fprintf(stderr, "%sCompleted %ld requests\n",
			        t->cf->clear_line ? "\r\033[K" : "", d);
			fflush(stderr);
		}
	}
}

void lge_begin(struct thr *t)
{
	struct lg_result *r = &t->r;
	/* Every counter goes, also one added to struct lg_result later: the
	 * whole result is cleared and what stays is put back. The histograms
	 * are empty (lge_save() recorded nothing) and stay allocated; the
	 * server's name, the document length and a stop or fatal error stay. */
	const struct lg_result keep = *r;
	memset(r, 0, sizeof(*r));
	memcpy(r->servername, keep.servername, sizeof(r->servername));
	r->doclen = keep.doclen;
	r->ctime = keep.ctime;
	r->dtime = keep.dtime;
	r->wait = keep.wait;
	r->total = keep.total;
	r->ok = keep.ok;
	r->unc = keep.unc;
	r->unc_ok = keep.unc_ok;
	r->late = keep.late;
	r->interrupted = keep.interrupted;
	r->fatal = keep.fatal;
	r->fatal_code = keep.fatal_code;
	memcpy(r->fatal_msg, keep.fatal_msg, sizeof(r->fatal_msg));
	long inflight = t->started - t->warm_done - t->spent;
	t->started = inflight > 0 ? inflight : 0;
	t->spent = 0; /* the warm-up's timeouts are not the timed load's */
	t->requests = t->requests_share;
	t->last = t->g->record_from;
	atomic_store_explicit(&t->p_done, 0, memory_order_relaxed);
	atomic_store_explicit(&t->p_bad, 0, memory_order_relaxed);
	t->recording = true;
}

void lge_save_rate(struct thr *t, uint64_t intended, uint64_t actual, int busy, uint64_t now,
                   int ok)
{
	if (!t->recording)
		return;
	if (lge_all_over(t))
		return; /* lge_save() will not count it either */
	uint64_t unc = now > actual ? now - actual : 0;
	uint64_t late = actual > intended ? actual - intended : 0;
	hist_record(t->r.unc, unc);
	if (ok)
		hist_record(t->r.unc_ok, unc);
	hist_record(t->r.late, late);
	if (late > LG_LATE_US) {
		t->r.late_n++;
		if (busy)
			t->r.late_busy++;
	}
}

/* ab: the first good response fixes the document length; later ones of
 * another length fail with "Length" unless -l. Across threads the first
 * good response anywhere wins. */
int lge_check_length(struct thr *t, size_t bread, int gotheader, long cl, int has_status,
                     int status)
{
	struct shared *g = t->g;
	if (t->r.good == 1 && !t->doclen_claimed) {
		t->doclen_claimed = 1;
		uint64_t exp = 0;
		if (atomic_compare_exchange_strong(&g->doclen1, &exp, (uint64_t)bread + 1))
			goto extra;
	}
	uint64_t d1 = atomic_load_explicit(&g->doclen1, memory_order_relaxed);
	uint64_t doclen = d1 ? d1 - 1 : 0;
	if (bread != doclen && !t->cf->nolength) {
		t->r.bad++;
		t->r.err_length++;
		return 1;
	}
extra:
	/* what ab misses: a body shorter than its Content-Length that ab let
	 * through (-l, or the first response), and a status unlike the first */
	if (gotheader && !t->cf->head && cl >= 0 && bread < (size_t)cl) {
		t->r.err_truncated++;
		return 1;
	}
	if (has_status) {
		if (!t->ref_status) {
			/* once per thread: the first status anywhere is the reference */
			int exp = 0;
			t->ref_status = atomic_compare_exchange_strong(&g->ref_status, &exp, status)
			                    ? status
			                    : exp;
		}
		if (t->ref_status != status) {
			t->r.err_status++;
			return 1;
		}
	}
	return 0;
}

/* A connect failed with errno e (refused...): while nothing has succeeded
 * ab moves on to the next address; after 10 failures it gives up. False
 * when the run was aborted. The drivers' connect loops retry otherwise. */
bool lge_connect_failed(struct thr *t, int e)
{
	if (t->r.good == 0 && t->addr + 1 < t->cf->naddrs) {
		t->addr++;
		t->r.err_conn = 0;
	} else if (t->r.bad++ > 10) {
		lge_fatal(t, "\nTest aborted after 10 failures\n\n", "apr_socket_connect()", e);
		return false;
	} else {
		t->r.err_conn++;
	}
	return true;
}

/* A non-blocking socket for the next connection, bound (-B) and sized (-b)
 * as asked; -1 after reporting a fatal error. */
static int lge_socket(struct thr *t, const struct lg_conf *cf, const struct sockaddr *sa)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		lge_fatal(t, "", "socket", errno);
		return -1;
	}
	if (cf->bind_len && bind(fd, (const struct sockaddr *)&cf->bind_addr, cf->bind_len)) {
		int e = errno;
		close(fd);
		lge_fatal(t, "", "bind", e);
		return -1;
	}
	if (cf->windowsize) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cf->windowsize, sizeof(int));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cf->windowsize, sizeof(int));
	}
	return fd;
}

int lge_open(struct thr *t, struct ev_sock *s, const struct ev_handler *h, unsigned watch,
             int nodelay)
{
	const struct lg_conf *cf = t->cf;
	const struct sockaddr *sa = (const struct sockaddr *)&cf->addrs[t->addr];
	int fd = lge_socket(t, cf, sa);
	if (fd < 0)
		return LGE_FATAL;
	if (nodelay && sa->sa_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	int rc = connect(fd, sa, cf->addrlens[t->addr]);
	int e = errno;
	if (rc != 0 && e == EAGAIN && sa->sa_family == AF_UNIX) {
		close(fd);
		return LGE_BUSY;
	}
	if ((rc == 0 || e == EINPROGRESS) && cf->tls) {
		/* the driver is "connected" when the handshake is over */
		int r = ev_open(t->ev, s, fd, h, rc == 0 ? EV_READ : EV_READ | EV_WRITE);
		if (r) {
			close(fd);
			lge_fatal(t, "", t->ev->what, -r);
			return LGE_FATAL;
		}
		if ((r = tls_attach(cf->tls, s, rc == 0)) != 0) {
			ev_close(s);
			if (r == -ENOMEM) {
				lge_fatal(t, "", "SSL_new", ENOMEM);
				return LGE_FATAL;
			}
			return lge_connect_failed(t, -r) ? LGE_REFUSED : LGE_FATAL;
		}
		t->active++;
		return LGE_CONNECTING;
	}
	if (rc == 0 || e == EINPROGRESS) {
		int r = ev_open(t->ev, s, fd, h, rc == 0 ? watch & ~EV_WRITE : watch);
		if (r) {
			close(fd);
			lge_fatal(t, "", t->ev->what, -r);
			return LGE_FATAL;
		}
		t->active++;
		return rc == 0 ? LGE_CONNECTED : LGE_CONNECTING;
	}
	close(fd);
	return lge_connect_failed(t, e) ? LGE_REFUSED : LGE_FATAL;
}

void lge_close(struct thr *t, struct ev_sock *s)
{
	ev_close(s);
	t->active--;
}

/* One thread: its event loop on the run's back end, then its driver. */
static void *thr_start(void *arg)
{
	struct thr *t = arg;
	int err = 0;
	const char *what = "";
	t->ev = ev_new(t->g->kind, (unsigned)t->nconns + 1, &err, &what);
	if (!t->ev)
		lge_fatal(t, "", what, err);
	else if ((err = ev_wakeup_fd(t->ev, t->g->stopfd)) != 0)
		lge_fatal(t, "", t->ev->what, -err);
	else if (t->cf->h2)
		lge_h2_run(t);
	else
		lge_h1_run(t);
	t->end = lg_now_us();
	if (t->id == 0)
		lge_wake_all(t->g); /* never leave the others waiting for a first head */
	if (t->cf->gnuplot_fd >= 0)
		lge_gp_flush(t);
	ev_free(t->ev);
	t->ev = NULL;
	if (t->cf->tls)
		tls_thread_done();
	return NULL;
}

enum lg_engine lg_engine_pick(const struct lg_conf *cf, char *why, size_t cap)
{
	/* the probe's verdict, kept for the process: only main()'s thread
	 * calls this, before and between runs */
	static int probed, usable;
	static char reason[160];
	if (cap)
		why[0] = 0;
	if (cf->engine == LG_ENGINE_EPOLL || cf->h2)
		return LG_ENGINE_EPOLL;
	if (!probed) {
		usable = ev_probe(EV_URING, reason, sizeof reason) == 0;
		probed = 1;
	}
	if (usable)
		return LG_ENGINE_URING;
	snprintf(why, cap, "%s", reason);
	return LG_ENGINE_EPOLL;
}

const char *lg_engine_name(enum lg_engine e)
{
	return e == LG_ENGINE_URING ? "uring" : e == LG_ENGINE_EPOLL ? "epoll" : "auto";
}

int lg_result_init(struct lg_result *r)
{
	memset(r, 0, sizeof *r);
	r->ctime = hist_new();
	r->dtime = hist_new();
	r->wait = hist_new();
	r->total = hist_new();
	r->ok = hist_new();
	r->unc = hist_new();
	r->unc_ok = hist_new();
	r->late = hist_new();
	if (!r->ctime || !r->dtime || !r->wait || !r->total || !r->ok || !r->unc || !r->unc_ok ||
	    !r->late) {
		lg_result_free(r);
		return -1;
	}
	return 0;
}

void lg_result_free(struct lg_result *r)
{
	hist_free(r->ctime);
	hist_free(r->dtime);
	hist_free(r->wait);
	hist_free(r->total);
	hist_free(r->ok);
	hist_free(r->unc);
	hist_free(r->unc_ok);
	hist_free(r->late);
	r->ctime = r->dtime = r->wait = r->total = r->ok = r->unc = r->unc_ok = r->late = NULL;
}

bool lg_rate_kept(const struct lg_result *r)
{
	return (double)r->sent >= LG_KEPT_SHARE * (double)r->scheduled;
}

static void merge(struct lg_result *o, const struct lg_result *r)
{
	o->done += r->done;
	o->doneka += r->doneka;
	o->good += r->good;
	o->bad += r->bad;
	o->epipe += r->epipe;
	o->err_length += r->err_length;
	o->err_conn += r->err_conn;
	o->err_recv += r->err_recv;
	o->err_except += r->err_except;
	o->err_response += r->err_response;
	o->err_timeout += r->err_timeout;
	o->err_truncated += r->err_truncated;
	o->err_status += r->err_status;
	o->err_reset += r->err_reset;
	o->totalread += r->totalread;
	o->totalbread += r->totalbread;
	o->totalposted += r->totalposted;
	if (!o->servername[0])
		memcpy(o->servername, r->servername, sizeof o->servername);
	hist_merge(o->ctime, r->ctime);
	hist_merge(o->dtime, r->dtime);
	hist_merge(o->wait, r->wait);
	hist_merge(o->total, r->total);
	hist_merge(o->ok, r->ok);
	hist_merge(o->unc, r->unc);
	hist_merge(o->unc_ok, r->unc_ok);
	hist_merge(o->late, r->late);
	o->late_n += r->late_n;
	o->late_busy += r->late_busy;
	o->sent += r->sent;
}

/* --rate: thread t's share of -n, the requests its connections' schedules
 * hold (connection j does the m < n with m = j (mod C)). */
static long rate_share(const struct lg_conf *cf, int id, int nt)
{
	long n = cf->requests, c = cf->concurrency, sum = 0;
	for (long j = id; j < c; j += nt)
		if (n > j)
			sum += (n - j + c - 1) / c;
	return sum;
}

int lg_run(const struct lg_conf *cf, struct lg_result *out)
{
	int nt = cf->threads < 1 ? 1 : cf->threads;
	if (nt > cf->concurrency)
		nt = cf->concurrency;
	struct shared g;
	memset(&g, 0, sizeof g);
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	pthread_mutex_init(&g.gpmu, NULL);
	g.stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	char why[160];
	g.kind = lg_engine_pick(cf, why, sizeof why) == LG_ENGINE_URING ? EV_URING : EV_EPOLL;
	struct thr *ts = calloc((size_t)nt, sizeof *ts);
	int rc = 0;
	if (g.stopfd < 0 || !ts) {
		snprintf(out->fatal_msg, sizeof out->fatal_msg, "Could not allocate memory");
		out->fatal = 1;
		out->fatal_code = 1;
		free(ts);
		if (g.stopfd >= 0)
			close(g.stopfd);
		return -1;
	}
	for (int i = 0; i < nt; i++) {
		struct thr *t = &ts[i];
		t->cf = cf;
		t->g = &g;
		t->id = i;
		t->nthreads = nt;
		t->nconns = cf->concurrency / nt + (i < cf->concurrency % nt);
		t->requests = cf->rate > 0 ? rate_share(cf, i, nt)
		                           : cf->requests / nt + (i < cf->requests % nt);
		/* --warmup inside the run (main.c decides; never with --rate):
		 * no budget until it ends, see lge_begin() */
		t->recording = cf->warmup_us == 0 || cf->rate > 0;
		t->requests_share = t->requests;
		if (!t->recording)
			t->requests = LONG_MAX / 2;
		t->gp = cf->gnuplot_fd >= 0 ? malloc(GPBUFSIZE) : NULL;
		if ((cf->gnuplot_fd >= 0 && !t->gp) || lg_result_init(&t->r)) {
			rc = -1;
			break;
		}
	}
	if (rc == 0) {
		struct timespec wts;
		clock_gettime(CLOCK_REALTIME, &wts);
		g.start = lg_now_us();
		uint64_t wall = (uint64_t)wts.tv_sec * 1000000u + (uint64_t)wts.tv_nsec / 1000u;
		g.wall_off = wall - g.start;
		g.record_from = g.start + (ts[0].recording ? 0 : cf->warmup_us);
		out->start_wall_us = wall + (g.record_from - g.start);
		g.stoptime = cf->tlimit_us ? g.record_from + cf->tlimit_us : UINT64_MAX;
		/* --rate: the schedule ends at -t, or when -n requests were due */
		double sched_s = 0;
		if (cf->rate > 0) {
			sched_s = (double)cf->requests / cf->rate;
			if (cf->tlimit_us && (double)cf->tlimit_us / 1e6 < sched_s)
				sched_s = (double)cf->tlimit_us / 1e6;
			g.sched_end = g.start + (uint64_t)(sched_s * 1e6);
		}
		lg_current = &g;
		int started = 0;
		for (int i = 0; i < nt; i++) {
			ts[i].last = g.record_from;
			if (pthread_create(&ts[i].tid, NULL, thr_start, &ts[i]) != 0)
				break;
			started++;
		}
		if (started < nt) {
			lge_stop_shared(&g);
			lge_wake_all(&g);
		}
		/* wait, reporting progress about once a second */
		for (;;) {
			int alive = 0;
			for (int i = 0; i < started; i++) {
				if (ts[i].joined)
					continue;
				if (pthread_tryjoin_np(ts[i].tid, NULL) == EBUSY)
					alive++;
				else
					ts[i].joined = 1;
			}
			if (!alive)
				break;
			if (cf->progress) {
				uint64_t d = 0, b = 0;
				for (int i = 0; i < nt; i++) {
					d += atomic_load_explicit(&ts[i].p_done,
					                          memory_order_relaxed);
					b += atomic_load_explicit(&ts[i].p_bad,
					                          memory_order_relaxed);
				}
				cf->progress(cf->progress_arg, d, b,
				             (double)(lg_now_us() - g.start) / 1e6);
			}
			struct pollfd pf = {.fd = -1};
			poll(&pf, 0, alive ? 100 : 0);
		}
		lg_current = NULL;
		uint64_t last = g.record_from, last_start = g.start, end = g.start;
		for (int i = 0; i < nt; i++) {
			merge(out, &ts[i].r);
			if (ts[i].last > last)
				last = ts[i].last;
			if (ts[i].last_start > last_start)
				last_start = ts[i].last_start;
			if (ts[i].end > end)
				end = ts[i].end;
		}
		if (atomic_load(&g.stop) && !g.fatal)
			out->interrupted = 1;
		if (out->interrupted)
			last = lg_now_us(); /* ab: record the final time if interrupted */
		out->timetaken = last > g.record_from ? (double)(last - g.record_from) / 1e6 : 0;
		if (cf->rate > 0) {
			/* the requests due before the schedule's end: -n, or the
			 * m = 0, 1, ... due at m / R before -t */
			double due = ceil(sched_s * cf->rate - 1e-9);
			out->scheduled = due < (double)cf->requests ? (long)due : cf->requests;
			out->schedule_s = sched_s;
			/* the time over which the load was offered: the schedule,
			 * or longer when requests started after it (-n, late); the
			 * wait for the answers after it is the drain */
			uint64_t offered = g.sched_end;
			if (last_start > offered)
				offered = last_start;
			if (!out->interrupted) {
				out->timetaken = (double)(offered - g.start) / 1e6;
				out->drain_s = end > offered ? (double)(end - offered) / 1e6 : 0;
			}
		}
		uint64_t d1 = atomic_load(&g.doclen1);
		out->doclen = d1 ? d1 - 1 : 0;
		out->fatal = g.fatal;
		out->fatal_code = g.fatal_code;
		memcpy(out->fatal_msg, g.fatal_msg, sizeof out->fatal_msg);
	} else {
		snprintf(out->fatal_msg, sizeof out->fatal_msg, "Could not allocate memory");
		out->fatal = 1;
		out->fatal_code = 1;
	}
	for (int i = 0; i < nt; i++) {
		free(ts[i].gp);
		lg_result_free(&ts[i].r);
	}
	free(ts);
	close(g.stopfd);
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.gpmu);
	return rc;
}
