#!/usr/bin/env python3
"""A soak: the supervisor under a realistic bad day for N minutes (10 by
default). 50 containers: 35 quiet services, 10 crash-looping (exit 1,
restart always), 5 flooding their logs (`yes` into stdout, rate-limited
and rotated by berth). Every 10 s: the daemon's RSS and CPU time (from
/proc), its restart counts and the API round-trip time. The verdict
compares RSS after warm-up with RSS at the end (target < 1 % growth) and
the average CPU (target < 1 % of a core).

    soak.py --berth BIN [--minutes N] [--work DIR] [--json PATH]

Needs root and busybox-static (for the image); leaves nothing behind.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import rss_kib, wait_until  # noqa: E402

REF = "localhost/soak/busybox:latest"
QUIET, CRASHING, FLOODING = 35, 10, 5


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def write_specs(cfg):
    c = cfg / "containers"
    c.mkdir(parents=True)
    base = {"image": REF, "restart": {"policy": "always"}, "stop_timeout": 2}
    for i in range(QUIET):
        spec = dict(base, command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 5; done"])
        (c / f"quiet{i}.json").write_text(json.dumps(spec))
    for i in range(CRASHING):
        spec = dict(base, command=["sh", "-c", "echo crashing; exit 1"])
        (c / f"crash{i}.json").write_text(json.dumps(spec))
    for i in range(FLOODING):
        spec = dict(base, command=["sh", "-c", "yes flooding-the-log-with-a-long-line-of-text"],
                    logging={"max_size": "256k", "max_files": 2, "rate": "64k", "burst": "64k"})
        (c / f"flood{i}.json").write_text(json.dumps(spec))


def build_image(work, berth):
    rootfs = work / "rootfs"
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(rootfs)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF,
                    str(work / "oci"), str(rootfs)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([berth, "import", str(work / "oci"), "--root", str(work / "root")], check=True,
                   stdout=subprocess.DEVNULL)


def api_ms(berth, sock):
    t = time.monotonic()
    out = subprocess.run([berth, "ps", "--json", "--socket", sock], capture_output=True, check=True).stdout
    return (time.monotonic() - t) * 1000, json.loads(out)


def sample(berth, sock, pid, start):
    ms, records = api_ms(berth, sock)
    return {
        "t": round(time.monotonic() - start, 1),
        "rss_kib": rss_kib(pid),
        "cpu_s": cpu_seconds(pid),
        "api_ms": round(ms, 1),
        "running": sum(1 for r in records if r["state"] == "running"),
        "restarts": sum(r["restarts"] for r in records),
    }


def soak(berth, work, minutes):
    cfg, sock = work / "config", str(work / "berth.sock")
    write_specs(cfg)
    build_image(work, berth)
    parent = f"berth-soak-{os.getpid()}"
    daemon = subprocess.Popen([berth, "daemon", "--config", str(cfg), "--root", str(work / "root"),
                               "--socket", sock, "--cgroup-parent", parent],
                              stdout=subprocess.DEVNULL, stderr=open(work / "daemon.log", "w"))
    try:
        wait_until(lambda: Path(sock).exists(), 10)
        start = time.monotonic()
        samples = []
        while time.monotonic() - start < minutes * 60:
            samples.append(sample(berth, sock, daemon.pid, start))
            s = samples[-1]
            print(f"soak: t={s['t']:>6}s rss={s['rss_kib']} KiB cpu={s['cpu_s']:.2f}s "
                  f"api={s['api_ms']} ms running={s['running']} restarts={s['restarts']}", flush=True)
            time.sleep(10)
        samples.append(sample(berth, sock, daemon.pid, start))
        logs = sum(f.stat().st_size for f in (work / "root" / "containers").rglob("json.log*"))
        return samples, logs
    finally:
        daemon.terminate()
        try:
            daemon.wait(120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def verdict(samples, logs):
    warm = next((s for s in samples if s["t"] >= 60), samples[0])
    end = samples[-1]
    growth = (end["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"] * 100
    cpu = (end["cpu_s"] - warm["cpu_s"]) / max(end["t"] - warm["t"], 1) * 100
    api = [s["api_ms"] for s in samples]
    return {
        "minutes": round(end["t"] / 60, 1),
        "rss_warm_kib": warm["rss_kib"], "rss_end_kib": end["rss_kib"],
        "rss_growth_pct": round(growth, 2), "rss_max_kib": max(s["rss_kib"] for s in samples),
        "cpu_pct_of_core": round(cpu, 2),
        "restarts": end["restarts"], "api_ms_median": statistics.median(api), "api_ms_max": max(api),
        "log_bytes_on_disk": logs,
    }


def main():
    # A SIGTERM must still stop the daemon and remove the work dir.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / "target/release/berth"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="berth-soak-"))
    try:
        samples, logs = soak(os.path.abspath(a.berth), work, a.minutes)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    v = verdict(samples, logs)
    print("| metric | value | target |\n|---|---|---|")
    print(f"| RSS after warm-up (1 min) | {v['rss_warm_kib']} KiB | |")
    print(f"| RSS at the end ({v['minutes']} min) | {v['rss_end_kib']} KiB (max {v['rss_max_kib']}) | |")
    print(f"| RSS growth | {v['rss_growth_pct']} % | < 1 % |")
    print(f"| supervisor CPU | {v['cpu_pct_of_core']} % of a core | < 1 % |")
    print(f"| restarts of the 10 crash-loopers | {v['restarts']} | |")
    print(f"| API round trip (berth ps) | median {v['api_ms_median']} ms, max {v['api_ms_max']} ms | |")
    print(f"| log bytes on disk at the end | {v['log_bytes_on_disk']} | bounded by rotation |")
    if a.json:
        a.json.write_text(json.dumps({"verdict": v, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
