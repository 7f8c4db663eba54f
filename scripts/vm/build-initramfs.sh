#!/usr/bin/env bash
# Builds an initramfs (uncompressed newc cpio) that boots berth as the
# machine's init: berth is /init, CONFIG_DIR becomes /etc/berth, the OCI
# layouts are imported into /var/lib/berth on the host (so the guest boots
# with its images already unpacked), and overlay.ko of the kernel's
# version is copied to /lib/modules/ (Debian builds overlayfs as a module;
# berth.json's "modules" loads it). Needs root (the import chowns), cpio.
#
#   build-initramfs.sh --berth BIN --config DIR --kernel VMLINUZ --out FILE
#                      [--image OCI_LAYOUT]... [--extra DIR]...
#
# --extra copies a directory's contents over the image's root (a test's
# own rdinit= program, say).
#
# For users, `berth mkimage` (docs/images.md) builds such an image itself
# (compressed, reproducible, modules resolved from modules.dep); the VM
# tests keep this script for --extra and their fixed module path.
#
# Nothing else is needed in the image: the kernel's built-in initramfs
# already holds /dev/console, and berth mounts /proc, /sys, /dev, /run and
# cgroup2 itself.
set -euo pipefail
berth= config= kernel= out= images=() extras=()
while [ $# -gt 0 ]; do
  case $1 in
    --berth) berth=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --image) images+=("$2"); shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    *) echo "build-initramfs: unknown argument $1" >&2; exit 2 ;;
  esac
done
usage="usage: build-initramfs.sh --berth BIN --config DIR --kernel VMLINUZ --out FILE [--image OCI_LAYOUT]... [--extra DIR]..."
[ -n "$berth" ] && [ -n "$config" ] && [ -n "$kernel" ] && [ -n "$out" ] || { echo "$usage" >&2; exit 2; }
command -v cpio >/dev/null || { echo "build-initramfs: cpio missing (scripts/setup.sh --test)" >&2; exit 1; }
# A dynamically linked /init would need ld.so and libc in the image.
file "$berth" | grep -q "statically linked" || { echo "build-initramfs: $berth is not static (scripts/build-release.sh)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{etc,proc,sys,dev,run,tmp,lib/modules,var/lib/berth}
chmod 1777 "$root/tmp"
install -m 0755 "$berth" "$root/init"
cp -r "$config" "$root/etc/berth"
for image in "${images[@]}"; do
  "$berth" import "$image" --root "$root/var/lib/berth" >/dev/null
done
# The imports' staging areas are gone once they commit; drop the empty dir.
rmdir "$root/var/lib/berth/tmp" 2>/dev/null || true

kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
overlay=/lib/modules/$kver/kernel/fs/overlayfs/overlay.ko
if [ -f "$overlay" ]; then
  cp "$overlay" "$root/lib/modules/overlay.ko"
elif ! grep -q '^CONFIG_OVERLAY_FS=y' "/boot/config-$kver" 2>/dev/null; then
  echo "build-initramfs: no $overlay and overlayfs is not built into $kver" >&2; exit 1
fi

for extra in "${extras[@]}"; do
  cp -a "$extra/." "$root/"
done

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out"
