//! # Pulling an image from a registry
//!
//! `ch04 pull busybox` does what `docker pull busybox` does, with the
//! registry's HTTP API (the OCI distribution spec):
//!
//! 1. parse the reference: `busybox` is `docker.io/library/busybox:latest`;
//! 2. `GET /v2/NAME/manifests/TAG`, saying which manifest formats we read
//!    (`Accept`). Docker Hub first answers 401 with a `WWW-Authenticate`
//!    header naming a token service: we get an anonymous token there and
//!    ask again with `Authorization: Bearer TOKEN`;
//! 3. the answer may be an index (one manifest per platform): pick
//!    linux/amd64 (this machine's) and fetch that manifest by its digest;
//! 4. the manifest lists the config blob and the layers, each by the
//!    sha256 digest of its bytes: `GET /v2/NAME/blobs/DIGEST`;
//! 5. each layer streams download → sha256 → gunzip → untar, straight into
//!    the new root filesystem; the digest is checked when the stream ends.
//!
//! What is kept under the data directory (`ch04::data_dir()`):
//!
//! ```text
//! blobs/sha256/HEX     verified blobs (layers and configs), reused by later pulls
//! images/NAME/rootfs   the unpacked image, with manifest.json, config.json, digest
//! tmp/PID-N/           a pull in progress; removed when it fails
//! ```
//!
//! A pull builds everything in `tmp/` and renames the result into
//! `images/` at the very end, so a failed pull (bad digest, 404, network
//! error, Ctrl-C) leaves no rootfs and no partial blob behind.

use crate::unpack;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oci_spec::image::{Descriptor, Digest, DigestAlgorithm, ImageIndex, ImageManifest};
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The registry that names without a host come from (Docker Hub).
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's API lives on another host than its name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

// ANCHOR: accept
/// The manifest formats we read. Without the OCI types a registry answers
/// 404 for an OCI image; without the Docker v2 types it converts a Docker
/// image's manifest down to the old "schema 1".
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
// ANCHOR_END: accept

/// Manifests and configs are small JSON documents: refuse absurd ones.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
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
    let store = Store::open(&crate::data_dir())?;
    let mut registry = Registry::new(&reference, args.insecure)?;
    let manifest = resolve_manifest(&mut registry, &reference)?;
    let image_dir = store.image_dir(&reference);
    if is_up_to_date(&image_dir, &manifest.digest) {
        say(&format!("{reference} is up to date ({})", manifest.digest));
        return Ok(image_dir.join("rootfs"));
    }
    let work = store.new_work_dir()?;
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
    let rootfs = crate::data_dir()
        .join("images")
        .join(parsed.dir_name())
        .join("rootfs");
    if !rootfs.is_dir() {
        bail!("image {parsed} is not pulled yet: run `ch04 pull {reference}` first");
    }
    Ok(rootfs)
}

// ---------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------

/// An image reference, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `registry.example.org`
    pub registry: String,
    /// `library/busybox`, `name`, `team/app`
    pub repository: String,
    /// Which manifest: by tag or by digest.
    pub target: Target,
}

/// A tag names a manifest that may change; a digest names exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.repository),
            Target::Digest(digest) => write!(f, "{}/{}@{digest}", self.registry, self.repository),
        }
    }
}

impl Reference {
    /// What goes after `/manifests/` in the URL.
    fn manifest_name(&self) -> String {
        match &self.target {
            Target::Tag(tag) => tag.clone(),
            Target::Digest(digest) => digest.to_string(),
        }
    }

    /// The host (and port) to talk to.
    fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Is the registry on this machine (`localhost`, `127.0.0.0/8`, `[::1]`)?
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => self.registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    // ANCHOR: dir_name
    /// A directory name for this image, one per reference:
    /// `docker.io+library+busybox+latest`, `127.0.0.1_5000+name@sha256-…`.
    /// `+` and `@` appear in no part of a reference, so names never clash;
    /// `:` is avoided because overlayfs uses it to separate lower layers.
    pub fn dir_name(&self) -> String {
        let registry = self.registry.replace(':', "_");
        let repository = self.repository.replace('/', "+");
        match &self.target {
            Target::Tag(tag) => format!("{registry}+{repository}+{tag}"),
            Target::Digest(digest) => format!(
                "{registry}+{repository}@{}-{}",
                digest.algorithm(),
                digest.digest()
            ),
        }
    }
    // ANCHOR_END: dir_name
}

