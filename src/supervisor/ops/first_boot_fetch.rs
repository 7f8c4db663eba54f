//! A first-boot config from a URL (first_boot_source.rs), fetched in the
//! helper: one GET whose body (a tarball, plain or gzip) goes to a file,
//! bounded. At boot the network may not be up yet, so a request that
//! reaches no server is tried again for up to NETWORK_WAIT, and a server
//! error (5xx, 408, 429) up to SERVER_TRIES times, 1 s apart at first and
//! doubling to 8 s; any other answer than 200 refuses the source at once.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use ureq::Agent;

use crate::supervisor::config_store::first_boot::redact;
use crate::supervisor::say;

/// How long requests that reach no server are tried (DHCP, a link that
/// comes up late).
const NETWORK_WAIT: Duration = Duration::from_secs(300);
/// How many server errors in all before the source is refused.
const SERVER_TRIES: u32 = 4;
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(8);
/// For connecting, for the answer's headers, and between two reads.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);
/// As `berth apply` bounds a tarball stream (config_store::stage).
const MAX_BODY_BYTES: u64 = 128 << 20;

/// Why one try failed, and so whether to try again.
enum Failure {
    /// No answer from a server: the network may come up.
    Network(String),
    /// The server answered that it cannot now.
    Server(String),
    /// Trying again would give the same.
    Final(String),
}

/// Fetches `url` into the file `to`, with the retries above. Errors name
/// the URL without its query and user info.
pub(crate) fn fetch(url: &str, to: &Path) -> Result<(), String> {
    let agent = agent();
    let shown = redact(url);
    let started = Instant::now();
    let mut server_failures = 0;
    let mut delay = FIRST_DELAY;
    loop {
        let why = match get_once(&agent, url, to) {
            Ok(bytes) => {
                say(format_args!(
                    "first-boot config: fetched {bytes} bytes from {shown}"
                ));
                return Ok(());
            }
            Err(Failure::Final(e)) => return Err(format!("{shown}: {e}")),
            Err(Failure::Server(e)) => {
                server_failures += 1;
                if server_failures >= SERVER_TRIES {
                    return Err(format!("{shown}: {e} ({server_failures} tries)"));
                }
                e
            }
            Err(Failure::Network(e)) => {
                if started.elapsed() >= NETWORK_WAIT {
                    return Err(format!(
                        "{shown}: {e} (tried for {} s)",
                        NETWORK_WAIT.as_secs()
                    ));
                }
                e
            }
        };
        say(format_args!(
            "first-boot config: {shown}: {why}; trying again in {} s",
            delay.as_secs()
        ));
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// One GET; the body's size when it was 200 and is in `to`, fsynced.
fn get_once(agent: &Agent, url: &str, to: &Path) -> Result<u64, Failure> {
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::BadUri(_) => Failure::Final("not a valid URL".into()),
        other => Failure::Network(other.to_string()),
    })?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        408 | 429 | 500..=599 => return Err(Failure::Server(format!("HTTP {status}"))),
        _ => return Err(Failure::Final(format!("HTTP {status}"))),
    }
    let at = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", to.display());
    let mut file = fs::File::create(to).map_err(|e| Failure::Final(at("create", &e)))?;
    let mut body = resp.into_body().into_reader().take(MAX_BODY_BYTES + 1);
    let n = io::copy(&mut body, &mut file)
        .map_err(|e| Failure::Network(format!("reading the answer: {e}")))?;
    if n > MAX_BODY_BYTES {
        return Err(Failure::Final(format!(
            "the answer is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    file.sync_all()
        .map_err(|e| Failure::Final(at("fsync", &e)))?;
    Ok(n)
}

fn agent() -> Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(PHASE_TIMEOUT))
        .timeout_recv_response(Some(PHASE_TIMEOUT))
        .timeout_per_read(Some(PHASE_TIMEOUT))
        .tls_config(tls)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server answering each request with `status` and `body`; counts
    /// the requests.
    fn server(status: u16, body: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/config.tar?token=secret",
            listener.local_addr().unwrap()
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                counted.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            }
        });
        (url, hits)
    }

    #[test]
    fn a_200_lands_in_the_file() {
        let (url, hits) = server(200, b"tarball bytes");
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("download");
        fetch(&url, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"tarball bytes");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_404_is_refused_at_once_without_the_query() {
        let (url, hits) = server(404, b"no");
        let dir = tempfile::tempdir().unwrap();
        let e = fetch(&url, &dir.path().join("download")).unwrap_err();
        assert!(e.contains("HTTP 404") && !e.contains("secret"), "{e}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "not tried again");
    }
}
