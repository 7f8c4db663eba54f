#!/usr/bin/env python3
"""Pull + unpack throughput from a local registry (127.0.0.1): the same
multi-layer gzip image (unpack.py's, about 100 MB uncompressed) pulled by
`berth pull`, by `skopeo copy` + `umoci unpack`, by `podman pull` and by
`docker pull`, interleaved, medians; beside them the physical limit on
this machine (every layer's bytes through sha256, gunzip and sha256
again, layers at once, nothing written: unpack.limit_cmd). Part of
benches/run.sh; also runs alone (peers used when installed):

    pull.py --work WORK --berth BIN [--short]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import unpack  # noqa: E402

HERE = Path(__file__).resolve().parent


def sh(cmd, env=None):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def measure(work, berth, short, docker_env=None, podman=None):
    """docker_env: environment for a running private dockerd (or None);
    podman: (base argv, env) for isolated podman storage (or None)."""
    unpack.ensure_layout(work, short)
    layout = work / "big-oci"
    sh(["bash", str(HERE / "peers" / "registry.sh"), "start", str(work)])
    try:
        port = (work / "registry" / "port").read_text().strip()
        ref = f"127.0.0.1:{port}/bench/big:latest"
        sh(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{ref}"])

        def berth_pull():
            sh([berth, "pull", ref, "--root", str(work / "pull-berth")])

        def skopeo_umoci():
            oci, bundle = work / "pull-skopeo", work / "pull-umoci"
            sh(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{oci}:latest"])
            sh(["umoci", "unpack", "--image", f"{oci}:latest", str(bundle)])

        digests = unpack.ensure_layout(work, short)

        def limit():
            unpack.run_all([unpack.limit_cmd(layout / "blobs/sha256" / d) for d in digests])

        tools = {"berth": berth_pull, "limit": limit}
        if shutil.which("umoci"):
            tools["skopeo+umoci"] = skopeo_umoci
        if podman:
            base, penv = podman

            def podman_pull():
                sh(base + ["pull", "--quiet", "--tls-verify=false", ref], env=penv)

            tools["podman"] = podman_pull
        if docker_env:

            def docker_pull():
                sh(["docker", "pull", "--quiet", ref], env=docker_env)

            tools["docker"] = docker_pull
        def reset():
            """Every tool's previous pull removed before the next is timed
            (then unpack.settle's sync and wait)."""
            for d in ["pull-berth", "pull-skopeo", "pull-umoci"]:
                shutil.rmtree(work / d, ignore_errors=True)
            if podman:
                subprocess.run(podman[0] + ["rmi", "-f", ref], env=podman[1], capture_output=True)
            if docker_env:
                subprocess.run(["docker", "rmi", "-f", ref], env=docker_env, capture_output=True)
            unpack.settle(work)

        times = {k: [] for k in tools}
        for i in range(1 if short else 3):
            order = list(tools)
            for name in order[i % len(order):] + order[: i % len(order)]:
                reset()
                t0 = time.perf_counter()
                tools[name]()
                times[name].append(time.perf_counter() - t0)
        reset()
        res = {k: {"median_s": statistics.median(v)} for k, v in times.items()}
        b = res["berth"]["median_s"]
        res["berth_over"] = {k: b / v["median_s"] for k, v in res.items() if k != "berth"}
        return res
    finally:
        subprocess.run(["bash", str(HERE / "peers" / "registry.sh"), "stop", str(work)])


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--short", action="store_true")
    a = ap.parse_args()
    work = a.work.resolve()
    podman = None
    if shutil.which("podman"):
        conf = work / "podman" / "containers.conf"
        penv = dict(os.environ, CONTAINERS_CONF=str(conf)) if conf.exists() else dict(os.environ)
        podman = (["podman", "--root", str(work / "podman" / "root"), "--runroot", str(work / "podman" / "run")], penv)
    print(json.dumps(measure(work, a.berth, a.short, None, podman), indent=2))


if __name__ == "__main__":
    main()
