//! The kernel modules an image needs, and nothing else: overlay (every
//! container's root), those berth.json's `modules` names, softdog when a
//! watchdog is configured without a driver of its own, and those the
//! target's hardware needs (`--add-module`), each with its dependencies
//! and softdeps in load order. They land under /lib/modules/RELEASE/ as
//! uncompressed `.ko` files (berth loads them with finit_module), and the
//! image's berth.json lists them in that order.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::arch::{Arch, elf_info};
use super::cpio::{Entry, Kind, Source, Tree};
use super::moddep::{ModuleIndex, module_name};
use crate::supervisor::spec::settings::Settings;

/// Larger than any module (Debian's largest, uncompressed: about 12 MiB).
const MAX_MODULE_BYTES: u64 = 128 << 20;

/// The modules to load, in order, and what to say about them.
#[derive(Debug, Default)]
pub struct ModulePlan {
    /// (path in the image, without the leading `/`; host file).
    pub files: Vec<(String, PathBuf)>,
    pub notes: Vec<String>,
}

impl ModulePlan {
    /// The paths berth.json's `modules` gets, in load order.
    pub fn load_list(&self) -> Vec<String> {
        self.files.iter().map(|(p, _)| format!("/{p}")).collect()
    }
}

/// What a config drive (docs/pid1.md, `berth.config=`) needs: vfat with
/// the code page and character set it mounts with by default (Debian:
/// `FAT_DEFAULT_CODEPAGE=437`, `FAT_DEFAULT_IOCHARSET="ascii"`; the kernel
/// cannot load them on demand, there is no modprobe), and iso9660.
pub const CONFIG_DRIVE_MODULES: [&str; 4] = ["vfat", "nls_cp437", "nls_ascii", "isofs"];

/// The module names the config needs, in the order they should come.
pub fn wanted(settings: &Settings, added: &[String], index: &ModuleIndex) -> Vec<String> {
    let mut names = vec!["overlay".to_string()];
    for m in &settings.modules {
        names.extend(m.to_str().and_then(module_name));
    }
    let added: Vec<String> = added.iter().map(|a| a.replace('-', "_")).collect();
    let has_driver = names.iter().chain(&added).any(|n| {
        n != "watchdog"
            && index
                .module(n)
                .is_some_and(|m| m.path.contains("/drivers/watchdog/"))
    });
    if settings.watchdog.is_some() && !has_driver {
        names.push("softdog".into());
    }
    names.extend(added);
    names
}

/// Resolves `names` in the module tree `dir`; the files land under
/// /lib/modules/`release`/.
pub fn plan_with(
    index: &ModuleIndex,
    dir: &Path,
    release: &str,
    names: &[String],
) -> Result<ModulePlan, String> {
    let order = index
        .resolve(names)
        .map_err(|e| format!("kernel modules in {}: {e}", dir.display()))?;
    let mut plan = ModulePlan::default();
    for name in &order.modules {
        let Some(module) = index.module(name) else {
            continue;
        };
        let rel = ["xz", "zst", "gz"]
            .iter()
            .find_map(|s| module.path.strip_suffix(&format!(".{s}")))
            .unwrap_or(&module.path);
        plan.files.push((
            format!("lib/modules/{release}/{rel}"),
            dir.join(&module.path),
        ));
    }
    if !order.builtin.is_empty() {
        plan.notes.push(format!(
            "built into the kernel: {}",
            order.builtin.join(", ")
        ));
    }
    plan.notes.extend(order.skipped);
    Ok(plan)
}

/// Reads a module, uncompressed, bounded.
pub fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| at(&e))?;
    let mut raw = Vec::new();
    file.take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| at(&e))?;
    let name = path.to_string_lossy();
    let mut out = Limited(Vec::new());
    if name.ends_with(".xz") {
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out).map_err(|e| at(&e))?;
    } else if name.ends_with(".zst") {
        zstd::stream::copy_decode(raw.as_slice(), &mut out).map_err(|e| at(&e))?;
    } else if name.ends_with(".gz") {
        std::io::copy(&mut flate2::read::GzDecoder::new(raw.as_slice()), &mut out)
            .map_err(|e| at(&e))?;
    } else {
        out.write_all(&raw).map_err(|e| at(&e))?;
    }
    Ok(out.0)
}

