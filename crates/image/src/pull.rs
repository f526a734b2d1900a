//! `ch04 pull`: the whole story, from a reference to an unpacked root
//! filesystem in the store. The other modules are its steps.

use crate::blob::{open_blob, BlobReader};
use crate::cache::data_dir;
use crate::manifest::resolve_manifest;
use crate::progress::{human_size, progress_bar, say, short, stop_on_ctrl_c};
use crate::reference::parse_reference;
use crate::registry::Registry;
use crate::store::{is_up_to_date, Store, WorkDir};
use crate::unpack;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use oci_spec::image::Descriptor;
use pfs_cli::ImageDefaults;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Configs are small JSON documents: refuse absurd ones.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// `ch04 pull IMAGE`
#[derive(clap::Args, Debug, Clone)]
pub struct PullArgs {
    /// The image: `busybox`, `debian:bookworm`, `127.0.0.1:5000/name:tag`,
    /// `name@sha256:…` (Docker Hub unless a registry host is given)
    pub reference: String,
    /// Allow plain HTTP to a registry that is not on this machine
    /// (loopback registries always use plain HTTP)
    #[arg(long)]
    pub insecure: bool,
}

// ANCHOR: pull
/// Pull an image and unpack it; returns its root filesystem directory.
pub fn pull(args: &PullArgs) -> Result<PathBuf> {
    let reference = parse_reference(&args.reference)?;
    stop_on_ctrl_c()?;
    let store = Store::open(&data_dir())?;
    let mut registry = Registry::new(&reference, args.insecure)?;
    let manifest = resolve_manifest(&mut registry, &reference)?;
    let image_dir = store.image_dir(&reference);
    // One pull of an image at a time: a second one waits here, then finds
    // the first one's result up to date.
    let _lock = store.lock_image(&reference)?;
    if is_up_to_date(&image_dir, &manifest.digest) {
        say(&format!("{reference} is up to date ({})", manifest.digest));
        return Ok(image_dir.join("rootfs"));
    }
    let work = store.new_work_dir(&reference)?;
    let config = fetch_config(&mut registry, &store, &work, manifest.image.config())?;
    let layers = manifest.image.layers();
    for (index, layer) in layers.iter().enumerate() {
        let step = format!("layer {}/{}", index + 1, layers.len());
        apply_image_layer(&mut registry, &store, &work, layer, &step)?;
    }
    fs::write(work.path.join("manifest.json"), &manifest.bytes)?;
    fs::write(work.path.join("config.json"), &config)?;
    fs::write(work.path.join("digest"), manifest.digest.to_string())?;
    store.install(work, &image_dir)?;
    say(&format!("pulled {reference} ({})", manifest.digest));
    Ok(image_dir.join("rootfs"))
}
// ANCHOR_END: pull

/// The root filesystem of an image pulled before. No network, no threads:
/// safe to call in `ch04 run` before it forks.
pub fn pulled_rootfs(reference: &str) -> Result<PathBuf> {
    let parsed = parse_reference(reference)?;
    let rootfs = data_dir()
        .join("images")
        .join(parsed.dir_name())
        .join("rootfs");
    if !rootfs.is_dir() {
        bail!("image {parsed} is not pulled yet: run `ch04 pull {reference}` first");
    }
    Ok(rootfs)
}

/// What the image's config (kept beside `rootfs` by `pull`) says about
/// its process: `Env`, `WorkingDir`, `User`, `Entrypoint`, `Cmd`. A root
/// filesystem that is not a pulled image has none.
pub fn image_defaults(rootfs: &Path) -> Result<ImageDefaults> {
    let path = rootfs.with_file_name("config.json");
    if !rootfs.starts_with(data_dir().join("images")) || !path.is_file() {
        return Ok(ImageDefaults::default());
    }
    let file = fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    let image = oci_spec::image::ImageConfiguration::from_reader(file)
        .map_err(|e| anyhow!("cannot parse {}: {e}", path.display()))?;
    let Some(config) = image.config() else {
        return Ok(ImageDefaults::default());
    };
    Ok(ImageDefaults {
        env: config.env().clone().unwrap_or_default(),
        workdir: config.working_dir().clone(),
        user: config.user().clone(),
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
    })
}

