/* test_coro.c — unit tests of servers/coro/coro.h, run once per context
 * switch compiled in (asm and ucontext): create/switch/finish, many
 * coroutines, nested resumes, defer order, stack reuse from the pool, and
 * the guard page (a child process that overflows its stack must die).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "coro.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static enum coro_switch kind_asm = CORO_SWITCH_ASM;
static enum coro_switch kind_uctx = CORO_SWITCH_UCONTEXT;

static int setup_kind(void **state)
{
	enum coro_switch kind = **(enum coro_switch **)state;
	if (!coro_switch_available(kind))
		skip();
	return 0;
}

static enum coro_switch kind_of(void **state)
{
	return **(enum coro_switch **)state;
}

/* ---- create / switch / finish ---- */

static void count_three(struct coro *co, void *arg)
{
	int *n = arg;
	assert_ptr_equal(coro_current(), co);
	for (int i = 0; i < 3; i++) {
		(*n)++;
		coro_yield(co);
	}
	(*n) += 100;
}

static void test_switch_finish(void **state)
{
	struct coro_pool *pool = coro_pool_new(0, 4, kind_of(state));
	assert_non_null(pool);
	int n = 0;
	struct coro *co = coro_new(pool, count_three, &n);
	assert_non_null(co);
	assert_int_equal(n, 0); /* nothing runs before the first resume */
	assert_null(coro_current());
	for (int i = 1; i <= 3; i++) {
		assert_true(coro_resume(co));
		assert_int_equal(n, i);
		assert_null(coro_current());
	}
	assert_false(coro_resume(co));
	assert_int_equal(n, 103);
	assert_true(coro_finished(co));
	assert_false(coro_resume(co)); /* resuming a finished one is harmless */
	assert_int_equal(coro_pool_live(pool), 1);
	coro_free(co);
	assert_int_equal(coro_pool_live(pool), 0);
	coro_pool_free(pool);
}

/* ---- many coroutines, interleaved ---- */

#define MANY 1000
#define ROUNDS 5

struct many {
	unsigned id;
	unsigned *log; /* log[round * MANY + id] = sequence number */
	unsigned *seq;
};

static void many_body(struct coro *co, void *arg)
{
	struct many *m = arg;
	volatile char scratch[512]; /* use some stack in every coroutine */
	memset((char *)scratch, (int)m->id, sizeof(scratch));
	for (unsigned r = 0; r < ROUNDS; r++) {
		m->log[r * MANY + m->id] = (*m->seq)++;
		coro_yield(co);
		assert_int_equal(scratch[r], (char)m->id);
	}
}

static void test_many(void **state)
{
	struct coro_pool *pool = coro_pool_new(32 * 1024, MANY, kind_of(state));
	assert_non_null(pool);
	static struct coro *cos[MANY];
	static struct many ms[MANY];
	static unsigned log[ROUNDS * MANY];
	unsigned seq = 0;
	for (unsigned i = 0; i < MANY; i++) {
		ms[i] = (struct many){i, log, &seq};
		cos[i] = coro_new(pool, many_body, &ms[i]);
		assert_non_null(cos[i]);
	}
	for (unsigned r = 0; r <= ROUNDS; r++)
		for (unsigned i = 0; i < MANY; i++)
			assert_int_equal(coro_resume(cos[i]), r < ROUNDS);
	/* round robin: round r of coroutine i ran as number r * MANY + i */
	for (unsigned k = 0; k < ROUNDS * MANY; k++)
		assert_int_equal(log[k], k);
	for (unsigned i = 0; i < MANY; i++)
		coro_free(cos[i]);
	assert_int_equal(coro_pool_idle(pool), MANY);
	coro_pool_free(pool);
}

/* ---- a coroutine resuming another ---- */

struct nest {
	struct coro_pool *pool;
	int trace[8];
	int n;
};

static void inner(struct coro *co, void *arg)
{
	struct nest *t = arg;
	t->trace[t->n++] = 2;
	coro_yield(co);
	t->trace[t->n++] = 4;
}

