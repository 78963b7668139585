/* engine: per-thread event loops running ab's connection state machine.
 *
 * With epoll the per-request path is kept to one send() and one recv()
 * (sockets are registered once, edge-triggered, for both directions, so no
 * epoll_ctl per request), two clock reads and four histogram increments.
 * With io_uring (engine_uring.c) the same state machine is driven by
 * completions instead of readiness: write_request() queues the send, the
 * lge_io_*() entry points below take what completed. The counting
 * rules (good/bad/done, the first good response fixing the document length,
 * keep-alive detection, what ends a response) mirror ab's read_connection()
 * and close_connection() so the deterministic figures match ab's. */
#include "engine_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

static struct shared *volatile lg_current;

uint64_t lg_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The stop eventfd stays readable: every loop's epoll_wait returns at once. */
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
	pthread_mutex_lock(&g->mu);
	if (!g->fatal) {
		g->fatal = 1;
		g->fatal_code = code;
		snprintf(g->fatal_msg, sizeof g->fatal_msg, "%s%s: %s (%d)", prefix, what,
		         strerror(code), code);
	}
	pthread_mutex_unlock(&g->mu);
	lge_stop_shared(g);
	lge_wake_all(g);
}

static void start_connect(struct thr *t, struct conn *c);

/* For the progress line, read by the thread that called lg_run(). */
void lge_publish_failed(struct thr *t)
{
	uint64_t f = (uint64_t)(t->r.bad + t->r.err_timeout + t->r.err_truncated + t->r.err_status +
	                        t->r.err_reset);
	atomic_store_explicit(&t->p_bad, f, memory_order_relaxed);
}

/* Write interest only while a connect or a send is pending: an idle
 * EPOLLOUT would wake the loop on every ACK that frees buffer space. */
static void want_out(struct thr *t, struct conn *c, int on)
{
	if (c->want_out == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0),
	                         .data.ptr = c};
	if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

static void write_request(struct thr *t, struct conn *c, uint64_t now);
static void close_connection(struct thr *t, struct conn *c, int eof);
static void take_held(struct thr *t, struct conn *c, uint64_t now);

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
	if (t->r.done >= t->requests)
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

