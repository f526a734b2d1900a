#!/usr/bin/env bash
# The reliability suite (issue 16; the book's page "How we know it holds"):
# builds the workspace, then runs `pfs-stress` as root (through sudo if
# needed): many containers and pods at once, the runtime killed at each step,
# broken pulls, and after each part the host compared with a snapshot taken
# before it. Prints one table of figures; fails on any failure or leftover.
#
#   scripts/stress.sh             every part: load faults pulls pods
#   scripts/stress.sh load pods   only these parts
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step "cargo build --workspace"
cargo build --quiet --workspace
target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)

step "pfs-stress $*"
started=$(date +%s)
status=0
as_root "$target/debug/pfs-stress" "$@" || status=$?
echo "stress: took $(($(date +%s) - started)) s"
exit "$status"
