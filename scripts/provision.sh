#!/usr/bin/env bash
# Install what Pods from Scratch needs on Debian 12 or Ubuntu 24.04: the apt
# packages the chapters and tests use, a Rust toolchain (through rustup, when
# there is no cargo yet) and mdbook. Safe to run again: it installs only what
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

MDBOOK_VERSION=0.4.52
PACKAGES=(
    build-essential ca-certificates curl # to build the crates
    procps util-linux                    # ps, unshare: what the book compares with
    busybox-static                       # a tiny static userland for the rootfs chapter
    hyperfine                            # scripts/bench.sh
    shellcheck                           # scripts/test.sh lints the scripts
)

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        step "apt-get install ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

install_rust() {
    if ! command -v cargo >/dev/null; then
        step "installing Rust with rustup (the official installer)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --component rustfmt,clippy
    fi
    if command -v rustup >/dev/null; then
        cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
        cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    fi
}

install_mdbook() {
    if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
        step "cargo install mdbook $MDBOOK_VERSION"
        cargo install --locked --quiet mdbook --version "$MDBOOK_VERSION"
    fi
}

install_packages
install_rust
install_mdbook
step "building the chapters"
cargo build --quiet --workspace
echo "setup done: $(cargo --version), $(mdbook --version)"
