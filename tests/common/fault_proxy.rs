//! A TCP proxy between berth and a registry that injects one fault into
//! the first large response: cut the connection, flip a byte, stall, or
//! trickle the rest below berth's rate floor.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Result;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection after this many response bytes.
    CutAfter(usize),
    /// Invert the byte at this response offset.
    FlipAt(usize),
    /// Pass everything, slowly: sleep this many ms after each 64 KiB.
    Slow(u64),
    /// After this many response bytes, send nothing more on that
    /// connection (it stays open: a stall, not a cut).
    StallAfter(usize),
    /// Answer the first request with 503 and `Retry-After: N` seconds.
    UnavailableOnce(u64),
    /// After this many response bytes, pass the rest of that connection
    /// on at 512 bytes every 100 ms (5 KiB/s, far below 64 KiB/s).
    TrickleAfter(usize),
    /// Cut every connection after this many response bytes, this many
    /// times in all (later connections pass).
    CutEachAfter(usize, u64),
}

pub struct FaultProxy {
    pub port: u16,
    /// Set once the fault has been injected.
    pub fired: Arc<AtomicBool>,
    /// Set when a request carried a Range header (a resumed download).
    pub saw_range: Arc<AtomicBool>,
    /// The request lines seen ("GET /v2/… HTTP/1.1").
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
    /// Response bytes passed on to berth (headers included), in all.
    pub bytes: Arc<AtomicU64>,
    /// Connections cut so far (CutEachAfter).
    pub cuts: Arc<AtomicU64>,
    /// Request bytes berth sent (headers included), in all.
    pub request_bytes: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, fault: Fault) -> Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let fired = Arc::new(AtomicBool::new(false));
        let saw_range = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let bytes = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let request_bytes = Arc::new(AtomicU64::new(0));
        let q_bytes = Arc::clone(&request_bytes);
        let (f2, r2, q2, b2, c2) = (
            Arc::clone(&fired),
            Arc::clone(&saw_range),
            Arc::clone(&requests),
            Arc::clone(&bytes),
            Arc::clone(&cuts),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let seen = Seen {
                    fired: Arc::clone(&f2),
                    saw_range: Arc::clone(&r2),
                    requests: Arc::clone(&q2),
                    bytes: Arc::clone(&b2),
                    cuts: Arc::clone(&c2),
                    request_bytes: Arc::clone(&q_bytes),
                };
                std::thread::spawn(move || relay(client, upstream, fault, seen));
            }
        });
        Ok(FaultProxy {
            port,
            fired,
            saw_range,
            requests,
            bytes,
            cuts,
            request_bytes,
        })
    }
}

/// What one connection's relay records, shared with the test.
struct Seen {
    fired: Arc<AtomicBool>,
    saw_range: Arc<AtomicBool>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    bytes: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
    request_bytes: Arc<AtomicU64>,
}

/// Whether this connection is to be cut now (CutEachAfter), counted.
fn cut_now(fault: Fault, total: usize, n: usize, cuts: &AtomicU64) -> Option<usize> {
    let Fault::CutEachAfter(limit, times) = fault else {
        return None;
    };
    let due = total + n > limit
        && cuts
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < times).then_some(c + 1)
            })
            .is_ok();
    due.then_some(limit.saturating_sub(total))
}

fn relay(client: TcpStream, upstream: TcpStream, fault: Fault, seen: Seen) {
    let Seen {
        fired,
        saw_range,
        requests,
        bytes,
        cuts,
        request_bytes,
    } = seen;
    if let Fault::UnavailableOnce(secs) = fault
        && !fired.swap(true, Ordering::Relaxed)
    {
        let mut client = client;
        let mut buf = [0u8; 4096];
        let _ = client.read(&mut buf);
        let reply = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {secs}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = client.write_all(reply.as_bytes());
        return;
    }
    let (Ok(mut c_read), Ok(mut u_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 || u_write.write_all(&buf[..n]).is_err() {
                break;
            }
            request_bytes.fetch_add(n as u64, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.to_ascii_lowercase().contains("range: bytes=") {
                saw_range.store(true, Ordering::Relaxed);
            }
            if let Ok(mut r) = requests.lock() {
                r.extend(
                    text.lines()
                        .filter(|l| l.starts_with("GET ") || l.starts_with("HEAD "))
                        .map(str::to_string),
                );
            }
        }
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0usize;
    while let Ok(n) = u_read.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &mut buf[..n];
        if let Some(keep) = cut_now(fault, total, n, &cuts) {
            fired.store(true, Ordering::Relaxed);
            let _ = c_write.write_all(&chunk[..keep]);
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = u_read.shutdown(Shutdown::Both);
            return;
        }
        if !fired.load(Ordering::Relaxed) {
            match fault {
                Fault::CutAfter(limit) if total + n > limit => {
                    fired.store(true, Ordering::Relaxed);
                    let _ = c_write.write_all(&chunk[..limit - total]);
                    let _ = c_write.shutdown(Shutdown::Both);
                    let _ = u_read.shutdown(Shutdown::Both);
                    return;
                }
                Fault::StallAfter(limit) if total + n > limit => {
                    fired.store(true, Ordering::Relaxed);
                    let _ = c_write.write_all(&chunk[..limit - total]);
                    std::thread::sleep(std::time::Duration::from_secs(120));
                    return;
                }
                Fault::TrickleAfter(limit) if total + n > limit => {
                    fired.store(true, Ordering::Relaxed);
                    let _ = c_write.write_all(&chunk[..limit - total]);
                    trickle_rest(&chunk[limit - total..], u_read, c_write);
                    return;
                }
                Fault::FlipAt(at) if total + n > at => {
                    fired.store(true, Ordering::Relaxed);
                    chunk[at - total] ^= 0xff;
                }
                _ => {}
            }
        }
        if let Fault::Slow(ms) = fault {
            std::thread::sleep(std::time::Duration::from_millis(ms * n as u64 / 65_536 + 1));
        }
        total += n;
        if c_write.write_all(chunk).is_err() {
            break;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = c_write.shutdown(Shutdown::Both);
}

/// Sends `first`, then whatever else `upstream` sends, 512 bytes every
/// 100 ms, until either side goes.
fn trickle_rest(first: &[u8], mut upstream: TcpStream, mut client: TcpStream) {
    let mut pending = first.to_vec();
    let mut buf = [0u8; 16 * 1024];
    loop {
        while !pending.is_empty() {
            let n = pending.len().min(512);
            if client.write_all(&pending[..n]).is_err() {
                return;
            }
            pending.drain(..n);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match upstream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}
