#!/usr/bin/env bash
# Starts or stops a private Distribution registry on 127.0.0.1 for the pull
# benchmarks, storing under WORK/registry. Tracked by PID.
#   registry.sh start|stop WORK
set -euo pipefail
cmd=${1:?usage: registry.sh start|stop WORK}
work=${2:?usage: registry.sh start|stop WORK}
r=$work/registry
case $cmd in
  start)
    mkdir -p "$r/data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$r/config.yml" <<CONF
version: 0.1
storage:
  filesystem:
    rootdirectory: $r/data
http:
  addr: 127.0.0.1:$port
log:
  level: error
CONF
    echo "$port" >"$r/port"
    docker-registry serve "$r/config.yml" >"$r/registry.log" 2>&1 &
    echo $! >"$r/registry.pid"
    for _ in $(seq 100); do
      python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && exit 0
      sleep 0.1
    done
    echo "registry did not come up; see $r/registry.log" >&2
    exit 1 ;;
  stop)
    pid=$(cat "$r/registry.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$r/registry.pid" ;;
  *) echo "usage: registry.sh start|stop WORK" >&2; exit 2 ;;
esac
