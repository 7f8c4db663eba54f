//! A fake registry with one hostile habit, for the deadline tests. It
//! serves a one-layer image at `hostile/app:1` (a manifest, a config, and
//! a 16 MiB layer it never really has), misbehaving in the way its Shape
//! says; and `refused`, which pulls from it under GNU time and checks the
//! pull failed with the words expected, in time and in little memory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth::fetch::digest::Digest;

use super::{BERTH, TestEnv};

pub const REPO: &str = "hostile/app";
const LAYER_SIZE: u64 = 16 << 20;
const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Peak RSS growth a refused pull may show over a pull refused at once.
const MAX_GROWTH_KIB: u64 = 8 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The manifest's headers (with its length), then one byte every 2 s.
    TrickledManifest,
    /// A 401 whose token realm (this server) answers one byte every 2 s.
    TrickledToken,
    /// The layer blob: on the first, third, … connection its headers one
    /// byte every 200 ms; on the others its body at 1 KiB every 100 ms,
    /// far below 64 KiB/s.
    TrickledBlob,
    /// A manifest without a length that never ends.
    EndlessManifest,
    /// The config blob and 1 MiB more; with a Content-Length saying so,
    /// or without one.
    OversizedBlob { with_length: bool },
    /// A 40 MB index, its Content-Length included.
    HugeIndex,
    /// A token reply without a length that never ends.
    EndlessToken,
    /// 404 for everything: the pull refused at once, for a baseline.
    NotFound,
}

pub struct HostileRegistry {
    pub port: u16,
    /// The request lines seen.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// The image the server pretends to have.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    config_digest: String,
}

fn image() -> Image {
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec();
    let config_digest = Digest::of_bytes(&config).to_string();
    let layer_digest = Digest::of_bytes(b"a layer never sent whole");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest.to_string(), "size": LAYER_SIZE}],
    });
    Image {
        manifest: manifest.to_string().into_bytes(),
        config,
        config_digest,
    }
}

impl HostileRegistry {
    pub fn start(shape: Shape) -> Result<HostileRegistry> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let image = Arc::new(image());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, image) = (Arc::clone(&seen), Arc::clone(&image));
                std::thread::spawn(move || serve(stream, shape, port, &image, &seen));
            }
        });
        Ok(HostileRegistry { port, requests })
    }

    pub fn reference(&self) -> String {
        format!("127.0.0.1:{}/{REPO}:1", self.port)
    }
}

/// Answers one request (every answer closes the connection).
fn serve(stream: TcpStream, shape: Shape, port: u16, image: &Image, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&stream);
    let (mut request, mut line, mut authorized) = (String::new(), String::new(), false);
    if reader.read_line(&mut request).is_err() {
        return;
    }
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        authorized |= line.to_ascii_lowercase().starts_with("authorization:");
        line.clear();
    }
    let request = request.trim().to_string();
    let Ok(mut requests) = seen.lock() else {
        return;
    };
    requests.push(request.clone());
    let asked = requests.iter().filter(|r| **r == request).count();
    drop(requests);
    let path = request.split(' ').nth(1).unwrap_or("");
    let out = &stream;
    let _ = if shape == Shape::NotFound {
        reply(out, "404 Not Found", "text/plain", Some(0), b"")
    } else if path.starts_with("/token") {
        token(out, shape)
    } else if path == format!("/v2/{REPO}/manifests/1") {
        manifest(out, shape, port, image, authorized)
    } else if path == format!("/v2/{REPO}/blobs/{}", image.config_digest) {
        config(out, shape, image)
    } else if shape == Shape::TrickledBlob && path.starts_with(&format!("/v2/{REPO}/blobs/")) {
        trickled_blob(out, asked % 2 == 1)
    } else {
        reply(out, "404 Not Found", "text/plain", Some(0), b"")
    };
}

const OCTETS: &str = "application/octet-stream";

fn token(out: &TcpStream, shape: Shape) -> std::io::Result<()> {
    match shape {
        Shape::TrickledToken => {
            let body = br#"{"token": "a token that takes its time"}"#;
            reply(out, "200 OK", "application/json", Some(body.len()), b"")?;
            trickle(out, body.len(), |i| body[i], 1, 2000)
        }
        Shape::EndlessToken => {
            reply(out, "200 OK", "application/json", None, br#"{"token": ""#)?;
            endless(out, b'a')
        }
        _ => reply(out, "404 Not Found", "text/plain", Some(0), b""),
    }
}

fn manifest(
    mut out: &TcpStream,
    shape: Shape,
    port: u16,
    image: &Image,
    authorized: bool,
) -> std::io::Result<()> {
    let length = Some(image.manifest.len());
    match shape {
        Shape::TrickledToken | Shape::EndlessToken if !authorized => write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"hostile\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Shape::TrickledManifest => {
            reply(out, "200 OK", MT_MANIFEST, length, b"")?;
            trickle(out, image.manifest.len(), |i| image.manifest[i], 1, 2000)
        }
        Shape::EndlessManifest => {
            reply(
                out,
                "200 OK",
                MT_MANIFEST,
                None,
                br#"{"schemaVersion": 2, "#,
            )?;
            endless(out, b' ')
        }
        Shape::HugeIndex => huge_index(out),
        _ => reply(out, "200 OK", MT_MANIFEST, length, &image.manifest),
    }
}

