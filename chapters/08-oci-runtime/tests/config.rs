//! config.json's fields, each checked from inside the container it makes:
//! a bundle per test (a busybox root filesystem, a config.json written
//! here), run in the foreground with `ch08 run`. Run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use testkit::registry::TempDir;
use testkit::{error_line, run_checking_host, stderr, stdout};

const CH08: &str = env!("CARGO_BIN_EXE_ch08");

/// A bundle in a directory of its own, removed when dropped.
struct Bundle {
    dir: TempDir,
}

impl Bundle {
    /// A busybox root filesystem and a config.json like podman's, with
    /// `script` as the command and `patch` merged into the config.
    fn new(script: &str, patch: Value) -> Bundle {
        testkit::require_root();
        let dir = TempDir::new("ch08-config");
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(busybox(), bin.join("busybox")).unwrap();
        let list = Command::new(busybox()).arg("--list").output().unwrap();
        for applet in stdout(&list).lines().filter(|a| *a != "busybox") {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let mut config = base_config(script);
        merge(&mut config, patch);
        let text = serde_json::to_string_pretty(&config).unwrap();
        std::fs::write(dir.join("config.json"), text).unwrap();
        Bundle { dir }
    }

    /// Add `mounts` after the config's own.
    fn add_mounts(&self, mounts: &[Value]) {
        let file = self.dir.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        config["mounts"]
            .as_array_mut()
            .unwrap()
            .extend_from_slice(mounts);
        std::fs::write(&file, config.to_string()).unwrap();
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `ch08 --root STATE run --bundle B ID`, checking the host is left
    /// as found.
    fn run(&self, id: &str) -> Output {
        let (root, bundle) = (self.dir.join("state"), self.dir.path.clone());
        let args = ["--root", path(&root), "run", "--bundle", path(&bundle), id];
        let output = run_checking_host(CH08, &args);
        assert!(!root.join(id).exists(), "state left behind");
        for hierarchy in ["memory", "pids", "devices", ""] {
            let group = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join("pods-from-scratch")
                .join(id);
            assert!(!group.exists(), "{} left behind", group.display());
        }
        output
    }

    /// What the command printed, asserting it ran and exited 0.
    fn output(&self, id: &str) -> String {
        let output = self.run(id);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox (apt-get install busybox-static)")
}

fn base_config(script: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "hostname": "cfg",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]
        }
    })
}

/// Merge `patch` into `config`: objects key by key, anything else replaced.
fn merge(config: &mut Value, patch: Value) {
    match (config, patch) {
        (Value::Object(config), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(config.entry(key).or_insert(Value::Null), value);
            }
        }
        (config, patch) => *config = patch,
    }
}

/// Assert that `out` holds each of `expected`.
fn assert_contains(out: &str, expected: &[&str]) {
    for text in expected {
        assert!(out.contains(text), "no {text:?} in:\n{out}");
    }
}

/// The value of `field` in a `/proc/self/status` text.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    let line = status.lines().find(|l| l.starts_with(&format!("{name}:")));
    line.unwrap_or_else(|| panic!("no {name} in {status}"))[name.len() + 1..].trim()
}

#[test]
fn process_fields_set_capabilities_limits_umask_groups_and_oom_score() {
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let bundle = Bundle::new(
        "cat /proc/self/status; echo nofile=$(ulimit -n); echo oom=$(cat /proc/self/oom_score_adj); \
         echo umask=$(umask); echo groups=$(id -G)",
        json!({"process": {
            "user": {"uid": 1000, "gid": 1000, "umask": 23, "additionalGids": [10, 20]},
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": caps, "ambient": caps},
            "noNewPrivileges": true,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
            "oomScoreAdj": 500
        }}),
    );
    let out = bundle.output("cfg-process");
    // CAP_KILL is 5, CAP_NET_BIND_SERVICE 10: bits 0x20 and 0x400, kept
    // through the change to uid 1000, and through execve as ambient.
    for set in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(field(&out, set), "0000000000000420", "{set}");
    }
    assert_eq!(field(&out, "NoNewPrivs"), "1");
    assert_eq!(field(&out, "Seccomp"), "0");
    let expected = [
        "nofile=256\n",
        "oom=500\n",
        "umask=0027\n",
        "groups=1000 10 20\n",
    ];
    assert_contains(&out, &expected);
}

