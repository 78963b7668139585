/* upstream.c — the stub "remote site" the proxy apps fetch from: every GET
 * is answered 200 with a body of exactly --size bytes after --delay-ms. It
 * must never be the bottleneck of a benchmark (nor take CPU from the load
 * generator it shares a core with), hence a small HTTP/1.x server of its own
 * on raw libevent events whose steady state makes no system call it can
 * avoid and allocates nothing per request: a connection's read interest stays
 * registered from accept to close (no epoll_ctl per request), one read per
 * request, every delayed answer waits in one sorted list behind one timerfd
 * that wakes the loop once per batch of due answers (see "the answers
 * waiting"), while answers wait the requests that arrive wake nobody and are
 * collected on the answers' clock (see "reading on the answer clock"), and
 * the common answer, headers and body, is built once at start-up and leaves
 * in one write.
 *
 * The query overrides the defaults per request, so tests can provoke every
 * upstream failure: ?delay=MS ?size=BYTES ?status=CODE, ?close=1 (drop the
 * connection without answering), ?reset=1 (headers announcing the full
 * length, then half the body, then close), ?stall=1 (never answer).
 * GET /_stats answers the connection and request counters as text.
 *
 * Byte i of every body is PATTERN[i % 64], so a client can check it.
 */
#include "upstream.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PATTERN "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#define BLOCK (64 * 1024)  /* the pattern block; a multiple of 64 */
#define ACCEPT_BURST 64    /* accepts per wake-up, for fairness */
#define IOV_BATCH 64
/* An answer leaves at most 1/GRAIN_DIV of --delay-ms late (and at most
 * GRAIN_MAX_NS), never early: the timer is armed on that grain, so answers
 * due within one grain leave in one wake-up. At 20 ms that is 156 µs, less
 * than 0.8% of the delay, which is all it can take from Little's bound. */
#define GRAIN_DIV 128
#define GRAIN_MAX_NS 1000000u

static void conn_close(struct conn *c)
{
	struct server *s = c->s;
	if (c->waiting)
		upstream_wait_remove(c);
	if (c->reading)
		epoll_ctl(s->rfd, EPOLL_CTL_DEL, c->fd, NULL);
	event_del(&c->wev);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->open--;
	free(c);
}

/* In or out of the reading set; false when it could not be added. */
static bool set_reading(struct conn *c, bool on)
{
	if (on == c->reading)
		return true;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(c->s->rfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c->fd, &ev) != 0 && on)
		return false;
	c->reading = on;
	return true;
}

static int process(struct conn *c);

/* Write what is left of the answer. Returns 1 when all is out, 0 when the
 * socket is full (wev armed), -1 when the connection is gone. */
static int flush(struct conn *c)
{
	const size_t total = c->hdr_len + c->body_out;
	while (c->sent < total) {
		struct iovec iov[IOV_BATCH];
		int n = 0;
		size_t off = c->sent;
		if (off < c->hdr_len) {
			iov[n++] = (struct iovec){(char *)c->hdr + off, c->hdr_len - off};
			off = c->hdr_len;
		}
		size_t body_off = off - c->hdr_len;
		while (n < IOV_BATCH && body_off < c->body_out) {
			size_t in_block = body_off % BLOCK;
			size_t len = BLOCK - in_block;
			if (len > c->body_out - body_off)
				len = c->body_out - body_off;
			const char *base = c->text ? c->text : c->s->block;
			iov[n++] = (struct iovec){(char *)base + in_block, len};
			body_off += len;
		}
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				event_add(&c->wev, NULL);
				return 0;
			}
			return -1;
		}
		c->sent += (size_t)w;
	}
	return 1;
}

/* The answer is out (or could not be written): next request or close.
 * Returns -1 when c is gone. */
static int answered(struct conn *c, int flushed)
{
	if (flushed < 0 || c->mode == M_RESET || !c->keep) {
		if (flushed > 0)
			shutdown(c->fd, SHUT_WR);
		conn_close(c);
		return -1;
	}
	c->busy = false;
	c->text = NULL;
	if (!set_reading(c, !c->eof)) { /* back on after back-pressure; no call when on */
		conn_close(c);
		return -1;
	}
	return c->in_process ? 0 : process(c); /* a pipelined request may wait */
}

/* Start writing the answer set up in c (status, size, mode, keep).
 * Returns -1 when c is gone. */
