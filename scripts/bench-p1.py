#!/usr/bin/env python3
"""P1 benchmark: how much slower is an encoding through openpanda than the bare
ffmpeg command it runs?

    P1 = (wall time from the upload response to the encoding's `success`)
         / (wall time of running the same ffmpeg passes by hand)

Target: P1 <= 1.05.

Usage:
    cargo build                      # this script builds nothing itself
    python3 scripts/bench-p1.py [--bin target/debug/openpanda] [--runs 3]
                                [--seconds 30] [--keep]

What it does:
  1. Creates a fresh data directory and a cloud (`openpanda cloud create`).
  2. Makes a 30-second 1280x720 H.264/AAC input with ffmpeg (testsrc2 + a
     sine tone, "upload quality": -preset ultrafast -crf 18).
  3. Starts `openpanda serve` on a free 127.0.0.1 port with the default
     encoder settings (every OPENPANDA_* variable is removed from its
     environment), and waits for /healthz.
  4. Server run: uploads the input with profiles=h264 and measures the time
     from the upload response until GET /encodings/:id.json (polled every
     20 ms) says `success`. For a breakdown it also notes when the video
     itself became `success` (probed and stored).
  5. Bare run: asks `openpanda plan INPUT --preset h264 --out DIR` for the
     exact ffmpeg argv the server would run (JSON {"passes": [[arg, ...]]},
     without the program name) and times running those passes with ffmpeg.
  6. Repeats 4 and 5 alternately (--runs times each) and prints the medians
     and P1 = server / bare.

Needs python3 (standard library only), ffmpeg on the PATH and a built
openpanda binary. Only 127.0.0.1 is contacted. Run it on an otherwise idle
machine: other load makes both timings noisy and the ratio meaningless.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


def quote(s):
    return urllib.parse.quote(str(s), safe="-_.~")


def canonical(params):
    return "&".join(
        f"{quote(k)}={quote(v)}"
        for k, v in sorted(params.items(), key=lambda kv: kv[0].encode())
        if k not in ("signature", "file")
    )


def timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Api:
    def __init__(self, port, cloud):
        self.base = f"http://127.0.0.1:{port}/v2"
        self.cloud = cloud

    def _signed(self, method, path, params):
        p = dict(params)
        p.update(
            access_key=self.cloud["access_key"],
            cloud_id=self.cloud["id"],
            timestamp=timestamp(),
        )
        text = f"{method}\n127.0.0.1\n{path}\n{canonical(p)}"
        digest = hmac.new(self.cloud["secret_key"].encode(), text.encode(), hashlib.sha256).digest()
        p["signature"] = base64.b64encode(digest).decode()
        return p

    def _send(self, req):
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{req.get_method()} {req.full_url}: {e.code} {e.read()[:500]!r}")

    def get(self, path, params=None):
        p = self._signed("GET", path, params or {})
        q = "&".join(f"{quote(k)}={quote(v)}" for k, v in p.items())
        return self._send(urllib.request.Request(f"{self.base}{path}?{q}"))

    def upload(self, file_path, params):
        p = self._signed("POST", "/videos.json", params)
        boundary = "----bench" + uuid.uuid4().hex
        parts = []
        for k, v in p.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            )
        name = os.path.basename(file_path)
        with open(file_path, "rb") as f:
            data = f.read()
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        req = urllib.request.Request(
            f"{self.base}/videos.json",
            data=b"".join(parts),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            method="POST",
        )
        return self._send(req)


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENPANDA_")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_input(path, seconds):
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-shortest", path,
        ],
        check=True,
    )


def server_run(api, input_path):
    """Seconds from the upload response to `success`, and (for a breakdown)
    seconds until the video itself was `success` (probe + store)."""
    video = api.upload(input_path, {"profiles": "h264"})
    t0 = time.monotonic()
    encs = api.get(f"/videos/{video['id']}/encodings.json")
    if len(encs) != 1:
        raise SystemExit(f"expected one encoding, got {encs}")
    eid = encs[0]["id"]
    ingest = None
    while True:
        if ingest is None and api.get(f"/videos/{video['id']}.json")["status"] == "success":
            ingest = time.monotonic() - t0
        e = api.get(f"/encodings/{eid}.json")
        if e["status"] == "success":
            total = time.monotonic() - t0
            return total, ingest if ingest is not None else total
        if e["status"] != "processing":
            raise SystemExit(f"encoding ended {e['status']}: {e.get('error_class')} {e.get('error_message')}")
        if time.monotonic() - t0 > 1800:
            raise SystemExit(f"encoding still not done after 30 minutes: {e}")
        time.sleep(0.02)


def bare_run(binary, input_path, work, env):
    out = tempfile.mkdtemp(prefix="bare-", dir=work)
    plan = subprocess.run(
        [binary, "plan", input_path, "--preset", "h264", "--out", out],
        check=True, capture_output=True, text=True, env=env, cwd=work,
    )
    passes = json.loads(plan.stdout)["passes"]
    t0 = time.monotonic()
    for args in passes:
        subprocess.run(
            ["ffmpeg", *args], check=True, env=env, cwd=out,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    elapsed = time.monotonic() - t0
    shutil.rmtree(out, ignore_errors=True)
    return elapsed, passes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join("target", "debug", "openpanda"),
                    help="the openpanda binary (default: target/debug/openpanda)")
    ap.add_argument("--runs", type=int, default=3, help="measurements of each kind (default 3)")
    ap.add_argument("--seconds", type=int, default=30, help="length of the input (default 30)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} is not an executable; run `cargo build` or pass --bin")
    env = clean_env()
    work = tempfile.mkdtemp(prefix="openpanda-bench-")
    data = os.path.join(work, "data")
    server = None
    try:
        created = subprocess.run(
            [binary, "cloud", "create", "--name", "bench", "--data-dir", data, "--json"],
            check=True, capture_output=True, text=True, env=env, cwd=work,
        )
        cloud = json.loads([l for l in created.stdout.splitlines() if l.startswith("{")][-1])

        input_path = os.path.join(work, "input-720p.mp4")
        print(f"making a {args.seconds}s 1280x720 H.264/AAC input ...", flush=True)
        make_input(input_path, args.seconds)

        port = free_port()
        log = open(os.path.join(work, "server.log"), "wb")
        server = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
            env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.05)
        api = Api(port, cloud)

        server_times, bare_times = [], []
        passes = None
        for i in range(1, args.runs + 1):
            s, ingest = server_run(api, input_path)
            server_times.append(s)
            print(f"run {i}: server {s:7.2f} s   (video ready after {ingest:.2f} s)", flush=True)
            b, passes = bare_run(binary, input_path, work, env)
            bare_times.append(b)
            print(f"run {i}: bare   {b:7.2f} s", flush=True)

        print("\nffmpeg passes (from `openpanda plan`):")
        for p in passes:
            print("  ffmpeg " + " ".join(p))
        ms, mb = statistics.median(server_times), statistics.median(bare_times)
        p1 = ms / mb
        print(f"\nmedian server: {ms:.2f} s   median bare: {mb:.2f} s")
        print(f"P1 = server / bare = {p1:.3f}   (target <= 1.05: {'met' if p1 <= 1.05 else 'NOT met'})")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
