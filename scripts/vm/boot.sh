#!/usr/bin/env bash
# Boots an initramfs made by build-initramfs.sh (or mkimage), or a disk
# image from `berth mkimage --format disk`, under qemu, the serial
# console on stdout. TCG (software emulation): on the development machines
# /dev/kvm is PVM, which boots no Debian kernel. -no-reboot turns both a
# reboot and a power-off into qemu exiting with status 0; a guest write N
# to the isa-debug-exit port makes it exit (N<<1)|1 instead.
#
#   boot.sh INITRD [QEMU_ARG]...      env: KERNEL (default: newest
#                                      /boot/vmlinuz-*-cloud-amd64), APPEND (extra cmdline)
#   boot.sh --disk IMAGE [QEMU_ARG]... a `berth mkimage --format disk` image as
#                                      an NVMe disk (built into the cloud kernel),
#                                      its first partition the read-only root
set -euo pipefail
if [ "${1:-}" = "--disk" ]; then
  disk=${2:?usage: boot.sh --disk IMAGE [QEMU_ARG]...}; shift 2
  media=(-drive "file=$disk,if=none,id=disk,format=raw" -device nvme,drive=disk,serial=berthdisk)
  # rootwait: the NVMe controller may still be probing when the kernel
  # looks for its root.
  root="root=/dev/nvme0n1p1 ro rootfstype=ext4 rootwait"
else
  initrd=${1:?usage: boot.sh INITRD [QEMU_ARG]...}; shift
  media=(-initrd "$initrd")
  root=""
fi
kernel=${KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)}
[ -n "$kernel" ] || { echo "boot.sh: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2; exit 1; }
# printk.time=1: kernel lines carry seconds since boot, the clock berth's
# "first container running ... after the kernel started" line uses too.
exec qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 1 \
  -nodefaults -display none -serial stdio -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$kernel" "${media[@]}" \
  -append "console=ttyS0 quiet panic=-1 printk.time=1 $root ${APPEND:-}" \
  "$@" < /dev/null
