#!/usr/bin/env bash
# Speed, side by side with the standard tools, in one hyperfine run per row,
# and the ratio of the medians. A benchmark, not a test: numbers depend on the
# machine; the ratios are what to compare. Not run in CI.
#
#   scripts/bench.sh             every row
#   scripts/bench.sh ch05 pod    only the rows whose name contains ch05 or pod
#   RUNS=50 scripts/bench.sh     timed runs per row (default 300); the slow
#                                rows (image pull, podman pods) take SLOW_RUNS
#                                (default 10) runs after 2 warm-ups
#   scripts/bench.sh --json FILE [ROW...]
#                                also write the results to FILE: each row's
#                                commands with their median and spread, the
#                                ratios, the runs, and the machine and date
#                                (scripts/speed-page.py draws the book's
#                                "How fast is it" page from it)
#
# The rows (ours first, then the tool(s) that do the same job):
#   ch02             ch02 run                  unshare(1)
#   ch03             ch03 run on the bridge    the same steps with ip(8)
#   ch04-crun        ch04 run (busybox)        crun on the same rootfs
#   ch04-runc        ch04 run (busybox)        runc on the same rootfs
#   ch04-pull        ch04 pull (Debian image)  curl | tar xz; skopeo copy + umoci unpack
#   ch05-crun        ch05 run with limits      crun with the same limits
#   ch05-runc        ch05 run with limits      runc with the same limits
#   ch07-run         ch07 run (hardened)       crun and runc, hardened alike
#   ch06-pod-create  pod create + 3 sleeps     podman pod create + 3 podman run -d
#   ch06-pod-rm      pod rm                    podman pod rm -f
#   ch06-pause-rss   memory of our pause       catatonit -P (podman's pause)
#   ch08-podman      podman run --rm, ch08     the same with runc, with crun
#   ch08-bundle      ch08 run of a bundle      runc run, crun run (same bundle)
#
# The ch08 rows time `ch08` (target/release/ch08) as the OCI runtime, or the
# runtime named by PFS_BENCH_OCI_RUNTIME (e.g. /usr/sbin/runc, to try the
# rows themselves: then "ours" is that runtime).
#
# Needs root (it asks sudo), the peers (scripts/provision.sh --bench installs
# them: hyperfine, runc, crun, catatonit, podman, docker-registry, skopeo, umoci),
# and for ch04-pull a debootstrapped Debian, which it builds once into the
# tests' cache (from the machine's apt mirror). Everything else is local, in a
# throwaway network and mount namespace, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

RUNS=${RUNS:-300}
SLOW_RUNS=${SLOW_RUNS:-10}
bin=$PWD/target/release
json=${PFS_BENCH_JSON:-}
if [ "${1:-}" = --json ]; then
    [ -n "${2:-}" ] || { echo "usage: scripts/bench.sh [--json FILE] [ROW...]" >&2; exit 2; }
    json=$(realpath -m "$2")
    shift 2
fi
filters=("$@")

