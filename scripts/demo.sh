#!/usr/bin/env bash
# The main job, offline: build berth, make the demo image from Debian's
# busybox-static, import it as localhost/demo/busybox:latest, and run the
# supervisor on configs/demo, showing what happens. Ctrl-C stops it all.
#
# Environment: BERTH_ROOT (store, default /var/lib/berth), BERTH_SOCKET
# (default /run/berth/berth.sock), BERTH_BIN (skip the build and use this
# binary), DEMO_SECONDS (stop by itself after that long), BERTH_CGROUP_PARENT.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

root=${BERTH_ROOT:-/var/lib/berth}
export BERTH_SOCKET=${BERTH_SOCKET:-/run/berth/berth.sock}
if [ -n "${BERTH_BIN:-}" ]; then
  berth=$BERTH_BIN
else
  echo "== building berth (release, static)"
  berth=$(bash scripts/build-release.sh)
fi

echo "== making the demo image from busybox-static"
work=$(mktemp -d)
daemon=
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bash scripts/busybox-rootfs.sh "$work/rootfs"
bash scripts/mkimage.sh --format oci --ref localhost/demo/busybox:latest "$work/oci" "$work/rootfs"
"$berth" import "$work/oci" --root "$root"
"$berth" images --root "$root"

echo "== starting the supervisor on configs/demo (Ctrl-C to stop)"
"$berth" daemon --config configs/demo --root "$root" --socket "$BERTH_SOCKET" \
  --cgroup-parent "${BERTH_CGROUP_PARENT:-berth}" &
daemon=$!
for _ in $(seq 100); do [ -S "$BERTH_SOCKET" ] && break; sleep 0.05; done
sleep 1.5
echo "== berth ps"
"$berth" ps
echo "== berth logs hello"
"$berth" logs hello
web_pid=$("$berth" ps --json | sed -n 's/.*"name":"web","pid":\([0-9]*\).*/\1/p')
if [ -n "$web_pid" ]; then
  echo "== the web container answers inside its own network namespace"
  nsenter -t "$web_pid" -n -- "$work/rootfs/bin/busybox" wget -q -O- http://127.0.0.1:8080/ || true
fi
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
  kill -TERM "$daemon"
fi
wait "$daemon"
daemon=
