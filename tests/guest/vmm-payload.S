/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny 64-bit guest for kvrun-vmm's own tests: entered through the Linux
 * 64-bit boot protocol like a vmlinux (RSI = zero page), it talks to the
 * 8250 at 0x3f8 and ends through the VMM's exit paths. `payload=X` on the
 * command line picks what it does:
 *   p (default) print the command line, run int3 (with a #BP handler) and
 *     fwait (the PVM fixups), print PAYLOAD-OK, exit 0 via port 0x501
 *   e  exit with status 7          r  i8042 reset (0xfe to port 0x64)
 *   t  triple fault                h  idle forever, interrupts on (API tests)
 *   x  halt with interrupts off (the VMM calls that a power-off)
 *   k  report a panic (1 to port 0x501), then i8042 reset
 *   u  print CPUID leaves 1, 7 and 0x40000001 (eax ebx ecx edx, hex), exit 0
 *   c  echo console input until 'q', then exit 0
 */
	.code64
	.text
	.globl _start
_start:
	mov	%rsi, %r15			/* zero page */
	lea	stack_top(%rip), %rsp
	lea	msg_hello(%rip), %rdi
	call	puts
	mov	0x228(%r15), %eax		/* hdr.cmd_line_ptr */
	mov	%rax, %r14
	mov	%rax, %rdi
	call	puts
	lea	msg_nl(%rip), %rdi
	call	puts
	mov	%r14, %rdi
	call	find_mode			/* al = mode */
	cmp	$'e', %al
	je	mode_exit7
	cmp	$'r', %al
	je	mode_reset
	cmp	$'t', %al
	je	mode_triple
	cmp	$'h', %al
	je	mode_idle
	cmp	$'x', %al
	je	mode_halt
	cmp	$'c', %al
	je	mode_echo
	cmp	$'k', %al
	je	mode_panic
	cmp	$'u', %al
	je	mode_cpuid

mode_print:
	/* IDT with a #BP handler at vector 3. */
	lea	bp_handler(%rip), %rax
	lea	idt(%rip), %rdi
	mov	%ax, 48(%rdi)			/* gate 3: offset 15:0 */
	movw	$0x10, 50(%rdi)			/* selector __BOOT_CS */
	movw	$0x8e00, 52(%rdi)		/* present, DPL0, interrupt gate */
	shr	$16, %rax
	mov	%ax, 54(%rdi)			/* offset 31:16 */
	shr	$16, %rax
	mov	%eax, 56(%rdi)			/* offset 63:32 */
	lea	idtr(%rip), %rax
	lea	idt(%rip), %rdi
	mov	%rdi, 2(%rax)
	lidt	(%rax)
	int3
	fwait
	lea	msg_ok(%rip), %rdi
	call	puts
	xor	%eax, %eax
	jmp	exit_al

mode_exit7:
	mov	$7, %al
	jmp	exit_al

mode_cpuid:
	lea	msg_cpuid(%rip), %rdi
	call	puts
	mov	$1, %edi
	call	print_cpuid
	mov	$7, %edi
	call	print_cpuid
	mov	$0x40000001, %edi
	call	print_cpuid
	lea	msg_nl(%rip), %rdi
	call	puts
	xor	%eax, %eax
	jmp	exit_al

/* Print CPUID leaf edi, subleaf 0: eax ebx ecx edx. */
print_cpuid:
	mov	%edi, %eax
	xor	%ecx, %ecx
	cpuid
	mov	%edx, %r12d
	mov	%ecx, %r13d
	mov	%ebx, %r14d
	mov	%eax, %edi
	call	puthex32
	mov	%r14d, %edi
	call	puthex32
	mov	%r13d, %edi
	call	puthex32
	mov	%r12d, %edi
	call	puthex32
	ret

mode_panic:
	lea	msg_panic(%rip), %rdi
	call	puts
	mov	$1, %al
	mov	$0x501, %dx
	out	%al, %dx
mode_reset:
	mov	$0xfe, %al
	out	%al, $0x64
	jmp	halt

mode_triple:
	lea	idtr0(%rip), %rax
	lidt	(%rax)
	ud2

mode_idle:
	lea	msg_halt(%rip), %rdi
	call	puts
	mov	$0xff, %al			/* mask the PICs: nothing may interrupt */
	out	%al, $0x21
	out	%al, $0xa1
1:	sti
	hlt
	jmp	1b

mode_halt:
	lea	msg_halt(%rip), %rdi
	call	puts
	jmp	halt

mode_echo:
	lea	msg_echo(%rip), %rdi
	call	puts
1:	mov	$0x3fd, %dx			/* LSR: wait for data ready */
	in	%dx, %al
	test	$1, %al
	jz	1b
	mov	$0x3f8, %dx
	in	%dx, %al
	cmp	$'q', %al
	je	2f
	mov	%al, %bl
	call	putc
	jmp	1b
2:	xor	%eax, %eax
	jmp	exit_al

exit_al:
	mov	$0x501, %dx
	out	%al, %dx
halt:
	cli
	hlt
	jmp	halt

bp_handler:
	push	%rdi
	lea	msg_bp(%rip), %rdi
	call	puts
	pop	%rdi
	iretq

/* al = the character after "payload=" in the string at rdi, or 'p'. */
find_mode:
	movb	(%rdi), %al
	test	%al, %al
	jz	3f
	lea	str_key(%rip), %rsi
	mov	%rdi, %rcx
1:	movb	(%rsi), %dl
	test	%dl, %dl
	jz	2f				/* whole key matched */
	cmp	(%rcx), %dl
	jne	4f
	inc	%rsi
	inc	%rcx
	jmp	1b
2:	movb	(%rcx), %al
	ret
4:	inc	%rdi
	jmp	find_mode
3:	mov	$'p', %al
	ret

/* Print the NUL-terminated string at rdi. */
puts:
	movb	(%rdi), %bl
	test	%bl, %bl
	jz	1f
	call	putc
	inc	%rdi
	jmp	puts
1:	ret

/* Print edi as 8 hex digits and a space. */
puthex32:
	mov	%edi, %esi
	mov	$8, %ecx
1:	rol	$4, %esi
	mov	%esi, %ebx
	and	$0xf, %ebx
	lea	hexdigits(%rip), %rax
	movb	(%rax,%rbx), %bl
	push	%rcx
	call	putc
	pop	%rcx
	dec	%ecx
	jnz	1b
	mov	$' ', %bl
	call	putc
	ret

/* Print bl once the transmitter is empty. */
putc:
	mov	$0x3fd, %dx
1:	in	%dx, %al
	test	$0x20, %al
	jz	1b
	mov	$0x3f8, %dx
	mov	%bl, %al
	out	%al, %dx
	ret

	.data
msg_hello:	.asciz "KVRUN-PAYLOAD cmdline: "
msg_nl:		.asciz "\n"
msg_bp:		.asciz "PAYLOAD-BP\n"
msg_ok:		.asciz "PAYLOAD-OK\n"
msg_halt:	.asciz "PAYLOAD-HALT\n"
msg_echo:	.asciz "PAYLOAD-ECHO\n"
msg_panic:	.asciz "PAYLOAD-PANIC\n"
str_key:	.asciz "payload="
msg_cpuid:	.asciz "PAYLOAD-CPUID "
hexdigits:	.ascii "0123456789abcdef"
	.balign 16
idtr:	.word	16 * 4 - 1
	.quad	0
idtr0:	.word	0
	.quad	0
	.balign 16
idt:	.fill	16 * 4, 1, 0
	.bss
	.balign 16
stack:	.fill	4096, 1, 0
stack_top:
