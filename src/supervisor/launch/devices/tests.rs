//! Unit tests of launch/devices.rs on the host's own /dev/null and
//! /dev/zero (the real-kernel tests are tests/devices.rs).

use super::*;
use crate::kernel::userns::IdMap;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}

#[test]
fn links_directories_and_optional_entries_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let by_id = dir.path().join("by-id");
    std::fs::create_dir(&by_id).unwrap();
    std::os::unix::fs::symlink("/dev/zero", by_id.join("usb-FAKE")).unwrap();
    let link = by_id.join("usb-FAKE");
    let s = spec(&format!(
        r#"{{"image": "x", "devices": ["{}:/dev/modem:r",
            {{"path": "/dev/berth-no-such-device", "optional": true}}]}}"#,
        link.display()
    ));
    let found = find_devices(&s, &[]).unwrap();
    assert_eq!(found.devices.len(), 1, "{found:?}");
    let d = &found.devices[0];
    assert_eq!(d.container_path, Path::new("/dev/modem"));
    assert_eq!(d.host_path, Path::new("/dev/zero"));
    assert_eq!((d.kind, d.major, d.minor), (NodeKind::Char, 1, 5));
    assert!(found.warnings[0].contains("/dev/berth-no-such-device skipped"));
    let s = spec(r#"{"image": "x", "devices": ["/dev/berth-no-such-device"]}"#);
    let e = find_devices(&s, &[]).unwrap_err();
    assert_eq!(
        e,
        "device /dev/berth-no-such-device: No such file or directory"
    );
}

#[test]
fn a_privileged_container_gets_the_hosts_nodes_and_every_rule() {
    let s = spec(r#"{"image": "x", "privileged": true, "devices": ["/dev/zero:/dev/null:r"]}"#);
    let found = find_devices(&s, &[]).unwrap();
    let null = found
        .devices
        .iter()
        .filter(|d| d.container_path == Path::new("/dev/null"))
        .collect::<Vec<_>>();
    assert_eq!(null.len(), 1, "the explicit entry wins");
    assert_eq!((null[0].minor, null[0].permissions.as_str()), (5, "r"));
    let rules = cgroup_rules(&s, &found.devices).unwrap();
    assert_eq!(rules, [DeviceRule::ALLOW_ALL]);
}

#[test]
fn rules_files_and_owners_follow_the_permissions_and_the_maps() {
    let s = spec(
        r#"{"image": "x", "devices": ["/dev/zero:/z:r", "/dev/null"],
            "device_cgroup_rules": ["b 7:* rw"]}"#,
    );
    let found = find_devices(&s, &[]).unwrap();
    let rules: Vec<String> = cgroup_rules(&s, &found.devices)
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rules, ["c 1:5 r", "c 1:3 rwm", "b 7:* rw"]);
    let files = landlock_files(&found.devices);
    assert!(files[0].read && !files[0].write && files[1].write);
    let map = |host_id| IdMap {
        container_id: 0,
        host_id,
        size: 10,
    };
    let mut given = found.devices.clone();
    given[0].gid = 6;
    given[1].uid = 4000;
    let userns = UsernsConfig {
        uid_map: vec![map(100_000)],
        gid_map: vec![map(200_000)],
    };
    let made = nodes(&given, Some(&userns));
    assert_eq!((made[0].uid, made[0].gid), (100_000, 200_006));
    assert_eq!(made[1].uid, 100_000, "an unmapped owner becomes root");
    assert_eq!(nodes(&given, None)[0].gid, 6);
    let shown = serde_json::to_value(&given[0]).unwrap();
    assert_eq!(shown["mode"], "0666");
    assert_eq!(shown["type"], "c");
    let back: GivenDevice = serde_json::from_value(shown).unwrap();
    assert_eq!(back, given[0]);
}