// ANCHOR: parse_reference
/// Parse `[REGISTRY/]NAME[:TAG][@DIGEST]` the way Docker does: the first
/// part is a registry if it has a `.` or a `:` or is `localhost`; the tag
/// defaults to `latest`; a Docker Hub name without `/` is in `library/`.
pub fn parse_reference(text: &str) -> Result<Reference> {
    parse_reference_parts(text).with_context(|| format!("malformed image reference {text:?}"))
}

fn parse_reference_parts(text: &str) -> Result<Reference> {
    if text.is_empty() {
        bail!("it is empty");
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        bail!("it contains {c:?}");
    }
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(parse_digest(digest)?)),
        None => (text, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    };
    // Docker Hub's other names.
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    check_registry(&registry)?;
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repository, tag)) => (repository, tag),
        None => (rest, "latest"),
    };
    check_repository(repository)?;
    check_tag(tag)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    let target = match digest {
        Some(digest) => Target::Digest(digest), // a digest wins over a tag
        None => Target::Tag(tag.to_string()),
    };
    Ok(Reference {
        registry,
        repository,
        target,
    })
}
// ANCHOR_END: parse_reference

/// `sha256:` and 64 lowercase hex digits.
fn parse_digest(text: &str) -> Result<Digest> {
    let digest: Digest = text
        .parse()
        .map_err(|e| anyhow!("bad digest {text:?}: {e}"))?;
    if *digest.algorithm() != DigestAlgorithm::Sha256 {
        bail!(
            "only sha256 digests are supported, not {}",
            digest.algorithm()
        );
    }
    Ok(digest)
}

/// A host name or address, with an optional port: `127.0.0.1:5000`,
/// `registry.example.org`, `[::1]:5000`.
fn check_registry(registry: &str) -> Result<()> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (address, port) = rest
            .split_once(']')
            .context("unclosed `[` in the registry")?;
        address
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| anyhow!("bad IPv6 address {address:?}"))?;
        (None, port.strip_prefix(':').map(Some).unwrap_or(None))
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            bail!("bad registry host {host:?}");
        }
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            bail!("bad registry port {port:?}");
        }
    }
    Ok(())
}

/// Path components of lowercase letters and digits, joined by `.`, `_`,
/// `__` or dashes: `library/busybox`, `my-team/app_v2`.
fn check_repository(repository: &str) -> Result<()> {
    if repository.is_empty() {
        bail!("the image name is missing");
    }
    if repository.len() > 255 {
        bail!("the image name is longer than 255 characters");
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        bail!("image names must be lowercase");
    }
    for component in repository.split('/') {
        check_name_component(component)?;
    }
    Ok(())
}

fn check_name_component(component: &str) -> Result<()> {
    let is_separator = |c: char| matches!(c, '.' | '_' | '-');
    let bad = || anyhow!("bad name component {component:?}");
    if component.is_empty() {
        bail!("empty name component (a `//` or a `/` at an end)");
    }
    if !component
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || is_separator(c))
    {
        return Err(bad());
    }
    if component.starts_with(is_separator) || component.ends_with(is_separator) {
        return Err(bad());
    }
    // Between two alphanumeric runs: `.`, `_`, `__`, or any number of `-`.
    for separator in component.split(|c: char| c.is_ascii_alphanumeric()) {
        if !matches!(separator, "" | "." | "_" | "__") && !separator.chars().all(|c| c == '-') {
            return Err(bad());
        }
    }
    Ok(())
}

