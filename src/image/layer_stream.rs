//! One layer in one pass: its compressed bytes flow from where they come
//! from (a registry, a file) into a spool file on disk, through sha256
//! and into a confined helper that inflates, checks the diff_id and
//! extracts. The layer is good only when the blob's size and digest
//! matched, and the helper succeeded; a spool that failed verification is
//! deleted, one cut short by the transport is kept to resume from.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::error::ImageError;
use super::unpack::UnpackReport;
use super::unpack_helper::LayerHelper;
use crate::kernel::start_writeback;

/// Progress lines, from any thread.
pub type Progress<'a> = &'a (dyn Fn(String) + Sync);

/// Bytes read from a file at once when feeding a layer.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// A source of blob bytes that can start at an offset (a registry's Range
/// request, a seek in a file).
pub trait RangeFetch: Sync {
    /// Writes blob `blob` (`size` bytes) from `offset` to its end into
    /// `out`. Transport trouble is retried inside; an error writing to
    /// `out` ends the fetch at once (the layer failed downstream).
    fn fetch(
        &self,
        blob: &Digest,
        size: u64,
        offset: u64,
        out: &mut dyn Write,
        progress: Progress<'_>,
    ) -> Result<(), ImageError>;
}

/// Where a layer's compressed bytes come from.
pub enum BlobInput<'a> {
    /// Complete bytes already in the store or the staging area.
    Stored(PathBuf),
    /// Bytes brought in by `fetch`, kept on disk as they arrive: in
    /// `partial` while incomplete (bytes already there are fed first, the
    /// rest is fetched from that offset), renamed to `done` once verified.
    /// A `done` left by an earlier run is fed again, not fetched.
    Spooled {
        partial: PathBuf,
        done: PathBuf,
        fetch: &'a dyn RangeFetch,
    },
}

/// One layer to bring in.
pub struct LayerJob<'a> {
    pub blob: Digest,
    /// The blob's size, when the source declares it.
    pub size: Option<u64>,
    pub diff_id: Digest,
    pub what: String,
    pub input: BlobInput<'a>,
    /// Where to unpack (a new, empty directory); None: only verify.
    pub target: Option<PathBuf>,
    /// Bytes the unpacking must leave free on the target's filesystem.
    pub reserve: u64,
}

/// Streams `job` through a helper. Returns the helper's report, and the
/// file that now holds the verified blob.
pub fn stream_layer(
    job: &LayerJob<'_>,
    progress: Progress<'_>,
) -> Result<(UnpackReport, PathBuf), ImageError> {
    let mut helper =
        LayerHelper::spawn(job.target.as_deref(), &job.diff_id, &job.what, job.reserve)?;
    let mut feed = Feed::new(helper.input());
    let fed = feed_input(job, &mut feed, progress);
    let (digest, size, broken) = feed.finish();
    // Closing the input first: the helper's verdict needs the stream's end.
    let verdict = helper.finish();
    let spool = match &job.input {
        BlobInput::Stored(path) => path.clone(),
        BlobInput::Spooled { done, .. } if done.exists() => done.clone(),
        BlobInput::Spooled { partial, .. } => partial.clone(),
    };
    let outcome = match (fed, verdict) {
        // The helper stopped reading: its own error says why.
        (Err(_), Err(e)) if broken => Err((e, true)),
        (Err(e), _) => Err((e, broken)),
        (Ok(()), verdict) => check_blob(job, &digest, size)
            .map_err(|e| (e, true))
            .and_then(|()| verdict.map_err(|e| (e, true))),
    };
    match outcome {
        Ok(report) => Ok((report, keep_spool(&job.input, &spool)?)),
        Err((e, bad_bytes)) => {
            // Bytes that failed a check must not be fed again; bytes cut
            // short by the network are kept for the next attempt. When the
            // helper stopped reading, its own error says why.
            if bad_bytes && let BlobInput::Spooled { partial, done, .. } = &job.input {
                let _ = fs::remove_file(partial);
                let _ = fs::remove_file(done);
            }
            Err(e)
        }
    }
}

/// Renames a verified spool to its `done` name; returns the blob's file.
fn keep_spool(input: &BlobInput<'_>, spool: &Path) -> Result<PathBuf, ImageError> {
    match input {
        BlobInput::Stored(path) => Ok(path.clone()),
        BlobInput::Spooled { done, .. } if spool == done => Ok(done.clone()),
        BlobInput::Spooled { done, .. } => {
            fs::rename(spool, done).map_err(ImageError::io("rename download", spool))?;
            Ok(done.clone())
        }
    }
}

