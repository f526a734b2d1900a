//! Image references: `busybox` is `docker.io/library/busybox:latest`.
//!
//! The grammar is Docker's (`[REGISTRY/]NAME[:TAG][@DIGEST]`); every part is
//! checked, so a reference can become a URL path and a directory name safely.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{Digest, DigestAlgorithm};
use std::fmt;

/// The registry that names without a host come from (Docker Hub).
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's API lives on another host than its name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

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
    pub(crate) fn manifest_name(&self) -> String {
        match &self.target {
            Target::Tag(tag) => tag.clone(),
            Target::Digest(digest) => digest.to_string(),
        }
    }

    /// The host (and port) to talk to.
    pub(crate) fn api_host(&self) -> &str {
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
pub(crate) fn parse_digest(text: &str) -> Result<Digest> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_split_into_registry_repository_and_tag() {
        // (reference, its parts: "registry repository tag")
        let cases = [
            // Short names come from Docker Hub.
            ("busybox", "docker.io library/busybox latest"),
            ("debian:bookworm", "docker.io library/debian bookworm"),
            ("someone/tool:1.2_rc-3", "docker.io someone/tool 1.2_rc-3"),
            ("docker.io/busybox", "docker.io library/busybox latest"),
            // A registry is a first part with a dot, a port or `localhost`.
            ("127.0.0.1:5000/name:tag", "127.0.0.1:5000 name tag"),
            ("localhost/a/b", "localhost a/b latest"),
            (
                "registry.example.org/team/app:v1",
                "registry.example.org team/app v1",
            ),
            ("[::1]:5000/x", "[::1]:5000 x latest"),
        ];
        for (text, parts) in cases {
            let reference = parse_reference(text).unwrap();
            let Target::Tag(tag) = &reference.target else {
                panic!("{text}: no tag");
            };
            let split = format!("{} {} {tag}", reference.registry, reference.repository);
            assert_eq!(split, parts, "{text}");
        }
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
}
