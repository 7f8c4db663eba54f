use super::*;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).expect("spec")
}

fn arrival(kind: NodeKind, major: u32, minor: u32, name: &str, subsystem: &str) -> Arrival {
    Arrival {
        kind,
        major,
        minor,
        host_path: Path::new("/dev").join(name),
        mode: 0o660,
        uid: 0,
        gid: 6,
        properties: DeviceProperties {
            subsystem: subsystem.into(),
            name: name.into(),
            ..DeviceProperties::default()
        },
    }
}

fn no_links(_: &Path) -> Option<PathBuf> {
    None
}

fn paths(p: &[Placement]) -> Vec<(String, String)> {
    p.iter()
        .map(|p| {
            (
                p.container_path.display().to_string(),
                p.permissions.clone(),
            )
        })
        .collect()
}

#[test]
fn entries_by_path_directory_link_and_match_place_the_node() {
    let s = spec(
        r#"{"image": "x", "devices": [
        {"path": "/dev/loop9", "container_path": "/dev/disk", "permissions": "rw", "optional": true},
        {"path": "/dev/bus/usb", "container_path": "/dev/usb", "optional": true},
        {"path": "/links/modem", "container_path": "/dev/modem", "optional": true},
        {"match": {"subsystem": "tty", "vendor": "0403"}, "container_path": "/dev/ftdi", "permissions": "r"}]}"#,
    );
    let loop9 = arrival(NodeKind::Block, 7, 9, "loop9", "block");
    assert_eq!(
        paths(&placements(&s, &loop9, &no_links)),
        [("/dev/disk".into(), "rw".into())]
    );
    let usb = arrival(NodeKind::Char, 189, 1, "bus/usb/001/002", "usb");
    assert_eq!(
        paths(&placements(&s, &usb, &no_links)),
        [("/dev/usb/001/002".into(), "rwm".into())]
    );
    let mut tty = arrival(NodeKind::Char, 188, 0, "ttyUSB0", "tty");
    let link = |p: &Path| (p == Path::new("/links/modem")).then(|| PathBuf::from("/dev/ttyUSB0"));
    assert_eq!(
        paths(&placements(&s, &tty, &link)),
        [("/dev/modem".into(), "rwm".into())]
    );
    assert!(
        placements(&s, &tty, &no_links).is_empty(),
        "no vendor: no match"
    );
    tty.properties.vendor = Some("0403".into());
    assert_eq!(
        paths(&placements(&s, &tty, &link)),
        [
            ("/dev/modem".into(), "rwm".into()),
            ("/dev/ftdi".into(), "r".into())
        ]
    );
    let other = arrival(NodeKind::Block, 7, 10, "loop10", "block");
    assert!(placements(&s, &other, &no_links).is_empty());
    // "/dev/loop1" is no directory prefix of "/dev/loop10".
    let s1 = spec(r#"{"image": "x", "devices": [{"path": "/dev/loop1", "optional": true}]}"#);
    assert!(placements(&s1, &other, &no_links).is_empty());
}

#[test]
fn rules_and_privileged_place_it_at_its_own_name() {
    let s = spec(r#"{"image": "x", "device_cgroup_rules": ["b 7:* rw", "b 7:9 m"]}"#);
    let loop9 = arrival(NodeKind::Block, 7, 9, "loop9", "block");
    assert_eq!(
        paths(&placements(&s, &loop9, &no_links)),
        [("/dev/loop9".into(), "rwm".into())]
    );
    let tty = arrival(NodeKind::Char, 7, 9, "vcs9", "vc");
    assert!(
        placements(&s, &tty, &no_links).is_empty(),
        "a rule's type counts"
    );
    let p = spec(r#"{"image": "x", "privileged": true}"#);
    for own in ["console", "ptmx", "pts/3"] {
        let dev = arrival(NodeKind::Char, 5, 1, own, "tty");
        assert!(placements(&p, &dev, &no_links).is_empty(), "{own}");
    }
    assert_eq!(
        paths(&placements(&p, &tty, &no_links)),
        [("/dev/vcs9".into(), "rwm".into())]
    );
}

#[test]
fn only_devices_no_rule_covers_need_one_of_their_own() {
    let s = spec(
        r#"{"image": "x", "device_cgroup_rules": ["b 7:* rw"],
        "devices": [{"path": "/dev/ttyUSB0", "optional": true}]}"#,
    );
    let loop9 = arrival(NodeKind::Block, 7, 9, "loop9", "block");
    let by_rule = given_device(&loop9, &placements(&s, &loop9, &no_links)[0]);
    assert!(!needs_own_rule(&s, &by_rule));
    let tty = arrival(NodeKind::Char, 188, 0, "ttyUSB0", "tty");
    let by_entry = given_device(&tty, &placements(&s, &tty, &no_links)[0]);
    assert!(needs_own_rule(&s, &by_entry));
    let rules = rules_now(&s, &[by_rule, by_entry]).expect("rules");
    let shown: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(shown, ["c 188:0 rwm", "b 7:* rw"]);
}
