#!/usr/bin/env python3
"""The tools under test and how to drive each: berth, crun, runc, podman,
docker. Every tool answers the same questions (how to run /bin/true, start
N sleepers, what its supervision costs), so bench.py can treat them alike.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REF = "localhost/bench/busybox:latest"


def append_results(out, key, title, res, md):
    """Adds `res` as `key` to OUT/results.json and `md` under `title` to
    OUT/results.md: how the benches after bench.py join its results."""
    out.mkdir(parents=True, exist_ok=True)
    jpath = out / "results.json"
    try:
        data = json.loads(jpath.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = res
    jpath.write_text(json.dumps(data, indent=2))
    mpath = out / "results.md"
    prev = mpath.read_text() if mpath.exists() else ""
    mpath.write_text(prev + ("\n" if prev else "") + f"## {title}\n\n" + md)


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_kib(pid):
    """Rss, Pss and Anonymous (KiB) from /proc/PID/smaps_rollup."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Anonymous"):
                out[key.lower() + "_kib"] = int(rest.split()[0])
    except OSError:
        pass
    return out


def pids_named(comm, marker=None):
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != comm:
                continue
            if marker and marker not in (d / "cmdline").read_bytes().decode(errors="replace"):
                continue
            out.append(int(d.name))
        except OSError:
            continue
    return out


def children_of(ppid):
    """Pids whose parent is `ppid` (from /proc/PID/stat's fourth field)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: fields follow the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
            out.append(int(d.name))
    return out


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, **kw)


def wait_until(cond, limit=120.0, step=0.05):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    raise RuntimeError("timed out waiting for a condition")


class Tool:
    """One runtime under test. Subclasses say how to start a throwaway
    /bin/true, start N sleepers, and what their supervisor costs."""
    name = "?"
    env = None

    def available(self):
        return True

    def start(self):
        pass

    def stop(self):
        pass

    def true_cmd(self, i):
        raise NotImplementedError

    def run_true(self, i):
        """Seconds from asking for a /bin/true container until it has run
        and been cleaned up."""
        t0 = time.perf_counter()
        r = subprocess.run(self.true_cmd(i), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
        return dt

    def version(self):
        return ""


class Berth(Tool):
    name = "berth"

    def __init__(self, binary, work):
        self.bin, self.work = binary, work
        self.sock = str(work / "berth.sock")
        self.env = dict(os.environ, BERTH_SOCKET=self.sock)
        self.proc = None
        self.round = 0
        self.sleepers = []

    def start(self):
        cfg = self.work / "berth-config"
        (cfg / "containers").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.bin, "daemon", "--config", str(cfg), "--root", str(self.work / "berth-root"),
             "--socket", self.sock, "--cgroup-parent", f"berth-bench-{os.getpid()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: Path(self.sock).exists(), 10)

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def true_cmd(self, i):
        return [self.bin, "run", "--rm", REF, "/bin/true"]

    def start_sleepers(self, n):
        # Removed when they exit, so stopping them is the cleanup the
        # peers do too (no daemon restart between rounds).
        for i in range(n):
            run(self.sleeper_cmd(i), env=self.env)
        wait_until(lambda: self.running() >= n)

    def sleeper_cmd(self, i):
        if i == 0:
            self.round += 1
            self.sleepers = []
        name = f"s{self.round}-{i}"
        self.sleepers.append(name)
        return [self.bin, "run", "-d", "--rm", "--name", name, REF, "sleep", "3600"]

    def running(self):
        out = subprocess.run([self.bin, "ps", "--json"], env=self.env, capture_output=True, check=True).stdout
        return sum(1 for c in json.loads(out) if c["state"] == "running")

    def stop_sleepers(self, n):
        for name in self.sleepers:
            run([self.bin, "kill", name], env=self.env)
        wait_until(lambda: self.running() == 0)
        self.sleepers = []

    def supervisor_rss(self):
        return rss_kib(self.proc.pid)

    def start_stages(self):
        """Median µs of each start stage over every start so far, from the
        `start_us` the daemon puts in each container.started event."""
        out = subprocess.run([self.bin, "events", "--json", "--since", "0", "--kind", "container.started"],
                             env=self.env, capture_output=True, check=True, text=True).stdout
        per = {}
        for line in out.splitlines():
            for stage, us in json.loads(line).get("data", {}).get("start_us", {}).items():
                per.setdefault(stage, []).append(us)
        return {k: {"median_us": statistics.median(v), "starts": len(v)} for k, v in per.items()}

    def supervisor_memory(self):
        return memory_kib(self.proc.pid)

    def extra_processes(self, n):
        """The daemon's children that are not containers' first processes
        (helpers, a notifier), counted as the peers' shims are."""
        out = subprocess.run([self.bin, "ps", "--json"], env=self.env, capture_output=True, check=True).stdout
        firsts = {c.get("pid") for c in json.loads(out)}
        return len([p for p in children_of(self.proc.pid) if p not in firsts]) / max(n, 1)

    def binary_bytes(self):
        return {"berth": os.path.getsize(self.bin)}

    def cpu_cmd(self, script):
        return [self.bin, "run", "--rm", REF, "sh", "-c", script]


