//! `--userns`, against the real kernel: the container's root is an
//! unprivileged host uid, the image still looks root's, and the rest of
//! chapter 07 holds inside. On cgroup v1 (the CI host) and v2
//! (scripts/vm-test.sh). Run as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use pfs_security::userns::{range_for_root, IdRange};
use testkit::{error_line, run_checking_host, stderr, stdout, test_data_dir};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");

/// `ch07 run --net none OPTIONS -- sh -c SCRIPT`, checking the host after.
fn ch07_sh(options: &[&str], script: &str) -> Output {
    test_data_dir();
    let args = [
        &["run", "--net", "none"],
        options,
        &["--", "sh", "-c", script],
    ]
    .concat();
    run_checking_host(CH07, &args)
}

fn uids() -> IdRange {
    range_for_root(Path::new("/etc/subuid"))
}

fn gids() -> IdRange {
    range_for_root(Path::new("/etc/subgid"))
}

/// A fresh host directory, owned by `uid`, shown at /data by the `-v`
/// option `option`; removed with the guard.
struct Volume {
    dir: PathBuf,
    option: String,
}

fn volume(name: &str, uid: u32, gid: u32) -> Volume {
    let dir = std::env::temp_dir().join(format!("pfs-userns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let option = format!("{}:/data", dir.display());
    Volume { dir, option }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The probe was refused, with `error` (strerror's text) on stderr.
fn assert_refused(output: &Output, error: &str) {
    let text = stderr(output);
    assert!(text.contains(error), "no {error:?} in: {text}");
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let line = text.lines().find(|l| l.starts_with(name));
    line.unwrap_or_else(|| panic!("no {name} in:\n{text}"))[name.len()..].trim()
}

#[test]
fn root_in_the_container_is_an_unprivileged_host_uid() {
    let (uids, gids) = (uids(), gids());
    assert_ne!(uids.base, 0);
    let volume = volume("made", uids.base, gids.base);
    let output = ch07_sh(
        &["--userns", "-v", &volume.option],
        "echo uid_map $(cat /proc/self/uid_map); echo gid_map $(cat /proc/self/gid_map); \
         echo id $(id); echo owners $(stat -c %U:%G / /bin /etc/passwd); touch /data/made",
    );
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert_eq!(field(&text, "uid_map"), uids.map_line());
    assert_eq!(field(&text, "gid_map"), gids.map_line());
    assert_eq!(field(&text, "id"), "uid=0(root) gid=0(root)");
    // The image's files, host uid 0's, are presented to the range.
    assert_eq!(field(&text, "owners"), "root:root root:root root:root");
    let made = std::fs::metadata(volume.dir.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (uids.base, gids.base));
}

/// Where the filesystem has no idmapped mounts, the image is shown by a
/// copy owned by the range (`PFS_USERNS_COPY=1` asks for it here).
#[test]
fn without_an_idmapped_mount_the_image_is_a_copy_owned_by_the_range() {
    testkit::require_root();
    let (uids, gids) = (uids(), gids());
    let data = test_data_dir();
    let before = testkit::HostState::capture();
    let script = "echo owners $(stat -c %U:%G / /etc/passwd); echo x >> /etc/passwd && echo wrote";
    let output = std::process::Command::new(CH07)
        .env("PFS_USERNS_COPY", "1")
        .args(["run", "--net", "none", "--userns", "--", "sh", "-c", script])
        .output()
        .unwrap();
    testkit::HostState::capture().assert_unchanged_since(&before);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert_eq!(field(&text, "owners"), "root:root root:root");
    // Root may change the image's files (in its upper layer): they are its.
    assert!(text.ends_with("wrote\n"), "{text}");
    let prefix = format!("{}-{}", uids.base, gids.base);
    let copy = std::fs::read_dir(data.join("userns"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
        })
        .expect("no copy for the range in the data directory");
    let passwd = std::fs::symlink_metadata(copy.join("etc/passwd")).unwrap();
    assert_eq!((passwd.uid(), passwd.gid()), (uids.base, gids.base));
}

#[test]
fn chapter_07_still_holds_in_a_user_namespace() {
    let limit = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let script = format!(
        "grep -e CapEff -e NoNewPrivs -e Seccomp: /proc/self/status; echo limit $(cat {limit}); \
         echo timers $(head -c 4096 /proc/timer_list | wc -c); echo x > /proc/sys/kernel/hostname"
    );
    let output = ch07_sh(&["--userns", "--memory", "64M"], &script);
    let text = stdout(&output);
    assert_eq!(field(&text, "CapEff:"), "00000000a80425fb");
    assert_eq!(field(&text, "NoNewPrivs:"), "1");
    assert_eq!(field(&text, "Seccomp:"), "2");
    assert_eq!(field(&text, "limit"), "67108864");
    assert_eq!(field(&text, "timers"), "0");
    assert_refused(&output, "Read-only file system");
}

/// The gallery's door: a file only the host's root may read, shown by a
/// volume. Container root reads it without `--userns`, not with it.
#[test]
fn a_root_only_host_file_is_closed_to_the_containers_root() {
    let volume = volume("secret", 0, 0);
    let secret = volume.dir.join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = "cat /data/secret";
    let open = ch07_sh(&["-v", &volume.option], script);
    assert_eq!(stdout(&open), "host secret\n", "{}", stderr(&open));
    let closed = ch07_sh(&["--userns", "-v", &volume.option], script);
    assert_eq!(stdout(&closed), "");
    assert_refused(&closed, "Permission denied");
}

#[test]
fn userns_with_privileged_or_another_containers_network_is_refused() {
    let cases: [(&[&str], &str); 2] = [
        (&["--userns", "--privileged"], "--privileged"),
        (&["--userns", "--net", "container:web"], "network"),
    ];
    for (options, expected) in cases {
        let args = [&["run"], options, &["--", "true"]].concat();
        let output = run_checking_host(CH07, &args);
        let line = error_line(&output, 125);
        assert!(line.contains(expected), "{options:?}: {line}");
    }
}