fn check_blob(job: &LayerJob<'_>, digest: &Digest, size: u64) -> Result<(), ImageError> {
    if let Some(want) = job.size.filter(|s| *s != size) {
        return Err(ImageError::SizeMismatch {
            what: job.what.clone(),
            expected: want,
            actual: size,
        });
    }
    if digest != &job.blob {
        return Err(ImageError::DigestMismatch {
            what: job.what.clone(),
            expected: job.blob.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(())
}

fn feed_input(
    job: &LayerJob<'_>,
    feed: &mut Feed<'_>,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    match &job.input {
        BlobInput::Stored(path) => feed_file(path, feed, u64::MAX),
        BlobInput::Spooled { done, .. } if done.exists() => {
            progress(format!("{}: verifying the finished download", job.what));
            feed_file(done, feed, u64::MAX)
        }
        BlobInput::Spooled { partial, fetch, .. } => {
            feed_spool(job, partial, *fetch, feed, progress)
        }
    }
}

/// Feeds what `partial` already holds, then fetches the rest into it.
fn feed_spool(
    job: &LayerJob<'_>,
    partial: &Path,
    fetch: &dyn RangeFetch,
    feed: &mut Feed<'_>,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    let size = job
        .size
        .ok_or_else(|| ImageError::invalid(&job.what, "a fetched blob needs its size declared"))?;
    let mut have = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    if have > size {
        have = 0; // not this blob's bytes: start over
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(partial)
        .map_err(ImageError::io("open download", partial))?;
    file.set_len(have)
        .map_err(ImageError::io("truncate download", partial))?;
    if have > 0 {
        progress(format!(
            "{}: resuming from {have} of {size} bytes",
            job.what
        ));
        feed_reader(&mut (&file).take(have), feed, partial)?;
    }
    if have == size {
        return Ok(());
    }
    let mut tee = Tee {
        file: &mut file,
        feed,
        written: have,
        flushed: have,
    };
    fetch.fetch(&job.blob, size, have, &mut tee, progress)?;
    tee.file
        .flush()
        .map_err(ImageError::io("write download", partial))
}

fn feed_file(path: &Path, feed: &mut Feed<'_>, limit: u64) -> Result<(), ImageError> {
    let file = File::open(path).map_err(ImageError::io("open blob", path))?;
    feed_reader(&mut file.take(limit), feed, path)
}

fn feed_reader(from: &mut dyn Read, feed: &mut Feed<'_>, path: &Path) -> Result<(), ImageError> {
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImageError::io("read blob", path)(e)),
        };
        feed.write_all(&buf[..n])
            .map_err(ImageError::io("feed unpack helper", path))?;
    }
}

/// Hashes and counts the bytes on their way into the helper's pipe.
struct Feed<'p> {
    pipe: Option<&'p mut std::process::ChildStdin>,
    hasher: Sha256,
    bytes: u64,
    /// The helper stopped reading (it failed, or finished early).
    broken: bool,
}

impl<'p> Feed<'p> {
    fn new(pipe: Option<&'p mut std::process::ChildStdin>) -> Self {
        Feed {
            pipe,
            hasher: Sha256::new(),
            bytes: 0,
            broken: false,
        }
    }

    fn finish(self) -> (Digest, u64, bool) {
        (Digest::of_hasher(self.hasher), self.bytes, self.broken)
    }
}

impl Write for Feed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let pipe = self
            .pipe
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        if let Err(e) = pipe.write_all(buf) {
            self.broken = true;
            return Err(e);
        }
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Spooled bytes are handed to writeback every this many bytes.
const WRITEBACK_STEP_BYTES: u64 = 8 << 20;

/// Fetched bytes go to the spool file first (so that what is on disk is
/// always a prefix of what was fed), then into the feed.
struct Tee<'a, 'p> {
    file: &'a mut File,
    feed: &'a mut Feed<'p>,
    /// Bytes in the file, and how many of them writeback was started for.
    written: u64,
    flushed: u64,
}

impl Write for Tee<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        if self.written - self.flushed >= WRITEBACK_STEP_BYTES {
            // Best effort, so the commit's syncfs has less left to do.
            let fd = std::os::fd::AsFd::as_fd(&*self.file);
            let _ = start_writeback(fd, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
        self.feed.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
