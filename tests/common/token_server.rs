//! A small token issuer for Docker's token auth, as Debian's registry
//! demands it (shared recipe: RS256, the signing cert in `x5c`, `aud` a
//! string, `exp` set, `access` granting what the scope asks): GET
//! /token?service=…&scope=repository:NAME:ACTIONS with Basic credentials.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use anyhow::Result;
use base64::Engine as _;

use super::run_ok;

pub const ISSUER: &str = "berth-test-issuer";
pub const SERVICE: &str = "berth-test-registry";
/// The identity (refresh) token the issuer accepts in a POST grant.
pub const REFRESH_TOKEN: &str = "berth-test-refresh-token";

pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    pub requests: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    /// Makes an RSA key and self-signed cert in `dir` and serves tokens to
    /// `user`:`password` only.
    pub fn start(dir: &Path, user: &str, password: &str) -> Result<TokenServer> {
        let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
        super::self_signed_cert(&key, &cert, "/CN=berth-test-issuer")?;
        let der = run_ok(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
        )?
        .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU32::new(0));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, requests2, dir2) =
            (Arc::clone(&stop), Arc::clone(&requests), dir.to_path_buf());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                requests2.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nonblocking(false);
                let _ = serve(stream, &expected, &x5c, &key, &dir2);
            }
        });
        Ok(TokenServer {
            port,
            cert,
            requests,
            stop,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: std::net::TcpStream,
    expected_auth: &str,
    x5c: &str,
    key: &Path,
    dir: &Path,
) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorized = false;
    let mut saw_auth = false;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                saw_auth = true;
                authorized = v.trim() == expected_auth;
            }
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    // POST: an OAuth2 refresh-token grant (a docker identitytoken).
    let mut body = vec![0u8; content_length.min(1 << 16)];
    std::io::Read::read_exact(&mut reader, &mut body)?;
    let form = String::from_utf8_lossy(&body).into_owned();
    if request_line.starts_with("POST ") {
        let has = |kv: &str| form.split('&').any(|p| p == kv);
        authorized =
            has("grant_type=refresh_token") && has(&format!("refresh_token={REFRESH_TOKEN}"));
    }
    // Anonymous pulls of public/* repositories, as public registries allow.
    if !saw_auth
        && request_line.starts_with("GET ")
        && request_line.contains("scope=repository%3Apublic%2F")
        && !request_line.contains("push")
    {
        authorized = true;
    }
    let mut out = stream;
    if !authorized {
        out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let query = if request_line.starts_with("POST ") {
        form.as_str()
    } else {
        request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .split_once('?')
            .map(|x| x.1)
            .unwrap_or("")
    };
    let scope = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .unwrap_or_default();
    // repository:NAME:ACTIONS, where NAME never has a ':' in these tests.
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let access = if kind == "repository" {
        serde_json::json!([{"type": "repository", "name": name, "actions": actions.split(',').collect::<Vec<_>>()}])
    } else {
        serde_json::json!([])
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({"iss": ISSUER, "aud": SERVICE, "sub": "tester", "exp": now + 300, "iat": now, "nbf": now - 10, "access": access});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input_file = dir.join(format!("jwt-input-{}", std::process::id()));
    std::fs::write(&input_file, &signing_input)?;
    let sig = run_ok(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-binary", "-sign"])
            .arg(key)
            .arg(&input_file),
    )?
    .stdout;
    let token = format!("{signing_input}.{}", b64url(&sig));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
