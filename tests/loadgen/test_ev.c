/* Unit tests of loadgen's event loop (ev.h), every case on each back end
 * (io_uring's skipped where the kernel or the build lacks it): what the
 * protocol drivers rely on, over real sockets on this machine. Data, end of
 * stream and errors come through EV_READ in order; data a handler leaves
 * unread comes again with the next arrival; a send is reported whole,
 * however many parts it took; connects finish with EV_WRITE or fail with
 * the error flag; a closed socket hears nothing more; timers fire in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"

/* One test socket and what its handler saw. */
struct tsock {
	struct ev_sock s;
	int ignore;        /* leave EV_READ unanswered this many times */
	unsigned events;   /* all bits announced */
	int announced;     /* on_event calls */
	char got[1 << 16]; /* what ev_recv() returned */
	size_t gotlen;
	int eof, err; /* ev_recv() returned 0 / that -errno */
	size_t sent;  /* on_sent()'s bytes */
	int sent_calls, sent_err;
};

static void on_event(struct ev_sock *s, unsigned events)
{
	struct tsock *t = (struct tsock *)s;
	t->events |= events;
	t->announced++;
	if (!(events & EV_READ))
		return;
	if (t->ignore) {
		t->ignore--;
		return;
	}
	for (;;) {
		const char *p;
		ssize_t n = ev_recv(s, &p);
		if (n == -EAGAIN)
			return;
		if (n == 0) {
			t->eof = 1;
			return;
		}
		if (n < 0) {
			t->err = (int)-n;
			return;
		}
		assert_true(t->gotlen + (size_t)n <= sizeof t->got);
		memcpy(t->got + t->gotlen, p, (size_t)n);
		t->gotlen += (size_t)n;
	}
}

static void on_sent(struct ev_sock *s, size_t sent, int err, uint64_t now)
{
	struct tsock *t = (struct tsock *)s;
	assert_true(now > 0);
	t->sent += sent;
	t->sent_calls++;
	t->sent_err = err;
}

static const struct ev_handler handler = {on_event, on_sent};

static struct ev *loop(enum ev_kind kind)
{
	int err = 0;
	const char *what = NULL;
	struct ev *ev = ev_new(kind, 8, &err, &what);
	assert_non_null(ev);
	return ev;
}

/* Runs the loop until cond or about 2 s. */
#define RUN_UNTIL(ev, cond)                                                                        \
	do {                                                                                       \
		for (int i_ = 0; i_ < 200 && !(cond); i_++) {                                      \
			ev_now_update(ev);                                                         \
			assert_true(ev_run_once(ev, 10000) >= 0);                                  \
		}                                                                                  \
		assert_true(cond);                                                                 \
	} while (0)

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Most cases: one socket t on one end of a socket pair, sv[1] the peer. */
static struct tsock t;
static int sv[2];

/* A loop on kind's back end with t open, reading; sndbuf > 0 shrinks t's
 * send buffer. */
static struct ev *setup(enum ev_kind kind, int sndbuf)
{
	struct ev *ev = loop(kind);
	memset(&t, 0, sizeof t);
	pair(sv);
	if (sndbuf)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	assert_int_equal(ev_open(ev, &t.s, sv[0], &handler, EV_READ), 0);
	return ev;
}

static int usable(enum ev_kind kind)
{
	char why[160];
	if (ev_probe(kind, why, sizeof why) == 0)
		return 1;
	print_message("io_uring back end unusable here (%s): skipped\n", why);
	return 0;
}

#define KINDS                                                                                      \
	for (enum ev_kind kind = EV_EPOLL; kind <= EV_URING; kind++)                               \
		if (usable(kind))

static void test_read_in_order(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = setup(kind, 0);
		put(sv[1], "hello ");
		RUN_UNTIL(ev, t.gotlen == 6);
		/* left unread, it comes again, first, with what follows */
		t.ignore = 1;
		put(sv[1], "brave ");
		RUN_UNTIL(ev, t.announced >= 2);
		put(sv[1], "world");
		RUN_UNTIL(ev, t.gotlen == 17);
		assert_memory_equal(t.got, "hello brave world", 17);
		close(sv[1]);
		RUN_UNTIL(ev, t.eof);
		assert_true(t.events & EV_READ);
		ev_close(&t.s);
		assert_int_equal(t.s.fd, -1);
		ev_free(ev);
	}
}

static void test_recheck(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = setup(kind, 0);
		t.ignore = 1;
		put(sv[1], "early");
		close(sv[1]);
		RUN_UNTIL(ev, t.announced >= 1);
		/* epoll leaves it in the kernel, where the end of stream's edge
		 * brings it; io_uring keeps it and ev_recheck() hands it out */
		ev_recheck(&t.s);
		RUN_UNTIL(ev, t.eof);
		assert_int_equal(t.gotlen, 5);
		assert_memory_equal(t.got, "early", 5);
		ev_close(&t.s);
		ev_free(ev);
	}
}

