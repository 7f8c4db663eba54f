#!/usr/bin/env bash
# The one command for the benchmarks: prepare the peers and images, build
# berth, measure everything side by side, write results.md and results.json.
#
#   benches/run.sh [--short] [--no-install] [--out DIR]
#
# --short is CI's mode: a handful of runs, berth's debug build, no package
# installs, peers used only if already installed (skipped with a reason).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
short=0 install=1 out=
while [ $# -gt 0 ]; do
  case $1 in
    --short) short=1; install=0; shift ;;
    --no-install) install=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: benches/run.sh [--short] [--no-install] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "benches: run as root" >&2; exit 1; }
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
cd "$here"
if [ "$short" = 1 ]; then
  cargo build --quiet
  berth=$here/target/debug/berth
else
  berth=$(bash scripts/build-release.sh)
fi
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
hugetlb_mounted=0
cleanup() {
  bash benches/peers/dockerd.sh stop "$work" 2>/dev/null || true
  bash benches/peers/dockerd.sh stop "$work/api" 2>/dev/null || true
  bash benches/peers/registry.sh stop "$work" 2>/dev/null || true
  if [ "$hugetlb_mounted" = 1 ]; then umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb; fi
  grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
args=("$work")
[ "$install" = 1 ] || args+=(--no-install)
bash benches/peers/setup.sh "${args[@]}" --berth "$berth"
# crun 1.8 refuses a hybrid cgroup layout unless hugetlb has a v1 hierarchy;
# mount one for the run and take it away afterwards.
if command -v crun >/dev/null && [ -d /sys/fs/cgroup/unified ] && [ ! -e /sys/fs/cgroup/hugetlb ] \
   && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  mkdir /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && hugetlb_mounted=1
fi
out=${out:-$here/benches/results}
python3 benches/bench.py --work "$work" --berth "$berth" --out "$out" $([ "$short" = 1 ] && echo --short)
# Hardening overhead inside containers (seccomp, Landlock; podman beside
# berth when installed): appended to the results bench.py just wrote.
python3 benches/hardening.py --work "$work/hardening" --berth "$berth" --rounds "$([ "$short" = 1 ] && echo 2 || echo 7)" \
  --append-to "$out"
# The control API under load (`list` latency with 1 and 200 clients, a
# private dockerd's GET /containers/json beside it) and how fast events
# reach an API subscriber and a webhook: appended likewise.
python3 benches/api.py --work "$work/api" --berth "$berth" $([ "$short" = 1 ] && echo --short) --append-to "$out"
if [ "$short" = 0 ]; then
  # Full mode only: boot to the first container under qemu (berth's
  # initramfs beside the kernel's own boot and busybox + crun), appended
  # by boot.py itself; then CNI start cost (podman beside berth) and a 10-minute
  # soak (RSS and CPU stay flat), appended to the same results.
  python3 benches/boot.py --berth "$berth" --work "$work/boot" --append-to "$out"
  mkdir -p "$work/network" "$work/soak"
  {
    printf '\n## Start with a CNI network (network.py)\n\n'
    python3 benches/network.py --berth "$berth" --work "$work/network"
    printf '\n## Soak: 50 containers, %s minutes (soak.py)\n\n' "${SOAK_MINUTES:-10}"
    python3 benches/soak.py --berth "$berth" --minutes "${SOAK_MINUTES:-10}" --work "$work/soak" \
      --json "$out/soak.json"
  } >> "$out/results.md"
fi
