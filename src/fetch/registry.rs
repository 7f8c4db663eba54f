//! A client for one repository of an OCI distribution registry: GETs with
//! Docker's token auth (401 → the challenge's realm → a bearer token →
//! retry), Basic auth, retries with backoff on connection errors, 5xx and
//! 429 (honouring Retry-After). Plain HTTP only for loopback registries or
//! ones marked insecure. Credentials never follow a redirect. Each request
//! has a deadline and its body a rate floor (deadline.rs); a request that
//! ran out of time is not tried again here (a blob resumes, pull_blob.rs).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::challenge::{Challenge, parse_challenges};
use super::credentials::Credentials;
use super::deadline::{Deadline, MIN_BYTES_PER_SEC};
pub use super::error::FetchError;
use super::reference::Reference;
use super::token::{TokenClient, basic, request_token};

const MAX_ATTEMPTS: u32 = 5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_BACKOFF_MS: u64 = 200;
const MAX_BACKOFF_MS: u64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Allow plain HTTP to a registry that is not on loopback.
    pub insecure: bool,
    /// A PEM CA bundle to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A request's timeout (default 30 s): the whole of a document's
    /// exchange, the longest wait for any read, a blob's base allowance.
    pub timeout: Option<Duration>,
    /// The slowest a blob's body may arrive before it counts as stalled
    /// (default 64 KiB/s); a pull with a rate cap lowers it to what the cap
    /// leaves each stream, so berth's own throttling is never a stall.
    pub slowest_bytes_per_sec: Option<u64>,
}

enum Auth {
    None,
    Basic(String),
    Bearer { header: String, expires: Instant },
}

/// A response to read, with the deadline its body is held to and what
/// the request was, for errors.
pub struct Reply {
    pub response: Response<Body>,
    pub deadline: Deadline,
    pub what: String,
}

pub struct Registry {
    agent: Agent,
    timeout: Duration,
    /// Bytes per second a body must keep up (fetch/deadline.rs).
    floor: u64,
    base: String,
    host: String,
    pub repository: String,
    creds: Option<Credentials>,
    auth: Auth,
}

