//! First-boot configuration (docs/pid1.md, "First-boot configuration"):
//! the kernel command line's `berth.config=` names where a config comes
//! from — a config drive (a filesystem label, or a block device, holding a
//! `berth/` directory) or an HTTP(S) URL serving a tarball of one — and a
//! small record beside the generations remembers the digest of the last
//! one applied, so the same content is applied once and an operator's
//! later `berth apply` wins over the same unchanged drive. Parsing is
//! pure; only the record touches the disk.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{area, sync_dir};

/// The kernel command line's word that names the source.
pub const CMDLINE_KEY: &str = "berth.config=";
/// More than any kernel accepts (COMMAND_LINE_SIZE is 2048 on x86, 4096
/// on arm64): anything longer is not a command line.
pub const MAX_CMDLINE_BYTES: usize = 64 << 10;
/// The longest value taken (a URL with its query).
pub const MAX_VALUE_BYTES: usize = 2048;
/// An ISO 9660 volume identifier is 32 bytes, a FAT label 11.
pub const MAX_LABEL_BYTES: usize = 32;
/// A /dev path, as a file name may be at most this long.
const MAX_DEVICE_BYTES: usize = 255;
/// The record of the last first-boot config applied.
const RECORD: &str = "first-boot.json";
const RECORD_TMP: &str = ".first-boot.json.tmp";
/// The record is a line of JSON; more is not one berth wrote.
const MAX_RECORD_BYTES: u64 = 4096;

/// Where a first-boot config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A vfat or iso9660 filesystem with this label (`LABEL=CIDATA`),
    /// compared without regard to ASCII case.
    Label(String),
    /// A block device node (`/dev/vdb`, `/dev/nvme0n1p1`).
    Device(PathBuf),
    /// An `http://` or `https://` URL answering with a tarball (plain or
    /// gzip) of a config directory.
    Url(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Label(l) => write!(f, "LABEL={l}"),
            Source::Device(d) => write!(f, "{}", d.display()),
            Source::Url(u) => write!(f, "{}", redact(u)),
        }
    }
}

/// A URL for the console and the journal: without its query and user
/// info, which may carry a token.
pub fn redact(url: &str) -> String {
    let cut = url.find(['?', '#']).map_or(url, |i| &url[..i]);
    let Some((scheme, rest)) = cut.split_once("://") else {
        return cut.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{}", &rest[host_end..]),
        None => cut.to_string(),
    }
}

/// The source `berth.config=` names on a kernel command line (the last
/// such word wins, as the kernel's own parameters do); None when there is
/// none. A value that is not one of the three forms is an error, reported
/// on the console, never guessed at.
pub fn from_cmdline(text: &str) -> Result<Option<Source>, String> {
    if text.len() > MAX_CMDLINE_BYTES {
        return Err(format!(
            "the kernel command line is longer than {MAX_CMDLINE_BYTES} bytes"
        ));
    }
    let value = text
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(CMDLINE_KEY))
        .next_back();
    value.map(parse_source).transpose()
}

/// Whether `value` starts with `http://` or `https://`, in any case.
fn is_http_url(value: &str) -> bool {
    let head = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    head.starts_with("http://") || head.starts_with("https://")
}

/// `LABEL=NAME`, `/dev/NAME` or an `http(s)://` URL.
pub fn parse_source(value: &str) -> Result<Source, String> {
    let value = value.trim_matches('"');
    let shown: String = value.chars().take(80).collect();
    // Redacted before it is cut: a cut could drop the `@` that ends the
    // user info and show the password.
    let shown_url: String = redact(value).chars().take(80).collect();
    if value.len() > MAX_VALUE_BYTES {
        let shown = match is_http_url(value) {
            true => &shown_url,
            false => &shown,
        };
        return Err(format!(
            "{CMDLINE_KEY}{shown}…: longer than {MAX_VALUE_BYTES} bytes"
        ));
    }
    if let Some(label) = value.strip_prefix("LABEL=") {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_BYTES
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        return match ok {
            true => Ok(Source::Label(label.to_string())),
            false => Err(format!(
                "{CMDLINE_KEY}{shown}: a label is 1 to {MAX_LABEL_BYTES} letters, digits, `_`, `.` or `-`"
            )),
        };
    }
    if value.starts_with("/dev/") {
        let ok = value.len() <= MAX_DEVICE_BYTES
            && !value.split('/').any(|part| part == "..")
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.:+-".contains(&b));
        return match ok {
            true => Ok(Source::Device(PathBuf::from(value))),
            false => Err(format!(
                "{CMDLINE_KEY}{shown}: not a plain device path under /dev"
            )),
        };
    }
    if is_http_url(value) {
        let ok = value.len() > "http://".len() && value.bytes().all(|b| b.is_ascii_graphic());
        return match ok {
            true => Ok(Source::Url(value.to_string())),
            false => Err(format!(
                "{CMDLINE_KEY}{shown_url}: a URL of printable ASCII is expected"
            )),
        };
    }
    Err(format!(
        "{CMDLINE_KEY}{shown_url}: neither LABEL=NAME, /dev/NAME nor an http:// or https:// URL"
    ))
}