#[test]
fn linux_fields_set_limits_sysctls_masks_read_only_paths_and_devices() {
    let bundle = Bundle::new(
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
         cat /sys/fs/cgroup/memory.swap.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes; \
         cat /sys/fs/cgroup/cpu.weight 2>/dev/null || echo v1; \
         echo ping=$(cat /proc/sys/net/ipv4/ping_group_range); \
         echo masked=$(wc -c < /proc/meminfo); \
         echo 1 > /proc/sys/net/ipv4/ip_forward || echo read-only; \
         ls -l /dev/tun2; (: < /dev/tun2) 2>&1; echo null=$(echo x > /dev/null && echo ok)",
        json!({"linux": {
            "resources": {
                "memory": {"limit": 67108864, "swap": 134217728},
                "cpu": {"shares": 512},
                "pids": {"limit": 42},
                "devices": [{"allow": false, "access": "rwm"}]
            },
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "maskedPaths": ["/proc/meminfo"],
            "readonlyPaths": ["/proc/sys"],
            "devices": [{"path": "/dev/tun2", "type": "c", "major": 10, "minor": 200, "fileMode": 384}]
        }}),
    );
    let out = bundle.output("cfg-linux");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "67108864", "memory limit: {out}");
    assert_eq!(lines[1], "42", "pids limit: {out}");
    // Swap: memory+swap on v1, the swap alone on v2 (with CPU shares as
    // a weight; v1's cpu hierarchy is not mounted in the container).
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (swap, weight) = if v2 {
        ("67108864", "20")
    } else {
        ("134217728", "v1")
    };
    assert_eq!((lines[2], lines[3]), (swap, weight), "{out}");
    // The node is made with its mode, never opened; the nodes every
    // container has stay allowed.
    let expected = ["ping=0 0\n", "masked=0\n", "read-only\n", "crw-------"];
    assert_contains(
        &out,
        &[&expected[..], &["Operation not permitted", "null=ok\n"]].concat(),
    );
}

#[test]
fn a_seccomp_rule_gives_its_errno_to_root_and_to_a_user() {
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]
    });
    // As a user without no_new_privs, the filter must go in while we are
    // still root: it needs CAP_SYS_ADMIN then.
    for (id, uid, nnp) in [("cfg-seccomp", 0, true), ("cfg-seccomp-user", 1000, false)] {
        let bundle = Bundle::new(
            "mkdir /dev/shm/x 2>&1; grep Seccomp: /proc/self/status",
            json!({"process": {"user": {"uid": uid, "gid": uid}, "noNewPrivileges": nnp},
                   "linux": {"seccomp": seccomp}}),
        );
        let out = bundle.output(id);
        assert_contains(&out, &["Operation not supported", "Seccomp:\t2"]); // errno 95
    }
}

#[test]
fn a_user_namespace_gets_the_configs_maps() {
    let bundle = Bundle::new(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]
        }}),
    );
    // The engine gives the image to the range (podman chowns it).
    let chown = Command::new("chown")
        .args(["-hR", "200000:200000", path(&bundle.rootfs())])
        .status();
    assert!(chown.unwrap().success());
    let out = bundle.output("cfg-userns");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "200000", "65536", "0", "200000", "65536", "0"],
        "{out}"
    );
}

