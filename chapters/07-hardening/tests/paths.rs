//! The filesystem's doors, against the real kernel: each closed in a
//! `ch07 run` container, each shown open (by a harmless probe) with
//! `--privileged`. On cgroup v1 (the CI host) and v2 (scripts/vm-test.sh).
//! Run as root. `--net none` keeps the host's network out of it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::RwLock;

use testkit::{run_checking_host, stderr, stdout, test_data_dir};

const CH07: &str = env!("CARGO_BIN_EXE_ch07");

/// Runs share it; the test that leaves a stale group on purpose takes it
/// alone, so that no other test sees that group.
static STALE: RwLock<()> = RwLock::new(());

/// `ch07 run --net none OPTIONS -- sh -c SCRIPT`, checking that the host's
/// mounts are unchanged and that no group of ours is left behind.
fn ch07_sh(options: &[&str], script: &str) -> Output {
    test_data_dir();
    let _shared = STALE.read().unwrap_or_else(|e| e.into_inner());
    let args = [
        &["run", "--net", "none"],
        options,
        &["--", "sh", "-c", script],
    ]
    .concat();
    let output = run_checking_host(CH07, &args);
    assert_no_stale_group();
    output
}

/// The same script hardened, then `--privileged`: both outputs (stdout and stderr).
fn closed_and_open(script: &str) -> (String, String) {
    let both = |o: Output| format!("{}{}", stdout(&o), stderr(&o));
    let closed = both(ch07_sh(&[], script));
    (closed, both(ch07_sh(&["--privileged"], script)))
}

/// The probe was refused, with `error` (strerror's text) on stderr.
fn assert_refused(output: &Output, error: &str) {
    let text = stderr(output);
    assert!(text.contains(error), "no {error:?} in: {text}");
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A group whose `ch07` process is gone, in any hierarchy (devices too), is
/// a leftover. (Other tests may be running containers.)
fn assert_no_stale_group() {
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/pods-from-scratch")];
    for controller in ["memory", "pids", "cpu", "cpuacct", "devices"] {
        parents.push(
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("pods-from-scratch"),
        );
    }
    let stale: Vec<_> = parents
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|g| g.is_dir() && !Path::new("/proc").join(g.file_name().unwrap()).exists())
        .collect();
    assert!(stale.is_empty(), "groups left behind: {stale:?}");
}

#[test]
fn the_container_reads_its_own_limits_in_sys_fs_cgroup() {
    let files = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    let output = ch07_sh(
        &["--memory", "64M", "--pids", "32"],
        &format!("cat {files}"),
    );
    assert_eq!(stdout(&output), "67108864\n32\n", "{}", stderr(&output));
}

#[test]
fn the_cgroup_files_are_read_only_and_no_release_agent_is_in_reach() {
    let procs = if cgroup_v2() {
        "/sys/fs/cgroup/cgroup.procs"
    } else {
        "/sys/fs/cgroup/memory/cgroup.procs"
    };
    // Opening for writing, without writing (`>>` appends nothing).
    let script = format!("find /sys/fs/cgroup -name release_agent; true >> {procs}");
    let output = ch07_sh(&[], &script);
    assert_eq!(stdout(&output), "", "a release_agent is in reach");
    assert_refused(&output, "Read-only file system");

    // CVE-2022-0492's door, open: a root with CAP_SYS_ADMIN mounts a v1
    // hierarchy it was never moved in (its namespace's root is the host's)
    // and may open the host-wide release_agent, which the kernel runs as
    // the host's root. (v2 has no release_agent.)
    let Some(hierarchy) = ["freezer", "blkio", "perf_event", "net_cls"]
        .into_iter()
        .find(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join("release_agent")
                .exists()
        })
    else {
        return;
    };
    let probe = format!(
        "mkdir /tmp/cg && mount -t cgroup -o {hierarchy} cgroup /tmp/cg && true >> /tmp/cg/release_agent && echo open"
    );
    let output = ch07_sh(&["--privileged"], &probe);
    assert_eq!(stdout(&output), "open\n", "{}", stderr(&output));
}

