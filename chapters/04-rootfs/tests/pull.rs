//! `ch04 pull` against a real registry (Debian's `docker-registry`) on
//! 127.0.0.1, with images built by umoci from the busybox rootfs and pushed
//! by skopeo. Needs root (like every integration test here) and the
//! packages docker-registry, skopeo and umoci. No traffic leaves loopback.

use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use testkit::registry::{free_port, OciLayout, Registry, TempDir};

const CH04: &str = env!("CARGO_BIN_EXE_ch04");

/// `ch04 ARGS` with its own data (and state) directory.
fn ch04(data: &Path, args: &[&str]) -> Output {
    testkit::run_with_data_dir(CH04, data, args)
}

/// The one line of a failed command's stderr.
fn failure_line(output: &Output) -> String {
    let stderr = testkit::stderr(output);
    assert!(
        !output.status.success(),
        "expected a failure, got: {stderr}"
    );
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    lines[0].to_string()
}

/// Images made from the busybox rootfs, in an OCI layout:
/// - `v1`: layer 1 the busybox rootfs, layer 2 adds `/etc/motd`;
/// - `v2`: v1, then layer 3 deletes `/etc/motd` (a whiteout), and
///   layer 4 adds `/opt/app/hello`.
struct Images {
    layout: OciLayout,
    _scratch: TempDir,
}

fn build_images() -> Images {
    let scratch = TempDir::new("images");
    // The lead's busybox rootfs, built in a data dir of its own.
    let output = ch04(&scratch.join("data"), &["rootfs", "busybox"]);
    assert!(
        output.status.success(),
        "ch04 rootfs busybox: {}",
        testkit::stderr(&output)
    );
    let busybox = PathBuf::from(testkit::stdout(&output).trim());
    let motd = scratch.join("motd");
    fs::create_dir(&motd).unwrap();
    fs::write(motd.join("motd"), "welcome to layer 2\n").unwrap();
    let app = scratch.join("app");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("hello"), "hello from layer 4\n").unwrap();

    let layout = OciLayout::init(&scratch.join("oci"));
    layout.new_image("v1");
    layout.insert_dir("v1", &busybox, "/");
    layout.insert_dir("v1", &motd, "/etc");
    layout.tag("v1", "v2");
    layout.insert_whiteout("v2", "/etc/motd");
    layout.insert_dir("v2", &app, "/opt/app");
    Images {
        layout,
        _scratch: scratch,
    }
}

impl Images {
    /// The manifest descriptor (`{"digest":…,"size":…}`) of a tag.
    fn manifest_descriptor(&self, tag: &str) -> serde_json::Value {
        let index: serde_json::Value = serde_json::from_str(&self.layout.index_json()).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag} in the layout"))
            .clone()
    }

    /// The layer digests of a tag, bottom first.
    fn layer_digests(&self, tag: &str) -> Vec<String> {
        let descriptor = self.manifest_descriptor(tag);
        let manifest = self
            .layout
            .read_blob(descriptor["digest"].as_str().unwrap());
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// Add an image index named `tag` whose entry for this machine's
    /// platform is `host_tag` and whose entry for another one is `other_tag`.
    fn add_index(&self, tag: &str, host_tag: &str, other_tag: &str) {
        let host_arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let other_arch = if host_arch == "s390x" {
            "riscv64"
        } else {
            "s390x"
        };
        let entry = |tag: &str, arch: &str| {
            let mut descriptor = self.manifest_descriptor(tag);
            descriptor.as_object_mut().unwrap().remove("annotations");
            descriptor["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
            descriptor
        };
        let image_index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(other_tag, other_arch), entry(host_tag, host_arch)],
        });
        let bytes = serde_json::to_vec(&image_index).unwrap();
        let hex = format!("{:x}", Sha256::digest(&bytes));
        fs::write(self.layout.path.join("blobs/sha256").join(&hex), &bytes).unwrap();
        let mut layout_index: serde_json::Value =
            serde_json::from_str(&self.layout.index_json()).unwrap();
        layout_index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{hex}"),
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
        fs::write(
            self.layout.path.join("index.json"),
            serde_json::to_vec(&layout_index).unwrap(),
        )
        .unwrap();
    }
}

/// Every file under `dir`, relative.
fn all_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    found
}

/// After a failed pull: no image, no work directory, no partial blob.
fn assert_nothing_left(data: &Path, bad_digest: &str) {
    let images: Vec<_> = all_files(&data.join("images"));
    assert!(images.is_empty(), "a failed pull left an image: {images:?}");
    let tmp = all_files(&data.join("tmp"));
    assert!(
        tmp.is_empty(),
        "a failed pull left temporary files: {tmp:?}"
    );
    let hex = bad_digest.trim_start_matches("sha256:");
    for file in all_files(data) {
        assert!(!file.contains(hex), "the bad blob was kept: {file}");
        assert!(
            !file.ends_with(".partial"),
            "a partial blob was kept: {file}"
        );
    }
}

