//! Nasty inputs for everything berth parses from outside (spec files,
//! API request lines, image references): each gets a clear error, never a
//! panic or a hang. The fuzz targets in fuzz/ explore the same functions.

use std::path::Path;

use berth::api::protocol::parse_request;
use berth::fetch::reference::Reference;
use berth::supervisor::spec::validate::parse_spec;

fn nasty_json() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"{\"image\":".to_vec(),
        b"{\"image\": \"x\"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"{\"image\": \"x\", \"image\": \"y\"}".to_vec(),
        b"{\"image\": \"x\"} trailing".to_vec(),
        b"{\"image\": \"\\u0000\"}".to_vec(),
        b"{\"image\": \"x\", \"stop_timeout\": 1e999}".to_vec(),
        b"{\"image\": \"x\", \"stop_timeout\": -1}".to_vec(),
        b"{\"image\": \"x\", \"stop_timeout\": 18446744073709551616}".to_vec(),
        b"{\"image\": \"x\", \"env\": {\"\": \"\"}}".to_vec(),
        b"{\"image\": \"x\", \"env\": {\"A=B\": \"1\"}}".to_vec(),
        b"{\"image\": \"x\", \"command\": [\"a\\u0000b\"]}".to_vec(),
        b"{\"image\": \"x\", \"working_dir\": \"../../etc\"}".to_vec(),
        b"{\"image\": \"x\", \"user\": \"root:x:y\"}".to_vec(),
        b"{\"image\": \"x\", \"hostname\": \"a.b\"}".to_vec(),
        b"{\"image\": \"../../../etc/passwd\"}".to_vec(),
        b"{\"image\": \"\\ud800\"}".to_vec(),
        b"\xef\xbb\xbf{\"image\": \"x\"}".to_vec(),
        // Isolation fields: traversal, host-reaching sysctls, overflow.
        br#"{"image": "x", "mounts": [{"type": "bind", "source": "/srv", "target": "/../etc"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "bind", "source": "srv/../x", "target": "/d"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/proc/kcore"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "tmpfs", "target": "/t", "mode": "99999"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "bind", "source": "/s", "target": "/d", "propagation": "rshared"}]}"#.to_vec(),
        br#"{"image": "x", "mounts": [{"type": "volume", "target": "/d"}]}"#.to_vec(),
        br#"{"image": "x", "sysctls": {"net/../../kernel/panic": "1"}}"#.to_vec(),
        br#"{"image": "x", "sysctls": {"kernel.panic": "1"}}"#.to_vec(),
        br#"{"image": "x", "sysctls": {"net.ipv4.ip_forward": "1
2"}}"#.to_vec(),
        br#"{"image": "x", "shm_size": "0"}"#.to_vec(),
        br#"{"image": "x", "shm_size": "-1m"}"#.to_vec(),
        br#"{"image": "x", "shm_size": "99999999999999999999g"}"#.to_vec(),
        br#"{"image": "x", "resources": {"memory": "1"}}"#.to_vec(),
        br#"{"image": "x", "resources": {"cpus": 1e308}}"#.to_vec(),
        br#"{"image": "x", "resources": {"memory_swap": "1g"}}"#.to_vec(),
        br#"{"image": "x", "resources": {"cpuset_cpus": "0-"}}"#.to_vec(),
        br#"{"image": "x", "capabilities": {"add": ["CAP_../../x"]}}"#.to_vec(),
        br#"{"image": "x", "rlimits": {"nofile": {"soft": 2, "hard": 1}}}"#.to_vec(),
        br#"{"image": "x", "rlimits": {"nofile": -1}}"#.to_vec(),
        br#"{"image": "x", "landlock": {"scope": ["everything"]}}"#.to_vec(),
        br#"{"image": "x", "landlock": {"net": {"bind_tcp": [65536]}}}"#.to_vec(),
        br#"{"image": "x", "seccomp": ""}"#.to_vec(),
        br#"{"image": "x", "userns": "automatic"}"#.to_vec(),
        br#"{"image": "x", "userns": {"uid_map": [], "gid_map": []}}"#.to_vec(),
        br#"{"image": "x", "userns": {"uid_map": [{"container_id": 0, "host_id": 0, "size": 65536}], "gid_map": [{"container_id": 0, "host_id": 1, "size": 65536}]}}"#.to_vec(),
        br#"{"image": "x", "userns": {"uid_map": [{"container_id": 0, "host_id": 4294967295, "size": 2}], "gid_map": [{"container_id": 0, "host_id": 1, "size": 65536}]}}"#.to_vec(),
        // Secrets: traversal, hidden and absolute names, modes past 0777,
        // (uid_t)-1, an unknown field, a wrong type.
        br#"{"image": "x", "secrets": ["../../etc/shadow"]}"#.to_vec(),
        br#"{"image": "x", "secrets": [".."]}"#.to_vec(),
        br#"{"image": "x", "secrets": [".env"]}"#.to_vec(),
        br#"{"image": "x", "secrets": ["/etc/shadow"]}"#.to_vec(),
        br#"{"image": "x", "secrets": ["a\u0000b"]}"#.to_vec(),
        br#"{"image": "x", "secrets": [""]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "target": "../x"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "target": "a/b"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "mode": "7777"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "mode": "-1"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "uid": 4294967295}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "uid": -1}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"source": "k", "path": "/etc/shadow"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": [{"target": "k"}]}"#.to_vec(),
        br#"{"image": "x", "secrets": "db_password"}"#.to_vec(),
        br#"{"image": "x", "secrets": ["k", "k"]}"#.to_vec(),
        br#"{"image": "x", "secrets": ["k"], "mounts": [{"type": "tmpfs", "target": "/run/secrets"}]}"#.to_vec(),
        format!("{{\"image\": \"x\", \"secrets\": [\"{}\"]}}", "k".repeat(256)).into_bytes(),
        b"\xff\xfe\xfd".to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!("{{\"image\": \"{}\"}}", "a".repeat(1_000_000)).into_bytes(),
        format!(
            "{{\"env\": {{{}}}}}",
            (0..10_000)
                .map(|i| format!("\"K{i}\": \"v\""))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes(),
    ]
}

#[test]
fn nasty_spec_files_give_positioned_errors() {
    for input in nasty_json() {
        let text = String::from_utf8_lossy(&input);
        let errors = parse_spec(Path::new("nasty.json"), &text)
            .expect_err(&format!("accepted {:?}", &text[..text.len().min(60)]));
        for e in errors {
            let shown = e.to_string();
            assert!(shown.starts_with("nasty.json:"), "{shown}");
            assert!(e.line >= 1 && e.col >= 1);
        }
    }
}

#[test]
fn nasty_request_lines_give_json_rpc_errors() {
    for input in nasty_json() {
        if let Err((_, err)) = parse_request(&input) {
            assert!([-32700, -32600].contains(&err.code), "{err:?}");
        }
    }
    let huge_params = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"list\",\"params\":[{}]}}",
        "0,".repeat(100_000) + "0"
    );
    assert!(parse_request(huge_params.as_bytes()).is_ok());
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

/// Inputs the fuzzers once broke, kept so the bugs stay fixed.
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(entry.path()).unwrap();
        let text = String::from_utf8_lossy(&data);
        if name.starts_with("image_reference") {
            // The fuzz target's property: a parsed reference prints to a
            // string that parses back to itself.
            if let Ok(r) = Reference::parse(&text) {
                assert_eq!(Reference::parse(&r.to_string()).as_ref(), Ok(&r), "{name}");
            }
        }
    }
}
