//! Docker's token auth, the client side: ask the realm a bearer challenge
//! names for a token — anonymously, with Basic credentials (GET with
//! `account=`), or with an identity token through the OAuth2 refresh grant
//! (POST) — and read the reply (`token` or `access_token`, `expires_in`).
//! The whole exchange has the registry's timeout (deadline.rs), and a
//! reply is at most 1 MiB.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::challenge::Challenge;
use super::credentials::Credentials;
use super::deadline::Deadline;
use super::error::FetchError;

const MAX_REPLY_BYTES: u64 = 1 << 20;

/// The registry client's side of a token request.
pub struct TokenClient<'a> {
    pub agent: &'a Agent,
    pub host: &'a str,
    pub repository: &'a str,
    pub timeout: Duration,
}

impl TokenClient<'_> {
    fn unauthorized(&self, reason: String) -> FetchError {
        FetchError::Unauthorized {
            registry: self.host.to_string(),
            reason,
        }
    }
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token for the challenge's scope (or pulling the client's repository)
/// and how long to use it: expires_in (60 s when absent, and never less),
/// minus a margin.
pub fn request_token(
    client: &TokenClient<'_>,
    ch: &Challenge,
    creds: Option<&Credentials>,
) -> Result<(String, Duration), FetchError> {
    let realm = ch
        .params
        .get("realm")
        .ok_or_else(|| client.unauthorized("bearer challenge without a realm".into()))?;
    let scope = ch
        .params
        .get("scope")
        .cloned()
        .unwrap_or_else(|| format!("repository:{}:pull", client.repository));
    let service = ch
        .params
        .get("service")
        .map(|s| format!("&service={}", encode(s)))
        .unwrap_or_default();
    let what = format!(
        "token for {}/{} from {realm}",
        client.host, client.repository
    );
    let deadline = Deadline::document(client.timeout);
    let request = TokenRequest {
        agent: client.agent,
        realm,
        scope: &scope,
        service: &service,
        limit: deadline.limit(),
    };
    let resp = match send_token_request(&request, creds) {
        Ok(resp) => resp,
        Err(e) if Deadline::is_timeout(&e) => {
            let reason = deadline.explain(&e);
            return Err(FetchError::TimedOut { what, reason });
        }
        Err(e) => return Err(client.unauthorized(format!("token endpoint {realm}: {e}"))),
    };
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(client.unauthorized(format!("token endpoint {realm} answered HTTP {status}")));
    }
    let body = read_reply(resp, deadline, &what)?;
    parse_token_reply(&body).map_err(|e| client.unauthorized(e))
}

/// What one token request sends where; `service` is the query suffix
/// (`&service=…`) or empty.
struct TokenRequest<'a> {
    agent: &'a Agent,
    realm: &'a str,
    scope: &'a str,
    service: &'a str,
    /// The whole exchange's budget.
    limit: Duration,
}

/// Asks the realm for a token in the way the credentials call for.
fn send_token_request(
    r: &TokenRequest<'_>,
    creds: Option<&Credentials>,
) -> Result<Response<Body>, ureq::Error> {
    let (realm, scope, service) = (r.realm, r.scope, r.service);
    match creds {
        // An identity token is an OAuth2 refresh token: POST it.
        Some(Credentials::IdentityToken { token, .. }) => {
            let form = format!(
                "grant_type=refresh_token&client_id=berth&refresh_token={}&scope={}{service}",
                encode(token),
                encode(scope)
            );
            r.agent
                .post(realm)
                .config()
                .timeout_global(Some(r.limit))
                .build()
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(form.as_bytes())
        }
        Some(Credentials::Basic { username, password }) => {
            let url = format!(
                "{realm}?scope={}{service}&account={}",
                encode(scope),
                encode(username)
            );
            r.agent
                .get(&url)
                .config()
                .timeout_global(Some(r.limit))
                .build()
                .header("Authorization", basic(username, password))
                .call()
        }
        None => r
            .agent
            .get(&format!("{realm}?scope={}{service}", encode(scope)))
            .config()
            .timeout_global(Some(r.limit))
            .build()
            .call(),
    }
}

/// The reply's body, within the deadline and at most MAX_REPLY_BYTES.
fn read_reply(resp: Response<Body>, deadline: Deadline, what: &str) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    deadline
        .read(resp.into_body().into_reader(), None)
        .take(MAX_REPLY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| FetchError::body(what, e))?;
    if body.len() as u64 > MAX_REPLY_BYTES {
        return Err(FetchError::Invalid(format!(
            "{what}: a reply of more than {MAX_REPLY_BYTES} bytes"
        )));
    }
    Ok(body)
}

/// The token in the realm's reply, and how long to use it.
fn parse_token_reply(body: &[u8]) -> Result<(String, Duration), String> {
    let reply: TokenReply =
        serde_json::from_slice(body).map_err(|e| format!("token endpoint reply: {e}"))?;
    let token = reply
        .access_token
        .or(reply.token)
        .filter(|t| !t.is_empty())
        .ok_or("token endpoint sent no token")?;
    // A day at most: the reply is outside data, and `now + ttl` must not
    // overflow an Instant.
    let ttl = reply.expires_in.unwrap_or(60).clamp(60, 24 * 60 * 60);
    Ok((token, Duration::from_secs(ttl - 10)))
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
