/* ev_uring: the event loop on io_uring.
 *
 * With epoll every keep-alive request costs a send() and a recv() system
 * call plus a share of epoll_wait(). Here the sends queued while a batch of
 * completions is handled go to the kernel together in the one
 * io_uring_enter() that also waits for the next batch, and each socket
 * keeps one multishot receive armed for as long as its owner reads, its
 * data landing in buffers the kernel takes from a ring shared with us
 * (provided buffers, returned as soon as the handler is done with them),
 * so a request costs no system call of its own. Where the kernel has it,
 * the ring is single-issuer with deferred task work: the receives then run
 * inside our io_uring_enter(), not from interrupts.
 *
 * Completions are turned into ev.h's readiness: a receive is announced as
 * EV_READ and handed out by ev_recv() from the kernel's buffer; what the
 * handler leaves unread is copied aside and announced again by
 * ev_recheck(), in arrival order. A connect is watched by a poll. A
 * completion names its socket, its operation and the socket's generation
 * (bumped by every close), so what completes after a close is ignored. */
#include "ev_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#define BUF_SIZE 16384 /* one provided receive buffer */
#define BGID 0         /* the buffer group of the receives */
#define GEN_MASK 0xffffffu

/* the operations in flight on a socket (its kflags) */
#define K_RECV 1u /* a multishot receive is armed */
#define K_SEND 2u
#define K_POLL 4u /* waiting for a connect to finish */

enum { OP_WAKE, OP_POLL, OP_SEND, OP_RECV, OP_CANCEL };

struct ev_ur {
	struct ev ev;
	struct io_uring ring;
	int ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	unsigned nbufs;
	int mask;
	struct ev_sock **socks; /* by id - 1 */
	uint32_t nsocks, capsocks;
	/* the completion being announced: what ev_recv() hands out */
	struct ev_sock *cur;
	const char *cur_p;
	int cur_res;
};

static const struct ev_io ur_io;
static const struct ev_backend ur_backend;

static struct ev_ur *ur_of(struct ev *ev)
{
	return (struct ev_ur *)ev;
}

/* user_data: socket id, generation, operation */
static inline uint64_t tag(const struct ev_sock *s, unsigned op)
{
	return (uint64_t)s->id << 32 | (uint64_t)(s->gen & GEN_MASK) << 8 | op;
}

static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

static struct io_uring_sqe *sqe_get_full(struct ev_ur *u)
{
	io_uring_submit(&u->ring);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		u->ev.err = EBUSY;
		u->ev.what = "io_uring_get_sqe";
	}
	return sqe;
}

/* The next SQE; a full submission queue goes to the kernel first. NULL
 * (and the loop's error set) when even that leaves no room. */
static inline struct io_uring_sqe *sqe_get(struct ev_ur *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	return __builtin_expect(sqe != NULL, 1) ? sqe : sqe_get_full(u);
}

/* Registers a ring of n provided buffers of BUF_SIZE bytes as group BGID. */
static int bufs_init(struct io_uring *ring, struct ev_ur *u, unsigned n)
{
	u->nbufs = n;
	u->mask = io_uring_buf_ring_mask(n);
	u->br_bytes = (size_t)n * sizeof(struct io_uring_buf);
	void *m =
	    mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		u->br = NULL;
		return -errno;
	}
	u->br = m;
	u->bufs = malloc((size_t)n * BUF_SIZE);
	if (!u->bufs)
		return -ENOMEM;
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uint64_t)(uintptr_t)u->br, .ring_entries = n, .bgid = BGID};
	int rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc)
		return rc;
	io_uring_buf_ring_init(u->br);
	for (unsigned i = 0; i < n; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
		                      (unsigned short)i, u->mask, (int)i);
	io_uring_buf_ring_advance(u->br, (int)n);
	return 0;
}

static void bufs_free(struct ev_ur *u)
{
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->bufs);
	u->br = NULL;
	u->bufs = NULL;
}

static void buf_recycle(struct ev_ur *u, unsigned bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, u->mask, 0);
	io_uring_buf_ring_advance(u->br, 1);
}

/* Single issuer with deferred task work (6.1), else cooperative task work
 * (5.19), else the default: the cheapest this kernel accepts. */
