/* hub.c — tasks on a libevent loop: spawning, parking and waking, cooperative
 * socket I/O and sleeps, cancellation.
 *
 * A task's descriptor lives on its own coroutine stack (in task_main), so a
 * task costs no allocation beyond the pooled stack. Every resume goes
 * through task_run(), which also frees the coroutine when it has finished.
 */
#include "hub.h"

#include "clock.h"
#include "coro.h"

#include <event2/event.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct hub_task {
	struct hub *hub;
	struct coro *co;
	struct hub_task *prev, *next; /* all live tasks, for hub_cancel_all */
	bool parked, cancelled;
};

struct hub {
	struct event_base *base;
	struct coro_pool *pool;
	struct hub_task *current;
	struct hub_task *tasks;
	unsigned ntasks;
	void (*on_end)(void *arg);
	void *on_end_arg;
	/* libevent's O(1) timeout queue for the one duration used most (the
	 * keep-alive timeout): no heap work per wait. */
	unsigned common_ms;
	const struct timeval *common_tv;
};

struct hub *hub_new(struct event_base *base, size_t stack_size, unsigned max_free_stacks)
{
	struct hub *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->base = base;
	h->pool = coro_pool_new(stack_size, max_free_stacks, CORO_SWITCH_DEFAULT);
	if (!h->pool) {
		free(h);
		return NULL;
	}
	return h;
}

void hub_free(struct hub *h)
{
	if (!h)
		return;
	coro_pool_free(h->pool);
	free(h);
}

struct event_base *hub_base(const struct hub *h)
{
	return h->base;
}

unsigned hub_ntasks(const struct hub *h)
{
	return h->ntasks;
}

unsigned hub_stack_pool(const struct hub *h)
{
	return coro_pool_idle(h->pool);
}

void hub_on_task_end(struct hub *h, void (*fn)(void *arg), void *arg)
{
	h->on_end = fn;
	h->on_end_arg = arg;
}

struct hub_task *hub_self(const struct hub *h)
{
	return h->current;
}

struct coro *hub_task_coro(const struct hub_task *t)
{
	return t->co;
}

bool hub_cancelled(const struct hub_task *t)
{
	return t->cancelled;
}

/* Resume t's coroutine (first run included); clean up if it finished. */
static void task_run(struct hub *h, struct hub_task *t, struct coro *co)
{
	struct hub_task *prev = h->current;
	h->current = t;
	bool alive = coro_resume(co);
	h->current = prev;
	if (alive)
		return;
	/* t lived on co's stack: gone now. */
	coro_free(co);
	h->ntasks--;
	if (h->on_end)
		h->on_end(h->on_end_arg);
}

struct spawn {
	struct hub *h;
	hub_task_fn fn;
	void *arg;
};

static void task_main(struct coro *co, void *arg)
{
	struct spawn sp = *(struct spawn *)arg; /* hub_spawn's frame is gone after the first wait */
	struct hub *h = sp.h;
	struct hub_task t = {.hub = h, .co = co, .next = h->tasks};
	if (h->tasks)
		h->tasks->prev = &t;
	h->tasks = &t;
	h->current = &t;
	sp.fn(h, sp.arg);
	if (t.prev)
		t.prev->next = t.next;
	else
		h->tasks = t.next;
	if (t.next)
		t.next->prev = t.prev;
}

int hub_spawn(struct hub *h, hub_task_fn fn, void *arg)
{
	struct spawn sp = {h, fn, arg};
	struct coro *co = coro_new(h->pool, task_main, &sp);
	if (!co)
		return -1;
	h->ntasks++;
	task_run(h, NULL, co);
	return 0;
}

int hub_park(struct hub *h)
{
	struct hub_task *t = h->current;
	if (t->cancelled)
		return -ECANCELED;
	t->parked = true;
	coro_yield(t->co);
	t->parked = false;
	return t->cancelled ? -ECANCELED : 0;
}

void hub_wake(struct hub_task *t)
{
	if (!t || !t->parked)
		return;
	t->parked = false;
	task_run(t->hub, t, t->co);
}

void hub_cancel(struct hub_task *t)
{
	t->cancelled = true;
	hub_wake(t);
}

void hub_cancel_all(struct hub *h)
{
	for (struct hub_task *t = h->tasks; t; t = t->next)
		t->cancelled = true;
	/* A woken task runs to its end (every wait now fails) and unlinks
	 * itself, so take the first parked one again after each wake. */
	for (;;) {
		struct hub_task *t = h->tasks;
		while (t && !t->parked)
			t = t->next;
		if (!t)
			break;
		hub_wake(t);
	}
}

/* The timeval for a wait of ms: libevent's common timeout (its O(1)
 * queue) for the first duration a wait used, the keep-alive timeout. */
static const struct timeval *timeout_tv(struct hub *h, unsigned ms, struct timeval *tmp)
{
	if (ms == h->common_ms && h->common_tv)
		return h->common_tv;
	*tmp = core_tv(ms);
	if (!h->common_tv) {
		const struct timeval *c = event_base_init_common_timeout(h->base, tmp);
		if (c) {
			h->common_ms = ms;
			h->common_tv = c;
			return c;
		}
	}
	return tmp;
}

/* ---- sleeping ---- */

struct sleeper {
	struct hub_task *t;
	bool fired;
};

static void sleep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sleeper *s = arg;
	s->fired = true;
	hub_wake(s->t);
}

int hub_sleep(struct hub *h, unsigned ms)
{
	struct sleeper s = {h->current, false};
	struct event ev;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_assign(&ev, h->base, sleep_cb, &s);
	/* The loop's cached time can be a whole busy iteration old; a sleep
	 * counted from it would end early. */
	event_base_update_cache_time(h->base);
	evtimer_add(&ev, &tv);
	int rc = 0;
	while (!s.fired && rc == 0)
		rc = hub_park(h);
	evtimer_del(&ev);
	return rc;
}

