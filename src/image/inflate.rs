//! Decompressing a layer on a thread of its own: compressed bytes in,
//! bounded chunks of the uncompressed stream out (hashed for the diff_id
//! and held to the size and ratio limits on the way), so that inflating
//! overlaps with extraction on the reading side. No file is written here.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::bufread::GzDecoder;
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::unpack::{Compression, UnpackLimits, detect_compression};

/// Uncompressed bytes per chunk handed to the reader.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight: bounds the memory one layer holds (4 MiB) while
/// letting the two sides run at their own pace for a while.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Compressed bytes read from the source at once (also how far the
/// ratio check's compressed count can run ahead of the decoder).
const INPUT_BUFFER_BYTES: usize = 256 * 1024;

/// What the inflating thread found once the stream ended.
#[derive(Debug)]
pub struct Inflated {
    pub diff_id: Digest,
    pub bytes: u64,
}

/// The reading side: the uncompressed stream, in order.
pub struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next;
                    self.pos = 0;
                }
                // The sender is gone: the end, or a failure the join reports.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl ChunkReader {
    /// Reads (and drops) whatever is left: the diff_id covers all of the
    /// stream, tar's zero padding after the last entry included.
    pub fn drain(&mut self) {
        self.chunk.clear();
        self.pos = 0;
        while self.rx.recv().is_ok() {}
    }
}

/// Starts inflating `input` on a new thread. The thread ends when the
/// stream does, on an error, or when the reader is dropped.
pub fn spawn_inflater(
    input: impl Read + Send + 'static,
    limits: UnpackLimits,
) -> io::Result<(ChunkReader, JoinHandle<io::Result<Inflated>>)> {
    let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
    let handle = std::thread::Builder::new()
        .name("inflate".into())
        .spawn(move || inflate(input, limits, tx))?;
    let reader = ChunkReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
    };
    Ok((reader, handle))
}

fn inflate(
    input: impl Read,
    limits: UnpackLimits,
    tx: SyncSender<Vec<u8>>,
) -> io::Result<Inflated> {
    let compressed = Rc::new(Cell::new(0));
    let raw = CountedInput {
        inner: input,
        count: Rc::clone(&compressed),
    };
    let mut source = BufReader::with_capacity(INPUT_BUFFER_BYTES, raw);
    let head = io::BufRead::fill_buf(&mut source)?;
    let kind = detect_compression(head);
    let mut decoder: Box<dyn Read + '_> = match kind {
        Compression::None => Box::new(&mut source),
        Compression::Gzip => Box::new(GzDecoder::new(&mut source)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(&mut source)?),
    };
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    loop {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        let n = fill(&mut *decoder, &mut chunk)?;
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        total += n as u64;
        check_limits(total, compressed.get(), &limits)?;
        hasher.update(&chunk);
        if tx.send(chunk).is_err() {
            return Err(io::Error::other(super::unpack::READER_GONE));
        }
    }
    drop(decoder);
    // Bytes after the end of the compressed stream belong to the blob
    // (its digest covers them) but not to the layer: read them so that
    // the writer never blocks on a full pipe.
    io::copy(&mut source, &mut io::sink())?;
    let diff_id = Digest::of_hasher(hasher);
    Ok(Inflated {
        diff_id,
        bytes: total,
    })
}

/// Reads until `buf` is full or the stream ends; decoders return short
/// reads, and full chunks keep the channel's traffic low.
fn fill(from: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Refuses a layer past the size limit, or one expanding faster than the
/// ratio limit allows once past the floor (a decompression bomb).
fn check_limits(total: u64, compressed: u64, limits: &UnpackLimits) -> io::Result<()> {
    if total > limits.max_bytes {
        return Err(io::Error::other(format!(
            "layer expands beyond the limit of {} bytes",
            limits.max_bytes
        )));
    }
    let ratio = total / compressed.max(1);
    if total > limits.ratio_floor_bytes && ratio > limits.max_ratio {
        return Err(io::Error::other(format!(
            "compression ratio over {}:1 (a decompression bomb?)",
            limits.max_ratio
        )));
    }
    Ok(())
}

/// Counts the compressed bytes read, for the ratio check.
struct CountedInput<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountedInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn inflates_gzip_and_hashes_the_output() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let blob = gz.finish().unwrap();
        let (mut reader, handle) =
            spawn_inflater(io::Cursor::new(blob), UnpackLimits::default()).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        let done = handle.join().unwrap().unwrap();
        assert_eq!(out, data);
        assert_eq!(done.bytes, data.len() as u64);
        assert_eq!(done.diff_id, Digest::of_bytes(&data));
    }

    #[test]
    fn a_bomb_is_refused() {
        let data = vec![0u8; 8 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data).unwrap();
        let limits = UnpackLimits {
            ratio_floor_bytes: 1 << 20,
            ..UnpackLimits::default()
        };
        let (mut reader, handle) =
            spawn_inflater(io::Cursor::new(gz.finish().unwrap()), limits).unwrap();
        reader.drain();
        let err = handle.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("ratio"), "{err}");
    }
}
