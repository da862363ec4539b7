//! A scrape's body, streamed as it is encoded, and gzip-compressed on every core.
//!
//! A 10,000-server scrape is about 23 MB of text. Building it whole before sending would
//! hold that much per scrape in flight (more than the model itself), so the body is encoded
//! piece by piece (see `exposition::pieces`) and each chunk is sent as soon as it is ready:
//! memory per scrape stays at a few chunks.
//!
//! gzip costs about 2.5 times the encoding, even with a deflater made for exposition text
//! (`deflate`), so it is spread over the cores the way `pigz` does it: the pieces are split
//! into runs of about a megabyte, each run is deflated on its own (by the threads in turn)
//! and ended on a byte boundary without ending the stream, and the runs are sent in order
//! under one gzip header and trailer, whose CRC is combined from the runs' CRCs. The result
//! is one ordinary gzip member that any decoder reads.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use hyper::body::{Body, Frame, SizeHint};

mod deflate;

use self::deflate::LineDeflater;

/// Chunks of at least this size are handed to the connection: large enough that the
/// per-chunk cost (a channel send, a chunk header, a write) is negligible.
pub const CHUNK: usize = 256 * 1024;

/// Encodes piece `k` of a body into the buffer given.
pub type EncodePiece<'a> = dyn Fn(usize, &mut Vec<u8>) + Sync + 'a;

/// Encodes pieces `0..count` in order and hands `send` chunks of at least [`CHUNK`] bytes
/// (the last one smaller). Stops early when `send` says the receiver has gone.
pub fn stream_plain(count: usize, encode: &EncodePiece, send: &mut dyn FnMut(Bytes) -> bool) {
    let mut buf = Vec::with_capacity(2 * CHUNK);
    for k in 0..count {
        encode(k, &mut buf);
        if buf.len() >= CHUNK
            && !send(Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(2 * CHUNK),
            )))
        {
            return;
        }
    }
    if !buf.is_empty() {
        send(Bytes::from(buf));
    }
}

/// The gzip header: no name, no time, "unknown" OS, as most servers send it.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Runs of about this much weight (series, for a scrape's pieces: about 1.2 MB of text)
/// are deflated each on its own. Many small runs rather than one per thread let the client
/// inflate the first ones while the last are being compressed: it works on the same cores
/// (a scraper on the machine, or curl), and its inflating is a third of the whole cost.
pub const RUN_WEIGHT: usize = 12_000;

/// Encodes pieces `0..weights.len()` in order as one gzip stream, compressed on `threads`
/// threads, and hands `send` the compressed chunks in order. `weights` are the pieces'
/// relative sizes, to cut runs of similar size ([`RUN_WEIGHT`] each, and at least one per
/// thread, but a body lighter than one run is one run). Run `r` is compressed by thread `r % threads` (0 being the calling thread),
/// and each other thread holds at most one finished run waiting to be sent: memory stays
/// at a few compressed runs.
pub fn stream_gzip(
    weights: &[usize],
    threads: usize,
    encode: &EncodePiece,
    send: &mut dyn FnMut(Bytes) -> bool,
) {
    let threads = threads.max(1);
    let total: usize = weights.iter().sum();
    // A body smaller than a run is one run, on this thread: there is too little to share.
    let runs = match total / RUN_WEIGHT {
        0 => split(weights, 1),
        runs => split(weights, runs.max(threads)),
    };
    if !send(Bytes::from_static(&GZIP_HEADER)) {
        return;
    }
    let last = runs.len() - 1;
    let runs = &runs;
    let total = std::thread::scope(|scope| {
        // The calling thread compresses runs 0, T, 2T... itself and streams them as they
        // come; threads 1..T, spawned here, the others. Fewer threads that allocate is
        // less memory kept by the allocator's per-thread arenas.
        let helpers: Vec<_> = (1..threads.min(runs.len()))
            .map(|w| {
                let (done, results) = std::sync::mpsc::sync_channel(1);
                scope.spawn(move || {
                    let mut deflater = RunDeflater::new(runs.len());
                    for r in (w..runs.len()).step_by(threads) {
                        let mut out = Vec::new();
                        let sum = deflater.run(runs[r].clone(), r == last, encode, &mut |chunk| {
                            out.push(chunk);
                            true
                        });
                        // The receiver is gone when the client is: then stop.
                        if done.send((out, sum)).is_err() {
                            return;
                        }
                    }
                });
                results
            })
            .collect();
        let mut own = RunDeflater::new(runs.len());
        let mut total: Option<Checksum> = None;
        for (r, run) in runs.iter().enumerate() {
            let sum = match r % threads {
                // Dropping the receivers stops the helpers.
                0 => own.run(run.clone(), r == last, encode, send)?,
                w => {
                    let (chunks, sum) = helpers[w - 1].recv().ok()?;
                    for chunk in chunks {
                        if !send(chunk) {
                            return None;
                        }
                    }
                    sum?
                }
            };
            match &mut total {
                None => total = Some(sum),
                Some(t) => {
                    t.crc.combine(&sum.crc);
                    t.len += sum.len;
                }
            }
        }
        total
    });
    if let Some(total) = total {
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&total.crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32, as the format says.
        trailer.extend_from_slice(&(total.len as u32).to_le_bytes());
        send(Bytes::from(trailer));
    }
}

