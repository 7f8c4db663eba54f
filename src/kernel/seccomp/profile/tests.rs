//! Unit tests of profile.rs: which profiles parse and which are refused, and why.

use super::*;

fn err(text: &str) -> ProfileError {
    parse_profile(text).expect_err("profile should be refused")
}

/// A profile with default ERRNO and these rules.
fn rules(rules: &str) -> String {
    format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{rules}]}}"#)
}

#[test]
fn unknown_action_names_rule_field_and_position() {
    let text = "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"syscalls\": [\n  {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},\n  {\"names\": [\"write\"], \"action\": \"SCMP_ACT_FOO\"}\n]}";
    let e = err(text);
    assert_eq!((e.line, e.path.as_str()), (4, "syscalls[1].action"));
    let expected = "syscalls[1].action: unknown action \"SCMP_ACT_FOO\"";
    assert_eq!(
        e.to_string(),
        format!("line 4 column {}: {expected}", e.column)
    );
}

#[test]
fn bad_ops_indexes_and_types_are_named() {
    let arg = |a: &str| {
        rules(&format!(
            r#"{{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{a}]}}"#
        ))
    };
    let e = err(&arg(r#"{"index":0,"value":1,"op":"SCMP_CMP_XX"}"#));
    assert_eq!(e.path, "syscalls[0].args[0].op");
    assert!(e.message.contains("unknown op \"SCMP_CMP_XX\""), "{e}");
    let e = err(&arg(r#"{"index":6,"value":1,"op":"SCMP_CMP_EQ"}"#));
    assert_eq!(e.path, "syscalls[0].args[0].index");
    let e = err(&arg(r#"{"index":0,"value":-1,"op":"SCMP_CMP_EQ"}"#));
    assert_eq!(e.path, "syscalls[0].args[0].value");
    let e = err(&arg(
        r#"{"index":0,"value":1,"op":"SCMP_CMP_EQ","valeu":2}"#,
    ));
    assert!(e.message.contains("unknown field `valeu`"), "{e}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = err("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}");
    assert_eq!((e.line, e.path.as_str()), (3, "syscalls[0]"));
    let e = err(r#"{"syscalls": []}"#);
    assert!(e.message.contains("missing field `defaultAction`"), "{e}");
    let e = err(r#"{"defaultAction":"SCMP_ACT_ALLOW"} x"#);
    assert!(e.to_string().starts_with("line 1 column 36: "), "{e}");
}

#[test]
fn rule_and_profile_level_checks() {
    let e = err(&rules(
        r#"{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}"#,
    ));
    assert_eq!(e.path, "syscalls[0]");
    let e = err(&rules(
        r#"{"names":["b"],"action":"SCMP_ACT_ALLOW","errnoRet":3}"#,
    ));
    assert!(e.message.contains("errnoRet"), "{e}");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
    );
    assert!(e.message.contains("archMap"), "{e}");
    let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#);
    assert_eq!(e.path, "defaultErrnoRet");
    let e = err(&rules(r#"{"names":["b"],"action":"SCMP_ACT_NOTIFY"}"#));
    assert!(e.message.contains("unsupported action"), "{e}");
}

#[test]
fn errno_defaults_resolve_and_min_kernel_parses() {
    let p = parse_profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,"listenerPath":"","syscalls":[
         {"name":"a","action":"SCMP_ACT_ERRNO","includes":{"minKernel":"5.10"}},
         {"names":["b"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"excludes":{"minKernel":""}},
         {"names":["c"],"action":"SCMP_ACT_KILL","args":null,"includes":null}]}"#,
    )
    .expect("valid profile");
    assert_eq!(p.default_action, Action::Errno(13));
    assert_eq!(
        (p.rules[0].names.as_slice(), p.rules[0].action),
        (&["a".to_string()][..], Action::Errno(13))
    );
    assert_eq!(p.rules[0].includes.min_kernel, Some((5, 10)));
    assert_eq!(p.rules[1].action, Action::Errno(38));
    assert_eq!(p.rules[1].excludes.min_kernel, None);
    assert_eq!(p.rules[2].action, Action::KillThread);
    for bad in [r#""4""#, r#""4.x""#, r#""0.0""#, "4.8"] {
        let text = rules(&format!(
            r#"{{"names":[],"action":"SCMP_ACT_LOG","includes":{{"minKernel":{bad}}}}}"#
        ));
        assert_eq!(err(&text).path, "syscalls[0].includes.minKernel", "{bad}");
    }
}

#[test]
fn the_docker_default_profile_parses() {
    let p = parse_profile(include_str!("../docker-default.json")).expect("embedded profile");
    assert_eq!(p.default_action, Action::Errno(1));
    assert_eq!((p.rules.len(), p.arch_map.len()), (33, 9));
    assert_eq!(p.rules[20].names, ["clone3"]);
    assert_eq!(p.rules[20].action, Action::Errno(38));
    assert_eq!(p.rules[18].args[0].op, CmpOp::MaskedEq);
}
