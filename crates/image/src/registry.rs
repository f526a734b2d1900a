//! Talking to a registry over HTTP: one repository, its anonymous token,
//! and one clear line for each way the network or the registry can fail.

use crate::reference::Reference;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use std::io::Read;
use std::time::Duration;

/// Answers read whole (tokens, manifests) are small JSON documents: refuse
/// absurd ones.
pub(crate) const MAX_JSON_BYTES: u64 = 4 << 20;

/// One repository on one registry, and the token we got for it.
pub(crate) struct Registry {
    client: Client,
    /// `https://registry-1.docker.io/v2/library/busybox`
    base: String,
    /// The registry's name, for messages.
    name: String,
    token: Option<String>,
}

// ANCHOR: impl_registry
impl Registry {
    // ANCHOR_END: impl_registry
    /// Plain HTTP only for a registry on this machine or with
    /// `--insecure`: anything else could be read or changed on the way.
    pub(crate) fn new(reference: &Reference, insecure: bool) -> Result<Self> {
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
    pub(crate) fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response> {
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
        let body = read_limited(response, MAX_JSON_BYTES)?;
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
    pub(crate) fn check_status(&self, response: Response, what: &str) -> Result<Response> {
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
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
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
pub(crate) fn read_limited(response: Response, limit: u64) -> Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse_reference;

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
}