/// A buffer that refuses to grow past MAX_MODULE_BYTES (a small file that
/// decompresses to gigabytes).
struct Limited(Vec<u8>);

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() as u64 + buf.len() as u64 > MAX_MODULE_BYTES {
            return Err(std::io::Error::other(format!(
                "larger than {MAX_MODULE_BYTES} bytes uncompressed"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Puts the planned modules in `tree`, each checked to be an ELF object
/// for `arch`.
pub fn install(plan: &ModulePlan, arch: &Arch, tree: &mut Tree) -> Result<(), String> {
    for (at, host) in &plan.files {
        let bytes = read_module(host)?;
        let machine = elf_info(&bytes).map(|e| e.arch);
        if machine.as_ref() != Some(arch) {
            return Err(format!(
                "kernel module {} is {} but the kernel is for {arch}",
                host.display(),
                machine.map_or("not an ELF object".into(), |m| format!("for {m}"))
            ));
        }
        let mtime = tree.mtime;
        tree.add(
            at,
            Entry::new(Kind::File(Source::Bytes(bytes)), 0o644, mtime),
        );
    }
    Ok(())
}

/// The config's berth.json text (or `{}`) with `modules` set to `list`.
pub fn settings_with_modules(config: &Path, list: &[String]) -> Result<Vec<u8>, String> {
    let path = config.join("berth.json");
    let mut value: serde_json::Value = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let Some(object) = value.as_object_mut() else {
        return Err(format!("{}: not a JSON object", path.display()));
    };
    object.insert("modules".into(), serde_json::json!(list));
    let mut text = serde_json::to_vec_pretty(&value).map_err(|e| e.to_string())?;
    text.push(b'\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_modules_land_uncompressed_under_the_release() {
        let d = tempfile::tempdir().unwrap();
        let index = ModuleIndex::parse(
            "kernel/fs/overlayfs/overlay.ko.zst:\nkernel/drivers/watchdog/softdog.ko.xz: kernel/drivers/watchdog/watchdog.ko\nkernel/drivers/watchdog/watchdog.ko:\n",
            "",
            "",
            "",
        )
        .unwrap();
        let settings: Settings =
            serde_json::from_str(r#"{"watchdog": {"device": "/dev/watchdog"}}"#).unwrap();
        let names = wanted(&settings, &[], &index);
        assert_eq!(names, ["overlay", "softdog"]);
        let plan = plan_with(&index, d.path(), "6.1.0-x", &names).unwrap();
        assert_eq!(
            plan.load_list(),
            [
                "/lib/modules/6.1.0-x/kernel/fs/overlayfs/overlay.ko",
                "/lib/modules/6.1.0-x/kernel/drivers/watchdog/watchdog.ko",
                "/lib/modules/6.1.0-x/kernel/drivers/watchdog/softdog.ko"
            ]
        );
        let zst = d.path().join("m.ko.zst");
        std::fs::write(&zst, zstd::encode_all(&b"\x7fELF module"[..], 3).unwrap()).unwrap();
        assert_eq!(read_module(&zst).unwrap(), b"\x7fELF module");
        let xz = d.path().join("m.ko.xz");
        let mut packed = Vec::new();
        lzma_rs::xz_compress(&mut &b"\x7fELF module"[..], &mut packed).unwrap();
        std::fs::write(&xz, packed).unwrap();
        assert_eq!(read_module(&xz).unwrap(), b"\x7fELF module");
        let bomb = d.path().join("bomb.ko.zst");
        let zeros = vec![0u8; (MAX_MODULE_BYTES + 1) as usize];
        std::fs::write(&bomb, zstd::encode_all(zeros.as_slice(), 1).unwrap()).unwrap();
        assert!(read_module(&bomb).unwrap_err().contains("larger than"));
    }
}
