//! Blob bytes from a registry for the layer streams: GET with a Range
//! from the offset the stream has reached, resumed on a new connection
//! after a cut, a stall (a body that missed its deadline or fell below the
//! rate floor, fetch/deadline.rs) or a short body, a bounded number of
//! times. A body longer than the blob's size is refused. Each concurrent
//! stream borrows its own client (each with its own token).

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use super::digest::Digest;
use super::error::ImageError;
use super::layer_stream::{Progress, RangeFetch};
use crate::fetch::credentials::Credentials;
use crate::fetch::rate::RateLimit;
use crate::fetch::reference::Reference;
use crate::fetch::registry::{FetchError, Registry, RegistryOptions, Reply};

/// Connections one blob may take before the pull gives up on it.
const MAX_BLOB_ATTEMPTS: u32 = 6;
/// Progress is reported every this many bytes of a blob.
const PROGRESS_STEP_BYTES: u64 = 1 << 20;
/// Bytes read from a response body at once.
const BODY_BUFFER_BYTES: usize = 256 * 1024;

/// What it takes to open another connection to the registry that answered.
#[derive(Clone)]
pub struct RegistryRecipe {
    pub reference: Reference,
    pub options: RegistryOptions,
    pub creds: Option<Credentials>,
}

/// The registry's blobs, with a pool of clients for concurrent streams.
pub struct RegistryBlobs {
    recipe: RegistryRecipe,
    idle: Mutex<Vec<Registry>>,
    /// The pull's rate cap, shared by its streams.
    limit: Option<RateLimit>,
}

impl RegistryBlobs {
    /// `first` is the client that fetched the manifest (it holds a token).
    pub fn new(recipe: RegistryRecipe, first: Registry, limit: Option<RateLimit>) -> Self {
        RegistryBlobs {
            recipe,
            idle: Mutex::new(vec![first]),
            limit,
        }
    }

    fn borrow(&self) -> Result<Registry, ImageError> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(reg) => Ok(reg),
            None => Ok(Registry::new(
                &self.recipe.reference,
                self.recipe.creds.clone(),
                &self.recipe.options,
            )?),
        }
    }

    fn give_back(&self, reg: Registry) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(reg);
        }
    }

    /// A small blob (the config) into memory, refusing more than `max`.
    pub fn fetch_small(&self, blob: &Digest, size: u64, max: u64) -> Result<Vec<u8>, ImageError> {
        if size > max {
            return Err(ImageError::invalid(
                format!("blob {blob}"),
                format!("{size} bytes is too large for a JSON document"),
            ));
        }
        let mut bytes = Vec::new();
        self.fetch(blob, size, 0, &mut bytes, &|_| {})?;
        Ok(bytes)
    }
}

impl RangeFetch for RegistryBlobs {
    fn fetch(
        &self,
        blob: &Digest,
        size: u64,
        offset: u64,
        out: &mut dyn Write,
        progress: Progress<'_>,
    ) -> Result<(), ImageError> {
        let mut reg = self.borrow()?;
        let sink = Sink {
            out,
            progress,
            limit: self.limit.as_ref(),
        };
        let result = fetch_range(&mut reg, blob, size, offset, sink);
        self.give_back(reg);
        result
    }
}

/// Where a blob's bytes go: the stream, its progress lines, and the rate
/// cap they are charged to.
struct Sink<'a, 'p> {
    out: &'a mut dyn Write,
    progress: Progress<'p>,
    limit: Option<&'a RateLimit>,
}

/// Why copying a body stopped.
enum CopyError {
    /// The connection failed after this many bytes: resume.
    Read(io::Error, u64),
    /// Downstream refused the bytes: give up.
    Write(io::Error),
    /// The body goes on past the blob's size: give up.
    Oversized,
}

/// How one connection for a blob ended.
enum Attempt {
    /// The body ended (at the blob's end, or early) after this many bytes.
    Ended(u64),
    /// The connection failed or ran out of time after this many bytes.
    Broken(u64, String),
}

