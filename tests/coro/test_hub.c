/* test_hub.c — unit tests of servers/coro/hub.h on a real libevent loop:
 * sleeps, cooperative reads and writes over a socketpair (a writer parked on
 * a full socket, a reader parked on an empty one), the read timeout,
 * park/wake, cancellation unwinding parked tasks with their defers, and
 * hub_read_or_woken (a wake-up ends the wait, as the HTTP/2 connection
 * coroutine needs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "coro.h"
#include "hub.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fixture {
	struct event_base *base;
	struct hub *hub;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER); /* as the server */
	fx->base = event_base_new_with_config(ec);
	event_config_free(ec);
	fx->hub = hub_new(fx->base, 64 * 1024, 8);
	assert_non_null(fx->hub);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(hub_ntasks(fx->hub), 0);
	hub_free(fx->hub);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Run the loop until no task is left (bounded). */
static void run(struct fixture *fx)
{
	double t0 = now_ms();
	while (hub_ntasks(fx->hub) > 0 && now_ms() - t0 < 5000)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_equal(hub_ntasks(fx->hub), 0);
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ---- sleep ---- */

struct sleeper {
	unsigned ms;
	double slept;
	int rc;
};

static void sleep_task(struct hub *h, void *arg)
{
	struct sleeper *s = arg;
	double t0 = now_ms();
	s->rc = hub_sleep(h, s->ms);
	s->slept = now_ms() - t0;
}

static void test_sleep(void **state)
{
	struct fixture *fx = *state;
	struct sleeper a = {30, 0, -1}, b = {10, 0, -1};
	assert_int_equal(hub_spawn(fx->hub, sleep_task, &a), 0);
	assert_int_equal(hub_spawn(fx->hub, sleep_task, &b), 0);
	assert_int_equal(hub_ntasks(fx->hub), 2); /* both parked, not finished */
	double t0 = now_ms();
	run(fx);
	double total = now_ms() - t0;
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_true(a.slept >= 29 && b.slept >= 9);
	assert_true(total < 30 + 200); /* concurrently, not one after the other */
}

/* ---- reads and writes ---- */

#define BIG (1024 * 1024)

struct pipe_io {
	int fd;
	unsigned char *data;
	size_t len;
	ssize_t rc;
	unsigned timeout_ms; /* 0: 5 s */
};

static void writer_task(struct hub *h, void *arg)
{
	struct pipe_io *io = arg;
	struct hub_fd f;
	assert_int_equal(hub_fd_open(h, &f, io->fd, 0), 0);
	io->rc = hub_write(&f, io->data, io->len, 5000);
	hub_fd_close(&f);
	shutdown(io->fd, SHUT_WR);
}

static void reader_task(struct hub *h, void *arg)
{
	struct pipe_io *io = arg;
	struct hub_fd f;
	char buf[4096]; /* small reads: the reader parks often */
	assert_int_equal(hub_fd_open(h, &f, io->fd, 0), 0);
	for (;;) {
		ssize_t n = hub_read(&f, buf, sizeof(buf), io->timeout_ms ? io->timeout_ms : 5000);
		if (n <= 0) {
			io->rc = n;
			break;
		}
		memcpy(io->data + io->len, buf, (size_t)n);
		io->len += (size_t)n;
	}
	hub_fd_close(&f);
}

static void test_read_write(void **state)
{
	struct fixture *fx = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	unsigned char *src = malloc(BIG), *dst = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		src[i] = (unsigned char)(i * 7 + i / 4096);
	struct pipe_io r = {sv[1], dst, 0, -1, 0}, w = {sv[0], src, BIG, -1, 0};
	/* the reader first: it parks on an empty socket */
	assert_int_equal(hub_spawn(fx->hub, reader_task, &r), 0);
	assert_int_equal(hub_spawn(fx->hub, writer_task, &w), 0);
	run(fx);
	assert_int_equal(w.rc, BIG);
	assert_int_equal(r.rc, 0); /* end of stream after the shutdown */
	assert_int_equal(r.len, BIG);
	assert_memory_equal(src, dst, BIG);
	free(src);
	free(dst);
	close(sv[0]);
	close(sv[1]);
}

static void test_read_timeout(void **state)
{
	struct fixture *fx = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[1]);
	unsigned char buf[16];
	struct pipe_io r = {sv[1], buf, 0, 1, 100};
	double t0 = now_ms();
	assert_int_equal(hub_spawn(fx->hub, reader_task, &r), 0);
	run(fx);
	assert_int_equal(r.rc, -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 95);
	close(sv[0]);
	close(sv[1]);
}

