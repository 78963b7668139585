/* ev_epoll: the event loop on epoll. Each socket is registered once,
 * edge-triggered, for reading (and for writing while a connect or a send
 * is pending or EV_WRITE is watched), so that a request costs no
 * epoll_ctl(): one send(), one recv() and a share of one epoll_wait().
 * Write interest is dropped when nothing wants it any more, since an idle
 * EPOLLOUT would wake the loop on every ACK that frees buffer space. */
#include "ev_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXEVENTS 256
#define RECV_BUF 65536 /* what one recv() may bring */
#define K_OUT 1u       /* EPOLLOUT is in the interest set */
#define K_ANN 2u       /* an EV_READ is being announced and no ev_recv() came yet */
#define K_FIN 4u       /* the edge being announced carries the peer's FIN */
#define READ_BITS (EV_READ | EV_RDHUP | EV_HUP | EV_ERR)

_Static_assert(EV_READ == EPOLLIN && EV_WRITE == EPOLLOUT && EV_ERR == EPOLLERR &&
                   EV_HUP == EPOLLHUP && EV_RDHUP == EPOLLRDHUP,
               "EV_* bits are epoll's");

struct ev_ep {
	struct ev ev;
	int epfd;
	int pwait2; /* epoll_pwait2() is there to wait with */
	char *buf;  /* every recv() lands here */
	struct epoll_event evs[MAXEVENTS];
};

static const struct ev_io ep_io;
static const struct ev_backend ep_backend;

static struct ev_ep *ep_of(struct ev *ev)
{
	return (struct ev_ep *)ev;
}

static void set_out(struct ev_sock *s, int on)
{
	if (!(s->kflags & K_OUT) == !on)
		return;
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0),
	                        .data.ptr = s};
	if (epoll_ctl(ep_of(s->ev)->epfd, EPOLL_CTL_MOD, s->fd, &e) == 0)
		s->kflags ^= K_OUT;
}

static int ep_open(struct ev *ev, struct ev_sock *s)
{
	s->io = &ep_io;
	s->kflags = s->watch & EV_WRITE ? K_OUT : 0;
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET |
	                                  (s->watch & EV_WRITE ? EPOLLOUT : 0),
	                        .data.ptr = s};
	if (epoll_ctl(ep_of(ev)->epfd, EPOLL_CTL_ADD, s->fd, &e)) {
		ev->what = "epoll_ctl";
		return -errno;
	}
	return 0;
}

static void ep_watch(struct ev_sock *s, unsigned events)
{
	s->watch = events;
	set_out(s, (events & EV_WRITE) || s->slen);
}

/* A read shorter than the buffer drained the socket, unless the peer's
 * FIN came with the edge (then the end of stream is still to be read):
 * the socket is dry, and the next ev_recv() of this edge says -EAGAIN
 * without asking the kernel. */
static ssize_t ep_recv(struct ev_sock *s, const char **p)
{
	struct ev_ep *ep = ep_of(s->ev);
	s->kflags &= ~K_ANN;
	s->unread = 0;
	ssize_t n;
	while ((n = recv(s->fd, ep->buf, RECV_BUF, 0)) < 0)
		if (errno != EINTR)
			return -errno;
	if (n < RECV_BUF && !(s->kflags & K_FIN))
		s->dry = 1;
	if (n)
		ep->ev.now = ev_clock_us(); /* when this data came */
	*p = ep->buf;
	return n;
}

/* Sends what is left of s's send; 0 while the socket is full, else 1 with
 * *err set (0 when it all went). */
static int send_rest(struct ev_sock *s, int *err)
{
	while (s->soff < s->slen) {
		ssize_t n = send(s->fd, s->sp + s->soff, s->slen - s->soff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			*err = errno;
			return 1;
		}
		s->soff += (size_t)n;
	}
	*err = 0;
	return 1;
}

static ssize_t ep_send(struct ev_sock *s, const void *p, size_t len)
{
	ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return n; /* the usual case: a request fits the socket's buffer */
	if (n < 0 && errno != EINTR && errno != EAGAIN)
		return -errno;
	s->sp = p;
	s->slen = len;
	s->soff = n > 0 ? (size_t)n : 0;
	int err;
	if (send_rest(s, &err) && (!err || s->soff == 0)) {
		s->slen = 0;
		return err ? -err : (ssize_t)len;
	}
	/* the rest when the socket has room; an error after a part went out
	 * is met again then, since the socket stays broken */
	size_t done = s->soff;
	s->sp += done;
	s->slen -= done;
	s->soff = 0;
	set_out(s, 1);
	return (ssize_t)done;
}

/* Tells s's handler; an EV_READ it leaves unanswered is kept (the data
 * stays in the kernel, but its edge is spent) for ev_recheck(). */
