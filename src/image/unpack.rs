//! Applying one layer tarball to an empty directory in overlayfs form:
//! OCI whiteouts become 0/0 character devices, opaque markers are reported
//! for the trusted.overlay.opaque xattr. The uncompressed stream is hashed
//! and must equal the layer's diff_id; sizes and compression ratios are
//! bounded. All writes go through `extract::LayerWriter`.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::extract::{LayerWriter, Meta, allowed_xattr, safe_relative};
use super::inflate::{ChunkReader, Inflated, spawn_inflater};
use super::space::SpaceGuard;
use super::tree_digest::tree_digest_with;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Detects compression from the first bytes, as containerd does, rather
/// than trusting a media type.
pub fn detect_compression(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Bounds on what one layer may expand to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct UnpackLimits {
    /// Uncompressed bytes, in all.
    pub max_bytes: u64,
    /// Uncompressed / compressed, checked once `ratio_floor_bytes` have
    /// come out (small layers of zeros are fine; a bomb is not).
    pub max_ratio: u64,
    pub ratio_floor_bytes: u64,
    pub max_entries: u64,
    /// Bytes to leave free on the target's filesystem (0: no check).
    #[serde(default)]
    pub reserve_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 64 << 30,
            max_ratio: 100,
            ratio_floor_bytes: 64 << 20,
            max_entries: 1 << 22,
            reserve_bytes: 0,
        }
    }
}

/// What unpacking found that the caller must act on.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnpackReport {
    /// Directories to mark trusted.overlay.opaque (relative paths).
    pub opaque_dirs: Vec<PathBuf>,
    pub entries: u64,
    pub bytes: u64,
    /// Device nodes in the layer are not created: a container gets its
    /// own /dev, and a node in an image is a way to reach host hardware.
    pub skipped_devices: u64,
    /// tree_digest() of the result, computed by whoever unpacked it.
    #[serde(default)]
    pub tree: Option<Digest>,
}

/// Unpacks `blob` into the empty directory `target` and checks the
/// uncompressed digest against `diff_id`.
pub fn unpack_layer(
    blob: &Path,
    target: &Path,
    diff_id: &Digest,
    what: &str,
    limits: UnpackLimits,
) -> Result<UnpackReport, ImageError> {
    let file = File::open(blob).map_err(ImageError::io("open layer blob", blob))?;
    unpack_stream(file, target, diff_id, what, limits)
}

/// Unpacks the compressed layer read from `input` into the empty
/// directory `target`: one thread inflates and hashes, this one writes
/// (and hashes the files it writes, for the tree digest). The layer is
/// good only if the uncompressed stream's digest is `diff_id`.
pub fn unpack_stream(
    input: impl Read + Send + 'static,
    target: &Path,
    diff_id: &Digest,
    what: &str,
    limits: UnpackLimits,
) -> Result<UnpackReport, ImageError> {
    let mut writer =
        LayerWriter::open(target).map_err(|e| ImageError::invalid(what, e.to_string()))?;
    let (mut reader, inflater) =
        spawn_inflater(input, limits).map_err(ImageError::io("start inflating", target))?;
    let mut report = UnpackReport::default();
    let extracted = extract_entries(&mut reader, &mut writer, &mut report, what, limits);
    if extracted.is_ok() {
        reader.drain();
    }
    drop(reader);
    let inflated = join_inflater(inflater, what);
    // A stream that broke explains a truncated archive better than tar does.
    let inflated = match (extracted, inflated) {
        (_, Err(e)) if !e.to_string().contains(READER_GONE) => return Err(e),
        (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
        (Ok(()), Ok(done)) => done,
    };
    check_diff_id(&inflated, diff_id, what)?;
    report.bytes = inflated.bytes;
    report.opaque_dirs = std::mem::take(&mut writer.opaque_dirs);
    report.tree = Some(
        tree_digest_with(target, &writer.file_hashes)
            .map_err(ImageError::io("hash unpacked layer", target))?,
    );
    Ok(report)
}

fn extract_entries(
    reader: &mut ChunkReader,
    writer: &mut LayerWriter,
    report: &mut UnpackReport,
    what: &str,
    limits: UnpackLimits,
) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| bad_tar(what, e))?;
    let mut space = SpaceGuard::new(limits.reserve_bytes);
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_tar(what, e))?;
        space
            .before_write(writer.root_fd(), entry.size())
            .map_err(|e| ImageError::invalid(what, e))?;
        report.entries += 1;
        if report.entries > limits.max_entries {
            return Err(ImageError::invalid(
                what,
                format!("more than {} entries", limits.max_entries),
            ));
        }
        apply_entry(writer, &mut entry, report).map_err(|e| ImageError::invalid(what, e))?;
    }
    writer
        .finish()
        .map_err(|e| ImageError::invalid(what, e.to_string()))
}

/// Checks that the compressed layer read from `input` decompresses to
/// `diff_id` without unpacking it, for a layer the store already holds.
pub fn verify_stream(
    input: impl Read + Send + 'static,
    diff_id: &Digest,
    what: &str,
    limits: UnpackLimits,
) -> Result<(), ImageError> {
    let (mut reader, inflater) = spawn_inflater(input, limits)
        .map_err(|e| ImageError::invalid(what, format!("start inflating: {e}")))?;
    reader.drain();
    drop(reader);
    check_diff_id(&join_inflater(inflater, what)?, diff_id, what)
}

/// What `inflate` says when its reader stopped early (the reader's own
/// error is the one to report then).
pub(super) const READER_GONE: &str = "layer reader went away";

