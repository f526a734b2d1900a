//! The lifecycle as podman's conmon and containerd's shim drive it:
//! create, state, start, kill, delete, exec, hooks, the --log file, and
//! what a `create` killed half-way leaves for `delete --force`. Each test
//! makes its own bundle (a busybox root filesystem and a config.json) and
//! its own --root under a temporary directory. Run as root.

use std::fs;
use std::io::{Read, Seek};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{require_root, stderr, stdout, HostState};

const CH08: &str = env!("CARGO_BIN_EXE_ch08");
const SCHEMAS: &str = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema";

/// A bundle, a --root and an id of the test's own.
struct Container {
    dir: tempfile::TempDir,
    id: String,
}

impl Container {
    /// A busybox bundle whose process runs `script`.
    fn new(name: &str, script: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bundle/rootfs/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::copy("/bin/busybox", bin.join("busybox")).expect("copy /bin/busybox (busybox-static)");
        for applet in ["sh", "sleep", "echo", "cat", "hostname", "true", "tty"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        fs::create_dir_all(dir.path().join("bundle/rootfs/proc")).unwrap();
        let container = Container {
            dir,
            id: format!("lc-{name}-{}", std::process::id()),
        };
        container.write_config(&config(script));
        container
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn state_dir(&self) -> PathBuf {
        self.root().join(&self.id)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_config(&self, config: &Value) {
        fs::write(self.bundle().join("config.json"), config.to_string()).unwrap();
    }

    /// `ch08 --root ROOT ARGS...`, with `ID` replaced by the id.
    fn ch08(&self, args: &[&str]) -> Output {
        self.ch08_with(args, &[])
    }

    /// Output goes to files, not pipes: a created container keeps the
    /// stdio `create` was given (conmon's pipes), and a pipe would not
    /// reach its end before the container's.
    fn ch08_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let args = args
            .iter()
            .map(|a| if *a == "ID" { self.id.as_str() } else { a });
        let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let status = Command::new(CH08)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("run ch08");
        let read = |mut file: fs::File| {
            let mut bytes = Vec::new();
            file.seek(std::io::SeekFrom::Start(0)).unwrap();
            file.read_to_end(&mut bytes).unwrap();
            bytes
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.ch08(args);
        assert!(
            output.status.success(),
            "ch08 {args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    fn create(&self) {
        let bundle = self.bundle();
        let pid_file = self.path("pid");
        let output = self.ch08(&[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "ID",
        ]);
        assert!(output.status.success(), "create: {}", stderr(&output));
        assert_eq!(
            stdout(&output),
            "",
            "create printed on stdout (conmon reads it)"
        );
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", "ID"])).expect("state is JSON")
    }

    fn wait_for_status(&self, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.state()["status"] != status {
            assert!(
                Instant::now() < deadline,
                "never {status}: {}",
                self.state()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The container's groups (v2: one; v1: one per hierarchy we use).
    fn cgroups(&self) -> Vec<PathBuf> {
        let group = Path::new("pods-from-scratch").join(&self.id);
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            return vec![root.join(group)];
        }
        ["memory", "pids", "cpu", "cpuacct"]
            .iter()
            .map(|c| root.join(c).join(&group))
            .collect()
    }

    fn assert_nothing_left(&self, before: &HostState) {
        assert!(!self.state_dir().exists(), "the state directory is left");
        for group in self.cgroups() {
            assert!(!group.exists(), "{} is left", group.display());
        }
        HostState::capture().assert_unchanged_since(before);
    }
}

/// A minimal config.json, as `runc spec` writes it, less what this part
/// does not need: new namespaces (the host network is never touched),
/// /proc, a writable root.
fn config(script: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"],
                             "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "box",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    })
}

fn error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(125), "{}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    text
}

#[test]
fn create_stops_before_the_command_and_start_releases_it() {
    require_root();
    let before = HostState::capture();
    let c = Container::new("cycle", "echo ran > /ran; exec sleep 100");
    c.create();

    let state = c.state();
    assert_eq!(state["status"], "created");
    let pid = fs::read_to_string(c.path("pid")).unwrap();
    assert_eq!(
        state["pid"].to_string(),
        pid,
        "state and the pid file disagree"
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "no process {pid}"
    );
    assert!(
        !c.bundle().join("rootfs/ran").exists(),
        "the command ran before start"
    );
    assert_eq!(
        c.ok(&["ps", "--format", "json", "ID"]).trim(),
        format!("[{pid}]")
    );

    c.ok(&["start", "ID"]);
    c.wait_for_status("running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.bundle().join("rootfs/ran").exists() {
        assert!(
            Instant::now() < deadline,
            "the command did not run after start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !c.state_dir().join("exec.fifo").exists(),
        "the fifo outlived start"
    );

    c.ok(&["kill", "ID", "KILL"]);
    c.wait_for_status("stopped");
    assert!(
        c.state().get("pid").is_none(),
        "a stopped container has no pid"
    );
    c.ok(&["delete", "ID"]);
    c.assert_nothing_left(&before);
}

#[test]
fn state_validates_against_the_runtime_specs_schema() {
    require_root();
    let c = Container::new("schema", "exec sleep 100");
    c.create();
    validate(&c.ok(&["state", "ID"]));
    c.ok(&["start", "ID"]);
    validate(&c.ok(&["state", "ID"]));
    c.ok(&["delete", "--force", "ID"]);
}

/// Validate `state` with python3's jsonschema against the spec's schema,
/// whose `$ref`s name defs.json next to it.
fn validate(state: &str) {
    let script = format!(
        r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import jsonschema
schema = json.load(open("{SCHEMAS}/state-schema.json"))
resolver = jsonschema.RefResolver("file://{SCHEMAS}/", schema)
jsonschema.validate(json.loads(sys.stdin.read()), schema, resolver=resolver)
"#
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/provision.sh installs python3-jsonschema)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(state.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{state}\ndoes not validate: {}",
        stderr(&output)
    );
}

#[test]
fn a_create_killed_at_any_step_is_undone_by_delete_force() {
    require_root();
    let before = HostState::capture();
    // The steps of chapters 01 and 05 that `create` passes (the child's
    // before-exec comes only after start).
    let points = [
        "after-cgroup",
        "after-prepare",
        "after-clone",
        "after-cgroup-join",
    ];
    for point in points {
        let c = Container::new("fault", "echo ran > /ran");
        let bundle = c.bundle();
        let args = ["create", "--bundle", bundle.to_str().unwrap(), "ID"];
        let output = c.ch08_with(&args, &[("PFS_FAULT_AT", point)]);
        assert_eq!(
            output.status.signal(),
            Some(9),
            "{point}: {}",
            stderr(&output)
        );
        assert_ne!(c.state()["status"], "created", "{point}: create finished");
        assert!(
            c.state_dir().exists(),
            "{point}: no record written before the steps"
        );
        assert_eq!(c.state()["status"], "creating", "{point}");
        let unforced = c.ch08(&["delete", "ID"]);
        assert!(error_line(&unforced).contains("--force"), "{point}");
        c.ok(&["delete", "--force", "ID"]);
        c.assert_nothing_left(&before);
        assert!(
            !bundle.join("rootfs/ran").exists(),
            "{point}: the command ran"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing_behind() {
    require_root();
    let before = HostState::capture();
    let c = Container::new("bad", "exec sleep 100");
    let bundle = c.bundle();
    let bundle = bundle.to_str().unwrap();

    let bad = c.ch08(&["create", "--bundle", bundle, "../x"]);
    assert!(error_line(&bad).contains("invalid container id"));
    for args in [
        ["state", "ID"],
        ["start", "ID"],
        ["kill", "ID"],
        ["delete", "ID"],
    ] {
        assert!(
            error_line(&c.ch08(&args)).contains("does not exist"),
            "{args:?}"
        );
    }
    assert!(
        c.ch08(&["delete", "--force", "ID"]).status.success(),
        "delete --force of nothing"
    );

    let systemd = c.ch08(&["--systemd-cgroup", "create", "--bundle", bundle, "ID"]);
    assert!(error_line(&systemd).contains("cgroup_manager = \"cgroupfs\""));

    let mut no_process = config("true");
    no_process.as_object_mut().unwrap().remove("process");
    c.write_config(&no_process);
    assert!(error_line(&c.ch08(&["create", "--bundle", bundle, "ID"])).contains("process"));
    c.assert_nothing_left(&before);

    c.write_config(&config("exec sleep 100"));
    c.create();
    let taken = c.ch08(&["create", "--bundle", bundle, "ID"]);
    assert!(error_line(&taken).contains("exists already"));
    assert_eq!(
        c.state()["status"],
        "created",
        "the refused create touched the first"
    );
    c.ok(&["start", "ID"]);
    assert!(error_line(&c.ch08(&["start", "ID"])).contains("only a created container"));
    let running = c.ch08(&["delete", "ID"]);
    assert!(error_line(&running).contains("--force"));
    assert_eq!(
        c.state()["status"],
        "running",
        "delete without --force stopped it"
    );
    c.ok(&["delete", "--force", "ID"]);
    let stopped = c.ch08(&["kill", "ID"]);
    assert!(error_line(&stopped).contains("does not exist"));
    c.assert_nothing_left(&before);
}

#[test]
fn kill_of_a_stopped_container_says_container_not_running() {
    require_root();
    let c = Container::new("stopped", "true");
    c.create();
    c.ok(&["start", "ID"]);
    c.wait_for_status("stopped");
    assert!(error_line(&c.ch08(&["kill", "ID", "TERM"])).contains("container not running"));
    c.ok(&["delete", "ID"]);
}

#[test]
fn exec_joins_the_running_containers_namespaces_and_cgroup() {
    require_root();
    let before = HostState::capture();
    let c = Container::new("exec", "exec sleep 100");
    c.create();
    c.ok(&["start", "ID"]);
    let pid = c.state()["pid"].to_string();

    assert_eq!(c.ok(&["exec", "ID", "hostname"]), "box\n");
    // As confined as the container: the capabilities config.json gives.
    let cap_eff = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("CapEff"))
            .unwrap()
            .to_owned()
    };
    let container = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let exec = c.ok(&["exec", "ID", "cat", "/proc/self/status"]);
    assert_eq!(
        cap_eff(&exec),
        cap_eff(&container),
        "exec has other capabilities"
    );
    let status = c.ch08(&["exec", "ID", "sh", "-c", "exit 3"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "exec's status is the process's"
    );

    let process = c.path("process.json");
    let args = json!({"args": ["sleep", "100"], "cwd": "/", "env": ["PATH=/bin"],
                      "user": {"uid": 0, "gid": 0}, "terminal": false});
    fs::write(&process, args.to_string()).unwrap();
    let pid_file = c.path("exec.pid");
    c.ok(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "ID",
    ]);
    let exec_pid = fs::read_to_string(&pid_file).unwrap();
    for ns in ["pid", "net", "uts", "ipc", "mnt"] {
        assert_eq!(
            testkit::namespace_of(&exec_pid, ns),
            testkit::namespace_of(&pid, ns),
            "exec is not in the container's {ns} namespace"
        );
    }
    let cgroup = |pid: &str| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        cgroup(&exec_pid),
        cgroup(&pid),
        "exec is not in the container's cgroup"
    );
    let listed = c.ok(&["ps", "--format", "json", "ID"]);
    assert!(
        listed.contains(&exec_pid),
        "ps does not list {exec_pid}: {listed}"
    );

    c.ok(&["delete", "--force", "ID"]);
    // Gone, or a zombie waiting for whoever adopted it to collect it.
    let stat = fs::read_to_string(format!("/proc/{exec_pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert!(
        matches!(state, None | Some("Z")),
        "exec outlived delete: {stat}"
    );
    c.assert_nothing_left(&before);
}

#[test]
fn errors_are_appended_to_the_log_as_json_lines() {
    require_root();
    let c = Container::new("log", "true");
    let log = c.path("log.json");
    let log_arg = log.to_str().unwrap();
    for _ in 0..2 {
        c.ch08(&["--log", log_arg, "--log-format", "json", "state", "ID"]);
    }
    let text = fs::read_to_string(&log).expect("no log written");
    assert_eq!(text.lines().count(), 2, "{text}");
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("does not exist"),
        "{last}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'), "{last}");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    require_root();
    let before = HostState::capture();
    let c = Container::new("hooks", "exec sleep 100");
    let out = c.dir.path().display().to_string();
    let hook = |kind: &str| {
        let script = format!("cat > {out}/{kind}.json; echo {kind} >> {out}/order");
        json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
    };
    let mut config = config("exec sleep 100");
    config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    c.write_config(&config);
    c.create();
    c.ok(&["start", "ID"]);
    c.ok(&["delete", "--force", "ID"]);
    let order = fs::read_to_string(c.path("order")).unwrap();
    assert_eq!(order, "prestart\ncreateRuntime\npoststart\npoststop\n");
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        let state: Value =
            serde_json::from_str(&fs::read_to_string(c.path(&format!("{kind}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("{kind}'s stdin is not the state: {e}"));
        assert_eq!(state["id"].as_str(), Some(c.id.as_str()), "{kind}");
    }
    let created: Value =
        serde_json::from_str(&fs::read_to_string(c.path("createRuntime.json")).unwrap()).unwrap();
    assert!(
        created["pid"].as_i64().is_some(),
        "createRuntime has no pid: {created}"
    );
    c.assert_nothing_left(&before);

    // A failing createRuntime hook fails create and undoes it all.
    config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    c.write_config(&config);
    let bundle = c.bundle();
    let failed = c.ch08(&["create", "--bundle", bundle.to_str().unwrap(), "ID"]);
    assert!(error_line(&failed).contains("hooks.createRuntime"));
    c.assert_nothing_left(&before);
}

#[test]
fn features_and_version_say_what_we_are() {
    let features: Value = serde_json::from_str(&stdout(
        &Command::new(CH08).arg("features").output().unwrap(),
    ))
    .unwrap();
    assert_eq!(features["ociVersionMax"], "1.1.0");
    assert!(features["hooks"]
        .as_array()
        .unwrap()
        .contains(&json!("poststop")));
    let version = stdout(&Command::new(CH08).arg("--version").output().unwrap());
    assert!(
        version.starts_with("ch08 version 0.1.0\nspec: 1."),
        "{version}"
    );
}

#[test]
fn a_terminal_is_sent_over_the_console_socket_as_conmon_asks() {
    require_root();
    let before = HostState::capture();
    let c = Container::new("tty", "exec sh");
    let mut config = config("exec sh");
    config["process"]["terminal"] = json!(true);
    let devpts = json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]});
    config["mounts"].as_array_mut().unwrap().push(devpts);
    c.write_config(&config);
    let bundle = c.bundle();
    let bundle = bundle.to_str().unwrap();
    let no_socket = c.ch08(&["create", "--bundle", bundle, "ID"]);
    assert!(error_line(&no_socket).contains("--console-socket"));
    c.assert_nothing_left(&before);

    // Play conmon: listen, receive the master end, type into it.
    let socket = c.path("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let socket = socket.to_str().unwrap();
    c.ok(&[
        "create",
        "--bundle",
        bundle,
        "--console-socket",
        socket,
        "ID",
    ]);
    let master = pfs_oci::console::receive_master(&listener).expect("no terminal received");
    c.ok(&["start", "ID"]);
    // The shell's answer, "hi2", differs from the echo of what we typed.
    let seen = converse(master, "echo hi$((1+1)); tty", &["hi2", "/dev/pts/"]);
    assert!(
        seen.contains("\nhi2"),
        "the shell did not answer on the terminal: {seen:?}"
    );
    assert!(
        seen.contains("/dev/pts/0"),
        "stdin is not the container's pty: {seen:?}"
    );

    // `podman exec -t`: a second terminal, from the same devpts.
    let pid_file = c.path("exec.pid");
    let exec = [
        "exec",
        "--tty",
        "--console-socket",
        socket,
        "--detach",
        "--pid-file",
    ];
    c.ok(&[&exec[..], &[pid_file.to_str().unwrap(), "ID", "sh"]].concat());
    let master = pfs_oci::console::receive_master(&listener).expect("no exec terminal");
    let seen = converse(master, "echo ex$((2+2)); tty", &["ex4", "/dev/pts/"]);
    assert!(
        seen.contains("\nex4") && seen.contains("/dev/pts/1"),
        "exec's shell did not answer on its own terminal: {seen:?}"
    );
    c.ok(&["delete", "--force", "ID"]);
    c.assert_nothing_left(&before);
}

/// Type `input` into the terminal's master end; what came back once every
/// one of `expected` was seen (or after 5 s).
fn converse(master: std::os::fd::OwnedFd, input: &str, expected: &[&str]) -> String {
    use std::io::Write;
    let mut terminal = fs::File::from(master);
    let mut reader = terminal.try_clone().unwrap();
    let (chunks, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            let _ = chunks.send(buffer[..n].to_vec());
        }
    });
    terminal.write_all(format!("{input}\n").as_bytes()).unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !expected.iter().all(|e| seen.contains(e)) && Instant::now() < deadline {
        if let Ok(chunk) = received.recv_timeout(Duration::from_millis(100)) {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    seen
}

#[test]
fn only_the_preserved_descriptors_reach_the_process() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    require_root();
    let before = HostState::capture();
    let c = Container::new("fds", "exec sleep 100");
    // The caller's descriptors 3 and 4, inherited (no close-on-exec).
    let null = fs::File::open("/dev/null").unwrap();
    let extra = null.as_raw_fd();
    for (preserve, expected) in [("0", "0 1 2"), ("1", "0 1 2 3")] {
        let mut create = Command::new(CH08);
        create
            .arg("--root")
            .arg(c.root())
            .args(["create", "--preserve-fds", preserve]);
        create.arg("--bundle").arg(c.bundle()).arg(&c.id);
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: dup2 only, between fork and exec.
        unsafe {
            create.pre_exec(move || {
                // From above 4 first: `extra` itself may be 3 (dup2 to itself
                // would keep its close-on-exec).
                let high = nix::libc::fcntl(extra, nix::libc::F_DUPFD, 10);
                for fd in [3, 4] {
                    if high < 0 || nix::libc::dup2(high, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            })
        };
        assert!(
            create.status().unwrap().success(),
            "create --preserve-fds {preserve}"
        );
        c.ok(&["start", "ID"]);
        let pid = c.state()["pid"].to_string();
        let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
            .collect();
        fds.sort();
        let fds: Vec<String> = fds.iter().map(u32::to_string).collect();
        c.ok(&["delete", "--force", "ID"]); // first: a failed check leaves nothing
        assert_eq!(fds.join(" "), expected, "--preserve-fds {preserve}");
    }
    c.assert_nothing_left(&before);
}
