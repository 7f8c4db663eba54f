//! Parsing and checking one spec file. Every problem comes back as a
//! `SpecError` naming file:line:col and the field, whether serde found it
//! (syntax, unknown field, wrong type) or a semantic check did.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::fetch::reference::Reference;
use crate::kernel::signal::parse_signal;
use crate::supervisor::spec::bounds::MAX_REPORTED_PROBLEMS;
use crate::supervisor::spec::position::locate;
use crate::supervisor::spec::validate_hardening::check_hardening;
use crate::supervisor::spec::{RestartPolicy, Spec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// Parses and validates `text`, the content of `file`.
pub fn parse_spec(file: &Path, text: &str) -> Result<Spec, Vec<SpecError>> {
    parse_checked(file, text, check_spec)
}

/// Parses a JSON config file into `T` (unknown fields, wrong types and
/// syntax errors with file:line:col and the field), then runs the semantic
/// `check`, whose problems are located in the text the same way.
pub fn parse_checked<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
    check: impl FnOnce(&T) -> Vec<Problem>,
) -> Result<T, Vec<SpecError>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(|e| vec![serde_error(file, text, &e)])?;
    de.end().map_err(|e| vec![json_error(file, &e, None)])?;
    let problems = check(&value);
    if problems.is_empty() {
        return Ok(value);
    }
    let total = problems.len();
    let mut errors: Vec<SpecError> = problems
        .into_iter()
        .take(MAX_REPORTED_PROBLEMS)
        .map(|(path, message)| {
            let steps: Vec<&str> = path.iter().map(String::as_str).collect();
            let (line, col) = locate(text, &steps).unwrap_or((1, 1));
            SpecError {
                file: file.to_path_buf(),
                line,
                col,
                field: Some(path.join(".")),
                message,
            }
        })
        .collect();
    // Locating each problem scans the text: past the cap, one summary.
    if total > MAX_REPORTED_PROBLEMS {
        errors.push(SpecError {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            field: None,
            message: format!("{} more problems not shown", total - MAX_REPORTED_PROBLEMS),
        });
    }
    Err(errors)
}

fn serde_error(
    file: &Path,
    text: &str,
    e: &serde_path_to_error::Error<serde_json::Error>,
) -> SpecError {
    // "?" stands for a key serde never finished reading.
    let path = dotted_path(e.path());
    let path = path.trim_end_matches("?").trim_end_matches('.');
    let field = (!path.is_empty()).then(|| path.to_string());
    let mut err = json_error(file, e.inner(), field.clone());
    // For a wrong type or an unknown field, serde reports where it stopped
    // reading; the start of the offending key is what a reader looks for.
    if e.inner().classify() == serde_json::error::Category::Data {
        let steps: Vec<&str> = field
            .as_deref()
            .map(|f| f.split('.').collect())
            .unwrap_or_default();
        if let Some((line, col)) = locate(text, &steps) {
            (err.line, err.col) = (line, col);
        }
    }
    err
}

/// A serde path as the semantic checks write theirs (`mounts.0.size`,
/// not `mounts[0].size`), so every error names a field the same way.
pub fn dotted_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let steps: Vec<String> = path
        .iter()
        .map(|s| match s {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.clone(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => "?".into(),
        })
        .collect();
    steps.join(".")
}

fn json_error(file: &Path, e: &serde_json::Error, field: Option<String>) -> SpecError {
    // serde_json appends " at line L column C"; we print that up front.
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    SpecError {
        file: file.to_path_buf(),
        line: e.line().max(1),
        col: e.column().max(1),
        field,
        message,
    }
}

pub type Problem = (Vec<String>, String);

pub fn problem(path: &[&str], message: impl Into<String>) -> Problem {
    (path.iter().map(|s| s.to_string()).collect(), message.into())
}

/// Semantic checks serde cannot express, in the order they are reported.
pub fn check_spec(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    // Sizes first: the API reports only the first problem, and a value out
    // of range explains the cross-field complaints it causes.
    crate::supervisor::spec::validate_bounds::check_spec_bounds(spec, &mut out);
    check_process(spec, &mut out);
    check_restart_and_stop(spec, &mut out);
    check_hardening(spec, &mut out);
    out.extend(crate::supervisor::spec::logging::check_logging(
        &spec.logging,
    ));
    check_network(spec, &mut out);
    out.extend(crate::supervisor::spec::hooks::check_hooks(&spec.hooks));
    out.extend(crate::supervisor::spec::wait_for::check_wait_for(
        &spec.wait_for,
    ));
    out.extend(crate::supervisor::spec::secrets::check_secrets(spec));
    out.extend(crate::supervisor::spec::devices::check_devices(spec));
    if let Some(hc) = &spec.healthcheck
        && hc.command.first().is_none_or(|c| c.is_empty())
    {
        out.push(problem(
            &["healthcheck", "command"],
            "must name a program to run",
        ));
    }
    out
}

