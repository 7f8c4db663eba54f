//! No value can panic or wedge berth: every field of every spec, berth.json
//! and API request type gets the extremes (0, -1, u64::MAX, 1e300, 1e999,
//! "NaN", 1 MiB strings, 20 000-entry lists and maps, 5000-deep nesting),
//! generated from fully-populated examples, and must be either accepted or
//! refused with an error naming the field, quickly. A field missing from
//! an example fails the completeness tests, so new fields cannot dodge it.
//! tests/bounds_daemon.rs runs a real daemon on the accepted maxima.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use berth::api::params::MethodParams;
use berth::supervisor::spec::settings::parse_settings;
use berth::supervisor::spec::validate::parse_spec;
use common::examples::{
    Verdict, api_params, check_api_text, check_settings_text, check_spec_text, settings, spec,
};
use common::extremes::{Path as JsonPath, key_shapes, node_paths, variants};

/// Far above any honest parse of a 1 MiB document, far below a wedge.
const MAX_CHECK_TIME: Duration = Duration::from_secs(5);

/// Every field the parsed value serializes must be in the example: a new
/// field (serialized with its default) shows up here until the example
/// has it too.
fn assert_example_complete(example: &Value, parsed: &Value, what: &str) {
    let have = key_shapes(example);
    let missing: Vec<String> = key_shapes(parsed).difference(&have).cloned().collect();
    assert!(
        missing.is_empty(),
        "the {what} example lacks {missing:?}: add them to tests/common/examples.rs"
    );
}

#[test]
fn the_spec_example_has_every_field() {
    let example = spec();
    let parsed = parse_spec(Path::new("example.json"), &example.to_string())
        .unwrap_or_else(|e| panic!("the example must be valid: {e:?}"));
    let parsed = serde_json::to_value(&parsed).expect("a spec serializes");
    assert_example_complete(&example, &parsed, "spec");
}

#[test]
fn the_settings_example_has_every_field() {
    let example = settings();
    let parsed = parse_settings(Path::new("berth.json"), &example.to_string())
        .unwrap_or_else(|e| panic!("the example must be valid: {e:?}"));
    let parsed = serde_json::to_value(&parsed).expect("settings serialize");
    assert_example_complete(&example, &parsed, "berth.json");
}

#[test]
fn the_api_examples_have_every_param() {
    for (method, example) in api_params() {
        let parsed = MethodParams::parse(method, example.clone())
            .unwrap_or_else(|e| panic!("{method}: the example must be valid: {e:?}"));
        let parsed = serde_json::to_value(&parsed).expect("params serialize");
        let parsed = if parsed.is_null() {
            serde_json::json!({})
        } else {
            parsed
        };
        assert_example_complete(&example, &parsed, method);
    }
}

/// Whether `verdict` names the field at `path` (or its parent or child:
/// a tagged enum is reported at the element, a bad list at its entry).
fn names_field(verdict: &[(Option<String>, String)], path: &JsonPath, prefix: &str) -> bool {
    let dotted = format!("{prefix}{}", path.join("."));
    let related = |f: &str| {
        f == dotted || f.starts_with(&format!("{dotted}.")) || dotted.starts_with(&format!("{f}."))
    };
    verdict.iter().any(|(field, message)| match field {
        Some(f) => related(f),
        // API errors carry the param in the message: "invalid params: P: …".
        None => message
            .strip_prefix("invalid params: ")
            .and_then(|m| m.split(": ").next())
            .is_some_and(related),
    })
}

/// Runs every extreme at every node of `doc` through `check`; returns one
/// line per variant that was refused without naming its field, or was
/// slow. `may_be_unnamed` says which refusals cannot name a field (a line
/// that is not JSON at all).
fn sweep(
    doc: &Value,
    prefix: &str,
    check: impl Fn(&str) -> Verdict,
    may_be_unnamed: impl Fn(&[(Option<String>, String)]) -> bool,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut accepted = 0;
    for path in node_paths(doc) {
        for v in variants(doc, &path) {
            let started = Instant::now();
            let verdict = check(&v.text);
            let took = started.elapsed();
            let at = format!("{prefix}{} = {}", path.join("."), v.extreme);
            if took > MAX_CHECK_TIME {
                failures.push(format!("{at}: took {took:?}"));
            }
            match verdict {
                Ok(()) => accepted += 1,
                Err(errors) if names_field(&errors, &path, prefix) => {}
                Err(errors) if may_be_unnamed(&errors) => {}
                Err(errors) => failures.push(format!("{at}: not named in {:?}", first(&errors))),
            }
        }
    }
    (failures, accepted)
}

fn first(errors: &[(Option<String>, String)]) -> String {
    errors
        .first()
        .map(|(_, m)| m.chars().take(300).collect())
        .unwrap_or_default()
}

#[test]
fn every_spec_field_survives_the_extremes() {
    let (failures, accepted) = sweep(&spec(), "", check_spec_text, |_| false);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("spec: {accepted} extreme variants accepted, the rest refused by field");
}

#[test]
fn every_settings_field_survives_the_extremes() {
    let (failures, accepted) = sweep(&settings(), "", check_settings_text, |_| false);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("berth.json: {accepted} extreme variants accepted");
}

#[test]
fn every_api_param_survives_the_extremes() {
    let mut all = Vec::new();
    for (method, example) in api_params() {
        let check = |text: &str| check_api_text(method, text);
        // A line that is not JSON (1e999, nesting past serde's limit) or
        // longer than 1 MiB is refused as a whole, before any param is read.
        let unparsable = |e: &[(Option<String>, String)]| {
            e.iter()
                .any(|(_, m)| m.starts_with("parse error:") || m == "request line too long")
        };
        let (failures, _) = sweep(&example, "", check, unparsable);
        all.extend(failures.into_iter().map(|f| format!("{method}: {f}")));
    }
    assert!(
        all.is_empty(),
        "{} problems:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn the_issue_value_is_refused_with_its_range() {
    let text = r#"{"image": "busybox", "stop_timeout": 18446744073709551615}"#;
    let errors = check_spec_text(text).unwrap_err();
    assert!(
        errors[0]
            .1
            .contains("bounds.json:1:22: stop_timeout: expected 0 to 86400 seconds"),
        "{errors:?}"
    );
}
