/* coro.c — stackful coroutines: stacks from a pool, the switch of the pool's
 * kind, defers, and the sanitizer/valgrind bookkeeping every switch needs.
 *
 * A stack is one mapping: [guard page | usable stack ... | struct coro].
 * The coroutine's descriptor lives at the top of its own mapping, so making
 * a coroutine allocates nothing but (on a cold pool) the mapping, and a
 * stack on the free list is linked through its old descriptor.
 */
#include "coro.h"
#include "switch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifdef CORO_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#define CORO_DEFER_INLINE 6

struct coro_defer_rec {
	void (*fn)(void *arg);
	void *arg;
};

struct coro {
	/* asm: saved stack pointers; hot, so first. */
	void *sp;
	void *caller_sp;
	struct coro *prev;      /* coro_current() of the resumer */
	struct coro_pool *pool; /* NULL while on the free list */
	struct coro *next_free;
	coro_fn fn;
	void *arg;
	unsigned char kind;
	bool finished;
	unsigned ndefer, cap_defer;
	struct coro_defer_rec *defers; /* inline_defers, or malloc'd when it grew */
	struct coro_defer_rec inline_defers[CORO_DEFER_INLINE];
	void *map;      /* the whole mapping, guard included */
	char *stack_lo; /* usable stack: [stack_lo, stack_lo + stack_len) */
	size_t stack_len;
#ifdef CORO_HAVE_VALGRIND
	unsigned vg_id;
#endif
#ifdef CORO_ASAN
	void *fake_stack;
	const void *caller_bottom;
	size_t caller_size;
#endif
	ucontext_t uc, caller_uc; /* only used by the ucontext switch */
};

struct coro_pool {
	size_t stack_size; /* usable bytes, page multiple */
	size_t map_len;
	size_t page;
	unsigned max_free, nfree, live;
	enum coro_switch kind;
	struct coro *free;
};

static _Thread_local struct coro *coro_cur;

#if defined(CORO_HAVE_ASM) && defined(CORO_DEFAULT_ASM)
#define CORO_BUILD_DEFAULT CORO_SWITCH_ASM
#else
#define CORO_BUILD_DEFAULT CORO_SWITCH_UCONTEXT
#endif

static enum coro_switch resolve(enum coro_switch kind)
{
	return kind == CORO_SWITCH_DEFAULT ? CORO_BUILD_DEFAULT : kind;
}

bool coro_switch_available(enum coro_switch kind)
{
	switch (resolve(kind)) {
	case CORO_SWITCH_ASM:
#ifdef CORO_HAVE_ASM
		return true;
#else
		return false;
#endif
	case CORO_SWITCH_UCONTEXT:
		return true;
	default:
		return false;
	}
}

const char *coro_switch_name(enum coro_switch kind)
{
	return resolve(kind) == CORO_SWITCH_ASM ? "asm" : "ucontext";
}

/* ---- the pool ---- */

struct coro_pool *coro_pool_new(size_t stack_size, unsigned max_free, enum coro_switch kind)
{
	kind = resolve(kind);
	if (!coro_switch_available(kind)) {
		errno = ENOTSUP;
		return NULL;
	}
	struct coro_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	long pg = sysconf(_SC_PAGESIZE);
	pool->page = pg > 0 ? (size_t)pg : 4096;
	if (stack_size == 0)
		stack_size = 64 * 1024;
	stack_size = (stack_size + pool->page - 1) & ~(pool->page - 1);
	size_t desc = (sizeof(struct coro) + pool->page - 1) & ~(pool->page - 1);
	pool->stack_size = stack_size;
	pool->map_len = pool->page + stack_size + desc;
	pool->max_free = max_free;
	pool->kind = kind;
	return pool;
}

