//! Docker's token auth, the client side: ask the realm a bearer challenge
//! names for a token — anonymously, with Basic credentials (GET with
//! `account=`), or with an identity token through the OAuth2 refresh grant
//! (POST) — and read the reply (`token` or `access_token`, `expires_in`).

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::challenge::Challenge;
use super::credentials::Credentials;

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token for the challenge's scope (or `default_scope`) and how long to
/// use it: expires_in (60 s when absent, and never less), minus a margin.
pub fn request_token(
    agent: &Agent,
    ch: &Challenge,
    default_scope: &str,
    creds: Option<&Credentials>,
) -> Result<(String, Duration), String> {
    let realm = ch
        .params
        .get("realm")
        .ok_or("bearer challenge without a realm")?;
    let scope = ch
        .params
        .get("scope")
        .cloned()
        .unwrap_or_else(|| default_scope.to_string());
    let service = ch
        .params
        .get("service")
        .map(|s| format!("&service={}", encode(s)))
        .unwrap_or_default();
    let sent = send_token_request(agent, realm, &scope, &service, creds);
    let resp = sent.map_err(|e| format!("token endpoint {realm}: {e}"))?;
    read_token_reply(resp, realm)
}

/// Asks `realm` for a token in the way the credentials call for;
/// `service` is the query suffix (`&service=…`) or empty.
fn send_token_request(
    agent: &Agent,
    realm: &str,
    scope: &str,
    service: &str,
    creds: Option<&Credentials>,
) -> Result<Response<Body>, ureq::Error> {
    match creds {
        // An identity token is an OAuth2 refresh token: POST it.
        Some(Credentials::IdentityToken { token, .. }) => {
            let form = format!(
                "grant_type=refresh_token&client_id=berth&refresh_token={}&scope={}{service}",
                encode(token),
                encode(scope)
            );
            agent
                .post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(form.as_bytes())
        }
        Some(Credentials::Basic { username, password }) => {
            let url = format!(
                "{realm}?scope={}{service}&account={}",
                encode(scope),
                encode(username)
            );
            agent
                .get(&url)
                .header("Authorization", basic(username, password))
                .call()
        }
        None => agent
            .get(&format!("{realm}?scope={}{service}", encode(scope)))
            .call(),
    }
}

/// The token in the realm's reply, and how long to use it.
fn read_token_reply(mut resp: Response<Body>, realm: &str) -> Result<(String, Duration), String> {
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("token endpoint {realm} answered HTTP {status}"));
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    let reply: TokenReply =
        serde_json::from_slice(&body).map_err(|e| format!("token endpoint reply: {e}"))?;
    let token = reply
        .access_token
        .or(reply.token)
        .filter(|t| !t.is_empty())
        .ok_or("token endpoint sent no token")?;
    let ttl = reply.expires_in.unwrap_or(60).max(60);
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