static inline void save_request(struct thr *t, struct conn *c, uint64_t now, int ka, int ok)
{
	lge_save(t, c->start, c->connect, c->endwrite, c->beginread, now, ka, ok);
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

static inline int check_length(struct thr *t, struct conn *c)
{
	return lge_check_length(t, c->bread, c->gotheader, c->cl, c->has_status, c->status);
}

static void reset_conn(struct conn *c)
{
	c->read = c->bread = c->length = c->wrote = 0;
	c->keepalive = c->gotheader = c->chunked = c->chunk_done = c->writing = 0;
	c->has_status = 0;
	c->cbx = 0;
	c->cl = -1;
	c->beginread = c->endwrite = 0;
}

/* Closes c's socket; with io_uring, what is in flight on it is cancelled
 * first, and its late completions are ignored. */
static void drop_fd(struct thr *t, struct conn *c)
{
	if (t->ur) {
		if (c->ur_ops & LGU_SEND)
			t->started--; /* cut before it went out, as with epoll */
		lgu_forget(t, c);
	}
	close(c->fd);
	c->fd = -1;
	t->active--;
}

/* eof: the response ended with the connection (not with an error). */
static void close_connection(struct thr *t, struct conn *c, int eof)
{
	if (c->read == 0 && c->keepalive) {
		/* the server legitimately shut an idle keep-alive connection */
		if (t->r.good)
			t->r.good--;
	} else {
		int failed = check_length(t, c);
		if (eof && c->chunked && !c->chunk_done && !failed) {
			t->r.err_truncated++;
			failed = 1;
		}
		uint64_t now = lg_now_us();
		t->last = now;
		save_request(t, c, now, 0,
		             eof && !failed && c->gotheader && c->status >= 200 && c->status < 300);
	}
	lge_publish_failed(t);
	if (c->fd >= 0)
		drop_fd(t, c);
	c->state = ST_UNCONN;
	start_connect(t, c);
}

static void start_others(struct thr *t)
{
	t->initialized = 1;
	for (int i = 1; i < t->nconns; i++)
		start_connect(t, &t->conns[i]);
	if (t->id == 0)
		lge_wake_all(t->g);
}


/* A connect failed with errno e (refused...): while nothing has succeeded
 * ab moves on to the next address; after 10 failures it gives up. False
 * when the run was aborted. Both engines' connect loops retry otherwise. */
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
 * as asked; -1 after reporting a fatal error. Shared by both engines. */
int lge_socket(struct thr *t, const struct lg_conf *cf, const struct sockaddr *sa)
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
	if (nodelay) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	int rc = connect(fd, sa, cf->addrlens[t->addr]);
	int e = errno;
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

static void start_connect(struct thr *t, struct conn *c)
{
	const struct lg_conf *cf = t->cf;
	for (;;) {
		if (!(t->started < t->requests) ||
		    atomic_load_explicit(&t->g->stop, memory_order_relaxed))
			return;
		reset_conn(c);
		uint64_t now = lg_now_us();
		if (cf->rate > 0) {
			if (c->intended > now) {
				c->state = ST_RATEWAIT;
				return;
			}
		}
		const struct sockaddr *sa = (const struct sockaddr *)&cf->addrs[t->addr];
		int fd = lge_socket(t, cf, sa);
		if (fd < 0)
			return;
		c->start = t->last = now;
		int rc = connect(fd, sa, cf->addrlens[t->addr]);
		int e = errno;
		if ((rc == 0 || e == EINPROGRESS) && t->ur) {
			c->fd = fd;
			t->active++;
			if (rc == 0) {
				c->state = ST_WRITE;
				write_request(t, c, now);
			} else {
				c->state = ST_CONNECTING;
				lgu_watch_connect(t, c);
			}
			return;
		}
		if (rc == 0 || e == EINPROGRESS) {
			struct epoll_event ev = {
			    .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
			if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
				e = errno;
				close(fd);
				lge_fatal(t, "", "epoll_ctl", e);
				return;
			}
			c->fd = fd;
			c->want_out = 1;
			t->active++;
			if (rc == 0) {
				c->state = ST_WRITE;
				write_request(t, c, now);
			} else {
				c->state = ST_CONNECTING;
			}
			return;
		}
		close(fd);
		c->state = ST_UNCONN;
		if (!lge_connect_failed(t, e))
			return;
	}
}

static void write_request(struct thr *t, struct conn *c, uint64_t now)
{
	const struct lg_conf *cf = t->cf;
	if (t->started >= t->requests) {
		c->state = ST_IDLE;
		if (t->ur && (c->early_len || c->held_res))
			take_held(t, c, now); /* read as the epoll loop reads an idle socket */
		return;
	}
	if (!c->writing) {
		if (cf->rate > 0) {
			if (c->intended > now) {
				c->state = ST_RATEWAIT;
				return;
			}
			c->start = c->intended;
		}
		c->connect = now;
		c->wrote = 0;
		c->writing = 1;
	} else if (now > c->connect + cf->timeout_us) {
		printf("Send request timed out!\n");
		close_connection(t, c, 0);
		return;
	}
	if (t->ur) {
		/* counted as started now, so that no other connection sends past
		 * -n while this one is in flight; lge_io_sent() gives it back if
		 * the send fails */
		t->started++;
		c->state = ST_WRITE;
		c->endwrite = now; /* the kernel sends it on the next submit */
		if (!(c->ur_ops & LGU_RECV))
			lgu_arm_recv(t, c);
		lgu_send(t, c, cf->req, cf->reqlen);
		return;
	}
	while (c->wrote < cf->reqlen) {
		ssize_t n = send(c->fd, cf->req + c->wrote, cf->reqlen - c->wrote, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				c->state = ST_WRITE;
				want_out(t, c, 1);
				return;
			}
			t->r.epipe++;
			printf("Send request failed!\n");
			close_connection(t, c, 0);
			return;
		}
		t->r.totalposted += n;
		c->wrote += (size_t)n;
	}
	c->endwrite = t->last = lg_now_us();
	c->writing = 0;
	if (cf->keepalive)
		want_out(t, c, 0); /* once per connection; not worth it when it closes */
	t->started++;
	if (cf->rate > 0)
		c->intended += t->interval;
	c->state = ST_READ;
}