/// The image's configuration (environment, command, …), checked and kept
/// as it came, for `ch04 run` to read.
fn fetch_config(
    registry: &mut Registry,
    store: &Store,
    work: &WorkDir,
    descriptor: &Descriptor,
) -> Result<Vec<u8>> {
    if descriptor.size() > MAX_CONFIG_BYTES {
        bail!("the image config is {} bytes: too large", descriptor.size());
    }
    let mut blob = open_blob(registry, store, work, descriptor, ProgressBar::hidden())?;
    let mut config = Vec::new();
    blob.read_to_end(&mut config)
        .context("read the image config")?;
    blob.finish().context("image config")?;
    oci_spec::image::ImageConfiguration::from_reader(&config[..])
        .map_err(|e| anyhow!("cannot parse the image config: {e}"))?;
    Ok(config)
}

/// How a layer's tar stream is compressed.
#[derive(Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
}

/// OCI and Docker name their layer types differently; gzip and plain tar
/// are what registries serve (zstd is rarer and not supported here).
fn layer_compression(media_type: &str) -> Result<Compression> {
    if media_type.ends_with("tar+gzip") || media_type.ends_with("tar.gzip") {
        Ok(Compression::Gzip)
    } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
        Ok(Compression::None)
    } else {
        bail!("unsupported layer type {media_type}")
    }
}

// ANCHOR: apply_image_layer
/// Stream one layer: blob (cache or registry, hashed) → gunzip → untar
/// into the rootfs being built. The digest is known only at the end of the
/// stream: a mismatch fails the pull, and the rootfs being built is thrown
/// away with everything this layer wrote.
fn apply_image_layer(
    registry: &mut Registry,
    store: &Store,
    work: &WorkDir,
    layer: &Descriptor,
    step: &str,
) -> Result<()> {
    let compression = layer_compression(layer.media_type().as_ref())?;
    let progress = progress_bar(layer.size(), step);
    let mut blob = open_blob(registry, store, work, layer, progress.clone())?;
    let source = blob.source;
    let unpacked = unpack_blob(&mut blob, &compression, &work.rootfs());
    // Check the digest even when unpacking failed: a damaged blob usually
    // shows first as a gzip or tar error, and its digest says why.
    let verified = blob.finish();
    progress.finish_and_clear();
    let context = || format!("{step} {}", layer.digest());
    verified.with_context(context)?;
    let stats = unpacked.with_context(context)?;
    say(&format!(
        "{step} {} {} ({source}): {} entries, {} whiteouts, {} device nodes skipped",
        short(layer.digest()),
        human_size(layer.size()),
        stats.written,
        stats.whiteouts,
        stats.devices_skipped
    ));
    Ok(())
}
// ANCHOR_END: apply_image_layer

/// Gunzip (if need be) and untar a layer's blob into `rootfs`.
fn unpack_blob(
    blob: &mut BlobReader,
    compression: &Compression,
    rootfs: &Path,
) -> Result<unpack::LayerStats> {
    match compression {
        Compression::Gzip => {
            let mut tar_stream = flate2::read::MultiGzDecoder::new(blob);
            let stats = unpack::apply_layer(&mut tar_stream, rootfs)?;
            // Read to the end: the gzip trailer's CRC is checked there.
            io::copy(&mut tar_stream, &mut io::sink()).context("gunzip the layer")?;
            Ok(stats)
        }
        Compression::None => unpack::apply_layer(blob, rootfs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_types() {
        let gzip = [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ];
        for media_type in gzip {
            assert_eq!(layer_compression(media_type).unwrap(), Compression::Gzip);
        }
        let plain = layer_compression("application/vnd.oci.image.layer.v1.tar").unwrap();
        assert_eq!(plain, Compression::None);
        assert!(layer_compression("application/vnd.oci.image.layer.v1.tar+zstd").is_err());
    }
}
