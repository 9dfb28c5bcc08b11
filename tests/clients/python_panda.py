#!/usr/bin/env python3
"""Drives openpanda with Panda's own Python client library, unchanged but
for what Python 3 needs.

The library is the one published on PyPI as `panda` (0.3.1, Python 2 code).
It is downloaded, converted with 2to3, and patched only where Python 3
separates str from bytes (PATCH below); then a scenario runs through its
public API: profiles, a multipart upload, an upload session interrupted in
the middle of a chunk and resumed, waiting, listing, filtering, cancel,
retry, abort and delete. The library calls used are printed at the end.

Usage: python_panda.py --port PORT --access-key K --secret-key S --cloud-id C
Needs: python3 with lib2to3 (3.11 ships it; `pip install fissix` otherwise),
ffmpeg, and pip access to PyPI. `requests` is installed into the work
directory when python3 lacks it.
"""

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

PANDA = "panda==0.3.1"

# The Python 3 str/bytes conversions the library needs, and nothing else:
# (file, text 2to3 leaves, replacement). HMAC takes bytes and gives a bytes
# digest; the file is read in binary, as its chunks are posted as bytes.
PATCH = [
    (
        "request.py",
        "hmac.new(secret_key, string_to_sign, hashlib.sha256)",
        "hmac.new(secret_key.encode('utf-8'), string_to_sign.encode('utf-8'), hashlib.sha256)",
    ),
    (
        "request.py",
        "return base64.b64encode(signature).strip()",
        "return base64.b64encode(signature).strip().decode('ascii')",
    ),
    (
        "upload_session.py",
        "with open(self.file_name) as f:",
        "with open(self.file_name, 'rb') as f:",
    ),
]

CALLS = []


def call(label, fn, *args, **kwargs):
    """Runs one library call and records its label for the report."""
    if label not in CALLS:
        CALLS.append(label)
    return fn(*args, **kwargs)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res


def install_library(work):
    """Downloads the published library, converts it to Python 3, patches it."""
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", work, PANDA])
    sdist = next(f for f in os.listdir(work) if f.startswith("panda-") and f.endswith(".tar.gz"))
    with tarfile.open(os.path.join(work, sdist)) as tar:
        tar.extractall(work, filter="data")
    src = os.path.join(work, sdist[: -len(".tar.gz")])
    package = os.path.join(src, "panda")
    try:
        importlib.import_module("lib2to3")
        run([sys.executable, "-m", "lib2to3", "-w", "-n", package])
    except ImportError:
        run([sys.executable, "-c",
             "import sys; from fissix.main import main; sys.exit(main('fissix.fixes', sys.argv[1:]))",
             "-w", "-n", package])
    for name, old, new in PATCH:
        path = os.path.join(package, name)
        text = open(path, encoding="utf-8").read()
        check(text.count(old) == 1, f"patch target not found once in {name}: {old}")
        open(path, "w", encoding="utf-8").write(text.replace(old, new))
    try:
        importlib.import_module("requests")
    except ImportError:
        deps = os.path.join(work, "deps")
        run([sys.executable, "-m", "pip", "install", "--quiet", "--target", deps, "requests"])
        sys.path.insert(0, deps)
    sys.path.insert(0, src)


def make_clip(path):
    """A 4 s clip of noise, stored losslessly: about 17 MB, four 5 MiB chunks."""
    run(["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
         "-vf", "noise=alls=100:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
         "-qp", "0", "-c:a", "pcm_s16le", path])