/* A response finished on a keep-alive connection: count it, then send the
 * next request on the same connection (ab's read_connection() tail). */
static void keepalive_done(struct thr *t, struct conn *c, uint64_t now)
{
	t->r.good++;
	int failed = check_length(t, c);
	save_request(t, c, now, 1, !failed && c->status >= 200 && c->status < 300);
	lge_publish_failed(t);
	reset_conn(c);
	c->start = c->connect = t->last = now;
	c->state = ST_WRITE;
	/* Sent after the whole batch of events is read, as wrk does: the
	 * server then finds several requests per wake-up instead of one. */
	t->pending[t->npending++] = c;
}

static void flush_pending(struct thr *t)
{
	if (!t->npending)
		return;
	uint64_t now = lg_now_us();
	for (int i = 0; i < t->npending; i++) {
		struct conn *c = t->pending[i];
		if (c->state == ST_WRITE && c->fd >= 0 && !c->writing)
			write_request(t, c, now);
	}
	t->npending = 0;
}

static void got_head(struct thr *t, struct conn *c, const char *head, size_t hlen)
{
	const struct lg_conf *cf = t->cf;
	if (!t->r.good)
		resp_server_name(head, hlen, t->r.servername, sizeof t->r.servername);
	struct resp_head h;
	resp_parse_head(head, hlen, &h);
	if (h.code[0] != '2') {
		t->r.err_response++;
		if (cf->verbosity >= 2)
			printf("WARNING: Response code not 2xx (%s)\n", h.code);
	} else if (cf->verbosity >= 3) {
		printf("LOG: Response code = %s\n", h.code);
	}
	c->gotheader = 1;
	c->status = h.status;
	c->has_status = 1;
	c->cl = h.content_length;
	int nobody =
	    cf->head || h.status == 204 || h.status == 304 || (h.status >= 100 && h.status < 200);
	if (cf->keepalive) {
		if (!cf->http11) {
			if (h.ka_token) {
				c->keepalive = 1;
				c->length = (h.content_length >= 0 && !cf->head)
				                ? (size_t)h.content_length
				                : 0;
			}
		} else if (!h.conn_close && (h.http11 || h.ka_token)) {
			if (nobody) {
				c->keepalive = 1;
				c->length = 0;
			} else if (h.chunked) {
				c->keepalive = 1;
				c->chunked = 1;
				memset(&c->ch, 0, sizeof c->ch);
			} else if (h.content_length >= 0) {
				c->keepalive = 1;
				c->length = (size_t)h.content_length;
			}
		}
	}
	if (!t->initialized)
		start_others(t);
}

/* Feeds r bytes just read; returns 1 when a keep-alive response finished
 * (and the next request went out), 0 otherwise. */
