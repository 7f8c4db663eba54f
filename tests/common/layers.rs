//! Raw layer tarballs for hostile-input tests (the tar crate's builder
//! refuses the very names these tests need), and an OCI layout around them.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use sha2::{Digest as _, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tar stream built entry by entry, names written byte for byte.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

pub struct Entry<'a> {
    pub name: &'a [u8],
    pub kind: u8,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    /// Overrides the size field (to lie about it).
    pub declared_size: Option<u64>,
    pub dev: (u32, u32),
}

impl Default for Entry<'_> {
    fn default() -> Self {
        Entry {
            name: b"",
            kind: b'0',
            data: b"",
            link: b"",
            mode: 0o644,
            uid: 0,
            declared_size: None,
            dev: (0, 0),
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}\0", value, width = field.len() - 1);
    field.copy_from_slice(&s.as_bytes()[s.len() - field.len()..]);
}

impl RawTar {
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.add(&Entry {
            name: name.as_bytes(),
            data,
            ..Entry::default()
        })
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.add(&Entry {
            name: name.as_bytes(),
            kind: b'5',
            mode: 0o755,
            ..Entry::default()
        })
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(&Entry {
            name: name.as_bytes(),
            kind: b'2',
            link: target.as_bytes(),
            mode: 0o777,
            ..Entry::default()
        })
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(&Entry {
            name: name.as_bytes(),
            kind: b'1',
            link: target.as_bytes(),
            ..Entry::default()
        })
    }

    pub fn add(&mut self, e: &Entry<'_>) -> &mut Self {
        let mut h = [0u8; 512];
        let n = e.name.len().min(100);
        h[..n].copy_from_slice(&e.name[..n]);
        octal(&mut h[100..108], u64::from(e.mode));
        octal(&mut h[108..116], u64::from(e.uid));
        octal(&mut h[116..124], 0);
        octal(
            &mut h[124..136],
            e.declared_size.unwrap_or(e.data.len() as u64),
        );
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = e.kind;
        let l = e.link.len().min(100);
        h[157..157 + l].copy_from_slice(&e.link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], u64::from(e.dev.0));
        octal(&mut h[337..345], u64::from(e.dev.1));
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A PAX extended header applying `records` to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.add(&Entry {
            name: b"PaxHeader",
            kind: b'x',
            data: &body,
            ..Entry::default()
        })
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One layer as it goes into a layout: the blob as stored, and the
/// diff_id the config claims for it.
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: String,
    pub media_type: &'static str,
}

impl Layer {
    pub fn tar(uncompressed: Vec<u8>) -> Layer {
        Layer {
            diff_id: sha256_hex(&uncompressed),
            blob: uncompressed,
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
    pub fn gzip(uncompressed: &[u8]) -> Layer {
        Layer {
            diff_id: sha256_hex(uncompressed),
            blob: gzip(uncompressed),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Result<String> {
    let hex = sha256_hex(bytes);
    fs::write(dir.join("blobs/sha256").join(&hex), bytes)?;
    Ok(hex)
}

/// Writes an OCI layout named `reference` with these layers (base first).
/// `declared_digest` replaces a layer's digest in the manifest (to lie).
pub fn write_layout(
    dir: &Path,
    reference: &str,
    layers: &[Layer],
    declared_digest: Option<(usize, String)>,
) -> Result<()> {
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    let mut descs = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let mut hex = put_blob(dir, &l.blob)?;
        if let Some((idx, d)) = &declared_digest
            && *idx == i
        {
            // The bytes sit under the declared name, as a tampered blob would.
            fs::rename(
                dir.join("blobs/sha256").join(&hex),
                dir.join("blobs/sha256").join(d),
            )?;
            hex = d.clone();
        }
        descs.push(serde_json::json!({"mediaType": l.media_type, "digest": format!("sha256:{hex}"), "size": l.blob.len()}));
    }
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", l.diff_id))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))?;
    let config_hex = put_blob(dir, &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": descs
    }))?;
    let manifest_hex = put_blob(dir, &manifest)?;
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{manifest_hex}"), "size": manifest.len(),
        "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": "latest"}
    }]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}
