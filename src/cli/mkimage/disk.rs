//! `--format disk`: a raw GPT disk image (512-byte sectors, partitions
//! aligned to 1 MiB) that boots with `root=/dev/…p1 ro`:
//!
//! - partition 1, `berth-root`: a read-only ext4 (no journal) holding the
//!   same root tree an initramfs gets (berth as /init and /sbin/init, the
//!   config, modules, CA bundle), plus the device nodes a disk root needs
//!   before devtmpfs is mounted;
//! - partition 2, `berth-data`: an ext4 with a journal holding the
//!   preloaded store, made small (64 MiB, or what the store needs) and
//!   mounted by berth at the store's path at boot, which grows it to the
//!   disk's end first (supervisor/daemon/data_partition.rs).
//!
//! Reproducible: the disk, partition and filesystem GUIDs and the hash
//! seeds are derived from a digest of everything that goes in; the
//! filesystems' times are pinned (ext4_times.rs).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::cpio::{Entry, Kind, Tree};
use super::ext4::{self, Spec};
use super::root::temp_beside;
use super::{ext4_times, stage};
use crate::kernel::gpt::{Gpt, Guid, LINUX_FS, NewPartition, protective_mbr};

const SECTOR: u64 = 512;
const ALIGN: u64 = 1 << 20;
pub const ROOT_LABEL: &str = "berth-root";
/// What berth looks for at boot (data_partition.rs).
pub const DATA_LABEL: &str = crate::supervisor::daemon::data_partition::DATA_PARTITION;
/// The data partition's size at build time when the store needs less:
/// room for the first boot's writes before it is grown.
const DATA_MIN_BYTES: u64 = 64 << 20;
const DATA_JOURNAL_MIB: u64 = 16;

pub struct Input<'a> {
    pub store: Option<&'a Path>,
    pub epoch: u32,
    pub work: &'a Path,
    pub output: &'a Path,
}

#[derive(Debug)]
pub struct Written {
    pub disk_bytes: u64,
    /// What the (sparse) file takes on the disk.
    pub allocated_bytes: u64,
    pub root_bytes: u64,
    pub data_bytes: u64,
    pub store_bytes: u64,
}

/// Builds the disk image of `tree` and the store at `output`.
pub fn write(tree: &mut Tree, input: Input<'_>) -> Result<Written, String> {
    add_disk_root_entries(tree);
    if let Some(store) = input.store {
        // A staging area left empty by the imports is not content.
        let _ = fs::remove_dir(store.join("tmp"));
        ext4_times::clamp_mtimes(store, input.epoch)?;
    }
    let (ids, store_bytes) = Ids::derive(tree, input.store)?;
    let staged = input.work.join("root");
    stage::materialize(tree, &staged)?;
    let root_fs = input.work.join("root.ext4");
    let root_bytes = ext4::make(
        &Spec {
            label: ROOT_LABEL,
            source: &staged,
            uuid: ids.text("root filesystem"),
            hash_seed: ids.text("root hash seed"),
            journal_mib: None,
            min_bytes: 0,
            epoch: input.epoch,
        },
        &root_fs,
    )?;
    let empty = input.work.join("data");
    let data_source = match input.store {
        Some(store) => store.to_path_buf(),
        None => {
            stage::materialize(&Tree::new(input.epoch), &empty)?;
            empty
        }
    };
    let data_fs = input.work.join("data.ext4");
    let data_bytes = ext4::make(
        &Spec {
            label: DATA_LABEL,
            source: &data_source,
            uuid: ids.text("data filesystem"),
            hash_seed: ids.text("data hash seed"),
            journal_mib: Some(DATA_JOURNAL_MIB),
            min_bytes: DATA_MIN_BYTES,
            epoch: input.epoch,
        },
        &data_fs,
    )?;
    let disk_bytes = assemble(&ids, &root_fs, &data_fs, input.output)?;
    let allocated_bytes = fs::metadata(input.output)
        .map(|m| m.blocks() * 512)
        .unwrap_or_default();
    Ok(Written {
        disk_bytes,
        allocated_bytes,
        root_bytes,
        data_bytes,
        store_bytes,
    })
}

