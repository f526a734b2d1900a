//! Blobs: content-addressed bytes. Each is read through a hasher, from the
//! store's cache or from the registry, and is trusted only once the whole
//! stream matches the digest the manifest names.

use crate::progress::interrupted;
use crate::registry::{root_cause, Registry};
use crate::store::{Store, WorkDir};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use oci_spec::image::{Descriptor, Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

/// Where a blob's bytes come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BlobSource {
    Cache,
    Registry,
}

impl fmt::Display for BlobSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobSource::Cache => "cached",
            BlobSource::Registry => "downloaded",
        })
    }
}

// ANCHOR: blob_reader
/// A blob being read, from the cache or from the registry. Everything read
/// is hashed and counted; what comes from the registry is also copied into
/// a temporary file, which joins the cache only once its digest is right.
pub(crate) struct BlobReader {
    input: Box<dyn Read>,
    pub(crate) source: BlobSource,
    /// Where the verified blob is kept: `blobs/sha256/HEX`.
    cached: PathBuf,
    /// While downloading: the temporary copy (`tmp/PID-N-NAME/HEX.partial`).
    copy: Option<(BufWriter<File>, PathBuf)>,
    hasher: Sha256,
    read: u64,
    /// The first error reading the input (the network cut, a reset): what
    /// `finish` reports, rather than the size mismatch it leads to.
    broken: Option<String>,
    expected_digest: Digest,
    expected_size: u64,
    progress: ProgressBar,
}

/// Open a blob: the cached copy if there is one (checked again as it is
/// read: a damaged cache is caught too), else `GET /v2/NAME/blobs/DIGEST`.
pub(crate) fn open_blob(
    registry: &mut Registry,
    store: &Store,
    work: &WorkDir,
    descriptor: &Descriptor,
    progress: ProgressBar,
) -> Result<BlobReader> {
    let digest = descriptor.digest();
    if *digest.algorithm() != DigestAlgorithm::Sha256 {
        bail!("blob {digest}: only sha256 digests are supported");
    }
    let cached = store.blob_path(digest);
    let (input, source, copy): (Box<dyn Read>, _, _) = match File::open(&cached) {
        Ok(file) => (Box::new(file), BlobSource::Cache, None),
        Err(_) => {
            let response = registry.get(&format!("blobs/{digest}"), None)?;
            let response = registry.check_status(response, &format!("blob {digest}"))?;
            let partial = work.path.join(format!("{}.partial", digest.digest()));
            let file = File::create(&partial).context("create a temporary blob file")?;
            let copy = (BufWriter::with_capacity(1 << 20, file), partial);
            // Big reads from the network: fewer trips through reqwest.
            let input = BufReader::with_capacity(1 << 20, response);
            (Box::new(input), BlobSource::Registry, Some(copy))
        }
    };
    Ok(BlobReader {
        input,
        source,
        cached,
        copy,
        hasher: Sha256::new(),
        read: 0,
        broken: None,
        expected_digest: digest.clone(),
        expected_size: descriptor.size(),
        progress,
    })
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupted() {
            return Err(io::Error::other("interrupted"));
        }
        let n = self.input.read(buf).inspect_err(|e| {
            self.broken.get_or_insert_with(|| root_cause(e));
        })?;
        self.read += n as u64;
        if self.read > self.expected_size {
            // A registry cannot make us read (or store) more than the
            // manifest promised.
            return Err(io::Error::other(format!(
                "the blob is larger than the {} bytes its descriptor says",
                self.expected_size
            )));
        }
        self.hasher.update(&buf[..n]);
        if let Some((file, path)) = &mut self.copy {
            // Name the file: on a full disk, the user must see which disk.
            file.write_all(&buf[..n])
                .map_err(|e| write_error(path, e))?;
        }
        self.progress.inc(n as u64);
        Ok(n)
    }
}

