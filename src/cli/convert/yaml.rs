//! Reading the compose file: at most 1 MiB, YAML decoded by serde-saphyr
//! with its amplifiers bounded (nesting, nodes, aliases and their replay,
//! merge keys), anchors and `<<:` merge keys as compose uses them,
//! duplicate keys refused. Errors carry the line and column.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// Compose files are a few KiB; a megabyte is generous.
pub const MAX_COMPOSE_BYTES: u64 = 1 << 20;
const MAX_DEPTH: usize = 32;
const MAX_NODES: usize = 200_000;
const MAX_ALIASES: usize = 1_000;
const MAX_MERGE_KEYS: usize = 1_000;
/// A service template (a few dozen events) used by a thousand services is
/// below; a billion-laughs file reaches it in milliseconds.
const MAX_REPLAYED_EVENTS: usize = 50_000;

pub fn read_compose_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPOSE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_COMPOSE_BYTES {
        return Err(format!(
            "{}: larger than {MAX_COMPOSE_BYTES} bytes",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))
}

/// Why the text is not a compose document: where the parser knows it
/// (line, column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    pub at: Option<(u64, u64)>,
    pub message: String,
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((line, col)) = self.at {
            write!(f, "{line}:{col}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<String> for ComposeError {
    fn from(message: String) -> Self {
        ComposeError { at: None, message }
    }
}

/// The document as a tree.
pub fn parse_yaml(text: &str) -> Result<Value, ComposeError> {
    if text.len() as u64 > MAX_COMPOSE_BYTES {
        return Err(format!("larger than {MAX_COMPOSE_BYTES} bytes").into());
    }
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_aliases = MAX_ALIASES;
    budget.max_merge_keys = MAX_MERGE_KEYS;
    // One template anchor used by every service is how compose files use
    // anchors; the replay limit bounds the work instead of the ratio.
    budget.enforce_alias_anchor_ratio = false;
    budget.max_documents = 1;
    budget.max_reader_input_bytes = Some(MAX_COMPOSE_BYTES as usize);
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Merge;
    options.with_snippet = false;
    let value: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        // One line, bounded: the parser's message may span several.
        let message: String = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let message: String = strip_at(&message).chars().take(300).collect();
        let at = e.location().map(|l| (l.line(), l.column()));
        ComposeError {
            at: at.filter(|(line, _)| *line > 0),
            message,
        }
    })?;
    Ok(value)
}

/// serde-saphyr may end a message with its own "at line X column Y"; the
/// position is already in front.
fn strip_at(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_merge_keys_expand() {
        let text = "x-base: &base\n  image: busybox\n  restart: always\nservices:\n  a:\n    <<: *base\n    restart: \"no\"\n";
        let v = parse_yaml(text).unwrap();
        assert_eq!(v["services"]["a"]["image"], "busybox");
        assert_eq!(v["services"]["a"]["restart"], "no");
    }

    #[test]
    fn one_template_may_serve_many_services() {
        let mut text = String::from("x-env: &env\n");
        for i in 0..20 {
            text += &format!("  K{i}: v{i}\n");
        }
        text += "services:\n";
        for i in 0..500 {
            text += &format!("  s{i}:\n    image: busybox\n    environment: *env\n");
        }
        let v = parse_yaml(&text).unwrap();
        assert_eq!(v["services"]["s499"]["environment"]["K19"], "v19");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse_yaml("services:\n  a:\n    image: [unclosed\n").unwrap_err();
        assert_eq!(e.at.map(|(line, _)| line), Some(3), "{e}");
        let e = parse_yaml("a: 1\na: 2\n").unwrap_err();
        assert!(e.to_string().starts_with("2:"), "{e}");
    }
}