/// Up to 128 of letters, digits, `_`, `.` and `-`, not starting with `.`/`-`.
fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!("bad tag {tag:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Talking to the registry
// ---------------------------------------------------------------------------

/// One repository on one registry, and the token we got for it.
struct Registry {
    client: Client,
    /// `https://registry-1.docker.io/v2/library/busybox`
    base: String,
    /// The registry's name, for messages.
    name: String,
    token: Option<String>,
}

impl Registry {
    /// Plain HTTP only for a registry on this machine or with
    /// `--insecure`: anything else could be read or changed on the way.
    fn new(reference: &Reference, insecure: bool) -> Result<Self> {
        let plain_http = reference.is_loopback() || insecure;
        let scheme = if plain_http { "http" } else { "https" };
        let mut builder = Client::builder()
            .user_agent(concat!("pods-from-scratch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // For the blocking client: the longest wait for each answer
            // and each read of a body, not for a whole download.
            .timeout(Duration::from_secs(60));
        if reference.is_loopback() {
            builder = builder.no_proxy(); // an HTTP proxy cannot reach our loopback
        }
        Ok(Registry {
            client: builder.build().context("create the HTTP client")?,
            base: format!(
                "{scheme}://{}/v2/{}",
                reference.api_host(),
                reference.repository
            ),
            name: reference.registry.clone(),
            token: None,
        })
    }

    // ANCHOR: get
    /// `GET base/path`. On a 401 that names a token service, fetch a token
    /// and ask once more with it.
    fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response> {
        let url = format!("{}/{path}", self.base);
        let response = self.send(&url, accept)?;
        if response.status() != StatusCode::UNAUTHORIZED || self.token.is_some() {
            return Ok(response);
        }
        let Some(challenge) = response.headers().get(WWW_AUTHENTICATE) else {
            return Ok(response);
        };
        let challenge = challenge.to_str().unwrap_or_default().to_string();
        self.token = Some(self.fetch_token(&challenge)?);
        self.send(&url, accept)
    }
    // ANCHOR_END: get

    fn send(&self, url: &str, accept: Option<&str>) -> Result<Response> {
        let mut request = self.client.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request.send().map_err(|e| self.network_error(&e))
    }

    // ANCHOR: fetch_token
    /// Docker Hub's anonymous token flow: the 401's
    /// `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` says where
    /// to ask; `GET realm?service=…&scope=…` answers `{"token": "…"}`.
    fn fetch_token(&self, challenge: &str) -> Result<String> {
        let params = parse_bearer_challenge(challenge).with_context(|| {
            format!(
                "the registry {} asks for a login we cannot give ({challenge})",
                self.name
            )
        })?;
        let realm = param(&params, "realm").context("no realm in the token challenge")?;
        let mut request = self.client.get(realm);
        for key in ["service", "scope"] {
            if let Some(value) = param(&params, key) {
                request = request.query(&[(key, value)]);
            }
        }
        let response = request.send().map_err(|e| self.network_error(&e))?;
        if !response.status().is_success() {
            bail!("the token service {realm} answered {}", response.status());
        }
        let body = read_limited(response, MAX_MANIFEST_BYTES)?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).context("the token service's answer is not JSON")?;
        let token = json["token"].as_str().or(json["access_token"].as_str());
        Ok(token
            .context("no token in the token service's answer")?
            .to_string())
    }
    // ANCHOR_END: fetch_token

    /// One line saying what went wrong on the network.
    fn network_error(&self, error: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(error);
        if error.is_connect() {
            anyhow!("cannot reach the registry {}: {cause}", self.name)
        } else if error.is_timeout() {
            anyhow!("the registry {} did not answer in time", self.name)
        } else {
            anyhow!("talking to the registry {}: {cause}", self.name)
        }
    }

    /// Turn an unsuccessful answer into one clear line.
    fn check_status(&self, response: Response, what: &str) -> Result<Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = registry_error_code(response);
        let detail = code.map(|c| format!(" {c}")).unwrap_or_default();
        match status {
            StatusCode::NOT_FOUND => {
                bail!("{what} not found on {} (404{detail})", self.name)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => bail!(
                "access to {what} refused by {} ({}{detail}): it does not exist or needs a login",
                self.name,
                status.as_u16()
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                bail!("{} says too many requests: try again later", self.name)
            }
            _ => bail!("{what}: {} answered {status}{detail}", self.name),
        }
    }
}

/// The innermost error: "Connection refused (os error 111)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Registries explain errors as `{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`.
fn registry_error_code(response: Response) -> Option<String> {
    let body = read_limited(response, 64 * 1024).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some(json["errors"][0]["code"].as_str()?.to_string())
}

/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`
/// → `[("realm", "https://…"), ("service", "registry.docker.io")]`.
/// Values are quoted and may hold commas (`scope="repository:a:pull,push"`).
fn parse_bearer_challenge(challenge: &str) -> Result<Vec<(String, String)>> {
    let (scheme, mut rest) = challenge.trim().split_once(' ').unwrap_or((challenge, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        bail!("{scheme} authentication is not supported, only anonymous Bearer tokens");
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return Ok(params);
        }
        let (key, after_key) = rest.split_once('=').context("malformed challenge")?;
        let (value, after_value) = match after_key.strip_prefix('"') {
            Some(quoted) => quoted
                .split_once('"')
                .context("unclosed quote in challenge")?,
            None => after_key.split_once(',').unwrap_or((after_key, "")),
        };
        params.push((key.trim().to_ascii_lowercase(), value.to_string()));
        rest = after_value;
    }
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Read a whole (small) body, refusing more than `limit` bytes.
fn read_limited(response: Response, limit: u64) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut body)
        .context("read the registry's answer")?;
    if body.len() as u64 > limit {
        bail!("the registry's answer is larger than {limit} bytes");
    }
    Ok(body)
}

// ---------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------

/// A manifest and the exact bytes it was parsed from.
struct ResolvedManifest {
    image: ImageManifest,
    digest: Digest,
    bytes: Vec<u8>,
}

/// A manifest or index as the registry sent it, its digest checked.
struct FetchedManifest {
    media_type: String,
    digest: Digest,
    bytes: Vec<u8>,
}

// ANCHOR: resolve_manifest
/// The image manifest for this machine: fetch what the reference names;
/// if it is an index, pick our platform and fetch that manifest.
fn resolve_manifest(registry: &mut Registry, reference: &Reference) -> Result<ResolvedManifest> {
    let expected = match &reference.target {
        Target::Digest(digest) => Some(digest.clone()),
        Target::Tag(_) => None,
    };
    let what = format!("image {reference}");
    let mut fetched = fetch_manifest(registry, &reference.manifest_name(), expected, &what)?;
    if is_index(&fetched.media_type) {
        let index = ImageIndex::from_reader(&fetched.bytes[..])
            .map_err(|e| anyhow!("cannot parse the image index: {e}"))?;
        let chosen = choose_platform(&index)?;
        let what = format!("{what} for {}", host_platform());
        let digest = chosen.digest().clone();
        fetched = fetch_manifest(registry, digest.as_ref(), Some(digest.clone()), &what)?;
    }
    if !is_manifest(&fetched.media_type) {
        bail!("unsupported manifest type {:?}", fetched.media_type);
    }
    let image = ImageManifest::from_reader(&fetched.bytes[..])
        .map_err(|e| anyhow!("cannot parse the image manifest: {e}"))?;
    Ok(ResolvedManifest {
        image,
        digest: fetched.digest,
        bytes: fetched.bytes,
    })
}
// ANCHOR_END: resolve_manifest

// ANCHOR: fetch_manifest
/// `GET /v2/NAME/manifests/TAG-OR-DIGEST` and check the sha256 of the bytes
/// against the digest we asked for, or else the one the registry states in
/// `Docker-Content-Digest`.
fn fetch_manifest(
    registry: &mut Registry,
    name: &str,
    expected: Option<Digest>,
    what: &str,
) -> Result<FetchedManifest> {
    let response = registry.get(&format!("manifests/{name}"), Some(MANIFEST_ACCEPT))?;
    let response = registry.check_status(response, what)?;
    let headers = response.headers().clone();
    let bytes = read_limited(response, MAX_MANIFEST_BYTES)?;
    let stated = match headers.get("docker-content-digest") {
        Some(value) => Some(parse_digest(value.to_str().unwrap_or_default())?),
        None => None,
    };
    let actual = sha256_digest(&bytes);
    // With neither, we trust the connection (HTTPS) for this first step:
    // from here on every blob is checked against this manifest.
    if let Some(expected) = expected.or(stated) {
        verify_digest(&expected, &actual, "manifest")?;
    }
    Ok(FetchedManifest {
        media_type: media_type_of(&headers, &bytes),
        digest: actual,
        bytes,
    })
}
// ANCHOR_END: fetch_manifest

/// The `Content-Type` (without parameters), or else the JSON's `mediaType`.
fn media_type_of(headers: &HeaderMap, bytes: &[u8]) -> String {
    let header = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "application/json");
    if let Some(media_type) = header {
        return media_type.to_string();
    }
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match json["mediaType"].as_str() {
        Some(media_type) => media_type.to_string(),
        None if json.get("manifests").is_some() => "application/vnd.oci.image.index.v1+json".into(),
        None => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

fn is_index(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

fn is_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
    )
}

// ANCHOR: choose_platform
/// This machine's platform as Go (and so image indexes) names it:
/// Rust's `x86_64` is `amd64`, `aarch64` is `arm64`.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other, // riscv64, s390x: the same names
    };
    format!("linux/{arch}")
}

/// The index entry for this machine's platform.
fn choose_platform(index: &ImageIndex) -> Result<&Descriptor> {
    let wanted = host_platform();
    let platform_of = |descriptor: &Descriptor| {
        descriptor
            .platform()
            .as_ref()
            .map(|p| format!("{}/{}", p.os(), p.architecture()))
    };
    let found = index
        .manifests()
        .iter()
        .find(|d| platform_of(d).as_deref() == Some(wanted.as_str()));
    found.with_context(|| {
        let offered: Vec<String> = index.manifests().iter().filter_map(platform_of).collect();
        format!(
            "no {wanted} image in the index (it has: {})",
            offered.join(", ")
        )
    })
}
// ANCHOR_END: choose_platform

// ---------------------------------------------------------------------------
// Blobs: config and layers
// ---------------------------------------------------------------------------

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

/// Where a blob's bytes come from.
#[derive(Debug, Clone, Copy)]
enum BlobSource {
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
struct BlobReader {
    input: Box<dyn Read>,
    source: BlobSource,
    /// Where the verified blob is kept: `blobs/sha256/HEX`.
    cached: PathBuf,
    /// While downloading: the temporary copy (`tmp/PID-N/HEX.partial`).
    copy: Option<(BufWriter<File>, PathBuf)>,
    hasher: Sha256,
    read: u64,
    expected_digest: Digest,
    expected_size: u64,
    progress: ProgressBar,
}

/// Open a blob: the cached copy if there is one (checked again as it is
/// read: a damaged cache is caught too), else `GET /v2/NAME/blobs/DIGEST`.
fn open_blob(
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
        expected_digest: digest.clone(),
        expected_size: descriptor.size(),
        progress,
    })
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(io::Error::other("interrupted"));
        }
        let n = self.input.read(buf)?;
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
        if let Some((file, _)) = &mut self.copy {
            file.write_all(&buf[..n])?;
        }
        self.progress.inc(n as u64);
        Ok(n)
    }
}

impl BlobReader {
    /// Read what is left, then check size and digest. A good download joins
    /// the cache; a bad blob is deleted (from the cache too), never kept.
    fn finish(mut self) -> Result<()> {
        // A read error (network, Ctrl-C) says nothing about the blob: the
        // partial copy goes with the work directory, the cache stays.
        io::copy(&mut self, &mut io::sink()).context("read the blob")?;
        let verdict = self.verify();
        match self.copy.take() {
            Some((file, partial)) if verdict.is_ok() => {
                file.into_inner().map_err(|e| e.into_error())?;
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

// ANCHOR: verify_digest
/// The heart of content addressing: the name of a blob is the sha256 of
/// its bytes, so nobody on the way can change them unnoticed.
fn verify_digest(expected: &Digest, actual: &Digest, what: &str) -> Result<()> {
    if expected != actual {
        bail!("{what} digest mismatch: expected {expected}, got {actual}");
    }
    Ok(())
}

fn sha256_digest(bytes: &[u8]) -> Digest {
    let text = format!("sha256:{:x}", Sha256::digest(bytes));
    Digest::try_from(text).expect("a sha256 digest in hex is a valid digest")
}
// ANCHOR_END: verify_digest

// ---------------------------------------------------------------------------
// The data directory
// ---------------------------------------------------------------------------

/// The layout under the data directory (see the module's documentation).
struct Store {
    root: PathBuf,
}

/// A pull's private work directory (`tmp/PID-N`): the rootfs being built
/// and partial blobs. Removed when dropped, which happens on every error.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

impl Store {
    fn open(root: &Path) -> Result<Self> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in ["blobs/sha256", "images", "tmp"] {
            let dir = root.join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        }
        store.remove_stale_work_dirs();
        Ok(store)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_file(&self.root, digest)
    }

    fn image_dir(&self, reference: &Reference) -> PathBuf {
        self.root.join("images").join(reference.dir_name())
    }

    /// `tmp/PID-N`, with an empty `rootfs` in it, private to root: nobody
    /// else may change it while we unpack (see `unpack`).
    fn new_work_dir(&self) -> Result<WorkDir> {
        use std::os::unix::fs::DirBuilderExt;
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("create {}", path.display()))?;
        let work = WorkDir { path };
        fs::DirBuilder::new().mode(0o755).create(work.rootfs())?;
        Ok(work)
    }

    // ANCHOR: install
    /// The last step, all or nothing: rename the finished work directory to
    /// `images/NAME`. If an older pull is there, the two are swapped in one
    /// step (`renameat2(RENAME_EXCHANGE)`) and the old one is deleted with
    /// the work directory.
    fn install(&self, work: WorkDir, image_dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&work.path, fs::Permissions::from_mode(0o755))?;
        if image_dir.exists() {
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &work.path,
                nix::fcntl::AT_FDCWD,
                image_dir,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .with_context(|| format!("replace {}", image_dir.display()))?;
        } else {
            fs::rename(&work.path, image_dir)
                .with_context(|| format!("rename into {}", image_dir.display()))?;
        }
        Ok(()) // `work` is dropped: the old image, if any, is deleted
    }
    // ANCHOR_END: install

    /// Work directories of pulls that died without cleaning up (killed,
    /// power cut): their process is gone.
    fn remove_stale_work_dirs(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default();
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn blob_file(root: &Path, digest: &Digest) -> PathBuf {
    // The digest was validated (hex only), so it is a safe file name.
    root.join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

/// Was this exact manifest pulled into `image_dir` already?
fn is_up_to_date(image_dir: &Path, digest: &Digest) -> bool {
    let recorded = fs::read_to_string(image_dir.join("digest")).unwrap_or_default();
    recorded == digest.as_ref() && image_dir.join("rootfs").is_dir()
}

// ---------------------------------------------------------------------------
// Ctrl-C and progress
// ---------------------------------------------------------------------------

// ANCHOR: ctrl_c
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// On Ctrl-C (or SIGTERM, SIGHUP), note it: the next read of a blob fails,
/// and the error path removes the work directory as for any other error.
/// `SA_RESETHAND`: a second Ctrl-C kills at once (the next pull removes
/// what is left in `tmp/`).
fn stop_on_ctrl_c() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(signal, &action) }.context("sigaction")?;
    }
    Ok(())
}
// ANCHOR_END: ctrl_c

/// A progress bar on a terminal; nothing otherwise (plain lines are
/// printed when each layer is done).
fn progress_bar(size: u64, step: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(step.to_string());
    bar
}

/// Progress goes to stderr, so that stdout holds only results.
fn say(line: &str) {
    eprintln!("{line}");
}

/// `sha256:0123456789ab` (enough to recognise a layer).
fn short(digest: &Digest) -> String {
    let hex = digest.digest();
    format!("{}:{}", digest.algorithm(), &hex[..hex.len().min(12)])
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(registry: &str, repository: &str, tag: &str) -> Reference {
        Reference {
            registry: registry.into(),
            repository: repository.into(),
            target: Target::Tag(tag.into()),
        }
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn short_names_come_from_docker_hub() {
        assert_eq!(
            parse_reference("busybox").unwrap(),
            tag("docker.io", "library/busybox", "latest")
        );
        assert_eq!(
            parse_reference("debian:bookworm").unwrap(),
            tag("docker.io", "library/debian", "bookworm")
        );
        assert_eq!(
            parse_reference("someone/tool:1.2_rc-3").unwrap(),
            tag("docker.io", "someone/tool", "1.2_rc-3")
        );
        assert_eq!(
            parse_reference("docker.io/busybox").unwrap(),
            tag("docker.io", "library/busybox", "latest")
        );
    }

    #[test]
    fn a_registry_is_a_first_part_with_a_dot_a_port_or_localhost() {
        assert_eq!(
            parse_reference("127.0.0.1:5000/name:tag").unwrap(),
            tag("127.0.0.1:5000", "name", "tag")
        );
        assert_eq!(
            parse_reference("localhost/a/b").unwrap(),
            tag("localhost", "a/b", "latest")
        );
        assert_eq!(
            parse_reference("registry.example.org/team/app:v1").unwrap(),
            tag("registry.example.org", "team/app", "v1")
        );
        assert_eq!(
            parse_reference("[::1]:5000/x").unwrap(),
            tag("[::1]:5000", "x", "latest")
        );
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_asked() {
        let base = |text: &str, insecure: bool| {
            let reference = parse_reference(text).unwrap();
            Registry::new(&reference, insecure).unwrap().base
        };
        assert_eq!(
            base("busybox", false),
            "https://registry-1.docker.io/v2/library/busybox"
        );
        assert_eq!(
            base("127.0.0.1:5000/x", false),
            "http://127.0.0.1:5000/v2/x"
        );
        assert_eq!(base("example.org/x", false), "https://example.org/v2/x");
        assert_eq!(base("example.org/x", true), "http://example.org/v2/x");
        assert_eq!(
            base("index.docker.io/library/busybox", false),
            "https://registry-1.docker.io/v2/library/busybox"
        );
    }

    #[test]
    fn a_digest_names_exact_bytes() {
        let reference = parse_reference(&format!("busybox:1.36@sha256:{HEX}")).unwrap();
        assert_eq!(
            reference.target,
            Target::Digest(parse_digest(&format!("sha256:{HEX}")).unwrap())
        );
        assert_eq!(reference.manifest_name(), format!("sha256:{HEX}"));
        assert_eq!(
            reference.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
    }

    #[test]
    fn malformed_references_are_refused_in_one_line() {
        let bad = [
            "",
            " busybox",
            "busy box",
            "Busybox",
            "busybox:",
            ":latest",
            "a//b",
            "busybox/",
            "/busybox",
            "127.0.0.1:5000/",
            "127.0.0.1:99999/x",
            "127.0.0.1:0/x",
            "127.0.0.1:port/x",
            "-leading/x",
            "a..b",
            "a___b",
            "name:tag:more",
            "name:ta/g",
            "name:.tag",
            "busybox@sha256:1234",
            "busybox@md5:0123",
            "busybox@",
            "bad_host.example/x",
            "[::1/x",
            "tab\tname",
        ];
        for text in bad {
            let error = parse_reference(text).expect_err(text);
            let line = format!("{error:#}");
            assert!(line.starts_with("malformed image reference"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        let long_tag = format!("x:{}", "t".repeat(129));
        assert!(parse_reference(&long_tag).is_err());
    }

    #[test]
    fn only_loopback_registries_are_loopback() {
        for text in [
            "127.0.0.1:5000/x",
            "127.1.2.3/x",
            "localhost:5000/x",
            "[::1]:5000/x",
        ] {
            assert!(parse_reference(text).unwrap().is_loopback(), "{text}");
        }
        for text in [
            "busybox",
            "10.0.0.1:5000/x",
            "example.org/x",
            "localhost.example/x",
        ] {
            assert!(!parse_reference(text).unwrap().is_loopback(), "{text}");
        }
    }

    #[test]
    fn directory_names_are_flat_and_distinct() {
        let names: Vec<String> = [
            "busybox",
            "127.0.0.1:5000/name:tag",
            "a/b:c",
            "a/b/c:latest",
            "a_b:c",
            "a:b_c",
        ]
        .iter()
        .map(|t| parse_reference(t).unwrap().dir_name())
        .collect();
        assert_eq!(names[0], "docker.io+library+busybox+latest");
        assert_eq!(names[1], "127.0.0.1_5000+name+tag");
        for name in &names {
            assert!(!name.contains(['/', ':', ',']), "{name}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let digest = parse_reference(&format!("x@sha256:{HEX}")).unwrap();
        assert_eq!(
            digest.dir_name(),
            format!("docker.io+library+x@sha256-{HEX}")
        );
    }

    #[test]
    fn the_bearer_challenge_is_parsed() {
        let challenge = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        let params = parse_bearer_challenge(challenge).unwrap();
        assert_eq!(
            param(&params, "realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(param(&params, "service"), Some("registry.docker.io"));
        assert_eq!(
            param(&params, "scope"),
            Some("repository:library/busybox:pull,push")
        );
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_err());
        assert!(parse_bearer_challenge(r#"Bearer realm="unclosed"#).is_err());
    }

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

    /// A tiny HTTP server on 127.0.0.1 that answers `count` requests with
    /// `respond(its port, request line, headers)`, then returns what it
    /// was asked.
    fn fake_registry(
        count: usize,
        respond: impl Fn(u16, &str, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for _ in 0..count {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let (request_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
                let (status, extra, body) = respond(port, request_line, &headers.to_lowercase());
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (name, value) in extra {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n");
                let mut stream = stream;
                stream.write_all(response.as_bytes()).unwrap();
                stream.write_all(&body).unwrap();
                requests.push(head);
            }
            requests
        });
        (port, server)
    }

    const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":2},"layers":[]}"#;

    #[test]
    fn the_bearer_token_flow() {
        let (port, server) = fake_registry(3, |port, request, headers| {
            let manifest_digest = sha256_digest(MANIFEST.as_bytes()).to_string();
            if request.starts_with("GET /token?") {
                return (200, vec![], br#"{"token":"t0k3n"}"#.to_vec());
            }
            if !headers.contains("authorization: bearer t0k3n") {
                let challenge = format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:team/app:pull""#
                );
                return (
                    401,
                    vec![("WWW-Authenticate".into(), challenge)],
                    b"{}".to_vec(),
                );
            }
            let headers = vec![
                (
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest".into(), manifest_digest),
            ];
            (200, headers, MANIFEST.as_bytes().to_vec())
        });
        let reference = parse_reference(&format!("127.0.0.1:{port}/team/app:v1")).unwrap();
        let mut registry = Registry::new(&reference, false).unwrap();
        let manifest = resolve_manifest(&mut registry, &reference).unwrap();
        assert_eq!(manifest.digest, sha256_digest(MANIFEST.as_bytes()));
        assert!(manifest.image.layers().is_empty());
        let requests = server.join().unwrap();
        assert!(requests[0].starts_with("GET /v2/team/app/manifests/v1 "));
        assert!(requests[0].contains("application/vnd.oci.image.index.v1+json"));
        assert!(
            requests[1]
                .starts_with("GET /token?service=fake&scope=repository%3Ateam%2Fapp%3Apull "),
            "{}",
            requests[1]
        );
        assert!(requests[2]
            .to_lowercase()
            .contains("authorization: bearer t0k3n"));
    }

    #[test]
    fn a_manifest_that_does_not_match_its_digest_is_refused() {
        let (port, server) = fake_registry(1, |_, _, _| {
            let wrong = format!("sha256:{HEX}");
            let headers = vec![
                (
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest".into(), wrong),
            ];
            (200, headers, MANIFEST.as_bytes().to_vec())
        });
        let reference = parse_reference(&format!("localhost:{port}/app")).unwrap();
        let mut registry = Registry::new(&reference, false).unwrap();
        let error = resolve_manifest(&mut registry, &reference).err().unwrap();
        assert!(
            format!("{error:#}").contains("manifest digest mismatch"),
            "{error:#}"
        );
        server.join().unwrap();
    }

    #[test]
    fn a_login_is_refused_in_one_line() {
        let (port, server) = fake_registry(1, |_, _, _| {
            let challenge = r#"Basic realm="private""#.to_string();
            (401, vec![("WWW-Authenticate".into(), challenge)], vec![])
        });
        let reference = parse_reference(&format!("127.0.0.1:{port}/app")).unwrap();
        let mut registry = Registry::new(&reference, false).unwrap();
        let error = format!(
            "{:#}",
            resolve_manifest(&mut registry, &reference).err().unwrap()
        );
        assert!(error.contains("asks for a login"), "{error}");
        assert!(!error.contains('\n'));
        server.join().unwrap();
    }

    #[test]
    fn the_host_platform_uses_go_names() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(host_platform(), "linux/amd64");
        assert!(host_platform().starts_with("linux/"));
    }
}
