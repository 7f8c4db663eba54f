#!/usr/bin/env python3
"""The control API under load, and how fast events reach their readers.

    api.py [--berth BIN] [--short] [--work DIR] [--json PATH] [--no-docker]
           [--append-to DIR] [--clients N] [--requests N] [--events N]

1. `list` latency: a daemon with 10 running `sleep 3600` containers (spec
   files, the busybox image); 1 client sending 200 requests, then 200
   concurrent clients (one thread and one persistent connection each, raw
   JSON lines), each sending 50 `list` requests back to back. Every
   request is timed (send to the end of its reply line): mean, p50, p90,
   p99, max, and requests/s over the whole run.
   The peer column is a private dockerd (peers/dockerd.sh, its own data
   root under WORK) with the same 10 containers, answering
   `GET /containers/json` over its Unix socket to the same clients
   (HTTP/1.1 keep-alive, raw sockets); skipped, with the reason, when
   dockerd is not installed or does not come up. Rounds alternate berth
   and docker so drift in the machine's load hits both alike.
2. Events to one API subscriber: a connection following `events`; N
   `reload`s pipelined on another connection, against a config directory
   holding one invalid spec, so each emits one `config.rejected` event.
   Time from the first request to the subscriber holding all N. Then a
   second subscriber replays the same N from the journal (`since`).
   Events that have not arrived 5 s after the last reply are reported as
   stalled (with how many did), not waited for.
3. Events to a webhook: a fresh daemon whose berth.json lists one endpoint,
   an http.server on 127.0.0.1 answering 204; the same N reloads; time
   until the receiver holds all N (unique seqs), and whether they came in
   seq order; three such bursts (the notifier polls the journal every
   200 ms when idle, so one burst is coarse), the median.

The clients are Python threads on the same machine: on a small machine
they compete with the daemon for the CPU, so the latencies include the
client's own scheduling; the comparison with docker shares that.

--short is CI's mode (20 clients × 20 requests, 3 containers, 500 events,
no docker). --append-to DIR appends the tables to DIR/results.md and adds
them as "api" to DIR/results.json (what benches/run.sh uses). Needs root
and busybox-static.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import REF, Berth, Docker, append_results, wait_until  # noqa: E402

# An invalid spec: every reload of a directory holding it is rejected and
# journals one config.rejected event (nothing else changes).
# How long events may take to reach a subscriber after the last reply
# before the run calls them stuck.
STALL_SECS = 5
WEBHOOK_STALL_SECS = 60
BAD_SPEC = '{"image": 1, "command": ["true"]}\n'


def percentile(values, p):
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * (len(s) - 1)))))]


class Lines:
    """A client connection to berth's socket: one JSON object per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 1:]
                return out
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("berth closed the connection")
            self.buf += chunk

    def call(self, method, params=None, id=1):
        req = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            req["params"] = params
        self.send(json.dumps(req).encode() + b"\n")
        return json.loads(self.line())

    def close(self):
        self.sock.close()


