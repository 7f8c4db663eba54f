#!/usr/bin/env python3
"""Boot to the first container, under qemu (TCG) with Debian's cloud
kernel: berth's own initramfs (`berth mkimage`) beside two images built
from the same kernel and the same busybox, interleaved per round, medians
of N rounds.

    boot.py --berth STATIC_BERTH [--rounds N] [--work DIR] [--append-to DIR]

Images (each prints `BOOTMARK <seconds since the kernel started>` from
/proc/uptime where its "container" runs, then powers the machine off):

  kernel only        busybox as /init prints the mark at once: the
                     kernel's own boot to userspace, the floor
  busybox + crun     LinuxKit's shape without containerd: busybox as
                     /init mounts /proc, /sys, cgroup2 and /dev, then
                     `crun run --no-pivot` runs the mark from an OCI
                     bundle (busybox root, crun's default spec)
  berth mkimage      berth as /init: loads overlay.ko, imports the busybox
                     image into its store, starts the container hardened
                     (namespaces, seccomp, Landlock, cgroup, overlayfs)

LinuxKit itself is not built: its CLI and its init, runc and containerd
images come from Docker Hub, and these machines build offline. Columns:
the compressed initramfs (zstd -19 for all three), the median time from
qemu's start to the mark (firmware, kernel decompression and all), and
from the kernel's start to the mark (/proc/uptime, what each image adds
to the kernel's own boot). The crun image is skipped, with the reason,
when crun is not installed.

--append-to DIR appends the table to DIR/results.md and adds the numbers
as "boot" to DIR/results.json (what benches/run.sh uses).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import append_results  # noqa: E402
REF = "bench.local/boot/busybox:1"
MARK = re.compile(r"BOOTMARK (\d+\.\d+)")
BOOT_LIMIT_S = 180


def newest_kernel():
    kernels = sorted(Path("/boot").glob("vmlinuz-*-cloud-amd64"), key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)])
    return kernels[-1] if kernels else None


def busybox_rootfs(dir_):
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(dir_)], check=True, stdout=subprocess.DEVNULL)


def pack(tree, out):
    """A newc cpio of `tree`, zstd -19: the kernel's own initramfs form."""
    files = subprocess.run("find . | LC_ALL=C sort", shell=True, cwd=tree, check=True, capture_output=True).stdout
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=tree, input=files, check=True,
                          capture_output=True).stdout
    out.write_bytes(subprocess.run(["zstd", "-q", "-19", "-c"], input=cpio, check=True, capture_output=True).stdout)
    return out


def init_script(tree, body):
    init = tree / "init"
    init.write_text("#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n" + body + "/bin/busybox poweroff -f\n")
    init.chmod(0o755)


def kernel_only(work):
    tree = work / "kernel-only"
    tree.mkdir()
    for d in ["bin", "proc"]:
        (tree / d).mkdir()
    shutil.copy("/bin/busybox", tree / "bin/busybox")
    init_script(tree, 'echo "BOOTMARK $(/bin/busybox cut -d" " -f1 /proc/uptime)"\n')
    return pack(tree, work / "kernel-only.img")


