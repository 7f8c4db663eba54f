//! Fetching manifests: the right Accept headers, digest verification,
//! schema 1 refused, and an index resolved to this machine's platform.

use std::io::Read;

use super::digest::Digest;
use super::oci::{self, Index, Platform};
use super::registry::{FetchError, Registry, Reply};

/// containerd's Accept list, newest formats first.
pub const MANIFEST_TYPES: [&str; 4] = [
    oci::MT_OCI_INDEX,
    oci::MT_OCI_MANIFEST,
    oci::MT_DOCKER_LIST,
    oci::MT_DOCKER_MANIFEST,
];
const SCHEMA1_TYPES: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/json",
];
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// GETs a manifest by tag or digest and checks its digest: against the
/// digest asked for, and against Docker-Content-Digest when sent.
pub fn fetch_manifest(reg: &mut Registry, reference: &str) -> Result<FetchedManifest, FetchError> {
    let reply = reg.get(
        &format!("manifests/{reference}"),
        &MANIFEST_TYPES,
        None,
        None,
    )?;
    let what = reply.what.clone();
    let (media_type, sent_digest, bytes) = read_manifest_response(reply)?;
    let digest = Digest::of_bytes(&bytes);
    for expected in [
        Some(reference.to_string()).filter(|r| r.starts_with("sha256:")),
        sent_digest,
    ]
    .into_iter()
    .flatten()
    {
        if expected != digest.to_string() {
            return Err(FetchError::Invalid(format!(
                "{what}: digest {digest} does not match {expected}"
            )));
        }
    }
    if SCHEMA1_TYPES.contains(&media_type.as_str()) && looks_like_schema1(&bytes) {
        return Err(FetchError::Invalid(format!(
            "{}/{}:{reference} is a Docker schema 1 manifest, which berth does not support (push it again with a current client)",
            reg.host(),
            reg.repository
        )));
    }
    let media_type = if media_type.is_empty() || media_type == "application/json" {
        body_media_type(&bytes)
    } else {
        media_type
    };
    Ok(FetchedManifest {
        digest,
        media_type,
        bytes,
    })
}

/// The media type the registry sent (parameters dropped), its
/// Docker-Content-Digest if any, and the body, read within the request's
/// deadline and refused past MAX_MANIFEST_BYTES (at once when the
/// Content-Length says so).
fn read_manifest_response(reply: Reply) -> Result<(String, Option<String>, Vec<u8>), FetchError> {
    let Reply {
        response,
        deadline,
        what,
    } = reply;
    let header = |n: &str| {
        response
            .headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let sent_digest = header("docker-content-digest");
    let length = header("content-length").and_then(|l| l.trim().parse::<u64>().ok());
    let too_large = |sent: String| {
        FetchError::Invalid(format!(
            "{what}: {sent}more than the {MAX_MANIFEST_BYTES} bytes a manifest may have"
        ))
    };
    if let Some(n) = length.filter(|n| *n > MAX_MANIFEST_BYTES) {
        return Err(too_large(format!("Content-Length {n}, ")));
    }
    let mut bytes = Vec::with_capacity(length.unwrap_or(0) as usize);
    deadline
        .read(response.into_body().into_reader(), None)
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FetchError::body(&what, e))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(String::new()));
    }
    Ok((media_type, sent_digest, bytes))
}

fn looks_like_schema1(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| v["schemaVersion"] == 1)
}

/// OCI documents may omit mediaType in the body; sniff what they are.
fn body_media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(mt) = v["mediaType"].as_str() {
        return mt.to_string();
    }
    if v.get("manifests").is_some() {
        oci::MT_OCI_INDEX
    } else {
        oci::MT_OCI_MANIFEST
    }
    .to_string()
}

/// Whether an index entry fits `want`: os and architecture equal; the
/// variant equal when both name one (arm64's implied variant is v8).
pub fn platform_matches(have: &Platform, want: &Platform) -> bool {
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        (_, v) => v.map(str::to_string),
    };
    have.os == want.os
        && have.architecture == want.architecture
        && match (norm(have), norm(want)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// Parses "os/arch[/variant]".
pub fn parse_platform(s: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(variant.to_string()),
        }),
        _ => Err(format!("platform {s:?} is not os/arch[/variant]")),
    }
}

/// The image manifest for `want`: the manifest itself, or the first
/// matching entry of an index (attestations skipped).
pub fn resolve_image_manifest(
    reg: &mut Registry,
    reference: &str,
    want: &Platform,
) -> Result<FetchedManifest, FetchError> {
    let top = fetch_manifest(reg, reference)?;
    if top.media_type != oci::MT_OCI_INDEX && top.media_type != oci::MT_DOCKER_LIST {
        return Ok(top);
    }
    let index: Index = serde_json::from_slice(&top.bytes)
        .map_err(|e| FetchError::Invalid(format!("index {}: {e}", top.digest)))?;
    let candidates: Vec<_> = index
        .manifests
        .iter()
        .filter(|d| {
            d.annotations
                .get("vnd.docker.reference.type")
                .is_none_or(|t| t != "attestation-manifest")
        })
        .collect();
    let chosen = candidates.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| platform_matches(p, want))
    });
    match chosen {
        Some(d) => fetch_manifest(reg, &d.digest.to_string()),
        None => {
            let available: Vec<String> = candidates
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| {
                    format!(
                        "{}/{}{}",
                        p.os,
                        p.architecture,
                        p.variant
                            .as_ref()
                            .map(|v| format!("/{v}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let want_s = format!(
                "{}/{}{}",
                want.os,
                want.architecture,
                want.variant
                    .as_ref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default()
            );
            Err(FetchError::Invalid(format!(
                "no image for {want_s} in {reference}; it has: {}",
                available.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_match_with_arm64_v8_implied() {
        let p = |s| parse_platform(s).unwrap();
        assert!(platform_matches(&p("linux/arm64/v8"), &p("linux/arm64")));
        assert!(platform_matches(&p("linux/arm64"), &p("linux/arm64/v8")));
        assert!(!platform_matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
        assert!(platform_matches(&p("linux/amd64"), &p("linux/amd64")));
        assert!(!platform_matches(&p("linux/amd64"), &p("linux/arm64")));
        assert!(parse_platform("linux").is_err());
    }
}
