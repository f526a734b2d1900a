#!/usr/bin/env bash
# Install what Pods from Scratch needs on Debian 12 or Ubuntu 24.04: the apt
# packages the chapters and tests use, a Rust toolchain (through rustup, when
# there is no cargo yet) and mdbook, then build the chapters. Safe to run
# again: it installs only what is missing. CI runs it before scripts/test.sh.
#
#   scripts/provision.sh                  as yourself (sudo for apt) or as root
#   scripts/provision.sh --user vagrant   as root, for another login user: the
#                                         Vagrantfile runs it this way
#   scripts/provision.sh --bench          also what scripts/bench.sh times us
#                                         against (podman, runc, crun, ...)
#
# Rust and mdbook go to the login user's home (~/.cargo), not root's: the
# learner builds as themselves and runs the chapters with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

MDBOOK_VERSION=0.4.52
SVGBOB_VERSION=0.7.6 # svgbob_cli draws the book's diagrams (scripts/diagrams.sh)
PACKAGES=(
    build-essential ca-certificates curl # to build the crates
    procps util-linux                    # ps, unshare: what the book compares with
    iproute2 nftables                    # ip, nft: the network chapter compares with them
    busybox-static debootstrap           # root filesystems for the rootfs chapter
    libseccomp-dev                       # the seccomp filter of the hardening chapter
    docker-registry skopeo umoci         # a local registry and OCI images for the pull tests
    shellcheck                           # scripts/test.sh lints the scripts
    chromium chromium-driver python3-selenium # scripts/book-check.py reads the book
    python3                              # the speed page's generator (and scripts/bench.sh)
    podman conmon runc catatonit         # podman drives chapter 08's runtime (its tests)
    containerd                           # so does containerd, with ctr and its runc shim
    golang-github-opencontainers-specs-dev python3-jsonschema # ch08 state against the spec's schema
)
# scripts/bench.sh (not run in CI) and the peers it times.
BENCH_PACKAGES=(hyperfine podman runc crun catatonit)

user=$(id -un)
usage() {
    echo "usage: scripts/provision.sh [--user LOGIN] [--bench]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --user)
        [ -n "${2:-}" ] || usage
        user=$2
        shift
        ;;
    --bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
    *) usage ;;
    esac
    shift
done
home=$(getent passwd "$user" | cut -d: -f6)
# cargo's builds take minutes: on a terminal, its progress bar shows them;
# elsewhere (CI's log) it stays quiet.
cargo_quiet=(--quiet)
[ -t 2 ] && cargo_quiet=()

# Run a command as the login user, with their ~/.cargo/bin on PATH.
as_user() {
    if [ "$user" = "$(id -un)" ]; then
        "$@"
    else
        runuser -u "$user" -- env HOME="$home" PATH="$home/.cargo/bin:$PATH" "$@"
    fi
}

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
    if ! as_user sh -c 'command -v cargo' >/dev/null; then
        step "installing Rust for $user with rustup (the official installer)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            as_user sh -s -- -y --profile minimal --component rustfmt,clippy
    fi
    if as_user sh -c 'command -v rustup' >/dev/null; then
        as_user cargo fmt --version >/dev/null 2>&1 || as_user rustup component add rustfmt
        as_user cargo clippy --version >/dev/null 2>&1 || as_user rustup component add clippy
    fi
}

install_mdbook() {
    if [ "$(as_user mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
        step "cargo install mdbook $MDBOOK_VERSION"
        as_user cargo install --locked "${cargo_quiet[@]}" mdbook --version "$MDBOOK_VERSION"
    fi
}

install_svgbob() {
    if [ "$(as_user svgbob_cli --version 2>/dev/null)" != "svgbob $SVGBOB_VERSION" ]; then
        step "cargo install svgbob_cli $SVGBOB_VERSION (a few minutes)"
        as_user cargo install --locked "${cargo_quiet[@]}" svgbob_cli --version "$SVGBOB_VERSION"
    fi
}

install_packages
install_rust
install_mdbook
install_svgbob
step "building the chapters (as $user)"
as_user cargo build "${cargo_quiet[@]}" --workspace
echo "provision done for $user: $(as_user cargo --version), $(as_user mdbook --version)"