/* ---- park / wake / cancel ---- */

struct parker {
	struct hub_task *self;
	int rc;
	bool deferred;
};

static void mark_deferred(void *arg)
{
	((struct parker *)arg)->deferred = true;
}

static void park_task(struct hub *h, void *arg)
{
	struct parker *p = arg;
	p->self = hub_self(h);
	coro_defer(hub_task_coro(p->self), mark_deferred, p);
	p->rc = hub_park(h);
	if (p->rc == 0)
		p->rc = hub_park(h); /* woken once; park again */
}

static void test_wake_and_cancel(void **state)
{
	struct fixture *fx = *state;
	struct parker a = {0}, b = {0};
	assert_int_equal(hub_spawn(fx->hub, park_task, &a), 0);
	assert_int_equal(hub_spawn(fx->hub, park_task, &b), 0);
	assert_null(hub_self(fx->hub));
	hub_wake(a.self); /* a parks again */
	assert_int_equal(hub_ntasks(fx->hub), 2);
	hub_cancel_all(fx->hub);
	assert_int_equal(hub_ntasks(fx->hub), 0);
	assert_int_equal(a.rc, -ECANCELED);
	assert_int_equal(b.rc, -ECANCELED);
	assert_true(a.deferred && b.deferred); /* cleanup followed the tasks */
}

static void cancel_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hub_cancel_all(arg);
}

static void test_cancel_blocked_read(void **state)
{
	struct fixture *fx = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[1]);
	unsigned char buf[16];
	struct pipe_io r = {sv[1], buf, 0, 1, 0};
	assert_int_equal(hub_spawn(fx->hub, reader_task, &r), 0);
	struct event *ev = evtimer_new(fx->base, cancel_later, fx->hub);
	struct timeval tv = {0, 20 * 1000};
	evtimer_add(ev, &tv);
	run(fx);
	assert_int_equal(r.rc, -ECANCELED);
	event_free(ev);
	close(sv[0]);
	close(sv[1]);
}

/* hub_read_or_woken: a hub_wake() ends the wait with -EAGAIN, data is read
 * as by hub_read. */
struct woken_reader {
	struct hub_task *self;
	struct hub_fd f;
	int fd;
	ssize_t rc1, rc2;
	char buf[8];
};

static void woken_reader_task(struct hub *h, void *arg)
{
	struct woken_reader *r = arg;
	r->self = hub_self(h);
	hub_fd_open(h, &r->f, r->fd, 0);
	r->rc1 = hub_read_or_woken(&r->f, r->buf, sizeof(r->buf), 0);
	r->rc2 = hub_read_or_woken(&r->f, r->buf, sizeof(r->buf), 0);
	hub_fd_close(&r->f);
}

static void test_read_or_woken(void **state)
{
	struct fixture *fx = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[1]);
	struct woken_reader r = {.fd = sv[1]};
	assert_int_equal(hub_spawn(fx->hub, woken_reader_task, &r), 0);
	hub_wake(r.self); /* parked in the first read: it returns -EAGAIN */
	assert_int_equal(r.rc1, -EAGAIN);
	assert_int_equal(write(sv[0], "abc", 3), 3);
	run(fx);
	assert_int_equal(r.rc2, 3);
	assert_memory_equal(r.buf, "abc", 3);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wake_and_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_blocked_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_or_woken, setup, teardown),
	};
	return cmocka_run_group_tests_name("hub", tests, NULL, NULL);
}
