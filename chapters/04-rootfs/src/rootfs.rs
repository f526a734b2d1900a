//! Where a container's root filesystem comes from (`--rootfs`):
//!
//! - `busybox`: built here from the host's static busybox, offline, in a blink;
//! - `debian`: a Debian made by `debootstrap` (`ch04 rootfs debootstrap`);
//! - an image pulled from a registry with `ch04 pull` (see [`pfs_image`]);
//! - or any directory, written `/path` or `./path`.
//!
//! Each is cached under the data directory and made once, atomically
//! ([`pfs_image::cache`]): built in a temporary directory beside its final
//! place, then renamed, so a failed or interrupted build never leaves a
//! half-made rootfs behind, and two first builds at once make it once.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use pfs_image::cache::{DEFAULT_SUITE, DEFAULT_VARIANT};

use crate::{build_atomically, data_dir};

/// The static busybox of Debian's and Ubuntu's `busybox-static` package.
const HOST_BUSYBOX: &str = "/bin/busybox";

/// Find the directory a `--rootfs` value names, building busybox on demand.
pub fn resolve(rootfs: &str) -> Result<PathBuf> {
    match rootfs {
        "busybox" => busybox(),
        "debian" => {
            let dir = debian_dir(DEFAULT_SUITE, DEFAULT_VARIANT);
            if !dir.is_dir() {
                bail!("no Debian rootfs yet: run `ch04 rootfs debootstrap` first (it downloads about 40 MB)");
            }
            Ok(dir)
        }
        path if path.starts_with('/') || path.starts_with('.') => {
            let dir = Path::new(path);
            if !dir.is_dir() {
                bail!("rootfs directory not found: {path}");
            }
            dir.canonicalize()
                .with_context(|| format!("rootfs directory {path}"))
        }
        image => pfs_image::pulled_rootfs(image),
    }
}

fn rootfs_dir(name: &str) -> PathBuf {
    data_dir().join("rootfs").join(name)
}

fn debian_dir(suite: &str, variant: &str) -> PathBuf {
    rootfs_dir(&format!("debian-{suite}-{variant}"))
}

// ANCHOR: busybox
/// The offline default: one static busybox binary, a symlink per applet
/// (`/bin/sh` → `/bin/busybox`), the usual top-level directories and the
/// few files in `/etc` that programs expect. About 2 MB.
pub fn busybox() -> Result<PathBuf> {
    let target = rootfs_dir("busybox");
    if target.is_dir() {
        return Ok(target);
    }
    check_static_busybox()?;
    build_atomically(&target, |dir| {
        for sub in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev",
            "run", "var",
        ] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::copy(HOST_BUSYBOX, dir.join("bin/busybox"))?;
        for applet in busybox_applets()? {
            if applet != "bin/busybox" {
                symlink("/bin/busybox", dir.join(&applet))
                    .with_context(|| format!("link {applet}"))?;
            }
        }
        fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )?;
        fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
        fs::write(
            dir.join("etc/os-release"),
            "NAME=\"BusyBox\"\nID=busybox\nPRETTY_NAME=\"BusyBox (Pods from Scratch)\"\n",
        )?;
        Ok(())
    })?;
    Ok(target)
}
// ANCHOR_END: busybox

/// A dynamically linked busybox would need the host's libc inside the rootfs.
fn check_static_busybox() -> Result<()> {
    let binary = fs::read(HOST_BUSYBOX)
        .with_context(|| format!("{HOST_BUSYBOX} not found: install the busybox-static package"))?;
    if !pfs_image::cache::is_static_binary(&binary) {
        bail!("{HOST_BUSYBOX} is dynamically linked: install the busybox-static package");
    }
    Ok(())
}

/// Where busybox installs each applet (`bin/sh`, `usr/bin/awk`, ...).
fn busybox_applets() -> Result<Vec<String>> {
    let output = Command::new(HOST_BUSYBOX)
        .arg("--list-full")
        .output()
        .context("busybox --list-full")?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

// ANCHOR: debootstrap
/// A real Debian root filesystem, made by `debootstrap`: it downloads the
/// suite's essential packages and unpacks them into a directory, which is
/// what a `debian` image on Docker Hub is made of too.
pub fn debootstrap(suite: &str, variant: &str) -> Result<PathBuf> {
    let target = debian_dir(suite, variant);
    if target.is_dir() {
        return Ok(target);
    }
    build_atomically(&target, |dir| {
        let mut command = Command::new("debootstrap");
        command
            .arg(format!("--variant={variant}"))
            .arg(suite)
            .arg(dir);
        if let Some(mirror) = pfs_image::cache::host_debian_mirror() {
            command.arg(mirror);
        }
        // debootstrap mounts /proc and /sys inside the new tree: killed
        // half-way, it would leave them mounted on the host. In a mount
        // namespace of its own, private as in chapter 02, they go with it.
        // SAFETY: runs in the forked child before exec; we have one thread,
        // and the closure makes two system calls.
        unsafe {
            command.pre_exec(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                ch02::make_mounts_private().map_err(std::io::Error::other)
            });
        }
        eprintln!("running: {command:?}");
        // Its log goes to stderr (on a terminal, as a line with the time
        // elapsed): our stdout is the rootfs path alone, for scripts
        // (`rootfs=$(ch04 rootfs debootstrap)`).
        let status = pfs_image::progress::run_with_spinner(&mut command, "debootstrap")
            .context("debootstrap not found: install the debootstrap package")?;
        if !status.success() {
            bail!("debootstrap failed ({status})");
        }
        Ok(())
    })?;
    Ok(target)
}
// ANCHOR_END: debootstrap
