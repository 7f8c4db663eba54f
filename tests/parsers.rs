//! Nasty inputs for everything berth parses from outside (spec files,
//! API request lines, image references): each gets a clear error, never a
//! panic or a hang, and the error is the one each input was built for.
//! The fuzz targets in fuzz/ explore the same functions; their seeds and
//! regressions are replayed by tests/fuzz_replay.rs.

use std::path::Path;

use berth::api::protocol::parse_request;
use berth::fetch::reference::Reference;
use berth::supervisor::spec::validate::parse_spec;

/// Each nasty spec with what its first error must say: the field and the
/// reason it was built for, so a case refused for some other reason (a
/// typo in the case, a missing field) fails instead of passing.
fn nasty_json() -> Vec<(Vec<u8>, &'static str)> {
    let many_env = |image: bool| {
        let entries = (0..10_000)
            .map(|i| format!("\"K{i}\": \"v\""))
            .collect::<Vec<_>>()
            .join(",");
        let image = if image { "\"image\": \"x\", " } else { "" };
        format!("{{{image}\"env\": {{{entries}}}}}").into_bytes()
    };
    vec![
        (b"".to_vec(), "1:1: EOF while parsing a value"),
        (b"{".to_vec(), "1:1: EOF while parsing an object"),
        (b"{\"image\":".to_vec(), "image: EOF while parsing a value"),
        (b"{\"image\": \"x\"".to_vec(), "EOF while parsing an object"),
        (b"null".to_vec(), "invalid type: null, expected struct Spec"),
        (b"[]".to_vec(), "invalid length 0, expected struct Spec"),
        (b"\"just a string\"".to_vec(), "invalid type: string \"just a string\""),
        (b"{\"image\": \"x\", \"image\": \"y\"}".to_vec(), "duplicate field `image`"),
        (b"{\"image\": \"x\"} trailing".to_vec(), "1:16: trailing characters"),
        (b"{\"image\": \"\\u0000\"}".to_vec(), "image: repository must be lowercase"),
        (b"{\"image\": \"x\", \"stop_timeout\": 1e999}".to_vec(), "stop_timeout: number out of range"),
        (b"{\"image\": \"x\", \"stop_timeout\": -1}".to_vec(), "stop_timeout: invalid value: integer `-1`"),
        (b"{\"image\": \"x\", \"stop_timeout\": 18446744073709551616}".to_vec(), "stop_timeout: invalid type: floating point"),
        (b"{\"image\": \"x\", \"env\": {\"\": \"\"}}".to_vec(), "env.: names must be non-empty"),
        (b"{\"image\": \"x\", \"env\": {\"A=B\": \"1\"}}".to_vec(), "env.A=B: names must be non-empty without '='"),
        (b"{\"image\": \"x\", \"command\": [\"a\\u0000b\"]}".to_vec(), "command.0: contains a NUL byte"),
        (b"{\"image\": \"x\", \"working_dir\": \"../../etc\"}".to_vec(), "working_dir: must be an absolute path"),
        (b"{\"image\": \"x\", \"user\": \"root:x:y\"}".to_vec(), "user: expected \"name\", \"uid\""),
        (b"{\"image\": \"x\", \"hostname\": \"a.b\"}".to_vec(), "hostname: expected 1-63 letters"),
        (b"{\"image\": \"../../../etc/passwd\"}".to_vec(), "image: invalid registry host"),
        (b"{\"image\": \"\\ud800\"}".to_vec(), "image: unexpected end of hex escape"),
        (b"\xef\xbb\xbf{\"image\": \"x\"}".to_vec(), "1:1: expected value"),
        // Isolation fields: traversal, host-reaching sysctls, overflow.
        (br#"{"image": "x", "mounts": [{"type": "bind", "source": "/srv", "target": "/../etc"}]}"#.to_vec(), "mounts.0.target: must be an absolute path other than / and without \"..\""),
        (br#"{"image": "x", "mounts": [{"type": "bind", "source": "srv/../x", "target": "/d"}]}"#.to_vec(), "mounts.0.source: must be an absolute host path"),
        (br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/proc/kcore"}]}"#.to_vec(), "mounts.0.target: cannot be under /proc or /sys"),
        (br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/"}]}"#.to_vec(), "mounts.0.target: must be an absolute path other than /"),
        (br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/t", "mode": "99999"}]}"#.to_vec(), "mounts.0.mode: expected octal permissions"),
        (br#"{"image": "x", "mounts": [{"type": "bind", "source": "/s", "target": "/d", "propagation": "rshared"}]}"#.to_vec(), "mounts.0.propagation: shared propagation"),
        (br#"{"image": "x", "mounts": [{"type": "volume", "target": "/d"}]}"#.to_vec(), "mounts.0: missing field `name`"),
        (br#"{"image": "x", "sysctls": {"net/../../kernel/panic": "1"}}"#.to_vec(), "sysctls.net/../../kernel/panic: expected a dotted name"),
        (br#"{"image": "x", "sysctls": {"kernel.panic": "1"}}"#.to_vec(), "sysctls.kernel.panic: not a namespaced sysctl"),
        (br#"{"image": "x", "sysctls": {"net.ipv4.ip_forward": "1
2"}}"#.to_vec(), "2:1: sysctls.net.ipv4.ip_forward: control character"),
        (br#"{"image": "x", "shm_size": "0"}"#.to_vec(), "shm_size: expected 4096 to 4611686018427387904 bytes, got 0"),
        (br#"{"image": "x", "shm_size": "-1m"}"#.to_vec(), "shm_size: invalid value: string \"-1m\""),
        (br#"{"image": "x", "shm_size": "99999999999999999999g"}"#.to_vec(), "shm_size: invalid value: string \"99999999999999999999g\""),
        (br#"{"image": "x", "resources": {"memory": "1"}}"#.to_vec(), "resources.memory: expected 6291456 to"),
        (br#"{"image": "x", "resources": {"cpus": 1e308}}"#.to_vec(), "resources.cpus: expected 0.01 to"),
        (br#"{"image": "x", "resources": {"memory_swap": "1g"}}"#.to_vec(), "resources.memory_swap: needs resources.memory"),
        (br#"{"image": "x", "resources": {"cpuset_cpus": "0-"}}"#.to_vec(), "resources.cpuset_cpus: expected a list"),
        (br#"{"image": "x", "capabilities": {"add": ["CAP_../../x"]}}"#.to_vec(), "capabilities.add.0: unknown capability"),
        (br#"{"image": "x", "rlimits": {"nofile": {"soft": 2, "hard": 1}}}"#.to_vec(), "rlimits.nofile: soft limit exceeds hard limit"),
        (br#"{"image": "x", "rlimits": {"nofile": -1}}"#.to_vec(), "rlimits.nofile: data did not match"),
        (br#"{"image": "x", "landlock": {"scope": ["everything"]}}"#.to_vec(), "landlock.scope.0: unknown scope \"everything\""),
        (br#"{"image": "x", "landlock": {"net": {"bind_tcp": [65536]}}}"#.to_vec(), "landlock.net.bind_tcp.0: invalid value: integer `65536`"),
        (br#"{"image": "x", "seccomp": ""}"#.to_vec(), "seccomp: expected \"default\", \"unconfined\" or a profile path"),
        (br#"{"image": "x", "userns": "automatic"}"#.to_vec(), "userns: expected \"auto\""),
        (br#"{"image": "x", "userns": {"uid_map": [], "gid_map": []}}"#.to_vec(), "userns.uid_map: expected 1 to 340 ranges"),
        (br#"{"image": "x", "userns": {"uid_map": [{"container_id": 0, "host_id": 0, "size": 65536}], "gid_map": [{"container_id": 0, "host_id": 1, "size": 65536}]}}"#.to_vec(), "userns.uid_map.0: maps the host's root"),
        (br#"{"image": "x", "userns": {"uid_map": [{"container_id": 0, "host_id": 4294967295, "size": 2}], "gid_map": [{"container_id": 0, "host_id": 1, "size": 65536}]}}"#.to_vec(), "userns.uid_map.0: size must be at least 1 and each range must fit"),
        // Secrets: traversal, hidden and absolute names, modes past 0777,
        // (uid_t)-1, an unknown field, a wrong type.
        (br#"{"image": "x", "secrets": ["../../etc/shadow"]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": [".."]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": [".env"]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": ["/etc/shadow"]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": ["a\u0000b"]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": [""]}"#.to_vec(), "secrets.0.source: expected a file name"),
        (br#"{"image": "x", "secrets": [{"source": "k", "target": "../x"}]}"#.to_vec(), "secrets.0.target: expected a file name"),
        (br#"{"image": "x", "secrets": [{"source": "k", "target": "a/b"}]}"#.to_vec(), "secrets.0.target: expected a file name"),
        (br#"{"image": "x", "secrets": [{"source": "k", "mode": "7777"}]}"#.to_vec(), "secrets.0.mode: expected octal permissions"),
        (br#"{"image": "x", "secrets": [{"source": "k", "mode": "-1"}]}"#.to_vec(), "secrets.0.mode: expected octal permissions"),
        (br#"{"image": "x", "secrets": [{"source": "k", "uid": 4294967295}]}"#.to_vec(), "secrets.0.uid: 4294967295 is (uid_t)-1"),
        (br#"{"image": "x", "secrets": [{"source": "k", "uid": -1}]}"#.to_vec(), "secrets.0.uid: invalid value: integer `-1`"),
        (br#"{"image": "x", "secrets": [{"source": "k", "path": "/etc/shadow"}]}"#.to_vec(), "secrets.0.path: unknown field `path`"),
        (br#"{"image": "x", "secrets": [{"target": "k"}]}"#.to_vec(), "secrets.0: missing field `source`"),
        (br#"{"image": "x", "secrets": "db_password"}"#.to_vec(), "secrets: invalid type: string \"db_password\", expected a sequence"),
        (br#"{"image": "x", "secrets": ["k", "k"]}"#.to_vec(), "secrets.1.target: /run/secrets/k is already secrets.0's target"),
        (br#"{"image": "x", "secrets": ["k"], "mounts": [{"type": "tmpfs", "target": "/run/secrets"}]}"#.to_vec(), "mounts.0.target: is inside /run/secrets"),
        (format!("{{\"image\": \"x\", \"secrets\": [\"{}\"]}}", "k".repeat(256)).into_bytes(), "secrets.0.source: too long: expected 0 to 255 bytes, got 256"),
        // Devices: relative and traversing paths on either side, bad
        // permissions, too many parts, kernel filesystems as targets, bad
        // cgroup rules (type, numbers past 12/20 bits, access letters),
        // privileged with what it would ignore.
        (br#"{"image": "x", "devices": ["dev/ttyUSB0"]}"#.to_vec(), "devices.0: path: must be an absolute host path"),
        (br#"{"image": "x", "devices": ["/dev/../etc/shadow:/dev/x"]}"#.to_vec(), "devices.0: path: must be an absolute host path without \"..\""),
        (br#"{"image": "x", "devices": ["/dev/sda:../../x:rw"]}"#.to_vec(), "devices.0: container path: must be an absolute path"),
        (br#"{"image": "x", "devices": ["/dev/sda:/dev/../proc/x"]}"#.to_vec(), "devices.0: container path: must be an absolute path other than /"),
        (br#"{"image": "x", "devices": ["/dev/sda:/dev/sda:rwx"]}"#.to_vec(), "devices.0: permissions: expected one or more of r, w and m"),
        (br#"{"image": "x", "devices": ["/dev/sda:/dev/sda:rrw"]}"#.to_vec(), "devices.0: permissions: expected one or more of r, w and m, each once"),
        (br#"{"image": "x", "devices": ["/dev/sda:/dev/sda:rw:x"]}"#.to_vec(), "devices.0: expected \"HOST[:CONTAINER[:PERMISSIONS]]\", got 4"),
        (br#"{"image": "x", "devices": [{"path": "/dev/sda", "container_path": "/sys/x"}]}"#.to_vec(), "devices.0.container_path: cannot be under /sys"),
        (br#"{"image": "x", "devices": [{"path": "/dev/sda", "permissions": "\u0000"}]}"#.to_vec(), "devices.0.permissions: expected one or more"),
        (br#"{"image": "x", "devices": [{"container_path": "/dev/sda"}]}"#.to_vec(), "devices.0: missing field `path`"),
        (br#"{"image": "x", "devices": "/dev/sda"}"#.to_vec(), "devices: invalid type: string \"/dev/sda\", expected a sequence"),
        (br#"{"image": "x", "device_cgroup_rules": ["x 1:2 r"]}"#.to_vec(), "device_cgroup_rules.0: type \"x\": expected a, b or c"),
        (br#"{"image": "x", "device_cgroup_rules": ["c 4096:1 r"]}"#.to_vec(), "device_cgroup_rules.0: major: expected 0 to 4095, got 4096"),
        (br#"{"image": "x", "device_cgroup_rules": ["c 1:18446744073709551616 r"]}"#.to_vec(), "device_cgroup_rules.0: minor: expected 0 to 1048575, got a 20-digit number"),
        (br#"{"image": "x", "device_cgroup_rules": ["c -1:* r"]}"#.to_vec(), "device_cgroup_rules.0: major \"-1\": expected a number or *"),
        (br#"{"image": "x", "device_cgroup_rules": ["b 7:* rwx"]}"#.to_vec(), "device_cgroup_rules.0: access \"rwx\": expected one or more of r, w and m"),
        (br#"{"image": "x", "device_cgroup_rules": ["a 7:* rw"]}"#.to_vec(), "device_cgroup_rules.0: type a covers every device"),
        (br#"{"image": "x", "device_cgroup_rules": ["c 1:3"]}"#.to_vec(), "device_cgroup_rules.0: expected \"TYPE MAJOR:MINOR ACCESS\""),
        (br#"{"image": "x", "privileged": "yes"}"#.to_vec(), "privileged: invalid type: string \"yes\", expected a boolean"),
        (br#"{"image": "x", "privileged": true, "userns": "auto"}"#.to_vec(), "privileged: cannot be combined with userns"),
        (b"\xff\xfe\xfd".to_vec(), "1:1: expected value"),
        // Read as a struct given as a sequence: its first element must be
        // the image string; the depth never matters.
        ("[".repeat(100_000).into_bytes(), "0: invalid type: sequence, expected a string"),
        (format!("{{\"image\": \"{}\"}}", "a".repeat(1_000_000)).into_bytes(), "image: too long: expected 0 to 4096 bytes, got 1000000"),
        (many_env(false), "missing field `image`"),
        (many_env(true), "env: too many entries: expected 0 to 4096 entries, got 10000"),
    ]
}

#[test]
fn nasty_spec_files_give_positioned_errors_for_what_is_wrong() {
    for (input, expected) in nasty_json() {
        let text = String::from_utf8_lossy(&input);
        let short = &text[..text.len().min(60)];
        let errors =
            parse_spec(Path::new("nasty.json"), &text).expect_err(&format!("accepted {short:?}"));
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            shown[0].contains(expected),
            "{short:?}: expected {expected:?} in the first error, got {shown:?}"
        );
        for (e, s) in errors.iter().zip(&shown) {
            assert!(s.starts_with("nasty.json:"), "{s}");
            assert!(e.line >= 1 && e.col >= 1, "{s}");
            assert!(e.line <= text.lines().count().max(1) + 1, "{s}");
        }
    }
}

/// None of the nasty documents is a request: JSON that is not an object
/// with "jsonrpc": "2.0" and a method is -32600, anything serde_json
/// itself cannot read is -32700 (decided here by serde_json, not by
/// berth's parser).
#[test]
fn nasty_request_lines_give_the_json_rpc_error_they_deserve() {
    for (input, _) in nasty_json() {
        let short = String::from_utf8_lossy(&input[..input.len().min(60)]).into_owned();
        let expected = match serde_json::from_slice::<serde_json::Value>(&input) {
            Ok(_) => -32600,
            Err(_) => -32700,
        };
        match parse_request(&input) {
            Ok(r) => panic!("{short:?} accepted as a request: {} {}", r.method, r.params),
            Err((id, err)) => {
                assert_eq!(err.code, expected, "{short:?}: {err:?}");
                assert_eq!(id, serde_json::Value::Null, "{short:?}: no id to echo");
            }
        }
    }
}

/// Well-formed but unusual requests: what each one parses to, or the
/// code it is refused with.
#[test]
fn edge_requests_parse_to_exactly_what_they_say() {
    use serde_json::{Value, json};
    let huge_params = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"list\",\"params\":[{}]}}",
        "0,".repeat(100_000) + "0"
    );
    let req = parse_request(huge_params.as_bytes()).expect("a long params list is a request");
    assert_eq!((req.id, req.method.as_str()), (Some(json!(1)), "list"));
    let params = req.params.as_array().expect("params stay an array");
    assert!(params.len() == 100_001 && params.iter().all(|p| *p == json!(0)));

    let ok: &[(&str, Option<Value>, &str, Value)] = &[
        (
            r#"{"jsonrpc":"2.0","method":"list"}"#,
            None,
            "list",
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"list"}"#,
            Some(Value::Null),
            "list",
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":"a\u0000b","method":"ps","params":{}}"#,
            Some(json!("a\0b")),
            "ps",
            json!({}),
        ),
        (
            r#"{"params":{"k":[1]},"method":"x","id":-7,"jsonrpc":"2.0"}"#,
            Some(json!(-7)),
            "x",
            json!({"k": [1]}),
        ),
    ];
    for (line, id, method, params) in ok {
        let r = parse_request(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(
            (&r.id, r.method.as_str(), &r.params),
            (id, *method, params),
            "{line}"
        );
    }
    let refused: &[(&str, i64)] = &[
        (r#"{"jsonrpc":"1.0","id":1,"method":"list"}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"list"}"#, -32600),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"list","params":"x"}"#,
            -32600,
        ),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"list"}]"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"list"} {"#, -32700),
    ];
    for (line, code) in refused {
        match parse_request(line.as_bytes()) {
            Ok(r) => panic!("{line} accepted: {} {}", r.method, r.params),
            Err((_, err)) => assert_eq!(err.code, *code, "{line}: {err:?}"),
        }
    }
}

#[test]
fn nasty_references_are_refused() {
    let long = "a/".repeat(300) + "b";
    for bad in [
        "",
        ":",
        "@",
        "/",
        "a:",
        "a@",
        "a@sha256:",
        "a:b:c",
        "../x",
        "a/../b",
        "x y",
        "a\0b",
        "A",
        "a//b",
        "-a",
        "a-",
        ".a",
        "a.",
        "host:/x",
        "a:tag@sha256:zz",
        &long,
    ] {
        assert!(Reference::parse(bad).is_err(), "accepted {bad:?}");
    }
}
