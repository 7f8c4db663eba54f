//! A newc cpio archive (what the kernel unpacks as an initramfs) written
//! from a tree held in memory: entries in byte order of their paths (so a
//! directory comes before what it holds, and the same tree gives the same
//! bytes), inode numbers given in that order, hard links sharing one inode
//! with the data in the first of them (the kernel links the others to it).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// newc sizes are 32-bit.
const MAX_FILE_BYTES: u64 = u32::MAX as u64;

#[derive(Debug, Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    /// A host file of this size, read when the archive is written.
    Host(PathBuf, u64),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Dir,
    File(Source),
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (with setuid, setgid and sticky).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// The host inode (device, inode) of a file with several links.
    pub link: Option<(u64, u64)>,
}

impl Entry {
    pub fn new(kind: Kind, perm: u32, mtime: u32) -> Entry {
        Entry {
            kind,
            perm,
            uid: 0,
            gid: 0,
            mtime,
            link: None,
        }
    }

    fn mode(&self) -> u32 {
        let kind = match self.kind {
            Kind::Dir => libc::S_IFDIR,
            Kind::File(_) => libc::S_IFREG,
            Kind::Symlink(_) => libc::S_IFLNK,
            Kind::Char(..) => libc::S_IFCHR,
            Kind::Block(..) => libc::S_IFBLK,
            Kind::Fifo => libc::S_IFIFO,
        };
        kind | (self.perm & 0o7777)
    }
}

/// Paths without a leading `/` (`etc/berth/berth.json`).
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// The mtime of directories made implicitly, as parents.
    pub mtime: u32,
}

impl Tree {
    pub fn new(mtime: u32) -> Tree {
        Tree {
            entries: BTreeMap::new(),
            mtime,
        }
    }

    /// Adds (or replaces) `path`, and its missing parents as 0755 root
    /// directories.
    pub fn add(&mut self, path: &str, entry: Entry) {
        let path = path.trim_matches('/');
        let mtime = self.mtime;
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            self.entries
                .entry(parent.as_bytes().to_vec())
                .or_insert_with(|| Entry::new(Kind::Dir, 0o755, mtime));
            at += i + 1;
        }
        self.entries.insert(path.as_bytes().to_vec(), entry);
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path.trim_matches('/').as_bytes())
    }

    /// Every entry's path, in archive order.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(Vec::as_slice)
    }

    /// Every entry with its path, in archive order (parents first).
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (&[u8], &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_slice(), e))
    }

    /// Bytes of file data at or under `prefix` (a hard-linked file once).
    pub fn file_bytes_under(&self, prefix: &str) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .filter(|(p, _)| p.starts_with(prefix.as_bytes()))
            .filter(|(_, e)| e.link.is_none_or(|k| seen.insert(k)))
            .map(|(_, e)| match &e.kind {
                Kind::File(Source::Bytes(b)) => b.len() as u64,
                Kind::File(Source::Host(_, len)) => *len,
                _ => 0,
            })
            .sum()
    }

    /// Adds the host directory `host` (not following symlinks) at `at`:
    /// modes as they are, owners too when `keep_owner` (else root), mtimes
    /// clamped to the tree's.
    pub fn add_host_dir(&mut self, host: &Path, at: &str, keep_owner: bool) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(host)?;
        let entry = self.host_entry(host, &meta, keep_owner)?;
        self.add(at, entry);
        if !meta.is_dir() {
            return Ok(());
        }
        let mut names: Vec<_> = std::fs::read_dir(host)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let child = format!("{at}/{}", String::from_utf8_lossy(name.as_bytes()));
            if name.to_str().is_none() {
                return Err(io::Error::other(format!(
                    "{}: a file name that is not UTF-8",
                    host.join(&name).display()
                )));
            }
            self.add_host_dir(&host.join(&name), &child, keep_owner)?;
        }
        Ok(())
    }

    fn host_entry(&self, path: &Path, meta: &std::fs::Metadata, keep: bool) -> io::Result<Entry> {
        let t = meta.file_type();
        let rdev = || (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        let kind = if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File(Source::Host(path.to_path_buf(), meta.len()))
        } else if t.is_symlink() {
            Kind::Symlink(std::fs::read_link(path)?.as_os_str().as_bytes().to_vec())
        } else if t.is_char_device() {
            Kind::Char(rdev().0, rdev().1)
        } else if t.is_block_device() {
            Kind::Block(rdev().0, rdev().1)
        } else if t.is_fifo() {
            Kind::Fifo
        } else {
            return Err(io::Error::other(format!(
                "{}: a socket has no place in an image",
                path.display()
            )));
        };
        let link = (t.is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        Ok(Entry {
            kind,
            perm: meta.mode() & 0o7777,
            uid: if keep { meta.uid() } else { 0 },
            gid: if keep { meta.gid() } else { 0 },
            mtime: u32::try_from(meta.mtime().max(0))
                .unwrap_or(u32::MAX)
                .min(self.mtime),
            link,
        })
    }

    /// Writes the archive, trailer included; returns the bytes written.
    pub fn write_newc(&self, out: impl Write) -> io::Result<u64> {
        let mut out = Counting { out, n: 0 };
        // Hard links: one inode number and link count per host inode, the
        // data with the first path (in archive order) that has it.
        let mut groups: HashMap<(u64, u64), (u32, u32)> = HashMap::new();
        for e in self.entries.values() {
            if let Some(key) = e.link {
                groups.entry(key).or_insert((0, 0)).1 += 1;
            }
        }
        let mut next_ino = 1u32;
        for (path, e) in &self.entries {
            let (ino, nlink, with_data) = match e.link.and_then(|k| groups.get_mut(&k)) {
                Some((ino, count)) if *ino != 0 => (*ino, *count, false),
                Some((ino, count)) => {
                    *ino = next_ino;
                    next_ino += 1;
                    (*ino, *count, true)
                }
                None => {
                    next_ino += 1;
                    (
                        next_ino - 1,
                        if matches!(e.kind, Kind::Dir) { 2 } else { 1 },
                        true,
                    )
                }
            };
            write_entry(&mut out, path, e, ino, nlink, with_data)?;
        }
        let trailer = Entry::new(Kind::File(Source::Bytes(Vec::new())), 0, 0);
        write_header(&mut out, b"TRAILER!!!", &trailer, 0, 1, 0)?;
        // The kernel reads whole 512-byte blocks of an archive.
        pad(&mut out, 512)?;
        Ok(out.n)
    }
}

