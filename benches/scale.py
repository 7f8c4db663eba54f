#!/usr/bin/env python3
"""Scale: N containers asked for at once, and the control API while they
start and once they run.

For each supervisor (berth, docker, podman where installed): N start
commands launched together (one client process each, as N scripts or
operators would), the time until all N run, the supervisor's RSS then;
meanwhile one client lists the containers back to back and every list is
timed (p50/p99 "during the burst"); with all N running, 200 more lists
(p50/p99 "steady"). berth and docker are asked over their sockets (JSON
`list`, `GET /containers/json`), podman, which has no daemon, with
`podman ps`: its column says so.
"""
import statistics
import subprocess
import threading
import time

from api import berth_client, docker_client, percentile
from tools import wait_until


def _podman_lister(podman):
    def one():
        subprocess.run(podman.base + ["ps", "-q"], env=podman.env, capture_output=True, check=True)
    return one, lambda: None


def _lister(tool):
    if tool.name == "berth":
        return berth_client(tool.sock)
    if tool.name == "docker":
        return docker_client(str(tool.work / "docker" / "docker.sock"))
    return _podman_lister(tool)


def _poll_until(stop, one, out):
    while not stop.is_set():
        t0 = time.perf_counter()
        one()
        out.append(time.perf_counter() - t0)


def _stats(lat):
    ms = [x * 1000 for x in lat]
    if not ms:
        return {"requests": 0}
    return {"requests": len(ms), "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def _burst(tool, n):
    """Seconds until n sleepers run, started together; list latencies
    measured meanwhile; failures counted, not hidden."""
    cmds = [tool.sleeper_cmd(i) for i in range(n)]
    one, close = _lister(tool)
    during, failures = [], []
    stop = threading.Event()
    poller = threading.Thread(target=_poll_until, args=(stop, one, during))

    def start(cmd):
        r = subprocess.run(cmd, env=tool.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            failures.append(r.stderr.decode(errors="replace")[-300:])

    starters = [threading.Thread(target=start, args=(c,)) for c in cmds]
    t0 = time.perf_counter()
    poller.start()
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    try:
        wait_until(lambda: tool.running() >= n - len(failures), limit=600, step=0.2)
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        poller.join()
    steady = []
    for _ in range(200):
        t1 = time.perf_counter()
        one()
        steady.append(time.perf_counter() - t1)
    close()
    return {
        "containers": n, "failed_starts": len(failures), "first_failure": failures[0] if failures else None,
        "seconds": seconds, "supervisor_rss_kib": tool.supervisor_rss(),
        "list_during_burst": _stats(during), "list_steady": _stats(steady),
        "list_via": "podman ps" if tool.name == "podman" else "socket",
    }


def measure(tools, n):
    out = {}
    for tool in tools:
        if not hasattr(tool, "sleeper_cmd"):
            continue
        try:
            out[tool.name] = _burst(tool, n)
        except Exception as e:  # one tool failing must not lose the others' rows
            out[tool.name] = {"error": str(e)[:300]}
        finally:
            tool.stop_sleepers(n)
    return out


def report(res, n):
    lines = [f"\n## Scale: {n} containers started at once (scale.py)\n",
             "| tool | all running | RSS then | list p50 / p99 during the burst | list p50 / p99 with all running | failed starts |",
             "|---|---|---|---|---|---|"]
    for name, r in res.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | |")
            continue
        d, s = r["list_during_burst"], r["list_steady"]
        via = " (podman ps)" if r["list_via"] != "socket" else ""
        during = f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms ({d['requests']}){via}" if d["requests"] else "–"
        lines.append(f"| {name} | {r['seconds']:.1f} s | {r['supervisor_rss_kib'] / 1024:.1f} MiB | {during} | "
                     f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms | {r['failed_starts']} |")
    b = res.get("berth", {})
    peers = {k: v for k, v in res.items() if k != "berth" and "seconds" in v}
    if "seconds" in b and peers:
        best = min(peers, key=lambda k: peers[k]["seconds"])
        lines.append(f"\nberth ÷ {best}: burst {b['seconds'] / peers[best]['seconds']:.2f}×, "
                     f"RSS {b['supervisor_rss_kib'] / max(peers[best]['supervisor_rss_kib'], 1):.2f}×")
    return "\n".join(lines) + "\n"