int upstream_send_answer(struct conn *c)
{
	struct server *s = c->s;
	if (c->status == 200 && c->size == s->cfg.size && !c->text && c->mode == M_ANSWER &&
	    !c->head) {
		/* The common answer, built at start-up: whole (one buffer, one
		 * write) when it fits, else its headers and the pattern block. */
		enum framing fr = !c->keep ? F_CLOSE : c->http10 ? F_KEEP10 : F_KEEP;
		bool whole = s->whole[fr] != NULL;
		c->hdr = whole ? s->whole[fr] : s->hdr[fr];
		c->hdr_len = whole ? s->whole_len[fr] : s->hdr_len[fr];
		c->body_out = whole ? 0 : c->size;
	} else {
		const char *connection = !c->keep || c->mode == M_RESET ? "Connection: close\r\n"
		                         : c->http10 ? "Connection: keep-alive\r\n"
		                                     : "";
		c->hdr = c->hdr_buf;
		c->hdr_len = upstream_format_head(c->hdr_buf, sizeof(c->hdr_buf), c->status,
		                                  c->size, connection);
		bool no_body = c->head || c->status == 204 || c->status == 304;
		c->body_out = no_body ? 0 : c->mode == M_RESET ? c->size / 2 : c->size;
	}
	c->sent = 0;
	int rc = flush(c);
	return rc != 0 ? answered(c, rc) : 0;
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	int rc = flush(c);
	if (rc != 0)
		(void)answered(c, rc);
}

/* A short error answer, then close. Returns -1 when c is gone. */
static int fail(struct conn *c, int status)
{
	c->busy = true;
	c->keep = false;
	c->mode = M_ANSWER;
	c->head = false;
	c->status = status;
	c->text = c->text_buf;
	int n =
	    snprintf(c->text_buf, sizeof(c->text_buf), "%d %s\n", status, upstream_reason(status));
	c->size = (unsigned long)n;
	set_reading(c, false);
	return upstream_send_answer(c);
}

/* Parse one request head out of c->in (ends at head_end, after the blank
 * line) and start answering it. Returns -1 when c is gone. */
static int start_request(struct conn *c, size_t head_end)
{
	struct server *s = c->s;
	const char *p = c->in, *end = c->in + head_end;
	const char *eol = memchr(p, '\r', (size_t)(end - p));
	/* request line: METHOD SP TARGET SP HTTP/1.x */
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1')) {
		return fail(c, 400);
	}
	s->requests++;
	c->http10 = sp2[8] == '0';
	c->head = upstream_token_eq(p, (size_t)(sp1 - p), "HEAD");
	const char *target = sp1 + 1;
	const char *qm = memchr(target, '?', (size_t)(sp2 - target));
	const char *path_end = qm ? qm : sp2;

	bool want_close = false, want_keep = false, chunked = false;
	unsigned long clen = 0;
	for (const char *h = eol + 2; h < end - 2;) {
		const char *he = memchr(h, '\r', (size_t)(end - h));
		const char *colon = memchr(h, ':', (size_t)(he - h));
		if (!colon)
			return fail(c, 400);
		const char *v = colon + 1;
		while (v < he && (*v == ' ' || *v == '\t'))
			v++;
		size_t nlen = (size_t)(colon - h), vlen = (size_t)(he - v);
		if (upstream_token_eq(h, nlen, "connection")) {
			want_close |= upstream_has_token(v, vlen, "close");
			want_keep |= upstream_has_token(v, vlen, "keep-alive");
		} else if (upstream_token_eq(h, nlen, "content-length")) {
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (!upstream_parse_ulong(v, vlen, ULONG_MAX / 2, &clen))
				return fail(c, 400);
		} else if (upstream_token_eq(h, nlen, "transfer-encoding")) {
			chunked = true;
		}
		h = he + 2;
	}
	if (chunked)
		return fail(c, 501); /* no upstream client of ours sends bodies */
	c->keep = c->http10 ? want_keep && !want_close : !want_close;

	struct overrides o = {.delay = s->cfg.delay_ms, .size = s->cfg.size, .status = 200};
	if (qm && !upstream_parse_query(qm + 1, (size_t)(sp2 - qm - 1), &o))
		return fail(c, 400);
	bool stats = upstream_token_eq(target, (size_t)(path_end - target), "/_stats");

	/* Done with the head (the views above die here): drop it, then as much
	 * of the body as is here; the rest is skipped as it arrives. */
	size_t drop = head_end + (clen < c->in_len - head_end ? clen : c->in_len - head_end);
	c->skip = clen - (drop - head_end);
	c->in_len -= drop;
	if (c->in_len)
		memmove(c->in, c->in + drop, c->in_len);
	c->busy = true;
	c->status = (int)o.status;
	c->size = o.size;
	c->text = NULL;
	c->mode = o.close ? M_CLOSE : o.stall ? M_STALL : o.reset ? M_RESET : M_ANSWER;
	if (c->mode == M_RESET && c->size < 2)
		c->size = 2; /* so that half the body is short of the length */
	if (stats) {
		int n = snprintf(c->text_buf, sizeof(c->text_buf),
		                 "connections %lu\nrequests %lu\nopen %lu\nwakeups %lu\n"
		                 "collections %lu\n",
		                 s->accepted, s->requests, s->open, s->wakeups, s->collections);
		c->text = c->text_buf;
		c->size = (unsigned long)n;
		c->mode = M_ANSWER;
		o.delay = 0;
	}
	switch (c->mode) {
	case M_CLOSE:
		conn_close(c);
		return -1;
	case M_STALL:
		return 0; /* read on, to notice the client leaving */
	case M_ANSWER:
	case M_RESET:
		break;
	}
	if (o.delay == 0)
		return upstream_send_answer(c);
	/* Reading goes on meanwhile: a registered event costs nothing, taking
	 * it off and back two epoll_ctl() per request. A pipelined request is
	 * kept in c->in until this answer is out. */
	upstream_wait_add(c, (c->arrived ? c->arrived : upstream_mono_ns()) + (uint64_t)o.delay * 1000000u);
	return 0;
}

