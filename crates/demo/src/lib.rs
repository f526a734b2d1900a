//! `ch06 demo`: the story of the pod, replayed step by step, each step a
//! `ch06` command and a line saying what it shows.
//!
//! Machinery, not a lesson: this crate stages chapter 06's commands; it
//! teaches nothing of its own. The lesson is chapter 06
//! (`chapters/06-pod`: the pause process, shared namespaces, one IP per
//! pod), and the book's chapter 06 page shows what the demo prints, step
//! by step. `ch06 demo` calls [`demo`]; the steps run the `ch06` program
//! itself (its `/proc/self/exe`, copied into the sandbox).
//!
//! Safe on a laptop: the demo first starts itself again, with chapter 01's
//! runtime, in a throwaway "host" of its own: new PID, mount and network
//! namespaces, a fresh `/proc`, and a tmpfs on `/tmp` for its state and
//! data. Its bridge, veths and addresses live in that network namespace;
//! its bind mounts and files in that mount namespace. When the demo ends,
//! or is killed, the kernel removes it all: killing PID 1 of a PID
//! namespace kills every process in it. Only cgroups are global: the demo
//! removes its pod, and `ch06 cleanup` (run on the host) removes the empty
//! groups a killed demo leaves.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use ch01::{explain, Layer};
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// Options of `demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Do not wait for Enter between steps (the default when stdin is not
    /// a terminal, e.g. in a script)
    #[arg(long)]
    pub no_pause: bool,
    /// Internal: tell the story (we are inside the throwaway host already)
    #[arg(long, hide = true)]
    pub inside: bool,
}

/// The demo's pod.
const POD: &str = "demo";
/// State and data of the demo, on the sandbox's own tmpfs.
const SANDBOX_DIR: &str = "/tmp/pods-from-scratch-demo";
/// Our own program, copied onto that tmpfs (which may hide where it was).
const DEMO_PROGRAM: &str = "/tmp/pods-from-scratch-demo/bin/ch06";

/// `ch06 demo`: start the story in a throwaway host.
pub fn demo(args: &DemoArgs) -> Result<i32> {
    if args.inside {
        return tell_the_story(args);
    }
    let mut command = vec![DEMO_PROGRAM.to_string(), "demo".into()];
    command.push("--inside".into());
    if args.no_pause {
        command.push("--no-pause".into());
    }
    let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(ch02::MountProc), Box::new(Sandbox)];
    ch01::run(&ch01::Process::new(command), &mut layers)
}

/// The throwaway host: a network namespace with only `lo`, and a tmpfs on
/// `/tmp` (chapter 02's `MountProc` gives the mount namespace and `/proc`).
struct Sandbox;

impl Layer for Sandbox {
    fn namespaces(&self) -> CloneFlags {
        CloneFlags::CLONE_NEWNET
    }

