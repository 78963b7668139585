/* engine_uring: the io_uring back end of the HTTP/1 loop (--engine uring).
 *
 * With epoll every keep-alive request costs a send() and a recv() system
 * call plus a share of epoll_wait(). Here the sends of a whole batch go to
 * the kernel in the one io_uring_enter() that also waits for the next
 * completions, and each socket keeps one multishot receive armed for its
 * whole life, its data landing in buffers the kernel takes from a ring we
 * share with it (provided buffers), so a request costs no system call of
 * its own. Where the kernel has it, the ring is single-issuer with deferred
 * task work: the receives then run inside our io_uring_enter(), not from
 * interrupts. engine.c keeps the state machine and ab's counting rules; this
 * file only queues operations and hands their completions back.
 *
 * A completion names its connection, its operation and the connection's
 * generation (bumped whenever the socket is dropped), so what completes
 * after a close (cancelled or not) is recognised and ignored. */
#include "engine_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#define BUF_SIZE 16384 /* one provided receive buffer */
#define BGID 0         /* the buffer group of the receives */
#define GEN_MASK 0xffffffu

enum { OP_STOP, OP_POLL, OP_SEND, OP_RECV, OP_CANCEL };

struct lgu {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	unsigned nbufs;
	int mask;
};

/* user_data: connection index, generation, operation */
static inline uint64_t tag(const struct thr *t, const struct conn *c, unsigned op)
{
	return (uint64_t)(c - t->conns) << 32 | (uint64_t)(c->ur_gen & GEN_MASK) << 8 | op;
}

static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* The next SQE; a full submission queue goes to the kernel first. */
static struct io_uring_sqe *sqe_get(struct thr *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ur->ring);
	if (!sqe) {
		io_uring_submit(&t->ur->ring);
		sqe = io_uring_get_sqe(&t->ur->ring);
		if (!sqe)
			lge_fatal(t, "", "io_uring_get_sqe", EBUSY);
	}
	return sqe;
}

/* Registers a ring of n provided buffers of BUF_SIZE bytes as group BGID. */
static int bufs_init(struct io_uring *ring, struct lgu *u, unsigned n)
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

static void bufs_free(struct lgu *u)
{
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->bufs);
	u->br = NULL;
	u->bufs = NULL;
}

static void buf_recycle(struct lgu *u, unsigned bid)
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

int lgu_probe(char *why, size_t cap)
{
	struct io_uring ring;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int rc = io_uring_queue_init_params(8, &ring, &p);
	if (rc < 0) {
		snprintf(why, cap, "io_uring_setup: %s", strerror(-rc));
		return -1;
	}
	int ok = 0;
	struct lgu u;
	memset(&u, 0, sizeof u);
	int sv[2] = {-1, -1};
	struct io_uring_probe *pr = io_uring_get_probe_ring(&ring);
	if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_FAST_POLL) ||
	    !(p.features & IORING_FEAT_NODROP) || !pr ||
	    !io_uring_opcode_supported(pr, IORING_OP_SEND) ||
	    !io_uring_opcode_supported(pr, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(pr, IORING_OP_POLL_ADD) ||
	    !io_uring_opcode_supported(pr, IORING_OP_ASYNC_CANCEL)) {
		snprintf(why, cap, "kernel lacks io_uring features (5.11+ needed)");
		goto out;
	}
	if ((rc = bufs_init(&ring, &u, 8)) != 0) {
		snprintf(why, cap, "provided buffer rings: %s (5.19+ needed)", strerror(-rc));
		goto out;
	}
	/* a multishot receive on a non-blocking socket must wait for data
	 * (6.0+), not fail with EAGAIN */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, cap, "socketpair: %s", strerror(errno));
		goto out;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_submit(&ring);
	if (write(sv[1], "x", 1) != 1) {
		snprintf(why, cap, "write: %s", strerror(errno));
		goto out;
	}
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_sec = 1};
	rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
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
	io_uring_queue_exit(&ring);
	bufs_free(&u);
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	if (ok && cap)
		why[0] = 0;
	return ok ? 0 : -1;
}