class OciRuntime(Tool):
    """crun or runc on the prepared bundle: the runtime alone, no daemon."""

    def __init__(self, name, work):
        self.name, self.work = name, work

    def available(self):
        return shutil.which(self.name) is not None and (self.work / "bundle").is_dir()

    def bundle(self, args, i):
        tpl = json.loads((self.work / "bundle" / "config.template.json").read_text())
        tpl["process"]["args"] = args
        tpl["process"]["terminal"] = False
        tpl["root"] = {"path": str(self.work / "bundle" / "rootfs"), "readonly": False}
        b = self.work / f"bundle-{self.name}-{i}"
        b.mkdir(exist_ok=True)
        (b / "config.json").write_text(json.dumps(tpl))
        return b

    def true_cmd(self, i):
        b = self.bundle(["/bin/true"], "true")
        return [self.name, "run", "--bundle", str(b), f"bench-{self.name}-{os.getpid()}-{i}"]

    def cpu_cmd(self, script):
        b = self.bundle(["sh", "-c", script], "cpu")
        return [self.name, "run", "--bundle", str(b), f"bench-{self.name}-cpu-{os.getpid()}-{time.monotonic_ns()}"]

    def binary_bytes(self):
        return {self.name: os.path.getsize(shutil.which(self.name))}


class Podman(Tool):
    name = "podman"

    def __init__(self, work):
        self.work = work
        p = work / "podman"
        self.base = ["podman", "--root", str(p / "root"), "--runroot", str(p / "run")]
        # Without CAP_SYS_RESOURCE, podman's default rlimits fail to apply
        # here (MACHINE.md); pin them low enough for the runtime to set.
        self.run_args = self.base + ["run", "--ulimit", "nproc=4096:4096", "--ulimit", "nofile=1024:1024", "--network", "none"]
        self.env = dict(os.environ, CONTAINERS_CONF=str(p / "containers.conf"))

    def available(self):
        return shutil.which("podman") is not None and (self.work / "podman" / "root").is_dir()

    def true_cmd(self, i):
        return self.run_args + ["--rm", REF, "/bin/true"]

    def cpu_cmd(self, script):
        return self.run_args + ["--rm", REF, "sh", "-c", script]

    def start_sleepers(self, n):
        for i in range(n):
            run(self.sleeper_cmd(i), env=self.env)

    def sleeper_cmd(self, i):
        return self.run_args + ["-d", REF, "sleep", "3600"]

    def running(self):
        out = subprocess.run(self.base + ["ps", "-q"], env=self.env, capture_output=True, text=True, check=True)
        return len(out.stdout.split())

    def stop_sleepers(self, n):
        try:
            subprocess.run(self.base + ["rm", "-f", "-t", "0", "--all"], env=self.env, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            print("bench: podman rm timed out", file=sys.stderr)

    def supervisor_rss(self):
        return sum(rss_kib(p) for p in pids_named("conmon", str(self.work)))

    def extra_processes(self, n):
        return len(pids_named("conmon", str(self.work))) / max(n, 1)

    def binary_bytes(self):
        names = ["podman", "conmon", "crun"]
        return {n: os.path.getsize(shutil.which(n)) for n in names if shutil.which(n)}


class Docker(Tool):
    name = "docker"

    def __init__(self, work):
        self.work = work
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{work}/docker/docker.sock")

    def available(self):
        return shutil.which("dockerd") is not None and (self.work / "docker" / "data").is_dir()

    def start(self):
        run(["bash", str(HERE / "peers" / "dockerd.sh"), "start", str(self.work)])

    def stop(self):
        run(["bash", str(HERE / "peers" / "dockerd.sh"), "stop", str(self.work)])

    def true_cmd(self, i):
        return ["docker", "run", "--rm", "--network", "none", REF, "/bin/true"]

    def cpu_cmd(self, script):
        return ["docker", "run", "--rm", "--network", "none", REF, "sh", "-c", script]

    def start_sleepers(self, n):
        for i in range(n):
            run(self.sleeper_cmd(i), env=self.env)

    def sleeper_cmd(self, i):
        return ["docker", "run", "-d", "--network", "none", REF, "sleep", "3600"]

    def running(self):
        out = subprocess.run(["docker", "ps", "-q"], env=self.env, capture_output=True, text=True, check=True)
        return len(out.stdout.split())

    def stop_sleepers(self, n):
        ids = subprocess.run(["docker", "ps", "-aq"], env=self.env, capture_output=True, text=True).stdout.split()
        # dockerd 20.10 can hang removing many containers at once: small
        # batches, each with a deadline (what is left dies with dockerd).
        for i in range(0, len(ids), 10):
            try:
                subprocess.run(["docker", "rm", "-f"] + ids[i:i + 10], env=self.env, capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                print("bench: docker rm timed out; leaving the rest to dockerd's stop", file=sys.stderr)
                break

    def daemon_pids(self):
        marker = str(self.work / "docker")
        return pids_named("dockerd", marker) + pids_named("containerd", marker)

    def supervisor_rss(self):
        marker = str(self.work / "docker")
        shims = pids_named("containerd-shim", marker) + pids_named("containerd-shim-runc-v2", marker)
        return sum(rss_kib(p) for p in self.daemon_pids() + shims)

    def extra_processes(self, n):
        marker = str(self.work / "docker")
        shims = pids_named("containerd-shim", marker) + pids_named("containerd-shim-runc-v2", marker)
        return len(shims) / max(n, 1)

    def binary_bytes(self):
        names = ["dockerd", "containerd", "containerd-shim-runc-v2", "runc"]
        return {n: os.path.getsize(shutil.which(n)) for n in names if shutil.which(n)}
