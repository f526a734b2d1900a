#!/usr/bin/env bash
# On demand, not in CI: prove the project's real Vagrantfile. As root:
#
#   scripts/vagrant-test.sh
#
# 1. Turn the VM image of scripts/vm-image.sh into a local libvirt box: add a
#    `vagrant` user with Vagrant's well-known key, DHCP, and run
#    scripts/provision.sh for it in a chroot (here, with the host's network
#    and at native speed: the VM has no way out, and is emulated).
# 2. In a sandbox (new PID, network and mount namespaces): start virtlogd and
#    libvirtd on private copies of their folders, then
#    `PFS_VAGRANT_BOX=<local box> vagrant up --provider=libvirt`, which
#    provisions the VM again (now nothing is missing: the idempotent path),
#    then scripts/demo.sh and the tests over `vagrant ssh`, then destroy.
#    libvirt's bridge, firewall rules and dnsmasq exist only in the sandbox's
#    network namespace, and when the sandbox's first process ends the kernel
#    ends every process in it (chapter 01's lesson): nothing outlives it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

BOX=pfs-local

# Timings: seconds since this script (or the sandbox) started.
start=$(date +%s)
lap() { printf '\n--- %d s: %s\n' $(($(date +%s) - start)) "$1"; }
# vagrant-libvirt's upload progress, a screenful of "Progress: N%", removed.
quiet_progress() { sed -u 's/\(\x1b\[K\)\{0,1\}Progress: [0-9]*%//g'; }

# ---- inside the sandbox (this script runs itself again there) ----------
if [ "${1:-}" = --inside ]; then
    tmp=$2
    # Private copies of libvirt's folders; qemu runs as root (no permission
    # games with files under /tmp) and libvirt leaves cgroups alone (the
    # host's cgroups would outlive the sandbox).
    cp -a /etc/libvirt "$tmp/etc-libvirt"
    printf 'user = "root"\ngroup = "root"\ncgroup_controllers = [ ]\nsecurity_driver = "none"\n' \
        >>"$tmp/etc-libvirt/qemu.conf"
    mkdir -p "$tmp/lib-libvirt" "$tmp/log-libvirt" "$tmp/cache-libvirt"
    mount --bind "$tmp/etc-libvirt" /etc/libvirt
    mount --bind "$tmp/lib-libvirt" /var/lib/libvirt
    mount --bind "$tmp/log-libvirt" /var/log/libvirt
    mount --bind "$tmp/cache-libvirt" /var/cache/libvirt
    mount -t tmpfs tmpfs /run # sockets, pid files, dnsmasq's leases
    mount -t sysfs sysfs /sys # this network namespace's view of /sys/class/net
    ip link set lo up

    virtlogd -d
    libvirtd -d
    for _ in $(seq 60); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 1; done
    lap "libvirtd started (in its own network namespace)"

    export VAGRANT_HOME=$tmp/vagrant.d VAGRANT_DOTFILE_PATH=$tmp/dot-vagrant
    export PFS_VAGRANT_BOX=$BOX VAGRANT_DEFAULT_PROVIDER=libvirt
    trap 'vagrant destroy -f >/dev/null 2>&1 || true' EXIT
    vagrant box add --name "$BOX" "$tmp/$BOX.box"
    lap "vagrant box add"
    vagrant validate
    vagrant up --provider=libvirt | quiet_progress
    lap "vagrant up (upload the box, boot, rsync, provision)"
    vagrant ssh -c 'cd pods-from-scratch && scripts/demo.sh'
    lap "scripts/demo.sh over vagrant ssh"
    vagrant ssh -c 'stat -fc "/sys/fs/cgroup: %T" /sys/fs/cgroup && cd pods-from-scratch &&
        CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="sudo -E" cargo test --workspace --no-fail-fast'
    lap "cargo test --workspace over vagrant ssh"
    vagrant destroy -f
    trap - EXIT
    lap "vagrant destroy"
    exit 0
fi

# ---- on the host --------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "run as root: sudo scripts/vagrant-test.sh" >&2; exit 1; }
install_vm_tools
apt_install vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-system-sysv \
    dnsmasq-base rsync openssh-client
KEY_PUB=$(dpkg -L vagrant | grep "/keys/vagrant.pub$") # Vagrant's insecure key

image=$(scripts/vm-image.sh)
lap "VM image ready ($image)"

