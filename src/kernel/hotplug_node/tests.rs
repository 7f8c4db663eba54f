use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::PathBuf;

use super::*;

fn root_of(dir: &Path) -> OwnedFd {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    open(dir, flags, Mode::empty()).expect("open root")
}

fn null_at(path: &str) -> DeviceNode {
    DeviceNode {
        path: PathBuf::from(path),
        kind: NodeKind::Char,
        major: 1,
        minor: 3,
        mode: 0o640,
        uid: 12,
        gid: 34,
    }
}

#[test]
fn a_node_is_made_with_its_mode_owner_and_parents_and_removed() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_of(dir.path());
    let node = null_at("/dev/serial/modem");
    assert_eq!(make_node_in_root(&root, &node), Ok(Made::Created));
    let meta = fs::symlink_metadata(dir.path().join("dev/serial/modem")).expect("made");
    assert!(meta.file_type().is_char_device());
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, 12, 34)
    );
    assert_eq!(make_node_in_root(&root, &node), Ok(Made::AlreadyThere));
    let other = DeviceNode {
        minor: 5,
        ..node.clone()
    };
    assert_eq!(
        make_node_in_root(&root, &other).unwrap_err().errno,
        Errno::EEXIST
    );
    // Another device's numbers: not ours to remove.
    let p = node.path.as_path();
    assert_eq!(
        remove_node_in_root(&root, p, NodeKind::Char, 1, 5),
        Ok(false)
    );
    assert_eq!(
        remove_node_in_root(&root, p, NodeKind::Block, 1, 3),
        Ok(false)
    );
    assert_eq!(
        remove_node_in_root(&root, p, NodeKind::Char, 1, 3),
        Ok(true)
    );
    assert!(!dir.path().join("dev/serial/modem").exists());
    assert_eq!(
        remove_node_in_root(&root, p, NodeKind::Char, 1, 3),
        Ok(false)
    );
    let gone = Path::new("/none/such/x");
    assert_eq!(
        remove_node_in_root(&root, gone, NodeKind::Char, 1, 3),
        Ok(false)
    );
}

#[test]
fn planted_symlinks_resolve_inside_the_container_root() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let outside = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_of(dir.path());
    // An absolute link to a host directory, a ".." climb and a magic link:
    // none leads out of the root.
    symlink(outside.path(), dir.path().join("dev")).expect("ln");
    fs::create_dir_all(dir.path().join("a")).expect("mkdir");
    symlink("../../../../..", dir.path().join("a/up")).expect("ln");
    symlink("/proc/self/root", dir.path().join("magic")).expect("ln");
    // The link's target does not exist in the root: an error, not the host.
    let e = make_node_in_root(&root, &null_at("/dev/x")).unwrap_err();
    assert_eq!(e.errno, Errno::ENOENT, "{e}");
    assert!(!outside.path().join("x").exists(), "escaped to the host");
    let inside = dir
        .path()
        .join(outside.path().strip_prefix("/").expect("abs"));
    fs::create_dir_all(&inside).expect("mkdir");
    assert_eq!(
        make_node_in_root(&root, &null_at("/dev/x")),
        Ok(Made::Created)
    );
    assert!(
        inside.join("x").exists(),
        "made inside, at the link's in-root target"
    );
    assert!(!outside.path().join("x").exists(), "escaped to the host");
    assert_eq!(
        make_node_in_root(&root, &null_at("/a/up/y")),
        Ok(Made::Created)
    );
    assert!(dir.path().join("y").exists());
    // "/proc/self/root" is looked up in the container root, not the host's.
    assert!(make_node_in_root(&root, &null_at("/magic/z")).is_err());
    assert!(!Path::new("/z").exists());
    // The last component is never followed: a link there stays.
    symlink("/etc/passwd", dir.path().join("last")).expect("ln");
    let e = make_node_in_root(&root, &null_at("/last")).unwrap_err();
    assert_eq!(e.errno, Errno::EEXIST);
    let p = Path::new("/last");
    assert_eq!(
        remove_node_in_root(&root, p, NodeKind::Char, 1, 3),
        Ok(false)
    );
    assert!(fs::symlink_metadata(dir.path().join("last")).is_ok());
    for bad in ["relative", "/", "/dev/../x"] {
        assert!(make_node_in_root(&root, &null_at(bad)).is_err(), "{bad}");
    }
}