static int got_bytes(struct thr *t, struct conn *c, const char *p, size_t r, uint64_t now)
{
	const struct lg_conf *cf = t->cf;
	t->r.totalread += (int64_t)r;
	if (c->read == 0)
		c->beginread = now;
	c->read += r;
	const char *body = p;
	size_t blen = 0;
	if (!c->gotheader) {
		int tl;
		if (c->cbx == 0 && cf->verbosity < 2) {
			/* common case: the whole head is in this read, parse in place */
			size_t lim = r < CBUFFSIZE - 1 ? r : CBUFFSIZE - 1;
			long e = resp_head_end(p, lim, &tl);
			if (e >= 0) {
				got_head(t, c, p, (size_t)e);
				c->bread = r - (size_t)e - (size_t)tl;
				body = p + e + tl;
				blen = c->bread;
				t->r.totalbread += (int64_t)c->bread;
				goto body;
			}
		}
		if (!c->cbuff && !(c->cbuff = malloc(CBUFFSIZE))) {
			lge_fatal(t, "", "malloc", ENOMEM);
			return 0;
		}
		size_t space = CBUFFSIZE - 1 - (size_t)c->cbx;
		size_t tocopy = space < r ? space : r;
		memcpy(c->cbuff + c->cbx, p, tocopy);
		c->cbx += (int)tocopy;
		space -= tocopy;
		c->cbuff[c->cbx] = 0;
		if (cf->verbosity >= 2)
			printf("LOG: header received:\n%s\n", c->cbuff);
		long e = resp_head_end(c->cbuff, (size_t)c->cbx, &tl);
		if (e < 0) {
			if (space)
				return 0;
			/* head invalid or too big: ab drops the connection */
			drop_fd(t, c);
			c->state = ST_UNCONN;
			t->r.err_response++;
			if (t->r.bad++ > 10) {
				pthread_mutex_lock(&t->g->mu);
				if (!t->g->fatal) {
					t->g->fatal = 1;
					t->g->fatal_code = 1;
					snprintf(t->g->fatal_msg, sizeof t->g->fatal_msg,
					         "\nTest aborted after 10 failures\n\n");
				}
				pthread_mutex_unlock(&t->g->mu);
				lge_stop_shared(t->g);
				lge_wake_all(t->g);
				return 0;
			}
			start_connect(t, c);
			return 0;
		}
		got_head(t, c, c->cbuff, (size_t)e);
		c->bread += (size_t)c->cbx - (size_t)e - (size_t)tl + r - tocopy;
		t->r.totalbread += (int64_t)c->bread;
		/* the body bytes: what followed the head in cbuff, then the rest of p */
		if (c->chunked) {
			size_t used;
			size_t inbuf = (size_t)c->cbx - (size_t)e - (size_t)tl;
			int k = resp_chunked_feed(&c->ch, c->cbuff + e + tl, inbuf, &used);
			if (k == 0 && r > tocopy)
				k = resp_chunked_feed(&c->ch, p + tocopy, r - tocopy, &used);
			if (k != 0)
				c->chunk_done = 1;
		}
		goto done_check;
	} else {
		c->bread += r;
		t->r.totalbread += (int64_t)r;
		blen = r;
	}
body:
	if (c->chunked && blen) {
		size_t used;
		if (resp_chunked_feed(&c->ch, body, blen, &used) != 0)
			c->chunk_done = 1;
	}
done_check:
	if (c->keepalive && (c->chunked ? c->chunk_done : c->bread >= c->length)) {
		keepalive_done(t, c, now);
		return 1;
	}
	return 0;
}

static void recv_failed(struct thr *t, struct conn *c, int e)
{
	if (t->cf->recverrok) {
		t->r.err_recv++;
		t->r.bad++;
		close_connection(t, c, 0);
		if (t->cf->verbosity >= 1)
			fprintf(stderr, "%s: %s (%d)\n", "apr_socket_recv", strerror(e), e);
		return;
	}
	t->r.err_recv++;
	lge_fatal(t, "", "apr_socket_recv", e);
}

static void read_connection(struct thr *t, struct conn *c, uint32_t events)
{
	for (;;) {
		ssize_t r = recv(c->fd, t->buf, RBUFSIZE, 0);
		if (r < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			recv_failed(t, c, errno);
			return;
		}
		if (r == 0) {
			t->r.good++;
			close_connection(t, c, 1);
			return;
		}
		uint64_t now = lg_now_us();
		if (got_bytes(t, c, t->buf, (size_t)r, now))
			return;
		if (c->fd < 0 || c->state != ST_READ)
			return;
		/* a short read drained the socket; keep reading only when the
		 * peer closed too (its FIN came with this edge) or we read to EOF */
		if ((size_t)r < RBUFSIZE && c->keepalive && !(events & (EPOLLRDHUP | EPOLLHUP)))
			return;
	}
}

static void connect_failed(struct thr *t, struct conn *c, int e)
{
	const struct lg_conf *cf = t->cf;
	if (t->r.good == 0 && t->addr + 1 < cf->naddrs) {
		t->addr++;
		drop_fd(t, c);
		c->state = ST_UNCONN;
		start_connect(t, c);
		return;
	}
	/* ab reads a refused socket first (the recv error), then counts the
	 * poll error as an exception */
	recv_failed(t, c, e);
	if (cf->recverrok) {
		t->r.bad++;
		t->r.err_except++;
	}
}

