#!/usr/bin/env python3
"""Pull + unpack throughput from a local registry (127.0.0.1): the same
multi-layer gzip image (unpack.py's, about 100 MB uncompressed) pulled by
`berth pull`, by `skopeo copy` + `umoci unpack`, by `podman pull` and by
`docker pull`, interleaved, medians. Part of benches/run.sh.
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
            root = work / "pull-berth"
            shutil.rmtree(root, ignore_errors=True)
            sh([berth, "pull", ref, "--root", str(root)])

        def skopeo_umoci():
            oci, bundle = work / "pull-skopeo", work / "pull-umoci"
            shutil.rmtree(oci, ignore_errors=True)
            shutil.rmtree(bundle, ignore_errors=True)
            sh(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{oci}:latest"])
            sh(["umoci", "unpack", "--image", f"{oci}:latest", str(bundle)])

        tools = {"berth": berth_pull}
        if shutil.which("umoci"):
            tools["skopeo+umoci"] = skopeo_umoci
        if podman:
            base, penv = podman

            def podman_pull():
                subprocess.run(base + ["rmi", "-f", ref], env=penv, capture_output=True)
                sh(base + ["pull", "--quiet", "--tls-verify=false", ref], env=penv)

            tools["podman"] = podman_pull
        if docker_env:

            def docker_pull():
                subprocess.run(["docker", "rmi", "-f", ref], env=docker_env, capture_output=True)
                sh(["docker", "pull", "--quiet", ref], env=docker_env)

            tools["docker"] = docker_pull
        times = {k: [] for k in tools}
        for i in range(1 if short else 3):
            order = list(tools)
            for name in order[i % len(order):] + order[: i % len(order)]:
                subprocess.run(["sync"])
                t0 = time.perf_counter()
                tools[name]()
                times[name].append(time.perf_counter() - t0)
        for d in ["pull-berth", "pull-skopeo", "pull-umoci"]:
            shutil.rmtree(work / d, ignore_errors=True)
        return {k: {"median_s": statistics.median(v)} for k, v in times.items()}
    finally:
        subprocess.run(["bash", str(HERE / "peers" / "registry.sh"), "stop", str(work)])