static inline void announce(struct ev_sock *s, unsigned m)
{
	if (!(m & READ_BITS)) {
		s->h->on_event(s, m);
		return;
	}
	uint32_t gen = s->gen;
	s->kflags = (s->kflags & K_OUT) | K_ANN | (m & (EV_RDHUP | EV_HUP) ? K_FIN : 0);
	s->dry = 0;
	s->h->on_event(s, m);
	if (s->gen != gen)
		return;
	if (s->kflags & K_ANN)
		s->unread |= m & READ_BITS;
	s->kflags &= K_OUT;
}

static void ep_recheck(struct ev_sock *s)
{
	unsigned m = s->unread;
	s->unread = 0;
	announce(s, m);
}

static void ep_close(struct ev_sock *s)
{
	close(s->fd);
	s->fd = -1;
	s->gen++;
	s->slen = 0;
	s->watch = 0;
	s->kflags = 0;
	s->unread = 0;
}

static void dispatch(struct ev_sock *s, unsigned m)
{
	if (__builtin_expect(s->slen != 0, 0) && (m & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err;
		if (!send_rest(s, &err))
			return;
		size_t sent = s->soff;
		s->slen = 0;
		uint64_t now = ev_now_update(s->ev);
		if (!err && !(s->watch & EV_WRITE))
			set_out(s, 0);
		uint32_t gen = s->gen;
		s->h->on_sent(s, sent, err, now);
		if (s->gen != gen)
			return;
		/* what else came with this edge; the error flag was the send's */
		m &= EPOLLIN | EPOLLRDHUP | EPOLLHUP;
		if (!m)
			return;
	}
	m &= EV_WRITE | READ_BITS;
	if (!(s->watch & EV_READ) && (m & (EV_READ | EV_RDHUP))) {
		/* not asked for yet: kept for an ev_recheck() once it is */
		s->unread |= m & (EV_READ | EV_RDHUP);
		m &= ~(EV_READ | EV_RDHUP);
	}
	announce(s, m);
}

static int ep_wait(struct ev *ev, uint64_t wait_us)
{
	struct ev_ep *ep = ep_of(ev);
	int n;
#ifdef LOADGEN_HAVE_EPOLL_PWAIT2
	/* a timeout in microseconds, so that timers (--rate's schedule) fire
	 * on time rather than up to a millisecond late; epoll_wait()'s
	 * milliseconds where the kernel lacks it (before Linux 5.11) */
	if (ep->pwait2) {
		struct timespec ts = {.tv_sec = (time_t)(wait_us / 1000000u),
		                      .tv_nsec = (long)(wait_us % 1000000u) * 1000};
		n = epoll_pwait2(ep->epfd, ep->evs, MAXEVENTS, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			ep->pwait2 = 0;
		else
			goto waited;
	}
#endif
	uint64_t ms = (wait_us + 999) / 1000;
	n = epoll_wait(ep->epfd, ep->evs, MAXEVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
#ifdef LOADGEN_HAVE_EPOLL_PWAIT2
waited:
#endif
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		ev->what = "apr_pollset_poll"; /* ab's name for its wait */
		return -errno;
	}
	ev_now_update(ev); /* when the loop woke; each recv() reads it again */
	for (int i = 0; i < n; i++) {
		struct ev_sock *s = ep->evs[i].data.ptr;
		if (s && s->fd >= 0) /* NULL: the wake-up fd; -1: closed in this batch */
			dispatch(s, ep->evs[i].events);
	}
	return n;
}

static int ep_wakeup_fd(struct ev *ev, int fd)
{
	/* level-triggered: it stays readable, every wait ends at once */
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(ep_of(ev)->epfd, EPOLL_CTL_ADD, fd, &e)) {
		ev->what = "epoll_ctl";
		return -errno;
	}
	return 0;
}

static void ep_free(struct ev *ev)
{
	struct ev_ep *ep = ep_of(ev);
	if (ep->epfd >= 0)
		close(ep->epfd);
	free(ep->buf);
	free(ep);
}

struct ev *ev_epoll_new(unsigned nsocks, int *err, const char **what)
{
	(void)nsocks;
	struct ev_ep *ep = calloc(1, sizeof *ep);
	if (!ep || !(ep->buf = malloc(RECV_BUF))) {
		free(ep);
		*err = ENOMEM;
		*what = "malloc";
		return NULL;
	}
	ep->ev.be = &ep_backend;
	ep->pwait2 = 1;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->epfd < 0) {
		*err = errno;
		*what = "epoll_create";
		ep_free(&ep->ev);
		return NULL;
	}
	return &ep->ev;
}

static const struct ev_io ep_io = {ep_recv,    ep_send,  ep_watch,
                                   ep_recheck, ep_close, ev_fd_error};
static const struct ev_backend ep_backend = {"epoll", ep_open, ep_wakeup_fd, ep_wait, ep_free};