/// The CRC and length of the uncompressed bytes of a run.
struct Checksum {
    crc: crc32fast::Hasher,
    len: u64,
}

/// A thread's compressor, kept from one run to the next: its buffers are reused rather
/// than allocated again for every run, and what it writes is copied out at its length, so
/// that a run waiting to be sent holds only its compressed bytes.
enum RunDeflater {
    /// The deflater made for exposition text: fast on large bodies.
    Lines(LineDeflater),
    /// zlib's fastest level, for a body of one run: its general matching compresses the
    /// comments and the first lines of each server, which are most of a small body, where
    /// the time taken is a few milliseconds either way.
    Zlib {
        deflate: DeflateEncoder<Vec<u8>>,
        piece: Vec<u8>,
    },
}

impl RunDeflater {
    fn new(runs: usize) -> RunDeflater {
        match runs {
            1 => RunDeflater::Zlib {
                deflate: DeflateEncoder::new(Vec::with_capacity(CHUNK), Compression::fast()),
                piece: Vec::new(),
            },
            _ => RunDeflater::Lines(LineDeflater::new()),
        }
    }

    /// The compressed bytes written so far, handed out at their length.
    fn take_output(&mut self) -> Bytes {
        let out = match self {
            RunDeflater::Lines(lines) => lines.output(),
            RunDeflater::Zlib { deflate, .. } => deflate.get_mut(),
        };
        let bytes = Bytes::copy_from_slice(out);
        out.clear();
        bytes
    }

    fn pending(&self) -> usize {
        match self {
            RunDeflater::Lines(lines) => lines.pending(),
            RunDeflater::Zlib { deflate, .. } => deflate.get_ref().len(),
        }
    }

