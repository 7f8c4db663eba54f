//! Webhook endpoints: their settings (berth.json's "webhooks" list, which
//! is also the format of the file the notifier helper reads) and their
//! validation. No delivery here: that is `notifier` (docs/events.md).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::bounds::{LIST_ENTRIES, TEXT_BYTES, WEBHOOK_TIMEOUT};
use crate::supervisor::spec::service::Seconds;
use crate::supervisor::spec::validate::{Problem, SpecError, parse_checked, problem};

const MAX_NAME_CHARS: usize = 64;

/// One endpoint. It gets every event whose kind matches one of `events`
/// (all events when the list is empty), POSTed as JSON arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Names the endpoint in logs and its cursor file (STATE/NAME.cursor).
    pub name: String,
    /// http:// or https://. It is never logged: some receivers keep a
    /// secret in the path.
    pub url: String,
    /// Globs on the event kind, `*` matching any run of characters:
    /// "container.*", "config.reloaded". Empty: every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Sent as `Authorization: Bearer TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// Signs each body: `X-Berth-Signature: sha256=HEX(HMAC-SHA256(secret, body))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// The most one delivery (connect, send, response) may take.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
}

fn default_timeout() -> Seconds {
    Seconds(Duration::from_secs(5))
}

impl WebhookSettings {
    /// Whether events of `kind` go to this endpoint.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|p| glob_match(p, kind))
    }
}

/// `*` matches any run of characters (dots included); everything else
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(head) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(head) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((tail, middle)) = middle.split_last() else {
        return rest.is_empty();
    };
    // Leftmost match of each middle piece leaves the most room for the rest.
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= tail.len() && rest.ends_with(tail)
}

/// The shape of the notifier's config file, and of berth.json's key (other
/// keys are ignored, so the notifier may be handed berth.json itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksFile {
    #[serde(default)]
    pub webhooks: Vec<WebhookSettings>,
}

/// Loads and checks `path` (`{"webhooks": [...]}`).
pub fn load_webhooks(path: &Path) -> Result<Vec<WebhookSettings>, Vec<SpecError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![SpecError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            field: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    let file: WebhooksFile =
        parse_checked(path, &text, |f: &WebhooksFile| check_webhooks(&f.webhooks))?;
    Ok(file.webhooks)
}

/// Semantic checks, each problem with its path from the top of berth.json
/// (["webhooks", "0", "url"]).
pub fn check_webhooks(hooks: &[WebhookSettings]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let index = i.to_string();
        let at = |field: &str| -> Vec<String> {
            ["webhooks", index.as_str(), field]
                .map(str::to_string)
                .to_vec()
        };
        if let Err(why) = check_name(&hook.name) {
            out.push((at("name"), why));
        } else if !names.insert(hook.name.as_str()) {
            out.push((
                at("name"),
                format!("{:?} names another webhook too", hook.name),
            ));
        }
        if let Err(why) = check_url(&hook.url) {
            out.push((at("url"), why));
        }
        for (j, pattern) in hook.events.iter().enumerate() {
            let valid = |c: char| c.is_ascii_alphanumeric() || "._-*".contains(c);
            if pattern.is_empty() || !pattern.chars().all(valid) {
                let path = ["webhooks", &index, "events", &j.to_string()];
                out.push(problem(
                    &path,
                    "expected an event kind, `*` matching any run of characters",
                ));
            }
        }
        // A header value: visible ASCII only, so no header can be injected.
        if let Some(token) = &hook.bearer_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            let why = "expected a non-empty token of visible ASCII characters";
            out.push((at("bearer_token"), why.to_string()));
        }
        if hook.hmac_secret.as_ref().is_some_and(String::is_empty) {
            out.push((at("hmac_secret"), "must not be empty".to_string()));
        }
        if let Err(why) = WEBHOOK_TIMEOUT.check(hook.timeout.0) {
            out.push((at("timeout"), why));
        }
        check_lengths(hook, &at, &mut out);
    }
    out
}

/// How long the strings and the event list may be. A pattern is matched
/// against every event, so both its length and the list's are bounded.
fn check_lengths(hook: &WebhookSettings, at: &dyn Fn(&str) -> Vec<String>, out: &mut Vec<Problem>) {
    let texts = [
        ("url", Some(&hook.url)),
        ("bearer_token", hook.bearer_token.as_ref()),
        ("hmac_secret", hook.hmac_secret.as_ref()),
    ];
    for (field, text) in texts {
        if let Err(why) = TEXT_BYTES.check(text.map_or(0, String::len)) {
            out.push((at(field), format!("too long: {why}")));
        }
    }
    if let Err(why) = LIST_ENTRIES.check(hook.events.len()) {
        out.push((at("events"), format!("too many entries: {why}")));
    } else if let Some(i) = hook.events.iter().position(|e| e.len() > TEXT_BYTES.max) {
        let mut path = at("events");
        path.push(i.to_string());
        out.push((path, format!("too long: at most {} bytes", TEXT_BYTES.max)));
    }
}

