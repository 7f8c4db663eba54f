#!/usr/bin/env python3
"""berth side by side with crun, runc, podman and docker, in one run.

Every metric is measured for every tool that is installed, interleaved
where it matters, and reported with berth's ratio to the best peer (these
machines are noisy: ratios from one run mean more than absolute numbers).
Writes OUT/results.md and OUT/results.json.

    bench.py --work WORK --berth BIN [--short] [--out DIR]

Run it through benches/run.sh, which prepares WORK with peers/setup.sh.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tools import Berth, Docker, OciRuntime, Podman  # noqa: E402
from equal_work import CrunEqualWork, paired  # noqa: E402
import pull  # noqa: E402
import scale  # noqa: E402
import unpack  # noqa: E402

PEERS = ["crun", "crun_equal", "runc", "podman", "docker", "tar", "tar_parallel", "umoci", "skopeo+umoci"]


def percentile(values, p):
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * (len(s) - 1)))))]


def timed(cmd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    return dt


def start_latency(tools, runs):
    """spec -> /bin/true has run and been reaped; round-robin so drift in
    the machine's load hits every tool alike."""
    times = {t.name: [] for t in tools}
    for i in range(runs + 3):
        # Rotate who goes first: on cgroup v1 a migration right after
        # another one is cheaper, so a fixed order would favour one tool.
        k = i % len(tools)
        for t in tools[k:] + tools[:k]:
            dt = t.run_true(i)
            if i >= 3:  # warm-up runs are not counted
                times[t.name].append(dt * 1000)
    return {n: {"median_ms": statistics.median(v), "p95_ms": percentile(v, 95), "runs": len(v)} for n, v in times.items()}


def start_pairs(tools, pairs):
    """berth against crun given the same work, and against crun's bare
    default: `pairs` interleaved pairs each, the median of the per-pair
    ratios with its 95 % interval (single runs here swing 0.8–1.5×)."""
    by = {t.name: t for t in tools}
    if "berth" not in by:
        return {}
    return {peer: paired(by["berth"].run_true, by[peer].run_true, pairs) for peer in ("crun_equal", "crun") if peer in by}


def burst(tools, n):
    out = {}
    for t in tools:
        if not hasattr(t, "start_sleepers"):
            continue
        t0 = time.perf_counter()
        t.start_sleepers(n)
        secs = time.perf_counter() - t0
        out[t.name] = {"seconds": secs, "supervisor_rss_kib": t.supervisor_rss(), "containers": n}
        t.stop_sleepers(n)
    return out


def footprint(tools, counts, settle):
    """RSS of each supervisor with n sleepers, every tool given the same
    `settle` seconds of quiet after the starts (berth gives back the pages
    a burst left resident once idle ~2 s; the peers get the same chance)."""
    out = {}
    for t in tools:
        if not hasattr(t, "supervisor_rss"):
            continue
        rows = {}
        for n in counts:
            if n:
                t.start_sleepers(n)
            time.sleep(settle)
            # Memory first, while the supervisor is still quiet: counting
            # berth's processes asks its daemon (`berth ps`), which runs
            # code the peers' counts (their shims, by name) never make
            # their daemons run. smaps_rollup's Rss is the same figure as
            # VmRSS, so only PSS and anonymous are taken from it.
            row = {"rss_kib": t.supervisor_rss()}
            if hasattr(t, "supervisor_memory"):
                mem = t.supervisor_memory()
                row.update({k: v for k, v in mem.items() if k != "rss_kib"})
            row["extra_processes_per_container"] = t.extra_processes(n) if n else 0
            rows[str(n)] = row
            if n:
                t.stop_sleepers(n)
        out[t.name] = rows
    return out


def binary_sizes(tools):
    out = {}
    for t in tools:
        if hasattr(t, "binary_bytes"):
            parts = t.binary_bytes()
            out[t.name] = {"bytes": sum(parts.values()), "parts": parts}
    return out


def cpu_overhead(tools, work, iterations, runs, start):
    """The same single-process CPU-bound job (a busybox awk loop) natively
    (chroot into the same rootfs) and inside each tool's container,
    interleaved; each tool's own /bin/true start time is subtracted."""
    script = f"awk 'BEGIN {{ s = 0; for (i = 0; i < {iterations}; i++) s += i % 7; print s }}' >/tmp/sum"
    native_cmd = ["chroot", str(work / "rootfs"), "/bin/sh", "-c", script]
    times = {"native": [], **{t.name: [] for t in tools if hasattr(t, "cpu_cmd")}}
    for _ in range(runs):
        times["native"].append(timed(native_cmd, None))
        for t in tools:
            if hasattr(t, "cpu_cmd"):
                times[t.name].append(timed(t.cpu_cmd(script), t.env) - start[t.name]["median_ms"] / 1000)
    native = statistics.median(times["native"])
    return {n: {"median_s": statistics.median(v), "overhead_pct": (statistics.median(v) / native - 1) * 100} for n, v in times.items()}


