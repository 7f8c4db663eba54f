/* A static i386 program (int $0x80, no libc) for the compatibility test:
 * says hello, tries unshare(CLONE_NEWNS), which Docker's profile refuses
 * with EPERM on every ABI, and says what it got. Built with
 * `as --32` and `ld -m elf_i386`. */
	.section .rodata
hello:	.ascii "hello from i386\n"
	.set hello_len, . - hello
eperm:	.ascii "unshare: EPERM\n"
	.set eperm_len, . - eperm
other:	.ascii "unshare: not EPERM\n"
	.set other_len, . - other

	.text
	.globl _start
_start:
	movl $4, %eax		/* write */
	movl $1, %ebx
	movl $hello, %ecx
	movl $hello_len, %edx
	int $0x80

	movl $310, %eax		/* unshare */
	movl $0x20000, %ebx	/* CLONE_NEWNS */
	int $0x80
	cmpl $-1, %eax		/* -EPERM */
	jne 1f
	movl $eperm, %ecx
	movl $eperm_len, %edx
	jmp 2f
1:	movl $other, %ecx
	movl $other_len, %edx
2:	movl $4, %eax
	movl $1, %ebx
	int $0x80

	movl $1, %eax		/* exit(0) */
	xorl %ebx, %ebx
	int $0x80
