/* coro.h — stackful coroutines for the implicit-coroutine worker.
 *
 * A coroutine runs a function on its own stack; coro_yield() inside it
 * returns control to whoever called coro_resume(), and the next
 * coro_resume() continues after the yield. Stacks are mmap'd with a
 * PROT_NONE guard page below them (an overflow is a SIGSEGV, not silent
 * corruption) and recycled through a bounded per-pool free list, so a
 * steady stream of connections costs no mmap/munmap.
 *
 * The context switch is per architecture (switch_x86_64.S, switch_aarch64.S)
 * with a ucontext fallback (switch_ucontext.c); the build compiles every
 * switch the machine supports and the meson option coro_switch picks the
 * default. A pool can ask for one explicitly (tests and the benchmark run
 * both).
 *
 * Built with AddressSanitizer, every switch is announced with the fiber
 * annotations; with valgrind's header at build time, stacks are registered
 * so memcheck follows the switches.
 *
 * Not thread-safe: a pool and its coroutines belong to one thread.
 */
#ifndef COROBENCH_CORO_H
#define COROBENCH_CORO_H

#include <stdbool.h>
#include <stddef.h>

struct coro;
struct coro_pool;

enum coro_switch {
	CORO_SWITCH_DEFAULT = 0, /* what meson's coro_switch chose */
	CORO_SWITCH_ASM,         /* hand-written, callee-saved registers only */
	CORO_SWITCH_UCONTEXT,    /* getcontext/makecontext/swapcontext */
};

/* Is this switch compiled in for this machine? DEFAULT always is. */
bool coro_switch_available(enum coro_switch kind);
/* "asm" or "ucontext"; DEFAULT is resolved first. */
const char *coro_switch_name(enum coro_switch kind);

/* stack_size: usable bytes per stack (rounded up to pages; 0 = 64 KiB).
 * max_free: how many finished stacks to keep for reuse. NULL on failure
 * with errno set (ENOTSUP for a switch this build lacks). */
struct coro_pool *coro_pool_new(size_t stack_size, unsigned max_free, enum coro_switch kind);
/* Every coroutine of the pool must have been freed. */
void coro_pool_free(struct coro_pool *pool);
size_t coro_pool_stack_size(const struct coro_pool *pool);
/* Stacks waiting on the free list (for tests and stats). */
unsigned coro_pool_idle(const struct coro_pool *pool);
/* Coroutines created and not yet freed. */
unsigned coro_pool_live(const struct coro_pool *pool);

typedef void (*coro_fn)(struct coro *co, void *arg);

/* A new coroutine that will run fn(co, arg) at its first coro_resume().
 * NULL with errno set when no stack can be had. */
struct coro *coro_new(struct coro_pool *pool, coro_fn fn, void *arg);

/* Run co until it yields or its function returns. Returns true while co
 * can be resumed again, false once it has finished (its defers have run;
 * call coro_free). May be called from inside another coroutine: the yield
 * then comes back there. */
bool coro_resume(struct coro *co);

/* Inside co: go back to the coro_resume() that ran it. */
void coro_yield(struct coro *co);

/* Give the stack back to the pool. If co has not finished, its pending
 * defers run now, on the caller's stack, newest first. */
void coro_free(struct coro *co);

bool coro_finished(const struct coro *co);

/* The coroutine running now on this thread, NULL on a thread's own stack. */
struct coro *coro_current(void);

/* Run fn(arg) when co finishes or is freed, newest first (lwan's
 * coro_defer): cleanup follows the coroutine, so an early return or a
 * cancelled coroutine cannot leak. 0, or -1 out of memory (then fn(arg)
 * has been run at once so nothing leaks). */
int coro_defer(struct coro *co, void (*fn)(void *arg), void *arg);

/* The number of defers registered so far; with coro_defer_run() a
 * long-lived coroutine can clean up per request. */
unsigned coro_defer_mark(const struct coro *co);
/* Run (newest first) and drop the defers registered after mark. */
void coro_defer_run(struct coro *co, unsigned mark);

#endif