class Http:
    """A keep-alive HTTP/1.1 connection to dockerd's Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("dockerd closed the connection")
        self.buf += chunk

    def _until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            self._fill()

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def get(self, target):
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if "content-length" in fields:
            body = self._take(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self._until(b"\r\n"):  # trailers, then the empty line
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        else:
            raise RuntimeError(f"dockerd answered without a length: {head}")
        if status != 200:
            raise RuntimeError(f"GET {target}: HTTP {status}: {body[:200]!r}")
        return body

    def close(self):
        self.sock.close()


def berth_client(sock):
    conn = Lines(sock)
    req = b'{"jsonrpc":"2.0","id":1,"method":"list"}\n'

    def one():
        conn.send(req)
        reply = conn.line()
        if b'"result"' not in reply:
            raise RuntimeError(f"list failed: {reply[:300]!r}")
    return one, conn.close


def docker_client(sock):
    conn = Http(sock)
    return (lambda: conn.get("/containers/json")), conn.close


def load(make_client, clients, requests):
    """CLIENTS threads, each with its own connection, each sending REQUESTS
    requests back to back once all are connected. Returns every request's
    latency (seconds) and the wall time from the start to the last reply."""
    conns = [make_client() for _ in range(clients)]
    lat = [[] for _ in range(clients)]
    errors = []
    start = threading.Barrier(clients + 1)

    def worker(i):
        one, _ = conns[i]
        start.wait()
        try:
            for _ in range(requests):
                t0 = time.perf_counter()
                one()
                lat[i].append(time.perf_counter() - t0)
        except Exception as e:  # reported after the join
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for _, close in conns:
        close()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed, e.g.: {errors[0]}")
    return [x for v in lat for x in v], wall


def summary(lat, wall):
    return {
        "requests": len(lat),
        "seconds": wall,
        "requests_per_s": len(lat) / wall,
        "mean_ms": sum(lat) / len(lat) * 1000,
        "p50_ms": percentile(lat, 50) * 1000,
        "p90_ms": percentile(lat, 90) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
    }


def build_image(work, berth_bin, roots):
    """WORK/rootfs and its tar (for docker), an OCI layout of it imported
    into each berth store in ROOTS."""
    rootfs = work / "rootfs"
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(rootfs)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF, str(work / "oci"), str(rootfs)],
                   check=True, stdout=subprocess.DEVNULL)
    for root in roots:
        subprocess.run([berth_bin, "import", str(work / "oci"), "--root", str(root)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(work / "rootfs.tar"), "."], check=True)


def write_sleepers(cfg, n):
    d = cfg / "containers"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (d / f"s{i}.json").write_text(json.dumps({"image": REF, "command": ["sleep", "3600"], "stop_signal": "SIGKILL"}))


def start_docker(work, n):
    """A private dockerd under WORK/docker with the image and N sleepers;
    (Docker, None) or (None, why not)."""
    if not (shutil.which("dockerd") and shutil.which("docker")):
        return None, "dockerd is not installed"
    d = Docker(work)
    (work / "docker" / "data").mkdir(parents=True, exist_ok=True)
    try:
        d.start()
    except subprocess.CalledProcessError as e:
        try:
            d.stop()
        except subprocess.CalledProcessError:
            pass
        return None, f"dockerd did not come up: {e.stderr.decode(errors='replace').strip()[-300:]}"
    try:
        subprocess.run(["docker", "import", str(work / "rootfs.tar"), REF], env=d.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        d.start_sleepers(n)
        wait_until(lambda: len(subprocess.run(["docker", "ps", "-q"], env=d.env, capture_output=True,
                                              text=True).stdout.split()) >= n, 60)
    except Exception:
        stop_docker(d, n)
        raise
    return d, None


def stop_docker(d, n):
    try:
        d.stop_sleepers(n)
    finally:
        d.stop()


def docker_version(d):
    r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=d.env, capture_output=True, text=True)
    return r.stdout.strip() or "?"


def list_latency(berth_sock, docker_sock, clients, requests, rounds):
    """Per client count, per side: pooled latencies over ROUNDS rounds that
    alternate berth and docker (who goes first alternates too)."""
    sides = {"berth": lambda: berth_client(berth_sock)}
    if docker_sock:
        sides["docker"] = lambda: docker_client(docker_sock)
    # Warm-up: the first requests of a fresh connection pay for cold caches.
    for make in sides.values():
        load(make, 1, 20)
    out = {}
    for c, r in ((1, requests * 4), (clients, requests)):
        lat = {s: [] for s in sides}
        wall = {s: 0.0 for s in sides}
        for i in range(rounds):
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]
            for s in order:
                got, w = load(sides[s], c, r)
                lat[s] += got
                wall[s] += w
                print(f"api: list, {c} clients × {r}, {s}, round {i + 1}/{rounds}: "
                      f"{len(got) / w:.0f} requests/s", file=sys.stderr)
        out[str(c)] = {s: dict(summary(lat[s], wall[s]), clients=c, requests_per_client=r, rounds=rounds) for s in sides}
    return out


def reloads(n):
    return b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"reload"}\n' % i for i in range(n))


class Generator:
    """N reloads pipelined on one connection; a thread reads the replies.
    Each should be a -32003 (the invalid spec)."""

    def __init__(self, sock, n):
        self.conn, self.n = Lines(sock), n
        self.replies = 0
        self.done_at = None
        self.bad = None
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self):
        try:
            for _ in range(self.n):
                reply = json.loads(self.conn.line())
                if reply.get("error", {}).get("code") != -32003 and self.bad is None:
                    self.bad = reply
                self.replies += 1
        except Exception as e:
            self.bad = f"reading replies: {e}"
        self.done_at = time.perf_counter()

    def go(self):
        self.thread.start()
        t0 = time.perf_counter()
        self.conn.send(reloads(self.n))
        return t0

    def finish(self, limit):
        self.thread.join(limit)
        self.conn.close()
        if self.done_at is None:
            raise RuntimeError(f"only {self.replies} of {self.n} reload replies within {limit} s")
        if self.bad is not None:
            raise RuntimeError(f"unexpected reload reply: {str(self.bad)[:300]}")


def one_reload(sock):
    c = Lines(sock)
    reply = c.call("reload")
    c.close()
    if reply.get("error", {}).get("code") != -32003:
        raise RuntimeError(f"reload was not rejected: {str(reply)[:300]}")


class Follower:
    """An `events` follow subscription for config.rejected. While receiving
    it only counts lines (each is one notification) and notes when the
    count reached `want`; it parses them afterwards."""

    def __init__(self, sock, since=None):
        self.conn = Lines(sock)
        params = {"follow": True, "kinds": ["config.rejected"]}
        if since is not None:
            params["since"] = since
        self.chunks, self.count, self.want = [], 0, 1
        self.reached = threading.Event()
        self.at = self.last_at = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.conn.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events", "params": params}).encode() + b"\n")

    def _read(self):
        s = self.conn.sock
        while True:
            try:
                b = s.recv(1 << 20)
            except OSError:
                return
            if not b:
                return
            self.last_at = time.perf_counter()
            self.chunks.append(b)
            self.count += b.count(b"\n")
            if self.count >= self.want and not self.reached.is_set():
                self.at = time.perf_counter()
                self.reached.set()

    def expect(self, want):
        self.want = want
        self.reached.clear()
        if self.count >= want:
            self.at = time.perf_counter()
            self.reached.set()

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.conn.close()
        lines = b"".join(self.chunks).split(b"\n")
        return [json.loads(x) for x in lines if x], sum(len(x) + 1 for x in lines if x)


def subscriber_throughput(berth, n):
    """One events follower; N config.rejected events; time until it holds
    them all. Then a second follower replays the same N from the journal
    (`since` just before them): delivery alone, nothing generated."""
    sock = berth.sock
    (berth.work / "berth-config" / "containers" / "zz-bad.json").write_text(BAD_SPEC)
    sub = Follower(sock)
    # One reload first: once its event arrives the subscription is live.
    one_reload(sock)
    if not sub.reached.wait(10):
        raise RuntimeError("the subscriber got no event for a first reload")
    sub.expect(1 + n)
    gen = Generator(sock, n)
    t0 = gen.go()
    gen.finish(120)
    # All replies are in, so every event is journaled: what has not reached
    # the subscriber a few seconds later is stuck in the daemon.
    ok = sub.reached.wait(STALL_SECS)
    t_all = sub.at
    notes, nbytes = sub.close()
    events = [x["params"] for x in notes[1:] if x.get("method") == "events.event"]
    seqs = [e["seq"] for e in events if e.get("kind") == "config.rejected"]
    if not ok:
        print(f"api: the subscriber got {len(seqs)} of {n} events; the rest did not come within "
              f"{STALL_SECS} s of the last reply", file=sys.stderr)
    live = {
        "events": n,
        "received": len(seqs),
        "stalled": not ok,
        "before_stall_s": None if ok else sub.last_at - t0,
        "seconds": t_all - t0 if ok else None,
        "events_per_s": n / (t_all - t0) if ok else None,
        "in_order": all(b == a + 1 for a, b in zip(seqs, seqs[1:])),
        "replies_seconds": gen.done_at - t0,
        "reloads_per_s": n / (gen.done_at - t0),
        "notification_bytes": nbytes / len(notes),
    }
    # Replay: the journal still holds them (its bound is about 2 MiB).
    t0 = time.perf_counter()
    rep = Follower(sock, since=notes[0]["params"]["seq"])
    rep.expect(n)
    ok = rep.reached.wait(STALL_SECS + n / 1000)
    t_all = rep.at
    notes, _ = rep.close()
    got = [x["params"]["seq"] for x in notes if x.get("method") == "events.event"]
    gaps = [x["params"] for x in notes if x.get("method") == "events.gap"]
    replay = {
        "events": n,
        "received": len(got),
        "gaps": gaps,
        "stalled": not ok,
        "before_stall_s": None if ok else rep.last_at - t0,
        "seconds": (t_all - t0) if ok else None,
        "events_per_s": n / (t_all - t0) if ok else None,
        "in_order": all(b == a + 1 for a, b in zip(got, got[1:])),
    }
    if not ok:
        print(f"api: replay: the subscriber got {len(got)} of {n} events", file=sys.stderr)
    return live, replay


class Receiver:
    """A webhook endpoint on 127.0.0.1: every POST's events, in arrival
    order, answered 204."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = []  # seqs of config.rejected events, in arrival order
        self.posts = 0
        self.changed = threading.Condition(self.lock)
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seqs = [e["seq"] for e in json.loads(body) if e.get("kind") == "config.rejected"]
                with rec.changed:
                    rec.arrivals += seqs
                    rec.posts += 1
                    rec.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # The notifier dies with its daemon, resetting its
                # keep-alive connection: not worth a traceback.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_unique(self, n, limit):
        """Blocks until N unique seqs have arrived; returns when, or None."""
        end = time.monotonic() + limit
        with self.changed:
            while len(set(self.arrivals)) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return time.perf_counter()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def webhook_throughput(berth_bin, work, n, rounds):
    """A fresh daemon (its own store and journal, no containers) whose
    berth.json names one webhook; N config.rejected events."""
    rec = Receiver()
    d = None
    try:
        cfg = work / "berth-config"
        (cfg / "containers").mkdir(parents=True, exist_ok=True)
        (cfg / "berth.json").write_text(json.dumps({"webhooks": [{"name": "bench", "url": f"http://127.0.0.1:{rec.port}/hook"}]}))
        d = Berth(berth_bin, work)
        d.start()
        (cfg / "containers" / "zz-bad.json").write_text(BAD_SPEC)
        # One event first: once it is delivered, the notifier is up.
        one_reload(d.sock)
        if rec.wait_unique(1, 30) is None:
            raise RuntimeError("the webhook receiver got nothing for a first reload")
        # The notifier polls the journal every 200 ms when idle and sends
        # 50 events a POST, so one burst's time is coarse: ROUNDS bursts,
        # the median. What has not come 60 s after the last reply is stuck.
        times, replies, stalled = [], [], False
        for k in range(rounds):
            gen = Generator(d.sock, n)
            t0 = gen.go()
            gen.finish(120)
            replies.append(gen.done_at - t0)
            t_all = rec.wait_unique(1 + (k + 1) * n, WEBHOOK_STALL_SECS)
            if t_all is None:
                stalled = True
                break
            times.append(t_all - t0)
        with rec.lock:
            arrivals, posts = list(rec.arrivals), rec.posts
        got = len(set(arrivals)) - 1
        if stalled:
            print(f"api: the webhook receiver got {got} of {len(replies) * n} events", file=sys.stderr)
        med = statistics.median(times) if not stalled else None
        return {
            "events": n,
            "rounds": rounds,
            "received": got,
            "duplicates": len(arrivals) - len(set(arrivals)),
            "posts": posts - 1,
            "stalled": stalled,
            "waited_s": WEBHOOK_STALL_SECS,
            "seconds": med,
            "seconds_each": times,
            "events_per_s": n / med if med else None,
            "in_order": all(b > a for a, b in zip(arrivals, arrivals[1:])),
            "replies_seconds": statistics.median(replies),
        }
    finally:
        if d:
            d.stop()
        rec.stop()


