/* ev: the event loop a protocol driver runs on, one per thread, with its
 * back end chosen once when the loop is made: epoll (ev_epoll.c: readiness,
 * then one recv() or send() per operation) or io_uring (ev_uring.c: the
 * sends of a batch and the wait in one io_uring_enter(), each socket's data
 * landing through one multishot receive in buffers the kernel picks).
 *
 * A driver sees the same things on both. on_event(EV_READ) says ev_recv()
 * has something for it: data, the end of the stream or an error, in the
 * order they came; what the driver leaves unread waits (in the kernel with
 * epoll, held by the loop with io_uring) and comes again with the next
 * arrival, or when the driver calls ev_recheck(). EV_WRITE says a connect
 * finished. A send is handed over whole: ev_send() returns how much went out
 * at once and, when that is not all, the back end sends the rest and reports
 * the end through on_sent(). Timers (a heap, below) run the same on both.
 * Like redis's ae.c, the loop knows nothing of HTTP; the calls on a socket
 * go through its ev_io table, so a transport (TLS, say) can stand between a
 * driver and the back end.
 *
 * Everything here runs in the loop's thread; only ev_clock_us() may be
 * called anywhere. */
#ifndef LOADGEN_EV_H
#define LOADGEN_EV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum ev_kind { EV_EPOLL, EV_URING };

/* Readiness, with poll(2)'s values. */
#define EV_READ 0x001u   /* ev_recv() has data, an end of stream or an error */
#define EV_WRITE 0x004u  /* a connect finished (announced once per watch) */
#define EV_ERR 0x008u    /* the socket's error flag is up */
#define EV_HUP 0x010u    /* both directions are shut */
#define EV_RDHUP 0x2000u /* the peer shut its side: the end of stream follows the data */

struct ev;
struct ev_sock;

/* What a socket's owner is told. */
struct ev_handler {
	/* Readiness (EV_* bits). A driver that does not read now may leave
	 * EV_READ unanswered and call ev_recheck() when it is ready. */
	void (*on_event)(struct ev_sock *s, unsigned events);
	/* The rest of an ev_send() went out (sent bytes more than ev_send()
	 * returned) or failed (err: the errno). now: when it left, in the
	 * loop's clock: the time it was handed to the kernel when one
	 * operation took it all, else when its last part went. */
	void (*on_sent)(struct ev_sock *s, size_t sent, int err, uint64_t now);
};

/* The operations on a socket: the back end's, or a transport's over them
 * (tls.c: TLS between the driver and the back end). */
struct ev_io {
	ssize_t (*recv)(struct ev_sock *s, const char **p);
	ssize_t (*send)(struct ev_sock *s, const void *p, size_t len);
	void (*watch)(struct ev_sock *s, unsigned events);
	void (*recheck)(struct ev_sock *s);
	void (*close)(struct ev_sock *s);
	int (*error)(struct ev_sock *s); /* what failed: ev_sock_error() */
};

/* One socket on a loop, embedded in its owner's connection, whose memory
 * must stay valid while the loop runs (completions may name it after a
 * close). Drivers read fd and watch; the rest is the back end's. */
struct ev_sock {
	int fd; /* -1 while closed */
	unsigned watch;
	unsigned unread; /* something to read went unanswered: ev_recheck() has work */
	unsigned dry;    /* the back end knows ev_recv() has nothing more to give now */
	const struct ev_io *io;
	const struct ev_handler *h;
	struct ev *ev;
	void *xp; /* a transport's state (tls.c); NULL without one */
	/* the back end's own */
	unsigned kflags; /* what the kernel has: epoll interest, io_uring operations */
	uint32_t gen;    /* bumped by every close: late completions are told apart */
	uint32_t id;     /* io_uring: the socket's number in its loop, 0 = none yet */
	const char *sp;  /* the part of a send still to go */
	size_t slen, soff;
	uint64_t st; /* io_uring: when the send was queued */
	char *held;  /* io_uring: data that came while the driver did not read */
	size_t held_len;
	int held_res; /* and what ended it: 1 end of stream, < 0 an error */
};

/* A timer: fire() runs (once) from ev_run_once() when the loop's clock
 * reaches when. */