/// What runs: the image, its argv, environment, working directory, user
/// and hostname.
fn check_process(spec: &Spec, out: &mut Vec<Problem>) {
    if let Err(e) = Reference::parse(&spec.image) {
        out.push(problem(&["image"], e.reason));
    }
    for (field, argv) in [("command", &spec.command), ("entrypoint", &spec.entrypoint)] {
        match argv {
            Some(v) if v.is_empty() || v[0].is_empty() => {
                out.push(problem(&[field], "must name a program to run"))
            }
            Some(v) => {
                if let Some(i) = v.iter().position(|a| a.contains('\0')) {
                    out.push(problem(&[field, &i.to_string()], "contains a NUL byte"));
                }
            }
            None => {}
        }
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            out.push(problem(
                &["env", key],
                "names must be non-empty without '=' or NUL; values without NUL",
            ));
        }
    }
    if let Some(dir) = &spec.working_dir
        && (!dir.starts_with('/') || dir.contains('\0'))
    {
        out.push(problem(&["working_dir"], "must be an absolute path"));
    }
    check_user_and_hostname(spec, out);
}

fn check_user_and_hostname(spec: &Spec, out: &mut Vec<Problem>) {
    if let Some(user) = &spec.user
        && !valid_user(user)
    {
        out.push(problem(
            &["user"],
            "expected \"name\", \"uid\", \"name:group\" or \"uid:gid\"",
        ));
    }
    if let Some(h) = &spec.hostname
        && !valid_hostname(h)
    {
        out.push(problem(
            &["hostname"],
            "expected 1-63 letters, digits and '-', not starting or ending with '-'",
        ));
    }
}

fn check_restart_and_stop(spec: &Spec, out: &mut Vec<Problem>) {
    if spec.restart.max_retries.is_some() && spec.restart.policy != RestartPolicy::OnFailure {
        out.push(problem(
            &["restart", "max_retries"],
            "only applies with policy \"on-failure\"",
        ));
    }
    if let Some(sig) = &spec.stop_signal
        && parse_signal(sig).is_none()
    {
        out.push(problem(&["stop_signal"], format!("unknown signal {sig:?}")));
    }
}

fn check_network(spec: &Spec, out: &mut Vec<Problem>) {
    use crate::supervisor::spec::service::NetworkMode;
    if spec.network == NetworkMode::Host && spec.userns.is_some() {
        out.push(problem(
            &["network"],
            "\"host\" cannot be combined with userns (the host's network belongs to the host's user namespace)",
        ));
    }
    if !spec.ports.is_empty() && spec.network != NetworkMode::Cni {
        out.push(problem(
            &["ports"],
            "publishing ports needs \"network\": \"cni\"",
        ));
    }
    for (i, p) in spec.ports.iter().enumerate() {
        let at = |f: &str| vec!["ports".to_string(), i.to_string(), f.to_string()];
        if !matches!(p.protocol.as_str(), "tcp" | "udp") {
            out.push((at("protocol"), "expected \"tcp\" or \"udp\"".into()));
        }
        if p.host_ip
            .as_deref()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_err())
        {
            out.push((at("host_ip"), "expected an IP address".into()));
        }
    }
}

fn valid_user(user: &str) -> bool {
    match user.split_once(':') {
        Some((u, g)) => valid_account_name(u) && valid_account_name(g),
        None => valid_account_name(user),
    }
}

/// A user or group name, or a numeric id.
pub fn valid_account_name(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Container names come from file stems and end up in paths, cgroup names
/// and hostnames.
pub fn valid_container_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_spec(Path::new("c/web.json"), text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn the_issue_spec_parses() {
        let text = r#"{
  "image": "localhost/demo/busybox:latest",
  "command": ["/bin/sh", "-c", "echo hello from $GREETING; exit 3"],
  "env": {"GREETING": "berth"},
  "restart": {"policy": "on-failure", "max_retries": 2}
}"#;
        let spec = parse_spec(Path::new("hello.json"), text).unwrap();
        assert_eq!(spec.restart.policy, RestartPolicy::OnFailure);
        assert_eq!(spec.restart.max_retries, Some(2));
        assert_eq!(spec.stop_timeout, 10);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        assert_eq!(
            errors("{\n  \"image\": \"x\",,\n}"),
            vec!["c/web.json:2:16: key must be a string"]
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_the_field() {
        let e = errors("{\"image\": \"x\",\n \"imagee\": 1}");
        assert!(
            e[0].starts_with("c/web.json:2:2: imagee: unknown field `imagee`"),
            "{e:?}"
        );
        let e = errors("{\"image\": \"x\", \"restart\": {\"policy\": \"sometimes\"}}");
        assert!(
            e[0].starts_with("c/web.json:1:28: restart.policy: unknown variant `sometimes`"),
            "{e:?}"
        );
        let e = errors("{\"image\": \"x\",\n\"stop_timeout\": \"10\"}");
        assert!(
            e[0].starts_with(
                "c/web.json:2:1: stop_timeout: invalid type: string \"10\", expected u64"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn semantic_errors_point_at_the_field() {
        let e = errors(
            "{\"image\": \"x\",\n \"restart\": {\"policy\": \"always\",\n   \"max_retries\": 3}}",
        );
        assert_eq!(
            e,
            vec!["c/web.json:3:4: restart.max_retries: only applies with policy \"on-failure\""]
        );
        let e = errors("{\"image\": \"Bad Ref\", \"command\": []}");
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("c/web.json:1:2: image: "));
        assert!(e[1].starts_with("c/web.json:1:22: command: must name a program"));
    }

    #[test]
    fn names_and_hostnames() {
        assert!(valid_container_name("web-1.a_b"));
        assert!(!valid_container_name(".hidden"));
        assert!(!valid_container_name("a/b"));
        assert!(valid_hostname("web-1"));
        assert!(!valid_hostname("-web"));
    }
}
