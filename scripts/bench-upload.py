#!/usr/bin/env python3
"""Upload benchmark: a 2 GiB file through an upload session (spec §5) in
5 MiB chunks, as [upl2] and [py] send it, against a real `openpanda serve`,
then the same file as one `curl -T` PUT to a fresh session location, in the
same run and to the same server. Prints the server's peak resident memory
(target: under 100 MiB, since chunks stream to the partial file and are
never held whole) and both throughputs.

Usage: scripts/bench-upload.py [--bin target/debug/openpanda] [--size-mib 2048]
           [--chunk-mib 5] [--keep]
Only the Python 3 standard library and curl are needed. The file is random
bytes made in a temporary directory, removed afterwards with the server's
data directory. `profiles=none` and `--no-workers`: nothing but the upload
is measured (no ingest or encoding runs).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quote(s):
    return urllib.parse.quote(str(s), safe="-_.~")


def signed_params(cloud, method, path, params):
    """Panda's signature (spec §2.2-2.3): HMAC-SHA256 over the sorted,
    RFC 3986-encoded parameters, Base64."""
    params = dict(params, access_key=cloud["access_key"], cloud_id=cloud["id"],
                  timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat())
    canonical = "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}\n127.0.0.1\n{path}\n{canonical}"
    digest = hmac.new(cloud["secret_key"].encode(), to_sign.encode(), hashlib.sha256).digest()
    params["signature"] = base64.b64encode(digest).decode()
    return params


def open_session(port, cloud, size, name):
    body = urllib.parse.urlencode(signed_params(cloud, "POST", "/videos/upload.json", {
        "file_size": size, "file_name": name, "profiles": "none"}))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/v2/videos/upload.json", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    assert resp.status == 201, (resp.status, answer)
    return answer["location"]


class RssSampler(threading.Thread):
    """Polls the server's VmRSS; VmHWM gives the true peak at the end."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def field(self, name):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def run(self):
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.field("VmRSS"))

    def phase_peak(self):
        """The highest VmRSS seen since the last call, and a reset."""
        peak, self.peak = self.peak, self.field("VmRSS")
        return max(peak, self.peak)


def make_file(path, size):
    """Random bytes (not a sparse hole, so nothing compresses or dedupes)."""
    block = os.urandom(8 * MIB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            # Vary each block cheaply so no two are equal.
            n = min(left, len(block))
            f.write(block[:n])
            block = block[1:] + block[:1]
            left -= n


def upload_in_chunks(location, path, size, chunk):
    u = urllib.parse.urlsplit(location)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    start = time.monotonic()
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            data = f.read(chunk)
            conn.request("PUT", u.path, data, {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {pos}-{pos + len(data) - 1}/{size}",
            })
            resp = conn.getresponse()
            body = resp.read()
            pos += len(data)
            expected = 200 if pos == size else 204
            assert resp.status == expected, (pos, resp.status, body[:300])
            if expected == 204:
                assert resp.getheader("Range") == f"0-{pos - 1}", resp.getheaders()
                u = urllib.parse.urlsplit(resp.getheader("Location"))
    return time.monotonic() - start


def upload_with_curl(location, path):
    start = time.monotonic()
    res = subprocess.run(["curl", "-sS", "-T", path, "-o", "/dev/null", "-w", "%{http_code}",
                          location], capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - start
    assert res.stdout.strip() == "200", res.stdout + res.stderr
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/debug/openpanda")
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--chunk-mib", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    size, chunk = args.size_mib * MIB, args.chunk_mib * MIB
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="openpanda-bench-upload-")
    server = None
    try:
        data_dir = os.path.join(work, "data")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENPANDA_")}
        env["OPENPANDA_LOG__LEVEL"] = "warn"
        out = subprocess.run([binary, "cloud", "create", "--name", "bench", "--json",
                              "--data-dir", data_dir], capture_output=True, text=True,
                             check=True, env=env).stdout
        cloud = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        port = free_port()
        log = open(os.path.join(work, "server.log"), "w")
        server = subprocess.Popen([binary, "serve", "--no-workers", "--listen",
                                   f"127.0.0.1:{port}", "--data-dir", data_dir],
                                  stdout=log, stderr=log, env=env)
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        sampler = RssSampler(server.pid)
        idle = sampler.field("VmRSS")
        sampler.start()

        path = os.path.join(work, "bench.bin")
        print(f"making a {args.size_mib} MiB random file ...", flush=True)
        make_file(path, size)
        sampler.phase_peak()

        location = open_session(port, cloud, size, "bench.bin")
        chunked = upload_in_chunks(location, path, size, chunk)
        chunked_peak = sampler.phase_peak()
        # Free the disk space of the first copy before the second upload.
        shutil.rmtree(os.path.join(data_dir, "storage"), ignore_errors=True)

        location = open_session(port, cloud, size, "bench.bin")
        whole = upload_with_curl(location, path)
        curl_peak = sampler.phase_peak()
        sampler.stop.set()
        hwm = sampler.field("VmHWM")

        mib = size / MIB
        print(f"file: {args.size_mib} MiB; server binary: {args.bin}")
        print(f"server RSS idle:                    {idle / MIB:7.1f} MiB")
        print(f"upload session, {args.chunk_mib} MiB chunks:     "
              f"{mib / chunked:7.1f} MiB/s  ({chunked:.1f} s), peak RSS {chunked_peak / MIB:.1f} MiB")
        print(f"curl -T, one whole-file PUT:        "
              f"{mib / whole:7.1f} MiB/s  ({whole:.1f} s), peak RSS {curl_peak / MIB:.1f} MiB")
        verdict = "OK" if hwm < 100 * MIB else "OVER TARGET"
        print(f"server peak RSS (VmHWM):            {hwm / MIB:7.1f} MiB  "
              f"(target < 100 MiB: {verdict})")
        return 0 if hwm < 100 * MIB else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
