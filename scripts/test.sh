#!/usr/bin/env bash
# Everything CI runs: formatting, lints, unit tests, the root integration
# tests against the real kernel, the reliability suite (scripts/stress.sh),
# the book's recorded outputs, the book, and
# last the integration tests again in a cgroup v2 VM, with the book's
# cgroup v2 outputs and the suite's load part in the same boot
# (scripts/vm-test.sh).
# Builds as you; runs the test programs as root (through sudo if needed).
#
#   scripts/test.sh           everything (the VM part takes a minute or two)
#   scripts/test.sh --no-vm   everything but the VM, for quick local runs
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

vm=true
case "${1:-}" in
    --no-vm) vm=false ;;
    "") ;;
    *) echo "usage: scripts/test.sh [--no-vm]" >&2 && exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    # Cargo runs each test program through this "runner".
    host=$(rustc -vV | sed -n 's/^host: //p' | tr '[:lower:]-' '[:upper:]_')
    export "CARGO_TARGET_${host}_RUNNER=sudo -E"
fi

step "cargo fmt --check"
cargo fmt --all -- --check
rustfmt --check chapters/06-pod/pause/src/main.rs # the pause crate is a workspace of its own
step "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet --manifest-path chapters/06-pod/pause/Cargo.toml -- -D warnings
step "shellcheck"
shellcheck -x scripts/*.sh .ci/run
step "unit and integration tests (integration tests run as root)"
cargo test --workspace
step "the reliability suite (scripts/stress.sh; budget: 6 minutes, 7 with the build)"
timeout 420 scripts/stress.sh
step "workshop: every exercise fails unsolved and passes with the chapter's code"
if $vm; then cargo xtask workshop verify --vm; else cargo xtask workshop verify; fi
step "the book's outputs match a fresh run"
scripts/book-outputs.sh --check
step "the book's map of the code is up to date (and which chapters are over 500 lines)"
cargo xtask code-map --check
step "the book's diagrams are what their text sources make (scripts/diagrams.sh; budget: 1 minute)"
started=$SECONDS
timeout 60 scripts/diagrams.sh --check
echo "diagrams checked in $((SECONDS - started)) s"
step "the speed page's table and chart are what its committed bench run makes (budget: 1 minute)"
started=$SECONDS
timeout 60 python3 scripts/speed-page.py --check
echo "speed page checked in $((SECONDS - started)) s"
step "mdbook build"
mdbook build book
step "the book in headless Chromium: links, images, console, listings, widths, search (budget: 2 minutes)"
start=$SECONDS
timeout 100 scripts/book-check.py # screenshots: target/book-check/*.png
timeout 20 scripts/book-check.py --self-test
echo "browser check: $((SECONDS - start)) s"
step "no line of the book's commands and outputs is wider than its column"
cargo xtask book-width
if ! $vm; then
    printf '\nall checks passed, BUT THE VM TESTS WERE NOT RUN (--no-vm): nothing was\n'
    printf 'tested on cgroup v2. CI runs them; so does scripts/vm-test.sh.\n'
    exit 0
fi
step "the integration tests and the book's cgroup v2 outputs, in a cgroup v2 VM (scripts/vm-test.sh)"
scripts/vm-test.sh
echo "all checks passed, including the cgroup v2 VM"
