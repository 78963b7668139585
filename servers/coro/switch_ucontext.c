/* switch_ucontext.c — the portable context switch: POSIX ucontext, for
 * machines without a switch_<arch>.S and for comparison. makecontext()
 * passes only int arguments, so the pointer travels in two halves. */
#include "switch.h"

#include <stdint.h>

static void uctx_start(unsigned hi, unsigned lo, unsigned ehi, unsigned elo)
{
	void *arg = (void *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo);
	void (*entry)(void *) = (void (*)(void *))(((uintptr_t)ehi << 16 << 16) | (uintptr_t)elo);
	entry(arg);
	__builtin_trap(); /* entry switches away for good; nothing to return to */
}

int coro_uctx_make(ucontext_t *uc, void *stack, size_t size, void (*entry)(void *arg), void *arg)
{
	if (getcontext(uc) != 0)
		return -1;
	uc->uc_stack.ss_sp = stack;
	uc->uc_stack.ss_size = size;
	uc->uc_stack.ss_flags = 0;
	uc->uc_link = NULL;
	uintptr_t a = (uintptr_t)arg, e = (uintptr_t)entry;
	/* The double shift keeps 32-bit targets free of a shift-by-width. */
	makecontext(uc, (void (*)(void))uctx_start, 4, (unsigned)(a >> 16 >> 16), (unsigned)a,
	            (unsigned)(e >> 16 >> 16), (unsigned)e);
	return 0;
}

void coro_uctx_switch(ucontext_t *save, const ucontext_t *to)
{
	swapcontext(save, to);
}