/// What a pull test needs: a registry, the test images (not pushed yet),
/// and an empty data directory to pull into.
struct Pull {
    registry: Registry,
    images: Images,
    data: TempDir,
}

impl Pull {
    /// As root: start the registry and build the images.
    fn setup() -> Self {
        testkit::require_root();
        Pull {
            registry: Registry::start(),
            images: build_images(),
            data: TempDir::new("pull-data"),
        }
    }

    /// Push the layout's `tag` to the registry as `name`: its reference.
    fn push(&self, tag: &str, name: &str) -> String {
        self.images.layout.push(tag, &self.registry, name)
    }

    /// `ch04 pull REFERENCE` into our data directory.
    fn pull(&self, reference: &str) -> Output {
        ch04(&self.data.path, &["pull", reference])
    }

    /// `ch04 pull REFERENCE`, which must work: the image's root filesystem.
    fn pulled(&self, reference: &str) -> PathBuf {
        let output = self.pull(reference);
        assert!(
            output.status.success(),
            "pull {reference}: {}",
            testkit::stderr(&output)
        );
        PathBuf::from(testkit::stdout(&output).trim())
    }

    /// Change a blob in the registry's own storage, behind its back: it
    /// serves it as if nothing happened.
    fn tamper(&self, digest: &str, change: impl FnOnce(&mut Vec<u8>)) {
        let data_file = self.registry.blob_data(digest);
        let mut bytes = fs::read(&data_file).unwrap();
        change(&mut bytes);
        fs::write(&data_file, &bytes).unwrap();
    }
}

#[test]
fn pull_applies_layers_in_order_with_whiteouts() {
    let pull = Pull::setup();
    let v1 = pull.push("v1", "busybox:v1");
    let v2 = pull.push("v2", "busybox:v2");
    let data = &pull.data;

    let rootfs_v1 = pull.pulled(&v1);
    assert!(rootfs_v1.starts_with(&data.path), "{}", rootfs_v1.display());
    assert_eq!(
        fs::read_to_string(rootfs_v1.join("etc/motd")).unwrap(),
        "welcome to layer 2\n"
    );

    let output = pull.pull(&v2);
    let progress = testkit::stderr(&output);
    assert!(output.status.success(), "pull v2: {progress}");
    let rootfs = PathBuf::from(testkit::stdout(&output).trim());
    // Layers 1 and 2 came with v1: they are not downloaded again.
    assert!(
        progress.contains("layer 1/4") && progress.contains("(cached)"),
        "{progress}"
    );
    assert!(
        progress.contains("layer 4/4") && progress.contains("(downloaded)"),
        "{progress}"
    );

    let busybox = fs::metadata(rootfs.join("bin/busybox")).unwrap();
    assert!(busybox.is_file() && busybox.permissions().mode() & 0o111 != 0);
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let os_release = fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(os_release.contains("BusyBox"), "{os_release}");
    assert!(
        fs::symlink_metadata(rootfs.join("etc/motd")).is_err(),
        "layer 3's whiteout should have deleted /etc/motd"
    );
    assert!(!rootfs.join("etc/.wh.motd").exists());
    assert_eq!(
        fs::read_to_string(rootfs.join("opt/app/hello")).unwrap(),
        "hello from layer 4\n"
    );
    // v1's rootfs is a separate image, untouched by v2's whiteout.
    assert!(rootfs_v1.join("etc/motd").exists());

    // Every blob is cached by digest, nothing is left in tmp/.
    let cached = all_files(&data.join("blobs/sha256"));
    let digests = pull.images.layer_digests("v2");
    assert_eq!(digests.len(), 4, "{digests:?}");
    for digest in digests {
        assert!(
            cached.contains(&digest[7..].to_string()),
            "{digest} not cached"
        );
    }
    assert!(all_files(&data.join("tmp")).is_empty());

    // Pulling again finds it up to date.
    let output = pull.pull(&v2);
    assert!(output.status.success());
    assert!(testkit::stderr(&output).contains("up to date"));
    assert_eq!(PathBuf::from(testkit::stdout(&output).trim()), rootfs);
}