static void handle(struct thr *t, struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case ST_CONNECTING:
		if (ev & (EPOLLERR | EPOLLHUP)) {
			int e = 0;
			socklen_t l = sizeof e;
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
			connect_failed(t, c, e ? e : ECONNREFUSED);
			return;
		}
		if (ev & EPOLLOUT) {
			c->state = ST_WRITE;
			write_request(t, c, lg_now_us());
		}
		return;
	case ST_WRITE:
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			write_request(t, c, lg_now_us());
		if (c->state == ST_READ && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
			read_connection(t, c, ev);
		return;
	case ST_READ:
	case ST_IDLE:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			read_connection(t, c, ev);
		if ((ev & EPOLLERR) && !atomic_load_explicit(&t->g->stop, memory_order_relaxed)) {
			/* ab's poll loop counts the error flag as an exception even
			 * after the read already failed (with -r it goes on) */
			t->r.bad++;
			t->r.err_except++;
		}
		return;
	default:
		return;
	}
}

/* io_uring: the outcome of one receive (bytes, 0 at end of stream, or
 * -errno), taken as read_connection() takes a recv() result. */
static void on_data(struct thr *t, struct conn *c, const char *p, int res, uint64_t now)
{
	if (res > 0) {
		got_bytes(t, c, p, (size_t)res, now);
		return;
	}
	if (res == 0) {
		t->r.good++;
		close_connection(t, c, 1);
		return;
	}
	recv_failed(t, c, -res);
	/* a socket error also raises the poll error flag, which ab's loop
	 * counts as an exception (see handle()) */
	if (!atomic_load_explicit(&t->g->stop, memory_order_relaxed)) {
		t->r.bad++;
		t->r.err_except++;
	}
}

/* io_uring: what arrived while the request was going out, taken now that
 * it is out (the epoll loop would only have read it then). */
static void take_held(struct thr *t, struct conn *c, uint64_t now)
{
	int fd = c->fd;
	uint32_t gen = c->ur_gen;
	size_t n = c->early_len;
	int held = c->held_res;
	c->early_len = 0;
	c->held_res = 0;
	if (n)
		on_data(t, c, c->early, (int)n, now);
	if (!held || c->fd != fd || c->ur_gen != gen)
		return;
	if (c->state != ST_READ && c->state != ST_IDLE) {
		c->held_res = held; /* a response ended: after the next request */
		return;
	}
	if (held < 0) {
		on_data(t, c, NULL, held, now);
		return;
	}
	/* The server hung up while this request went out; the request then
	 * met a reset, which epoll (and ab's poll) would report as the error
	 * flag beside the end of stream: count it the same way. */
	int err = 0;
	socklen_t len = sizeof err;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	on_data(t, c, NULL, 0, now);
	if (err && !atomic_load_explicit(&t->g->stop, memory_order_relaxed)) {
		t->r.bad++;
		t->r.err_except++;
	}
}

void lge_io_ready(struct thr *t, struct conn *c, uint32_t events)
{
	if (c->state == ST_CONNECTING)
		handle(t, c, events);
}

void lge_io_sent(struct thr *t, struct conn *c, int res, uint64_t now)
{
	const struct lg_conf *cf = t->cf;
	if (res <= 0) {
		t->started--; /* it did not go out after all */
		t->r.epipe++;
		printf("Send request failed!\n");
		close_connection(t, c, 0);
		return;
	}
	t->r.totalposted += res;
	c->wrote += (size_t)res;
	if (c->wrote < cf->reqlen) {
		lgu_send(t, c, cf->req + c->wrote, cf->reqlen - c->wrote);
		return;
	}
	if (c->wrote != (size_t)res)
		c->endwrite = now; /* it took several sends */
	c->writing = 0;
	t->last = now;
	c->state = ST_READ;
	if (c->early_len || c->held_res)
		take_held(t, c, now);
}