# selected ROW...: was one of these rows asked for (all are, by default)?
selected() {
    local row filter
    [ ${#filters[@]} -eq 0 ] && return 0
    for row; do
        for filter in "${filters[@]}"; do
            [[ $row == *"$filter"* ]] && return 0
        done
    done
    return 1
}

# need TOOL...: stop early, saying what to install, when a tool is missing.
need() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null ||
            { echo "bench: $tool is missing (scripts/provision.sh --bench installs it)" >&2; exit 1; }
    done
}

# Part one, as yourself: build, find or make the Debian root filesystem (it
# needs the apt mirror, which the sandbox cannot reach), then run this script
# again as root in a sandbox: a new network namespace (only its own loopback:
# the host's network is never touched, and every port is free) and a private
# mount namespace (every mount made below vanishes with it).
if [ "${PFS_BENCH_SANDBOX:-}" != 1 ]; then
    need hyperfine python3
    cargo build --quiet --release --workspace
    debian=
    if selected ch04-pull; then
        debian=$(as_root env PFS_DATA_DIR="${PFS_TEST_DATA_DIR:-/var/cache/pods-from-scratch/test-data}" \
            "$bin/ch04" rootfs debootstrap)
        # stdout is the path alone (debootstrap's log goes to stderr).
        [ -d "$debian" ] || { echo "bench: ch04 rootfs debootstrap gave no directory: $debian" >&2; exit 1; }
    fi
    as_root env PFS_BENCH_SANDBOX=1 PFS_BENCH_DEBIAN="$debian" RUNS="$RUNS" SLOW_RUNS="$SLOW_RUNS" \
        PFS_BENCH_OCI_RUNTIME="${PFS_BENCH_OCI_RUNTIME:-}" PFS_BENCH_JSON="$json" \
        unshare --net --mount --propagation private bash scripts/bench.sh "$@"
    exit
fi

# Part two, as root in the sandbox.
ip link set lo up
results=$(mktemp -d /tmp/pfs-bench.XXXXXX)
mkdir "$results/fast"
mount -t tmpfs pfs-bench "$results/fast" # for what must not be slowed by the disk
# Our chapters keep their state and data in the temporary directory too.
export PFS_STATE_DIR=$results/state PFS_DATA_DIR=$results/data
# skopeo and podman keep a cache under /var/lib/containers: in the sandbox it
# is a throwaway tmpfs (made, and removed at the end, if the host has none).
made_containers_dir=
if [ ! -d /var/lib/containers ]; then
    mkdir /var/lib/containers
    made_containers_dir=1
fi
mount -t tmpfs pfs-bench /var/lib/containers

registry_pid='' catatonit_pid='' podman_cgroups=''
cleanup() {
    set +e
    for pid in $registry_pid $catatonit_pid; do
        kill "$pid" 2>/dev/null
    done
    wait
    for pod in pfsbench pfsbench-rss; do
        if "$bin/ch06" pod ls 2>/dev/null | grep -q "^$pod "; then
            "$bin/ch06" pod rm -t 0 "$pod" >/dev/null
        fi
    done
    if [ -n "$podman_cgroups" ]; then
        podman pod rm --all --force --time 0 >/dev/null
        # With cgroupfs, podman leaves its parent group, and in two
        # hierarchies each pod's group: remove those it made here.
        comm -13 "$podman_cgroups" <(libpod_cgroups) | sort -r | xargs -r rmdir
    fi
    findmnt -rn -o TARGET | grep "^$results/" | sort -r | xargs -r umount
    umount /var/lib/containers
    [ -z "$made_containers_dir" ] || rmdir /var/lib/containers
    rm -rf "$results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cgroup directories of podman's parent group, in every hierarchy.
libpod_cgroups() {
    find /sys/fs/cgroup -type d -path '*/libpod_parent*' | sort
}

# crun refuses this kind of host (cgroup v1 with a cgroup2 mount beside,
# "hybrid": see the shared notes) unless the cgroup2 mount is out of its
# sight. Its rows run hyperfine in a mount namespace of its own where that
# mount is gone: both sides then run without a wrapper of their own.
hide_cgroup2=()
if mountpoint -q /sys/fs/cgroup/unified; then
    hide_cgroup2=(unshare --mount sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh)
fi

# compare NAME [OPTION...] -- OURS THEIRS...: time the commands in one
# hyperfine run, print their medians and the ratio ours/theirs for each of
# theirs. Options: --slow (SLOW_RUNS runs, 2 warm-ups), --hide-cgroup2 (for
# crun, above), and hyperfine's --setup CMD (once before each command's runs)
# and --prepare CMD (before every run: once for all, or once per command).
compare() {
    local name=$1 runs=$RUNS warmup=20 options=() wrapper=()
    shift
    while [ "$1" != -- ]; do
        case $1 in
        --slow) runs=$SLOW_RUNS warmup=2 ;;
        --hide-cgroup2) wrapper=("${hide_cgroup2[@]}") ;;
        *) options+=("$1" "$2") && shift ;;
        esac
        shift
    done
    shift
    selected "$name" || return 0
    step "$name"
    if ! "${wrapper[@]}" hyperfine --shell=none --warmup "$warmup" --runs "$runs" \
        --style basic --export-json "$results/$name.json" "${options[@]}" "$@" \
        >/dev/null 2>"$results/$name.err"; then
        cat "$results/$name.err" >&2
        return 1
    fi
    python3 - "$results/$name.json" "$results" "$bin" "$name" "$runs" <<'PY'
import json, statistics, sys
path, tmp, bin, row, runs = sys.argv[1:]
results = json.load(open(path))["results"]
median = [statistics.median(r["times"]) * 1000 for r in results]
name = [r["command"].replace(bin, "target/release").replace(tmp, "$tmp") for r in results]
for m, command in zip(median, name):
    print(f"  {m:9.2f} ms  {command}")
for m, command in zip(median[1:], name[1:]):
    against = f"  (ours / {command})" if len(results) > 2 else ""
    print(f"  ratio {median[0] / m:.2f}x{against}")
