#!/usr/bin/env bash
# The demo: the seed's `unshare --fork --pid --mount-proc` story told with
# our own code and --explain, then the latest chapter's: the pod.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cargo build --quiet --workspace
bin=target/debug

show() {
    printf '\n\033[1m# %s\033[0m\n' "$*"
    as_root "$@" || true
}

echo "Chapter 01: a new PID namespace. The shell is PID 1 ..."
show $bin/ch01 run -- sh -c 'echo "my PID is $$"'
echo "... but ps still reads the host's /proc, so it finds the host's PID 1:"
show $bin/ch01 run -- ps -o pid,comm -p 1
echo
echo "Chapter 02: + a mount namespace with a fresh /proc, a hostname, IPC:"
show $bin/ch02 --explain run --hostname box1 -- sh -c 'hostname; sleep 1 & ps -e'
echo
echo "Chapter 06, the latest: the seed's story of the pod, step by step. It runs in"
echo "throwaway namespaces of its own, so nothing it makes touches this machine."
show $bin/ch06 demo
echo
echo "Next: read the book (mdbook serve book)."
