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
    /// The registry's certificate is outside its validity at this
    /// machine's time: the clock may be what is wrong (a device booted
    /// without a clock), so it is worth trying again once the clock moves.
    #[error("{url}: the registry's certificate is not valid at this machine's time: {reason}")]
    CertificateTime { url: String, reason: String },
}

impl FetchError {
    /// A TLS failure because a certificate is expired or not valid yet.
    pub fn certificate_time(url: &str, e: &ureq::Error) -> Option<FetchError> {
        use rustls::CertificateError as C;
        // ureq hands the handshake's error over inside an io::Error.
        let tls = match e {
            ureq::Error::Rustls(tls) => Some(tls),
            ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        let Some(rustls::Error::InvalidCertificate(cert)) = tls else {
            return None;
        };
        let reason = match cert {
            C::NotValidYet | C::Expired => format!("{cert:?}"),
            C::NotValidYetContext { .. } | C::ExpiredContext { .. } => cert.to_string(),
            _ => return None,
        };
        Some(FetchError::CertificateTime {
            url: url.to_string(),
            reason,
        })
    }

    pub fn is_certificate_time(&self) -> bool {
        matches!(self, FetchError::CertificateTime { .. })
    }

    /// Whether trying again later may succeed: the network, the
    /// registry's availability (5xx, 408, 429) or time ran out; not a
    /// refusal, a missing image or a malformed answer.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Transport { .. }
            | FetchError::TimedOut { .. }
            | FetchError::CertificateTime { .. } => true,
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
