//! A bundle: a directory with `config.json` (the OCI runtime spec's
//! configuration, read with oci-spec's types) and a root filesystem.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

/// A bundle, read and checked.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle's directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    /// `root.path`, absolute (it may be given relative to the bundle).
    pub rootfs: PathBuf,
}

/// Read `dir/config.json`.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).with_context(|| format!("bundle {}", dir.display()))?;
    let file = dir.join("config.json");
    if !file.is_file() {
        bail!(
            "no config.json in bundle {}: pass the bundle's directory with --bundle",
            dir.display()
        );
    }
    let spec = Spec::load(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(root) = spec.root() else {
        bail!("{}: root.path is missing", file.display());
    };
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        bail!(
            "{}: root.path {} is not a directory",
            file.display(),
            rootfs.display()
        );
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Read `exec --process FILE`: a `process` object as in config.json.
pub fn load_process(file: &Path) -> Result<oci_spec::runtime::Process> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a process (as config.json's)", file.display()))
}
