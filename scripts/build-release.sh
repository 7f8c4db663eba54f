#!/usr/bin/env bash
# Builds the release binary as devices get it: statically linked (no
# ld.so, no libc.so: it runs from an initramfs as /init and costs less
# memory) and not position-independent (nothing to relocate at start).
# Prints the binary's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
host=$(rustc -vV | sed -n 's/^host: //p')
# An explicit --target keeps these flags off build scripts and proc-macros.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --manifest-path "$here/Cargo.toml" --release --quiet --target "$host" >&2
echo "$here/target/$host/release/berth"
