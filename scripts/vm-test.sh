#!/usr/bin/env bash
# The root integration tests again, inside a Debian 12 VM where systemd runs
# on cgroup v2 only, as on the learners' machines (this host, and so CI, has
# the older cgroup v1 "hybrid" layout).
#
#   scripts/vm-test.sh                  all the workspace's tests, then the
#                                       book's cgroup v2 outputs (below), then
#                                       the reliability suite's load part
#   scripts/vm-test.sh -p ch01 -p ch02  options for `cargo test`, instead of
#                                       --workspace (and no book outputs, no
#                                       load part)
#   scripts/vm-test.sh --load           only the suite's load part
#   PFS_OCI_RUNTIME=/usr/sbin/runc scripts/vm-test.sh -p ch08 --test podman
#                                       chapter 08's podman scenarios (podman,
#                                       conmon and runc are in the image), with
#                                       the runtime they hand podman passed on
#                                       to the guest (default: ch08)
#   scripts/vm-test.sh --book-outputs FOLDER
#                                       no tests: only record the book's cgroup
#                                       v2 outputs into FOLDER (what
#                                       `scripts/book-outputs.sh --vm` runs)
#
# The test programs are built here, on the host, and shared into the guest
# over 9p at the same absolute path: they find the chapters' binaries through
# paths compiled into them (env!("CARGO_BIN_EXE_ch01")). The VM is emulated
# (qemu TCG: KVM here runs only special guest kernels), has no network, and
# writes nothing back to its disk image (-snapshot).
#
# The book's cgroup v2 outputs: after the tests, in the same boot, the guest
# runs `scripts/book-outputs.sh --in-vm /job/book` (its VM_EXAMPLES, the
# cgroup examples, with the binaries built here), and this script compares the
# files with book/src/outputs/v2/, failing if they differ: so CI checks them
# without a second boot.
#
# The load part (`pfs-stress load`, see scripts/stress.sh): 200 runs of
# chapters 04 to 07 on cgroup v2. pfs-stress and the chapters' binaries are
# copied into the job folder (pfs-stress runs the binaries next to itself).
#
# Environment: PFS_VM_CACHE (image cache folder), PFS_VM_TIMEOUT (default 20m).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

TIMEOUT=${PFS_VM_TIMEOUT:-20m}
# What to do with the book's cgroup v2 outputs: check them, record them
# into a folder (and run no tests), or nothing.
# And whether to run the suite's load part.
book=check cargo_args=(--workspace) load=true
if [ "${1:-}" = --book-outputs ]; then
    book=record record_into=${2:?--book-outputs FOLDER} cargo_args=() load=false
elif [ "${1:-}" = --load ]; then
    book=none cargo_args=()