#[test]
fn concurrent_pulls_of_one_image_make_one_store_entry() {
    testkit::require_root();
    let registry = Registry::start();
    let images = build_images();
    let reference = images.layout.push("v2", &registry, "together:v2");
    let data = TempDir::new("pull-data");
    let outputs = testkit::run_at_once(CH04, &["pull", &reference], &data.path, 4);
    for output in &outputs {
        let stderr = testkit::stderr(output);
        assert!(output.status.success(), "pull: {stderr}");
        assert_eq!(testkit::stdout(output), testkit::stdout(&outputs[0]));
    }
    // One pull did the work; the others waited for it and used its result.
    let pulled = outputs
        .iter()
        .filter(|o| testkit::stderr(o).contains("pulled "))
        .count();
    assert_eq!(pulled, 1, "{} pulls unpacked the image", pulled);
    let entries: Vec<_> = fs::read_dir(data.join("images"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(all_files(&data.join("tmp")).is_empty());
}

#[test]
fn pull_picks_this_machine_from_an_image_index() {
    let pull = Pull::setup();
    // The index's entry for this machine is v2; the other platform's is v1.
    pull.images.add_index("multi", "v2", "v1");
    let rootfs = pull.pulled(&pull.push("multi", "multi:latest"));
    assert!(
        rootfs.join("opt/app/hello").exists(),
        "not this machine's image"
    );
    assert!(!rootfs.join("etc/motd").exists());
}

#[test]
fn a_pulled_image_runs() {
    let pull = Pull::setup();
    let reference = pull.push("v2", "runme:v2");
    pull.pulled(&reference);

    let before = testkit::HostState::capture();
    let args = [
        "run",
        "--net",
        "none",
        "--rootfs",
        &reference,
        "--",
        "sh",
        "-c",
        "cat /etc/os-release /opt/app/hello; test ! -e /etc/motd && echo no-motd",
    ];
    let output = ch04(&pull.data.path, &args);
    let stdout = testkit::stdout(&output);
    assert!(output.status.success(), "run: {}", testkit::stderr(&output));
    assert!(stdout.contains("BusyBox"), "{stdout}");
    assert!(stdout.contains("hello from layer 4"), "{stdout}");
    assert!(stdout.contains("no-motd"), "{stdout}");
    testkit::HostState::capture().assert_unchanged_since(&before);
}

#[test]
fn a_tampered_layer_fails_the_pull_and_leaves_nothing() {
    let pull = Pull::setup();
    let reference = pull.push("v1", "tampered:v1");
    // Change one byte in the middle of the busybox layer.
    let layer = pull.images.layer_digests("v1")[0].clone();
    pull.tamper(&layer, |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
    });

    let line = failure_line(&pull.pull(&reference));
    assert!(line.contains("digest mismatch"), "{line}");
    assert!(line.contains(&layer), "{line}");
    assert_nothing_left(&pull.data.path, &layer);
    // The image is not "pulled" either.
    let output = ch04(
        &pull.data.path,
        &["run", "--net", "none", "--rootfs", &reference, "--", "true"],
    );
    assert!(failure_line(&output).contains("ch04 pull"));
}

#[test]
fn a_tampered_manifest_fails_the_pull() {
    let pull = Pull::setup();
    let reference = pull.push("v1", "tampered-manifest:v1");
    // The manifest is a blob too: add a space to it, still valid JSON.
    let manifest = pull.images.manifest_descriptor("v1")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    pull.tamper(&manifest, |bytes| bytes.push(b' '));

    let line = failure_line(&pull.pull(&reference));
    assert!(line.contains("manifest digest mismatch"), "{line}");
    assert_nothing_left(&pull.data.path, &manifest);
}

#[test]
fn an_unknown_image_is_not_found() {
    let pull = Pull::setup();
    pull.push("v1", "known:v1");
    let address = pull.registry.address();
    for reference in [
        format!("{address}/unknown:latest"),
        format!("{address}/known:no-such-tag"),
    ] {
        let line = failure_line(&pull.pull(&reference));
        assert!(line.contains("not found"), "{line}");
        assert!(line.contains(&reference), "{line}");
    }
    assert!(all_files(&pull.data.join("images")).is_empty());
}

#[test]
fn an_unreachable_registry_says_so() {
    testkit::require_root();
    let data = TempDir::new("pull-data");
    let reference = format!("127.0.0.1:{}/busybox:latest", free_port());
    let output = ch04(&data.path, &["pull", &reference]);
    let line = failure_line(&output);
    assert!(line.contains("cannot reach the registry"), "{line}");
    assert!(all_files(&data.join("images")).is_empty());
}

#[test]
fn a_malformed_reference_says_so() {
    testkit::require_root();
    let data = TempDir::new("pull-data");
    for reference in ["127.0.0.1:5000/Bad//Name", "busybox:", "name@sha256:123"] {
        let output = ch04(&data.path, &["pull", reference]);
        let line = failure_line(&output);
        assert!(line.contains("malformed image reference"), "{line}");
    }
}
