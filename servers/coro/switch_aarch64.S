/* switch_aarch64.S — the coroutine context switch for AArch64 (AAPCS64).
 *
 * Saved: the callee-saved general registers x19-x28, the frame pointer
 * x29, the link register x30 (where the switch returns to), sp, and the
 * low 64 bits of v8-v15 (d8-d15), which are all AAPCS64 asks a callee to
 * preserve. Everything else is caller-saved and already spilled by the
 * compiler around the call.
 *
 * Saved frame (160 bytes, 16-byte aligned), from the saved sp upwards:
 *   0: x19 x20  16: x21 x22  32: x23 x24  48: x25 x26  64: x27 x28
 *   80: x29 x30  96: d8 d9  112: d10 d11  128: d12 d13  144: d14 d15
 */
	.text

/* bool coro_asm_switch(void **save (x0), void *to (x1), bool value (w2))
 * value becomes the return value of the coro_asm_switch call that the
 * context being resumed is sitting in (coro_resume tail-calls this). */
	.globl	coro_asm_switch
	.type	coro_asm_switch, %function
	.p2align 4
coro_asm_switch:
	.cfi_startproc
	sub	sp, sp, #160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]

	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	and	w0, w2, #0xff
	ret
	.cfi_endproc
	.size	coro_asm_switch, .-coro_asm_switch

/* void *coro_asm_make(void *stack_top (x0), void (*entry)(void *) (x1),
 *                     void *arg (x2))
 * Returns the sp of a frame that coro_asm_switch "returns" from into
 * coro_asm_start (x30), with entry in x19 and arg in x20. */
	.globl	coro_asm_make
	.type	coro_asm_make, %function
	.p2align 4
coro_asm_make:
	.cfi_startproc
	and	x0, x0, #~15
	sub	x0, x0, #160
	stp	x1, x2, [x0, #0]	/* x19: entry, x20: arg */
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	xzr, xzr, [x0, #64]
	adr	x3, coro_asm_start
	stp	xzr, x3, [x0, #80]	/* x29 = 0 ends frame chains, x30 */
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	stp	xzr, xzr, [x0, #144]
	ret
	.cfi_endproc
	.size	coro_asm_make, .-coro_asm_make

/* The first instruction a new coroutine runs. entry never returns; if it
 * did, there is nowhere to go, so trap. */
	.type	coro_asm_start, %function
	.p2align 4
coro_asm_start:
	.cfi_startproc
	.cfi_undefined x30		/* the outermost frame: unwinders stop here */
	mov	x0, x20
	blr	x19
	brk	#0
	.cfi_endproc
	.size	coro_asm_start, .-coro_asm_start

	.section .note.GNU-stack, "", %progbits
