//! What a conversion could not carry over: each compose key by its path
//! (`services.web.build`) with the reason. Nothing is dropped silently:
//! every key a mapper does not understand ends up here.

use std::fmt;

/// One key that did not become part of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted, from the file's root: `services.web.ports.1`.
    pub path: String,
    pub message: String,
    /// The value is wrong (compose would refuse it too), as opposed to a
    /// valid key berth has no equivalent for.
    pub invalid: bool,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path)?;
        if self.invalid {
            f.write_str("invalid: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The issues of one conversion, in the order they were found. Bounded:
/// a hostile file with a million unknown keys gives a summary past the cap.
#[derive(Debug, Default)]
pub struct Issues {
    pub list: Vec<Issue>,
    pub dropped: usize,
}

/// More than this and the rest are only counted.
pub const MAX_ISSUES: usize = 1000;

impl Issues {
    pub fn unsupported(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, message.into(), false);
    }

    pub fn invalid(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, message.into(), true);
    }

    fn push(&mut self, path: &str, message: String, invalid: bool) {
        if self.list.len() >= MAX_ISSUES {
            self.dropped += 1;
            return;
        }
        self.list.push(Issue {
            path: path.to_string(),
            message,
            invalid,
        });
    }

    pub fn any_invalid(&self) -> bool {
        self.list.iter().any(|i| i.invalid)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.dropped == 0
    }
}

/// `parent.key`, the way every issue names a key.
pub fn join(parent: &str, key: impl fmt::Display) -> String {
    format!("{parent}.{key}")
}