void lge_io_received(struct thr *t, struct conn *c, const char *p, int res, uint64_t now)
{
	if (c->state == ST_WRITE || c->state == ST_CONNECTING) {
		/* the request is not out yet: keep this for after it */
		if (res > 0) {
			char *e = realloc(c->early, c->early_len + (size_t)res);
			if (!e) {
				lge_fatal(t, "", "realloc", ENOMEM);
				return;
			}
			c->early = e;
			memcpy(e + c->early_len, p, (size_t)res);
			c->early_len += (size_t)res;
		} else if (!c->held_res) {
			c->held_res = res ? res : 1;
		}
		return;
	}
	on_data(t, c, p, res, now);
}

/* -s: a request (connect, send or wait) older than the timeout fails. */
static void check_timeouts(struct thr *t, uint64_t now)
{
	for (int i = 0; i < t->nconns; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != ST_CONNECTING && c->state != ST_WRITE && c->state != ST_READ)
			continue;
		uint64_t since = c->state == ST_READ && c->endwrite ? c->endwrite : c->start;
		if (now > since + t->cf->timeout_us) {
			t->r.err_timeout++;
			lge_publish_failed(t);
			drop_fd(t, c);
			c->state = ST_UNCONN;
			start_connect(t, c);
		}
	}
}

/* --rate: starts what is due, returns microseconds until the next due. */
static uint64_t rate_tick(struct thr *t, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (int i = 0; i < t->nconns; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != ST_RATEWAIT)
			continue;
		if (c->intended <= now) {
			if (c->fd < 0)
				start_connect(t, c);
			else
				write_request(t, c, now);
		}
		if (c->state == ST_RATEWAIT && c->intended - now < next)
			next = c->intended > now ? c->intended - now : 0;
	}
	return next;
}

static int rate_waiting(struct thr *t)
{
	for (int i = 0; i < t->nconns; i++)
		if (t->conns[i].state == ST_RATEWAIT)
			return 1;
	return 0;
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	const struct lg_conf *cf = t->cf;
	struct shared *g = t->g;
	struct epoll_event evs[MAXEVENTS];

	if (g->uring) {
		/* created here: a single-issuer ring belongs to its thread */
		int rc = lgu_thread_init(t);
		if (rc) {
			lge_fatal(t, "", "io_uring_setup", -rc);
			goto out;
		}
	}
	if (t->id != 0) {
		pthread_mutex_lock(&g->mu);
		while (!g->go && !atomic_load(&g->stop))
			pthread_cond_wait(&g->cv, &g->mu);
		pthread_mutex_unlock(&g->mu);
		if (cf->rate > 0)
			for (int i = 0; i < t->nconns; i++)
				t->conns[i].intended =
				    lg_now_us() + (uint64_t)i * t->interval / t->nconns;
		start_others(t);
		start_connect(t, &t->conns[0]);
	} else {
		if (cf->rate > 0)
			for (int i = 0; i < t->nconns; i++)
				t->conns[i].intended =
				    g->start + (uint64_t)i * t->interval / t->nconns;
		start_connect(t, &t->conns[0]);
	}
	uint64_t next_scan = lg_now_us() + 1000000;
	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		if (t->r.done >= t->requests)
			break;
		if (cf->tlimit_us && t->last >= g->stoptime)
			break;
		uint64_t now = lg_now_us();
		if (cf->tlimit_us && now >= g->stoptime)
			break;
		uint64_t wait_us = 1000000;
		if (cf->rate > 0) {
			uint64_t n = rate_tick(t, now);
			if (n < wait_us)
				wait_us = n;
		}
		if (t->active == 0 && (cf->rate <= 0 || !rate_waiting(t)))
			break; /* nothing left that could finish a request */
		if (cf->tlimit_us && g->stoptime - now < wait_us)
			wait_us = g->stoptime - now;
		if (t->ur) {
			int n = lgu_wait(t, wait_us);
			if (n < 0) {
				lge_fatal(t, "", "io_uring_enter", -n);
				break;
			}
			flush_pending(t);
			now = lg_now_us();
			if (now >= next_scan) {
				check_timeouts(t, now);
				next_scan = now + 1000000;
			}
			continue;
		}
		int n = epoll_wait(t->epfd, evs, MAXEVENTS, (int)((wait_us + 999) / 1000));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			lge_fatal(t, "", "apr_pollset_poll", errno);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c)
				continue; /* stop eventfd */
			if (c->fd < 0)
				continue;
			handle(t, c, evs[i].events);
		}
		flush_pending(t);
		if (n == 0 || n < MAXEVENTS) {
			now = lg_now_us();
			if (now >= next_scan) {
				check_timeouts(t, now);
				next_scan = now + 1000000;
			}
		}
	}
