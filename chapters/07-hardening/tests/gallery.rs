//! The escape gallery: each door a root in chapter 06's container could
//! walk through, open there and closed by `ch07 run`, with the exact error
//! the attacker now gets. Chapter 06's container is `ch07 run --privileged`
//! (chapter 05's layers, none of this chapter's), the same one `ch06 run`
//! makes. The doors tested in paths.rs and confine.rs are not repeated.
//!
//! Busybox has no tool for these calls: a probe (tests/probe/probe.rs,
//! built static by build.rs) makes each one and prints `CALL: RESULT`. Every
//! open-door probe is harmless: arguments the kernel rejects after its
//! permission check, a mount undone at once, a value written back. Run as
//! root, on cgroup v1 (the CI host) and v2 (scripts/vm-test.sh).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use testkit::{run_checking_host, stderr, stdout, test_data_dir};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");
const PROBE_DIR: &str = env!("GALLERY_PROBE_DIR");

/// `ch07 run OPTIONS -- sh -c SCRIPT` with the probe at /probe: what it
/// printed, after checking the host is left as found.
fn probe(options: &[&str], script: &str) -> String {
    test_data_dir();
    let volume = format!("{PROBE_DIR}:/probe:ro");
    let head = ["run", "--net", "none", "-v", &volume];
    let args = [&head[..], options, &["--", "sh", "-c", script]].concat();
    let output = run_checking_host(CH07, &args);
    assert_eq!(stderr(&output), "", "{}", stdout(&output));
    stdout(&output)
}

/// The script's output in chapter 06's container, then in chapter 07's.
fn open_and_closed(script: &str) -> (String, String) {
    (probe(&["--privileged"], script), probe(&[], script))
}

/// A folder in the host's temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ch07-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn the_hosts_keyring_is_reached_and_keyctl_is_refused() {
    // Keys are kept per user (per user namespace): the container's root
    // finds the host root's own keyring, by the same id. add_key is asked
    // for a key of no type (rejected: nothing is added).
    use nix::libc::{syscall, SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING};
    let ours = unsafe { syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0) };
    assert!(ours > 0, "{}", std::io::Error::last_os_error());
    let (open, closed) = open_and_closed("/probe/probe keyctl");
    assert_eq!(open, format!("keyctl: {ours}\nadd_key: EINVAL\n"));
    assert_eq!(closed, "keyctl: EPERM\nadd_key: EPERM\n");
}

#[test]
fn shocker_opens_a_host_file_by_handle_and_is_refused() {
    // A folder of the host's filesystem (not /probe: a VM's 9p has no file
    // handles) mounted in: a handle made on it names a host inode, opened
    // again without any path (read-only here).
    let host = TempDir::new("shocker");
    let volume = format!("{}:/host:ro", host.0.display());
    let script = "/probe/probe handle /host";
    let open = probe(&["--privileged", "-v", &volume], script);
    assert_eq!(open, "name_to_handle_at: 0\nopen_by_handle_at: 0\n");
    let closed = probe(&["-v", &volume], script);
    assert_eq!(
        closed,
        "name_to_handle_at: EPERM\nopen_by_handle_at: EPERM\n"
    );
}

#[test]
fn reboot_is_refused_before_the_kernel_reads_its_arguments() {
    // Open: CAP_SYS_BOOT lets the call reach its magic numbers, which the
    // probe leaves out (EINVAL). Closed: the filter; and without it, the
    // capability Docker's set leaves out.
    let (open, closed) = open_and_closed("/probe/probe reboot");
    assert_eq!(open, "reboot: EINVAL\n");
    assert_eq!(closed, "reboot: EPERM\n");
    let unconfined = probe(
        &["--security-opt", "seccomp=unconfined"],
        "/probe/probe reboot",
    );
    assert_eq!(unconfined, "reboot: EPERM\n");
}

