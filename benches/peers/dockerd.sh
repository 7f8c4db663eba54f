#!/usr/bin/env bash
# Starts or stops a private dockerd (and the containerd it manages) for the
# benchmarks: its own data root, exec root and socket under WORK/docker,
# no iptables, no bridge. Tracked by PID; `stop` leaves nothing running.
#   dockerd.sh start|stop WORK
set -euo pipefail
cmd=${1:?usage: dockerd.sh start|stop WORK}
work=${2:?usage: dockerd.sh start|stop WORK}
d=$work/docker
case $cmd in
  start)
    mkdir -p "$d/data" "$d/exec"
    dockerd --storage-driver=overlay2 --iptables=false --ip-masq=false --bridge=none \
      --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
      -H "unix://$d/docker.sock" >"$d/dockerd.log" 2>&1 &
    for _ in $(seq 300); do
      DOCKER_HOST="unix://$d/docker.sock" docker version >/dev/null 2>&1 && exit 0
      sleep 0.1
    done
    echo "dockerd did not come up; see $d/dockerd.log" >&2
    exit 1 ;;
  stop)
    pid=$(cat "$d/dockerd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      # No `docker rm` here: dockerd 20.10 can hang removing many containers.
      # Stopping dockerd and killing its containerd and shims is enough.
      kill "$pid"
      for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    # The containerd dockerd started for itself, the shims, and the
    # containers they ran, by state dir.
    pkill -9 -f -- "$d/exec" 2>/dev/null || true
    pkill -9 -f -- "$d/data" 2>/dev/null || true
    grep " $d/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -f "$d/dockerd.pid" ;;
  *) echo "usage: dockerd.sh start|stop WORK" >&2; exit 2 ;;
esac