def interrupted_post(url, headers=None, data=None, **_):
    """Sends the headers and half of a chunk, then drops the connection, as
    a network failure would; raises what requests would raise."""
    import requests
    u = urllib.parse.urlsplit(url)
    head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Range: {headers['Content-Range']}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(head.encode() + data[: len(data) // 2])
    raise requests.ConnectionError("simulated network failure in the middle of a chunk")


def wait(what, fetch, done, timeout=180):
    start = time.time()
    while True:
        value = fetch()
        if done(value):
            return value
        check(time.time() - start < timeout, f"{what} not done after {timeout} s: {value}")
        time.sleep(0.3)


def status_query(requests, location, size):
    return requests.post(location, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes */{size}",
    })


def scenario(args, work):
    import panda
    import panda.upload_session
    import requests

    p = call("Panda(...)", panda.Panda, access_key=args.access_key, secret_key=args.secret_key,
             cloud_id=args.cloud_id, api_host="127.0.0.1", api_port=args.port)
    clip = os.path.join(work, "noise clip.mov")
    make_clip(clip)
    size = os.path.getsize(clip)
    chunk = panda.upload_session.CHUNK_SIZE

    profile = call("profiles.create", p.profiles.create, preset_name="h264", name="py-h264")
    check(profile.get("name") == "py-h264", f"profile: {profile}")
    found = call("profiles.find", p.profiles.find, "py-h264")
    check(found["id"] == profile["id"], f"profiles.find: {found}")
    names = [x["name"] for x in call("profiles.all", p.profiles.all)]
    check("py-h264" in names and "h264" in names, f"profiles.all: {names}")

    # A multipart upload: the params in the query, the file alone in the body.
    v1 = call("videos.create(file=...)", p.videos.create, file=clip, profiles="py-h264")
    check(v1.get("original_filename") == "noise clip.mov", f"videos.create: {v1}")

    # An upload session whose second chunk is cut off halfway.
    us = call("upload_session", p.upload_session, clip, profiles="py-h264")
    check(us.location.startswith(f"http://127.0.0.1:{args.port}/upload/"), us.location)
    real_post = panda.upload_session.post
    sent = []

    def flaky(url, **kw):
        sent.append(kw["headers"]["Content-Range"])
        return interrupted_post(url, **kw) if len(sent) == 2 else real_post(url, **kw)

    panda.upload_session.post = flaky
    try:
        call("UploadSession.start", us.start)
        raise AssertionError("the interrupted chunk should have raised")
    except requests.ConnectionError:
        pass
    finally:
        panda.upload_session.post = real_post
    check(us.status == "error", f"status after the interruption: {us.status}")
    # The server keeps what arrived of the cut chunk.
    kept = wait("the cut chunk's bytes", lambda: status_query(requests, us.location, size),
                lambda r: int(r.headers.get("Range", "0-0").split("-")[1]) + 1 > chunk, 10)
    check(kept.status_code == 204 and kept.headers.get("Location") == us.location,
          f"status query: {kept.status_code} {dict(kept.headers)}")
    call("UploadSession.resume", us.resume)
    check(us.status == "uploaded", f"status after resume: {us.status} {us.error_message}")
    v2 = us.video["json_attr"]
    check(v2.get("original_filename") == "noise clip.mov" and v2.get("file_size") == size,
          f"upload session video: {v2}")

    # Both videos and their encodings succeed; the stored originals are the file.
    for vid in (v1["id"], v2["id"]):
        video = wait(f"video {vid}", lambda: call("videos.find", p.videos.find, vid),
                     lambda v: v["status"] != "processing")
        check(video["status"] == "success", f"video: {video}")
        encodings = wait(f"encodings of {vid}", lambda: call("Video.encodings", video.encodings),
                         lambda es: all(e["status"] != "processing" for e in es))
        check([e["status"] for e in encodings] == ["success"], f"encodings: {encodings}")
        check(encodings[0]["profile_name"] == "py-h264", f"encodings: {encodings}")
        meta = call("Video.metadata", video.metadata)
        check(isinstance(meta, dict), f"metadata: {meta}")
        check(call("Encoding.video", encodings[0].video)["id"] == vid, "Encoding.video")

    ids = {v["id"] for v in call("videos.all", p.videos.all)}
    check({v1["id"], v2["id"]} <= ids, f"videos.all: {ids}")
    ok = {v["id"] for v in call("videos.all(status=...)", p.videos.all, status="success")}
    check({v1["id"], v2["id"]} <= ok, f"videos.all(status=success): {ok}")
    failed = p.videos.all(status="fail")
    check(all(v["id"] not in (v1["id"], v2["id"]) for v in failed), f"status=fail: {failed}")
    of_v2 = call("encodings.all(video_id=...)", p.encodings.all, video_id=v2["id"])
    check(len(of_v2) == 1 and of_v2[0]["video_id"] == v2["id"], f"encodings of v2: {of_v2}")
    mine = call("encodings.where", p.encodings.where, lambda e: e["profile_name"] == "py-h264")
    check(len(mine) >= 2, f"encodings.where: {mine}")

    # Two new encodings; the second waits for the only worker slot and is
    # cancelled while queued, then retried. (Cancelling one the very moment
    # a worker claims it can leave it "processing": a server race, reported.)
    busy = call("encodings.create", p.encodings.create, video_id=v2["id"], profile_name="py-h264")
    enc = p.encodings.create(video_id=v2["id"], profile_name="py-h264")
    check(enc.get("status") == "processing", f"encodings.create: {enc}")
    cancelled = call("Encoding.cancel", enc.cancel)
    check(cancelled.get("canceled") is True, f"cancel: {cancelled}")
    call("Encoding.reload", enc.reload)
    check(enc["status"] == "cancelled", f"after cancel: {enc}")
    retried = call("Encoding.retry", enc.retry)
    check(retried.get("retried") is True, f"retry: {retried}")
    done = wait("the retried encoding", lambda: call("encodings.find", p.encodings.find, enc["id"]),
                lambda e: e["status"] != "processing")
    check(done["status"] == "success", f"retried encoding: {done}")
    first = wait("the other new encoding", lambda: p.encodings.find(busy["id"]),
                 lambda e: e["status"] != "processing")
    check(first["status"] == "success", f"new encoding: {first}")

    # Abort a session: DELETE on its location; it is gone afterwards.
    us2 = p.upload_session(clip, profiles="none")
    call("UploadSession.abort", us2.abort)
    check(us2.status == "aborted", us2.status)
    gone = status_query(requests, us2.location, size)
    check(gone.status_code == 404 and "error" in gone.json(), f"after abort: {gone.status_code}")

    # Delete an encoding, a video, the profile.
    check(call("Encoding.delete", done.delete).get("deleted") is True, "Encoding.delete")
    check(call("Video.delete", p.videos.find(v1["id"]).delete).get("deleted") is True,
          "Video.delete")
    try:
        p.videos.find(v1["id"])
        raise AssertionError("a deleted video should not be found")
    except panda.PandaError as e:
        check("Couldn't find Video" in str(e), str(e))
    check(call("Profile.delete", profile.delete).get("deleted") is True, "Profile.delete")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--cloud-id", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="panda-py-") as work:
        install_library(work)
        scenario(args, work)
    print(json.dumps({"library": PANDA, "calls": CALLS}))


if __name__ == "__main__":
    main()