elif [ $# -gt 0 ]; then
    book=none cargo_args=("$@") load=false
fi

install_vm_tools
step "the VM image (built once, then cached)"
image=$(as_root env ${PFS_VM_CACHE:+PFS_VM_CACHE="$PFS_VM_CACHE"} scripts/vm-image.sh)
echo "$image"

# Everything this run makes goes in one folder, removed on exit, error or
# Ctrl-C, after qemu (if still running) has been stopped.
job=$(mktemp -d /tmp/pfs-vm-test.XXXXXX)
qemu='' console=''
cleanup() {
    local pid
    for pid in $qemu $console; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$job"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

touch "$job/tests"
if [ ${#cargo_args[@]} -gt 0 ]; then
    step "building the test programs: cargo test --no-run ${cargo_args[*]}"
    cargo test --quiet --no-run --message-format=json "${cargo_args[@]}" >"$job/cargo.json"
    # One line per test program: its path, and its package's folder (cargo
    # runs each test program from there).
    jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
           | [.executable, (.manifest_path | rtrimstr("/Cargo.toml"))] | @tsv' \
        "$job/cargo.json" >"$job/tests"
    echo "$(wc -l <"$job/tests") test programs"
fi
if [ "$book" != none ] || $load; then
    step "building the chapters (for the book's examples and the load part)"
    cargo build --quiet --workspace
fi
if [ "$book" != none ]; then
    mkdir "$job/book" # the guest records them in it
fi
if $load; then
    target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
    mkdir "$job/stress"
    cp "$target"/debug/{pfs-stress,ch04,ch05,ch06,ch07} "$job/stress/"
fi

# The chapters' tests keep what they download (a debootstrapped Debian ...)
# in a test data cache. The VM has no network: it gets a copy of the host's
# cache (filled by the host's test run) as a second disk, mounted at the same
# path. (Copying the files over 9p in the guest takes minutes; this, seconds.)
data=${PFS_TEST_DATA_DIR:-/var/cache/pods-from-scratch/test-data}
data_disk=()
if [ -d "$data" ] && [ -s "$job/tests" ]; then
    as_root mkfs.ext4 -q -d "$data" "$job/data.img" 8G >/dev/null # sparse: only the data takes room
    data_disk=(-drive "file=$job/data.img,if=virtio,format=raw")
fi

# What the guest runs (as root, from the job unit of scripts/vm-image.sh).
cat >"$job/run.sh" <<EOF
set -u
export TERM=dumb # plain test output: the serial console is a terminal, our log is not
export HOME=/root # a systemd service has none; scripts/lib.sh uses it
export PFS_TEST_DATA_DIR='$data'
export PFS_OCI_RUNTIME='${PFS_OCI_RUNTIME:-}' # empty: ch08 (see testkit::oci::runtime)
export PFS_TEST_TIME_FACTOR=40 # emulated: the tests' time budgets, 40 times longer
mount9p() { mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none,ro "\$@"; }
uptime() { echo "[\$(cut -d. -f1 /proc/uptime) s]"; }
echo "\$(uptime) guest: \$(uname -r), /sys/fs/cgroup is \$(stat -fc %T /sys/fs/cgroup)"
echo "cgroup controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
[ "\$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || { echo "not cgroup v2 only"; exit 1; }
# The repository, read-only, at the same path as on the host.
mkdir -p '$PWD' && mount9p repo '$PWD' || exit 1
# The copy of the host's test data, if any (the second disk).
if [ -b /dev/vdb ]; then mkdir -p '$data' && mount /dev/vdb '$data' || exit 1; fi
failed=0
tab=\$(printf '\t')
while IFS="\$tab" read -r program dir; do
    echo "\$(uptime) ==> \$program"
    (cd "\$dir" && "\$program") || failed=\$((failed + 1))
done </job/tests
if [ -s /job/tests ]; then echo "\$(uptime) \$failed test program(s) failed"; fi
if [ -d /job/book ]; then
    echo "\$(uptime) ==> the book's cgroup v2 examples: scripts/book-outputs.sh --in-vm"
    bash '$PWD/scripts/book-outputs.sh' --in-vm /job/book || failed=\$((failed + 1))
    echo "\$(uptime) recorded \$(ls /job/book | wc -l) outputs"
fi
if [ -d /job/stress ]; then
    echo "\$(uptime) ==> the reliability suite's load part: pfs-stress load"
    /job/stress/pfs-stress load || failed=\$((failed + 1))
fi
[ \$failed -eq 0 ]
EOF

what=tests
case $book in
    check) what="tests, then the book's examples and the load part," ;;
    record) what="book's examples" ;;
    none) if [ ${#cargo_args[@]} -eq 0 ]; then what="load part"; fi ;;
esac
step "booting the VM (qemu TCG) and running the $what inside"
# The serial console, as plain lines: without carriage returns and without
# the firmware's terminal escapes (one clears the screen).
mkfifo "$job/console"
sed -u -e 's/\r$//' -e 's/\x1b[[][0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' <"$job/console" &
console=$!
started=$(date +%s)
# -cpu qemu64, not max: with max, TCG emulates AVX, SHA ... instructions that
# programs then use, and the tests ran about twice as slow (measured side by
# side: the image pull tests took 284 s with max, 159 s with qemu64).
timeout "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu qemu64 -smp 2 -m 1024 \
    -snapshot -nic none -nographic -no-reboot \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "console=ttyS0 quiet systemd.show_status=false systemd.unified_cgroup_hierarchy=1 pfs.job" \
    -drive "file=$image/disk.qcow2,if=virtio,format=qcow2" \
    -fsdev "local,id=job,path=$job,security_model=none" \
    -device virtio-9p-pci,fsdev=job,mount_tag=job \
    -fsdev "local,id=repo,path=$PWD,security_model=none,readonly=on" \
    -device virtio-9p-pci,fsdev=repo,mount_tag=repo \
    "${data_disk[@]}" \
    </dev/null >"$job/console" &
qemu=$!
status=0
wait "$qemu" || status=$?
wait "$console"
qemu='' console=''
echo
if [ "$status" -eq 124 ]; then
    echo "vm-test: the VM did not finish within $TIMEOUT" >&2
    exit 1
fi
if [ ! -s "$job/status" ]; then
    echo "vm-test: the VM stopped before the tests finished (qemu exit status $status)" >&2
    exit 1
fi
echo "vm-test: VM run took $(($(date +%s) - started)) s"
if [ "$(cat "$job/status")" != 0 ]; then
    echo "vm-test: FAILED inside the cgroup v2 VM" >&2
    exit 1
fi
case $book in
    record)
        cp "$job"/book/*.txt "$record_into"/
        echo "vm-test: recorded the book's cgroup v2 outputs"
        ;;
    check)
        echo "vm-test: all tests passed inside the cgroup v2 VM"
        if ! diff -ru book/src/outputs/v2 "$job/book"; then
            echo "vm-test: the book's cgroup v2 outputs are stale: run scripts/book-outputs.sh --vm and commit book/src/outputs/v2" >&2
            exit 1
        fi
        echo "vm-test: the book's cgroup v2 outputs match"
        ;;
    none) echo "vm-test: all passed inside the cgroup v2 VM" ;;
esac