# The row for --json, one line of rows.jsonl: times in milliseconds.
def spread(times):
    ms = sorted(t * 1000 for t in times)
    q1, _, q3 = statistics.quantiles(ms, n=4) if len(ms) > 1 else (ms[0],) * 3
    return {"min": ms[0], "q1": q1, "q3": q3, "max": ms[-1],
            "stddev": statistics.stdev(ms) if len(ms) > 1 else 0.0}
commands = [{"command": c, "median": m, **spread(r["times"])}
            for c, m, r in zip(name, median, results)]
with open(f"{tmp}/rows.jsonl", "a") as out:
    print(json.dumps({"row": row, "unit": "ms", "runs": int(runs), "commands": commands,
                      "ratios": [median[0] / m for m in median[1:]]}), file=out)
PY
}

# make_bundle DIR ROOTFS [MEMORY PIDS]: an OCI bundle for runc and crun
# running /bin/true in ROOTFS, with memory (bytes; no swap beyond it) and
# pids limits if given, as `ch05 run --memory --pids` sets them.
make_bundle() {
    mkdir -p "$1"
    (cd "$1" && runc spec)
    python3 - "$1/config.json" "${@:2}" <<'PY'
import json, sys
path, rootfs, *limits = sys.argv[1:]
config = json.load(open(path))
config["root"] = {"path": rootfs, "readonly": True}
config["process"]["args"] = ["/bin/true"]
config["process"]["terminal"] = False
if limits:
    memory, pids = map(int, limits)
    resources = config["linux"].setdefault("resources", {})
    resources["memory"] = {"limit": memory, "swap": memory}
    resources["pids"] = {"limit": pids}
json.dump(config, open(path, "w"))
PY
}

# The busybox root filesystem (chapter 04's default) that every row uses.
rootfs=$("$bin/ch04" rootfs busybox)

# ch02: namespaces and /proc, against unshare(1) doing the same.
compare ch02 -- \
    "$bin/ch02 run -- /bin/true" \
    "unshare --fork --pid --mount-proc --uts --ipc --mount /bin/true"

# ch03: a container on the bridge, against the same steps with iproute2. The
# setup (one run of ours) creates the bridge that the script plugs into.
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
compare ch03 --setup "$bin/ch03 run -- /bin/true" -- \
    "$bin/ch03 run -- /bin/true" \
    "sh $results/iproute2.sh"

# ch04: a container in the busybox rootfs, against runc and crun running the
# same rootfs from an OCI bundle.
if selected ch04-crun ch04-runc; then
    need runc crun
    make_bundle "$results/bundle" "$rootfs"
fi
compare ch04-crun --hide-cgroup2 -- \
    "$bin/ch04 run --net none -- /bin/true" \
    "crun run --bundle $results/bundle pfsbench"
compare ch04-runc -- \
    "$bin/ch04 run --net none -- /bin/true" \
    "runc run --bundle $results/bundle pfsbench"

