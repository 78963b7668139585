/* hub.h — the coroutine worker's scheduler: one libevent loop (the hub)
 * and the tasks (coroutines) it drives.
 *
 * A task runs code that looks blocking: hub_read(), hub_write(),
 * hub_sleep() and any wait built on hub_park()/hub_wake() park the task's
 * coroutine on a libevent event and return when the hub resumes it. The
 * loop itself runs on the process's own stack; tasks are only ever resumed
 * from there (an event callback) or from another task.
 *
 * Every wait returns -ECANCELED once its task is cancelled (hub_cancel,
 * hub_cancel_all): that is how a graceful shutdown that ran out of time
 * unwinds everything still running, so cleanup still follows each task.
 *
 * One hub per thread (per worker process); nothing here is thread-safe.
 */
#ifndef COROBENCH_HUB_H
#define COROBENCH_HUB_H

#include "clock.h"

#include <event2/event_struct.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hub;
struct hub_task;

/* base: create it with EVENT_BASE_FLAG_PRECISE_TIMER, or libevent's coarse
 * clock makes sleeps end up to a jiffy early.
 * stack_size in bytes (0: 64 KiB); max_free_stacks: the pool's free list.
 * NULL with errno set on failure. */
struct hub *hub_new(struct event_base *base, size_t stack_size, unsigned max_free_stacks);
/* Every task must have ended. */
void hub_free(struct hub *h);
struct event_base *hub_base(const struct hub *h);

typedef void (*hub_task_fn)(struct hub *h, void *arg);

/* Run fn(h, arg) as a new task: it starts at once and runs until its first
 * wait, then hub_spawn returns. 0, or -1 with errno set (no stack). */
int hub_spawn(struct hub *h, hub_task_fn fn, void *arg);
/* Tasks alive now. */
unsigned hub_ntasks(const struct hub *h);
/* Free stacks kept in the pool for the next spawn. */
unsigned hub_stack_pool(const struct hub *h);
/* Called (from the loop) after each task has ended and its stack is back
 * in the pool: the worker resumes accepting there. */
void hub_on_task_end(struct hub *h, void (*fn)(void *arg), void *arg);

/* The task running now, NULL on the loop's own stack. */
struct hub_task *hub_self(const struct hub *h);
/* The running task's coroutine, for coro_defer(). */
struct coro *hub_task_coro(const struct hub_task *t);

/* Park the running task until someone calls hub_wake() on it. 0 when woken,
 * -ECANCELED when the task is cancelled (then it does not park at all).
 * Wake-ups may be spurious: wait in a loop on your own condition. */
int hub_park(struct hub *h);
/* Resume t now if it is parked; otherwise nothing. */
void hub_wake(struct hub_task *t);
/* From now on every wait of t returns -ECANCELED; wakes t if parked. */
void hub_cancel(struct hub_task *t);
void hub_cancel_all(struct hub *h);
bool hub_cancelled(const struct hub_task *t);

/* Wait ms milliseconds: 0, or -ECANCELED. */
int hub_sleep(struct hub *h, unsigned ms);

/* A non-blocking socket as the tasks of a hub use it. Embed it (it lives as
 * long as the connection, typically on the task's stack); its fields are
 * private. One task waits on it at a time. Readiness is edge-triggered and
 * registered once, so a request costs no epoll_ctl. */
struct hub_fd {
	struct hub *hub;
	int fd;
	bool readable, writable, timed_out, write_armed, tcp;
	bool peer_closed; /* EPOLLRDHUP seen: a short read no longer means empty */
	struct hub_task *waiter;
	struct event rev, wev;
	struct core_lazy tmo; /* the wait's timeout (clock.h) */
};

enum hub_fd_flags {
	/* A short read means the socket is empty (true of TCP, whose read
	 * copies across every queued segment, not of AF_UNIX, which stops at
	 * message boundaries): skip the read that would only say EAGAIN and
	 * wait for the next edge, as nginx does with EPOLLRDHUP: once the
	 * peer's FIN has been reported (EV_CLOSED) reads go on to the 0. */
	HUB_FD_TCP = 1u << 0,
};

/* Register fd (already O_NONBLOCK) with the hub; flags: enum hub_fd_flags.
 * 0 or -1. */
int hub_fd_open(struct hub *h, struct hub_fd *f, int fd, unsigned flags);
/* Unregister; does not close fd. */
void hub_fd_close(struct hub_fd *f);

/* While the running task waits on something else (hub_park), let f's
 * read events wake it too (on), or no longer (off). */
void hub_fd_watch(struct hub_fd *f, bool on);
/* The peer closed its side (or reset): EPOLLRDHUP was reported. */
bool hub_fd_peer_closed(const struct hub_fd *f);

/* Read up to len bytes, parking while there are none. timeout_ms 0: no
 * timeout. Returns the bytes read (> 0), 0 at end of stream, or -errno:
 * -ETIMEDOUT, -ECANCELED, or the socket's error. */
ssize_t hub_read(struct hub_fd *f, void *buf, size_t len, unsigned timeout_ms);
/* As hub_read, but a hub_wake() from elsewhere while it waits (another
 * task has work for this one) returns -EAGAIN: the HTTP/2 connection
 * coroutine waits this way for input or for a stream's answer. */
ssize_t hub_read_or_woken(struct hub_fd *f, void *buf, size_t len, unsigned timeout_ms);
/* Write all of buf, parking while the socket is full. len, or -errno
 * (-ETIMEDOUT, -ECANCELED, -EPIPE, ...). timeout_ms (0: none) runs from the
 * last move, nginx's send_timeout: a write that took bytes, or the peer
 * taking bytes out of the socket (clock.h, core_stall); -ETIMEDOUT only
 * when it took nothing for that long. */
ssize_t hub_write(struct hub_fd *f, const void *buf, size_t len, unsigned timeout_ms);
#endif