static int ring_init(struct io_uring *ring, unsigned entries)
{
	static const unsigned modes[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = modes[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = entries * 4;
		rc = io_uring_queue_init_params(entries, ring, &p);
		if (rc != -EINVAL)
			return rc;
	}
	return rc;
}

int ev_uring_probe(char *why, size_t cap)
{
	struct ev_ur u;
	memset(&u, 0, sizeof u);
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int rc = io_uring_queue_init_params(8, &u.ring, &p);
	if (rc < 0) {
		snprintf(why, cap, "io_uring_setup: %s", strerror(-rc));
		return -1;
	}
	int ok = 0;
	int sv[2] = {-1, -1};
	struct io_uring_probe *pr = io_uring_get_probe_ring(&u.ring);
	if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_FAST_POLL) ||
	    !(p.features & IORING_FEAT_NODROP) || !pr ||
	    !io_uring_opcode_supported(pr, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(pr, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(pr, IORING_OP_POLL_ADD) ||
	    !io_uring_opcode_supported(pr, IORING_OP_ASYNC_CANCEL)) {
		snprintf(why, cap, "kernel lacks io_uring features (5.11+ needed)");
		goto out;
	}
	if ((rc = bufs_init(&u.ring, &u, 8)) != 0) {
		snprintf(why, cap, "provided buffer rings: %s (5.19+ needed)", strerror(-rc));
		goto out;
	}
	/* a multishot receive on a non-blocking socket must wait for data
	 * (6.0+), not fail with EAGAIN */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, cap, "socketpair: %s", strerror(errno));
		goto out;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u.ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_submit(&u.ring);
	if (write(sv[1], "x", 1) != 1) {
		snprintf(why, cap, "write: %s", strerror(errno));
		goto out;
	}
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_sec = 1};
	rc = io_uring_wait_cqe_timeout(&u.ring, &cqe, &ts);
	if (rc == 0 && cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) &&
	    (cqe->flags & IORING_CQE_F_BUFFER))
		ok = 1;
	else if (rc)
		snprintf(why, cap, "multishot receive: %s (6.0+ needed)", strerror(-rc));
	else
		snprintf(why, cap, "multishot receive: %s (6.0+ needed)",
		         cqe->res < 0 ? strerror(-cqe->res) : "unexpected completion");
out:
	if (pr)
		io_uring_free_probe(pr);
	io_uring_queue_exit(&u.ring);
	bufs_free(&u);
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	if (ok && cap)
		why[0] = 0;
	return ok ? 0 : -1;
}

static void arm_poll(struct ev_ur *u, struct ev_sock *s)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, s->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, tag(s, OP_POLL));
	s->kflags |= K_POLL;
}

static void arm_recv(struct ev_ur *u, struct ev_sock *s)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	if (!sqe)
		return;
	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(s, OP_RECV));
	s->kflags |= K_RECV;
}

/* Queues a send of p[0..len) on s; -1 when there is no room. */
static inline int queue_send(struct ev_ur *u, struct ev_sock *s, const char *p, size_t len)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	if (!sqe)
		return -1;
	io_uring_prep_send(sqe, s->fd, p, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(s, OP_SEND));
	s->kflags |= K_SEND;
	return 0;
}

/* Cancels op on s; its completion, if any, is dropped. */
static void cancel(struct ev_ur *u, struct ev_sock *s, unsigned op)
{
	struct io_uring_sqe *sqe = sqe_get(u);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, tag(s, op), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, OP_CANCEL);
}

static int ur_open(struct ev *ev, struct ev_sock *s)
{
	struct ev_ur *u = ur_of(ev);
	if (!s->id) {
		if (u->nsocks == u->capsocks) {
			uint32_t cap = u->capsocks ? u->capsocks * 2 : 64;
			struct ev_sock **n = realloc(u->socks, cap * sizeof *n);
			if (!n) {
				ev->what = "malloc";
				return -ENOMEM;
			}
			u->socks = n;
			u->capsocks = cap;
		}
		u->socks[u->nsocks++] = s;
		s->id = u->nsocks;
	}
	s->io = &ur_io;
	s->held_len = 0;
	s->held_res = 0;
	/* while connecting, the receive is armed once the connect is over */
	if (s->watch & EV_WRITE)
		arm_poll(u, s);
	else if (s->watch & EV_READ)
		arm_recv(u, s);
	return ev->err ? -ev->err : 0;
}

static void ur_watch(struct ev_sock *s, unsigned events)
{
	struct ev_ur *u = ur_of(s->ev);
	unsigned old = s->watch;
	s->watch = events;
	if ((events & EV_WRITE) && !(old & EV_WRITE) && !(s->kflags & K_POLL)) {
		arm_poll(u, s);
	} else if (!(events & EV_WRITE) && (s->kflags & K_POLL)) {
		cancel(u, s, OP_POLL);
		s->kflags &= ~K_POLL;
	}
	if ((events & EV_READ) && !(s->kflags & (K_RECV | K_POLL))) {
		arm_recv(u, s); /* (else the connect's end arms it) */
	} else if (!(events & EV_READ) && (s->kflags & K_RECV)) {
		cancel(u, s, OP_RECV);
		s->kflags &= ~K_RECV;
	}
}

/* The completion being announced, once: the socket is dry after it. */
static ssize_t ur_recv(struct ev_sock *s, const char **p)
{
	struct ev_ur *u = ur_of(s->ev);
	if (u->cur != s)
		return -EAGAIN;
	u->cur = NULL;
	s->dry = 1;
	*p = u->cur_p;
	return u->cur_res;
}