fn join_inflater(
    handle: std::thread::JoinHandle<io::Result<Inflated>>,
    what: &str,
) -> Result<Inflated, ImageError> {
    handle
        .join()
        .map_err(|_| ImageError::invalid(what, "the inflating thread panicked"))?
        .map_err(|e| bad_tar(what, e))
}

fn check_diff_id(inflated: &Inflated, diff_id: &Digest, what: &str) -> Result<(), ImageError> {
    if &inflated.diff_id != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("{what} (uncompressed)"),
            expected: diff_id.to_string(),
            actual: inflated.diff_id.to_string(),
        });
    }
    Ok(())
}

fn bad_tar(what: &str, e: io::Error) -> ImageError {
    ImageError::invalid(what, format!("corrupt layer: {e}"))
}

fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, String> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode().map_err(|e| e.to_string())?,
        uid: u32::try_from(h.uid().map_err(|e| e.to_string())?).map_err(|_| "uid out of range")?,
        gid: u32::try_from(h.gid().map_err(|e| e.to_string())?).map_err(|_| "gid out of range")?,
        mtime: i64::try_from(h.mtime().map_err(|e| e.to_string())?).unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(|e| e.to_string())? {
        for ext in pax {
            let ext = ext.map_err(|e| e.to_string())?;
            let key = ext.key_bytes();
            let number = || {
                std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
            };
            match key {
                b"uid" => {
                    meta.uid = number()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or("bad PAX uid")?
                }
                b"gid" => {
                    meta.gid = number()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or("bad PAX gid")?
                }
                b"mtime" => {
                    meta.mtime = number()
                        .and_then(|n| i64::try_from(n).ok())
                        .unwrap_or(meta.mtime)
                }
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        let name = std::ffi::OsStr::from_bytes(name);
                        if allowed_xattr(name) {
                            meta.xattrs
                                .push((name.to_os_string(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn apply_entry<R: Read>(
    w: &mut LayerWriter,
    entry: &mut tar::Entry<'_, R>,
    report: &mut UnpackReport,
) -> Result<(), String> {
    let raw = entry
        .path()
        .map_err(|e| format!("invalid path: {e}"))?
        .into_owned();
    let rel = safe_relative(&raw)
        .ok_or_else(|| format!("entry {} escapes the layer ('..')", raw.display()))?;
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(done) = apply_whiteout(w, &raw, &rel, &name) {
        return done;
    }
    let meta = entry_meta(entry)?;
    create_entry(w, entry, &raw, &rel, &meta, report)
}

/// Handles an entry whose name makes it a whiteout or an opaque marker;
/// None when it is ordinary content.
fn apply_whiteout(
    w: &mut LayerWriter,
    raw: &Path,
    rel: &Path,
    name: &str,
) -> Option<Result<(), String>> {
    if name == OPAQUE_MARKER {
        return Some(
            w.mark_opaque(rel.parent().unwrap_or(Path::new("")))
                .map_err(|e| e.to_string()),
        );
    }
    let hidden = name.strip_prefix(WHITEOUT_PREFIX)?;
    if hidden.starts_with(WHITEOUT_PREFIX) {
        return Some(Ok(())); // AUFS metadata such as .wh..wh.plnk: not content
    }
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        return Some(Err(format!("invalid whiteout {}", raw.display())));
    }
    Some(
        w.whiteout(&rel.with_file_name(hidden))
            .map_err(|e| e.to_string()),
    )
}

/// Creates what an ordinary entry describes, by its tar type.
fn create_entry<R: Read>(
    w: &mut LayerWriter,
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    rel: &Path,
    meta: &Meta,
    report: &mut UnpackReport,
) -> Result<(), String> {
    let kind = entry.header().entry_type();
    let link = || -> Result<PathBuf, String> {
        entry
            .link_name()
            .map_err(|e| e.to_string())?
            .map(|l| l.into_owned())
            .ok_or_else(|| format!("{}: link without a target", raw.display()))
    };
    let result = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let size = entry.size();
            w.write_file(rel, meta, entry, size)
        }
        tar::EntryType::Directory => w.make_dir(rel, meta),
        tar::EntryType::Symlink => {
            let target = link()?;
            w.make_symlink(rel, &target, meta)
        }
        tar::EntryType::Link => {
            let target = link()?;
            w.make_hardlink(rel, &target)
        }
        tar::EntryType::Fifo => w.make_node(rel, SFlag::S_IFIFO, 0, 0, meta),
        tar::EntryType::Char | tar::EntryType::Block => {
            let h = entry.header();
            let (major, minor) = (
                h.device_major().ok().flatten(),
                h.device_minor().ok().flatten(),
            );
            if kind == tar::EntryType::Char && major == Some(0) && minor == Some(0) {
                w.whiteout(rel) // already in overlay form
            } else {
                report.skipped_devices += 1;
                Ok(())
            }
        }
        _ => Ok(()), // volume labels and other metadata-only entries
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"usr/"), Compression::None);
    }

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(
            safe_relative(Path::new("./a/b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(safe_relative(Path::new("a/../b")), None);
        assert_eq!(
            safe_relative(Path::new("/etc/passwd")),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(safe_relative(Path::new(".")), Some(PathBuf::new()));
    }

    #[test]
    fn only_user_and_capability_xattrs_pass() {
        assert!(allowed_xattr(std::ffi::OsStr::new("user.x")));
        assert!(allowed_xattr(std::ffi::OsStr::new("security.capability")));
        assert!(!allowed_xattr(std::ffi::OsStr::new(
            "trusted.overlay.redirect"
        )));
        assert!(!allowed_xattr(std::ffi::OsStr::new("security.selinux")));
    }
}