static void test_send_whole(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = setup(kind, 4096);
		/* far more than the socket holds: the rest goes as the peer reads */
		size_t len = 4 << 20;
		char *big = malloc(len);
		assert_non_null(big);
		for (size_t i = 0; i < len; i++)
			big[i] = (char)(i * 7);
		ev_now_update(ev);
		ssize_t now = ev_send(&t.s, big, len);
		assert_true(now >= 0 && (size_t)now < len);
		char *back = malloc(len);
		size_t got = 0;
		for (int i = 0; i < 20000 && got < len; i++) {
			ssize_t n = read(sv[1], back + got, len - got);
			if (n > 0)
				got += (size_t)n;
			ev_now_update(ev);
			assert_true(ev_run_once(ev, 0) >= 0);
		}
		RUN_UNTIL(ev, t.sent_calls == 1);
		assert_int_equal(got, len);
		assert_int_equal((size_t)now + t.sent, len);
		assert_int_equal(t.sent_err, 0);
		assert_memory_equal(back, big, len);
		/* a small one: all at once with epoll, reported after with io_uring */
		t.sent = 0;
		t.sent_calls = 0;
		now = ev_send(&t.s, "ping", 4);
		if (now != 4)
			RUN_UNTIL(ev, t.sent_calls == 1);
		assert_int_equal((size_t)now + t.sent, 4);
		/* to a peer that is gone: an error, now or reported */
		close(sv[1]);
		t.sent_calls = 0;
		now = ev_send(&t.s, "pong", 4);
		if (now >= 0) {
			RUN_UNTIL(ev, t.sent_calls == 1);
			assert_int_equal(t.sent_err, EPIPE);
		} else {
			assert_int_equal(now, -EPIPE);
		}
		ev_close(&t.s);
		ev_free(ev);
		free(big);
		free(back);
	}
}

static int listener(struct sockaddr_in *a)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)a, sizeof *a), 0);
	socklen_t al = sizeof *a;
	getsockname(l, (struct sockaddr *)a, &al);
	assert_int_equal(listen(l, 8), 0);
	return l;
}

static int connecting(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = connect(fd, (const struct sockaddr *)a, sizeof *a);
	assert_true(rc == 0 || errno == EINPROGRESS);
	return fd;
}

static void test_connect(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = loop(kind);
		static struct tsock r;
		memset(&t, 0, sizeof t);
		memset(&r, 0, sizeof r);
		struct sockaddr_in a;
		int l = listener(&a);
		assert_int_equal(ev_open(ev, &t.s, connecting(&a), &handler, EV_WRITE), 0);
		RUN_UNTIL(ev, t.events & EV_WRITE);
		assert_false(t.events & EV_ERR);
		/* then reading: the server's bytes arrive */
		ev_watch(&t.s, EV_READ);
		int srv = accept(l, NULL, NULL);
		put(srv, "hi");
		RUN_UNTIL(ev, t.gotlen == 2);
		/* a refused connect raises the error flag */
		close(l);
		assert_int_equal(ev_open(ev, &r.s, connecting(&a), &handler, EV_WRITE), 0);
		RUN_UNTIL(ev, r.events & (EV_ERR | EV_HUP));
		assert_int_equal(ev_sock_error(&r.s), ECONNREFUSED);
		assert_int_equal(ev_sock_error(&r.s), 0); /* reading it clears it */
		ev_close(&r.s);
		ev_close(&t.s);
		close(srv);
		ev_free(ev);
	}
}

static void test_close_silences(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = setup(kind, 4096);
		static char big[1 << 20];
		put(sv[1], "unread");
		t.ignore = 1;
		RUN_UNTIL(ev, t.announced == 1);
		ev_send(&t.s, big, sizeof big); /* left unfinished */
		ev_close(&t.s);
		t.announced = 0;
		ev_recheck(&t.s); /* nothing: it is closed */
		close(sv[1]);
		for (int i = 0; i < 5; i++) {
			ev_now_update(ev);
			assert_true(ev_run_once(ev, 10000) >= 0);
		}
		assert_int_equal(t.announced, 0);
		assert_int_equal(t.sent_calls, 0);
		ev_free(ev);
	}
}

struct ttimer {
	struct ev_timer tm;
	int id;
};
static int fired[8], nfired;

static void fire(struct ev_timer *tm, uint64_t now)
{
	(void)now;
	fired[nfired++] = ((struct ttimer *)tm)->id;
}

static void test_timers(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = loop(kind);
		struct ttimer t[5];
		nfired = 0;
		uint64_t now = ev_now_update(ev);
		static const int order[] = {3, 1, 4, 0, 2}; /* due in this order */
		for (int i = 0; i < 5; i++) {
			t[i] = (struct ttimer){.tm = {.fire = fire}, .id = i};
			ev_timer_start(ev, &t[i].tm, now + 1000);
		}
		for (int i = 0; i < 5; i++)
			ev_timer_start(ev, &t[order[i]].tm, now + 2000 + 3000 * (uint64_t)i);
		ev_timer_stop(ev, &t[4].tm);
		assert_false(ev_timer_armed(&t[4].tm));
		RUN_UNTIL(ev, nfired == 4);
		static const int want[] = {3, 1, 0, 2};
		assert_memory_equal(fired, want, sizeof want);
		/* nothing armed: the wait is the caller's */
		ev_now_update(ev);
		assert_true(ev_run_once(ev, 0) >= 0);
		assert_int_equal(nfired, 4);
		ev_free(ev);
	}
}

static void test_wakeup(void **state)
{
	(void)state;
	KINDS
	{
		struct ev *ev = loop(kind);
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_int_equal(ev_wakeup_fd(ev, fd), 0);
		uint64_t one = 1;
		assert_int_equal(write(fd, &one, sizeof one), 8);
		uint64_t t0 = ev_clock_us();
		assert_true(ev_run_once(ev, 5000000) >= 1);
		assert_true(ev_clock_us() - t0 < 2000000);
		ev_free(ev);
		close(fd);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_in_order),  cmocka_unit_test(test_recheck),
	    cmocka_unit_test(test_send_whole),     cmocka_unit_test(test_connect),
	    cmocka_unit_test(test_close_silences), cmocka_unit_test(test_timers),
	    cmocka_unit_test(test_wakeup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