/* Answer the requests waiting in the buffer, one at a time (answers go
 * out in order). Returns -1 when c is gone. */
static int process(struct conn *c)
{
	c->in_process = true;
	while (!c->busy && c->in_len) {
		if (c->skip) { /* the rest of a request body */
			size_t n = c->skip < c->in_len ? (size_t)c->skip : c->in_len;
			c->skip -= n;
			c->in_len -= n;
			memmove(c->in, c->in + n, c->in_len);
			continue;
		}
		/* The head ends at the first blank line. */
		const char *end = NULL;
		if (c->in_len >= 4) {
			const char *p = c->in, *lim = c->in + c->in_len - 3;
			while ((p = memchr(p, '\r', (size_t)(lim - p)))) {
				if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
					end = p + 4;
					break;
				}
				p++;
			}
		}
		if (!end) {
			if (c->in_len == IN_CAP)
				return fail(c, 431);
			break;
		}
		if (start_request(c, (size_t)(end - c->in)) < 0)
			return -1;
	}
	c->in_process = false;
	return 0;
}

void upstream_read_ready(struct conn *c, uint64_t since)
{
	struct server *s = c->s;
	if (c->mode == M_STALL && c->busy)
		c->in_len = 0; /* a stalled request never ends: drop what follows */
	if (c->in_len == IN_CAP) {
		set_reading(c, false); /* resumes once the answer is out */
		return;
	}
	ssize_t n;
	uint64_t arrived = 0;
	if (s->stamps) {
		union {
			char buf[CMSG_SPACE(sizeof(struct timespec))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {c->in + c->in_len, IN_CAP - c->in_len};
		struct msghdr m = {.msg_iov = &iov,
		                   .msg_iovlen = 1,
		                   .msg_control = ctl.buf,
		                   .msg_controllen = sizeof(ctl.buf)};
		n = recvmsg(c->fd, &m, 0);
		if (n > 0)
			arrived = upstream_arrival(s, &m, since);
	} else {
		n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
	}
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0 && c->busy && c->mode != M_STALL) {
			/* The client's side ended (perhaps only half) with its
			 * answer pending: it still gets it, then the close. */
			c->eof = true;
			c->keep = false;
			set_reading(c, false);
			return;
		}
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	c->arrived = arrived; /* for the requests complete now; later ones read the clock */
	if (process(c) == 0)
		c->arrived = 0;
}

/* ---- accepting ---- */

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct server *s = arg;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* The listen socket stays readable: without a pause
				 * this would spin. Connections wait in the backlog. */
				static const struct timeval pause = {0, 50 * 1000};
				event_del(&s->accept_ev);
				evtimer_add(&s->accept_pause, &pause);
			}
			return;
		}
		struct conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (s->stamps)
			setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		memset(c, 0, offsetof(struct conn, in));
		c->s = s;
		c->fd = fd;
		event_assign(&c->wev, s->base, fd, EV_WRITE, write_cb, c);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->accepted++;
		s->open++;
		if (!set_reading(c, true))
			conn_close(c);
	}
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *s = arg;
	event_add(&s->accept_ev, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct server *s = arg;
	event_base_loopexit(s->base, NULL);
}