struct Counting<W> {
    out: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn pad<W: Write>(out: &mut Counting<W>, to: u64) -> io::Result<()> {
    let n = (to - out.n % to) % to;
    out.write_all(&vec![0u8; n as usize])
}

fn write_entry<W: Write>(
    out: &mut Counting<W>,
    path: &[u8],
    e: &Entry,
    ino: u32,
    nlink: u32,
    with_data: bool,
) -> io::Result<()> {
    let size = match (&e.kind, with_data) {
        (Kind::File(Source::Bytes(b)), true) => b.len() as u64,
        (Kind::File(Source::Host(_, len)), true) => *len,
        (Kind::Symlink(target), _) => target.len() as u64,
        _ => 0,
    };
    if size > MAX_FILE_BYTES {
        return Err(io::Error::other(format!(
            "{}: larger than a cpio archive holds (4 GiB)",
            String::from_utf8_lossy(path)
        )));
    }
    write_header(out, path, e, ino, nlink, size as u32)?;
    match (&e.kind, with_data) {
        (Kind::File(Source::Bytes(b)), true) => out.write_all(b)?,
        (Kind::File(Source::Host(p, len)), true) => copy_exactly(p, *len, out)?,
        (Kind::Symlink(target), _) => out.write_all(target)?,
        _ => {}
    }
    pad(out, 4)
}

/// Copies `len` bytes of `path`: a file that changed size since it was
/// looked at would make a corrupt archive.
fn copy_exactly(path: &Path, len: u64, out: &mut impl Write) -> io::Result<()> {
    let copied = io::copy(&mut File::open(path)?.take(len), out)?;
    if copied != len {
        return Err(io::Error::other(format!(
            "{}: changed while the image was written",
            path.display()
        )));
    }
    Ok(())
}

fn write_header<W: Write>(
    out: &mut Counting<W>,
    path: &[u8],
    e: &Entry,
    ino: u32,
    nlink: u32,
    size: u32,
) -> io::Result<()> {
    let (rmajor, rminor) = match e.kind {
        Kind::Char(ma, mi) | Kind::Block(ma, mi) => (ma, mi),
        _ => (0, 0),
    };
    let mode = if path == b"TRAILER!!!" { 0 } else { e.mode() };
    let fields = [
        ino,
        mode,
        e.uid,
        e.gid,
        nlink,
        e.mtime,
        size,
        0,
        0,
        rmajor,
        rminor,
        path.len() as u32 + 1,
        0,
    ];
    let mut header = String::with_capacity(110);
    header.push_str("070701");
    for f in fields {
        header.push_str(&format!("{f:08X}"));
    }
    out.write_all(header.as_bytes())?;
    out.write_all(path)?;
    out.write_all(&[0])?;
    pad(out, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(h: &[u8], i: usize) -> u32 {
        u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
    }

    #[test]
    fn entries_are_sorted_padded_and_parents_made() {
        let mut t = Tree::new(7);
        t.add(
            "etc/berth/berth.json",
            Entry::new(Kind::File(Source::Bytes(b"{}\n".to_vec())), 0o644, 7),
        );
        t.add(
            "init",
            Entry::new(Kind::File(Source::Bytes(vec![1; 5])), 0o755, 7),
        );
        t.add("dev/null", Entry::new(Kind::Char(1, 3), 0o666, 7));
        let names: Vec<_> = t
            .paths()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/null",
                "etc",
                "etc/berth",
                "etc/berth/berth.json",
                "init"
            ]
        );
        let mut out = Vec::new();
        let n = t.write_newc(&mut out).unwrap();
        assert_eq!(n as usize, out.len());
        assert_eq!(out.len() % 512, 0);
        assert!(out.starts_with(b"070701"));
        assert_eq!(field(&out, 1), libc::S_IFDIR | 0o755);
        assert_eq!(field(&out, 5), 7);
        assert_eq!(&out[110..114], b"dev\0");
        // "dev" header + name padded to 116, then dev/null's header.
        let null = &out[116..];
        assert_eq!(field(null, 1), libc::S_IFCHR | 0o666);
        assert_eq!((field(null, 9), field(null, 10)), (1, 3));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn hard_links_share_an_inode_and_carry_the_data_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("b/x"), b"data").unwrap();
        std::fs::hard_link(d.path().join("b/x"), d.path().join("a")).unwrap();
        let mut t = Tree::new(0);
        t.add_host_dir(d.path(), "root", false).unwrap();
        let mut out = Vec::new();
        t.write_newc(&mut out).unwrap();
        let at = |name: &str| {
            let i = out
                .windows(name.len())
                .position(|w| w == name.as_bytes())
                .unwrap();
            &out[i - 110..]
        };
        let (a, x) = (at("root/a\0"), at("root/b/x\0"));
        assert_eq!(field(a, 0), field(x, 0));
        assert_eq!((field(a, 4), field(x, 4)), (2, 2));
        assert_eq!((field(a, 6), field(x, 6)), (4, 0));
        assert_eq!(field(a, 5), 0, "mtime clamped to the tree's");
    }
}
