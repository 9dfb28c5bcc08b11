#!/usr/bin/env bash
# Installs what openpanda needs on a fresh Debian machine (ffmpeg), builds the
# server, and runs it on the embedded defaults: SQLite and local storage in
# ./openpanda-data, listening on 127.0.0.1:8080. On first start it creates a
# cloud and prints its keys and a ready-to-run signed upload.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    echo "installing ffmpeg from Debian's packages..."
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq ffmpeg openssl curl
fi
command -v cargo >/dev/null || { echo "cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }

cargo build --release --locked
exec "${CARGO_TARGET_DIR:-target}/release/openpanda" serve "$@"
