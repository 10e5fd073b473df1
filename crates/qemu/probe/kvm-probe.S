/*
 * vmkit's accelerator probe payload: a multiboot (v1, "a.out kludge") flat binary QEMU loads with -kernel.
 *
 * Why a payload that computes instead of one that merely prints: on some hosts /dev/kvm opens and a guest starts,
 * yet every instruction runs hundreds of times slower than under TCG (a paravirtual KVM nested in a microVM);
 * firmware draws its screen there but a Linux kernel never finishes booting. So the probe does what an early
 * kernel does -- protected mode, 4-level paging, long mode, a memory-heavy loop over 8 MiB -- and reports a
 * checksum over the serial port. The host times the loop (between the two markers) and compares the checksum with
 * the value it expects, so "it ran, correctly, and fast enough" is measured, not assumed.
 *
 * Serial protocol (COM1, 0x3f8), one line each:
 *   "VMKIT-PROBE-START\n"                      entered, still in 32-bit protected mode
 *   "VMKIT-PROBE-DONE <16 hex digits>\n"       the checksum (lower-case hex, most significant digit first)
 * then it writes 0x31 to isa-debug-exit at port 0xf4 (QEMU exits with status 99) and halts.
 *
 * Workload: zero 8 MiB at 16 MiB; x = 0x9E3779B97F4A7C15; 1 Mi times { x ^= x << 13; x ^= x >> 7;
 * x ^= x << 17; qword at 16 MiB + (x & (8 MiB - 8)) += x }; checksum = x + the wrapping sum of all qwords.
 *
 * Build (the test `payload_matches_source` re-runs this and compares with the committed kvm-probe.bin):
 *   as --64 -o kvm-probe.o kvm-probe.S && ld -m elf_x86_64 -Ttext=0x100000 --oformat binary -o kvm-probe.bin kvm-probe.o
 */
    .set LOAD,      0x100000
    .set MB_MAGIC,  0x1BADB002
    .set MB_FLAGS,  0x00010000          /* bit 16: the load addresses below are valid */
    .set COM1,      0x3f8
    .set PML4,      0x10000
    .set PDPT,      0x11000
    .set PD,        0x12000
    .set STACK,     0x90000
    .set BUF,       0x1000000
    .set BUF_SIZE,  0x800000
    .set ITERS,     0x100000

    .text
    .globl  _start
_start:
    .code32
hdr:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long hdr                     /* header_addr */
    .long LOAD                          /* load_addr */
    .long 0                             /* load_end_addr: the whole file */
    .long 0                             /* bss_end_addr: none */
    .long start32                 /* entry_addr */

start32:
    cli
    cld
    mov     $STACK, %esp
    mov     $(msg_start), %esi
    call    puts32

    /* Identity-map the first GiB with 2 MiB pages: PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB. */
    mov     $PML4, %edi
    mov     $(3 * 4096 / 4), %ecx
    xor     %eax, %eax
    rep stosl
    movl    $(PDPT | 3), PML4
    movl    $(PD | 3), PDPT
    mov     $PD, %edi
    mov     $0x83, %eax                 /* present, writable, 2 MiB page */
    mov     $512, %ecx
1:  mov     %eax, (%edi)
    add     $0x200000, %eax
    add     $8, %edi
    loop    1b

    mov     %cr4, %eax
    or      $0x20, %eax                 /* PAE */
    mov     %eax, %cr4
    mov     $PML4, %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx           /* EFER */
    rdmsr
    or      $0x100, %eax                /* LME */
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax           /* PG | PE */
    mov     %eax, %cr0
    lgdt    gdtr
    ljmp    $0x08, $(start64)

puts32:                                 /* %esi: NUL-terminated string */
    mov     $COM1, %dx
2:  lodsb
    test    %al, %al
    jz      3f
    out     %al, %dx
    jmp     2b
3:  ret

    .code64
start64:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     $STACK, %rsp

    mov     $BUF, %rdi
    mov     $(BUF_SIZE / 8), %rcx
    xor     %eax, %eax
    rep stosq

    mov     $0x9E3779B97F4A7C15, %rax
    mov     $ITERS, %rcx
    mov     $BUF, %rbx
4:  mov     %rax, %rdx
    shl     $13, %rdx
    xor     %rdx, %rax
    mov     %rax, %rdx
    shr     $7, %rdx
    xor     %rdx, %rax
    mov     %rax, %rdx
    shl     $17, %rdx
    xor     %rdx, %rax
    mov     %rax, %rdx
    and     $(BUF_SIZE - 8), %rdx
    add     %rax, (%rbx, %rdx)
    dec     %rcx
    jnz     4b

    mov     $BUF, %rsi
    mov     $(BUF_SIZE / 8), %rcx
5:  add     (%rsi), %rax
    add     $8, %rsi
    dec     %rcx
    jnz     5b
    mov     %rax, %rbx                  /* the checksum */

    mov     $(msg_done), %rsi
    call    puts64
    mov     $16, %ecx
6:  rol     $4, %rbx
    mov     %ebx, %eax
    and     $0xf, %eax
    movb    hexdigits(%rax), %al
    mov     $COM1, %dx
    out     %al, %dx
    dec     %ecx
    jnz     6b
    mov     $'\n', %al
    out     %al, %dx

    mov     $0xf4, %dx                  /* isa-debug-exit,iobase=0xf4: QEMU exits with (0x31 << 1) | 1 = 99 */
    mov     $0x31, %al
    out     %al, %dx
7:  hlt
    jmp     7b

puts64:                                 /* %rsi: NUL-terminated string */
    mov     $COM1, %dx
8:  lodsb
    test    %al, %al
    jz      9f
    out     %al, %dx
    jmp     8b
9:  ret

    .align 8
gdt:
    .quad   0
    .quad   0x00209A0000000000          /* 0x08: 64-bit code */
    .quad   0x0000920000000000          /* 0x10: data */
gdtr:
    .word   gdtr - gdt - 1
    .long   gdt
msg_start:
    .asciz  "VMKIT-PROBE-START\n"
msg_done:
    .asciz  "VMKIT-PROBE-DONE "
hexdigits:
    .ascii  "0123456789abcdef"
