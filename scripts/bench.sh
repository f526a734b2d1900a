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

# Rows run in a throwaway network and mount namespace of their own, so the
# bridge, veths and `ip netns` mounts never reach the host.
sandbox=(unshare --net --mount --propagation private)

# compare NAME OURS THEIRS [SETUP]: time both commands in one hyperfine run
# (in the sandbox), print their medians and the ratio ours/theirs.
compare() {
    local name=$1 ours=$2 theirs=$3 setup=${4:-true}
    step "$name"
    as_root "${sandbox[@]}" hyperfine --shell=none --setup "$setup" --warmup 20 \
        --runs "$RUNS" --style basic --export-json "$results/$name.json" \
        "$ours" "$theirs" >/dev/null
    python3 - "$results/$name.json" <<'PY'
import json, statistics, sys
ours, theirs = json.load(open(sys.argv[1]))["results"]
m = [statistics.median(r["times"]) * 1000 for r in (ours, theirs)]
print(f"  {m[0]:7.2f} ms  {ours['command']}")
print(f"  {m[1]:7.2f} ms  {theirs['command']}")
print(f"  ratio {m[0] / m[1]:.2f}x")
PY
}

# ch02: namespaces and /proc, against unshare(1) doing the same.
compare ch02 \
    "$bin/ch02 run -- /bin/true" \
    "unshare --fork --pid --mount-proc --uts --ipc --mount /bin/true"

# ch03: a container on the bridge, against the same steps with iproute2.
cat >"$results/iproute2.sh" <<'SH'
set -e
ip netns add pfsbench
ip link add pfsbh type veth peer name pfsbc
ip link set pfsbc netns pfsbench
ip link set pfsbh master pfs0 up
ip -n pfsbench addr add 10.200.0.250/24 dev pfsbc
ip -n pfsbench link set pfsbc up
ip -n pfsbench link set lo up
ip -n pfsbench route add default via 10.200.0.1
ip netns exec pfsbench /bin/true
ip link del pfsbh
ip netns del pfsbench
SH
compare ch03 \
    "$bin/ch03 run -- /bin/true" \
    "sh $results/iproute2.sh" \
    "$bin/ch03 run -- /bin/true" # first: creates the bridge the script uses

# ch04: a container in the busybox rootfs, against runc and crun running the
# same rootfs (crun refuses hybrid cgroup hosts unless the cgroup2 mount is
# hidden from it, in a mount namespace of its own: see shared notes).
rootfs=$(PFS_DATA_DIR="$results/data" as_root "$bin/ch04" rootfs busybox)
mkdir -p "$results/bundle"
(cd "$results/bundle" && runc spec)
python3 - "$results/bundle/config.json" "$rootfs" <<'PY'
import json, sys
path, rootfs = sys.argv[1:]
config = json.load(open(path))
config["root"] = {"path": rootfs, "readonly": True}
config["process"]["args"] = ["/bin/true"]
config["process"]["terminal"] = False
json.dump(config, open(path, "w"))
PY
crun_run="crun run --bundle $results/bundle pfsbench"
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    crun_run="unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec $crun_run'"
fi
compare ch04-crun \
    "env PFS_DATA_DIR=$results/data $bin/ch04 run --net none -- /bin/true" \
    "$crun_run"
compare ch04-runc \
    "env PFS_DATA_DIR=$results/data $bin/ch04 run --net none -- /bin/true" \
    "runc run --bundle $results/bundle pfsbench"
