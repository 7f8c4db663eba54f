#!/usr/bin/env python3
"""Unpack throughput: a multi-layer gzip image of about 100 MB (uncompressed)
imported by berth vs `tar -xzf` of the same layers vs `umoci unpack`, in
the same run, interleaved, medians. Part of benches/run.sh; also runs alone:

    unpack.py --work WORK --berth BIN [--short] [--out DIR]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path


def make_layer(seed, files, size):
    """A layer of `files` files of `size` bytes: half random, half text, so
    it compresses about as well as real binaries and configs do."""
    rng = random.Random(seed)
    text = (b"the quick brown fox jumps over the lazy dog %d\n" % seed) * (size // 90 + 1)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo(f"layer{seed}")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        t.addfile(d)
        for i in range(files):
            data = rng.randbytes(size // 2) + text[: size - size // 2]
            ti = tarfile.TarInfo(f"layer{seed}/file{i}")
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def write_layout(out, layers):
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(b):
        h = hashlib.sha256(b).hexdigest()
        (blobs / h).write_bytes(b)
        return h

    descs, diff_ids = [], []
    for raw in layers:
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + put(gz), "size": len(gz)})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + put(config), "size": len(config)},
                           "layers": descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + put(manifest),
                                                "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "latest",
                                                                                      "io.containerd.image.name": "localhost/bench/big:latest"}}]}
    (out / "index.json").write_text(json.dumps(index))
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return [d["digest"][7:] for d in descs]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def shape(short):
    """(layers, files per layer, bytes per file)"""
    return (2, 4, 1 << 20) if short else (4, 25, 1 << 20)


def ensure_layout(work, short):
    """Builds WORK/big-oci once; returns the layer blob digests."""
    layout = work / "big-oci"
    n_layers, files, size = shape(short)
    if not layout.exists():
        return write_layout(layout, [make_layer(i, files, size) for i in range(n_layers)])
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    return [d["digest"][7:] for d in manifest["layers"]]


def measure(work, berth, short):
    layout = work / "big-oci"
    digests = ensure_layout(work, short)
    n_layers, files, size = shape(short)
    total = n_layers * files * size

    def berth_import():
        root = work / "unpack-berth"
        shutil.rmtree(root, ignore_errors=True)
        run([berth, "import", str(layout), "--root", str(root)])

    def tar_xzf():
        dest = work / "unpack-tar"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        for d in digests:
            run(["tar", "-xzf", str(layout / "blobs/sha256" / d), "-C", str(dest)])

    def umoci_unpack():
        dest = work / "unpack-umoci"
        shutil.rmtree(dest, ignore_errors=True)
        run(["umoci", "unpack", "--image", f"{layout}:latest", str(dest)])

    tools = {"berth": berth_import, "tar": tar_xzf}
    if shutil.which("umoci"):
        tools["umoci"] = umoci_unpack
    else:
        print("unpack: umoci skipped: not installed", file=sys.stderr)
    times = {k: [] for k in tools}
    for i in range(1 if short else 5):
        for name in list(tools)[i % len(tools):] + list(tools)[: i % len(tools)]:
            subprocess.run(["sync"])
            times[name].append(timed(tools[name]))
    for d in ["unpack-berth", "unpack-tar", "unpack-umoci"]:
        shutil.rmtree(work / d, ignore_errors=True)
    return {"uncompressed_bytes": total, "layers": n_layers,
            **{k: {"median_s": statistics.median(v), "mb_per_s": total / 1e6 / statistics.median(v)} for k, v in times.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    res = measure(a.work.resolve(), a.berth, a.short)
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "unpack.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