out:
	if (t->id == 0)
		lge_wake_all(g); /* never leave the others waiting for a first head */
	if (cf->gnuplot_fd >= 0)
		lge_gp_flush(t);
	lgu_thread_free(t);
	for (int i = 0; i < t->nconns; i++) {
		if (t->conns[i].fd >= 0)
			close(t->conns[i].fd);
		free(t->conns[i].cbuff);
		free(t->conns[i].early);
	}
	return NULL;
}

/* One HTTP/2 thread: its event loop on the run's back end, then its driver. */
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
	else
		lge_h2_run(t);
	if (t->cf->gnuplot_fd >= 0)
		lge_gp_flush(t);
	ev_free(t->ev);
	t->ev = NULL;
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
	if (cf->engine == LG_ENGINE_EPOLL || cf->h2 || cf->rate > 0)
		return LG_ENGINE_EPOLL;
	if (!probed) {
		usable = lgu_probe(reason, sizeof reason) == 0;
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
	if (!r->ctime || !r->dtime || !r->wait || !r->total || !r->ok) {
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
	r->ctime = r->dtime = r->wait = r->total = r->ok = NULL;
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
	g.uring = !cf->h2 && lg_engine_pick(cf, why, sizeof why) == LG_ENGINE_URING;
	g.kind = EV_EPOLL; /* --h2 runs on epoll (lg_engine_pick()) */
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
		t->requests = cf->requests / nt + (i < cf->requests % nt);
		t->initialized = 0;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		t->conns = calloc((size_t)t->nconns, sizeof *t->conns);
		/* io_uring: a connection can be queued twice in one flush, when
		 * bytes that arrived before its request complete a response */
		t->pending = calloc((size_t)t->nconns * 2, sizeof *t->pending);
		t->buf = malloc(RBUFSIZE);
		t->gp = cf->gnuplot_fd >= 0 ? malloc(GPBUFSIZE) : NULL;
		if (cf->rate > 0) {
			double per_thread = cf->rate / nt;
			t->interval = (uint64_t)(1e6 * t->nconns / per_thread);
			if (!t->interval)
				t->interval = 1;
		}
		if (t->epfd < 0 || !t->conns || !t->pending || !t->buf ||
		    (cf->gnuplot_fd >= 0 && !t->gp) || lg_result_init(&t->r)) {
			rc = -1;
			break;
		}
		for (int k = 0; k < t->nconns; k++)
			t->conns[k].fd = -1;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		epoll_ctl(t->epfd, EPOLL_CTL_ADD, g.stopfd, &ev);
	}
	if (rc == 0) {
		struct timespec wts;
		clock_gettime(CLOCK_REALTIME, &wts);
		g.start = lg_now_us();
		uint64_t wall = (uint64_t)wts.tv_sec * 1000000u + (uint64_t)wts.tv_nsec / 1000u;
		g.wall_off = wall - g.start;
		out->start_wall_us = wall;
		g.stoptime = cf->tlimit_us ? g.start + cf->tlimit_us : UINT64_MAX;
		lg_current = &g;
		int started = 0;
		for (int i = 0; i < nt; i++) {
			ts[i].last = g.start;
			if (pthread_create(&ts[i].tid, NULL, cf->h2 ? thr_start : thr_main,
			                   &ts[i]) != 0)
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
		uint64_t last = g.start;
		for (int i = 0; i < nt; i++) {
			merge(out, &ts[i].r);
			if (ts[i].last > last)
				last = ts[i].last;
		}
		if (atomic_load(&g.stop) && !g.fatal)
			out->interrupted = 1;
		if (out->interrupted)
			last = lg_now_us(); /* ab: record the final time if interrupted */
		out->timetaken = (double)(last - g.start) / 1e6;
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
		if (ts[i].epfd > 0)
			close(ts[i].epfd);
		free(ts[i].conns);
		free(ts[i].pending);
		free(ts[i].buf);
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
