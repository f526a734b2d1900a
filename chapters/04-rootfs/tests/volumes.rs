//! Chapter 04's volumes (`-v`, `--tmpfs`) against the real kernel: run as
//! root. Every run checks that the host's mount table, hostname and
//! namespaces are as they were, and that no container directory is left.

use std::fs;
use std::path::{Path, PathBuf};

use testkit::{error_line, run_checking_host, stderr, stdout};

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

/// `ch04 run --net none ARGS`, checking the host before and after.
fn ch04_run(args: &[&str]) -> std::process::Output {
    testkit::test_data_dir();
    let output = run_checking_host(CH04, &[&["run", "--net", "none"], args].concat());
    let containers = testkit::test_data_dir().join("containers");
    let stale: Vec<_> = fs::read_dir(containers)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !Path::new("/proc").join(e.file_name()).exists())
        .map(|e| e.path())
        .collect();
    assert!(stale.is_empty(), "left behind: {stale:?}");
    output
}

/// A fresh host directory for one test, removed when dropped.
struct HostDir(PathBuf);

impl HostDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pfs-volumes-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        HostDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every path under `dir` with its size: what "unchanged" means for a rootfs.
fn listing(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.path().symlink_metadata().unwrap();
        all.push(format!("{} {}", entry.path().display(), meta.len()));
        if meta.is_dir() {
            all.extend(listing(&entry.path()));
        }
    }
    all.sort();
    all
}

#[test]
fn a_file_written_under_a_volume_is_on_the_host() {
    let host = HostDir::new("written");
    fs::write(host.0.join("from-host"), "hello\n").unwrap();
    let volume = format!("{}:/data", host.path());
    let script = "cat /data/from-host && echo written > /data/from-container";
    let output = ch04_run(&["-v", &volume, "--", "sh", "-c", script]);
    assert_eq!(stdout(&output), "hello\n", "{}", stderr(&output));
    let written = fs::read_to_string(host.0.join("from-container")).unwrap();
    assert_eq!(written, "written\n");
}

#[test]
fn a_host_file_can_be_a_volume() {
    let host = HostDir::new("file");
    fs::write(host.0.join("config"), "setting=1\n").unwrap();
    let volume = format!("{}/config:/etc/app/config", host.path());
    let output = ch04_run(&["--volume", &volume, "--", "cat", "/etc/app/config"]);
    assert_eq!(stdout(&output), "setting=1\n", "{}", stderr(&output));
}

#[test]
fn a_read_only_volume_refuses_writes() {
    let host = HostDir::new("ro");
    let volume = format!("{}:/data:ro", host.path());
    let script = "ls /data && touch /data/x";
    let output = ch04_run(&["-v", &volume, "--", "sh", "-c", script]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Read-only file system"),
        "{}",
        stderr(&output)
    );
    assert!(!host.0.join("x").exists(), "the write reached the host");
}

#[test]
fn a_writable_volume_stays_writable_under_read_only() {
    let host = HostDir::new("rw-in-ro");
    let volume = format!("{}:/data", host.path());
    let script = "touch /x 2>/dev/null || echo root-refused; touch /data/x && echo data-ok";
    let output = ch04_run(&["--read-only", "-v", &volume, "--", "sh", "-c", script]);
    assert_eq!(
        stdout(&output),
        "root-refused\ndata-ok\n",
        "{}",
        stderr(&output)
    );
    assert!(host.0.join("x").exists());
}

#[test]
fn tmpfs_is_a_tmpfs_of_the_size_asked() {
    let script = "grep ' /scratch ' /proc/mounts; \
                  dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null || echo full";
    let output = ch04_run(&["--tmpfs", "/scratch:size=1m", "--", "sh", "-c", script]);
    let text = stdout(&output);
    let mount = text.lines().next().unwrap_or_default();
    assert!(
        mount.starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev"),
        "{text}{}",
        stderr(&output)
    );
    assert!(mount.contains("size=1024k"), "{mount}");
    assert!(text.ends_with("full\n"), "2 MB fit in a 1 MB tmpfs: {text}");
}