void coro_pool_free(struct coro_pool *pool)
{
	if (!pool)
		return;
	struct coro *co = pool->free;
	while (co) {
		struct coro *next = co->next_free;
#ifdef CORO_HAVE_VALGRIND
		VALGRIND_STACK_DEREGISTER(co->vg_id);
#endif
		munmap(co->map, pool->map_len);
		co = next;
	}
	free(pool);
}

size_t coro_pool_stack_size(const struct coro_pool *pool)
{
	return pool->stack_size;
}

unsigned coro_pool_idle(const struct coro_pool *pool)
{
	return pool->nfree;
}

unsigned coro_pool_live(const struct coro_pool *pool)
{
	return pool->live;
}

/* A fresh mapping with the guard page below the stack. The stack grows
 * down, so an overflow runs into the guard. */
static struct coro *stack_map(struct coro_pool *pool)
{
	char *map = mmap(NULL, pool->map_len, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map, pool->page, PROT_NONE) != 0) {
		int e = errno;
		munmap(map, pool->map_len);
		errno = e;
		return NULL;
	}
	char *top = map + pool->map_len;
	struct coro *co = (struct coro *)((uintptr_t)(top - sizeof(struct coro)) & ~(uintptr_t)63);
	co->map = map;
	co->stack_lo = map + pool->page;
	co->stack_len = (size_t)((char *)co - co->stack_lo);
#ifdef CORO_HAVE_VALGRIND
	co->vg_id = VALGRIND_STACK_REGISTER(co->stack_lo, (char *)co);
#endif
	return co;
}

/* ---- running ---- */

static void run_defers(struct coro *co, unsigned mark)
{
	while (co->ndefer > mark) {
		struct coro_defer_rec d = co->defers[--co->ndefer];
		d.fn(d.arg);
	}
}

/* Where every coroutine starts, on its own stack. It never returns: the
 * last thing it does is switch back to its resumer for good. */
static void coro_entry(void *arg)
{
	struct coro *co = arg;
#ifdef CORO_ASAN
	/* First arrival: learn the resumer's stack for the way back. */
	__sanitizer_finish_switch_fiber(NULL, &co->caller_bottom, &co->caller_size);
#endif
	co->fn(co, co->arg);
	run_defers(co, 0);
	co->finished = true;
	coro_cur = co->prev;
#ifdef CORO_ASAN
	/* NULL: this stack will not come back, let ASan drop its fake frames. */
	__sanitizer_start_switch_fiber(NULL, co->caller_bottom, co->caller_size);
#endif
#ifdef CORO_HAVE_ASM
	if (co->kind == CORO_SWITCH_ASM)
		coro_asm_switch(&co->sp, co->caller_sp, false);
#endif
	coro_uctx_switch(&co->uc, &co->caller_uc);
	__builtin_unreachable();
}

struct coro *coro_new(struct coro_pool *pool, coro_fn fn, void *arg)
{
	struct coro *co = pool->free;
	if (co) {
		pool->free = co->next_free;
		pool->nfree--;
	} else {
		co = stack_map(pool);
		if (!co)
			return NULL;
	}
#ifdef CORO_ASAN
	/* Frames that never returned (every finished coroutine's entry) leave
	 * poisoned redzones behind; a reused stack starts clean. */
	ASAN_UNPOISON_MEMORY_REGION(co->stack_lo, co->stack_len);
	co->fake_stack = NULL;
	co->caller_bottom = NULL;
	co->caller_size = 0;
#endif
	co->pool = pool;
	co->next_free = NULL;
	co->prev = NULL;
	co->fn = fn;
	co->arg = arg;
	co->kind = (unsigned char)pool->kind;
	co->finished = false;
	co->ndefer = 0;
	co->cap_defer = CORO_DEFER_INLINE;
	co->defers = co->inline_defers;
#ifdef CORO_HAVE_ASM
	if (co->kind == CORO_SWITCH_ASM) {
		co->sp = coro_asm_make((char *)co, coro_entry, co);
		pool->live++;
		return co;
	}
#endif
	if (coro_uctx_make(&co->uc, co->stack_lo, co->stack_len, coro_entry, co) != 0) {
		/* Not a stack problem: keep the stack for the next try. */
		co->pool = NULL;
		co->next_free = pool->free;
		pool->free = co;
		pool->nfree++;
		return NULL;
	}
	pool->live++;
	return co;
}