static void outer(struct coro *co, void *arg)
{
	struct nest *t = arg;
	struct coro *in = coro_new(t->pool, inner, t);
	assert_non_null(in);
	t->trace[t->n++] = 1;
	assert_true(coro_resume(in));
	assert_ptr_equal(coro_current(), co);
	t->trace[t->n++] = 3;
	coro_yield(co);
	assert_false(coro_resume(in));
	t->trace[t->n++] = 5;
	coro_free(in);
}

static void test_nested(void **state)
{
	struct nest t = {.pool = coro_pool_new(0, 2, kind_of(state))};
	assert_non_null(t.pool);
	struct coro *co = coro_new(t.pool, outer, &t);
	assert_true(coro_resume(co));
	assert_false(coro_resume(co));
	coro_free(co);
	assert_int_equal(t.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(t.trace[i], i + 1);
	coro_pool_free(t.pool);
}

/* ---- defers ---- */

struct dlog {
	int order[32];
	int n;
};

struct dent {
	struct dlog *log;
	int id;
};

static void record(void *arg)
{
	struct dent *d = arg;
	d->log->order[d->log->n++] = d->id;
}

static struct dent dents[32];

static void deferring(struct coro *co, void *arg)
{
	struct dlog *log = arg;
	/* more than fit inline, so the list has to grow */
	for (int i = 0; i < 20; i++) {
		dents[i] = (struct dent){log, i};
		assert_int_equal(coro_defer(co, record, &dents[i]), 0);
	}
	coro_yield(co);
	assert_int_equal(log->n, 0); /* nothing ran while alive */
}

static void test_defer_order(void **state)
{
	struct coro_pool *pool = coro_pool_new(0, 2, kind_of(state));
	struct dlog log = {.n = 0};
	struct coro *co = coro_new(pool, deferring, &log);
	assert_true(coro_resume(co));
	assert_int_equal(log.n, 0);
	assert_false(coro_resume(co)); /* finishing runs them, newest first */
	assert_int_equal(log.n, 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(log.order[i], 19 - i);
	coro_free(co); /* and only once */
	assert_int_equal(log.n, 20);
	coro_pool_free(pool);
}

static void test_defer_on_free(void **state)
{
	struct coro_pool *pool = coro_pool_new(0, 2, kind_of(state));
	struct dlog log = {.n = 0};
	struct coro *co = coro_new(pool, deferring, &log);
	assert_true(coro_resume(co));
	coro_free(co); /* never finished: its defers run on the caller's stack */
	assert_int_equal(log.n, 20);
	assert_int_equal(log.order[0], 19);
	assert_int_equal(log.order[19], 0);
	coro_pool_free(pool);
}

static void marking(struct coro *co, void *arg)
{
	struct dlog *log = arg;
	dents[0] = (struct dent){log, 100};
	coro_defer(co, record, &dents[0]);
	for (int req = 1; req <= 2; req++) {
		unsigned mark = coro_defer_mark(co);
		dents[req * 2] = (struct dent){log, req * 10};
		dents[req * 2 + 1] = (struct dent){log, req * 10 + 1};
		coro_defer(co, record, &dents[req * 2]);
		coro_defer(co, record, &dents[req * 2 + 1]);
		coro_defer_run(co, mark); /* per-request cleanup */
	}
}

static void test_defer_mark(void **state)
{
	struct coro_pool *pool = coro_pool_new(0, 2, kind_of(state));
	struct dlog log = {.n = 0};
	struct coro *co = coro_new(pool, marking, &log);
	assert_false(coro_resume(co));
	int want[] = {11, 10, 21, 20, 100};
	assert_int_equal(log.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(log.order[i], want[i]);
	coro_free(co);
	coro_pool_free(pool);
}

/* ---- stack reuse from the pool ---- */

static void where(struct coro *co, void *arg)
{
	(void)co;
	volatile char here = 0;
	*(uintptr_t *)arg = (uintptr_t)&here;
}

static void test_stack_reuse(void **state)
{
	struct coro_pool *pool = coro_pool_new(0, 2, kind_of(state));
	uintptr_t a = 0, b = 0;
	struct coro *co = coro_new(pool, where, &a);
	assert_false(coro_resume(co));
	coro_free(co);
	assert_int_equal(coro_pool_idle(pool), 1);
	co = coro_new(pool, where, &b);
	assert_int_equal(coro_pool_idle(pool), 0); /* taken from the free list */
	assert_false(coro_resume(co));
	assert_int_equal(a, b); /* the same stack again */
	coro_free(co);

	/* the free list is bounded */
	struct coro *cs[5];
	for (int i = 0; i < 5; i++)
		cs[i] = coro_new(pool, where, &a);
	for (int i = 0; i < 5; i++) {
		assert_false(coro_resume(cs[i]));
		coro_free(cs[i]);
	}
	assert_int_equal(coro_pool_idle(pool), 2);
	coro_pool_free(pool);
}

static void deep(struct coro *co, void *arg)
{
	(void)co;
	size_t n = *(size_t *)arg;
	volatile char buf[1024];
	memset((char *)buf, 1, sizeof(buf));
	if (n > 0) {
		size_t m = n - 1;
		deep(co, &m);
	}
	assert_int_equal(buf[n % sizeof(buf)], 1);
}

/* Half the stack in use works, on a fresh and on a reused stack. */
static void test_stack_use(void **state)
{
	struct coro_pool *pool = coro_pool_new(128 * 1024, 2, kind_of(state));
	assert_true(coro_pool_stack_size(pool) >= 128 * 1024);
	for (int i = 0; i < 2; i++) {
		size_t depth = 40; /* ~40 KiB of 1 KiB frames (more with ASan) */
		struct coro *co = coro_new(pool, deep, &depth);
		assert_false(coro_resume(co));
		coro_free(co);
	}
	coro_pool_free(pool);
}

/* ---- the guard page ---- */

/* Recursion bounded only far beyond any stack, so it must hit the guard. */
static size_t overflow_depth(size_t n)
{
	volatile char buf[256];
	buf[0] = (char)n;
	if (n > ((size_t)1 << 40))
		return n;
	return overflow_depth(n + 1) + (size_t)buf[0];
}

static void overflow(struct coro *co, void *arg)
{
	(void)co;
	*(size_t *)arg = overflow_depth(0);
}

static void test_guard_page(void **state)
{
	enum coro_switch kind = kind_of(state);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct coro_pool *pool = coro_pool_new(16 * 1024, 0, kind);
		size_t got = 0;
		struct coro *co = coro_new(pool, overflow, &got);
		coro_resume(co);
		_exit(0); /* the overflow went unnoticed */
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
#ifdef TEST_ASAN
	/* ASan catches the SIGSEGV itself, reports a stack overflow and exits
	 * non-zero; either way the child must not have finished normally. */
	assert_true((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
	            (WIFEXITED(st) && WEXITSTATUS(st) != 0));
#else
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
#endif
}

static void test_names(void **state)
{
	(void)state;
	assert_true(coro_switch_available(CORO_SWITCH_DEFAULT));
	assert_true(coro_switch_available(CORO_SWITCH_UCONTEXT));
	assert_string_equal(coro_switch_name(CORO_SWITCH_UCONTEXT), "ucontext");
	const char *d = coro_switch_name(CORO_SWITCH_DEFAULT);
	assert_true(strcmp(d, "asm") == 0 || strcmp(d, "ucontext") == 0);
}

#define BOTH(fn)                                                                                   \
	cmocka_unit_test_prestate_setup_teardown(fn, setup_kind, NULL, &kind_asm),                 \
	    cmocka_unit_test_prestate_setup_teardown(fn, setup_kind, NULL, &kind_uctx)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    BOTH(test_switch_finish),
	    BOTH(test_many),
	    BOTH(test_nested),
	    BOTH(test_defer_order),
	    BOTH(test_defer_on_free),
	    BOTH(test_defer_mark),
	    BOTH(test_stack_reuse),
	    BOTH(test_stack_use),
	    BOTH(test_guard_page),
	};
	return cmocka_run_group_tests_name("coro", tests, NULL, NULL);
}
