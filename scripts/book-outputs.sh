#!/usr/bin/env bash
# Run the commands listed in book/examples.txt and record their real output
# under book/src/outputs/, which the book's pages include. With --check,
# record into a temporary folder and fail if the book's copies differ.
#
# What changes from run to run or machine to machine is normalized: the
# host's hostname becomes <host>, the name of the host's PID 1 <host's PID 1>.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

check=false
[ "${1:-}" = --check ] && check=true

cargo build --quiet --workspace
out=book/src/outputs
if $check; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

host_name=$(hostname)
host_init=$(cat /proc/1/comm)
normalize() {
    sed -e "s/^$host_name\$/<host>/" -e "s/\\b$host_init\\b/<host's PID 1>/g"
}

path="$PWD/target/debug:$PATH"
grep -v -e '^#' -e '^$' book/examples.txt | while read -r name command; do
    {
        echo "# $command"
        as_root env PATH="$path" bash -c "$command" 2>&1 | normalize
    } >"$out/$name.txt"
done

if $check; then
    if ! diff -ru book/src/outputs "$out"; then
        echo "the book's outputs are stale: run scripts/book-outputs.sh and commit book/src/outputs" >&2
        exit 1
    fi
    echo "the book's outputs match a fresh run"
fi