#[test]
fn a_volume_inside_another_is_mounted_after_it() {
    let outer = HostDir::new("outer");
    let inner = HostDir::new("inner");
    fs::write(inner.0.join("note"), "inner\n").unwrap();
    let (outer_volume, inner_volume) = (
        format!("{}:/data", outer.path()),
        format!("{}:/data/inner", inner.path()),
    );
    // Given inner first: the runtime still mounts /data first.
    let args = ["-v", &inner_volume, "-v", &outer_volume, "--"];
    let output = ch04_run(&[&args[..], &["cat", "/data/inner/note"]].concat());
    assert_eq!(stdout(&output), "inner\n", "{}", stderr(&output));
}

#[test]
fn the_cached_image_is_unchanged_by_a_volume_on_a_new_directory() {
    let host = HostDir::new("image");
    ch04_run(&["--", "true"]); // the busybox image exists
    let image = testkit::test_data_dir().join("rootfs/busybox");
    let before = listing(&image);
    let volume = format!("{}:/new/deep/dir", host.path());
    let output = ch04_run(&["-v", &volume, "--", "ls", "-d", "/new/deep/dir"]);
    assert_eq!(stdout(&output), "/new/deep/dir\n", "{}", stderr(&output));
    assert_eq!(
        listing(&image),
        before,
        "the volume's target reached the image"
    );
}

/// A symlink in the image is resolved inside the new root: the mount lands
/// in the rootfs's own `/etc` or `/`, never on the host's.
#[test]
fn a_symlink_in_the_image_cannot_lead_a_volume_out_of_the_root() {
    ch04_run(&["--", "true"]); // the busybox image exists
    let rootfs = HostDir::new("rootfs");
    let copied = std::process::Command::new("cp")
        .args(["-a", "--no-target-directory"])
        .arg(testkit::test_data_dir().join("rootfs/busybox"))
        .arg(&rootfs.0)
        .status()
        .unwrap();
    assert!(copied.success());
    std::os::unix::fs::symlink("/etc", rootfs.0.join("to-etc")).unwrap();
    std::os::unix::fs::symlink("../../..", rootfs.0.join("bin/up")).unwrap();
    let host = HostDir::new("escape-source");
    let name = format!("pfs-escape-{}", std::process::id());
    let (via_etc, via_up) = (
        format!("{}:/to-etc/{name}", host.path()),
        format!("{}:/bin/up/{name}", host.path()),
    );
    let before = listing(&rootfs.0);
    let script = format!("grep -cE ' /etc/{name} | /{name} ' /proc/mounts");
    let args = ["--rootfs", rootfs.path(), "-v", &via_etc, "-v", &via_up];
    let output = ch04_run(&[&args[..], &["--", "sh", "-c", &script]].concat());
    assert_eq!(stdout(&output), "2\n", "{}", stderr(&output));
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "reached the host's /etc"
    );
    assert!(!Path::new("/").join(&name).exists(), "reached the host's /");
    assert_eq!(listing(&rootfs.0), before, "the rootfs directory changed");
}

#[test]
fn bad_volumes_are_one_line_and_nothing_is_made() {
    let host = HostDir::new("bad");
    for (volume, said) in [
        ("relative/dir:/data".to_string(), "must be absolute"),
        ("/no/such/dir:/data".to_string(), "does not exist"),
        (
            format!("{}:/data/../etc", host.path()),
            "must not contain ..",
        ),
        (format!("{}:/data:rx", host.path()), "unknown option"),
    ] {
        let output = ch04_run(&["-v", &volume, "--", "true"]);
        let message = error_line(&output, 2);
        assert!(message.contains(said), "{volume}: {message}");
    }
    let output = ch04_run(&["--tmpfs", "/scratch:size=lots", "--", "true"]);
    assert!(error_line(&output, 2).contains("bad size"));
    assert!(!Path::new("/no/such/dir").exists());
    assert_eq!(fs::read_dir(&host.0).unwrap().count(), 0);
}
