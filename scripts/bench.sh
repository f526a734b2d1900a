#!/usr/bin/env bash
# Speed, side by side with the standard tools, in one hyperfine run per row,
# and the ratio of the medians. A benchmark, not a test: numbers depend on the
# machine; the ratios are what to compare. Needs root and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

RUNS=${RUNS:-300}
cargo build --quiet --release --workspace
bin=$PWD/target/release
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# compare NAME OURS THEIRS: time both commands, print medians and ours/theirs.
compare() {
    local name=$1 ours=$2 theirs=$3
    step "$name"
    as_root hyperfine --shell=none --warmup 20 --runs "$RUNS" --style basic \
        --export-json "$results/$name.json" "$ours" "$theirs" >/dev/null
    python3 - "$results/$name.json" <<'PY'
import json, statistics, sys
ours, theirs = json.load(open(sys.argv[1]))["results"]
m = [statistics.median(r["times"]) * 1000 for r in (ours, theirs)]
print(f"  {m[0]:7.2f} ms  {ours['command']}")
print(f"  {m[1]:7.2f} ms  {theirs['command']}")
print(f"  ratio {m[0] / m[1]:.2f}x")
PY
}

compare ch02 \
    "$bin/ch02 run -- /bin/true" \
    "unshare --fork --pid --mount-proc --uts --ipc --mount /bin/true"