fn config(out: &TcpStream, shape: Shape, image: &Image) -> std::io::Result<()> {
    let mut body = image.config.clone();
    let mut length = Some(body.len());
    if let Shape::OversizedBlob { with_length } = shape {
        body.resize(body.len() + (1 << 20), b' ');
        length = with_length.then_some(body.len());
    }
    reply(out, "200 OK", OCTETS, length, &body)
}

/// The layer, its headers or its body trickled.
fn trickled_blob(mut out: &TcpStream, slow_headers: bool) -> std::io::Result<()> {
    if slow_headers {
        out.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ")?;
        return trickle(out, usize::MAX, |_| b'a', 1, 200);
    }
    reply(out, "200 OK", OCTETS, Some(LAYER_SIZE as usize), b"")?;
    trickle(out, LAYER_SIZE as usize, |_| 0, 1024, 100)
}

/// Headers (a Content-Length when `length` is given, else the body ends
/// when the connection does), then `body`.
fn reply(
    mut out: &TcpStream,
    status: &str,
    content_type: &str,
    length: Option<usize>,
    body: &[u8],
) -> std::io::Result<()> {
    let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\r\n"
    )?;
    out.write_all(body)
}

/// `len` bytes (byte i is `at(i)`), `step` at a time `gap_ms` apart,
/// until the client goes.
fn trickle(
    mut out: &TcpStream,
    len: usize,
    at: impl Fn(usize) -> u8,
    step: usize,
    gap_ms: u64,
) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < len {
        let piece: Vec<u8> = (sent..len.min(sent + step)).map(&at).collect();
        out.write_all(&piece)?;
        out.flush()?;
        sent += piece.len();
        std::thread::sleep(Duration::from_millis(gap_ms));
    }
    Ok(())
}

/// `byte` forever, until the client goes.
fn endless(mut out: &TcpStream, byte: u8) -> std::io::Result<()> {
    let chunk = vec![byte; 64 << 10];
    loop {
        out.write_all(&chunk)?;
    }
}

/// A 40 MB index: its headers, then all of it, unless the client goes.
fn huge_index(mut out: &TcpStream) -> std::io::Result<()> {
    let size = 40_000_000;
    let head = format!(r#"{{"schemaVersion": 2, "mediaType": "{MT_INDEX}", "manifests": ["#);
    reply(out, "200 OK", MT_INDEX, Some(size), head.as_bytes())?;
    let filler = vec![b' '; 1 << 20];
    let mut left = size - head.len() - 2;
    while left > 0 {
        let n = left.min(filler.len());
        out.write_all(&filler[..n])?;
        left -= n;
    }
    out.write_all(b"]}")
}

/// One `berth pull` under GNU time: what it printed, how long it took,
/// its peak RSS.
pub struct Measured {
    pub success: bool,
    /// The progress lines, then the error and time's line.
    pub output: String,
    pub elapsed: Duration,
    pub peak_kib: u64,
}

pub fn measured_pull(reference: &str, root: &str, timeout: &str) -> Result<Measured> {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "berth-peak-rss-kib %M", BERTH, "pull", reference])
        .args(["--timeout", timeout, "--root", root])
        .output()
        .context("/usr/bin/time (Debian's time package, scripts/setup.sh --test)")?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let output = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr;
    let peak_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("berth-peak-rss-kib ")?.trim().parse().ok())
        .with_context(|| format!("no peak RSS from time: {stderr}"))?;
    Ok(Measured {
        success: out.status.success(),
        output,
        elapsed,
        peak_kib,
    })
}

/// Pulls from a registry of `shape` with `--timeout timeout`: the pull
/// must fail within `within_secs`, say each of `expected` (PORT stands
/// for the server's port), and peak at most MAX_GROWTH_KIB above a pull
/// refused at once. The measurements go to stderr (--nocapture shows them).
pub fn refused(shape: Shape, timeout: &str, within_secs: u64, expected: &[&str]) -> Result<()> {
    let within = Duration::from_secs(within_secs);
    let env = TestEnv::new()?;
    let root = env.root().to_string_lossy().into_owned();
    let baseline = HostileRegistry::start(Shape::NotFound)?;
    let base = measured_pull(&baseline.reference(), &root, timeout)?;
    let reg = HostileRegistry::start(shape)?;
    let m = measured_pull(&reg.reference(), &root, timeout)?;
    let growth = m.peak_kib.saturating_sub(base.peak_kib);
    eprintln!(
        "{shape:?}: refused in {:.2} s, peak RSS {} KiB ({growth} KiB over a pull refused at once)\n{}",
        m.elapsed.as_secs_f64(),
        m.peak_kib,
        m.output.trim()
    );
    if m.success {
        bail!("the pull succeeded: {}", m.output);
    }
    for want in expected {
        let want = want.replace("PORT", &reg.port.to_string());
        if !m.output.contains(&want) {
            bail!("{want:?} not in: {}", m.output);
        }
    }
    if m.elapsed > within {
        bail!("took {:?}, more than {within:?}", m.elapsed);
    }
    if growth > MAX_GROWTH_KIB {
        bail!(
            "peak RSS {} KiB, {growth} KiB over the baseline",
            m.peak_kib
        );
    }
    Ok(())
}