/* ---- sockets ---- */

static void fd_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct hub_fd *f = arg;
	f->readable = true;
	/* Data and the FIN can come in one edge: a short read would then
	 * clear readable with the EOF still queued and no edge left to
	 * report it (an HTTP/2 client's GOAWAY-and-close did exactly that). */
	if (what & EV_CLOSED)
		f->peer_closed = true;
	hub_wake(f->waiter);
}

static void fd_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct hub_fd *f = arg;
	f->writable = true;
	f->write_armed = false;
	hub_wake(f->waiter);
}

/* The socket wait timeout: lazy (clock.h, struct core_lazy), so a wait
 * costs a clock read, not an event_add and an event_del. */
static void fd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct hub_fd *f = arg;
	if (!core_lazy_fired(&f->tmo))
		return;
	f->timed_out = true;
	hub_wake(f->waiter);
}

int hub_fd_open(struct hub *h, struct hub_fd *f, int fd, unsigned flags)
{
	f->tcp = (flags & HUB_FD_TCP) != 0;
	f->hub = h;
	f->fd = fd;
	/* Assume data may be there: the first read tries before parking. */
	f->readable = true;
	f->writable = true;
	f->timed_out = false;
	f->write_armed = false;
	f->peer_closed = false;
	f->waiter = NULL;
	core_lazy_init(&f->tmo, h->base, fd_timer_cb, f);
	if (event_assign(&f->rev, h->base, fd, EV_READ | EV_CLOSED | EV_PERSIST | EV_ET, fd_read_cb,
	                 f) != 0 ||
	    event_assign(&f->wev, h->base, fd, EV_WRITE | EV_ET, fd_write_cb, f) != 0)
		return -1;
	return event_add(&f->rev, NULL);
}

void hub_fd_close(struct hub_fd *f)
{
	event_del(&f->rev);
	if (f->write_armed)
		event_del(&f->wev);
	core_lazy_del(&f->tmo);
}

void hub_fd_watch(struct hub_fd *f, bool on)
{
	f->waiter = on ? f->hub->current : NULL;
}

bool hub_fd_peer_closed(const struct hub_fd *f)
{
	return f->peer_closed;
}

/* Park the running task on f until an edge, the timeout or a cancel. */
static int fd_wait(struct hub_fd *f, unsigned timeout_ms)
{
	struct hub *h = f->hub;
	struct timeval tmp;
	if (timeout_ms && core_lazy_begin(&f->tmo, timeout_ms) &&
	    core_lazy_arm(&f->tmo, timeout_tv(h, timeout_ms, &tmp)) != 0)
		return -EIO;
	f->waiter = h->current;
	int rc = hub_park(h);
	f->waiter = NULL;
	core_lazy_clear(&f->tmo);
	if (rc != 0)
		return rc;
	if (f->timed_out) {
		f->timed_out = false;
		return -ETIMEDOUT;
	}
	return 0;
}

/* woken_returns: a wake-up that was not the socket's (hub_wake from
 * elsewhere) ends the wait with -EAGAIN instead of parking again. */
static inline __attribute__((always_inline)) ssize_t
fd_read(struct hub_fd *f, void *buf, size_t len, unsigned timeout_ms, bool woken_returns)
{
	for (;;) {
		if (f->readable) {
			ssize_t n = read(f->fd, buf, len);
			if (n > 0) {
				/* Short read: the socket is empty now; the next
				 * edge says when there is more. */
				if ((size_t)n < len && f->tcp && !f->peer_closed)
					f->readable = false;
				return n;
			}
			if (n == 0)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			f->readable = false;
		}
		int rc = fd_wait(f, timeout_ms);
		if (rc != 0)
			return rc;
		if (woken_returns && !f->readable)
			return -EAGAIN;
	}
}

ssize_t hub_read(struct hub_fd *f, void *buf, size_t len, unsigned timeout_ms)
{
	return fd_read(f, buf, len, timeout_ms, false);
}

ssize_t hub_read_or_woken(struct hub_fd *f, void *buf, size_t len, unsigned timeout_ms)
{
	return fd_read(f, buf, len, timeout_ms, true);
}

ssize_t hub_write(struct hub_fd *f, const void *buf, size_t len, unsigned timeout_ms)
{
	const char *p = buf;
	size_t left = len;
	/* The timeout runs from the last move (clock.h, core_stall): a write
	 * that took bytes, or the client taking some out of the socket. Not
	 * from each wake-up: the client's input wakes this wait too, and a
	 * client that sends without reading must not keep it alive. */
	struct core_stall st = {0, -1};
	while (left > 0) {
		if (f->writable) {
			ssize_t n = write(f->fd, p, left);
			if (n > 0) {
				p += n;
				left -= (size_t)n;
				st.end = 0;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			f->writable = false;
		}
		if (!f->write_armed) {
			if (event_add(&f->wev, NULL) != 0)
				return -EIO;
			f->write_armed = true;
		}
		unsigned ms = 0;
		if (timeout_ms) {
			if (st.end == 0)
				core_stall_start(&st, f->fd, timeout_ms);
			ms = core_stall_left(&st);
			if (ms == 0) {
				if (core_stall_due(&st, f->fd, timeout_ms))
					return -ETIMEDOUT;
				ms = timeout_ms;
			}
		}
		int rc = fd_wait(f, ms);
		if (rc == -ETIMEDOUT) {
			if (core_stall_due(&st, f->fd, timeout_ms))
				return rc;
		} else if (rc != 0) {
			return rc;
		}
	}
	return (ssize_t)len;
}
