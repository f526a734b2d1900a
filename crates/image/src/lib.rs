//! # pfs-image: pulling and unpacking container images
//!
//! **Machinery, not a lesson.** Chapter 04 (`chapters/04-rootfs`) teaches
//! a root filesystem, overlayfs and `pivot_root`; this crate gets it an
//! image to stand on, as `docker pull` does. The book's "Pulling images"
//! page (book/src/ch04-pulling-images.md) reads it as an appendix.
//!
//! `ch04 pull busybox` talks to the registry's HTTP API (the OCI
//! distribution spec), one module per step:
//!
//! 1. [`reference`]: `busybox` is `docker.io/library/busybox:latest`;
//! 2. [`registry`]: `GET /v2/NAME/manifests/TAG`; Docker Hub first answers
//!    401 with a `WWW-Authenticate` header naming a token service: we get
//!    an anonymous token there and ask again with `Authorization: Bearer`;
//! 3. [`manifest`]: the answer may be an index (one manifest per platform):
//!    pick this machine's and fetch that manifest by its digest;
//! 4. [`blob`]: the manifest lists the config blob and the layers, each by
//!    the sha256 digest of its bytes: `GET /v2/NAME/blobs/DIGEST`;
//! 5. [`unpack`]: each layer streams download → sha256 → gunzip → untar,
//!    straight into the new root filesystem, refusing every entry that
//!    would write outside it; the digest is checked when the stream ends.
//!
//! [`pull`] tells that story from the top; [`store`] keeps the results,
//! [`progress`] shows them (and handles Ctrl-C), and [`cache`] makes
//! every cached artefact (images and chapter 04's root filesystems) once
//! and atomically. Under the data directory ([`cache::data_dir`]):
//!
//! ```text
//! blobs/sha256/HEX     verified blobs (layers and configs), reused by later pulls
//! images/NAME/rootfs   the unpacked image, with manifest.json, config.json, digest
//! locks/NAME.lock      held while NAME is pulled: one pull of an image at a time
//! tmp/PID-N-NAME/      a pull of NAME in progress; removed when it fails
//! ```
//!
//! A pull builds everything in `tmp/` and renames the result into
//! `images/` at the very end, so a failed pull (bad digest, 404, network
//! error, Ctrl-C) leaves no rootfs and no partial blob behind.
//!
//! Why our own client: the maintained Rust client of the distribution
//! protocol (`oci-client`) is async-only, and would put a tokio runtime in
//! a process that later forks a container. A blocking pipeline of
//! `reqwest`, `flate2` and `tar` is also a path a learner can follow line
//! by line. `oci-spec` gives us the manifest, index and config types (its
//! `distribution::Reference` parses the same reference grammar; we keep our
//! parser, which the book reads and whose refusals name the bad part).

pub mod blob;
pub mod cache;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use cache::{build_atomically, data_dir, RootfsCommand};
pub use pull::{image_defaults, pull, pulled_rootfs, PullArgs};
pub use reference::{parse_reference, Reference, Target};
