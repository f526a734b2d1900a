#!/usr/bin/env bash
# Build the escape gallery's probe (chapters/07-hardening/tests/probe/probe.rs)
# for the book's examples, static so it runs in a busybox root, into
# target/gallery-probe/ (again only when the source is newer), and print
# that folder, which the examples mount into containers as /probe. (The
# tests build their own copy through the chapter's build.rs.)
set -euo pipefail
cd "$(dirname "$0")/.."
source=chapters/07-hardening/tests/probe/probe.rs
dir=${CARGO_TARGET_DIR:-target}/gallery-probe
if [ ! "$dir/probe" -nt "$source" ]; then
    mkdir -p "$dir"
    rustc --edition 2021 -O -C target-feature=+crt-static -o "$dir/probe" "$source"
fi
realpath "$dir"
