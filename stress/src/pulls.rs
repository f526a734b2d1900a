//! Part `pulls`: interrupted, concurrent and failing image pulls (issue 16,
//! item 3). `ch04 pull` against the tests' registry (testkit::registry) on
//! 127.0.0.1, through a proxy that misbehaves on request
//! (testkit::registry::proxy), each case in a data directory of its own:
//!
//! - killed: the proxy stalls mid-blob, the puller is SIGKILLed there, then
//!   the image is pulled again (or a pull that was waiting takes over);
//! - at once: two pulls of one image, started together, then two that
//!   surely overlap (the second waits on the first one's lock);
//! - full disk: the data directory on a tmpfs too small for the image;
//! - bad registry: the connection closed mid-blob, a blob too short, a blob
//!   too long; then a good pull into the same data directory.
//!
//! Every pulled image is verified (manifest, config and every blob against
//! their digests, the rootfs against the files that went into it); every
//! failed pull must say one line and leave nothing partial. A *stray* file
//! is one no pull will use: anything in `tmp/` (a pull's work directory)
//! once no pull runs, a `.partial` blob, a blob whose bytes do not match its
//! name, an `images/` entry that is not a complete image, and once the
//! image is pulled, a blob its manifest does not name. (Lock files stay by
//! design, see pfs_image::cache.)

use crate::report::Report;
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::registry::proxy::{Fault, Proxy};
use testkit::registry::{OciLayout, Registry, TempDir};

const PART: &str = "pulls";
/// Where faults strike a layer blob: well inside the busybox layer (~1 MB).
const MID_BLOB: u64 = 128 * 1024;
/// The full disks: smaller than the busybox layer (~1 MB), then large
/// enough for the layer but not for its files (~2 MB).
const FULL_DISKS: [&str; 2] = ["size=256k", "size=1536k"];

/// One case of this part: it fails with what did not hold.
type Case = fn(&mut Pulls) -> Result<()>;

pub fn run(report: &mut Report) -> Result<()> {
    let mut pulls = Pulls::setup().context("set up the registry and the image")?;
    let cases: [(&str, Case); 5] = [
        ("killed mid-blob, then pulled again", killed_mid_blob),
        (
            "killed mid-blob, another pull waiting",
            killed_while_another_waits,
        ),
        ("two pulls at once", at_once),
        ("full disk", full_disk),
        ("a registry that misbehaves", bad_registry),
    ];
    for (name, case) in cases {
        if let Err(e) = case(&mut pulls) {
            report.failure(PART, format!("{name}: {e:#}"));
        }
    }
    report.figure(PART, "pulls", pulls.count);
    report.figure(PART, "pullers SIGKILLed mid-blob", pulls.killed);
    let faults = pulls.proxy.injected() + pulls.full_disks;
    report.figure(PART, "faults injected (registry, full disk)", faults);
    report.figure(
        PART,
        "failed pulls that said one clear line",
        pulls.clear_failures,
    );
    report.figure(PART, "stray files found", pulls.stray);
    Ok(())
}

/// The registry, its misbehaving proxy, and the image pushed there.
struct Pulls {
    _registry: Registry,
    proxy: Proxy,
    /// `127.0.0.1:PROXY/stress:v1`: every pull goes through the proxy.
    reference: String,
    /// The files that went into the image's first layer.
    busybox: PathBuf,
    _scratch: TempDir,
    count: u64,
    killed: u64,
    full_disks: u64,
    clear_failures: u64,
    stray: usize,
}

impl Pulls {
    /// The image: layer 1 the busybox rootfs, layer 2 `/etc/motd`.
    fn setup() -> Result<Self> {
        let scratch = TempDir::new("stress-pulls");
        let output = ch04(&scratch.join("build"), &["rootfs", "busybox"])?;
        ensure!(
            output.status.success(),
            "ch04 rootfs busybox: {}",
            stderr(&output)
        );
        let busybox = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let motd = scratch.join("motd");
        fs::create_dir(&motd)?;
        fs::write(motd.join("motd"), "layer 2\n")?;
        let layout = OciLayout::init(&scratch.join("oci"));
        layout.new_image("v1");
        layout.insert_dir("v1", &busybox, "/");
        layout.insert_dir("v1", &motd, "/etc");
        let registry = Registry::start();
        layout.push("v1", &registry, "stress:v1");
        let proxy = Proxy::start(&registry);
        Ok(Pulls {
            reference: format!("{}/stress:v1", proxy.address()),
            _registry: registry,
            proxy,
            busybox,
            _scratch: scratch,
            count: 0,
            killed: 0,
            full_disks: 0,
            clear_failures: 0,
            stray: 0,
        })
    }

