use super::*;
use crate::supervisor::plugins::cdi::edits::{BindFlags, CdiBind};

fn node(host: &str, block: Option<bool>, numbers: Option<(u32, u32)>) -> CdiNode {
    CdiNode {
        container_path: "/dev/x".into(),
        host_path: host.into(),
        block,
        numbers,
        mode: None,
        uid: None,
        gid: None,
        permissions: "rw".into(),
    }
}

#[test]
fn nodes_take_what_the_spec_leaves_out_from_the_host() {
    let g = given_node(&node("/dev/null", None, None)).unwrap();
    assert_eq!((g.kind, g.major, g.minor), (NodeKind::Char, 1, 3));
    assert_eq!(g.mode, 0o666);
    let g = given_node(&node("/nonexistent", Some(true), Some((7, 9)))).unwrap();
    assert_eq!(
        (g.kind, g.major, g.minor, g.mode),
        (NodeKind::Block, 7, 9, 0o666)
    );
    let e = given_node(&node("/nonexistent", None, None)).unwrap_err();
    assert!(e.contains("/nonexistent"), "{e}");
}

#[test]
fn cdi_env_wins_and_mounts_keep_their_flags() {
    let edits = CdiEdits {
        env: vec!["A=cdi".into(), "PATH=/cdi/bin".into()],
        mounts: vec![CdiBind {
            source: "/src".into(),
            target: "/dst".into(),
            flags: BindFlags {
                read_only: true,
                slave: true,
                ..BindFlags::default()
            },
        }],
        additional_gids: vec![44],
        ..CdiEdits::default()
    };
    let mut env = vec!["A=spec".into(), "B=1".into(), "PATH=/bin".into()];
    apply_env(&mut env, &edits);
    assert_eq!(env, ["A=cdi", "B=1", "PATH=/cdi/bin"]);
    match &mounts(&edits)[0] {
        MountConfig::Bind {
            flags, propagation, ..
        } => {
            assert!(flags.read_only && !flags.nodev);
            assert_eq!(*propagation, Propagation::Slave);
        }
        other => panic!("{other:?}"),
    }
}