int lgu_thread_init(struct thr *t)
{
	struct lgu *u = calloc(1, sizeof *u);
	if (!u)
		return -ENOMEM;
	unsigned n = (unsigned)t->nconns;
	unsigned entries = pow2_at_least(n * 2 + 8 < 64 ? 64 : n * 2 + 8 > 4096 ? 4096 : n * 2 + 8);
	int rc = ring_init(&u->ring, entries);
	if (rc) {
		free(u);
		return rc;
	}
	/* enough buffers that a batch of one completion per connection never
	 * runs dry; a receive that does is re-armed (ENOBUFS) */
	unsigned nb = pow2_at_least(n * 2 < 16 ? 16 : n * 2 > 1024 ? 1024 : n * 2);
	rc = bufs_init(&u->ring, u, nb);
	if (rc) {
		io_uring_queue_exit(&u->ring);
		bufs_free(u);
		free(u);
		return rc;
	}
	t->ur = u;
	/* the stop eventfd turns readable on lg_stop() or a fatal error */
	struct io_uring_sqe *sqe = sqe_get(t);
	if (sqe) {
		io_uring_prep_poll_add(sqe, t->g->stopfd, POLLIN);
		io_uring_sqe_set_data64(sqe, OP_STOP);
	}
	return 0;
}

void lgu_thread_free(struct thr *t)
{
	struct lgu *u = t->ur;
	if (!u)
		return;
	io_uring_queue_exit(&u->ring); /* cancels what is in flight */
	bufs_free(u);
	free(u);
	t->ur = NULL;
}

void lgu_watch_connect(struct thr *t, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(t);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, tag(t, c, OP_POLL));
	c->ur_ops |= LGU_POLL;
}

void lgu_arm_recv(struct thr *t, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(t);
	if (!sqe)
		return;
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(t, c, OP_RECV));
	c->ur_ops |= LGU_RECV;
}

void lgu_send(struct thr *t, struct conn *c, const char *p, size_t len)
{
	struct io_uring_sqe *sqe = sqe_get(t);
	if (!sqe)
		return;
	io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(t, c, OP_SEND));
	c->ur_ops |= LGU_SEND;
}

void lgu_forget(struct thr *t, struct conn *c)
{
	static const unsigned ops[][2] = {
	    {LGU_RECV, OP_RECV}, {LGU_SEND, OP_SEND}, {LGU_POLL, OP_POLL}};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (!(c->ur_ops & ops[i][0]))
			continue;
		struct io_uring_sqe *sqe = sqe_get(t);
		if (!sqe)
			break;
		io_uring_prep_cancel64(sqe, tag(t, c, ops[i][1]), 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, OP_CANCEL);
	}
	c->ur_ops = 0;
	c->ur_gen++;
	c->held_res = 0;
	c->early_len = 0;
}

static void dispatch(struct thr *t, struct lgu *u, const struct io_uring_cqe *cqe, uint64_t now)
{
	uint64_t ud = cqe->user_data;
	unsigned op = ud & 0xff;
	int res = cqe->res;
	if (op == OP_STOP || op == OP_CANCEL)
		return;
	struct conn *c = &t->conns[ud >> 32];
	uint32_t gen = (uint32_t)(ud >> 8) & GEN_MASK;
	int live = c->fd >= 0 && gen == (c->ur_gen & GEN_MASK);
	switch (op) {
	case OP_POLL:
		if (live) {
			c->ur_ops &= ~LGU_POLL;
			lge_io_ready(t, c, res < 0 ? EPOLLERR : (uint32_t)res);
		}
		return;
	case OP_SEND:
		if (live) {
			c->ur_ops &= ~LGU_SEND;
			lge_io_sent(t, c, res, now);
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
				c->ur_ops &= ~LGU_RECV;
			if (res == -ENOBUFS) {
				lgu_arm_recv(t, c);
			} else {
				lge_io_received(t, c, p, res, now);
				/* the kernel may end a multishot receive at any
				 * time: re-arm one that ended without EOF/error */
				if (res > 0 && c->fd >= 0 && gen == (c->ur_gen & GEN_MASK) &&
				    !(c->ur_ops & LGU_RECV))
					lgu_arm_recv(t, c);
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

int lgu_wait(struct thr *t, uint64_t wait_us)
{
	struct lgu *u = t->ur;
	struct __kernel_timespec ts = {.tv_sec = (long long)(wait_us / 1000000u),
	                               .tv_nsec = (long long)(wait_us % 1000000u) * 1000};
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		return rc;
	/* the whole batch became visible at once: one clock read for it */
	uint64_t now = lg_now_us();
	unsigned head, n = 0;
	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		n++;
		dispatch(t, u, cqe, now);
	}
	io_uring_cq_advance(&u->ring, n);
	return (int)n;
}