    fn start(&mut self, data: &Path) -> Result<Child> {
        self.count += 1;
        Ok(ch04_command(data, &["pull", &self.reference])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    }

    fn pull(&mut self, data: &Path) -> Result<Output> {
        Ok(self.start(data)?.wait_with_output()?)
    }

    /// A pull that must work, and leave a verified image and no stray file.
    fn good_pull(&mut self, data: &Path) -> Result<()> {
        let output = self.pull(data)?;
        ensure!(
            output.status.success(),
            "the pull failed: {}",
            stderr(&output)
        );
        self.check_image(data)
    }

    /// The image in `data` is complete and verified; nothing stray is left.
    fn check_image(&mut self, data: &Path) -> Result<()> {
        let named = verify_image(data, &self.busybox)?;
        self.check_stray(data, Some(&named))
    }

    /// A pull that must fail, with one line, leaving nothing partial.
    fn bad_pull(&mut self, output: &Output, expected: &str, data: &Path) -> Result<()> {
        let message = stderr(output);
        ensure!(!output.status.success(), "the pull succeeded: {message}");
        ensure!(
            message.lines().count() == 1 && message.contains(expected),
            "expected one line saying {expected:?}, got: {message}"
        );
        self.clear_failures += 1;
        eprintln!(
            "pfs-stress: {PART}: failed as it should: {}",
            message.trim_end()
        );
        self.check_stray(data, None)
    }

    fn check_stray(&mut self, data: &Path, named: Option<&[String]>) -> Result<()> {
        let stray = stray_files(data, named)?;
        self.stray += stray.len();
        ensure!(
            stray.is_empty(),
            "stray files in {}: {stray:?}",
            data.display()
        );
        Ok(())
    }
}

/// The proxy stalls the first layer mid-blob; the puller is SIGKILLed there.
/// What it leaves (its work directory) is removed by the next pull, which
/// must make a complete image.
fn killed_mid_blob(pulls: &mut Pulls) -> Result<()> {
    let data = TempDir::new("stress-pull-killed");
    pulls.proxy.inject(Fault::Stall { after: MID_BLOB });
    let mut child = pulls.start(&data.path)?;
    let stalled = pulls.proxy.wait_until_stalled(Duration::from_secs(30));
    // The proxy stalls as soon as it has sent the bytes; the puller may not
    // have read the answer's head and created its partial blob yet.
    let partial = stalled && wait_for(Duration::from_secs(10), || partial_blobs(&data.path) > 0);
    nix::sys::signal::kill(nix_pid(&child), nix::sys::signal::Signal::SIGKILL)?;
    let status = child.wait()?;
    pulls.proxy.release();
    ensure!(stalled, "the pull never reached the stall mid-blob");
    ensure!(
        status.code().is_none(),
        "the puller was not killed: {status}"
    );
    ensure!(
        partial,
        "a pull stalled mid-blob had no .partial blob in tmp/"
    );
    pulls.killed += 1;
    pulls.good_pull(&data.path)
}

/// As above, but a second pull of the image already waits for the first
/// one's lock when the first is killed: it takes over, and must leave no
/// trace of the killed pull either.
fn killed_while_another_waits(pulls: &mut Pulls) -> Result<()> {
    let data = TempDir::new("stress-pull-taken-over");
    pulls.proxy.inject(Fault::Stall { after: MID_BLOB });
    let mut first = pulls.start(&data.path)?;
    let stalled = pulls.proxy.wait_until_stalled(Duration::from_secs(30));
    let second = pulls.start(&data.path)?;
    let waiting = stalled && waits_for_a_lock(&second, Duration::from_secs(30));
    nix::sys::signal::kill(nix_pid(&first), nix::sys::signal::Signal::SIGKILL)?;
    first.wait()?;
    pulls.proxy.release();
    let output = second.wait_with_output()?;
    ensure!(stalled, "the first pull never reached the stall mid-blob");
    ensure!(
        waiting,
        "the second pull never waited for the first one's lock"
    );
    ensure!(
        output.status.success(),
        "the second pull failed: {}",
        stderr(&output)
    );
    pulls.killed += 1;
    pulls.check_image(&data.path)
}

/// Two pulls started together; then two that surely overlap: the second
/// starts while the first is stalled mid-blob, and is seen waiting for the
/// image's lock (in /proc/locks) before the first goes on. Both work, one
/// of them unpacks, one image in the store.
fn at_once(pulls: &mut Pulls) -> Result<()> {
    let data = TempDir::new("stress-pull-together");
    let children = [pulls.start(&data.path)?, pulls.start(&data.path)?];
    let outputs = children.map(|c| c.wait_with_output());
    check_pair(pulls, &data.path, outputs)?;

    let data = TempDir::new("stress-pull-overlap");
    pulls.proxy.inject(Fault::Stall { after: MID_BLOB });
    let first = pulls.start(&data.path)?;
    let stalled = pulls.proxy.wait_until_stalled(Duration::from_secs(30));
    let second = pulls.start(&data.path)?;
    let waiting = stalled && waits_for_a_lock(&second, Duration::from_secs(30));
    pulls.proxy.release();
    let outputs = [first.wait_with_output(), second.wait_with_output()];
    ensure!(stalled, "the first pull never reached the stall mid-blob");
    ensure!(
        waiting,
        "the second pull never waited for the first one's lock"
    );
    check_pair(pulls, &data.path, outputs)
}

fn check_pair(pulls: &mut Pulls, data: &Path, outputs: [std::io::Result<Output>; 2]) -> Result<()> {
    let mut unpacked = 0;
    let mut results = Vec::new();
    for output in outputs {
        let output = output?;
        ensure!(
            output.status.success(),
            "a pull failed: {}",
            stderr(&output)
        );
        unpacked += usize::from(stderr(&output).contains("pulled "));
        results.push(output.stdout);
    }
    ensure!(
        results[0] == results[1],
        "the two pulls answered different paths"
    );
    ensure!(
        unpacked == 1,
        "{unpacked} of the 2 pulls unpacked the image"
    );
    pulls.check_image(data)
}

/// Is `child` blocked on a flock (a `->` line of /proc/locks names it)?
fn waits_for_a_lock(child: &Child, timeout: Duration) -> bool {
    let waiting = format!(" {} ", child.id());
    wait_for(timeout, || {
        let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
        locks
            .lines()
            .any(|l| l.contains("->") && l.contains(&waiting))
    })
}

/// Poll `condition` until it holds (true) or `timeout` passes (false).
fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn partial_blobs(data: &Path) -> usize {
    let partial = files(&data.join("tmp"))
        .into_iter()
        .filter(|f| f.ends_with(".partial"));
    partial.count()
}

/// The data directory on a tmpfs smaller than the image. The tmpfs is
/// mounted in a mount namespace of one thread of ours (the pull inherits
/// it), made private first so the mount never reaches the host; it goes
/// away with the thread.
fn full_disk(pulls: &mut Pulls) -> Result<()> {
    for size in FULL_DISKS {
        full_disk_of(pulls, size).with_context(|| format!("tmpfs {size}"))?;
    }
    Ok(())
}

fn full_disk_of(pulls: &mut Pulls, size: &str) -> Result<()> {
    let data = TempDir::new("stress-pull-full");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                use nix::mount::{mount, MsFlags};
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
                mount(None::<&str>, "/", None::<&str>, private, None::<&str>)?;
                let (fs, no_flags) = (Some("tmpfs"), MsFlags::empty());
                mount(fs, &data.path, fs, no_flags, Some(size)).context("mount tmpfs")?;
                pulls.full_disks += 1;
                let output = pulls.pull(&data.path)?;
                pulls.bad_pull(&output, "No space left on device", &data.path)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the full-disk thread panicked"))?
    })
}

