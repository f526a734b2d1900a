#!/usr/bin/env bash
# Run the commands listed in book/examples.txt and record their real output
# under book/src/outputs/, which the book's pages include.
#
#   scripts/book-outputs.sh [NAME...]  on this machine: every example, or those
#                                      whose names start with a NAME (ch05)
#   scripts/book-outputs.sh --vm       the cgroup chapter's examples (ch05-*)
#                                      and chapter 07's device policy ones
#                                      again, in the cgroup v2 VM of
#                                      scripts/vm-test.sh: book/src/outputs/v2/
#   --check (with either)              record into a temporary folder instead,
#                                      and fail if the book's copies differ
#
# This host (and CI) has cgroup v1 "hybrid"; the learners' machines have
# cgroup v2 only, so the cgroup chapter (and chapter 07's device policy)
# shows its examples from both. CI checks the v2 ones in the VM boot that
# runs the tests there: vm-test.sh
# runs this script inside the VM as `book-outputs.sh --in-vm FOLDER` (record
# into FOLDER, with the binaries the host built), then compares FOLDER with
# book/src/outputs/v2/.
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

# The examples recorded in the cgroup v2 VM as well (name prefixes).
VM_EXAMPLES=(ch05- ch07-mknod ch07-devices)

check=false vm=false in_vm=''
while [ $# -gt 0 ]; do
    case $1 in
        --check) check=true ;;
        --vm) vm=true ;;
        --in-vm) in_vm=${2:?--in-vm FOLDER} && shift ;;
        -*) echo "usage: scripts/book-outputs.sh [--check] [--vm | NAME...]" >&2 && exit 2 ;;
        *) break ;;
    esac
    shift
done
prefixes=("$@")
book=book/src/outputs
if $vm || [ -n "$in_vm" ]; then
    prefixes=("${VM_EXAMPLES[@]}")
    book=book/src/outputs/v2
fi

host_name=$(hostname)
host_init=$(cat /proc/1/comm)
normalize() {
    sed -E -e "s/^$host_name\$/<host>/" -e "s/\\b$host_init\\b/<host's PID 1>/g" \
        -e "s#$state#/run/pods-from-scratch#g" -e "s#$data#/var/lib/pods-from-scratch#g" \
        -e 's/(pfsh|-)[0-9a-f]{8}\b/\1<id>/g' \
        -e 's/^([a-z0-9_.-]+ +)[0-9a-f]{8} +[0-9]+ +/\1<id>     <pid>    /' \
        -e 's/(pfsh|pfs_|containers\/|pods-from-scratch\/|NET_NS_PID=|netns |\/proc\/|<id> to )[0-9]+/\1<pid>/g' |
        # --explain pads its first column: pad it again after the changes.
        awk '/^\[(parent|child )\] / && i = index($0, " ~ ") {
            left = substr($0, 1, i - 1); sub(/ +$/, "", left)
            printf "%-61s ~ %s\n", left, substr($0, i + 3); next
        } { print }'
}

# Run the examples whose names start with one of the prefixes (every
# example when there is none: "${prefixes[@]:-}" is then one empty prefix),
# as root, with the chapters' binaries on PATH, and write "# COMMAND" and
# the output to FOLDER/NAME.txt.
record() { # FOLDER
    local name command prefix
    grep -v -e '^#' -e '^$' book/examples.txt | while read -r name command; do
        for prefix in "${prefixes[@]:-}"; do
            [[ $name == "$prefix"* ]] || continue
            {
                echo "# $command"
                as_root env PATH="$PWD/target/debug:$PATH" PFS_STATE_DIR="$state" PFS_DATA_DIR="$data" \
                    unshare --net -- bash -c "$command" 2>&1 | normalize
            } >"$1/$name.txt"
            break
        done
    done
}

state=$(mktemp -d) data=$(mktemp -d) fresh=$(mktemp -d)
chmod 755 "$data" # as /var/lib's: a --userns container's root walks through it
trap 'as_root rm -rf "$state" "$data" "$fresh"' EXIT

# Inside the VM: the host built the binaries, and compares what we record.
if [ -n "$in_vm" ]; then
    record "$in_vm"
    exit 0
fi

if $vm; then
    scripts/vm-test.sh --book-outputs "$fresh" # boots the VM, which runs --in-vm
else
    cargo build --quiet --workspace
    record "$fresh"
fi
recorded=("$fresh"/*.txt)
[ -e "${recorded[0]}" ] || { echo "no example in book/examples.txt is named ${prefixes[*]}..." >&2 && exit 2; }

if ! $check; then
    # The VM's folder holds only its examples: start it afresh.
    if $vm; then rm -rf "$book"; fi
    mkdir -p "$book"
    cp "${recorded[@]}" "$book"/
    echo "recorded ${#recorded[@]} outputs in $book"
    exit 0
fi
# All of a folder's examples were run: the files must be exactly the book's.
# Some of them (NAME...): those must be the same.
stale=false
if $vm || [ ${#prefixes[@]} -eq 0 ]; then
    diff -ru --exclude=v2 "$book" "$fresh" || stale=true
else
    for file in "${recorded[@]}"; do
        diff -u "$book/${file##*/}" "$file" || stale=true
    done
fi
if $stale; then
    again="scripts/book-outputs.sh${*:+ $*}"
    if $vm; then again="scripts/book-outputs.sh --vm"; fi
    echo "the book's outputs are stale: run $again and commit $book" >&2
    exit 1
fi
echo "the book's outputs in $book match a fresh run"
