use std::path::Path;

use super::DeviceSpec;
use crate::supervisor::spec::validate::parse_spec;

fn errors(fields: &str) -> Vec<String> {
    let text = format!("{{\"image\": \"x\", {fields}}}");
    match parse_spec(Path::new("d.json"), &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn device(text: &str) -> (String, String, String) {
    let d = DeviceSpec::parse_short(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (d.path, d.container_path, d.permissions)
}

#[test]
fn the_short_form_reads_as_dockers_does() {
    let own = |p: &str, c: &str, m: &str| (p.to_string(), c.to_string(), m.to_string());
    assert_eq!(
        device("/dev/ttyUSB0"),
        own("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm")
    );
    assert_eq!(device("/dev/sda:r"), own("/dev/sda", "/dev/sda", "r"));
    assert_eq!(
        device("/dev/serial/by-id/usb-FTDI_X-if00:/dev/modem:rw"),
        own("/dev/serial/by-id/usb-FTDI_X-if00", "/dev/modem", "rw")
    );
    assert_eq!(device("/dev/a:/dev/b"), own("/dev/a", "/dev/b", "rwm"));
    assert!(DeviceSpec::parse_short("/a:/b:r:x").is_err());
}

#[test]
fn both_forms_parse_with_defaults_and_inspect_shows_the_long_one() {
    let text = r#"{"image": "x", "devices": ["/dev/null:/dev/n:r",
        {"path": "/dev/zero"}, {"path": "/dev/snd", "container_path": "/dev/sound",
         "permissions": "rw", "optional": true}],
        "device_cgroup_rules": ["c 116:* rwm", "b 7:* rw"], "privileged": false}"#;
    let spec = parse_spec(Path::new("d.json"), text).unwrap();
    let d = &spec.devices;
    assert!(d[0].short && !d[1].short);
    assert_eq!(
        (d[1].container_path.as_str(), d[1].permissions.as_str()),
        ("/dev/zero", "rwm")
    );
    assert!(d[2].optional && !d[1].optional);
    let shown = serde_json::to_value(&d[0]).unwrap();
    assert_eq!(
        shown,
        serde_json::json!({"path": "/dev/null", "container_path": "/dev/n",
                           "permissions": "r", "optional": false})
    );
}

#[test]
fn bad_entries_are_named_at_their_field() {
    let cases = [
        (
            r#""devices": ["dev/ttyUSB0"]"#,
            "devices.0: path: must be an absolute host path",
        ),
        (
            r#""devices": ["/dev/../etc/shadow"]"#,
            "devices.0: path: must be an absolute host path",
        ),
        (
            r#""devices": ["/dev/x:modem"]"#,
            "devices.0: container path: must be an absolute path",
        ),
        (
            r#""devices": ["/dev/x:/dev/../../etc/x"]"#,
            "devices.0: container path: must be an absolute path",
        ),
        (
            r#""devices": ["/dev/x:/:r"]"#,
            "devices.0: container path: must be an absolute path other than /",
        ),
        (
            r#""devices": ["/dev/x:/dev/y:rwx"]"#,
            "devices.0: permissions: expected one or more of r, w and m",
        ),
        (
            r#""devices": [{"path": "/dev/x", "container_path": "/proc/x"}]"#,
            "devices.0.container_path: cannot be under /proc",
        ),
        (
            r#""devices": [{"path": "/dev/x", "container_path": "/dev/pts/9"}]"#,
            "devices.0.container_path: cannot be under /dev/pts",
        ),
        (
            r#""devices": [{"path": "/dev/x", "permissions": ""}]"#,
            "devices.0.permissions: expected one or more",
        ),
        (
            r#""devices": ["/dev/x", "/dev/y:/dev/x"]"#,
            "devices.1: container path: is already devices.0's container path",
        ),
        (
            r#""devices": [{"path": "/dev/x", "mode": "rw"}]"#,
            "devices.0.mode: unknown field `mode`",
        ),
        (
            r#""devices": ["/a:/b:r:x"]"#,
            "devices.0: expected \"HOST[:CONTAINER[:PERMISSIONS]]\", got 4",
        ),
        (
            r#""devices": [7]"#,
            "devices.0: invalid type: integer `7`, expected \"HOST",
        ),
        (
            r#""device_cgroup_rules": ["c 1:3 rw", "z 1:3 rw"]"#,
            "device_cgroup_rules.1: type \"z\": expected a, b or c",
        ),
    ];
    for (fields, want) in cases {
        let e = errors(fields);
        assert!(e.iter().any(|e| e.contains(want)), "{fields}: {e:#?}");
    }
    let e = errors("\"devices\": [\"/dev/x\",\n  \"rel\"]");
    assert!(
        e[0].starts_with("d.json:2:3: devices.1: path:"),
        "a short entry's problem points at it: {e:?}"
    );
}

#[test]
fn privileged_refuses_what_it_would_ignore() {
    assert_eq!(
        errors(r#""privileged": true, "read_only": true, "seccomp": "unconfined""#),
        Vec::<String>::new()
    );
    let cases = [
        (
            r#""userns": "auto""#,
            "privileged: cannot be combined with userns",
        ),
        (
            r#""capabilities": {"drop": ["NET_RAW"]}"#,
            "capabilities.drop: a privileged container has every capability",
        ),
        (
            r#""seccomp": "p.json""#,
            "seccomp: a privileged container has no seccomp",
        ),
        (
            r#""landlock": {"scope": []}"#,
            "landlock: a privileged container has no Landlock",
        ),
    ];
    for (extra, want) in cases {
        let e = errors(&format!("\"privileged\": true, {extra}"));
        assert!(e.iter().any(|e| e.contains(want)), "{extra}: {e:#?}");
    }
    assert_eq!(
        errors(r#""privileged": true, "landlock": {"enabled": false}"#),
        Vec::<String>::new()
    );
}
