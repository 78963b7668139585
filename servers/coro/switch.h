/* switch.h — the raw context switches under coro.c (internal to
 * servers/coro; the benchmark uses them directly).
 *
 * asm (switch_<arch>.S): a context is one saved stack pointer; the
 * callee-saved registers live on the stack it points to.
 *   coro_asm_make() lays out a first frame at the top of a fresh stack so
 *   that switching to the returned sp calls entry(arg); entry must never
 *   return (it switches away for good instead).
 *   coro_asm_switch() saves the current context into *save and continues
 *   the one saved in to, handing it value as the result of its own
 *   coro_asm_switch() call.
 *
 * ucontext (switch_ucontext.c): the portable fallback. swapcontext() also
 * saves and restores the signal mask, one syscall per switch, which is why
 * it is only the fallback.
 */
#ifndef COROBENCH_CORO_SWITCH_H
#define COROBENCH_CORO_SWITCH_H

#include <stddef.h>
#include <ucontext.h>

#if defined(CORO_HAVE_ASM)
#include <stdbool.h>
void *coro_asm_make(void *stack_top, void (*entry)(void *arg), void *arg);
/* Returns the value passed by whoever switches back to this context. */
bool coro_asm_switch(void **save, void *to, bool value);
#endif

/* Prepare uc to run entry(arg) on [stack, stack + size). 0 or -1. */
int coro_uctx_make(ucontext_t *uc, void *stack, size_t size, void (*entry)(void *arg), void *arg);
void coro_uctx_switch(ucontext_t *save, const ucontext_t *to);

#endif
