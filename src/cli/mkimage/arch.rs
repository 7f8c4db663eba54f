//! What machine a file is for: an ELF binary's (berth, a kernel module)
//! machine and linking, a kernel image's architecture and version (x86
//! bzImage, arm64/riscv Image, PE/EFI stubs, gzip-wrapped Images), named
//! as OCI platforms name them, so berth, the kernel, its modules and the
//! preloaded images can be compared before an image is built.

use std::io::Read;
use std::path::Path;

/// Enough of a kernel image for its boot headers (x86's setup is at most
/// 64 sectors, the version string in it).
const KERNEL_HEAD_BYTES: u64 = 256 << 10;

/// An OCI architecture name (`amd64`, `arm64`, ...), or `ELF machine N`
/// for one berth has no name for (it then matches nothing).
pub type Arch = String;

/// What an ELF file's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub arch: Arch,
    /// The program interpreter (PT_INTERP), when dynamically linked.
    pub interpreter: Option<String>,
}

/// The OCI name of an ELF machine (e_machine, 64-bit class, little-endian).
pub fn oci_arch(machine: u16, class64: bool, little: bool) -> Arch {
    match (machine, class64, little) {
        (62, true, _) => "amd64".into(),
        (3, false, _) => "386".into(),
        (183, true, _) => "arm64".into(),
        (40, false, _) => "arm".into(),
        (243, true, _) => "riscv64".into(),
        (21, true, true) => "ppc64le".into(),
        (21, true, false) => "ppc64".into(),
        (22, true, _) => "s390x".into(),
        (8, _, true) => "mipsle".into(),
        (258, true, _) => "loong64".into(),
        (m, _, _) => format!("ELF machine {m}"),
    }
}

fn u16_at(b: &[u8], at: usize, little: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if little {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], at: usize, little: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn u64_at(b: &[u8], at: usize, little: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(if little {
        u64::from_le_bytes(s)
    } else {
        u64::from_be_bytes(s)
    })
}

/// Parses an ELF header and its program headers from `b` (the file's
/// first bytes); None when it is not ELF or its headers lie outside `b`.
pub fn elf_info(b: &[u8]) -> Option<ElfInfo> {
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let class64 = *b.get(4)? == 2;
    let little = *b.get(5)? == 1;
    let machine = u16_at(b, 18, little)?;
    let (phoff, phentsize, phnum) = if class64 {
        (
            u64_at(b, 32, little)?,
            u16_at(b, 54, little)?,
            u16_at(b, 56, little)?,
        )
    } else {
        (
            u64::from(u32_at(b, 28, little)?),
            u16_at(b, 42, little)?,
            u16_at(b, 44, little)?,
        )
    };
    let mut interpreter = None;
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)
            .ok()?
            .checked_add(i.checked_mul(usize::from(phentsize))?)?;
        // PT_INTERP = 3: its segment names the dynamic loader.
        if u32_at(b, at, little)? != 3 {
            continue;
        }
        let (off, size) = if class64 {
            (
                u64_at(b, at.checked_add(8)?, little)?,
                u64_at(b, at.checked_add(32)?, little)?,
            )
        } else {
            (
                u64::from(u32_at(b, at.checked_add(4)?, little)?),
                u64::from(u32_at(b, at.checked_add(16)?, little)?),
            )
        };
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(size.min(4096)).ok()?)?;
        let text = b.get(start..end).unwrap_or_default();
        let text = text.split(|c| *c == 0).next().unwrap_or_default();
        interpreter = Some(String::from_utf8_lossy(text).into_owned());
    }
    Some(ElfInfo {
        arch: oci_arch(machine, class64, little),
        interpreter,
    })
}

/// Reads at most `limit` bytes from the start of `path`.
pub fn read_head(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// What a kernel image says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    pub arch: Arch,
    /// The release (`6.1.0-57-cloud-amd64`), when the image carries it.
    pub release: Option<String>,
}

/// The architecture (and, for x86, the release) of the kernel at `path`.
pub fn kernel_info(path: &Path) -> Result<KernelInfo, String> {
    let head = read_head(path, KERNEL_HEAD_BYTES)?;
    let mut info = kernel_head_info(&head).ok_or_else(|| {
        format!(
            "{}: not a kernel image this berth can read (x86 bzImage, arm64 or riscv Image, EFI stub, ELF vmlinux, or a gzip of one)",
            path.display()
        )
    })?;
    if info.release.is_none() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        info.release = ["vmlinuz-", "vmlinux-", "Image-", "zImage-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .filter(|r| !r.is_empty())
            .map(str::to_string);
    }
    Ok(info)
}