/// Names become file names (STATE/NAME.cursor): no separators, no dot
/// files, nothing a shell or a log would mangle.
fn check_name(name: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("expected 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.starts_with('.') || !name.chars().all(valid) {
        return Err("expected letters, digits, '.', '_' and '-', not starting with '.'".into());
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("expected an http:// or https:// URL".into());
    }
    let Some(authority) = uri.authority() else {
        return Err("expected a host in the URL".into());
    };
    if authority.host().is_empty() {
        return Err("expected a host in the URL".into());
    }
    // Credentials in a URL end up in proxies' and receivers' logs.
    if authority.as_str().contains('@') {
        return Err("credentials go in bearer_token, not in the URL".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str, url: &str) -> WebhookSettings {
        WebhookSettings {
            name: name.into(),
            url: url.into(),
            events: Vec::new(),
            bearer_token: None,
            hmac_secret: None,
            timeout: default_timeout(),
        }
    }

    #[test]
    fn globs_match_kinds() {
        assert!(glob_match("container.*", "container.started"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("config.reloaded", "config.reloaded"));
        assert!(glob_match("*.failed", "pull.failed"));
        assert!(glob_match("c*.*d", "container.started"));
        assert!(!glob_match("container.*", "config.reloaded"));
        assert!(!glob_match("pull", "pull.done"));
        assert!(!glob_match("a*a", "a"));
        let mut h = hook("a", "http://x");
        assert!(h.wants("pull.done"));
        h.events = vec!["container.*".into(), "config.reloaded".into()];
        assert!(h.wants("container.oom_killed") && h.wants("config.reloaded"));
        assert!(!h.wants("config.rejected"));
    }

    #[test]
    fn settings_are_checked_with_their_paths() {
        let mut bad = hook("fleet", "ftp://x/");
        bad.events = vec!["container.*".into(), "bad kind".into()];
        bad.bearer_token = Some("a\r\nX-Evil: 1".into());
        bad.hmac_secret = Some(String::new());
        bad.timeout = Seconds(Duration::from_secs(3600));
        let hooks = [
            hook("fleet", "https://hooks.example.com/berth"),
            bad,
            hook("../x", "http://user:pw@host/"),
            hook("ok", "not a url"),
        ];
        let got: Vec<String> = check_webhooks(&hooks)
            .into_iter()
            .map(|(p, m)| format!("{}: {m}", p.join(".")))
            .collect();
        let fields: Vec<&str> = got.iter().map(|g| g.split(':').next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "webhooks.1.name",
                "webhooks.1.url",
                "webhooks.1.events.1",
                "webhooks.1.bearer_token",
                "webhooks.1.hmac_secret",
                "webhooks.1.timeout",
                "webhooks.2.name",
                "webhooks.2.url",
                "webhooks.3.url",
            ],
            "{got:#?}"
        );
        assert!(got[0].contains("names another webhook"), "{}", got[0]);
        assert!(check_webhooks(&hooks[..1]).is_empty());
    }

    #[test]
    fn files_load_from_berth_json_shape_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.json");
        let text = r#"{"hostname": "box", "webhooks": [
            {"name": "fleet", "url": "https://h.example/x", "events": ["container.*"],
             "bearer_token": "t0k", "hmac_secret": "s3cret", "timeout": "2s"}]}"#;
        std::fs::write(&path, text).unwrap();
        let hooks = load_webhooks(&path).unwrap();
        assert_eq!(hooks[0].timeout.0, Duration::from_secs(2));
        assert_eq!(hooks[0].bearer_token.as_deref(), Some("t0k"));
        std::fs::write(&path, r#"{"webhooks": [{"name": "a", "url": "x:/"}]}"#).unwrap();
        let e = load_webhooks(&path).unwrap_err()[0].to_string();
        assert!(
            e.contains("berth.json:1:") && e.contains("webhooks.0.url"),
            "{e}"
        );
        std::fs::write(
            &path,
            r#"{"webhooks": [{"name": "a", "url": "http://h", "retries": 3}]}"#,
        )
        .unwrap();
        let e = load_webhooks(&path).unwrap_err()[0].to_string();
        assert!(e.contains("unknown field `retries`"), "{e}");
    }
}
