//! Just enough HTTP/1.1 to POST JSON to a Docker plugin over a Unix socket
//! or plain TCP, under one deadline per call. Hand-written because ureq
//! cannot dial a Unix socket; no plugin semantics here.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};

use super::discovery::PluginAddr;

/// What moby sends as Host over a Unix socket (pkg/plugins/client.go).
const UNIX_HOST: &str = "plugin.moby.localhost";
const ACCEPT: &str = "application/vnd.docker.plugins.v1.2+json";
pub const MAX_BODY_BYTES: usize = 1 << 20;
const MAX_HEADER_BYTES: usize = 64 << 10;
/// How long a full Unix socket backlog is waited out between attempts.
/// A sleep blocks only the process making the call, and `connect_unix`
/// sleeps only when it ends before the call's deadline.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout,
            _ => HttpError::Io(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `body` (JSON) to `path`; connecting, sending and reading the
/// whole response must all finish within `timeout`.
pub fn post_json(
    addr: &PluginAddr,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let deadline = Instant::now() + timeout;
    let (stream, host) = match addr {
        PluginAddr::Unix(socket) => (
            Stream::Unix(connect_unix(socket, deadline)?),
            UNIX_HOST.to_string(),
        ),
        PluginAddr::Tcp(host_port) => (
            Stream::Tcp(connect_tcp(host_port, deadline)?),
            host_port.clone(),
        ),
    };
    let mut conn = Deadlined { stream, deadline };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {ACCEPT}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()?;
    read_response(&mut BufReader::new(conn))
}

/// A non-blocking connect retried while the listener's backlog is full
/// (EAGAIN), so a plugin that never accepts cannot block past `deadline`.
fn connect_unix(path: &Path, deadline: Instant) -> Result<UnixStream, HttpError> {
    let addr = UnixAddr::new(path).map_err(|e| HttpError::Connect(e.into()))?;
    loop {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let fd = socket(AddressFamily::Unix, SockType::Stream, flags, None)
            .map_err(|e| HttpError::Connect(e.into()))?;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false).map_err(HttpError::Connect)?;
                return Ok(stream);
            }
            // Bounded: the pause ends before the deadline, and the next
            // EAGAIN past it is a timeout.
            Err(Errno::EAGAIN) if Instant::now() + CONNECT_RETRY < deadline => {
                std::thread::sleep(CONNECT_RETRY);
            }
            Err(Errno::EAGAIN) => return Err(HttpError::Timeout),
            Err(e) => return Err(HttpError::Connect(e.into())),
        }
    }
}

fn connect_tcp(host_port: &str, deadline: Instant) -> Result<TcpStream, HttpError> {
    let addrs = host_port.to_socket_addrs().map_err(HttpError::Connect)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(HttpError::Timeout),
            Err(e) => last = e,
        }
    }
    Err(HttpError::Connect(last))
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// Sets each read's and write's timeout to what is left of the call's
/// deadline, so a slow-dripping plugin cannot stretch it.
struct Deadlined {
    stream: Stream,
    deadline: Instant,
}

