#!/usr/bin/env python3
"""A Docker volume plugin (legacy v1 protocol) for berth's tests.

It serves POST /Plugin.Activate and /VolumeDriver.* over a Unix socket,
keeps each volume as a directory ROOT/volumes/NAME, and appends every call
it receives to LOG as one JSON line: {"method": "VolumeDriver.Mount",
"body": {...}}.

Faults on request, so tests can see berth's error handling:
  Create with Opts {"fail": MSG}      answers 200 {"Err": MSG}
  Create with Opts {"http500": MSG}   answers 500 with MSG as text/plain
  --hang METHOD                       never answers that method
List and Get answer with a chunked body, as Go plugins often do.

usage: volume-plugin.py --socket PATH --root DIR --log FILE [--hang METHOD]
"""

import argparse
import http.server
import json
import os
import socketserver
import threading
import time


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def make_handler(args):
    lock = threading.Lock()
    volumes = os.path.join(args.root, "volumes")
    os.makedirs(volumes, exist_ok=True)

    def volume_dir(name):
        if not name or "/" in name or name.startswith("."):
            raise ValueError("bad volume name %r" % name)
        return os.path.join(volumes, name)

    def info(name):
        return {"Name": name, "Mountpoint": volume_dir(name), "Status": {}}

    def create(body):
        opts = body.get("Opts") or {}
        if "fail" in opts:
            return 200, {"Err": opts["fail"]}
        if "http500" in opts:
            return 500, opts["http500"]
        os.makedirs(volume_dir(body["Name"]), exist_ok=True)
        return 200, {"Err": ""}

    def existing(body, answer):
        path = volume_dir(body["Name"])
        if not os.path.isdir(path):
            return 200, {"Err": "no such volume: %s" % body["Name"]}
        return 200, answer(path)

    def remove(body):
        path = volume_dir(body["Name"])
        if os.path.isdir(path):
            os.rmdir(path)
        return 200, {"Err": ""}

    routes = {
        "Plugin.Activate": lambda b: (200, {"Implements": ["VolumeDriver"]}),
        "VolumeDriver.Create": create,
        "VolumeDriver.Remove": remove,
        "VolumeDriver.Mount": lambda b: existing(b, lambda p: {"Mountpoint": p, "Err": ""}),
        "VolumeDriver.Path": lambda b: existing(b, lambda p: {"Mountpoint": p, "Err": ""}),
        "VolumeDriver.Unmount": lambda b: existing(b, lambda p: {"Err": ""}),
        "VolumeDriver.Get": lambda b: existing(b, lambda p: {"Volume": info(b["Name"]), "Err": ""}),
        "VolumeDriver.List": lambda b: (
            200,
            {"Volumes": [info(n) for n in sorted(os.listdir(volumes))], "Err": ""},
        ),
        "VolumeDriver.Capabilities": lambda b: (200, {"Capabilities": {"Scope": "local"}}),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass  # client_address is '' on a Unix socket; the LOG is enough

        def do_POST(self):
            method = self.path.lstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw.strip() else None
            with lock:
                with open(args.log, "a") as log:
                    log.write(json.dumps({"method": method, "body": body,
                                          "accept": self.headers.get("Accept"),
                                          "host": self.headers.get("Host")}) + "\n")
            if args.hang and method.endswith("." + args.hang):
                time.sleep(3600)
            route = routes.get(method)
            if route is None:
                return self.answer(404, "unknown method %s" % method)
            try:
                status, answer = route(body or {})
            except (KeyError, ValueError, OSError) as e:
                status, answer = 200, {"Err": str(e)}
            self.answer(status, answer, chunked=method in ("VolumeDriver.List", "VolumeDriver.Get"))

        def answer(self, status, answer, chunked=False):
            text = isinstance(answer, str)
            data = (answer if text else json.dumps(answer)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text
                             else "application/vnd.docker.plugins.v1+json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = len(data) // 2
                for piece in (data[:half], data[half:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--hang", default="")
    args = p.parse_args()
    os.makedirs(os.path.dirname(args.socket), exist_ok=True)
    server = Server(args.socket, make_handler(args))
    server.serve_forever()


if __name__ == "__main__":
    main()