def copy_with_libs(binary, tree):
    """`binary` and the shared libraries ldd names, at their own paths."""
    paths = [Path(binary)]
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True).stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            paths.append(Path(m.group(1)))
    for p in paths:
        dest = tree / p.relative_to("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p.resolve(), dest)


def crun_image(work):
    crun = shutil.which("crun")
    if not crun:
        return None, "crun not installed"
    tree = work / "crun"
    tree.mkdir()
    for d in ["bin", "proc", "sys", "dev", "run", "tmp"]:
        (tree / d).mkdir()
    shutil.copy("/bin/busybox", tree / "bin/busybox")
    copy_with_libs(crun, tree)
    bundle = tree / "bundle"
    busybox_rootfs(bundle / "rootfs")
    subprocess.run([crun, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/sh", "-c", 'echo "BOOTMARK $(cut -d" " -f1 /proc/uptime)"']
    (bundle / "config.json").write_text(json.dumps(spec))
    init_script(tree, "\n".join([
        "/bin/busybox mount -t sysfs sysfs /sys",
        "/bin/busybox mount -t cgroup2 cgroup2 /sys/fs/cgroup",
        "/bin/busybox mount -t devtmpfs dev /dev",
        "/bin/busybox mount -t tmpfs tmpfs /run",
        f"{crun} --root /run/crun run --no-pivot -b /bundle mark < /dev/null > /dev/console 2>&1",
        "",
    ]))
    return pack(tree, work / "crun.img"), None


def berth_image(work, berth, kernel):
    rootfs, layout, config = work / "berth-rootfs", work / "berth-oci", work / "berth-config"
    busybox_rootfs(rootfs)
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF, str(layout), str(rootfs)],
                   check=True, stdout=subprocess.DEVNULL)
    (config / "containers").mkdir(parents=True)
    (config / "berth.json").write_text(json.dumps({
        "modules": ["/lib/modules/overlay.ko"],
        "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2},
    }))
    mark = 'echo "BOOTMARK $(cut -d" " -f1 /proc/uptime)" > /console; /berth shutdown'
    (config / "containers/mark.json").write_text(json.dumps({
        "image": REF, "command": ["sh", "-c", mark],
        "mounts": [
            {"type": "bind", "source": "/init", "target": "/berth", "read_only": True},
            {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
            {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]},
        ],
    }))
    out = work / "berth.img"
    subprocess.run([berth, "mkimage", "--config", str(config), "--kernel", str(kernel), "--berth", berth,
                    "--image", str(layout), "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def boot(kernel, initrd):
    """Seconds from qemu's start to the mark, and the mark (seconds since
    the kernel started)."""
    started = time.monotonic()
    qemu = subprocess.Popen(["bash", str(REPO / "scripts/vm/boot.sh"), str(initrd)], env={**os.environ, "KERNEL": str(kernel)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    seen, console = None, []
    try:
        for line in qemu.stdout:
            console.append(line)
            m = MARK.search(line)
            if m and seen is None:
                seen = (time.monotonic() - started, float(m.group(1)))
            if time.monotonic() - started > BOOT_LIMIT_S:
                break
    finally:
        qemu.kill()
        qemu.wait()
    if seen is None:
        raise RuntimeError(f"{initrd.name}: no BOOTMARK on the console:\n{''.join(console[-40:])}")
    return seen


def measure(kernel, images, rounds):
    times = {name: [] for name in images}
    for r in range(rounds):
        names = list(images)
        names = names[r % len(names):] + names[:r % len(names)]
        for name in names:
            times[name].append(boot(kernel, images[name]))
    return times


def summarize(images, times, skipped, kernel, rounds):
    res = {"kernel": kernel.name, "rounds": rounds, "skipped": skipped, "images": {}}
    for name, path in images.items():
        wall = statistics.median(t[0] for t in times[name])
        since_kernel = statistics.median(t[1] for t in times[name])
        res["images"][name] = {"initramfs_bytes": path.stat().st_size, "qemu_to_mark_s": round(wall, 3),
                               "kernel_to_mark_s": round(since_kernel, 3)}
    floor = res["images"]["kernel only"]
    for row in res["images"].values():
        row["added_to_kernel_boot_s"] = round(row["kernel_to_mark_s"] - floor["kernel_to_mark_s"], 3)
    return res


def report(res):
    lines = ["| image | initramfs (zstd) | qemu start → mark | kernel start → mark | added to the kernel's own boot |",
             "|---|---|---|---|---|"]
    for name, row in res["images"].items():
        lines.append(f"| {name} | {row['initramfs_bytes'] / 1e6:.2f} MB | {row['qemu_to_mark_s']:.2f} s | "
                     f"{row['kernel_to_mark_s']:.2f} s | {row['added_to_kernel_boot_s']:+.2f} s |")
    notes = [f"Kernel {res['kernel']}, qemu TCG, 1 vCPU, 512 MiB; medians of {res['rounds']} interleaved rounds."]
    notes += [f"{name} skipped: {why}" for name, why in res["skipped"].items()]
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", required=True, help="a static berth (scripts/build-release.sh)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one, removed afterwards)")
    ap.add_argument("--append-to", type=Path, metavar="DIR", help="append to DIR/results.md and DIR/results.json")
    a = ap.parse_args()
    kernel = newest_kernel()
    missing = [t for t in ["qemu-system-x86_64", "cpio", "zstd"] if not shutil.which(t)]
    if kernel is None or missing:
        md = f"Skipped: {'no /boot/vmlinuz-*-cloud-amd64' if kernel is None else 'missing ' + ', '.join(missing)}.\n"
        print(md)
        if a.append_to:
            append_results(a.append_to.resolve(), "boot", "Boot to the first container (boot.py)", {"skipped": md.strip()}, md)
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="berth-boot."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        images, skipped = {"kernel only": kernel_only(work)}, {}
        crun, why = crun_image(work)
        if crun:
            images["busybox + crun"] = crun
        else:
            skipped["busybox + crun"] = why
        images["berth mkimage"] = berth_image(work, a.berth, kernel)
        res = summarize(images, measure(kernel, images, a.rounds), skipped, kernel, a.rounds)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    md = report(res)
    print(md)
    if a.append_to:
        append_results(a.append_to.resolve(), "boot", "Boot to the first container (boot.py)", res, md)


if __name__ == "__main__":
    main()
