//! The image's file tree and its bytes: berth as /init, the config at
//! /etc/berth (with the modules' berth.json), the CA bundle, the modules,
//! the preloaded store at /var/lib/berth, the few empty directories
//! berth mounts on, and /etc/resolv.conf as a link into /run; then the
//! cpio archive, compressed, written beside the output and renamed over
//! it once complete.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::cpio::{Entry, Kind, Source, Tree};
use super::options::Compress;

/// A CA bundle is a few hundred KiB; this is far more.
const MAX_CA_BYTES: u64 = 16 << 20;

/// What goes in, besides what the tree reads itself.
pub struct Parts<'a> {
    pub berth: &'a Path,
    pub config: &'a Path,
    pub settings: Vec<u8>,
    pub ca_bundle: Option<&'a Path>,
    pub store: Option<&'a Path>,
}

pub fn assemble(parts: Parts<'_>, tree: &mut Tree) -> Result<(), String> {
    let t = tree.mtime;
    let dir = |perm| Entry::new(Kind::Dir, perm, t);
    for d in [
        "dev",
        "etc",
        "lib/modules",
        "proc",
        "run",
        "sys",
        "var/lib/berth",
    ] {
        tree.add(d, dir(0o755));
    }
    tree.add("tmp", dir(0o1777));
    tree.add("root", dir(0o700));
    // host_network writes resolv.conf through this link, onto /run's
    // tmpfs: a disk image's root is read-only.
    tree.add(
        "etc/resolv.conf",
        Entry::new(Kind::Symlink(b"../run/resolv.conf".to_vec()), 0o777, t),
    );
    let berth_len = std::fs::metadata(parts.berth)
        .map_err(|e| format!("{}: {e}", parts.berth.display()))?
        .len();
    let berth = Source::Host(parts.berth.to_path_buf(), berth_len);
    tree.add("init", Entry::new(Kind::File(berth), 0o755, t));
    tree.add_host_dir(parts.config, "etc/berth", false)
        .map_err(|e| format!("--config {}: {e}", parts.config.display()))?;
    let settings = Source::Bytes(parts.settings);
    tree.add(
        "etc/berth/berth.json",
        Entry::new(Kind::File(settings), 0o644, t),
    );
    if let Some(ca) = parts.ca_bundle {
        let pem = Source::Bytes(read_ca_bundle(ca)?);
        tree.add(
            "etc/ssl/certs/ca-certificates.crt",
            Entry::new(Kind::File(pem), 0o644, t),
        );
    }
    if let Some(store) = parts.store {
        // A staging area left empty by the imports is not content.
        let _ = std::fs::remove_dir(store.join("tmp"));
        tree.add_host_dir(store, "var/lib/berth", true)
            .map_err(|e| format!("the image's store: {e}"))?;
        tree.add("var/lib/berth", Entry::new(Kind::Dir, 0o755, t));
    }
    Ok(())
}

/// The bundle, checked to hold PEM certificates and bounded.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let at = |e: &dyn std::fmt::Display| format!("--ca-bundle {}: {e}", path.display());
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_CA_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| at(&e))?;
    if bytes.len() as u64 > MAX_CA_BYTES {
        return Err(at(&format!("larger than {MAX_CA_BYTES} bytes")));
    }
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(at(&"holds no PEM certificate"));
    }
    Ok(bytes)
}

/// The sizes of what was written.
#[derive(Debug)]
pub struct Written {
    pub archive_bytes: u64,
    pub file_bytes: u64,
}

/// Writes the tree to `out` (through a temporary file beside it).
pub fn write(tree: &Tree, compress: Compress, out: &Path) -> Result<Written, String> {
    let tmp = temp_beside(out);
    let result = write_to(tree, compress, &tmp);
    let written = match result {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: {e}", out.display()));
        }
    };
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(written)
}

/// A temporary file beside `out`, renamed over it once complete.
pub(super) fn temp_beside(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(
        ".{}.part-{}",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

fn write_to(tree: &Tree, compress: Compress, tmp: &Path) -> std::io::Result<Written> {
    let file = BufWriter::new(File::create(tmp)?);
    let archive_bytes = match compress {
        Compress::None => finish(tree, file, Ok)?,
        Compress::Gzip => {
            let gz = flate2::GzBuilder::new()
                .mtime(0)
                .write(file, flate2::Compression::best());
            finish(tree, gz, |w| w.finish())?
        }
        Compress::Zstd(level) => {
            let mut z = zstd::stream::Encoder::new(file, level)?;
            // The kernel's unpacker checks the frame checksum when there is one.
            z.include_checksum(true)?;
            finish(tree, z, |w| w.finish())?
        }
    };
    let file_bytes = std::fs::metadata(tmp)?.len();
    Ok(Written {
        archive_bytes,
        file_bytes,
    })
}

/// Writes the archive into `w`, ends the compression, syncs the file.
fn finish<W: Write>(
    tree: &Tree,
    mut w: W,
    end: impl FnOnce(W) -> std::io::Result<BufWriter<File>>,
) -> std::io::Result<u64> {
    let n = tree.write_newc(&mut w)?;
    let file = end(w)?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(n)
}
