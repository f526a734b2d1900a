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
# Then every line is made to fit the book's column (fit(), below).
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
    # (Not the commands, which fit() will show: the lines marked with \001.)
    sed -E -e '/^\x01/b' -e "s/^$host_name\$/<host>/" -e "s/\\b$host_init\\b/<host's PID 1>/g" \
        -e "s#$state#/run/pods-from-scratch#g" -e "s#$data#/var/lib/pods-from-scratch#g" \
        -e 's/(pfsh|-)[0-9a-f]{8}\b/\1<id>/g' \
        -e 's/^([a-z0-9_.-]+ +)[0-9a-f]{8} +[0-9]+ +/\1<id>     <pid>    /' \
        -e 's/(pfsh|pfs_|containers\/|pods-from-scratch\/|NET_NS_PID=|netns |\/proc\/|<id> to )[0-9]+/\1<pid>/g' \
        -e 's/^( *"pid": )[0-9]+/\1<pid>/' -e 's/^( *"created": ")[0-9TZ:-]+"/\1<time>"/' |
        # --explain pads its first column: pad it again after the changes.
        awk '/^\[(parent|child )\] / && i = index($0, " ~ ") {
            left = substr($0, 1, i - 1); sub(/ +$/, "", left)
            printf "%-61s ~ %s\n", left, substr($0, i + 3); next
        } { print }'
}

# Fit the book's column (WIDTH characters, `cargo xtask book-width`). A
# command (marked by a leading \001) is folded outside quotes with a
# backslash-newline, after a `;`, `&&` or `|`, else before ` -- ` or an
# option, else at a space, so that it stays a command a reader can paste.
# --explain's "call ~ shell" lines too wide for one line put the shell
# equivalent on the next; other long lines are folded at a space, their
# continuation indented (what a terminal that narrow would do, indented).
WIDTH=87
fit() {
    awk -v width=$WIDTH '
    # The last place in s[1..n] where a line may end, by preference.
    # (Not inside quotes or $(...), a late break rather than a short line;
    # if none fits, after a `;` or `&&` of a single-quoted script: a newline
    # there is the same to its shell; then "quoted" is set, for no backslash.)
    # The line starts after s[from]: scan s from its start, for the quotes.
    function breaks(s, from, limit,   n, i, c, q, inner, depth, best, rank, r, inside) {
        best = 0; rank = 0; inside = 0; n = length(s); limit += from
        for (i = 1; i <= n; i++) {
            c = substr(s, i, 1)
            if (q == "\"" || inner) { if (c == "\"") { if (inner) inner = 0; else q = "" }; continue }
            if (q == "\047") {
                if (c == "\047") q = ""
                else if (c == "\"") inner = 1
                else if (c == " " && i > from + 1 && i - 1 <= limit && substr(s, i - 1, 1) ~ /[;&]/) inside = i
                continue
            }
            if (c == "\047" || c == "\"") { q = c; continue }
            if (c == "(") depth++
            if (c == ")") depth--
            if (c != " " || depth > 0 || i <= from + 1) continue
            if (i - 1 > limit) break
            r = 1
            if (substr(s, i - 1, 1) ~ /[;|&]/) r = 4
            else if (substr(s, i, 4) == " -- ") r = 3
            else if (substr(s, i + 1, 1) == "-" && substr(s, i - 3, 3) !~ /(^|[ ]).(\[|sh)$/ && substr(s, i - 2, 2) != "sh") r = 2
            if (i - from > (limit - from) / 2) r += 4
            if (r >= rank) { best = i; rank = r }
        }
        quoted = 0
        if (inside > best) { quoted = 1; return inside }
        if (best == 0) { for (; i <= n; i++) if (substr(s, i, 1) == " " && !q) return i }
        return best
    }
    function command(s,   prefix, from, b) {
        prefix = "# "; from = 0
        while (length(prefix) + length(s) - from > width) {
            b = breaks(s, from, width - length(prefix) - 2)
            if (b == 0) break # no break at all: too wide, book-width says
            print prefix substr(s, from + 1, b - from - 1) (quoted ? "" : " \\")
            from = b; prefix = "    "
        }
        print prefix substr(s, from + 1)
    }
    function fold(s, indent,   b, i) {
        while (length(s) > width) {
            b = 0
            for (i = width + 1; i > length(indent) + 1; i--)
                if (substr(s, i, 1) == " ") { b = i; break }
            if (b == 0) { print substr(s, 1, width); s = indent substr(s, width + 1); continue }
            print substr(s, 1, b - 1); s = indent substr(s, b + 1)
        }
        print s
    }
    /^\001/ { command(substr($0, 2)); next }
    length($0) > width && /^\[(parent|child )\] / && i = index($0, " ~ ") {
        left = substr($0, 1, i - 1); sub(/ +$/, "", left)
        fold(left, "             "); fold("         ~ " substr($0, i + 3), "           "); next
    }
    { fold($0, "    ") }'
}

# Run the examples whose names start with one of the prefixes (every
# example when there is none: "${prefixes[@]:-}" is then one empty prefix),
# as root, with the chapters' binaries on PATH, and write each "# COMMAND"
# and its output to FOLDER/NAME.txt. An example's next commands are the
# indented lines under it: one shell runs them in turn, as a reader would.
record() { # FOLDER
    local name command prefix
    grep -v -e '^#' -e '^$' book/examples.txt |
        awk '/^[^ ]/ && NR > 1 { print "" } { sub(/^ +/, ""); printf "%s\n", $0 }' |
        # One example a paragraph: its name and first command, then its next commands.
        while read -r name command; do
            local commands=("$command")
            while IFS= read -r command && [ -n "$command" ]; do commands+=("$command"); done
            for prefix in "${prefixes[@]:-}"; do
                [[ $name == "$prefix"* ]] || continue
                # shellcheck disable=SC2016 # for the inner shell
                as_root env PATH="$PWD/target/debug:$PATH" PFS_STATE_DIR="$state" PFS_DATA_DIR="$data" \
                    unshare --net -- bash -c 'for c; do printf "\001%s\n" "$c"; eval "$c"; done' bash "${commands[@]}" \
                    2>&1 | normalize | fit >"$1/$name.txt"
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
