//! `berth mkimage`'s command line, checked before anything is built.

use std::path::PathBuf;

use crate::cli::args::Args;
use crate::cli::commands::MKIMAGE;
use crate::image::store::DEFAULT_ROOT;

pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// zstd's level when none is given: what the kernel's own build uses for
/// an initramfs.
pub const DEFAULT_ZSTD_LEVEL: i32 = 19;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    Zstd(i32),
    Gzip,
    None,
}

impl Compress {
    pub fn parse(text: &str) -> Result<Compress, String> {
        match text {
            "zstd" => Ok(Compress::Zstd(DEFAULT_ZSTD_LEVEL)),
            "gzip" => Ok(Compress::Gzip),
            "none" => Ok(Compress::None),
            _ => match text.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(level)) if (1..=19).contains(&level) => Ok(Compress::Zstd(level)),
                _ => Err(format!(
                    "--compress: {text:?} is none of zstd, zstd:LEVEL (1-19), gzip, none"
                )),
            },
        }
    }

    /// The kernel option that lets it unpack this, if any is needed.
    pub fn kernel_option(self) -> Option<&'static str> {
        match self {
            Compress::Zstd(_) => Some("CONFIG_RD_ZSTD"),
            Compress::Gzip => Some("CONFIG_RD_GZIP"),
            Compress::None => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            Compress::Zstd(l) => format!("zstd level {l}"),
            Compress::Gzip => "gzip".into(),
            Compress::None => "uncompressed".into(),
        }
    }
}

/// What `-o` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A compressed cpio archive for `-kernel/-initrd` (bootloader) boots.
    Initramfs,
    /// A raw GPT disk image: a read-only ext4 root and an ext4 data
    /// partition for the store (disk.rs).
    Disk,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    pub config: PathBuf,
    pub kernel: PathBuf,
    pub images: Vec<String>,
    pub modules: Option<PathBuf>,
    pub add_modules: Vec<String>,
    /// `--config-drive`: the filesystems a `berth.config=` drive may use.
    pub config_drive: bool,
    pub compress: Compress,
    pub ca_bundle: Option<PathBuf>,
    /// Whether the CA bundle was named (a missing default is only a warning).
    pub ca_named: bool,
    pub berth: Option<PathBuf>,
    pub root: PathBuf,
    pub output: PathBuf,
    /// mtime of every entry, and the clamp of every file's (SOURCE_DATE_EPOCH).
    pub epoch: u32,
}

pub const USAGE: &str = "berth mkimage --config DIR --kernel VMLINUZ [--image REF|PATH]... [--modules DIR] [--add-module NAME]... [--config-drive] [--format initramfs|disk] [--compress zstd|zstd:LEVEL|gzip|none] [--ca-bundle PEM|none] [--berth BIN] [--root DIR] -o OUT";

impl Options {
    pub fn parse(argv: &[String]) -> Result<Options, String> {
        let args = Args::parse(argv, MKIMAGE.options)?;
        args.expect_positional(0, USAGE)?;
        let required = |name: &str| {
            args.value(name)
                .map(PathBuf::from)
                .ok_or_else(|| format!("--{name} is required; usage: {USAGE}"))
        };
        let format = match args.value("format").unwrap_or("initramfs") {
            "initramfs" => Format::Initramfs,
            "disk" => Format::Disk,
            other => return Err(format!("--format: {other:?} is neither initramfs nor disk")),
        };
        if format == Format::Disk && args.value("compress").is_some() {
            return Err(
                "--compress is for --format initramfs: a disk image's ext4 partitions are not compressed (compress the image file itself to ship it)"
                    .into(),
            );
        }
        let ca = args.value("ca-bundle");
        Ok(Options {
            format,
            config: required("config")?,
            kernel: required("kernel")?,
            output: required("output")?,
            images: args.values("image").to_vec(),
            modules: args.value("modules").map(PathBuf::from),
            add_modules: args.values("add-module").to_vec(),
            config_drive: args.switch("config-drive"),
            compress: Compress::parse(args.value("compress").unwrap_or("zstd"))?,
            ca_bundle: match ca {
                Some("none") => None,
                Some(p) => Some(PathBuf::from(p)),
                None => Some(PathBuf::from(DEFAULT_CA_BUNDLE)),
            },
            ca_named: ca.is_some(),
            berth: args.value("berth").map(PathBuf::from),
            root: PathBuf::from(args.value("root").unwrap_or(DEFAULT_ROOT)),
            epoch: source_date_epoch()?,
        })
    }
}

/// SOURCE_DATE_EPOCH (reproducible-builds.org), or 0.
fn source_date_epoch() -> Result<u32, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(text) => text.trim().parse::<u32>().map_err(|_| {
            format!(
                "SOURCE_DATE_EPOCH: {text:?} is not a number of seconds that fits a cpio archive"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names() {
        assert_eq!(Compress::parse("zstd").unwrap(), Compress::Zstd(19));
        assert_eq!(Compress::parse("zstd:3").unwrap(), Compress::Zstd(3));
        assert_eq!(Compress::parse("none").unwrap(), Compress::None);
        for bad in ["zstd:0", "zstd:20", "xz", "zstd:"] {
            assert!(Compress::parse(bad).is_err(), "{bad}");
        }
    }
}