/* Resumer -> co. */
static void coro_switch_to(struct coro *co)
{
#ifdef CORO_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, co->stack_lo, co->stack_len);
#endif
#ifdef CORO_HAVE_ASM
	if (__builtin_expect(co->kind == CORO_SWITCH_ASM, 1))
		coro_asm_switch(&co->caller_sp, co->sp, true);
	else
#endif
		coro_uctx_switch(&co->caller_uc, &co->uc);
#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* co -> its resumer. */
static void coro_switch_back(struct coro *co)
{
#ifdef CORO_ASAN
	__sanitizer_start_switch_fiber(&co->fake_stack, co->caller_bottom, co->caller_size);
#endif
#ifdef CORO_HAVE_ASM
	if (__builtin_expect(co->kind == CORO_SWITCH_ASM, 1))
		coro_asm_switch(&co->sp, co->caller_sp, true);
	else
#endif
		coro_uctx_switch(&co->uc, &co->caller_uc);
#ifdef CORO_ASAN
	/* Resumed, maybe by someone else: learn the new resumer's stack. */
	__sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#endif
}

/* The side that gives control back (yield, the end of the coroutine) puts
 * coro_cur back, so that the fast path of coro_resume can tail-call the
 * switch: the coroutine's "alive" comes back as the switch's return value,
 * straight into coro_resume's caller, and no ret has to be predicted after
 * a switch (the return stack buffer only knows the other context's calls;
 * that mispredict was a third of the cost). */
bool coro_resume(struct coro *co)
{
	if (co->finished)
		return false;
	co->prev = coro_cur;
	coro_cur = co;
#if defined(CORO_HAVE_ASM) && !defined(CORO_ASAN)
	if (__builtin_expect(co->kind == CORO_SWITCH_ASM, 1))
		return coro_asm_switch(&co->caller_sp, co->sp, true);
#endif
	coro_switch_to(co);
	return !co->finished;
}

void coro_yield(struct coro *co)
{
	coro_cur = co->prev;
	coro_switch_back(co);
}

bool coro_finished(const struct coro *co)
{
	return co->finished;
}

struct coro *coro_current(void)
{
	return coro_cur;
}

void coro_free(struct coro *co)
{
	if (!co)
		return;
	struct coro_pool *pool = co->pool;
	run_defers(co, 0);
	if (co->defers != co->inline_defers)
		free(co->defers);
	co->defers = co->inline_defers;
	co->pool = NULL;
	pool->live--;
	if (pool->nfree < pool->max_free) {
		co->next_free = pool->free;
		pool->free = co;
		pool->nfree++;
		return;
	}
#ifdef CORO_HAVE_VALGRIND
	VALGRIND_STACK_DEREGISTER(co->vg_id);
#endif
	munmap(co->map, pool->map_len);
}

int coro_defer(struct coro *co, void (*fn)(void *arg), void *arg)
{
	if (co->ndefer == co->cap_defer) {
		unsigned cap = co->cap_defer * 2;
		struct coro_defer_rec *d = malloc(cap * sizeof(*d));
		if (!d) {
			fn(arg);
			return -1;
		}
		memcpy(d, co->defers, co->ndefer * sizeof(*d));
		if (co->defers != co->inline_defers)
			free(co->defers);
		co->defers = d;
		co->cap_defer = cap;
	}
	co->defers[co->ndefer++] = (struct coro_defer_rec){fn, arg};
	return 0;
}

unsigned coro_defer_mark(const struct coro *co)
{
	return co->ndefer;
}

void coro_defer_run(struct coro *co, unsigned mark)
{
	run_defers(co, mark);
}