struct ev_timer {
	uint64_t when;
	void (*fire)(struct ev_timer *tm, uint64_t now);
	unsigned pos; /* its place in the heap + 1; 0: not armed */
};

/* The loop; a back end's state follows it in memory. */
struct ev {
	uint64_t now; /* the loop's clock, µs: see ev_now() */
	const struct ev_backend *be;
	struct ev_timer **heap;
	unsigned ntimers, heapcap;
	int err;          /* a failure to report from ev_run_once() (errno) */
	const char *what; /* the call that failed last */
};

/* 0 when this kernel and build can run the back end; else -1 and why. */
int ev_probe(enum ev_kind kind, char *why, size_t cap);

/* A loop for about nsocks sockets, on kind's back end, in the thread that
 * will run it. NULL with *err (errno) and *what (the call) on failure. */
struct ev *ev_new(enum ev_kind kind, unsigned nsocks, int *err, const char **what);
void ev_free(struct ev *ev);

/* Watches fd (non-blocking; connected, or connecting when watch has
 * EV_WRITE: then EV_READ is announced only once the connect is over) as s,
 * for h. 0, or -errno with ev->what naming the call. */
int ev_open(struct ev *ev, struct ev_sock *s, int fd, const struct ev_handler *h, unsigned watch);

/* An fd whose readability only ends the current wait (a stop signal). */
int ev_wakeup_fd(struct ev *ev, int fd);

/* Fires the timers due at ev_now(), then waits up to max_us (less when a
 * timer is due sooner) and handles what happened. The number of events
 * handled, or -errno (ev->what names the call). */
int ev_run_once(struct ev *ev, uint64_t max_us);

/* The monotonic clock, µs (inline: it is read a few times per request). */
static inline uint64_t ev_clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The loop's clock: updated by ev_now_update(), and by the back end when
 * a wait ends and when it reads: after each recv() that brought data with
 * epoll, once per batch of completions with io_uring (they became visible
 * together). */
static inline uint64_t ev_now(const struct ev *ev)
{
	return ev->now;
}

static inline uint64_t ev_now_update(struct ev *ev)
{
	return ev->now = ev_clock_us();
}

/* Arms tm (again) for when; stops it. */
void ev_timer_start(struct ev *ev, struct ev_timer *tm, uint64_t when);
void ev_timer_stop(struct ev *ev, struct ev_timer *tm);

static inline int ev_timer_armed(const struct ev_timer *tm)
{
	return tm->pos != 0;
}

/* Data (> 0 bytes at *p, valid until the handler returns), 0 at the end
 * of the stream, -EAGAIN when nothing (more) is there, or another -errno.
 * It answers an on_event(EV_READ): a handler reads until -EAGAIN (or
 * until it has what it wants: the rest is announced again when more
 * comes). */
static inline ssize_t ev_recv(struct ev_sock *s, const char **p)
{
	if (s->dry)
		return -EAGAIN;
	return s->io->recv(s, p);
}

/* Starts sending p[0..len) (which must stay as it is until the send ends):
 * len when it all went out now, fewer bytes (maybe 0) when the rest goes
 * out later (on_sent() says when), or -errno when it failed now. One send
 * at a time per socket. */
static inline ssize_t ev_send(struct ev_sock *s, const void *p, size_t len)
{
	return s->io->send(s, p, len);
}

/* What to announce from now on: EV_READ, EV_WRITE or both. */
static inline void ev_watch(struct ev_sock *s, unsigned events)
{
	s->io->watch(s, events);
}

/* The driver reads s again: announce what came while it did not (an
 * EV_READ it left unanswered). */
static inline void ev_recheck(struct ev_sock *s)
{
	if (s->unread)
		s->io->recheck(s);
}

/* Why the socket failed: its pending error (SO_ERROR, which reading
 * clears), or a transport's (EPROTO for a failed TLS handshake); 0: none. */
static inline int ev_sock_error(struct ev_sock *s)
{
	return s->io->error(s);
}

/* The fd's SO_ERROR: the back ends' ev_io.error. */
int ev_fd_error(struct ev_sock *s);

/* Stops watching s, abandons what is in flight on it (an unfinished send
 * is not reported) and closes its fd. */
static inline void ev_close(struct ev_sock *s)
{
	s->io->close(s);
}

#endif
