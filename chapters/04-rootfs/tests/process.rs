//! Chapter 04's process: with a root of its own, a container starts from a
//! clean environment, and a pulled image's config (`Env`, `WorkingDir`,
//! `User`, `Entrypoint`, `Cmd`) gives the defaults, as `docker run` does.
//! Run as root; the image test needs docker-registry, skopeo and umoci.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::registry::{OciLayout, Registry, TempDir};
use testkit::{error_line, run_checking_host, stderr, stdout, HostState};

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

/// `ch04 run --net none ARGS` on the shared test data directory.
fn ch04_run(args: &[&str]) -> Output {
    testkit::test_data_dir();
    run_checking_host(CH04, &[&["run", "--net", "none"], args].concat())
}

#[test]
fn the_environment_is_clean_not_ours() {
    testkit::require_root();
    testkit::test_data_dir();
    let output = Command::new(CH04)
        .args(["run", "--net", "none", "--hostname", "box", "--", "env"])
        .env("HOST_SECRET", "must not leak")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut env: Vec<_> = stdout(&output).lines().map(String::from).collect();
    env.sort();
    assert_eq!(
        env,
        [
            "HOME=/root",
            "HOSTNAME=box",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
        "{}",
        stderr(&output)
    );
}

#[test]
fn w_is_made_in_the_container_and_not_in_the_image() {
    let output = ch04_run(&["-w", "/srv/app", "--", "pwd"]);
    assert_eq!(stdout(&output), "/srv/app\n", "{}", stderr(&output));
    let busybox = testkit::test_data_dir().join("rootfs/busybox");
    assert!(busybox.join("etc").is_dir());
    assert!(!busybox.join("srv").exists(), "-w wrote into the image");
}

#[test]
fn u_reads_the_containers_passwd_for_group_and_home() {
    let output = ch04_run(&["-u", "65534", "--", "sh", "-c", "id -u; id -g; echo $HOME"]);
    assert_eq!(stdout(&output), "65534\n65534\n/\n", "{}", stderr(&output));
    let unknown = ch04_run(&["-u", "1000", "--", "sh", "-c", "id -g; echo $HOME"]);
    assert_eq!(stdout(&unknown), "0\n/\n");
}

#[test]
fn no_command_and_no_image_command_is_one_clear_line() {
    let output = ch04_run(&[]);
    let message = error_line(&output, 125);
    assert!(message.starts_with("ch04: missing command"), "{message}");
}

/// `ch04 ARGS` with its own data (and state) directory.
fn ch04(data: &Path, args: &[&str]) -> Output {
    testkit::run_with_data_dir(CH04, data, args)
}

/// An image of the busybox rootfs whose config says how to run it.
fn image_with_a_config(scratch: &TempDir) -> OciLayout {
    let output = ch04(&scratch.join("data"), &["rootfs", "busybox"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let busybox = PathBuf::from(stdout(&output).trim());
    let layout = OciLayout::init(&scratch.join("oci"));
    layout.new_image("app");
    layout.insert_dir("app", &busybox, "/");
    testkit::registry::run_tool(
        "umoci",
        &[
            "config",
            "--image",
            &layout.image("app"),
            "--config.env=GREETING=from the image",
            "--config.env=MODE=image",
            "--config.workingdir=/srv/app",
            "--config.user=65534",
            "--config.entrypoint=/bin/sh",
            "--config.entrypoint=-c",
            "--config.cmd=echo \"$GREETING, $MODE, $(pwd), $(id -u):$(id -g)\"",
        ],
    );
    layout
}

#[test]
fn the_images_config_gives_env_workdir_user_and_command() {
    testkit::require_root();
    let scratch = TempDir::new("process-image");
    let layout = image_with_a_config(&scratch);
    let registry = Registry::start();
    let reference = layout.push("app", &registry, "app:v1");
    let data = scratch.join("data");
    let pulled = ch04(&data, &["pull", &reference]);
    assert!(pulled.status.success(), "{}", stderr(&pulled));

    let before = HostState::capture();
    let run = |args: &[&str]| {
        let base = ["run", "--net", "none", "--rootfs", &reference];
        ch04(&data, &[&base, args].concat())
    };
    // No command: Entrypoint + Cmd, with the image's Env, WorkingDir, User.
    let output = run(&[]);
    assert_eq!(
        stdout(&output),
        "from the image, image, /srv/app, 65534:65534\n",
        "{}",
        stderr(&output)
    );
    // -e, -w, -u win; a given command replaces Cmd, after the Entrypoint.
    let output = run(&[
        "-e",
        "MODE=option",
        "-w",
        "/tmp",
        "-u",
        "0",
        "--",
        "echo $MODE $(pwd) $(id -u)",
    ]);
    assert_eq!(stdout(&output), "option /tmp 0\n", "{}", stderr(&output));
    HostState::capture().assert_unchanged_since(&before);
    let containers = data.join("containers");
    let left = std::fs::read_dir(&containers).map_or(0, |d| d.count());
    assert_eq!(left, 0, "a container directory was left behind");
}