tmp=$(mktemp -d /tmp/pfs-vagrant-test.XXXXXX)
sandbox=''
cleanup() {
    if [ -n "$sandbox" ]; then
        kill "$sandbox" 2>/dev/null || true # unshare --kill-child: the sandbox's PID 1 dies, and all in it
        wait "$sandbox" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "the box: a vagrant user, DHCP, and provision.sh run once in a chroot"
root=$tmp/rootfs
cp -a "$image/rootfs" "$root"
chroot "$root" useradd --create-home --shell /bin/bash --groups sudo vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
install -D -m 600 -o 1000 -g 1000 "$KEY_PUB" "$root/home/vagrant/.ssh/authorized_keys"
chown 1000:1000 "$root/home/vagrant/.ssh"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/80-dhcp.network"
chroot "$root" systemctl enable systemd-networkd 2>/dev/null
# The repository where the Vagrantfile's rsync puts it, with the same
# exclusions; the build made here (target/) stays, so the VM does not
# compile again.
repo=$root/home/vagrant/pods-from-scratch
mkdir -p "$repo"
tar -c --exclude=./.vagrant --exclude=./target --exclude=./book/build . | tar -x -C "$repo"
chown -R 1000:1000 "$repo"
# Rust for the vagrant user: a copy of this host's default toolchain,
# ~/.cargo/bin (mdbook included) and the crates cargo downloaded. It is what
# provision.sh would download (rustup's installer host is not reachable from
# this machine kind) and compile (mdbook: minutes); the VM has no network, so
# cargo is told to stay offline.
if command -v rustup >/dev/null; then
    toolchain=$(rustup default | cut -d' ' -f1)
    rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
    home=$root/home/vagrant
    mkdir -p "$home/.rustup/toolchains" "$home/.cargo"
    cp -a "$cargo_home/bin" "$cargo_home/env" "$cargo_home/registry" "$home/.cargo/"
    printf '[net]\noffline = true\n' >"$home/.cargo/config.toml"
    cp -a "$rustup_home/settings.toml" "$home/.rustup/"
    tar -C "$rustup_home/toolchains" --exclude="$toolchain/share/doc" -c "$toolchain" |
        tar -C "$home/.rustup/toolchains" -x
    # shellcheck disable=SC2016 # for the vagrant user's shell to expand
    echo '. "$HOME/.cargo/env"' | tee -a "$home/.profile" >>"$home/.bashrc"
    chown -R 1000:1000 "$home"
fi
# The chapters' test data (a debootstrapped Debian ...): the VM cannot download it.
data=${PFS_TEST_DATA_DIR:-/var/cache/pods-from-scratch/test-data}
if [ -d "$data" ]; then
    mkdir -p "$root$data" && cp -a "$data/." "$root$data/"
fi
# The chroot resolves names as this host does (for apt).
# shellcheck disable=SC2016 # $0 is for the inner sh
unshare --mount --propagation private sh -c '
    mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
    mount --bind /etc/hosts "$0/etc/hosts" && mount --bind /etc/resolv.conf "$0/etc/resolv.conf" &&
    chroot "$0" /home/vagrant/pods-from-scratch/scripts/provision.sh --user vagrant &&
    chroot "$0" runuser -l vagrant -c "cd pods-from-scratch && cargo test --quiet --workspace --no-run"' \
    "$root"
chroot "$root" apt-get clean
lap "box rootfs provisioned in a chroot"

box=$tmp/box
mkdir -p "$box"
mkfs.ext4 -q -L pfs-root -d "$root" "$tmp/disk.raw" 20G
qemu-img convert -O qcow2 "$tmp/disk.raw" "$box/box.img"
rm -rf "$tmp/disk.raw" "$root"
cp "$image/vmlinuz" "$image/initrd.img" "$box/"
echo '{"provider": "libvirt", "format": "qcow2", "virtual_size": 20}' >"$box/metadata.json"
# The box has no boot loader: libvirt boots its kernel directly, emulated
# (this machine's KVM cannot run a stock kernel), on cgroup v2 only.
cat >"$box/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "console=ttyS0 root=/dev/vda rw systemd.unified_cgroup_hierarchy=1"
    lv.graphics_type = "none"
    lv.management_network_mode = "none"
  end
end
EOF
tar -C "$box" -cf "$tmp/$BOX.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
rm -rf "$box"
lap "box built ($(du -h "$tmp/$BOX.box" | cut -f1))"

step "vagrant up in the sandbox"
unshare --pid --fork --kill-child --mount-proc --net --mount --propagation private \
    "$0" --inside "$tmp" &
sandbox=$!
status=0
wait "$sandbox" || status=$?
sandbox=''
lap "sandbox ended"
if [ $status -ne 0 ]; then
    echo "vagrant-test: FAILED (status $status)" >&2
    exit 1
fi
echo "vagrant-test: passed"