    fn setup_in_child(&mut self) -> Result<()> {
        ch03::set_link_up("lo")?;
        explain::step(
            "mount(\"tmpfs\", \"/tmp\", \"tmpfs\", 0)",
            "mount -t tmpfs tmpfs /tmp",
        );
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=1777"),
        )
        .context("mount a tmpfs on /tmp")?;
        // The tmpfs hides all that was under /tmp, our program maybe too
        // (a checkout in /tmp): copy it in, from the kernel's handle on it.
        let program = Path::new(DEMO_PROGRAM);
        std::fs::create_dir_all(program.parent().unwrap_or(Path::new("/tmp")))?;
        std::fs::copy("/proc/self/exe", program).context("copy our program to /tmp")?;
        Ok(())
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The storyteller, PID 1 of the throwaway host.
struct Story {
    exe: PathBuf,
    wait_for_enter: bool,
}

impl Story {
    /// A line of explanation, then (on a terminal) wait for Enter.
    fn say(&self, text: &str) {
        println!("\n# {text}");
        if self.wait_for_enter {
            print!("  [Enter] ");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
    }

    /// Show `ch06 ARGS`, run it, and say whether it worked.
    fn ch06(&self, args: &[&str]) -> Result<()> {
        println!("$ ch06 {}", explain::shell_words(args));
        let _ = std::io::stdout().flush();
        let status = Command::new(&self.exe).args(args).status();
        finish_step(status, &format!("ch06 {}", args.join(" ")))
    }

    /// Show a shell command, and run it.
    fn shell(&self, script: &str) -> Result<()> {
        println!("$ {script}");
        let _ = std::io::stdout().flush();
        let status = Command::new("sh").args(["-c", script]).status();
        finish_step(status, script)
    }
}

/// After each step: collect orphans, stop if interrupted or if it failed.
fn finish_step(status: std::io::Result<std::process::ExitStatus>, what: &str) -> Result<()> {
    let status = status.with_context(|| format!("run `{what}`"))?;
    reap_orphans();
    if INTERRUPTED.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted");
    }
    anyhow::ensure!(status.success(), "`{what}` failed");
    Ok(())
}

/// We are PID 1 of the throwaway host: pause and detached containers are
/// adopted by us when the `ch06` that started them exits. Collect those that
/// ended, like pause does (between steps, when no `ch06` of ours runs).
fn reap_orphans() {
    while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
        waitpid(None, Some(WaitPidFlag::WNOHANG))
    {}
}

fn tell_the_story(args: &DemoArgs) -> Result<i32> {
    // PID 1 ignores signals it has no handler for: catch them, to clean up.
    // (glibc's signal(3) restarts the calls a signal interrupts.)
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { signal(sig, SigHandler::Handler(on_interrupt)) }.context("signal")?;
    }
    // Single-threaded: setting the environment for our children is safe.
    std::env::set_var("PFS_STATE_DIR", format!("{SANDBOX_DIR}/state"));
    std::env::set_var("PFS_DATA_DIR", format!("{SANDBOX_DIR}/data"));
    let exe = std::env::current_exe()?;
    // Shell steps call `ch06` by name: put our directory first on the PATH.
    let mut path = vec![exe.parent().unwrap_or(Path::new("/")).to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::set_var("PATH", std::env::join_paths(path)?);
    let story = Story {
        exe,
        wait_for_enter: !args.no_pause && nix::unistd::isatty(std::io::stdin()).unwrap_or(false),
    };
    let told = steps(&story);
    if told.is_err() {
        // Whatever happened, remove the pod: its cgroups are the host's.
        // (Not `ch06 cleanup`: from inside our PID namespace, every process
        // of the host looks gone, and chapter 05's cleanup would take their
        // groups for leftovers.)
        let _ = Command::new(&story.exe)
            .args(["pod", "rm", POD, "--timeout", "1"])
            .stderr(std::process::Stdio::null())
            .status();
    }
    told.map(|()| 0)
}

// ANCHOR: steps
fn steps(story: &Story) -> Result<()> {
    let ns = format!("{SANDBOX_DIR}/state/pods/{POD}/ns");
    println!(
        "This demo runs in throwaway PID, mount and network namespaces: \
         what it makes is not seen by, nor left on, this machine."
    );

    story.say(
        "A pod starts with its pause process. Pause holds the pod's network, \
         IPC and UTS namespaces, and here (--share-pid) its PID namespace, \
         where it is PID 1. Then it sleeps. The pod also gets a volume, \
         logs: an empty directory its containers may share.",
    );
    story.ch06(&["pod", "create", POD, "--share-pid", "--volume", "logs"])?;
    story.ch06(&["pod", "ls"])?;

    story.say(
        "The pod's namespaces are bind-mounted files, as `ip netns` makes \
         them: anyone can enter the pod's network by path.",
    );
    story.shell(&format!(
        "ls {ns}; nsenter --net={ns}/net ip -o -4 addr show dev eth0"
    ))?;

    story.say(
        "A first container, web, joins those namespaces with setns(2). It \
         serves a page on 127.0.0.1 only.",
    );
    let server = "mkdir -p /www && echo 'hello from web, over localhost' > /www/index.html \
                  && exec httpd -f -p 127.0.0.1:8080 -h /www";
    story.ch06(&[
        "pod", "run", POD, "--name", "web", "-d", "--", "sh", "-c", server,
    ])?;
    story.ch06(&[
        "pod", "exec", POD, "web", "--", "ip", "-o", "-4", "addr", "show", "dev", "eth0",
    ])?;

    story.say(
        "A second container, client: its own root filesystem and mount \
         namespace, but the same eth0 and the same address. One IP per pod.",
    );
    story.ch06(&[
        "pod", "run", POD, "--name", "client", "--", "ip", "-o", "-4", "addr", "show", "dev",
        "eth0",
    ])?;

    story.say("Localhost is the pod's: the client reaches web's server on 127.0.0.1.");
    let client = "for i in 1 2 3 4 5 6 7 8 9 10; do \
                  wget -qO- http://127.0.0.1:8080/ && exit; sleep 0.2; done; exit 1";
    story.ch06(&[
        "pod", "run", POD, "--name", "client", "--", "sh", "-c", client,
    ])?;

    story.say(
        "Pause is PID 1 in every container's view. A subshell starts sleep \
         and exits at once: the orphaned sleep is adopted by PID 1, pause.",
    );
    let orphan = "(sleep 1 &); sleep 0.2; ps -o pid,ppid,stat,comm";
    story.ch06(&[
        "pod", "run", POD, "--name", "orphans", "--", "sh", "-c", orphan,
    ])?;

    story.say(
        "A second later sleep ended. Pause got SIGCHLD and collected its exit \
         status: no zombie (state Z) is left.",
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));
    story.ch06(&[
        "pod",
        "exec",
        POD,
        "web",
        "--",
        "ps",
        "-o",
        "pid,ppid,stat,comm",
    ])?;

