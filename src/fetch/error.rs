//! What can go wrong talking to a registry; each error names the registry
//! or the request it concerns.

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{registry}: authentication failed: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    /// A request ran out of time or fell below the rate floor; `what`
    /// names it ("manifest from host/repo:tag").
    #[error("{what}: {reason}")]
    TimedOut { what: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl FetchError {
    /// Whether trying again later may succeed: the network, the
    /// registry's availability (5xx, 408, 429) or time ran out; not a
    /// refusal, a missing image or a malformed answer.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Transport { .. } | FetchError::TimedOut { .. } => true,
            FetchError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            FetchError::Unauthorized { .. } | FetchError::NotFound(_) | FetchError::Invalid(_) => {
                false
            }
        }
    }

    /// An error reading the body of the request `what`: TimedOut for the
    /// deadline and the rate floor, else Transport.
    pub fn body(what: &str, e: std::io::Error) -> FetchError {
        let (what, reason) = (what.to_string(), e.to_string());
        if e.kind() == std::io::ErrorKind::TimedOut {
            FetchError::TimedOut { what, reason }
        } else {
            FetchError::Transport { url: what, reason }
        }
    }
}
