//! Reading one CDI spec file: bounded in size, JSON or YAML by its
//! extension, decoded strictly (unknown fields are errors) and then
//! checked (validate.rs). Errors name the file, the line and column where
//! the decoder knows them, and the field.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::supervisor::plugins::cdi::model::CdiSpec;
use crate::supervisor::plugins::cdi::validate::validate_spec;
use crate::supervisor::plugins::clip;
use crate::supervisor::spec::position::locate;
use crate::supervisor::spec::validate::dotted_path;

/// nvidia-ctk's spec for eight GPUs is under 100 KiB.
pub const MAX_SPEC_FILE_BYTES: u64 = 1 << 20;

/// YAML's amplifiers bounded: nesting, nodes, aliases and their replay (a
/// billion-laughs file stops at the first limit, in bounded time).
const YAML_MAX_DEPTH: usize = 32;
const YAML_MAX_NODES: usize = 200_000;
const YAML_MAX_ALIASES: usize = 1_000;
const YAML_MAX_REPLAYED_EVENTS: usize = 100_000;

/// A spec file's problem: FILE[:LINE:COL]: [FIELD: ]MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdiFileError {
    pub file: PathBuf,
    pub at: Option<(u64, u64)>,
    /// Dotted, e.g. `devices.0.containerEdits.mounts.1.containerPath`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for CdiFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.at {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(field) = self.field.as_deref().filter(|s| !s.is_empty()) {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Whether a file in a spec directory is a spec file (the reference
/// loader reads these two extensions and nothing else).
pub fn is_spec_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml")
    )
}

/// Reads, decodes and checks one spec file.
pub fn read_spec_file(path: &Path) -> Result<CdiSpec, CdiFileError> {
    let fail = |message: String| CdiFileError {
        file: path.to_path_buf(),
        at: None,
        field: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("read: {e}")))?;
    if bytes.len() as u64 > MAX_SPEC_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_SPEC_FILE_BYTES} bytes")));
    }
    let yaml = path.extension().is_some_and(|e| e == "yaml");
    parse_spec(&bytes, yaml).map_err(|mut e| {
        e.file = path.to_path_buf();
        e
    })
}

/// Decodes and checks spec text (the file left empty in errors).
pub fn parse_spec(bytes: &[u8], yaml: bool) -> Result<CdiSpec, CdiFileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CdiFileError {
        file: PathBuf::new(),
        at: None,
        field: None,
        message: format!("not UTF-8: {e}"),
    })?;
    let spec = if yaml {
        decode_yaml(text)?
    } else {
        decode_json(text)?
    };
    validate_spec(&spec).map_err(|(path, message)| {
        let at = if yaml {
            None
        } else {
            let parts: Vec<&str> = path.iter().map(String::as_str).collect();
            locate(text, &parts).map(|(l, c)| (l as u64, c as u64))
        };
        CdiFileError {
            file: PathBuf::new(),
            at,
            field: Some(path.join(".")),
            message,
        }
    })?;
    Ok(spec)
}

fn decode_json(text: &str) -> Result<CdiSpec, CdiFileError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let spec: CdiSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = dotted_path(e.path());
        let inner = e.into_inner();
        let at = (inner.line() > 0).then(|| (inner.line() as u64, inner.column() as u64));
        decode_error(at, field, strip_position(&inner.to_string()))
    })?;
    de.end()
        .map_err(|e| decode_error(None, String::new(), e.to_string()))?;
    Ok(spec)
}

fn decode_yaml(text: &str) -> Result<CdiSpec, CdiFileError> {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = YAML_MAX_DEPTH;
    budget.max_nodes = YAML_MAX_NODES;
    budget.max_aliases = YAML_MAX_ALIASES;
    budget.max_reader_input_bytes = Some(MAX_SPEC_FILE_BYTES as usize);
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = YAML_MAX_REPLAYED_EVENTS;
    options.with_snippet = false;
    let field = RefCell::new(String::new());
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *field.borrow_mut() = dotted_path(e.path());
            e.into_inner()
        })
    });
    result.map_err(|e: serde_saphyr::Error| {
        let at = e.location().map(|l| (l.line(), l.column()));
        let at = at.filter(|(line, _)| *line > 0);
        let message = e.to_string();
        let message = strip_position(&first_line(&message));
        decode_error(at, field.into_inner(), message)
    })
}

fn decode_error(at: Option<(u64, u64)>, field: String, message: String) -> CdiFileError {
    // "?" stands for a key serde never finished reading.
    let field = field
        .trim_end_matches('?')
        .trim_end_matches('.')
        .to_string();
    let field = Some(field).filter(|f| !f.is_empty());
    CdiFileError {
        file: PathBuf::new(),
        at,
        field,
        message: clip(&message).to_string(),
    }
}

/// Both decoders append " at line L column C" (serde-saphyr with a
/// comma); the error says it up front.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests;
