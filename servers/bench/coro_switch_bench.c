/* coro_switch_bench.c — nanoseconds per context switch: our assembly switch,
 * the ucontext fallback, each raw and through the coro.h API the server
 * uses, and (when Boost.Context was found at build time) Boost's fcontext
 * and fiber for reference, all in one run.
 *
 * Every figure is a ping-pong between two contexts: one round trip is two
 * switches. Each is the best of several runs, so a busy machine shows up as
 * noise on the slow side only.
 *
 * Usage: coro-switch-bench [ROUND_TRIPS]   (default 1000000)
 */
#include "coro.h"
#include "switch.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef CORO_HAVE_BOOST_CONTEXT
double boost_fcontext_ns(unsigned long n);
double boost_fiber_ns(unsigned long n);
#endif

#define RUNS 15
#define RAW_STACK (64 * 1024)

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#ifdef CORO_HAVE_ASM
static void *asm_main_sp, *asm_co_sp;

static void asm_pong(void *arg)
{
	(void)arg;
	for (;;)
		coro_asm_switch(&asm_co_sp, asm_main_sp, true);
}

static double bench_asm_raw(unsigned long n)
{
	char *stack = malloc(RAW_STACK);
	if (!stack)
		return -1;
	asm_co_sp = coro_asm_make(stack + RAW_STACK, asm_pong, NULL);
	coro_asm_switch(&asm_main_sp, asm_co_sp, true); /* warm up, first entry */
	double t0 = now_ns();
	for (unsigned long i = 0; i < n; i++)
		coro_asm_switch(&asm_main_sp, asm_co_sp, true);
	double ns = (now_ns() - t0) / (2.0 * (double)n);
	free(stack); /* asm_pong is parked forever; nothing refers to its stack */
	return ns;
}
#endif

static ucontext_t uc_main, uc_co;

static void uctx_pong(void *arg)
{
	(void)arg;
	for (;;)
		coro_uctx_switch(&uc_co, &uc_main);
}

static double bench_uctx_raw(unsigned long n)
{
	char *stack = malloc(RAW_STACK);
	if (!stack || coro_uctx_make(&uc_co, stack, RAW_STACK, uctx_pong, NULL) != 0) {
		free(stack);
		return -1;
	}
	coro_uctx_switch(&uc_main, &uc_co);
	double t0 = now_ns();
	for (unsigned long i = 0; i < n; i++)
		coro_uctx_switch(&uc_main, &uc_co);
	double ns = (now_ns() - t0) / (2.0 * (double)n);
	free(stack);
	return ns;
}

static void api_pong(struct coro *co, void *arg)
{
	unsigned long n = *(unsigned long *)arg;
	for (unsigned long i = 0; i < n; i++)
		coro_yield(co);
}

static double bench_api(enum coro_switch kind, unsigned long n)
{
	struct coro_pool *pool = coro_pool_new(RAW_STACK, 1, kind);
	if (!pool)
		return -1;
	struct coro *co = coro_new(pool, api_pong, &n);
	if (!co) {
		coro_pool_free(pool);
		return -1;
	}
	double t0 = now_ns();
	while (coro_resume(co))
		;
	/* n yields and the final return: n + 1 round trips */
	double ns = (now_ns() - t0) / (2.0 * (double)(n + 1));
	coro_free(co);
	coro_pool_free(pool);
	return ns;
}

typedef double (*bench_fn)(unsigned long n);

static double best(bench_fn fn, unsigned long n)
{
	double b = -1;
	for (int r = 0; r < RUNS; r++) {
		double ns = fn(n);
		if (ns < 0)
			return ns;
		if (b < 0 || ns < b)
			b = ns;
	}
	return b;
}

static double api_asm(unsigned long n)
{
	return bench_api(CORO_SWITCH_ASM, n);
}

static double api_uctx(unsigned long n)
{
	return bench_api(CORO_SWITCH_UCONTEXT, n);
}

static void report(const char *what, bench_fn fn, unsigned long n)
{
	double ns = best(fn, n);
	if (ns < 0)
		printf("%-34s %10s\n", what, "n/a");
	else
		printf("%-34s %10.2f ns/switch\n", what, ns);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000ul;
	if (n == 0)
		n = 1;
	/* swapcontext makes a syscall per switch: fewer rounds keep it short. */
	unsigned long nu = n / 10 ? n / 10 : 1;

	printf(
	    "coro-switch-bench: %lu round trips (ucontext: %lu), best of %d, default switch %s\n",
	    n, nu, RUNS, coro_switch_name(CORO_SWITCH_DEFAULT));
#ifdef CORO_HAVE_ASM
	report("asm raw (coro_asm_switch)", bench_asm_raw, n);
	report("asm coro_resume/coro_yield", api_asm, n);
#else
	printf("%-34s %10s\n", "asm", "not built for this machine");
#endif
	report("ucontext raw (swapcontext)", bench_uctx_raw, nu);
	report("ucontext coro_resume/coro_yield", api_uctx, nu);
#ifdef CORO_HAVE_BOOST_CONTEXT
	report("boost jump_fcontext", boost_fcontext_ns, n);
	report("boost context::fiber resume", boost_fiber_ns, n);
#else
	printf("%-34s %10s\n", "boost", "not found at build time");
#endif
	return 0;
}