    story.say(
        "The sidecar: app writes its log to the pod's volume, and a second \
         container follows that file with `tail -f` (read-only, detached), \
         as a log shipper would, while app goes on writing.",
    );
    let (rw, ro, file) = ("logs:/logs", "logs:/logs:ro", "/logs/app.log");
    let log = |n| format!("echo \"request {n} served\" >> {file}");
    let (first, more) = (log(1), format!("{}; {}", log(2), log(3)));
    let app = [
        "pod", "run", POD, "--name", "app", "-v", rw, "--", "sh", "-c",
    ];
    story.ch06(&[&app[..], &[&first]].concat())?;
    story.ch06(&[
        "pod", "run", POD, "--name", "sidecar", "-d", "-v", ro, "--", "tail", "-f", file,
    ])?;
    story.ch06(&[&app[..], &[&more]].concat())?;
    story.shell(&format!(
        "for i in $(seq 50); do ch06 pod logs {POD} sidecar | grep -q 'request 3' && break; \
         sleep 0.1; done; ch06 pod logs {POD} sidecar"
    ))?;

    story.say(
        "Compare chapter 03: two containers outside any pod each get a \
         network namespace of their own, so an address of their own. One IP \
         per container.",
    );
    story.shell(
        "ch06 run -- sh -c 'ip -o -4 addr show dev eth0; sleep 1' & sleep 0.5; \
         ch06 run -- ip -o -4 addr show dev eth0; wait",
    )?;

    story.say(
        "Removing the pod: SIGTERM to its containers (SIGKILL after the \
         timeout), then to pause; then its cgroups, namespace files and \
         address are released, its volumes removed, and the kernel destroys \
         the veth pair with the network namespace.",
    );
    story.ch06(&["pod", "rm", POD])?;
    story.ch06(&["pod", "ls"])?;
    println!("\nThe end: the throwaway host, its bridge included, goes away with us.");
    Ok(())
}
// ANCHOR_END: steps