#[test]
fn a_kernel_module_cannot_be_loaded() {
    // Open: past the permission check, the kernel rejects the empty image
    // and the missing file. A kernel built without modules has no such
    // calls at all (ENOSYS); seccomp refuses before either.
    let (open, closed) = open_and_closed("/probe/probe module");
    if Path::new("/proc/modules").exists() {
        assert_eq!(open, "init_module: ENOEXEC\nfinit_module: EBADF\n");
    } else {
        assert_eq!(open, "init_module: ENOSYS\nfinit_module: ENOSYS\n");
    }
    assert_eq!(closed, "init_module: EPERM\nfinit_module: EPERM\n");
}

#[test]
fn a_new_user_namespace_is_refused_to_clone_and_unshare() {
    // In a new user namespace a process holds every capability again (over
    // that namespace's objects): both roads to one are closed.
    let (open, closed) = open_and_closed("/probe/probe userns");
    assert_eq!(open, "clone: 0\nunshare: 0\n");
    assert_eq!(closed, "clone: EPERM\nunshare: EPERM\n");
    // Without capabilities the kernel would allow it: the filter refuses.
    let user = probe(&["-u", "1000"], "/probe/probe userns");
    assert_eq!(user, "clone: EPERM\nunshare: EPERM\n");
}

#[test]
fn a_setuid_binary_gives_no_root_under_no_new_privs() {
    // A setuid-root copy of the probe, in a folder only root can reach on
    // the host (mode 700), whose inner folder the container mounts.
    let outer = TempDir::new("setuid");
    let inner = outer.0.join("suid");
    std::fs::create_dir(&inner).unwrap();
    std::fs::set_permissions(&outer.0, PermissionsExt::from_mode(0o700)).unwrap();
    let copy = inner.join("probe");
    std::fs::copy(Path::new(PROBE_DIR).join("probe"), &copy).unwrap();
    std::fs::set_permissions(&copy, PermissionsExt::from_mode(0o4755)).unwrap();
    let volume = format!("{}:/suid:ro", inner.display());
    let user = ["-u", "1000", "-v", &volume];
    let open = probe(&[&["--privileged"][..], &user].concat(), "/suid/probe euid");
    assert_eq!(open, "euid: 0\n");
    let closed = probe(&user, "/suid/probe euid");
    assert_eq!(closed, "euid: 1000\n");
}

#[test]
fn no_cgroup_hierarchy_can_be_mounted_for_its_release_agent() {
    // CVE-2022-0492: mount a v1 hierarchy, write a program's path into its
    // release_agent; the kernel runs it as the host's root. Only the mount
    // is probed (and undone), never release_agent. On v2 the host mounts no
    // v1 hierarchy and cgroup2 has no release_agent: the same mount is what
    // an attacker would need first (of a v1 hierarchy made by name).
    let (fstype, options) = if cgroup_v2() {
        assert!(!Path::new("/sys/fs/cgroup/release_agent").exists());
        ("cgroup2", "")
    } else {
        let v1 = ["freezer", "blkio", "perf_event", "net_cls", "devices"];
        let found = v1.into_iter().find(|h| {
            let agent = Path::new("/sys/fs/cgroup").join(h).join("release_agent");
            agent.exists()
        });
        (
            "cgroup",
            found.expect("a v1 hierarchy with a release_agent"),
        )
    };
    let script = format!("mkdir /tmp/cg && /probe/probe mount {fstype} '{options}' /tmp/cg");
    let (open, closed) = open_and_closed(&script);
    assert_eq!(open, "mount: 0\numount2: 0\n");
    assert_eq!(closed, "mount: EPERM\n");
}

#[test]
fn a_host_wide_sysctl_is_read_only() {
    // kernel.core_pattern is the host's, not the container's (unlike the
    // hostname): "|/path" there makes the host's root run a program at the
    // next crash. The probe writes back the value it reads.
    let sysctl = "/proc/sys/kernel/core_pattern";
    let before = std::fs::read_to_string(sysctl).unwrap();
    let (open, closed) = open_and_closed(&format!("/probe/probe rewrite {sysctl}"));
    assert_eq!(open, "write: 0\n");
    assert_eq!(closed, "write: EROFS\n");
    assert_eq!(std::fs::read_to_string(sysctl).unwrap(), before);
}