impl Deadlined {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = Some(self.left()?);
        match &mut self.stream {
            Stream::Unix(s) => s.set_read_timeout(left).and_then(|()| s.read(buf)),
            Stream::Tcp(s) => s.set_read_timeout(left).and_then(|()| s.read(buf)),
        }
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = Some(self.left()?);
        match &mut self.stream {
            Stream::Unix(s) => s.set_write_timeout(left).and_then(|()| s.write(buf)),
            Stream::Tcp(s) => s.set_write_timeout(left).and_then(|()| s.write(buf)),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Status line, headers, then a Content-Length, chunked or until-EOF body
/// of at most MAX_BODY_BYTES. Interim 1xx responses are skipped.
pub fn read_response(r: &mut impl BufRead) -> Result<Response, HttpError> {
    let mut header_bytes = 0;
    loop {
        let status_line = read_line(r, &mut header_bytes)?;
        let status = parse_status(&status_line)?;
        let (length, chunked) = read_headers(r, &mut header_bytes)?;
        if (100..200).contains(&status) {
            continue;
        }
        let body = match (chunked, length) {
            (true, _) => read_chunked(r, &mut header_bytes)?,
            (false, Some(n)) => read_exact_body(r, n)?,
            (false, None) => read_to_end_bounded(r)?,
        };
        return Ok(Response { status, body });
    }
}

fn parse_status(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") && (100..600).contains(&code) => Ok(code),
        _ => Err(HttpError::Malformed(format!("status line {line:?}"))),
    }
}

/// Content-Length and whether the body is chunked.
fn read_headers(
    r: &mut impl BufRead,
    header_bytes: &mut usize,
) -> Result<(Option<usize>, bool), HttpError> {
    let (mut length, mut chunked) = (None, false);
    loop {
        let line = read_line(r, header_bytes)?;
        if line.is_empty() {
            return Ok((length, chunked));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed(format!("header {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
}

/// One CRLF- (or LF-) terminated line, counted against MAX_HEADER_BYTES.
fn read_line(r: &mut impl BufRead, used: &mut usize) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let room = MAX_HEADER_BYTES.saturating_sub(*used);
    let limit = u64::try_from(room).unwrap_or(u64::MAX);
    let n = r.take(limit).read_until(b'\n', &mut line)?;
    *used += n;
    if n == 0 {
        return Err(HttpError::Malformed(
            "connection closed mid-response".into(),
        ));
    }
    if !line.ends_with(b"\n") {
        return Err(HttpError::Malformed("header section too long".into()));
    }
    let text =
        String::from_utf8(line).map_err(|_| HttpError::Malformed("non-UTF-8 header".into()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

fn too_large() -> HttpError {
    HttpError::Malformed(format!("body larger than {MAX_BODY_BYTES} bytes"))
}

fn read_exact_body(r: &mut impl BufRead, n: usize) -> Result<Vec<u8>, HttpError> {
    if n > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let mut body = vec![0; n];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            HttpError::Malformed("body shorter than Content-Length".into())
        }
        _ => e.into(),
    })?;
    Ok(body)
}

fn read_to_end_bounded(r: &mut impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let limit = u64::try_from(MAX_BODY_BYTES + 1).unwrap_or(u64::MAX);
    r.take(limit).read_to_end(&mut body)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(body)
}

/// RFC 9112 §7.1: hex size lines (extensions ignored), data, CRLF; a zero
/// size ends it, followed by optional trailers and a blank line.
fn read_chunked(r: &mut impl BufRead, header_bytes: &mut usize) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let mut line_bytes = 0;
        let line = read_line(r, &mut line_bytes)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size {line:?}")))?;
        if size == 0 {
            while !read_line(r, header_bytes)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend(read_exact_body(r, size)?);
        if !read_line(r, &mut line_bytes)?.is_empty() {
            return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Response, HttpError> {
        read_response(&mut raw.as_bytes())
    }

    #[test]
    fn content_length_chunked_and_eof_bodies() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                       4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(parse(chunked).unwrap().body, b"{\"a\":1}");
        let r = parse("HTTP/1.0 500 Internal\nContent-Type: text/plain\n\nno such volume").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"no such volume"[..]));
        let r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n").unwrap();
        assert_eq!(r.status, 204);
    }

    #[test]
    fn malformed_and_oversized_responses_are_errors() {
        for raw in [
            "",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(HttpError::Malformed(_))),
                "{raw:?}"
            );
        }
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert!(parse(&huge).is_err());
        let long_header = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEADER_BYTES)
        );
        assert!(parse(&long_header).is_err());
        let eof_body = format!("HTTP/1.1 200 OK\r\n\r\n{}", "a".repeat(MAX_BODY_BYTES + 1));
        assert!(parse(&eof_body).is_err());
    }
}
