//! Manifests: from a tag to the list of blobs that make this machine's
//! image, through an index (one manifest per platform) if need be.

use crate::blob::{sha256_digest, verify_digest};
use crate::reference::{parse_digest, Reference, Target};
use crate::registry::{read_limited, Registry, MAX_JSON_BYTES};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest};
use reqwest::header::{HeaderMap, CONTENT_TYPE};

// ANCHOR: accept
/// The manifest formats we read. Without the OCI types a registry answers
/// 404 for an OCI image; without the Docker v2 types it converts a Docker
/// image's manifest down to the old "schema 1".
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
// ANCHOR_END: accept

/// A manifest and the exact bytes it was parsed from.
pub(crate) struct ResolvedManifest {
    pub image: ImageManifest,
    pub digest: Digest,
    pub bytes: Vec<u8>,
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
pub(crate) fn resolve_manifest(
    registry: &mut Registry,
    reference: &Reference,
) -> Result<ResolvedManifest> {
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
    let bytes = read_limited(response, MAX_JSON_BYTES)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse_reference;
    use std::io::Write;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A registry's answer: status, headers, body.
    type Response = (u16, Vec<(String, String)>, Vec<u8>);

    /// A tiny HTTP server on 127.0.0.1 that answers `count` requests with
    /// `respond(its port, request line, headers)`, then returns what it
    /// was asked.
    fn fake_registry(
        count: usize,
        respond: impl Fn(u16, &str, &str) -> Response + Send + 'static,
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

    /// `MANIFEST`, sent as an OCI manifest whose digest the registry says is `digest`.
    fn manifest_response(digest: String) -> Response {
        let headers = vec![
            (
                "Content-Type".into(),
                "application/vnd.oci.image.manifest.v1+json".into(),
            ),
            ("Docker-Content-Digest".into(), digest),
        ];
        (200, headers, MANIFEST.as_bytes().to_vec())
    }

    /// What `resolve_manifest` makes of `reference` (the registry's port in it).
    fn resolve(reference: &str) -> Result<ResolvedManifest> {
        let reference = parse_reference(reference).unwrap();
        let mut registry = Registry::new(&reference, false).unwrap();
        resolve_manifest(&mut registry, &reference)
    }

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
            manifest_response(manifest_digest)
        });
        let manifest = resolve(&format!("127.0.0.1:{port}/team/app:v1")).unwrap();
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
        let (port, server) = fake_registry(1, |_, _, _| manifest_response(format!("sha256:{HEX}")));
        let error = resolve(&format!("localhost:{port}/app")).err().unwrap();
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
        let error = format!(
            "{:#}",
            resolve(&format!("127.0.0.1:{port}/app")).err().unwrap()
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