def ratio_row(values, lower_is_better=True):
    peers = {k: v for k, v in values.items() if k in PEERS and v is not None}
    if "berth" not in values or not peers:
        return "", ""
    best = min(peers, key=peers.get) if lower_is_better else max(peers, key=peers.get)
    if not peers[best]:
        return best, ""
    return best, f"{values['berth'] / peers[best]:.2f}× {best}"


def fmt(v, unit):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f} {unit}".strip() if abs(v) < 10 else f"{v:.1f} {unit}".strip()
    return f"{v} {unit}".strip()


def environment(berth):
    """What the numbers were measured on: results mean little without it."""
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem = Path("/proc/meminfo").read_text().split()[1]
    cgroup = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1 (hybrid)"
    versions = {name: first_line(cmd) for name, cmd in {
        "berth": ["git", "-C", str(Path(__file__).resolve().parent.parent), "log", "-1", "--format=berth at commit %h (%cs)"], "crun": ["crun", "--version"], "runc": ["runc", "--version"],
        "podman": ["podman", "--version"], "docker": ["dockerd", "--version"], "tar": ["tar", "--version"],
        "umoci": ["umoci", "--version"], "skopeo": ["skopeo", "--version"]}.items()}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": os.uname().release, "cpu": cpu, "nproc": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1), "cgroup": cgroup,
        "versions": {k: v for k, v in versions.items() if v},
    }


def header(results):
    env = results["environment"]
    lines = [f"Measured {env['date']} ({results['mode']} mode) on {env['cpu']}, {env['nproc']} CPUs, "
             f"{env['memory_gib']} GiB, Linux {env['kernel']}, cgroup {env['cgroup']}.", ""]
    lines += [f"- {k}: {v}" for k, v in env["versions"].items()]
    return "\n".join(lines) + "\n\n"