/// A disk root is what the kernel execs init from: it opens /dev/console
/// there before berth mounts devtmpfs (an initramfs gets it from the
/// kernel's built-in archive); the Rust runtime wants /dev/null should a
/// standard descriptor be closed; and without `init=` the kernel runs
/// /sbin/init.
fn add_disk_root_entries(tree: &mut Tree) {
    let t = tree.mtime;
    tree.add("dev/console", Entry::new(Kind::Char(5, 1), 0o600, t));
    tree.add("dev/null", Entry::new(Kind::Char(1, 3), 0o666, t));
    tree.add(
        "sbin/init",
        Entry::new(Kind::Symlink(b"/init".to_vec()), 0o777, t),
    );
}

/// The identifiers of one build, all from one digest of its content.
struct Ids([u8; 32]);

impl Ids {
    /// Digests the root tree and the store as cpio archives (paths,
    /// modes, owners, mtimes, bytes); returns the store's file bytes too.
    fn derive(tree: &Tree, store: Option<&Path>) -> Result<(Ids, u64), String> {
        let mut h = HashWriter(Sha256::new());
        tree.write_newc(&mut h)
            .map_err(|e| format!("digest of the root tree: {e}"))?;
        let mut store_bytes = 0;
        if let Some(store) = store {
            let mut st = Tree::new(tree.mtime);
            st.add_host_dir(store, "data", true)
                .map_err(|e| format!("the image's store: {e}"))?;
            st.write_newc(&mut h)
                .map_err(|e| format!("digest of the store: {e}"))?;
            store_bytes = st.file_bytes_under("data/");
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&h.0.finalize());
        Ok((Ids(digest), store_bytes))
    }

    fn guid(&self, what: &str) -> Guid {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(what.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Guid::from_hash(b)
    }

    /// A UUID as mkfs.ext4 takes it.
    fn text(&self, what: &str) -> String {
        self.guid(what).to_string().to_lowercase()
    }
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the disk: protective MBR, GPT, both filesystems, the backup
/// GPT; through a temporary file renamed over `out` once complete.
fn assemble(ids: &Ids, root_fs: &Path, data_fs: &Path, out: &Path) -> Result<u64, String> {
    let len = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let (root_len, data_len) = (len(root_fs)?, len(data_fs)?);
    let root_lba = ALIGN / SECTOR;
    let data_lba = root_lba + root_len / SECTOR;
    let disk_sectors = data_lba + data_len / SECTOR + ALIGN / SECTOR;
    let part = |name: &str, first: u64, bytes: u64| NewPartition {
        name: name.into(),
        type_guid: LINUX_FS,
        guid: ids.guid(&format!("partition {name}")),
        first_lba: first,
        last_lba: first + bytes / SECTOR - 1,
    };
    let parts = [
        part(ROOT_LABEL, root_lba, root_len),
        part(DATA_LABEL, data_lba, data_len),
    ];
    let gpt = Gpt::new(SECTOR, disk_sectors, ids.guid("disk"), &parts)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let tmp = temp_beside(out);
    let fs = [(root_fs, root_lba), (data_fs, data_lba)];
    let written = write_image(&tmp, &gpt, disk_sectors, &fs);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, out)) {
        let _ = fs::remove_file(&tmp);
        return Err(format!("{}: {e}", out.display()));
    }
    Ok(disk_sectors * SECTOR)
}

fn write_image(
    tmp: &Path,
    gpt: &Gpt,
    disk_sectors: u64,
    filesystems: &[(&Path, u64)],
) -> std::io::Result<()> {
    let mut file = File::create(tmp)?;
    file.set_len(disk_sectors * SECTOR)?;
    file.write_all(&protective_mbr(disk_sectors))?;
    for w in gpt.primary().into_iter().chain(gpt.backup()) {
        file.seek(SeekFrom::Start(w.offset))?;
        file.write_all(&w.bytes)?;
    }
    for (fs, lba) in filesystems {
        copy_sparse(fs, &mut file, lba * SECTOR)?;
    }
    file.sync_all()
}

/// Copies `from` into `to` at `offset`, skipping blocks of zeros (the
/// file was extended with set_len: they read as zeros already).
fn copy_sparse(from: &Path, to: &mut File, offset: u64) -> std::io::Result<()> {
    let mut src = File::open(from)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = offset;
    loop {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            to.seek(SeekFrom::Start(at))?;
            to.write_all(&buf[..n])?;
        }
        at += n as u64;
    }
}

fn read_full(src: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
