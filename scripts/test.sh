#!/usr/bin/env bash
# Everything CI runs: formatting, lints, unit tests, the root integration
# tests against the real kernel, the book's recorded outputs, the book.
# Builds as you; runs the test programs as root (through sudo if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    # Cargo runs each test program through this "runner".
    host=$(rustc -vV | sed -n 's/^host: //p' | tr '[:lower:]-' '[:upper:]_')
    export "CARGO_TARGET_${host}_RUNNER=sudo -E"
fi

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
step "shellcheck"
shellcheck -x scripts/*.sh .ci/run
step "unit and integration tests (integration tests run as root)"
cargo test --workspace
step "the book's outputs match a fresh run"
scripts/book-outputs.sh --check
step "mdbook build"
mdbook build book
echo "all checks passed"
