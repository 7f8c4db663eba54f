#!/usr/bin/env bash
# Prepares the side-by-side benchmarks, offline: installs the peers from
# Debian (unless --no-install) and builds the same busybox image for each
# of them in WORK:
#   WORK/rootfs, WORK/rootfs.tar      the busybox root filesystem
#   WORK/oci                          OCI layout (skopeo, the registry push)
#   WORK/bundle                       OCI runtime bundle for crun and runc
#   WORK/berth-root                   berth's store with the image imported
#   WORK/podman/                      podman's own storage (isolated), image imported
#   WORK/docker/                      dockerd's own data root (isolated), image imported
#   WORK/registry/                    a local registry's storage, image pushed
# dockerd and the registry are started here by PID and stopped again; the
# machine's own docker, podman and registry state is never touched.
#
#   setup.sh WORK [--no-install] [--berth BIN]
set -euo pipefail
work=${1:?usage: setup.sh WORK [--no-install] [--berth BIN]}; shift
install=1 berth=
while [ $# -gt 0 ]; do
  case $1 in
    --no-install) install=0; shift ;;
    --berth) berth=$2; shift 2 ;;
    *) echo "setup: unknown option $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")/../.." && pwd)
ref=localhost/bench/busybox:latest
mkdir -p "$work"
work=$(cd "$work" && pwd)

if [ "$install" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends crun runc podman docker.io containerd skopeo umoci \
    docker-registry hyperfine busybox-static python3 >/dev/null
fi
have() { command -v "$1" >/dev/null 2>&1; }

echo "setup: image from busybox-static"
rm -rf "$work/rootfs" "$work/oci" "$work/bundle"
bash "$here/scripts/busybox-rootfs.sh" "$work/rootfs"
tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
bash "$here/scripts/mkimage.sh" --format oci --ref "$ref" "$work/oci" "$work/rootfs"

if [ -n "$berth" ]; then
  "$berth" import "$work/oci" --root "$work/berth-root" >/dev/null
  echo "setup: berth store ready"
fi

if have crun || have runc; then
  mkdir -p "$work/bundle"
  cp -a "$work/rootfs" "$work/bundle/rootfs"
  (cd "$work/bundle" && { have crun && crun spec || runc spec; } && mv config.json config.template.json)
  echo "setup: OCI bundle ready"
fi

if have podman; then
  mkdir -p "$work/podman"
  # Without CAP_SYS_RESOURCE podman must not try to raise hard limits
  # (FACTS: MACHINE.md); pin them to what this shell already has.
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=%s:%s"]\n' "$(ulimit -Su)" "$(ulimit -Hu)" \
    > "$work/podman/containers.conf"
  CONTAINERS_CONF="$work/podman/containers.conf" podman --root "$work/podman/root" --runroot "$work/podman/run" \
    import "$work/rootfs.tar" "$ref" >/dev/null
  echo "setup: podman image ready"
fi

if have dockerd && have docker; then
  bash "$here/benches/peers/dockerd.sh" start "$work"
  trap 'bash "$here/benches/peers/dockerd.sh" stop "$work"' EXIT
  DOCKER_HOST="unix://$work/docker/docker.sock" docker import "$work/rootfs.tar" "$ref" >/dev/null
  bash "$here/benches/peers/dockerd.sh" stop "$work"
  trap - EXIT
  echo "setup: docker image ready"
fi

if have docker-registry && have skopeo; then
  bash "$here/benches/peers/registry.sh" start "$work"
  trap 'bash "$here/benches/peers/registry.sh" stop "$work"' EXIT
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:latest" "docker://127.0.0.1:$(cat "$work/registry/port")/bench/busybox:latest"
  bash "$here/benches/peers/registry.sh" stop "$work"
  trap - EXIT
  echo "setup: registry image pushed"
fi