def ratio(b, p):
    return f"{b / p:.2f}×" if p else ""


def report(res):
    ll = res["list_latency"]
    docker = "docker" in ll[next(iter(ll))]
    cont = res["containers"]
    peer = " (docker: `GET /containers/json`, the same containers)" if docker else ""
    rounds = f"{res['rounds']} rounds pooled" if res["rounds"] > 1 else "1 round"
    lines = [f"`list` with {cont} running containers{peer}, every request timed by its client, {rounds}:", ""]
    head = "| clients × requests | metric | berth |" + (" docker | berth ÷ docker |" if docker else "")
    lines += [head, "|---" * (5 if docker else 3) + "|"]
    for c, row in ll.items():
        b = row["berth"]
        label = f"{c} × {b['requests_per_client']}"
        for key, name, unit in (("mean_ms", "mean", "ms"), ("p50_ms", "p50", "ms"), ("p90_ms", "p90", "ms"), ("p99_ms", "p99", "ms"),
                                ("max_ms", "max", "ms"), ("requests_per_s", "requests/s", "")):
            cells = f"| {label} | {name} | {fmt(b[key], unit)} |"
            if docker:
                p = row["docker"][key]
                cells += f" {fmt(p, unit)} | {ratio(b[key], p)} |"
            lines.append(cells)
    if not docker:
        lines += ["", f"docker skipped: {res.get('docker_skipped', '?')}"]
    else:
        lines += ["", f"docker: dockerd {res.get('docker_version', '?')}"]
    ev = res["events"]
    n = ev["n"]
    s, r, w = ev["subscriber"], ev["replay"], ev["webhook"]

    def row(label, x, note):
        order = "yes" if x["in_order"] else "NO"
        if x["seconds"] is None:
            got = f"{x['received']} of {n} arrived"
            if x.get("before_stall_s"):
                got += f" (in {x['before_stall_s']:.3f} s)"
            return (f"| {label} | – | – | {order} | STALLED: {got}, the rest not within "
                    f"{x.get('waited_s', STALL_SECS)} s{'' if x is r else ' of the last reply'}; {note} |")
        return f"| {label} | {x['seconds']:.3f} | {x['events_per_s']:.0f} | {order} | {note} |"

    lines += ["", f"{n} `config.rejected` events (one per `reload`, pipelined on one connection; "
              f"{s['notification_bytes']:.0f} bytes per notification), from the first request to the reader "
              "holding all:", "",
              "| reader | seconds | events/s | in seq order | notes |", "|---|---|---|---|---|",
              row("API subscriber (`events`, follow)", s,
                  f"all {n} reload replies after {s['replies_seconds']:.3f} s ({s['reloads_per_s']:.0f} reloads/s)"),
              row(f"API subscriber, replay of the same {n} (`since`)", r,
                  "from the journal, nothing generated meanwhile"),
              row("webhook (`berth _notify` → local HTTP server, 204)", w,
                  (f"median of {w['rounds']} bursts (" + ", ".join(f"{t:.3f}" for t in w["seconds_each"]) + " s); "
                   if w["rounds"] > 1 and not w["stalled"] else "")
                  + f"{w['posts']} POSTs, {w['duplicates']} duplicates; all {n} reload replies after "
                  f"{w['replies_seconds']:.3f} s")]
    return "\n".join(lines) + "\n"