/// The digest of the first-boot config applied last, when there is one.
pub fn recorded(store_root: &Path) -> Option<String> {
    let file = fs::File::open(area(store_root).join(RECORD)).ok()?;
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES).read_to_string(&mut text).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("digest")?.as_str().map(String::from)
}

/// Remembers `digest` (from `source`) as applied: a new file renamed over
/// the old one, fsynced, so a power cut leaves the old record or the new.
pub fn record(store_root: &Path, digest: &str, source: &str) -> Result<(), String> {
    let area = area(store_root);
    fs::create_dir_all(&area).map_err(|e| format!("create {}: {e}", area.display()))?;
    let tmp = area.join(RECORD_TMP);
    let text = serde_json::json!({"digest": digest, "source": source}).to_string();
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    written.map_err(|e| format!("write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, area.join(RECORD))
        .map_err(|e| format!("rename {} to {RECORD}: {e}", tmp.display()))?;
    sync_dir(&area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_the_last_word_wins() {
        let line = "console=ttyS0 berth.config=/dev/vdb quiet berth.config=LABEL=CIDATA\n";
        assert_eq!(
            from_cmdline(line).unwrap(),
            Some(Source::Label("CIDATA".into()))
        );
        assert_eq!(from_cmdline("console=ttyS0 quiet").unwrap(), None);
        assert_eq!(
            parse_source("/dev/nvme0n1p1").unwrap(),
            Source::Device("/dev/nvme0n1p1".into())
        );
        assert_eq!(
            parse_source("http://10.0.2.100/config.tar").unwrap(),
            Source::Url("http://10.0.2.100/config.tar".into())
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for bad in [
            "",
            "LABEL=",
            "LABEL=a b",
            "LABEL=with/slash",
            "LABEL=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "/dev/../etc/passwd",
            "/dev/vd$b",
            "/etc/berth",
            "ftp://host/x",
            "http://",
            "http://host/a\u{7f}b",
        ] {
            let e = parse_source(bad).unwrap_err();
            assert!(e.starts_with(CMDLINE_KEY), "{bad:?}: {e}");
        }
        let long = format!("berth.config=http://h/{}", "a".repeat(MAX_VALUE_BYTES));
        assert!(from_cmdline(&long).unwrap_err().contains("longer than"));
        let long = format!("HTTPS://u:hunter2@h/{}", "a".repeat(MAX_VALUE_BYTES));
        let e = parse_source(&long).unwrap_err();
        assert!(e.contains("longer than") && !e.contains("hunter2"), "{e}");
        let huge = "x".repeat(MAX_CMDLINE_BYTES + 1);
        assert!(from_cmdline(&huge).is_err());
    }

    #[test]
    fn a_url_is_shown_without_its_secrets() {
        assert_eq!(
            redact("https://user:pw@meta.example/cfg.tgz?token=abc"),
            "https://meta.example/cfg.tgz"
        );
        assert_eq!(
            Source::Url("http://h/x#frag".into()).to_string(),
            "http://h/x"
        );
        // The error cuts the value at 80 characters: the user info must go
        // before the cut, or a long one would show its password.
        let long_user = format!("https://{}:hunter2@h/a\u{7f}", "u".repeat(70));
        let e = parse_source(&long_user).unwrap_err();
        assert!(!e.contains("hunter2") && !e.contains("uuu"), "{e}");
    }

    #[test]
    fn the_record_round_trips_and_survives_a_reset() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(recorded(root.path()), None);
        record(root.path(), "sha256:aa", "LABEL=X").unwrap();
        record(root.path(), "sha256:bb", "LABEL=X").unwrap();
        assert_eq!(recorded(root.path()).as_deref(), Some("sha256:bb"));
        super::super::reset(root.path()).unwrap();
        super::super::clean_leftovers(root.path());
        assert_eq!(recorded(root.path()).as_deref(), Some("sha256:bb"));
    }
}
