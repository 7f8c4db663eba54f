#!/usr/bin/env bash
# Installs what berth's demo and tests need on Debian 12, as root. Safe to
# run again: it only installs what is missing.
#   setup.sh            packages for the demo (busybox-static)
#   setup.sh --test     plus what the test suite uses
set -euo pipefail
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

[ "$(id -u)" = 0 ] || { echo "setup: run as root (containers need it)" >&2; exit 1; }

packages=(busybox-static util-linux file ca-certificates)
if [ "$want_test" = 1 ]; then
  # gcc and libc6-dev: the escape-battery probe is built with cc -static.
  # time: GNU time measures a pull's peak RSS (tests/common/hostile_registry.rs).
  packages+=(socat tar gzip coreutils time docker-registry skopeo apache2-utils openssl python3 gcc libc6-dev containernetworking-plugins iptables iproute2)
  # tests/vm_boot.rs boots berth as /init under qemu (TCG) with Debian's
  # cloud kernel; cpio packs the initramfs. NB: bookworm's qemu-system-x86
  # replaces a bookworm-backports qemu-utils, if one is installed.
  packages+=(qemu-system-x86 linux-image-cloud-amd64 cpio)
  # tests/vm_first_boot.rs makes its config drives (vfat images) with
  # mkfs.vfat and mtools, without mounting anything.
  packages+=(dosfstools mtools)
  # `berth mkimage --format disk` makes its ext4 partitions with mkfs.ext4
  # -d and pins their times with debugfs; tests/mkimage.rs checks them
  # with e2fsck (Debian installs e2fsprogs by default; named so a slim
  # image gets it too).
  packages+=(e2fsprogs)
  # tests/remote_ssh.rs runs its own sshd on 127.0.0.1 (its own config,
  # keys and port) for `berth --host ssh://`.
  packages+=(openssh-server openssh-client)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installed only for the tests, Debian's sshd must not start listening on
  # port 22 (its units skip while this file exists; the tests start sshd
  # themselves).
  if printf '%s\n' "${missing[@]}" | grep -qx openssh-server && [ ! -e /usr/sbin/sshd ]; then
    mkdir -p /etc/ssh && touch /etc/ssh/sshd_not_to_be_run
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# berth is edition 2024 Rust: it needs cargo >= 1.89. Debian 12's own cargo
# is older, so a rustup toolchain is expected when one is present.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install a Rust toolchain >= 1.89 (rustup) and run again" >&2
  exit 1
fi
ver=$(cargo --version | awk '{print $2}')
if [ "$(printf '%s\n1.89.0\n' "$ver" | sort -V | head -1)" != "1.89.0" ]; then
  echo "setup: cargo $ver is too old; berth needs >= 1.89" >&2
  exit 1
fi