impl BlobReader {
    /// Read what is left, then check size and digest. A good download joins
    /// the cache; a bad blob is deleted (from the cache too), never kept.
    pub(crate) fn finish(mut self) -> Result<()> {
        let drained = io::copy(&mut self, &mut io::sink());
        let verdict = match (&self.broken, drained) {
            (Some(cause), _) => Err(anyhow!(
                "reading the blob broke off after {} of {} bytes: {cause}",
                self.read,
                self.expected_size
            )),
            // Another read error (Ctrl-C, a write) says nothing about the
            // blob: the partial copy goes with the work directory.
            (None, Err(e)) => return Err(e).context("read the blob"),
            (None, Ok(_)) => self.verify(),
        };
        match self.copy.take() {
            Some((file, partial)) if verdict.is_ok() => {
                file.into_inner()
                    .map_err(|e| write_error(&partial, e.into_error()))?;
                fs::rename(&partial, &self.cached).context("add the blob to the cache")?;
            }
            Some((file, partial)) => {
                drop(file);
                let _ = fs::remove_file(partial);
            }
            None if verdict.is_err() => {
                let _ = fs::remove_file(&self.cached); // a damaged cache entry
            }
            None => {}
        }
        verdict.map_err(|e| anyhow!("{e:#} (the {} blob was deleted)", self.source))
    }

    fn verify(&self) -> Result<()> {
        if self.read != self.expected_size {
            bail!(
                "size mismatch: {} bytes instead of {}",
                self.read,
                self.expected_size
            );
        }
        let actual = format!("sha256:{:x}", self.hasher.clone().finalize());
        let actual = Digest::try_from(actual).map_err(|e| anyhow!("{e}"))?;
        verify_digest(&self.expected_digest, &actual, "blob")
    }
}
// ANCHOR_END: blob_reader

fn write_error(path: &std::path::Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("write {}: {error}", path.display()))
}

// ANCHOR: verify_digest
/// The heart of content addressing: the name of a blob is the sha256 of
/// its bytes, so nobody on the way can change them unnoticed.
pub(crate) fn verify_digest(expected: &Digest, actual: &Digest, what: &str) -> Result<()> {
    if expected != actual {
        bail!("{what} digest mismatch: expected {expected}, got {actual}");
    }
    Ok(())
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> Digest {
    let text = format!("sha256:{:x}", Sha256::digest(bytes));
    Digest::try_from(text).expect("a sha256 digest in hex is a valid digest")
}
// ANCHOR_END: verify_digest

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_compared() {
        let empty = sha256_digest(b"");
        assert_eq!(
            empty.as_ref(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(verify_digest(&empty, &sha256_digest(b""), "blob").is_ok());
        let error = verify_digest(&empty, &sha256_digest(b"x"), "blob").unwrap_err();
        assert!(error.to_string().contains("digest mismatch"));
    }

    /// A blob reader as `open_blob` makes it for a download from `input`,
    /// copied to `copy`, and promised to be `size` bytes.
    fn downloading(input: impl Read + 'static, size: u64, copy: PathBuf) -> BlobReader {
        let file = File::create(&copy).unwrap();
        BlobReader {
            input: Box::new(input),
            source: BlobSource::Registry,
            cached: copy.with_extension("cached"),
            copy: Some((BufWriter::with_capacity(1 << 20, file), copy)),
            hasher: Sha256::new(),
            read: 0,
            broken: None,
            expected_digest: sha256_digest(b"x"),
            expected_size: size,
            progress: ProgressBar::hidden(),
        }
    }

    /// What hyper says when the registry closes the connection mid-body.
    struct CutOff;
    impl Read for CutOff {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            let cause = "end of file before message length reached";
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, cause))
        }
    }

    #[test]
    fn a_cut_download_says_it_broke_off_not_a_size_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let input = io::Cursor::new(b"abc".to_vec()).chain(CutOff);
        let mut blob = downloading(input, 10, dir.path().join("blob.partial"));
        // The unpacker sees the error first; then `finish` reports it.
        assert!(io::copy(&mut blob, &mut io::sink()).is_err());
        let error = format!("{:#}", blob.finish().unwrap_err());
        assert!(
            error.starts_with("reading the blob broke off after 3 of 10 bytes: end of file"),
            "{error}"
        );
        assert!(!dir.path().join("blob.partial").exists());
    }

    #[test]
    fn a_full_disk_names_the_file_it_could_not_write() {
        let dir = tempfile::tempdir().unwrap();
        // /dev/full: every write fails with ENOSPC. Through a link: the
        // failed download removes its copy (the link, not the device).
        let copy = dir.path().join("blob.partial");
        std::os::unix::fs::symlink("/dev/full", &copy).unwrap();
        let input = io::Cursor::new(vec![0u8; 2 << 20]); // more than the buffer
        let error = format!(
            "{:#}",
            downloading(input, 2 << 20, copy).finish().unwrap_err()
        );
        let expected = format!("write {}/blob.partial: No space left", dir.path().display());
        assert!(error.contains(&expected), "{error}");
    }
}