static ssize_t ur_send(struct ev_sock *s, const void *p, size_t len)
{
	struct ev_ur *u = ur_of(s->ev);
	s->sp = p;
	s->slen = len;
	s->soff = 0;
	s->st = u->ev.now; /* the kernel takes it at the next submit */
	if (queue_send(u, s, p, len)) {
		s->slen = 0;
		return -u->ev.err;
	}
	return 0;
}

/* Keeps what the handler did not read, after what is kept already. */
static void hold(struct ev_ur *u, struct ev_sock *s, const char *p, int res)
{
	if (res <= 0) {
		if (!s->held_res)
			s->held_res = res ? res : 1;
		s->unread = EV_READ;
		return;
	}
	/* rare (a server answering before the request is out): no spare room */
	char *n = realloc(s->held, s->held_len + (size_t)res);
	if (!n) {
		u->ev.err = ENOMEM;
		u->ev.what = "realloc";
		return;
	}
	s->held = n;
	memcpy(s->held + s->held_len, p, (size_t)res);
	s->held_len += (size_t)res;
	s->unread = EV_READ;
}

/* Announces one receive's outcome; 1 when the handler took it. */
static inline int announce(struct ev_ur *u, struct ev_sock *s, const char *p, int res, unsigned m)
{
	struct ev_sock *outer = u->cur;
	const char *outer_p = NULL;
	int outer_res = 0;
	if (__builtin_expect(outer != NULL, 0)) {
		/* a handler rechecks another socket before reading its own */
		outer_p = u->cur_p;
		outer_res = u->cur_res;
	}
	uint32_t gen = s->gen;
	u->cur = s;
	u->cur_p = p;
	u->cur_res = res;
	s->dry = 0;
	s->h->on_event(s, m);
	int taken = u->cur != s || s->gen != gen;
	u->cur = outer;
	if (__builtin_expect(outer != NULL, 0)) {
		u->cur_p = outer_p;
		u->cur_res = outer_res;
	}
	return taken;
}

static unsigned events_of(int res)
{
	return res > 0 ? EV_READ : res == 0 ? EV_READ | EV_RDHUP : EV_READ | EV_ERR | EV_HUP;
}

static void ur_recheck(struct ev_sock *s);

/* A receive completed: announced as epoll announces an edge, with all that
 * is unread (what waits already, then this). */
static void received(struct ev_ur *u, struct ev_sock *s, const char *p, int res)
{
	if (s->unread) {
		hold(u, s, p, res);
		ur_recheck(s);
	} else if (!announce(u, s, p, res, events_of(res))) {
		hold(u, s, p, res);
	}
}

/* What came while the handler did not read: the data, then (when the
 * handler is still reading) how the stream ended. */
static void ur_recheck(struct ev_sock *s)
{
	struct ev_ur *u = ur_of(s->ev);
	uint32_t gen = s->gen;
	s->unread = 0;
	if (s->held_len) {
		size_t n = s->held_len;
		s->held_len = 0;
		if (!announce(u, s, s->held, (int)n, EV_READ)) {
			s->held_len = n; /* still where it was */
			s->unread = EV_READ;
			return;
		}
	}
	if (!s->held_res || s->gen != gen || s->fd < 0)
		return;
	int res = s->held_res;
	s->held_res = 0;
	unsigned m = events_of(res < 0 ? res : 0);
	if (res > 0) {
		/* The peer hung up while the request went out, and the request
		 * then met a reset: epoll would report the error flag beside the
		 * end of stream, so say so too. */
		if (ev_fd_error(s))
			m |= EV_ERR;
	}
	if (!announce(u, s, NULL, res < 0 ? res : 0, m) && s->gen == gen) {
		s->held_res = res;
		s->unread = EV_READ;
	}
}

static void ur_close(struct ev_sock *s)
{
	struct ev_ur *u = ur_of(s->ev);
	static const unsigned ops[][2] = {{K_RECV, OP_RECV}, {K_SEND, OP_SEND}, {K_POLL, OP_POLL}};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (s->kflags & ops[i][0])
			cancel(u, s, ops[i][1]);
	if (u->cur == s)
		u->cur = NULL;
	close(s->fd);
	s->fd = -1;
	s->kflags = 0;
	s->gen++;
	s->watch = 0;
	s->slen = 0;
	free(s->held); /* rare: not worth keeping for the next connection */
	s->held = NULL;
	s->held_len = 0;
	s->held_res = 0;
	s->unread = 0;
}

