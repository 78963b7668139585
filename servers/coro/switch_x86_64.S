/* switch_x86_64.S — the coroutine context switch for x86-64 (System V ABI).
 *
 * Only what the ABI says a callee must preserve is saved: rbx, rbp,
 * r12-r15, rsp, and the control words of the SSE unit (mxcsr) and the x87
 * FPU, as Boost.Context's fcontext does, so code that changes a rounding
 * mode inside one coroutine does not leak it into another. Everything else
 * is caller-saved, so the compiler has already spilled it around the call.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   0: mxcsr (4 bytes), x87 control word (2 bytes)
 *   8: r15  16: r14  24: r13  32: r12  40: rbx  48: rbp  56: return address
 */
	.text

/* bool coro_asm_switch(void **save (rdi), void *to (rsi), bool value (dl))
 * value becomes the return value of the coro_asm_switch call that the
 * context being resumed is sitting in; that is how a coroutine tells its
 * resumer "alive" or "finished" without the resumer having to run any code
 * after the switch (coro_resume tail-calls this). */
	.globl	coro_asm_switch
	.type	coro_asm_switch, @function
	.p2align 4
coro_asm_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)

	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movzbl	%dl, %eax
	/* Not ret: the return stack buffer predicts the caller of this call,
	 * which is never where the other context continues. An indirect jump
	 * goes through the branch target predictor instead, which learns the
	 * ping-pong (half the cost of a mispredicted ret). */
	popq	%rcx
	jmpq	*%rcx
	.cfi_endproc
	.size	coro_asm_switch, .-coro_asm_switch

/* void *coro_asm_make(void *stack_top (rdi), void (*entry)(void *) (rsi),
 *                     void *arg (rdx))
 * Returns the stack pointer of a frame that coro_asm_switch "returns" from
 * into coro_asm_start, with entry in r12 and arg in rbx. The return
 * address slot sits just below a 16-byte boundary, so after the ret the
 * stack is aligned as a call instruction expects. */
	.globl	coro_asm_make
	.type	coro_asm_make, @function
	.p2align 4
coro_asm_make:
	.cfi_startproc
	andq	$-16, %rdi
	leaq	-64(%rdi), %rax
	stmxcsr	(%rax)
	fnstcw	4(%rax)
	movq	$0, 8(%rax)		/* r15 */
	movq	$0, 16(%rax)		/* r14 */
	movq	$0, 24(%rax)		/* r13 */
	movq	%rsi, 32(%rax)		/* r12: entry */
	movq	%rdx, 40(%rax)		/* rbx: arg */
	movq	$0, 48(%rax)		/* rbp: ends frame-pointer chains */
	leaq	coro_asm_start(%rip), %rcx
	movq	%rcx, 56(%rax)
	ret
	.cfi_endproc
	.size	coro_asm_make, .-coro_asm_make

/* The first instruction a new coroutine runs. entry never returns; if it
 * did, there is no caller to go back to, so trap. */
	.type	coro_asm_start, @function
	.p2align 4
coro_asm_start:
	.cfi_startproc
	.cfi_undefined rip		/* the outermost frame: unwinders stop here */
	movq	%rbx, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	coro_asm_start, .-coro_asm_start

	.section .note.GNU-stack, "", @progbits
