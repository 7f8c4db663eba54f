//! What a tag points to now, as cheaply as the registry allows: a HEAD of
//! the manifest (its Docker-Content-Digest), and only when that differs
//! from what was seen last, a GET of the top document to find this
//! platform's manifest in an index. No layer, no config, no platform
//! manifest is fetched: an update check on an unchanged tag costs one
//! HEAD (docs/update.md).

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::manifest::{MANIFEST_TYPES, fetch_manifest, platform_matches};
use super::oci::{self, Index, Platform};
use super::registry::{FetchError, Registry};

/// The digests a tag resolved to: its top document (an index or a
/// manifest) and this platform's image manifest (the same for a
/// single-platform tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDigest {
    pub top: Digest,
    pub platform: Digest,
}

/// The result of one check, and whether the top document had to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub digest: TagDigest,
    pub fetched_top: bool,
}

/// Asks the registry what `tag` points to for `want`. `known` is the last
/// answer: when the HEAD names the same top document, its platform digest
/// stands without a GET, so a change for another architecture (a new
/// index) costs one GET of the index and a change of nothing costs a HEAD.
pub fn check_tag_digest(
    reg: &mut Registry,
    tag: &str,
    want: &Platform,
    known: Option<&TagDigest>,
) -> Result<Checked, FetchError> {
    let path = format!("manifests/{tag}");
    let reply = reg.head(&path, &MANIFEST_TYPES)?;
    let sent = reply
        .response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v.trim()).ok());
    if let (Some(top), Some(known)) = (&sent, known)
        && (*top == known.top || *top == known.platform)
    {
        let digest = TagDigest {
            top: top.clone(),
            platform: known.platform.clone(),
        };
        return Ok(Checked {
            digest,
            fetched_top: false,
        });
    }
    // Changed, never seen, or a registry that sends no digest on HEAD.
    let fetched = fetch_manifest(reg, tag)?;
    let platform =
        if fetched.media_type == oci::MT_OCI_INDEX || fetched.media_type == oci::MT_DOCKER_LIST {
            platform_entry(&fetched.bytes, &fetched.digest, want)?
        } else {
            fetched.digest.clone()
        };
    Ok(Checked {
        digest: TagDigest {
            top: fetched.digest,
            platform,
        },
        fetched_top: true,
    })
}

/// The digest of the index's manifest for `want` (attestations skipped).
fn platform_entry(bytes: &[u8], digest: &Digest, want: &Platform) -> Result<Digest, FetchError> {
    let index: Index = serde_json::from_slice(bytes)
        .map_err(|e| FetchError::Invalid(format!("index {digest}: {e}")))?;
    index
        .manifests
        .iter()
        .filter(|d| {
            d.annotations
                .get("vnd.docker.reference.type")
                .is_none_or(|t| t != "attestation-manifest")
        })
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform_matches(p, want))
        })
        .map(|d| d.digest.clone())
        .ok_or_else(|| {
            FetchError::Invalid(format!(
                "index {digest} has no image for {}/{}",
                want.os, want.architecture
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_entry_is_found_by_platform() {
        let amd = Digest::of_bytes(b"amd64");
        let arm = Digest::of_bytes(b"arm64");
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": oci::MT_OCI_MANIFEST, "digest": arm.to_string(), "size": 1,
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": oci::MT_OCI_MANIFEST, "digest": amd.to_string(), "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]});
        let bytes = serde_json::to_vec(&index).unwrap();
        let top = Digest::of_bytes(&bytes);
        let want = |arch: &str| Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        };
        assert_eq!(platform_entry(&bytes, &top, &want("amd64")).unwrap(), amd);
        assert_eq!(platform_entry(&bytes, &top, &want("arm64")).unwrap(), arm);
        assert!(platform_entry(&bytes, &top, &want("riscv64")).is_err());
    }
}