#[test]
fn a_malicious_rootfs_cannot_make_ch08_mount_or_create_outside_it() {
    let outside = TempDir::new("ch08-outside");
    let bundle = Bundle::new(
        "ls /escape /up/sub; ls -l /escape/evil",
        json!({"linux": {"devices": [{"path": "/escape/evil", "type": "c", "major": 1, "minor": 3}]}}),
    );
    bundle.add_mounts(&[
        json!({"destination": "/escape/tmpfs", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": "/up/sub/deep", "type": "tmpfs", "source": "tmpfs"}),
    ]);
    // Followed on the host, both symlinks would lead to `outside`; in the
    // root, to the image's own directory of that name.
    let rootfs = bundle.rootfs();
    let inside = rootfs.join(outside.path.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    std::os::unix::fs::symlink(&outside.path, rootfs.join("escape")).unwrap();
    let up = "../".repeat(rootfs.components().count() + 2);
    let target = format!("{up}{}", outside.path.strip_prefix("/").unwrap().display());
    std::os::unix::fs::symlink(target, rootfs.join("up")).unwrap();

    let out = bundle.output("cfg-symlinks");
    assert!(out.contains("tmpfs"), "made inside the root: {out}");
    assert!(out.contains("crw"), "the node, inside the root: {out}");
    let left: Vec<_> = std::fs::read_dir(&outside.path).unwrap().collect();
    assert!(left.is_empty(), "created outside the root: {left:?}");
    assert!(inside.join("tmpfs").is_dir() && inside.join("sub/deep").is_dir());
}

#[test]
fn an_unsupported_field_is_named_and_nothing_is_left() {
    let bundle = Bundle::new("true", json!({"linux": {"intelRdt": {"closID": "x"}}}));
    let message = error_line(&bundle.run("cfg-rdt"), 125);
    assert_eq!(
        message.trim(),
        "ch08: config.json: linux.intelRdt is not supported by ch08 (remove it, or use runc or crun)"
    );
}

#[test]
fn a_missing_bind_source_is_refused_before_anything_is_made() {
    let bundle = Bundle::new("true", json!({}));
    let missing = bundle.dir.join("no-such-dir");
    bundle.add_mounts(&[
        json!({"destination": "/data", "type": "bind", "source": missing,
                               "options": ["rbind"]}),
    ]);
    let message = error_line(&bundle.run("cfg-bad-mount"), 125);
    assert!(
        message.contains("the source of /data does not exist"),
        "{message}"
    );
    assert!(
        !bundle.rootfs().join("data").exists(),
        "its mount point was made"
    );
}

#[test]
fn a_host_sysctl_and_a_missing_lsm_are_refused_with_one_line() {
    let bundle = Bundle::new(
        "true",
        json!({"linux": {"sysctl": {"vm.swappiness": "10"}}}),
    );
    let message = error_line(&bundle.run("cfg-sysctl"), 125);
    assert!(message.contains("linux.sysctl: vm.swappiness"), "{message}");

    let apparmor = Path::new("/sys/module/apparmor/parameters/enabled");
    let enabled = std::fs::read_to_string(apparmor).is_ok_and(|t| t.trim() == "Y");
    let bundle = Bundle::new(
        "cat /proc/self/attr/apparmor/current",
        json!({"process": {"apparmorProfile": "unconfined"}}),
    );
    if enabled {
        assert_eq!(bundle.output("cfg-apparmor").trim(), "unconfined");
    } else {
        let message = error_line(&bundle.run("cfg-apparmor"), 125);
        assert!(
            message.contains("process.apparmorProfile: AppArmor is not enabled"),
            "{message}"
        );
    }
}

#[test]
fn podmans_mounts_bind_files_and_copy_up_a_tmpfs() {
    let bundle = Bundle::new(
        "cat /etc/hosts; cat /etc/motd; echo changed > /etc/motd; grep ' /etc ' /proc/mounts; \
         echo x >> /etc/hosts || echo hosts-read-only",
        json!({}),
    );
    std::fs::create_dir_all(bundle.rootfs().join("etc")).unwrap();
    std::fs::write(bundle.rootfs().join("etc/motd"), "from the image\n").unwrap();
    let hosts = bundle.dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 cfg\n").unwrap();
    let tmpfs = ["nosuid", "nodev", "tmpcopyup", "mode=755"];
    bundle.add_mounts(&[
        json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": tmpfs}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": hosts,
               "options": ["bind", "rprivate", "ro"]}),
    ]);

    let out = bundle.output("cfg-podman-mounts");
    assert!(out.starts_with("127.0.0.1 cfg\nfrom the image\n"), "{out}");
    assert!(out.contains("tmpfs /etc tmpfs rw,nosuid,nodev"), "{out}");
    assert!(out.contains("hosts-read-only"), "{out}");
    let motd = std::fs::read_to_string(bundle.rootfs().join("etc/motd")).unwrap();
    assert_eq!(
        motd, "from the image\n",
        "written to the tmpfs, not the image"
    );
}