def report(results, tools_present):
    cols = ["berth"] + [p for p in PEERS if p in tools_present]
    lines = [f"| metric | {' | '.join(cols)} | berth ÷ best peer |", "|---" * (len(cols) + 2) + "|"]

    def row(label, values, unit, lower=True):
        _, ratio = ratio_row(values, lower)
        lines.append(f"| {label} | " + " | ".join(fmt(values.get(c), unit) for c in cols) + f" | {ratio} |")

    sl = results["start_latency"]
    row("start latency, median", {k: v["median_ms"] for k, v in sl.items()}, "ms")
    row("start latency, p95", {k: v["p95_ms"] for k, v in sl.items()}, "ms")
    for peer, pr in results.get("start_pairs", {}).items():
        lo, hi = pr["ratio_ci95"]
        verdict = "≤ 1.0: met" if pr["met"] else "above 1.0"
        lines.append(f"| start latency, {pr['pairs']} interleaved pairs with {peer}: berth {pr['berth_median_ms']:.1f} ms, "
                     f"{peer} {pr['peer_median_ms']:.1f} ms | | median of ratios {pr['ratio_median']:.2f}×, "
                     f"95 % CI {lo:.2f}–{hi:.2f} ({verdict}) |")
    stages = results.get("start_stages_us")
    if stages:
        parts = ", ".join(f"{k} {v['median_us'] / 1000:.2f}" for k, v in stages.items())
        lines.append(f"| berth's start by stage (median ms over {max(v['starts'] for v in stages.values())} starts): {parts} | | |")
    b = results["burst"]
    n = next(iter(b.values()))["containers"] if b else 0
    row(f"burst: {n} containers running", {k: v["seconds"] for k, v in b.items()}, "s")
    row(f"burst: supervisor RSS after {n}", {k: v["supervisor_rss_kib"] / 1024 for k, v in b.items()}, "MiB")
    for count in results["footprint_counts"]:
        fp = {k: v[str(count)]["rss_kib"] / 1024 for k, v in results["footprint"].items()}
        row(f"supervisor RSS, {count} containers", fp, "MiB")
        mem = results["footprint"].get("berth", {}).get(str(count), {})
        if "pss_kib" in mem:
            lines.append(f"| berth, {count} containers: PSS {mem['pss_kib'] / 1024:.2f} MiB, anonymous {mem['anonymous_kib'] / 1024:.2f} MiB | | |")
    top = str(results["footprint_counts"][-1])
    row(f"host processes per container ({top})", {k: float(v[top]["extra_processes_per_container"]) for k, v in results["footprint"].items()}, "")
    row("binary size", {k: v["bytes"] / 1e6 for k, v in results["binary"].items()}, "MB")
    cpu = results["cpu"]
    # Times, not overhead percentages: a ratio of two small percentages
    # says nothing (and flips sign around zero).
    native = cpu["native"]["median_s"] if "native" in cpu else None
    label = f"CPU job time (native {native:.2f} s)" if native else "CPU job time"
    row(label, {k: v["median_s"] for k, v in cpu.items() if k != "native"}, "s")
    def timing_row(label, res, keys):
        """One row of seconds (keys present in res), with berth's ratio to
        the best peer and to the physical limit when it was measured."""
        vals = {k: res[k]["median_s"] for k in keys if "median_s" in res.get(k, {})}
        _, ratio = ratio_row(vals)
        if "limit" in res:
            ratio += f"; {res['berth']['median_s'] / res['limit']['median_s']:.2f}× limit"
        cells = " | ".join([f"{v:.2f} s" for v in vals.values()] + [""] * (len(cols) - len(vals)))
        lines.append(f"| {label} ({' / '.join(vals)}) | {cells} | {ratio} |")

    up = results.get("unpack")
    if up:
        mb = up["uncompressed_bytes"] / 1e6
        timing_row(f"unpack {up['layers']} gzip layers, {mb:.0f} MB", up, ["berth", "tar", "tar_parallel", "umoci", "limit"])
        if "large" in up:
            big = up["large"]
            timing_row(f"unpack one {big['gzip_bytes'] / 1e6:.0f} MB gzip layer", big, ["berth", "tar", "limit"])
    pl = results.get("pull")
    if pl:
        timing_row("pull + unpack, local registry", pl, list(pl))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--short", action="store_true", help="a handful of runs, so the code cannot rot (CI)")
    a = ap.parse_args()
    work = a.work.resolve()
    out = (a.out or work).resolve()
    out.mkdir(parents=True, exist_ok=True)
    short = a.short
    candidates = [Berth(a.berth, work), OciRuntime("crun", work), CrunEqualWork(work), OciRuntime("runc", work), Podman(work), Docker(work)]
    tools = []
    for t in candidates:
        if t.available():
            tools.append(t)
        else:
            print(f"bench: {t.name} skipped: not installed or not prepared by peers/setup.sh", file=sys.stderr)
    try:
        for t in tools:
            t.start()
        results = {"mode": "short" if short else "full", "environment": environment(a.berth)}
        print("bench: start latency", file=sys.stderr)
        results["start_latency"] = start_latency(tools, 5 if short else 50)
        results["start_pairs"] = start_pairs(tools, 5 if short else 200)
        berth = next((t for t in tools if t.name == "berth"), None)
        results["start_stages_us"] = berth.start_stages() if berth else {}
        print("bench: burst", file=sys.stderr)
        results["burst"] = burst(tools, 5 if short else 50)
        counts = [0, 3] if short else [0, 10, 100]
        print("bench: footprint", file=sys.stderr)
        results["footprint_counts"] = counts
        results["footprint"] = footprint(tools, counts, 0.5 if short else 10)
        results["binary"] = binary_sizes(tools)
        print("bench: scale", file=sys.stderr)
        results["scale"] = scale.measure(tools, 10 if short else 200)
        print("bench: CPU overhead", file=sys.stderr)
        results["cpu"] = cpu_overhead(tools, work, 200_000 if short else 5_000_000, 1 if short else 7, results["start_latency"])
        print("bench: unpack", file=sys.stderr)
        results["unpack"] = unpack.measure(work, a.berth, short)
        print("bench: pull", file=sys.stderr)
        docker = next((t for t in tools if t.name == "docker"), None)
        podman = next((t for t in tools if t.name == "podman"), None)
        results["pull"] = pull.measure(work, a.berth, short, docker.env if docker else None, (podman.base, podman.env) if podman else None)
    finally:
        for t in tools:
            try:
                t.stop()
            except Exception as e:  # keep stopping the others
                print(f"bench: stopping {t.name}: {e}", file=sys.stderr)
    table = header(results) + report(results, [t.name for t in tools])
    table += scale.report(results["scale"], 10 if short else 200)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