#[test]
fn masked_proc_files_read_empty() {
    let script = "for f in /proc/kcore /proc/keys /proc/timer_list; do \
                  [ -e $f ] && echo \"$f $(head -c 4096 $f | wc -c)\"; done; ls /sys/firmware | wc -l";
    let (closed, open) = closed_and_open(script);
    for line in closed.lines().filter(|l| l.starts_with("/proc")) {
        assert!(line.ends_with(" 0"), "{line} is not masked:\n{closed}");
    }
    assert!(
        closed.ends_with("\n0\n"),
        "/sys/firmware is not empty:\n{closed}"
    );
    // Open: the kernel's timers (readable by root), the firmware's tables.
    let timers = open.lines().find(|l| l.starts_with("/proc/timer_list"));
    assert!(timers.is_some_and(|l| !l.ends_with(" 0")), "{open}");
    assert!(!open.ends_with("\n0\n"), "{open}");
}

#[test]
fn proc_sys_is_read_only() {
    // The value written back is the one read: harmless even when it works
    // (and the container has a UTS namespace of its own).
    let script = "cat /proc/sys/kernel/hostname > /tmp/h && \
                  cat /tmp/h > /proc/sys/kernel/hostname && echo written";
    let (closed, open) = closed_and_open(script);
    assert!(closed.contains("Read-only file system"), "{closed}");
    assert_eq!(open, "written\n");
}

#[test]
fn the_kernels_knobs_are_read_only_mounts() {
    // Never written: `true >>` only opens /proc/sysrq-trigger for writing.
    let script = "[ -e /proc/sysrq-trigger ] && (true >> /proc/sysrq-trigger && echo sysrq open); \
                  grep -E ' /proc/(bus|fs|irq|sys|sysrq-trigger) ' /proc/self/mountinfo | cut -d' ' -f5,6";
    let (closed, open) = closed_and_open(script);
    for path in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if Path::new(path).exists() {
            assert!(
                closed.contains(&format!("{path} ro,")),
                "{path} is not read-only:\n{closed}"
            );
            assert!(!open.contains(&format!("{path} ")), "{open}");
        }
    }
    assert!(!closed.contains("sysrq open"), "{closed}");
    if Path::new("/proc/sysrq-trigger").exists() {
        assert!(closed.contains("Read-only file system"), "{closed}");
        assert!(open.contains("sysrq open"), "{open}");
    }
}

#[test]
fn sys_is_read_only() {
    let output = ch07_sh(&[], "mkdir /sys/kernel/x");
    assert_refused(&output, "Read-only file system");
}