int main(int argc, char **argv)
{
	struct server s = {
	    .cfg = {.listen = "127.0.0.1:9000", .delay_ms = 0, .size = 64, .backlog = 4096},
	    .lfd = -1,
	};
	int rc = upstream_parse_args(&s.cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	/* One descriptor per client connection: a benchmark at high
	 * concurrency needs more than the usual soft limit of 1024. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
	}

	const char *why = NULL;
	char bound[INET6_ADDRSTRLEN + 16];
	s.lfd = upstream_listen(s.cfg.listen, s.cfg.backlog, &why, bound, sizeof(bound));
	if (s.lfd < 0) {
		fprintf(stderr, PROG ": cannot listen on %s: %s\n", s.cfg.listen, why);
		return 1;
	}
	s.block = malloc(BLOCK);
	/* No precise-timer mode: answers wait on our own timerfd (see "the
	 * answers waiting"), so libevent's timers (the accept pause) may be
	 * coarse, and its loop needs no timerfd_settime() per turn. */
	struct event_config *ec = event_config_new();
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	/* poll(), not epoll: see "reading on the answer clock" */
	if (ec)
		event_config_avoid_method(ec, "epoll");
	s.base = ec ? event_base_new_with_config(ec) : NULL;
	if (ec)
		event_config_free(ec);
	s.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s.tfd < 0) {
		fprintf(stderr, PROG ": timerfd_create: %s\n", strerror(errno));
		return 1;
	}
	s.rfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.rfd < 0) {
		fprintf(stderr, PROG ": epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	if (!s.block || !s.base) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < BLOCK; i++)
		s.block[i] = PATTERN[i % 64];
	static const char *const connection[F_COUNT] = {[F_KEEP] = "",
	                                                [F_CLOSE] = "Connection: close\r\n",
	                                                [F_KEEP10] = "Connection: keep-alive\r\n"};
	for (int f = 0; f < F_COUNT; f++) {
		s.hdr_len[f] = upstream_format_head(s.hdr[f], sizeof(s.hdr[f]), 200, s.cfg.size,
		                                    connection[f]);
		if (s.cfg.size > BLOCK)
			continue;
		/* without it, the answer leaves from hdr and block (two iovecs) */
		s.whole[f] = malloc(s.hdr_len[f] + s.cfg.size);
		if (s.whole[f]) {
			memcpy(s.whole[f], s.hdr[f], s.hdr_len[f]);
			memcpy(s.whole[f] + s.hdr_len[f], s.block, s.cfg.size);
			s.whole_len[f] = s.hdr_len[f] + s.cfg.size;
		}
	}
	uint64_t grain = (uint64_t)s.cfg.delay_ms * 1000000u / GRAIN_DIV;
	s.grain = grain < GRAIN_MAX_NS ? grain : GRAIN_MAX_NS;
	s.stamps = s.grain && !s.cfg.wake_per_request; /* and with them, ticking */
	event_assign(&s.rfd_ev, s.base, s.rfd, EV_READ | EV_PERSIST, upstream_rfd_cb, &s);
	event_add(&s.rfd_ev, NULL);
	event_assign(&s.tev, s.base, s.tfd, EV_READ | EV_PERSIST, upstream_wait_fire_cb, &s);
	event_add(&s.tev, NULL);
	event_assign(&s.accept_ev, s.base, s.lfd, EV_READ | EV_PERSIST, accept_cb, &s);
	event_add(&s.accept_ev, NULL);
	evtimer_assign(&s.accept_pause, s.base, accept_resume_cb, &s);
	evsignal_assign(&s.sigterm, s.base, SIGTERM, signal_cb, &s);
	evsignal_assign(&s.sigint, s.base, SIGINT, signal_cb, &s);
	evsignal_add(&s.sigterm, NULL);
	evsignal_add(&s.sigint, NULL);

	/* listen() has run: connections queue from now on, so this line is a
	 * true readiness signal. */
	printf(PROG ": listening on %s\n", bound);
	fflush(stdout);

	event_base_dispatch(s.base);

	if (!s.cfg.quiet)
		printf(PROG ": stopped after %lu requests on %lu connections\n", s.requests,
		       s.accepted);
	while (s.conns)
		conn_close(s.conns);
	event_del(&s.accept_ev);
	event_del(&s.accept_pause);
	event_del(&s.sigterm);
	event_del(&s.sigint);
	event_del(&s.tev);
	event_del(&s.rfd_ev);
	close(s.tfd);
	close(s.rfd);
	close(s.lfd);
	event_base_free(s.base);
	for (int f = 0; f < F_COUNT; f++)
		free(s.whole[f]);
	free(s.block);
	return 0;
}