static void sent(struct ev_sock *s, int res, uint64_t now)
{
	if (res <= 0) {
		size_t n = s->soff;
		s->slen = 0;
		s->h->on_sent(s, n, res < 0 ? -res : EPIPE, now);
		return;
	}
	s->soff += (size_t)res;
	if (s->soff < s->slen) {
		queue_send(ur_of(s->ev), s, s->sp + s->soff, s->slen - s->soff);
		return;
	}
	size_t n = s->slen;
	s->slen = 0;
	s->h->on_sent(s, n, 0, n == (size_t)res ? s->st : now);
}

static void dispatch(struct ev_ur *u, const struct io_uring_cqe *cqe, uint64_t now)
{
	uint64_t ud = cqe->user_data;
	unsigned op = ud & 0xff;
	int res = cqe->res;
	if (op == OP_WAKE || op == OP_CANCEL)
		return;
	struct ev_sock *s = u->socks[(ud >> 32) - 1];
	uint32_t gen = (uint32_t)(ud >> 8) & GEN_MASK;
	int live = s->fd >= 0 && gen == (s->gen & GEN_MASK);
	switch (op) {
	case OP_POLL:
		if (live) {
			s->kflags &= ~K_POLL;
			s->watch &= ~EV_WRITE;
			unsigned m = res < 0 ? EV_ERR : (unsigned)res;
			if ((s->watch & EV_READ) && !(s->kflags & K_RECV) &&
			    !(m & (EV_ERR | EV_HUP)))
				arm_recv(u, s);
			s->h->on_event(s, m);
		}
		return;
	case OP_SEND:
		if (live) {
			s->kflags &= ~K_SEND;
			sent(s, res, now);
		}
		return;
	case OP_RECV: {
		const char *p = NULL;
		unsigned bid = 0;
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			p = u->bufs + (size_t)bid * BUF_SIZE;
		}
		if (live) {
			if (!(cqe->flags & IORING_CQE_F_MORE))
				s->kflags &= ~K_RECV;
			if (res == -ENOBUFS) {
				arm_recv(u, s);
			} else {
				received(u, s, p, res);
				/* the kernel may end a multishot receive at any
				 * time: re-arm one that ended without EOF/error */
				if (res > 0 && s->fd >= 0 && gen == (s->gen & GEN_MASK) &&
				    !(s->kflags & K_RECV) && (s->watch & EV_READ))
					arm_recv(u, s);
			}
		}
		if (p)
			buf_recycle(u, bid);
		return;
	}
	default:
		return;
	}
}

static int ur_wait(struct ev *ev, uint64_t wait_us)
{
	struct ev_ur *u = ur_of(ev);
	struct __kernel_timespec ts = {.tv_sec = (long long)(wait_us / 1000000u),
	                               .tv_nsec = (long long)(wait_us % 1000000u) * 1000};
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR) {
		ev->what = "io_uring_enter";
		return rc;
	}
	/* the whole batch became visible at once: one clock read for it */
	uint64_t now = ev_now_update(ev);
	unsigned head, n = 0;
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		n++;
		dispatch(u, cqe, now);
	}
	io_uring_cq_advance(&u->ring, n);
	if (ev->err)
		return -ev->err;
	return (int)n;
}

static int ur_wakeup_fd(struct ev *ev, int fd)
{
	struct io_uring_sqe *sqe = sqe_get(ur_of(ev));
	if (!sqe)
		return -ev->err;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, OP_WAKE);
	return 0;
}

static void ur_free(struct ev *ev)
{
	struct ev_ur *u = ur_of(ev);
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring); /* cancels what is in flight */
	bufs_free(u);
	free(u->socks); /* the sockets are their owners', closed by now */
	free(u);
}

struct ev *ev_uring_new(unsigned nsocks, int *err, const char **what)
{
	struct ev_ur *u = calloc(1, sizeof *u);
	if (!u) {
		*err = ENOMEM;
		*what = "malloc";
		return NULL;
	}
	u->ev.be = &ur_backend;
	unsigned n = nsocks;
	unsigned entries = pow2_at_least(n * 2 + 8 < 64 ? 64 : n * 2 + 8 > 4096 ? 4096 : n * 2 + 8);
	int rc = ring_init(&u->ring, entries);
	if (rc == 0) {
		u->ring_ok = 1;
		/* enough buffers that a batch of one completion per socket never
		 * runs dry; a receive that does is re-armed (ENOBUFS) */
		unsigned nb = pow2_at_least(n * 2 < 16 ? 16 : n * 2 > 1024 ? 1024 : n * 2);
		rc = bufs_init(&u->ring, u, nb);
	}
	if (rc) {
		*err = -rc;
		*what = "io_uring_setup";
		ur_free(&u->ev);
		return NULL;
	}
	return &u->ev;
}

static const struct ev_io ur_io = {ur_recv,    ur_send,  ur_watch,
                                   ur_recheck, ur_close, ev_fd_error};
static const struct ev_backend ur_backend = {"uring", ur_open, ur_wakeup_fd, ur_wait, ur_free};