fn fetch_range(
    reg: &mut Registry,
    blob: &Digest,
    size: u64,
    mut offset: u64,
    mut sink: Sink<'_, '_>,
) -> Result<(), ImageError> {
    let what = reg.describe(&format!("blobs/{blob}"));
    let mut last = String::new();
    for attempt in 1..=MAX_BLOB_ATTEMPTS {
        if offset >= size {
            return Ok(());
        }
        match one_connection(reg, blob, size, offset, &mut sink)? {
            Attempt::Ended(n) => {
                offset += n;
                last = format!("the body ended at byte {offset} of {size}");
            }
            Attempt::Broken(n, why) => {
                offset += n;
                if attempt < MAX_BLOB_ATTEMPTS {
                    (sink.progress)(format!("{what}: {why}; resuming"));
                    std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
                }
                last = why;
            }
        }
    }
    if offset >= size {
        return Ok(());
    }
    Err(ImageError::invalid(
        what,
        format!("download incomplete after {MAX_BLOB_ATTEMPTS} connections; the last: {last}"),
    ))
}

/// One GET of the blob from `offset`, its body copied into `out`.
fn one_connection(
    reg: &mut Registry,
    blob: &Digest,
    size: u64,
    offset: u64,
    sink: &mut Sink<'_, '_>,
) -> Result<Attempt, ImageError> {
    let path = format!("blobs/{blob}");
    let reply = match reg.get(&path, &[], Some(offset), Some(size - offset)) {
        Ok(reply) => reply,
        Err(FetchError::TimedOut { reason, .. }) => return Ok(Attempt::Broken(0, reason)),
        Err(e) => return Err(e.into()),
    };
    let Reply {
        response,
        deadline,
        what,
    } = reply;
    // A server that ignores Range sends everything again: the bytes the
    // stream already has are skipped.
    let skip = if response.status().as_u16() == 206 {
        0
    } else {
        offset
    };
    let expected = size - offset + skip;
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let oversized = |sent: String| {
        ImageError::invalid(
            &what,
            format!("{sent}more than the {size} bytes the manifest gives"),
        )
    };
    if let Some(n) = length.filter(|n| *n > expected) {
        return Err(oversized(format!("Content-Length {n}, ")));
    }
    let mut body = deadline.read(response.into_body().into_reader(), Some(expected));
    match copy_body(&mut body, skip, (offset, size), blob, sink) {
        Ok(n) => Ok(Attempt::Ended(n)),
        Err(CopyError::Read(e, n)) => Ok(Attempt::Broken(n, e.to_string())),
        Err(CopyError::Write(e)) => Err(ImageError::invalid(&what, format!("stream stopped: {e}"))),
        Err(CopyError::Oversized) => Err(oversized(String::new())),
    }
}

/// Copies the body into the sink after skipping `skip` bytes, from
/// `offset` up to `size` in all; returns the bytes written. A body that
/// goes on past `size` is refused (one more read tells; a failing one is
/// taken for the end). Under a rate cap, every byte read is charged to it.
fn copy_body(
    body: &mut dyn Read,
    mut skip: u64,
    (offset, size): (u64, u64),
    blob: &Digest,
    sink: &mut Sink<'_, '_>,
) -> Result<u64, CopyError> {
    let read_size = sink
        .limit
        .map_or(BODY_BUFFER_BYTES, |l| l.read_size(BODY_BUFFER_BYTES));
    let mut buf = vec![0u8; read_size];
    let mut written: u64 = 0;
    while offset + written < size {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e, written)),
        };
        if let Some(limit) = sink.limit {
            limit.charge(n);
        }
        let mut chunk = &buf[..n];
        let dropped = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
        chunk = &chunk[dropped..];
        skip -= dropped as u64;
        let room = usize::try_from(size - offset - written).unwrap_or(usize::MAX);
        if chunk.len() > room {
            return Err(CopyError::Oversized);
        }
        sink.out.write_all(chunk).map_err(CopyError::Write)?;
        let before = offset + written;
        written += chunk.len() as u64;
        if before / PROGRESS_STEP_BYTES != (offset + written) / PROGRESS_STEP_BYTES {
            (sink.progress)(format!("blob {blob}: {}/{size} bytes", offset + written));
        }
    }
    if offset + written >= size && matches!(body.read(&mut buf[..1]), Ok(n) if n > 0) {
        return Err(CopyError::Oversized);
    }
    Ok(written)
}