/// Docker's rule: plain HTTP is allowed for loopback registries.
pub fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Registry {
    pub fn new(
        r: &Reference,
        creds: Option<Credentials>,
        opts: &RegistryOptions,
    ) -> Result<Registry, FetchError> {
        let host = if r.domain == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            r.domain.clone()
        };
        // A registry with its own CA file speaks TLS, even on loopback.
        let plain_ok = opts.insecure || is_loopback(&host);
        let scheme = if plain_ok && opts.ca_file.is_none() {
            "http"
        } else {
            "https"
        };
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let agent = super::agent::agent(opts.ca_file.as_deref(), timeout)?;
        Ok(Registry {
            agent,
            timeout,
            floor: opts
                .slowest_bytes_per_sec
                .unwrap_or(MIN_BYTES_PER_SEC)
                .clamp(1, MIN_BYTES_PER_SEC),
            base: format!("{scheme}://{host}"),
            host,
            repository: r.path.clone(),
            creds,
            auth: Auth::None,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// What a request for `path` is, for errors: "manifest from
    /// host/repo:tag", "blob sha256:… from host/repo".
    pub fn describe(&self, path: &str) -> String {
        let repo = format!("{}/{}", self.host, self.repository);
        match path.split_once('/') {
            Some(("manifests", r)) if r.contains(':') => format!("manifest from {repo}@{r}"),
            Some(("manifests", r)) => format!("manifest from {repo}:{r}"),
            Some(("blobs", d)) => format!("blob {d} from {repo}"),
            _ => format!("{path} from {repo}"),
        }
    }

    /// GET `/v2/<repository>/<path>`; `from` asks for a byte range (resume).
    /// `body` is the size of a blob's body (its deadline grows with it and
    /// it is held to the rate floor); None for a document.
    pub fn get(
        &mut self,
        path: &str,
        accept: &[&str],
        from: Option<u64>,
        body: Option<u64>,
    ) -> Result<Reply, FetchError> {
        self.send(false, path, accept, from, body)
    }

    /// HEAD `/v2/<repository>/<path>`: the headers only (a manifest's
    /// Docker-Content-Digest), with the same auth and retries as `get`.
    pub fn head(&mut self, path: &str, accept: &[&str]) -> Result<Reply, FetchError> {
        self.send(true, path, accept, None, None)
    }

    fn send(
        &mut self,
        head: bool,
        path: &str,
        accept: &[&str],
        from: Option<u64>,
        body: Option<u64>,
    ) -> Result<Reply, FetchError> {
        let url = format!("{}/v2/{}/{}", self.base, self.repository, path);
        let what = self.describe(path);
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if matches!(self.auth, Auth::Bearer { expires, .. } if Instant::now() >= expires) {
                self.auth = Auth::None;
            }
            let deadline = match body {
                Some(bytes) => Deadline::body(self.timeout, bytes, self.floor),
                None => Deadline::document(self.timeout),
            };
            let req = self.request(head, &url, accept, from, deadline.limit());
            let resp = match req.call() {
                Ok(r) => r,
                Err(e) if Deadline::is_timeout(&e) => {
                    let reason = deadline.explain(&e);
                    return Err(FetchError::TimedOut { what, reason });
                }
                // A certificate outside its validity stays so: no retry here.
                Err(e) => match FetchError::certificate_time(&url, &e) {
                    Some(clock) => return Err(clock),
                    None if attempt < MAX_ATTEMPTS => {
                        backoff(attempt, None);
                        continue;
                    }
                    None => {
                        let reason = e.to_string();
                        return Err(FetchError::Transport { url, reason });
                    }
                },
            };
            if let Some(response) = self.answer(resp, &url, path, attempt, &mut reauthed)? {
                return Ok(Reply {
                    response,
                    deadline,
                    what,
                });
            }
        }
    }

    /// One attempt's request: the current auth, and the Range a resume needs.
    fn request(
        &self,
        head: bool,
        url: &str,
        accept: &[&str],
        from: Option<u64>,
        limit: Duration,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let req = if head {
            self.agent.head(url)
        } else {
            self.agent.get(url)
        };
        let mut req = req.config().timeout_global(Some(limit)).build();
        if !accept.is_empty() {
            req = req.header("Accept", accept.join(", "));
        }
        match &self.auth {
            Auth::Basic(h) | Auth::Bearer { header: h, .. } => req = req.header("Authorization", h),
            Auth::None => {}
        }
        if let Some(off) = from.filter(|o| *o > 0) {
            req = req.header("Range", format!("bytes={off}-"));
        }
        req
    }

    /// What a response means for `get`: the response itself on success,
    /// None to try again (after authenticating once, or after a backoff
    /// for 429 and 5xx), or the error to give up with.
    fn answer(
        &mut self,
        resp: Response<Body>,
        url: &str,
        path: &str,
        attempt: u32,
        reauthed: &mut bool,
    ) -> Result<Option<Response<Body>>, FetchError> {
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(Some(resp)),
            401 if !*reauthed => {
                *reauthed = true;
                let challenges: Vec<Challenge> = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(parse_challenges)
                    .collect();
                self.authenticate(&challenges)?;
                Ok(None)
            }
            401 | 403 => Err(FetchError::Unauthorized {
                registry: self.host.clone(),
                reason: error_message(resp, status),
            }),
            404 => Err(FetchError::NotFound(format!(
                "{}/{} {path}",
                self.host, self.repository
            ))),
            429 | 500..=599 if attempt < MAX_ATTEMPTS => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
                backoff(attempt, retry_after);
                Ok(None)
            }
            _ => Err(FetchError::Status {
                url: url.to_string(),
                status,
                message: error_message(resp, status),
            }),
        }
    }

    fn authenticate(&mut self, challenges: &[Challenge]) -> Result<(), FetchError> {
        let unauthorized = |reason: String| FetchError::Unauthorized {
            registry: self.host.clone(),
            reason,
        };
        if let Some(ch) = challenges.iter().find(|c| c.scheme == "bearer") {
            let client = TokenClient {
                agent: &self.agent,
                host: &self.host,
                repository: &self.repository,
                timeout: self.timeout,
            };
            let (token, ttl) = request_token(&client, ch, self.creds.as_ref())?;
            self.auth = Auth::Bearer {
                header: format!("Bearer {token}"),
                expires: Instant::now() + ttl,
            };
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match &self.creds {
                Some(Credentials::Basic { username, password }) => {
                    self.auth = Auth::Basic(basic(username, password));
                    Ok(())
                }
                _ => Err(unauthorized(
                    "the registry wants a username and password (docker config.json auths)".into(),
                )),
            };
        }
        Err(unauthorized("no usable authentication challenge".into()))
    }
}

fn backoff(attempt: u32, retry_after_secs: Option<u64>) {
    let ms = FIRST_BACKOFF_MS
        .saturating_mul(1 << (attempt - 1).min(10))
        .min(MAX_BACKOFF_MS);
    let ms = retry_after_secs.map_or(ms, |s| (s * 1000).min(30_000));
    std::thread::sleep(Duration::from_millis(ms));
}

/// The registry's `{"errors":[{"message":…}]}`, or the start of the body.
fn error_message(mut resp: Response<Body>, status: u16) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|i| format!("{} {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ if body.is_empty() => format!("HTTP {status}"),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_may_use_plain_http() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["registry.local", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
