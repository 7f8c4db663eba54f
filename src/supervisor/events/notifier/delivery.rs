//! One HTTP delivery: a JSON array of events POSTed to one endpoint, with
//! its headers and signature. No retrying here (the endpoint loop decides).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use ureq::Agent;

use crate::fetch::digest::encode_hex;
use crate::supervisor::events::journal::Event;
use crate::supervisor::spec::webhooks::WebhookSettings;

/// The most of a response body read (and dropped): reading it lets the
/// connection be reused; a receiver has nothing to tell us in it.
const MAX_RESPONSE_BYTES: u64 = 64 << 10;

pub(super) struct Poster {
    agent: Agent,
    url: String,
    bearer_token: Option<String>,
    hmac_secret: Option<Vec<u8>>,
}

impl Poster {
    pub fn new(hook: &WebhookSettings) -> Poster {
        Poster {
            agent: agent(hook.timeout.0),
            url: hook.url.clone(),
            bearer_token: hook.bearer_token.clone(),
            hmac_secret: hook.hmac_secret.as_ref().map(|s| s.as_bytes().to_vec()),
        }
    }

    /// POSTs `events` (not empty, in seq order); Ok once the endpoint
    /// answered 2xx. The error says why in a few words, never the URL.
    pub fn send(&self, events: &[&Event]) -> Result<(), String> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let body = serde_json::to_vec(events).map_err(|e| format!("encode: {e}"))?;
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Berth-Event-Seq", format!("{}-{}", first.seq, last.seq));
        if let Some(token) = &self.bearer_token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(secret) = &self.hmac_secret {
            req = req.header("X-Berth-Signature", sign(secret, &body));
        }
        let mut resp = req.send(&body[..]).map_err(|e| describe(&e))?;
        let status = resp.status();
        // Errors reading the rest are the receiver's business: the status
        // is the answer.
        let _ = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`: the value
/// of X-Berth-Signature (the same scheme as GitHub's X-Hub-Signature-256).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts a key of any length (RFC 2104 hashes long ones).
    let mut mac = match Hmac::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", encode_hex(&mac.finalize().into_bytes()))
}

type Hmac = hmac::Hmac<Sha256>;

fn agent(timeout: Duration) -> Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        // Only a 2xx acknowledges: a redirect is the endpoint's mistake,
        // and following it would replay a POST as a GET.
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// ureq's error in a few words, without the URL, which can hold a secret
/// (the variants that carry a URL are worded here instead).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::BadUri(_) => "bad URL".to_string(),
        ureq::Error::RequireHttpsOnly(_) => "https required".to_string(),
        ureq::Error::ConnectProxyFailed(_) => "connecting through the proxy failed".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231, test case 2: key "Jefe".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_delivery_to_nothing_fails_in_words_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let hook = WebhookSettings {
            name: "t".into(),
            url: format!("http://127.0.0.1:{port}/secret-path"),
            events: vec![],
            bearer_token: None,
            hmac_secret: None,
            timeout: crate::supervisor::spec::service::Seconds(Duration::from_secs(2)),
        };
        let event = Event {
            seq: 1,
            time: "t".into(),
            kind: "k".into(),
            container: None,
            data: serde_json::Value::Null,
        };
        let err = Poster::new(&hook).send(&[&event]).unwrap_err();
        assert!(!err.contains("secret-path") && !err.is_empty(), "{err}");
    }
}
