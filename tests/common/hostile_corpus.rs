//! The hostile-layer corpus for tests/hostile_layers.rs: each case is a
//! layer (or several) built byte by byte, and whether berth must reject it
//! (naming what) or may import it with its effects contained.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::layers::{Entry, Layer, RawTar, sha256_hex};

pub enum Expect {
    /// Import fails and stderr names this.
    Reject(&'static str),
    /// Import succeeds; the check looks at the unpacked layer.
    Contain(fn(&Path)),
}

pub struct Case {
    pub name: &'static str,
    pub layers: Vec<Layer>,
    /// (layer index, digest to declare instead of the real one)
    pub declared_digest: Option<(usize, String)>,
    pub expect: Expect,
}

pub fn tar(build: impl FnOnce(&mut RawTar)) -> Vec<u8> {
    let mut t = RawTar::default();
    build(&mut t);
    t.finish()
}

pub fn one(bytes: Vec<u8>) -> Vec<Layer> {
    vec![Layer::tar(bytes)]
}

pub fn cases(outside: &Path) -> Vec<Case> {
    let out = outside.to_str().unwrap().to_string();
    let case = |name, layers, expect| Case {
        name,
        layers,
        declared_digest: None,
        expect,
    };
    let zeros = vec![0u8; 200 << 20];
    let bomb = tar(|t| {
        t.file("bomb", &zeros);
    });
    let good = tar(|t| {
        t.file("hello", b"hello\n");
    });
    let gz = super::layers::gzip(&good);
    let mut truncated_gz = Layer::gzip(&good);
    truncated_gz.blob.truncate(gz.len() / 2);
    let mut corrupt_gz = Layer::gzip(&good);
    let n = corrupt_gz.blob.len();
    corrupt_gz.blob[n / 2] ^= 0x55;
    let zst = zstd::encode_all(&good[..], 3).unwrap();
    let truncated_zst = Layer {
        blob: zst[..zst.len() / 2].to_vec(),
        diff_id: sha256_hex(&good),
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
    };
    let long_name = "d/".repeat(2100) + "f";
    vec![
        case(
            "dot-dot path",
            one(tar(|t| {
                t.file("../escape", b"x");
            })),
            Expect::Reject("escapes the layer"),
        ),
        case(
            "dot-dot deep",
            one(tar(|t| {
                t.file("a/../../escape", b"x");
            })),
            Expect::Reject("escapes the layer"),
        ),
        case(
            "absolute path",
            one(tar(|t| {
                t.file("/abs-file", b"x");
            })),
            Expect::Contain(|l| assert!(l.join("abs-file").is_file())),
        ),
        case(
            "symlink then write through it",
            one(tar(|t| {
                t.symlink("evil", &out).file("evil/pwned", b"x");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "symlink chain to /",
            one(tar(|t| {
                t.symlink("l2", "/")
                    .symlink("l1", "l2")
                    .file("l1/tmp/pwned", b"x");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "symlink to / then /etc/passwd",
            one(tar(|t| {
                t.symlink("root", "/").file("root/etc/passwd", b"x");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "relative symlink escape",
            one(tar(|t| {
                t.symlink("up", "../../../../../../..")
                    .file("up/tmp/pwned", b"x");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "hardlink to outside",
            one(tar(|t| {
                t.hardlink("hl", "../../../../etc/passwd");
            })),
            Expect::Reject("leaves the layer"),
        ),
        case(
            "hardlink to absolute host file",
            one(tar(|t| {
                t.hardlink("hl", "/etc/passwd");
            })),
            Expect::Reject("hard link target"),
        ),
        case(
            "hardlink through a symlink",
            one(tar(|t| {
                t.symlink("d", &out).hardlink("x", "d/secret");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "whiteout with ..",
            one(tar(|t| {
                t.file("../.wh.victim", b"");
            })),
            Expect::Reject("escapes the layer"),
        ),
        case(
            "whiteout of the root",
            one(tar(|t| {
                t.file(".wh..", b"");
            })),
            Expect::Reject("invalid whiteout"),
        ),
        case(
            "empty whiteout",
            one(tar(|t| {
                t.file("a/.wh.", b"");
            })),
            Expect::Reject("invalid whiteout"),
        ),
        case(
            "whiteout through a symlink",
            one(tar(|t| {
                t.symlink("a", &out).file("a/.wh.victim", b"");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "opaque marker through a symlink",
            one(tar(|t| {
                t.symlink("a", &out).file("a/.wh..wh..opq", b"");
            })),
            Expect::Reject("symlink"),
        ),
        case(
            "character device /dev/mem",
            one(tar(|t| {
                t.add(&Entry {
                    name: b"mem",
                    kind: b'3',
                    dev: (1, 1),
                    ..Entry::default()
                });
            })),
            Expect::Contain(|l| assert!(!l.join("mem").exists(), "device node created")),
        ),
        case(
            "block device",
            one(tar(|t| {
                t.add(&Entry {
                    name: b"sda",
                    kind: b'4',
                    dev: (8, 0),
                    ..Entry::default()
                });
            })),
            Expect::Contain(|l| assert!(!l.join("sda").exists(), "device node created")),
        ),
        case(
            "duplicate entries: last wins",
            one(tar(|t| {
                t.file("dup", b"first").file("dup", b"second");
            })),
            Expect::Contain(|l| assert_eq!(fs::read(l.join("dup")).unwrap(), b"second")),
        ),
        case(
            "directory replaced by a file",
            one(tar(|t| {
                t.dir("x").file("x/y", b"y").file("x", b"file");
            })),
            Expect::Contain(|l| assert_eq!(fs::read(l.join("x")).unwrap(), b"file")),
        ),
        case(
            "file replaced by a directory and back",
            one(tar(|t| {
                t.file("z", b"1").dir("z").file("z/w", b"w").file("z", b"2");
            })),
            Expect::Contain(|l| assert_eq!(fs::read(l.join("z")).unwrap(), b"2")),
        ),
        case(
            "huge declared size, truncated",
            one({
                let mut t = RawTar::default();
                t.add(&Entry {
                    name: b"huge",
                    data: b"tiny",
                    declared_size: Some(1 << 40),
                    ..Entry::default()
                });
                t.bytes
            }),
            Expect::Reject("corrupt layer"),
        ),
        case(
            "truncated gzip",
            vec![truncated_gz],
            Expect::Reject("corrupt layer"),
        ),
        case("corrupt gzip", vec![corrupt_gz], Expect::Reject("layer")),
        case(
            "truncated zstd",
            vec![truncated_zst],
            Expect::Reject("corrupt layer"),
        ),
        case(
            "diff_id mismatch",
            vec![Layer {
                blob: good.clone(),
                diff_id: sha256_hex(b"something else"),
                media_type: "application/vnd.oci.image.layer.v1.tar",
            }],
            Expect::Reject("(uncompressed): digest mismatch"),
        ),
        Case {
            name: "blob digest mismatch",
            layers: one(good.clone()),
            declared_digest: Some((0, sha256_hex(b"other"))),
            expect: Expect::Reject("digest mismatch"),
        },
        case(
            "decompression bomb",
            vec![Layer::gzip(&bomb)],
            Expect::Reject("compression ratio"),
        ),
        case(
            "NUL in a PAX name",
            one(tar(|t| {
                t.pax(&[("path", b"a\0b")]).file("placeholder", b"x");
            })),
            Expect::Reject(""),
        ),
        case(
            "name longer than PATH_MAX",
            one(tar(|t| {
                t.pax(&[("path", long_name.as_bytes())])
                    .file("placeholder", b"x");
            })),
            Expect::Reject(""),
        ),
        case(
            "component longer than NAME_MAX",
            one(tar(|t| {
                t.pax(&[("path", "n".repeat(300).as_bytes())])
                    .file("p", b"x");
            })),
            Expect::Reject(""),
        ),
        case(
            "setuid file keeps its owner and bit",
            one(tar(|t| {
                t.add(&Entry {
                    name: b"suid",
                    data: b"#!",
                    mode: 0o4755,
                    uid: 1000,
                    ..Entry::default()
                });
            })),
            Expect::Contain(|l| {
                let m = fs::metadata(l.join("suid")).unwrap();
                assert_eq!((m.mode() & 0o7777, m.uid()), (0o4755, 1000));
            }),
        ),
        case(
            "overlay xattrs are dropped, user xattrs kept",
            one(tar(|t| {
                t.pax(&[
                    ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                    ("SCHILY.xattr.user.note", b"ok"),
                ])
                .file("x", b"x");
            })),
            Expect::Contain(|l| {
                assert_eq!(
                    xattr::get(l.join("x"), "trusted.overlay.redirect").unwrap(),
                    None
                );
                assert_eq!(
                    xattr::get(l.join("x"), "user.note").unwrap().as_deref(),
                    Some(&b"ok"[..])
                );
            }),
        ),
        case(
            "symlinks are stored, never followed",
            one(tar(|t| {
                t.symlink("shadow", "/etc/shadow").symlink("loop", "loop");
            })),
            Expect::Contain(|l| {
                assert!(
                    fs::symlink_metadata(l.join("shadow"))
                        .unwrap()
                        .file_type()
                        .is_symlink()
                )
            }),
        ),
        case(
            "0/0 char device is a whiteout",
            one(tar(|t| {
                t.add(&Entry {
                    name: b"gone",
                    kind: b'3',
                    dev: (0, 0),
                    ..Entry::default()
                });
            })),
            Expect::Contain(|l| {
                assert!(
                    fs::symlink_metadata(l.join("gone"))
                        .unwrap()
                        .file_type()
                        .is_char_device()
                )
            }),
        ),
        case(
            "gzip layer",
            vec![Layer {
                blob: gz,
                diff_id: sha256_hex(&good),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            }],
            Expect::Contain(|l| assert_eq!(fs::read(l.join("hello")).unwrap(), b"hello\n")),
        ),
    ]
}