#[test]
fn dev_has_pts_shm_and_mqueue() {
    let output = ch07_sh(&[], "readlink /dev/ptmx; grep -E ' /dev/(pts|shm|mqueue) ' /proc/self/mountinfo | cut -d' ' -f5,9");
    assert_eq!(
        stdout(&output),
        "pts/ptmx\n/dev/pts devpts\n/dev/shm tmpfs\n/dev/mqueue mqueue\n",
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_device_node_made_with_mknod_cannot_be_opened() {
    // /dev/net/tun's numbers: opened read-only, nothing read (not kmsg's,
    // whose driver asks for CAP_SYSLOG itself). And the host's first disk (some hosts refuse it even to the host's root). v1 asks
    // the devices group, v2 the program attached to chapter 05's group.
    let disk = std::fs::read_to_string("/sys/block/loop0/dev").unwrap_or("7:0".into());
    let (major, minor) = disk.trim().split_once(':').unwrap();
    let script = format!(
        "mknod /tun c 10 200 && true < /tun && echo tun open; \
         mknod /disk b {major} {minor} && true < /disk && echo disk open; \
         for d in null zero full random urandom ptmx; do true <> /dev/$d && echo $d; done; \
         grep -E ':devices:|^0::' /proc/self/cgroup"
    );
    let (closed, open) = closed_and_open(&script);
    assert!(!closed.contains("open\n"), "{closed}");
    assert_eq!(
        closed.matches("Operation not permitted").count(),
        2,
        "{closed}"
    );
    // The safe nodes still open, for reading and writing.
    assert!(
        closed.contains("null\nzero\nfull\nrandom\nurandom\nptmx\n"),
        "{closed}"
    );
    assert!(open.contains("tun open"), "{open}");
    // In its own group, which its cgroup namespace shows as the root.
    let group = if cgroup_v2() {
        "0::/\n"
    } else {
        ":devices:/\n"
    };
    assert!(closed.contains(group), "{closed}");
}

#[test]
fn the_device_program_allows_only_the_listed_nodes_and_the_verifier_accepts_it() {
    use pfs_bpf::{ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR};
    let program = ch07::paths::device_program(&ch07::paths::DEVICES_ALLOWED).unwrap();
    let rw = ACC_READ | ACC_WRITE;
    let allowed = |kind, access, major, minor| {
        let decision = pfs_bpf::run(&program, kind, access, major, minor).unwrap();
        assert!(decision <= 1, "the program returned {decision}");
        decision == 1
    };
    assert!(allowed(DEV_CHAR, rw, 1, 3), "/dev/null");
    assert!(allowed(DEV_CHAR, ACC_READ, 1, 9), "/dev/urandom");
    assert!(allowed(DEV_CHAR, rw, 5, 2), "/dev/ptmx");
    assert!(allowed(DEV_CHAR, rw, 136, 7), "/dev/pts/7");
    assert!(allowed(DEV_CHAR, ACC_MKNOD, 1, 11), "mknod of kmsg");
    assert!(allowed(DEV_BLOCK, ACC_MKNOD, 8, 0), "mknod of a disk");
    assert!(!allowed(DEV_CHAR, ACC_READ, 1, 11), "/dev/kmsg read");
    assert!(!allowed(DEV_CHAR, ACC_READ, 1, 1), "/dev/mem read");
    assert!(!allowed(DEV_BLOCK, ACC_READ, 8, 0), "a disk read");
    assert!(
        !allowed(DEV_BLOCK, rw, 1, 3),
        "a block node with null's numbers"
    );
    assert!(!allowed(DEV_CHAR, ACC_WRITE, 5, 1), "/dev/console write");
    // What the kernel checks before it runs the program: every path ends,
    // every read is in the context. (No cgroup needed: v1 hosts check too.)
    testkit::require_root();
    if let Err(e) = pfs_bpf::load_device_program(&program) {
        panic!("{e:#}");
    }
    // A program that returns r0 unset: refused, and the verifier says why.
    let error = pfs_bpf::load_device_program(&[pfs_bpf::Insn::exit()]).unwrap_err();
    assert!(error.to_string().contains("R0 !read_ok"), "{error:#}");
    let bad = ch07::paths::device_program(&["c 1:3 rwx"]).unwrap_err();
    assert_eq!(
        bad.to_string(),
        "bad devices rule \"c 1:3 rwx\" (e.g. \"c 1:3 rwm\")"
    );
}

#[test]
fn explain_narrates_each_mount() {
    let output = ch07_sh(&["--memory", "64M"], "true");
    assert_eq!(stderr(&output), "");
    test_data_dir();
    let output = testkit::run(CH07, &["--explain", "run", "--net", "none", "--", "true"]);
    let text = stderr(&output);
    let (cgroupfs, devices) = if cgroup_v2() {
        (
            "mount -t cgroup2",
            "bpftool cgroup attach /sys/fs/cgroup/pods-from-scratch/",
        )
    } else {
        ("mount -t cgroup -o ro,memory", "devices.deny")
    };
    for expected in [
        cgroupfs,
        devices,
        "mount -t mqueue",
        "mount --rbind /dev/null /proc/keys",
        "mount -t tmpfs -o ro tmpfs /sys/firmware",
        "mount --rbind /proc/sys /proc/sys",
        "mount -o remount,bind,ro /proc/sys",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}

#[test]
fn cleanup_removes_the_device_policy_of_a_killed_run() {
    testkit::require_root();
    test_data_dir();
    let _alone = STALE.write().unwrap_or_else(|e| e.into_inner());
    let before = testkit::HostState::capture();
    let mut run = std::process::Command::new(CH07)
        .args(["run", "--net", "none", "--", "sleep", "30"])
        .spawn()
        .expect("start ch07");
    // v1: the devices group; v2: chapter 05's group, which holds the
    // device program (removing the group detaches it).
    let (root, members) = if cgroup_v2() {
        ("/sys/fs/cgroup", "cgroup.procs")
    } else {
        ("/sys/fs/cgroup/devices", "tasks")
    };
    let group = Path::new(root)
        .join("pods-from-scratch")
        .join(run.id().to_string());
    for _ in 0..100 {
        if group.join(members).exists()
            && !std::fs::read_to_string(group.join(members))
                .unwrap_or_default()
                .is_empty()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run.kill().expect("kill ch07"); // SIGKILL: no cleanup of its own
    run.wait().expect("wait for ch07");
    assert!(group.exists(), "the killed run left no group to clean up");
    let output = testkit::run(CH07, &["cleanup"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!group.exists(), "{} is still there", group.display());
    assert_no_stale_group();
    testkit::HostState::capture().assert_unchanged_since(&before);
}