/// The registry cuts a blob, sends too few bytes, sends too many: each
/// pull fails with one line; then a good pull into the same directory.
fn bad_registry(pulls: &mut Pulls) -> Result<()> {
    let data = TempDir::new("stress-pull-faults");
    let faults = [
        (Fault::Close { after: MID_BLOB }, "broke off after"),
        (Fault::Short { length: MID_BLOB }, "size mismatch"),
        (Fault::Long { extra: 4096 }, "larger than"),
    ];
    for (fault, expected) in faults {
        let injected = pulls.proxy.injected();
        pulls.proxy.inject(fault);
        let output = pulls.pull(&data.path)?;
        ensure!(
            pulls.proxy.injected() == injected + 1,
            "{fault:?} was not injected"
        );
        pulls
            .bad_pull(&output, expected, &data.path)
            .with_context(|| format!("{fault:?}"))?;
    }
    pulls
        .good_pull(&data.path)
        .context("the good pull after them")
}

/// Check the one image in `data/images` against its digests and against
/// the files that went into it; returns the blobs its manifest names.
fn verify_image(data: &Path, busybox: &Path) -> Result<Vec<String>> {
    let images: Vec<_> = fs::read_dir(data.join("images"))?.flatten().collect();
    ensure!(
        images.len() == 1,
        "{} images in the store, not 1",
        images.len()
    );
    let image = images[0].path();
    let manifest = fs::read(image.join("manifest.json"))?;
    let digest = fs::read_to_string(image.join("digest"))?;
    ensure!(
        sha256(&manifest) == digest,
        "the manifest does not match its digest {digest}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&manifest)?;
    let config = manifest["config"]["digest"].as_str().context("no config")?;
    ensure!(
        sha256(&fs::read(image.join("config.json"))?) == config,
        "bad config.json"
    );
    let mut named = vec![config.to_string()];
    for layer in manifest["layers"].as_array().context("no layers")? {
        let digest = layer["digest"].as_str().context("a layer without digest")?;
        let blob = data.join("blobs/sha256").join(&digest[7..]);
        let bytes = fs::read(&blob).with_context(|| format!("layer {digest} not cached"))?;
        ensure!(
            sha256(&bytes) == digest,
            "the cached layer {digest} is damaged"
        );
        named.push(digest.to_string());
    }
    let mut expected = tree(busybox);
    expected.insert("etc/motd".into(), "file 8".into());
    let rootfs = tree(&image.join("rootfs"));
    if rootfs != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|e| rootfs.get(e.0) != Some(e.1))
            .collect();
        bail!(
            "the rootfs differs from the image's files, e.g. {:?}",
            &missing[..missing.len().min(3)]
        );
    }
    Ok(named)
}