# ch04-pull: pulling and unpacking a Debian minbase image (one layer, about
# 7,000 files) from a registry on the sandbox's loopback, into a tmpfs: the
# host's disk would slow every unpacker alike and hide the differences.
#   - the image: GNU tar makes the layer from the debootstrapped rootfs and
#     `umoci raw add-layer` adds it as it is (umoci's own layers hold tar
#     streams that GNU tar rejects); skopeo pushes it to docker-registry;
#   - ours: `ch04 pull` into an empty data directory (blobs cache included);
#   - curl | tar xz: the layer's blob, downloaded and unpacked, nothing else;
#   - skopeo copy (to an OCI layout) + umoci unpack: what a podman-like
#     tool does.
# --prepare empties each command's target before its every run: no run finds
# a cache. Then the three trees the last runs left are compared.
image=$results/fast/image registry=127.0.0.1:5000 pulls=$results/fast/pull
if selected ch04-pull; then
    need docker-registry skopeo umoci curl
    mkdir "$image"
    tar -C "$PFS_BENCH_DEBIAN" --numeric-owner -cf "$image/layer.tar" .
    umoci init --layout "$image/oci"
    umoci new --image "$image/oci:minbase"
    umoci raw add-layer --image "$image/oci:minbase" "$image/layer.tar"
    rm "$image/layer.tar"
    layer=$(python3 - "$image/oci" <<'PY'
import json, sys
layout = sys.argv[1]
def blob(digest):
    return json.load(open(f"{layout}/blobs/{digest.replace(':', '/')}"))
manifest = blob(json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"])
print(manifest["layers"][0]["digest"])
PY
    )
    cat >"$image/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $image/registry
http:
  addr: $registry
YML
    docker-registry serve "$image/registry.yml" >"$results/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
        curl -sf "http://$registry/v2/" >/dev/null && break
        sleep 0.1
    done
    skopeo copy --quiet --dest-tls-verify=false "oci:$image/oci:minbase" \
        "docker://$registry/debian:minbase"
    cat >"$results/curl-tar.sh" <<SH
set -e
curl -sf http://$registry/v2/debian/blobs/$layer | tar xz -C $pulls/tar
SH
    cat >"$results/skopeo-umoci.sh" <<SH
set -e
skopeo copy --quiet --src-tls-verify=false docker://$registry/debian:minbase oci:$pulls/oci:minbase
umoci unpack --image $pulls/oci:minbase $pulls/bundle
SH
fi
compare ch04-pull --slow --prepare "rm -rf $pulls/ours" \
    --prepare "sh -c 'rm -rf $pulls/tar && mkdir -p $pulls/tar'" \
    --prepare "rm -rf $pulls/oci $pulls/bundle" -- \
    "env PFS_DATA_DIR=$pulls/ours $bin/ch04 pull $registry/debian:minbase" \
    "sh $results/curl-tar.sh" \
    "sh $results/skopeo-umoci.sh"
# listing DIR: a line per entry (type, mode, owner, size of files, path),
# device nodes left out: ours skips them (a container's /dev is made anew).
listing() {
    (cd "$1" && find . \( -type b -o -type c \) -prune -o \
        -type d -printf '%y %m %U:%G %p\n' -o -printf '%y %m %U:%G %s %p\n') | sort
}
if selected ch04-pull; then
    ours_tree=$(find "$pulls/ours/images" -mindepth 2 -maxdepth 2 -name rootfs)
    for tree in "$pulls/tar" "$pulls/bundle/rootfs"; do
        diff <(listing "$ours_tree") <(listing "$tree") >/dev/null ||
            { echo "bench: ch04 pull and ${tree#"$pulls"/} unpacked different trees" >&2; exit 1; }
    done
    echo "  (the three unpacked the same $(listing "$ours_tree" | wc -l) entries)"
fi

# ch05: the same container with a 64 MiB memory limit (no swap beyond it)
# and at most 64 processes, against runc and crun with the same limits in
# their config.json (linux.resources.memory, .pids).
if selected ch05-crun ch05-runc; then
    need runc crun
    make_bundle "$results/bundle-limits" "$rootfs" $((64 << 20)) 64
fi
compare ch05-crun --hide-cgroup2 -- \
    "$bin/ch05 run --net none --rootfs busybox --memory 64M --pids 64 -- /bin/true" \
    "crun run --bundle $results/bundle-limits pfsbench"
compare ch05-runc -- \
    "$bin/ch05 run --net none --rootfs busybox --memory 64M --pids 64 -- /bin/true" \
    "runc run --bundle $results/bundle-limits pfsbench"

# ch07-run: the hardened container, against crun and runc on the same
# rootfs with their default hardening, which `runc spec` writes: the OCI
# masked and read-only paths, a devices list (deny all; the runtimes add
# their default allow-list), /dev/mqueue, /sys/fs/cgroup read-only,
# noNewPrivileges. It keeps only 3 capabilities and has no seccomp
# profile: both are set as ours, Docker's 14 capabilities and a profile
# refusing with EPERM the syscalls chapter 07's default profile refuses
# (clone with CLONE_NEWUSER too; clone3 gets ENOSYS). The hyperfine run
# hides the cgroup2 mount for crun (above): ch07 and runc run so too.
if selected ch07-run; then
    need runc crun
    make_bundle "$results/bundle-hardened" "$rootfs"
    python3 - "$results/bundle-hardened/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
caps = ["CAP_" + c for c in """CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP""".split()]
config["process"]["capabilities"] = {s: caps for s in ("bounding", "effective", "permitted")}
blocked = """mount umount2 pivot_root fsopen fsmount move_mount open_tree unshare setns
    keyctl add_key request_key init_module finit_module delete_module kexec_load
    kexec_file_load bpf perf_event_open lookup_dcookie syslog iopl ioperm
    open_by_handle_at name_to_handle_at reboot swapon swapoff acct quotactl vhangup
    nfsservctl settimeofday clock_settime clock_adjtime adjtimex ptrace
    process_vm_readv process_vm_writev userfaultfd""".split()
eperm, enosys, new_user = 1, 38, 0x10000000
refuse = {"action": "SCMP_ACT_ERRNO", "errnoRet": eperm}
config["linux"]["seccomp"] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": blocked, **refuse},
        {"names": ["clone"], **refuse, "args": [
            {"index": 0, "value": new_user, "valueTwo": new_user, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": enosys},
    ],
}
json.dump(config, open(path, "w"))
PY
fi
compare ch07-run --hide-cgroup2 -- \
    "$bin/ch07 run --net none --rootfs busybox -- /bin/true" \
    "crun run --bundle $results/bundle-hardened pfsbench" \
    "runc run --bundle $results/bundle-hardened pfsbench"

# setup_podman: podman as the shared notes say (runc, cgroupfs, events in a
# file, ulimits it may set), its storage and state in the temporary
# directory, and the busybox rootfs as its only image, $busybox_image
# (details below, at the ch06 rows). Once for all the rows that use it.
podman_dir=$results/podman busybox_image=localhost/pfsbench-busybox
setup_podman() {
    [ ! -d "$podman_dir" ] || return 0
    need podman skopeo umoci
    mkdir "$podman_dir"
    podman_cgroups=$results/libpod-cgroups
    libpod_cgroups >"$podman_cgroups"
    cat >"$podman_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$podman_dir/tmp"
CONF
    cat >"$podman_dir/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$podman_dir/root"
runroot = "$podman_dir/run"
CONF
    export CONTAINERS_CONF=$podman_dir/containers.conf
    export CONTAINERS_STORAGE_CONF=$podman_dir/storage.conf
    umoci init --layout "$podman_dir/oci"
    umoci new --image "$podman_dir/oci:busybox"
    umoci insert --image "$podman_dir/oci:busybox" "$rootfs" /
    skopeo copy --quiet "oci:$podman_dir/oci:busybox" "containers-storage:$busybox_image"
}

# ch06-pod-create and ch06-pod-rm: a pod with three detached `sleep`
# containers, against podman doing the same. Podman is set up as the shared
# notes say (runc, cgroupfs, events in a file, ulimits it may set), with its
# storage and state in the temporary directory, and the busybox rootfs as
# its only image: made with umoci in an OCI layout, copied by skopeo into
# podman's storage under a name of ours (`podman pull oci:DIR` would name it
# after DIR), and never pulled (`--pull=never`).
# Its pod has no network (`--network none`); ours gets its address on the
# sandbox's bridge. The create row removes the pod before each run, the rm
# row creates it before each run (--prepare, once per command).
if selected ch06-pod-create ch06-pod-rm; then
    setup_podman

    cat >"$results/ours-pod-create.sh" <<SH
set -e
$bin/ch06 pod create pfsbench
for name in a b c; do
    $bin/ch06 pod run --detach --name \$name pfsbench -- sleep 1000
done
SH
    cat >"$results/ours-pod-gone.sh" <<SH
if $bin/ch06 pod ls | grep -q '^pfsbench '; then
    $bin/ch06 pod rm -t 0 pfsbench
fi
SH
    cat >"$results/podman-pod-create.sh" <<SH
set -e
podman pod create --network none --name pfsbench
for name in a b c; do
    podman run --detach --pull=never --pod pfsbench --name pfsbench-\$name $busybox_image sleep 1000
done
SH
    cat >"$results/podman-pod-gone.sh" <<SH
if podman pod exists pfsbench; then
    podman pod rm --force --time 0 pfsbench
fi
SH
fi
compare ch06-pod-create --slow \
    --prepare "sh $results/ours-pod-gone.sh" --prepare "sh $results/podman-pod-gone.sh" -- \
    "sh $results/ours-pod-create.sh" \
    "sh $results/podman-pod-create.sh"
if selected ch06-pod-create; then
    sh "$results/ours-pod-gone.sh" >/dev/null
    sh "$results/podman-pod-gone.sh" >/dev/null
fi
compare ch06-pod-rm --slow \
    --prepare "sh $results/ours-pod-create.sh" --prepare "sh $results/podman-pod-create.sh" -- \
    "$bin/ch06 pod rm -t 0 pfsbench" \
    "podman pod rm --force --time 0 pfsbench"

# ch06-pause-rss: the resident memory (VmRSS in /proc/PID/status) of the
# pause of a running pod of ours, and of catatonit -P, the pause of podman's
# pods, started beside it as PID 1 of a PID namespace, as in a pod.
rss() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
if selected ch06-pause-rss; then
    need catatonit
    step ch06-pause-rss
    "$bin/ch06" pod create pfsbench-rss >/dev/null
    pause=$("$bin/ch06" pod ls | awk '$1 == "pfsbench-rss" { print $3 }')
    unshare --pid --fork --kill-child catatonit -P &
    unshare_pid=$!
    for _ in $(seq 100); do # until unshare's child has become catatonit
        catatonit_pid=$(pgrep -P "$unshare_pid" || true)
        [ "$(cat "/proc/$catatonit_pid/comm" 2>/dev/null)" = catatonit ] && break
        sleep 0.05
    done
    ours_kb=$(rss "$pause") theirs_kb=$(rss "$catatonit_pid")
    printf '  %9d kB  pause of ch06 pod create (PID %s)\n' "$ours_kb" "$pause"
    printf '  %9d kB  catatonit -P (PID %s)\n' "$theirs_kb" "$catatonit_pid"
    python3 -c "import sys; print(f'  ratio {int(sys.argv[1]) / int(sys.argv[2]):.2f}x')" \
        "$ours_kb" "$theirs_kb"
    python3 - "$ours_kb" "$theirs_kb" >>"$results/rows.jsonl" <<'PY'
import json, sys
ours, theirs = map(int, sys.argv[1:])
def one(command, label, kb):
    return {"command": command, "label": label, "median": kb, "min": kb, "q1": kb, "q3": kb,
            "max": kb, "stddev": 0.0}
print(json.dumps({"row": "ch06-pause-rss", "unit": "kB", "runs": 1,
                  "commands": [one("pause of ch06 pod create", "our pause", ours),
                               one("catatonit -P", "catatonit -P", theirs)],
                  "ratios": [ours / theirs]}))
PY
    "$bin/ch06" pod rm -t 0 pfsbench-rss >/dev/null
    kill "$catatonit_pid" # SIGTERM: catatonit exits, and unshare with it
    wait "$unshare_pid"
    catatonit_pid=''
fi

# ch08-podman: `podman run --rm` of the busybox image (setup_podman), the
# container made by ch08, against runc and crun: the same podman, conmon and
# image; only `--runtime` differs. crun needs the cgroup2 mount hidden on
# this kind of host (above): the row runs so for all three.
ours_runtime=${PFS_BENCH_OCI_RUNTIME:-$bin/ch08}
podman_run="run --rm --network none --pull=never $busybox_image /bin/true"
if selected ch08-podman; then
    need podman skopeo umoci runc crun
    setup_podman
fi
compare ch08-podman --slow --hide-cgroup2 -- \
    "podman --runtime $ours_runtime $podman_run" \
    "podman --runtime $(command -v runc) $podman_run" \
    "podman --runtime $(command -v crun) $podman_run"

# ch08-bundle: one bundle (the busybox rootfs, /bin/true, `runc spec`'s
# defaults) made, started, waited for and deleted: `run` does the four, in
# ch08 as in runc and crun, and leaves nothing to delete. The cgroup2 mount
# is hidden for crun, so for all three.
if selected ch08-bundle; then
    need runc crun
    make_bundle "$results/bundle-oci" "$rootfs"
fi
compare ch08-bundle --hide-cgroup2 -- \
    "$ours_runtime run --bundle $results/bundle-oci pfsbench" \
    "runc run --bundle $results/bundle-oci pfsbench" \
    "crun run --bundle $results/bundle-oci pfsbench"

# --json FILE: the rows, and the machine and date they were measured on.
if [ -n "$json" ]; then
    if mountpoint -q /sys/fs/cgroup/unified; then
        cgroup="v1 (hybrid: cgroup2 mounted beside)"
    elif [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        cgroup=v2
    else
        cgroup=v1
    fi
    python3 - "$results/rows.jsonl" "$json" "$cgroup" "$RUNS" "$SLOW_RUNS" <<'PY'
import datetime, json, os, platform, sys
rows_path, out, cgroup, runs, slow_runs = sys.argv[1:]
rows = [json.loads(line) for line in open(rows_path)] if os.path.exists(rows_path) else []
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), platform.machine())
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
                "cgroup": cgroup},
    "settings": {"RUNS": int(runs), "SLOW_RUNS": int(slow_runs)},
    "rows": rows,
}
with open(out, "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
print(f"\nbench: {len(rows)} rows written to {out}")
PY
fi