    /// Raw-deflates pieces `run`, handing `emit` the compressed bytes; the last run ends
    /// the deflate stream, the others end on a byte boundary so that the next run can
    /// follow.
    fn run(
        &mut self,
        run: std::ops::Range<usize>,
        last: bool,
        encode: &EncodePiece,
        emit: &mut dyn FnMut(Bytes) -> bool,
    ) -> Option<Checksum> {
        // Every run starts a fresh stream: no reference back into the run before it.
        let mut sum = Checksum {
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        match self {
            RunDeflater::Lines(lines) => lines.begin(last),
            RunDeflater::Zlib { deflate, .. } => {
                let output = std::mem::take(deflate.get_mut());
                deflate.reset(output).ok()?;
            }
        }
        for k in run {
            match self {
                // Encoded straight into the compressor's buffer.
                RunDeflater::Lines(lines) => lines.write_with(|text| encode(k, text)),
                RunDeflater::Zlib { deflate, piece } => {
                    piece.clear();
                    encode(k, piece);
                    sum.crc.update(piece);
                    sum.len += piece.len() as u64;
                    // Writing into a Vec cannot fail.
                    deflate.write_all(piece).ok()?;
                }
            }
            if self.pending() >= CHUNK && !emit(self.take_output()) {
                return None;
            }
        }
        match self {
            RunDeflater::Lines(lines) => (sum.crc, sum.len) = lines.finish(),
            RunDeflater::Zlib { deflate, .. } if last => deflate.try_finish().ok()?,
            RunDeflater::Zlib { deflate, .. } => deflate.flush().ok()?,
        }
        let tail = self.take_output();
        if !tail.is_empty() && !emit(tail) {
            return None;
        }
        Some(sum)
    }
}

/// `count` contiguous runs of pieces (fewer when there are fewer pieces) of about equal
/// total weight.
fn split(weights: &[usize], count: usize) -> Vec<std::ops::Range<usize>> {
    let threads = count;
    let total: usize = weights.iter().sum();
    let mut runs = Vec::with_capacity(threads);
    let mut start = 0;
    let mut acc = 0;
    for (k, w) in weights.iter().enumerate() {
        acc += w;
        let boundary = total * (runs.len() + 1) / threads;
        if acc >= boundary && runs.len() + 1 < threads && k + 1 < weights.len() {
            runs.push(start..k + 1);
            start = k + 1;
        }
    }
    runs.push(start..weights.len());
    runs
}

/// A response body fed by the thread that encodes it.
pub struct ChannelBody {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it; `depth` chunks may wait to be written.
    pub fn channel(depth: usize) -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(depth);
        (tx, ChannelBody { chunks: rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Pieces of varied, compressible text, as an exposition's are.
    fn piece(k: usize, out: &mut Vec<u8>) {
        for line in 0..(k * 37 % 500 + 1) {
            let _ = writeln!(
                out,
                "app_cpu_usage{{server=\"srv-{k:05}\",n=\"{line}\"}} {}",
                (k * line) as f64 / 7.0
            );
        }
    }

    fn plain(count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        stream_plain(count, &piece, &mut |c| {
            out.extend_from_slice(&c);
            true
        });
        out
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A single-member decoder: the body must be one gzip member, not several.
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a valid gzip stream");
        out
    }

    #[test]
    fn plain_chunks_join_to_the_pieces_in_order() {
        let mut expected = Vec::new();
        for k in 0..200 {
            piece(k, &mut expected);
        }
        let mut chunks = Vec::new();
        stream_plain(200, &piece, &mut |c| {
            chunks.push(c.len());
            true
        });
        assert_eq!(plain(200), expected);
        assert!(chunks.len() > 1, "{chunks:?}");
        assert!(chunks[..chunks.len() - 1].iter().all(|&n| n >= CHUNK));
    }

    #[test]
    fn gzip_on_any_number_of_threads_is_one_member_that_decodes_to_the_plain_body() {
        for (count, threads) in [(200, 1), (200, 2), (200, 3), (7, 8), (1, 2)] {
            let weights: Vec<usize> = (0..count).map(|k| k * 37 % 500 + 1).collect();
            let mut gz = Vec::new();
            stream_gzip(&weights, threads, &piece, &mut |c| {
                gz.extend_from_slice(&c);
                true
            });
            assert_eq!(
                gunzip(&gz),
                plain(count),
                "{count} pieces on {threads} threads"
            );
            // A multi-member stream would also decode with a multi-member reader; the
            // single-member reader above would stop after the first member.
            let mut members = 0;
            let mut rest: &[u8] = &gz;
            while !rest.is_empty() {
                let mut d = flate2::bufread::GzDecoder::new(rest);
                std::io::copy(&mut d, &mut std::io::sink()).unwrap();
                rest = d.into_inner();
                members += 1;
            }
            assert_eq!(members, 1);
        }
    }

    #[test]
    fn the_first_runs_are_sent_before_the_last_are_encoded() {
        // 16 runs of 10 pieces on 2 threads.
        let weights = vec![RUN_WEIGHT / 10; 160];
        let events = std::sync::Mutex::new(Vec::new());
        let encode = |k: usize, out: &mut Vec<u8>| {
            events.lock().unwrap().push(format!("encode {k}"));
            piece(k, out);
        };
        let mut sent = 0;
        let mut gz = Vec::new();
        stream_gzip(&weights, 2, &encode, &mut |c| {
            gz.extend_from_slice(&c);
            sent += 1;
            events.lock().unwrap().push(format!("send {sent}"));
            true
        });
        assert_eq!(gunzip(&gz), plain(160));
        let events = events.into_inner().unwrap();
        let at = |e: &str| events.iter().position(|x| x == e).unwrap();
        // The header is send 1, the first run send 2.
        assert!(at("send 2") < at("encode 159"), "{events:?}");
        assert!(sent >= 16, "{sent} sends");
    }

    #[test]
    fn a_receiver_that_goes_away_stops_the_stream() {
        let weights = vec![500; 200];
        let mut sends = 0;
        stream_gzip(&weights, 2, &piece, &mut |_| {
            sends += 1;
            sends < 2
        });
        assert_eq!(sends, 2);
        let mut sends = 0;
        stream_plain(200, &piece, &mut |_| {
            sends += 1;
            false
        });
        assert_eq!(sends, 1);
    }

    #[test]
    fn runs_cover_the_pieces_once_with_similar_weight() {
        assert_eq!(split(&[1, 1, 1, 1], 2), vec![0..2, 2..4]);
        assert_eq!(
            split(&[10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 2),
            vec![0..1, 1..11]
        );
        assert_eq!(split(&[5], 4), vec![0..1]);
        assert_eq!(split(&[1, 1, 1], 1), vec![0..3]);
        let runs = split(&[3; 100], 3);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 100);
    }
}
