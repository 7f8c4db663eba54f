#!/usr/bin/env bash
# Boots an initramfs made by build-initramfs.sh under qemu, the serial
# console on stdout. TCG (software emulation): on the development machines
# /dev/kvm is PVM, which boots no Debian kernel. -no-reboot turns both a
# reboot and a power-off into qemu exiting with status 0; a guest write N
# to the isa-debug-exit port makes it exit (N<<1)|1 instead.
#
#   boot.sh INITRD [QEMU_ARG]...      env: KERNEL (default: newest
#                                      /boot/vmlinuz-*-cloud-amd64), APPEND (extra cmdline)
set -euo pipefail
initrd=${1:?usage: boot.sh INITRD [QEMU_ARG]...}; shift
kernel=${KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)}
[ -n "$kernel" ] || { echo "boot.sh: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2; exit 1; }
# printk.time=1: kernel lines carry seconds since boot, the clock berth's
# "first container running ... after the kernel started" line uses too.
exec qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 \
  -nodefaults -display none -serial stdio -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 printk.time=1 ${APPEND:-}" \
  "$@" < /dev/null