/// The same, from the image's first bytes.
pub fn kernel_head_info(b: &[u8]) -> Option<KernelInfo> {
    if b.get(0x202..0x206) == Some(&b"HdrS"[..]) {
        return Some(x86_info(b));
    }
    let arch = match (b.get(0x38..0x3c), b.get(0x24..0x28)) {
        (Some(b"ARM\x64"), _) => Some("arm64"),
        (Some(b"RSC\x05"), _) => Some("riscv64"),
        (_, Some([0x18, 0x28, 0x6f, 0x01])) => Some("arm"),
        _ => None,
    };
    if let Some(arch) = arch {
        return Some(KernelInfo {
            arch: arch.into(),
            release: None,
        });
    }
    if let Some(elf) = elf_info(b) {
        return Some(KernelInfo {
            arch: elf.arch,
            release: None,
        });
    }
    if b.starts_with(b"MZ") {
        return pe_info(b);
    }
    if b.starts_with(&[0x1f, 0x8b]) {
        let mut inner = Vec::new();
        let _ = flate2::read::GzDecoder::new(b)
            .take(KERNEL_HEAD_BYTES)
            .read_to_end(&mut inner);
        return kernel_head_info(&inner);
    }
    None
}

/// An x86 boot-protocol header: 64-bit when xloadflags says the kernel
/// has a 64-bit entry point; the release is the start of the string the
/// `kernel_version` field points at.
fn x86_info(b: &[u8]) -> KernelInfo {
    let version = u16_at(b, 0x206, true).unwrap_or(0);
    let xloadflags = b.get(0x236).copied().unwrap_or(0);
    let arch = if version >= 0x20c && xloadflags & 1 != 0 {
        "amd64"
    } else {
        "386"
    };
    let release = u16_at(b, 0x20e, true)
        .filter(|off| *off != 0)
        .and_then(|off| b.get(usize::from(off) + 0x200..))
        .and_then(|s| s.split(|c| *c == 0 || *c == b' ').next())
        .and_then(|s| std::str::from_utf8(s).ok())
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_string);
    KernelInfo {
        arch: arch.into(),
        release,
    }
}

/// A PE image (an EFI stub kernel): the COFF header's machine.
fn pe_info(b: &[u8]) -> Option<KernelInfo> {
    let pe = usize::try_from(u32_at(b, 0x3c, true)?).ok()?;
    if b.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let arch = match u16_at(b, pe.checked_add(4)?, true)? {
        0x8664 => "amd64",
        0xaa64 => "arm64",
        0x5064 => "riscv64",
        0x01c2 | 0x01c4 => "arm",
        0x6264 => "loong64",
        _ => return None,
    };
    Some(KernelInfo {
        arch: arch.into(),
        release: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header with one program header.
    pub fn elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let kind: u32 = if interp.is_some() { 3 } else { 1 };
        b[64..68].copy_from_slice(&kind.to_le_bytes());
        if let Some(i) = interp {
            b[64 + 8..64 + 16].copy_from_slice(&0x100u64.to_le_bytes());
            b[64 + 32..64 + 40].copy_from_slice(&(i.len() as u64 + 1).to_le_bytes());
            b[0x100..0x100 + i.len()].copy_from_slice(i.as_bytes());
        }
        b
    }

    #[test]
    fn elf_machine_and_interpreter() {
        let e = elf_info(&elf(62, None)).unwrap();
        assert_eq!((e.arch.as_str(), e.interpreter), ("amd64", None));
        let e = elf_info(&elf(183, Some("/lib/ld-linux-aarch64.so.1"))).unwrap();
        assert_eq!(e.arch, "arm64");
        assert_eq!(e.interpreter.as_deref(), Some("/lib/ld-linux-aarch64.so.1"));
        assert_eq!(elf_info(&elf(9999, None)).unwrap().arch, "ELF machine 9999");
        assert!(elf_info(b"#!/bin/sh\n").is_none());
        // Program headers past the end: not an answer, not a panic.
        let mut cut = elf(62, None);
        cut[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(elf_info(&cut).is_none());
    }

    #[test]
    fn x86_bzimage_arch_and_release() {
        let mut b = vec![0u8; 0x1000];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x236] = 1;
        b[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        b[0x500..0x520].copy_from_slice(b"6.1.0-57-cloud-amd64 (debian) #1");
        let k = kernel_head_info(&b).unwrap();
        assert_eq!(k.arch, "amd64");
        assert_eq!(k.release.as_deref(), Some("6.1.0-57-cloud-amd64"));
        b[0x236] = 0;
        assert_eq!(kernel_head_info(&b).unwrap().arch, "386");
    }

    #[test]
    fn arm64_image_pe_and_gzip() {
        let mut b = vec![0u8; 0x100];
        b[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(kernel_head_info(&b).unwrap().arch, "arm64");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &b).unwrap();
        assert_eq!(
            kernel_head_info(&gz.finish().unwrap()).unwrap().arch,
            "arm64"
        );
        let mut pe = vec![0u8; 0x100];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x84..0x86].copy_from_slice(&0x5064u16.to_le_bytes());
        assert_eq!(kernel_head_info(&pe).unwrap().arch, "riscv64");
        assert!(kernel_head_info(&[0u8; 0x400]).is_none());
    }
}
