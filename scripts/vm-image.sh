#!/usr/bin/env bash
# Build, once, the Debian 12 VM that scripts/vm-test.sh boots (and that
# scripts/vagrant-test.sh turns into a Vagrant box), and print its folder:
#   vmlinuz, initrd.img   Debian's kernel and a tiny busybox initramfs
#   disk.qcow2            the root filesystem: systemd, booted on cgroup v2 only
#   rootfs/               the same files, kept to derive the Vagrant box
# The folder is named after a hash of this script and the mirror, so changing
# the recipe builds a new image and otherwise the cached one is reused.
# Needs root (debootstrap, chroot). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
exec 3>&1 1>&2 # stdout is for the image's folder only

CACHE=${PFS_VM_CACHE:-/var/cache/pods-from-scratch/vm}
SUITE=bookworm
# debootstrap makes a minimal Debian with systemd; apt-get then adds what the
# chapters' tests use in the guest (the registry tools: for the image pull
# tests, on 127.0.0.1; podman, conmon, runc, catatonit (the pods' pause) and
# containerd: they drive chapter 08's runtime; the runtime spec's schemas and
# python3-jsonschema: chapter 08's state is checked against them), and
# openssh-server, sudo and rsync for the Vagrant box (harmless here: the test
# VM has no network).
BASE=systemd-sysv,udev,kmod
PACKAGES=(procps util-linux busybox-static debootstrap iproute2 nftables
    docker-registry skopeo umoci openssh-server sudo rsync
    podman conmon runc catatonit containerd
    golang-github-opencontainers-specs-dev python3-jsonschema)
# What the initramfs loads to mount the root disk (the rest is loaded later
# by udev and modprobe, from the root filesystem).
ROOT_MODULES="virtio_pci virtio_blk ext4"

read -r mirror keyring < <(apt_source "$SUITE") ||
    { echo "no apt source for $SUITE on this machine" >&2; exit 1; }
image=$CACHE/$SUITE-$( { cat "$0"; echo "$mirror"; } | sha256sum | cut -c1-16)

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time; a second run waits, then finds it cached
if [ -e "$image/ready" ]; then
    echo "$image" >&3
    exit 0
fi

build=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$build"' EXIT
root=$build/rootfs
in_root() { chroot "$root" "$@"; }
# Both run in a mount namespace of their own: the mounts they make in the
# new root (/proc, /sys) vanish with it, even when they are interrupted.
step "debootstrap $SUITE from $mirror, then apt-get install (a few minutes)"
# Their logs go to files; on a terminal, logged (lib.sh) shows the time and
# each log's last line meanwhile.
logged "$build/debootstrap.log" unshare --mount --propagation private \
    debootstrap --variant=minbase --include="$BASE" ${keyring:+--keyring="$keyring"} \
    "$SUITE" "$root" "$mirror" || exit 1
# shellcheck disable=SC2016 # $0 and $@ are for the inner sh
logged "$build/apt.log" \
    unshare --mount --propagation private sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' \
    "$root" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" || exit 1

step "Debian's kernel, and its modules into the image"
kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
(cd "$build" && apt-get download -qq -o APT::Sandbox::User=root "$kernel_package")
dpkg-deb -x "$build"/linux-image-*.deb "$build/kernel"
kver=$(ls "$build/kernel/lib/modules")
mv "$build/kernel/boot/vmlinuz-$kver" "$build/vmlinuz"
mkdir -p "$root/lib/modules"
mv "$build/kernel/lib/modules/$kver" "$root/lib/modules/"
# A VM has no sound card, GPU, camera, wifi or physical network card: leave
# their drivers out (200 MB less to write and to copy).
(cd "$root/lib/modules/$kver/kernel" &&
    rm -rf sound drivers/{gpu,media,infiniband,iio,staging,bluetooth} \
        drivers/net/{wireless,ethernet} net/{wireless,mac80211,bluetooth})
in_root depmod "$kver"

step "initramfs: busybox, the modules to find the disk, /init"
initramfs=$build/initramfs
mkdir -p "$initramfs"/{bin,dev,proc,sys,root}
cp "$root/bin/busybox" "$initramfs/bin/"
for module in $ROOT_MODULES; do
    in_root modprobe --show-depends --set-version "$kver" "$module"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' >"$initramfs/modules"
while read -r module; do
    install -D "$root$module" "$initramfs$module"
done <"$initramfs/modules"
cat >"$initramfs/init" <<'EOF'
#!/bin/busybox sh
# Load the disk's drivers, mount it, and hand over to its /sbin/init (systemd).
/bin/busybox --install -s /bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "$module"; done </modules
for _ in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -o rw /dev/vda /root || { echo "initramfs: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys /dev
exec switch_root /root /sbin/init
EOF
chmod +x "$initramfs/init"
(cd "$initramfs" && find . | "$root/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$build/initrd.img"

step "the guest's configuration: hostname, hosts, fstab, the job unit"
echo pfs-vm >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpfs-vm\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo "/dev/vda / ext4 rw 0 1" >"$root/etc/fstab"
# No login prompt on the serial console: it is where the job's output goes.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
# The job: with `pfs.job` on the kernel command line, mount the host's 9p
# share `job` on /job, run /job/run.sh, keep its exit status in /job/status,
# power off. Success/FailureAction belong in [Unit]: in [Service] they are
# ignored and the VM never powers off.
cat >"$root/etc/systemd/system/pfs-job.service" <<'EOF'
[Unit]
Description=Run the host's job from the 9p share "job", then power off
ConditionKernelCommandLine=pfs.job
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/pfs-job
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
EOF
cat >"$root/usr/local/sbin/pfs-job" <<'EOF'
#!/bin/sh
modprobe -a 9p 9pnet_virtio
mkdir -p /job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none job /job || exit 1
sh /job/run.sh
echo $? >/job/status
EOF
chmod +x "$root/usr/local/sbin/pfs-job"
in_root systemctl enable pfs-job.service 2>/dev/null
# No podman or containerd of the system's own: at boot they would set up the
# default storage (a mount) or a daemon while the tests compare the host's
# state; the tests start private ones.
in_root systemctl mask podman-restart.service podman-auto-update.timer podman.socket \
    containerd.service 2>/dev/null
in_root apt-get clean

step "disk image"
mkfs.ext4 -q -L pfs-root -d "$root" "$build/disk.raw" 4G
qemu-img convert -O qcow2 "$build/disk.raw" "$build/disk.qcow2"
rm -rf "$build/disk.raw" "$build/kernel" "$build"/linux-image-*.deb "$initramfs"
touch "$build/ready"

# Keep only the newest image: older ones were built from older recipes.
find "$CACHE" -mindepth 1 -maxdepth 1 -name "$SUITE-*" -exec rm -rf {} +
chmod 755 "$build"
mv "$build" "$image"
echo "$image" >&3
