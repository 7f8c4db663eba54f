#!/usr/bin/env python3
"""Unpack throughput, in the same run, interleaved, medians:

- a multi-layer gzip image of about 100 MB (uncompressed) imported by
  berth vs `tar -xzf` of the same layers one after another, vs `tar -xzf`
  of every layer at once (one process each), vs `umoci unpack`;
- one large layer (>= 150 MB gzip: the host's /usr files in name order,
  see large_layer()) imported by berth vs `tar -xzf`;
- for both, the physical limit on this machine: every compressed byte
  through sha256 and gunzip, every uncompressed byte through sha256
  (`cat blob | tee >(sha256sum) | gzip -dc | sha256sum`, layers at once),
  writing nothing. berth does that, plus writing and syncing every file.

Part of benches/run.sh; also runs alone:

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


LARGE_MIN_GZIP_BYTES = 160 << 20
LARGE_MAX_RAW_BYTES = 640 << 20


def large_layer(path):
    """Writes one gzip layer of at least LARGE_MIN_GZIP_BYTES: regular
    files, directories and symlinks of the host's /usr, in name order
    (real binaries, libraries and text compress like a distribution's
    rootfs: about 2.5:1), owners and times normalised. Returns its diff_id.
    Not byte-identical across machines (it is this host's /usr)."""
    raw_hash = hashlib.sha256()

    class Hashing(io.RawIOBase):
        def __init__(self, inner):
            self.inner = inner

        def writable(self):
            return True

        def write(self, b):
            raw_hash.update(b)
            return self.inner.write(b)

    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
        sink = Hashing(gz)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as t:
            raw = 0
            for root, dirs, files in os.walk("/usr"):
                dirs.sort()
                for name in sorted(dirs) + sorted(files):
                    p = os.path.join(root, name)
                    try:
                        ti = t.gettarinfo(p, arcname=p.lstrip("/"))
                    except OSError:
                        continue
                    if not (ti.isreg() or ti.isdir() or ti.issym()):
                        continue
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    ti.mtime = 0
                    if ti.isreg():
                        try:
                            with open(p, "rb") as data:
                                t.addfile(ti, data)
                        except OSError:
                            continue
                        raw += ti.size
                    else:
                        t.addfile(ti)
                if f.tell() >= LARGE_MIN_GZIP_BYTES or raw >= LARGE_MAX_RAW_BYTES:
                    break
    return "sha256:" + raw_hash.hexdigest()


def ensure_large_layout(work):
    """WORK/large-oci: an image of the one large layer, built once."""
    layout = work / "large-oci"
    if (layout / "index.json").exists():
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
        return [d["digest"][7:] for d in manifest["layers"]]
    tmp = work / "large-layer.tar.gz"
    diff_id = large_layer(tmp)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    size = tmp.stat().st_size
    tmp.rename(blobs / h.hexdigest())

    def put(b):
        d = hashlib.sha256(b).hexdigest()
        (blobs / d).write_bytes(b)
        return d

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + put(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + h.hexdigest(), "size": size}]}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + put(manifest),
                                                "size": len(manifest), "annotations": {"io.containerd.image.name": "localhost/bench/large:latest"}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return [h.hexdigest()]


def limit_cmd(blob):
    """The physical limit for one layer: hash and inflate, write nothing."""
    return ["bash", "-c", 'cat "$1" | tee >(sha256sum >/dev/null) | gzip -dc | sha256sum >/dev/null', "limit", str(blob)]


def run_all(cmds):
    """Runs the commands at once; fails if any fails."""
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{p.args[0]} failed: {err.decode(errors='replace')[-300:]}")


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


def tools_for(work, berth, layout, digests, name):
    """berth import, tar one layer after another, tar all layers at once,
    and the physical limit, for the image at `layout`."""
    blobs = [layout / "blobs/sha256" / d for d in digests]

    def berth_import():
        run([berth, "import", str(layout), "--root", str(work / f"unpack-berth-{name}")])

    def tar_dest():
        dest = work / f"unpack-tar-{name}"
        dest.mkdir()
        return dest

    def tar_xzf():
        dest = tar_dest()
        for b in blobs:
            run(["tar", "-xzf", str(b), "-C", str(dest)])

    def tar_parallel():
        dest = tar_dest()
        run_all([["tar", "-xzf", str(b), "-C", str(dest)] for b in blobs])

    def limit():
        run_all([limit_cmd(b) for b in blobs])

    tools = {"berth": berth_import, "tar": tar_xzf}
    if len(blobs) > 1:
        tools["tar_parallel"] = tar_parallel
    tools["limit"] = limit
    return tools


def settle(work):
    """Removes every output, syncs, and waits out ext4's window in which
    freed inodes are not reused (5 s once the inode table is clean: a file
    system without a journal scans past them on every create, which would
    charge one tool for the previous one's deletions)."""
    for d in work.glob("unpack-*"):
        shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["sync"])
    time.sleep(6)


def interleaved(work, tools, rounds):
    times = {k: [] for k in tools}
    for i in range(rounds):
        for name in list(tools)[i % len(tools):] + list(tools)[: i % len(tools)]:
            settle(work)
            times[name].append(timed(tools[name]))
    settle(work)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(work, berth, short):
    layout = work / "big-oci"
    digests = ensure_layout(work, short)
    n_layers, files, size = shape(short)
    total = n_layers * files * size
    tools = tools_for(work, berth, layout, digests, "big")

    def umoci_unpack():
        dest = work / "unpack-umoci"
        run(["umoci", "unpack", "--image", f"{layout}:latest", str(dest)])

    if shutil.which("umoci"):
        tools["umoci"] = umoci_unpack
    else:
        print("unpack: umoci skipped: not installed", file=sys.stderr)
    medians = interleaved(work, tools, 1 if short else 5)
    result = {"uncompressed_bytes": total, "layers": n_layers,
              **{k: {"median_s": v, "mb_per_s": total / 1e6 / v} for k, v in medians.items()}}
    if not short:
        large_digests = ensure_large_layout(work)
        large = work / "large-oci"
        blob = large / "blobs/sha256" / large_digests[0]
        medians = interleaved(work, tools_for(work, berth, large, large_digests, "large"), 5)
        result["large"] = {"gzip_bytes": blob.stat().st_size, **{k: {"median_s": v} for k, v in medians.items()}}
    return result


def ratios(result):
    """berth's time over each other column's."""
    b = result["berth"]["median_s"]
    return {k: b / v["median_s"] for k, v in result.items() if isinstance(v, dict) and "median_s" in v and k != "berth"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    res = measure(a.work.resolve(), a.berth, a.short)
    res["berth_over"] = ratios(res)
    if "large" in res:
        res["large"]["berth_over"] = ratios(res["large"])
    print(json.dumps(res, indent=2))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "unpack.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
