use super::*;

const JSON: &str = r#"{
  "cdiVersion": "0.7.0",
  "kind": "vendor.com/dev",
  "devices": [
    {"name": "a", "containerEdits": {
      "deviceNodes": [{"path": "/dev/vdev-a", "hostPath": "/dev/null"}],
      "env": ["A=1"],
      "mounts": [{"hostPath": "/etc/hostname", "containerPath": "/opt/a", "options": ["ro", "bind"]}]
    }}
  ],
  "containerEdits": {"env": ["COMMON=yes"], "additionalGids": [44]}
}"#;

const YAML: &str = "cdiVersion: 1.1.0
kind: vendor.com/dev
devices:
  - name: a
    containerEdits:
      deviceNodes:
        - path: /dev/vdev-a
          type: c
          major: 1
          minor: 3
      hooks:
        - hookName: createRuntime
          path: /bin/true
          timeout: 5
";

fn err(text: &str, yaml: bool) -> CdiFileError {
    parse_spec(text.as_bytes(), yaml).unwrap_err()
}

#[test]
fn json_and_yaml_specs_parse() {
    let s = parse_spec(JSON.as_bytes(), false).unwrap();
    assert_eq!(s.kind, "vendor.com/dev");
    assert_eq!(s.devices[0].container_edits.mounts().len(), 1);
    let y = parse_spec(YAML.as_bytes(), true).unwrap();
    assert_eq!(
        y.devices[0].container_edits.device_nodes()[0].major,
        Some(1)
    );
}

#[test]
fn errors_name_the_field_and_where() {
    let e = err(&JSON.replace("0.7.0", "0.9.0"), false);
    assert_eq!(e.field.as_deref(), Some("cdiVersion"));
    assert_eq!(e.at, Some((2, 3)), "{e}");
    let e = err(&JSON.replace("vendor.com/dev", "vendor.com"), false);
    assert_eq!(e.field.as_deref(), Some("kind"), "{e}");
    let e = err(
        &JSON.replace("\"env\": [\"A=1\"]", "\"env\": [\"A=1\"], \"bogus\": 1"),
        false,
    );
    assert!(e.to_string().contains("bogus"), "{e}");
    assert_eq!(
        e.field.as_deref(),
        Some("devices.0.containerEdits.bogus"),
        "{e}"
    );
    let e = err(&JSON.replace("\"kind\": \"vendor.com/dev\",", ""), false);
    assert!(e.message.contains("kind"), "{e}");
    let e = err(&YAML.replace("kind:", "knd:"), true);
    assert!(e.to_string().contains("knd"), "{e}");
    assert!(e.at.is_some(), "{e}");
    let e = err(&YAML.replace("path: /bin/true", "path: bin/true"), true);
    assert_eq!(
        e.field.as_deref(),
        Some("devices.0.containerEdits.hooks.0.path")
    );
}

#[test]
fn fields_newer_than_the_version_are_refused() {
    let e = err(&JSON.replace("0.7.0", "0.6.0"), false);
    assert!(
        e.message.contains("additionalGids needs cdiVersion 0.7.0"),
        "{e}"
    );
    let e = err(&JSON.replace("0.7.0", "0.4.0"), false);
    assert!(e.message.contains("hostPath"), "{e}");
    assert!(parse_spec(JSON.replace("0.7.0", "v1.1.0").as_bytes(), false).is_ok());
}

#[test]
fn paths_must_be_absolute_and_clean() {
    for (from, to, field) in [
        ("/opt/a", "opt/a", "containerPath"),
        ("/opt/a", "/opt/../etc", "containerPath"),
        ("/etc/hostname", "../etc/hostname", "hostPath"),
        ("/opt/a", "/", "containerPath"),
        ("\"/dev/vdev-a\"", "\"/proc/x\"", "path"),
        ("\"/dev/vdev-a\"", "\"/sys/kernel\"", "path"),
        ("\"/dev/null\"", "\"dev/null\"", "hostPath"),
    ] {
        let e = err(&JSON.replace(from, to), false);
        assert!(
            e.field.as_deref().is_some_and(|f| f.ends_with(field)),
            "{to}: {e}"
        );
    }
}

#[test]
fn nasty_inputs_fail_cleanly() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_spec(deep_json.as_bytes(), false).is_err());
    let deep_yaml = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_spec(deep_yaml.as_bytes(), true).is_err());
    let laughs = billion_laughs();
    let started = std::time::Instant::now();
    let e = err(&laughs, true);
    assert!(started.elapsed().as_secs() < 5, "{e}");
    assert!(
        e.message.contains("alias") || e.message.contains("budget"),
        "{e}"
    );
    for n in [0, 1, 10, JSON.len() / 2, JSON.len() - 1] {
        assert!(parse_spec(&JSON.as_bytes()[..n], false).is_err(), "{n}");
    }
    for n in [0, 7, YAML.len() / 2] {
        let _ = parse_spec(&YAML.as_bytes()[..n], true);
    }
    assert!(parse_spec(b"\xff\xfe", false).is_err());
    let huge = JSON.replace("\"A=1\"", &format!("\"A={}\"", "x".repeat(10_000)));
    assert_eq!(
        err(&huge, false).field.as_deref(),
        Some("devices.0.containerEdits.env.0")
    );
    let many = format!("[{}]", vec!["\"A=1\""; 2000].join(","));
    let e = err(&JSON.replace("[\"A=1\"]", &many), false);
    assert!(e.message.contains("more than"), "{e}");
    let big_major = JSON.replace(
        "\"hostPath\": \"/dev/null\"",
        "\"type\": \"c\", \"major\": 99999999999, \"minor\": 1",
    );
    assert!(
        err(&big_major, false).message.contains("major") || err(&big_major, false).field.is_some()
    );
}

/// Nine levels of nine aliases under a field the decoder reads in full
/// (intelRdt is skipped value by value): 9^9 strings if expanded.
fn billion_laughs() -> String {
    let mut y =
        String::from("cdiVersion: 0.7.0\nkind: vendor.com/dev\ncontainerEdits:\n  intelRdt:\n");
    y.push_str("    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        y.push_str(&format!("    {}: &{} [{refs}]\n", w[1], w[1]));
    }
    y.push_str("devices:\n  - name: a\n    containerEdits:\n      intelRdt: *i\n");
    y
}

#[test]
fn file_reads_are_bounded_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; (MAX_SPEC_FILE_BYTES + 1) as usize]).unwrap();
    let e = read_spec_file(&big).unwrap_err();
    assert!(e.to_string().starts_with(&big.display().to_string()), "{e}");
    assert!(e.message.contains("larger"), "{e}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "cdiVersion: 0.3.0\n").unwrap();
    let e = read_spec_file(&bad).unwrap_err();
    assert_eq!(e.file, bad);
    assert!(is_spec_file(&bad) && !is_spec_file(&dir.path().join("x.yml.bak")));
}