/// See the module's documentation for what is stray.
fn stray_files(data: &Path, named: Option<&[String]>) -> Result<Vec<String>> {
    let mut stray: Vec<String> = files(&data.join("tmp"))
        .into_iter()
        .map(|f| format!("tmp/{f}"))
        .collect();
    let elsewhere = files(data).into_iter().filter(|f| !f.starts_with("tmp/"));
    stray.extend(elsewhere.filter(|f| f.ends_with(".partial")));
    for blob in fs::read_dir(data.join("blobs/sha256"))?.flatten() {
        let name = format!("sha256:{}", blob.file_name().to_string_lossy());
        if sha256(&fs::read(blob.path())?) != name {
            stray.push(format!("{name} (damaged)"));
        } else if named.is_some_and(|named| !named.contains(&name)) {
            stray.push(format!("{name} (no image names it)"));
        }
    }
    for image in fs::read_dir(data.join("images"))?.flatten() {
        if named.is_none() || !image.path().join("digest").is_file() {
            stray.push(format!("images/{}", image.file_name().to_string_lossy()));
        }
    }
    Ok(stray)
}

/// Every path under `dir`, relative, with what it is.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for path in files(dir) {
        let full = dir.join(&path);
        let what = match fs::symlink_metadata(&full) {
            Ok(m) if m.is_symlink() => format!("link {:?}", fs::read_link(&full).ok()),
            Ok(m) if m.is_dir() => "dir".to_string(),
            Ok(m) => format!("file {}", m.len()),
            Err(e) => e.to_string(),
        };
        found.insert(path, what);
    }
    found
}

/// Every path under `dir` (none if it does not exist), relative.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
            let path = entry.path();
            found.push(
                path.strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
        }
    }
    found
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `ch04`, beside our own binary (both built into the same target dir).
fn ch04_command(data: &Path, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("our own path");
    let mut command = Command::new(exe.with_file_name("ch04"));
    command
        .args(args)
        .env("PFS_DATA_DIR", data)
        .env("PFS_STATE_DIR", data.join("state"))
        .stdin(Stdio::null());
    command
}

fn ch04(data: &Path, args: &[&str]) -> Result<Output> {
    ch04_command(data, args).output().context("start ch04")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn nix_pid(child: &Child) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(child.id() as i32)
}
