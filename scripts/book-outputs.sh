#!/usr/bin/env bash
# Run the commands listed in book/examples.txt and record their real output
# under book/src/outputs/, which the book's pages include. With --check,
# record into a temporary folder and fail if the book's copies differ.
#
# Each command runs in a network namespace of its own (a throwaway "host"),
# so bridges, veths and rules never touch the real host's network, with
# temporary state and data directories.
#
# What changes from run to run or machine to machine is normalized: the
# host's hostname becomes <host>, the name of the host's PID 1 <host's PID 1>,
# PIDs in names become <pid>, the temporary directories their defaults.
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
fi
mkdir -p "$out"

state=$(mktemp -d)
data=$(mktemp -d)
trap 'as_root rm -rf "$state" "$data"; if $check; then rm -rf "$out"; fi' EXIT

host_name=$(hostname)
host_init=$(cat /proc/1/comm)
normalize() {
    sed -E -e "s/^$host_name\$/<host>/" -e "s/\\b$host_init\\b/<host's PID 1>/g" \
        -e "s#$state#/run/pods-from-scratch#g" -e "s#$data#/var/lib/pods-from-scratch#g" \
        -e 's/(pfs[hc]|-)[0-9a-f]{8}\b/\1<id>/g' \
        -e 's/^([a-z0-9_.-]+ +)[0-9a-f]{8} +[0-9]+ +/\1<id>     <pid>    /' \
        -e 's/(pfs[hc]|pfs_|containers\/|pods-from-scratch\/|NET_NS_PID=|netns |\/proc\/|<id> to )[0-9]+/\1<pid>/g' \
        -e '/cgroup\.procs/ s/"[0-9]+"/"<pid>"/g' |
        # --explain pads its first column: pad it again after the changes.
        awk '/^\[(parent|child )\] / && i = index($0, " ~ ") {
            left = substr($0, 1, i - 1); sub(/ +$/, "", left)
            printf "%-61s ~ %s\n", left, substr($0, i + 3); next
        } { print }'
}

path="$PWD/target/debug:$PATH"
grep -v -e '^#' -e '^$' book/examples.txt | while read -r name command; do
    {
        echo "# $command"
        as_root env PATH="$path" PFS_STATE_DIR="$state" PFS_DATA_DIR="$data" \
            unshare --net -- bash -c "$command" 2>&1 | normalize
    } >"$out/$name.txt"
done

if $check; then
    if ! diff -ru book/src/outputs "$out"; then
        echo "the book's outputs are stale: run scripts/book-outputs.sh and commit book/src/outputs" >&2
        exit 1
    fi
    echo "the book's outputs match a fresh run"
fi