def fmt(v, unit):
    if unit == "ms":
        return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"
    return f"{v:.0f}"


def remove_cgroup_parent(name):
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / name
        if d.is_dir():
            for sub in sorted(d.glob("**/"), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass


def unmount_under(path):
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    prefix = str(path) + "/"
    points = sorted((ln.split()[4] for ln in lines if ln.split()[4].startswith(prefix)), reverse=True)
    for p in points:
        subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / "target/debug/berth"))
    ap.add_argument("--short", action="store_true", help="a few clients and events, no docker (CI)")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one, removed afterwards)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--append-to", type=Path, metavar="DIR", help="append to DIR/results.md and DIR/results.json")
    ap.add_argument("--no-docker", action="store_true", help="leave docker out even if it is installed")
    ap.add_argument("--clients", type=int, help="concurrent clients (default 200, --short 20)")
    ap.add_argument("--requests", type=int, help="requests per client (default 50, --short 20)")
    ap.add_argument("--events", type=int, help="events generated (default 5000, --short 500)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("api: run as root")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.short:
        clients, requests, containers, n, rounds = 20, 20, 3, 500, 1
    else:
        clients, requests, containers, n, rounds = 200, 50, 10, 5000, 2
    clients, requests, n = a.clients or clients, a.requests or requests, a.events or n
    if not 1 <= clients <= 250:
        ap.error("--clients must be 1 to 250 (berth takes at most 256 connections)")
    own_work = a.work is None
    work = (a.work or Path(tempfile.mkdtemp(prefix="berth-api-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    res = {"mode": "short" if a.short else "full", "machine": os.uname().release, "nproc": os.cpu_count(),
           "containers": containers, "rounds": rounds}
    berth = docker = None
    try:
        build_image(work, a.berth, [work / "list" / "berth-root"])
        if a.no_docker or a.short:
            res["docker_skipped"] = "--no-docker" if a.no_docker else "--short"
        else:
            print("api: starting dockerd", file=sys.stderr)
            docker, why = start_docker(work, containers)
            if docker:
                res["docker_version"] = docker_version(docker)
            else:
                res["docker_skipped"] = why
        if res.get("docker_skipped"):
            print(f"api: docker skipped: {res['docker_skipped']}", file=sys.stderr)
        write_sleepers(work / "list" / "berth-config", containers)
        berth = Berth(a.berth, work / "list")
        berth.start()
        wait_until(lambda: berth.running() >= containers, 60)
        res["list_latency"] = list_latency(berth.sock, str(work / "docker" / "docker.sock") if docker else None,
                                           clients, requests, rounds)
        if docker:
            stop_docker(docker, containers)
            docker = None
        berth.stop()
        berth = None
        print("api: events to a subscriber", file=sys.stderr)
        sub = Berth(a.berth, work / "sub")
        berth = sub
        sub.start()
        subscriber, replay = subscriber_throughput(sub, n)
        sub.stop()
        berth = None
        print("api: events to a webhook", file=sys.stderr)
        res["events"] = {"n": n, "subscriber": subscriber, "replay": replay, "webhook": webhook_throughput(a.berth, work / "hook", n, 1 if a.short else 3)}
    finally:
        if docker:
            try:
                stop_docker(docker, containers)
            except Exception as e:
                print(f"api: stopping docker: {e}", file=sys.stderr)
        if berth:
            berth.stop()
        remove_cgroup_parent(f"berth-bench-{os.getpid()}")
        unmount_under(work)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    md = report(res)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
    if a.append_to:
        append_results(a.append_to.resolve(), "api", "Control API under load, event delivery", res, md)
    print(md)


if __name__ == "__main__":
    main()
