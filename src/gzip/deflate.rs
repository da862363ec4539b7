//! Deflate (RFC 1951) for exposition text, fast because it knows the shape of its lines.
//!
//! A general compressor looks for repeats at every byte: for a scrape that is most of its
//! cost, because about a third of the text is the digits of values, which never repeat.
//! Exposition text repeats in known places instead. A sample line is
//!
//! ```text
//! app_cpu_usage{server="srv-00042",dc="dc1",role="web"} 42.429085017450475
//! `--------- head ---------------'`------- tail --------'`---- value ----'
//! ```
//!
//! - the head, up to the end of the first label's value, shares its start with the line
//!   before (same name, a server name that differs in its last digits);
//! - the tail, the other labels up to `} `, is the same as in an earlier line of a server
//!   of the same data centre and role (and `le`, `status`): a hash of it finds the last one;
//! - the value is written as it is.
//!
//! So each line costs two lookups and its value's literals. Every reference is checked
//! against the bytes it points at before it is used: a line of another shape (comments,
//! series without labels, odd label values) only compresses less, never wrongly.
//!
//! The Huffman codes are chosen once, for what is left to literals: digits. They go in the
//! header of each run's one dynamic block, so there are no frequencies to count and no tree
//! to build. On a 10,000-server scrape (23 MB, one core of the 2-core machine the bench
//! ran on) this gave 4.6 MB in about 26 ms, where zlib's fastest level (zlib-rs) gave
//! 4.95 MB in about 58 ms.

/// Deflate's window: no reference reaches further back.
const WINDOW: usize = 32 * 1024;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;

/// Bytes kept in the buffer before its consumed start is dropped (keeping the window).
const COMPACT_AT: usize = 256 * 1024;

/// The table of tails has 2^TAIL_BITS slots.
const TAIL_BITS: u32 = 12;
const NO_TAIL: u64 = u64::MAX;

/// Compresses a run of text into raw deflate: one block with the codes below, ended either
/// as the last block of the stream or by an empty stored block (as zlib's sync flush), so
/// that the next run, compressed on its own, can follow it in one stream.
pub struct LineDeflater {
    out: Vec<u8>,
    bits: u64,
    nbits: u32,
    /// Text from absolute position `base` of the run on: the window behind the next line,
    /// then the bytes not yet compressed (the start of a line still being written).
    text: Vec<u8>,
    base: u64,
    /// Where in `text` the next line starts.
    next: usize,
    /// The line before.
    prev: Option<Line>,
    /// The ends of the lines written by the last call, kept for its buffer.
    ends: Vec<usize>,
    /// Absolute position of the last tail with each hash.
    tails: Vec<u64>,
    crc: crc32fast::Hasher,
    len: u64,
    last: bool,
}

/// Where a line was, for the next to refer to.
#[derive(Clone, Copy)]
struct Line {
    /// Its start, as an absolute position in the run.
    at: u64,
    len: usize,
    /// Its parts, when it has the shape of a sample.
    shape: Option<Shape>,
}

impl Default for LineDeflater {
    fn default() -> Self {
        LineDeflater::new()
    }
}

impl LineDeflater {
    pub fn new() -> LineDeflater {
        LineDeflater {
            out: Vec::new(),
            bits: 0,
            nbits: 0,
            text: Vec::new(),
            base: 0,
            next: 0,
            prev: None,
            ends: Vec::new(),
            tails: vec![NO_TAIL; 1 << TAIL_BITS],
            crc: crc32fast::Hasher::new(),
            len: 0,
            last: false,
        }
    }

    /// Starts a run; `last` says whether it ends the deflate stream. Nothing of the run
    /// before is referred to.
    pub fn begin(&mut self, last: bool) {
        self.out.clear();
        self.bits = 0;
        self.nbits = 0;
        self.text.clear();
        self.base = 0;
        self.next = 0;
        self.prev = None;
        self.tails.fill(NO_TAIL);
        self.crc = crc32fast::Hasher::new();
        self.len = 0;
        self.last = last;
        // BFINAL, then BTYPE 10: a dynamic block, with the codes above.
        self.put(last as u64 | 0b100, 3);
        self.put((LITERAL_SYMBOLS - 257) as u64, 5);
        self.put((DISTANCE_SYMBOLS - 1) as u64, 5);
        self.put(19 - 4, 4);
        for symbol in CODE_LENGTH_ORDER {
            self.put(CODE_LENGTH_LENGTHS[symbol] as u64, 3);
        }
        for &len in LITERAL_LENGTHS.iter().chain(&DISTANCE_LENGTHS) {
            let len = len as usize;
            self.put(
                CODE_LENGTH_CODES[len] as u64,
                CODE_LENGTH_LENGTHS[len] as u32,
            );
        }
    }

    /// Compresses what `fill` appends to the buffer it is given (text written there needs
    /// no copy), but for a last incomplete line, kept until the next call.
    pub fn write_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let old = self.text.len();
        fill(&mut self.text);
        self.crc.update(&self.text[old..]);
        self.len += (self.text.len() - old) as u64;
        let mut ends = std::mem::take(&mut self.ends);
        ends.clear();
        // Searched from where the last line ended: the bytes kept had no newline.
        ends.extend(memchr::memchr_iter(b'\n', &self.text[old..]).map(|e| old + e + 1));
        for &end in &ends {
            self.line(self.next, end);
            self.next = end;
        }
        self.ends = ends;
        if self.text.len() > COMPACT_AT && self.next > WINDOW {
            let drop = self.next - WINDOW;
            self.text.drain(..drop);
            self.next -= drop;
            self.base += drop as u64;
        }
    }

    /// Ends the run (an incomplete last line is written as it is): the compressed bytes
    /// are in [`LineDeflater::output`], ending on a byte boundary. Returns the CRC-32 and
    /// length of the run's text.
    pub fn finish(&mut self) -> (crc32fast::Hasher, u64) {
        let rest = self.text.len();
        if self.next < rest {
            self.literals(self.next, rest);
            self.next = rest;
        }
        self.put(
            LITERAL_CODES[END_OF_BLOCK] as u64,
            LITERAL_LENGTHS[END_OF_BLOCK] as u32,
        );
        if !self.last {
            // An empty stored block: BFINAL 0, BTYPE 00, aligned, LEN 0 and NLEN !0.
            self.put(0, 3);
            self.align();
            self.out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        } else {
            self.align();
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
        (crc, self.len)
    }

    /// How many compressed bytes wait in [`LineDeflater::output`].
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// The compressed bytes written so far, for the caller to take.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// One line, `text[start..end]`, with its newline.
    fn line(&mut self, start: usize, end: usize) {
        let at = self.base + start as u64;
        // What the line shares with the line before: most of the head, for a sample line.
        let prev = self.prev.filter(|p| (at - p.at) as usize <= start);
        let shared = match prev {
            Some(p) => {
                let from = start - (at - p.at) as usize;
                common_prefix(&self.text[start..end], &self.text[from..from + p.len])
            }
            None => 0,
        };
        let shape = Shape::of(&self.text[start..end], prev.and_then(|p| p.shape), shared);
        self.prev = Some(Line {
            at,
            len: end - start,
            shape,
        });
        let Some(shape) = shape else {
            return self.literals(start, end);
        };
        let (head, tail) = (start + shape.head, start + shape.tail);
        // The head: the start it shares with the line before.
        let mut from = start;
        if let Some(p) = prev {
            let shared = shared.min(shape.head);
            if shared >= MIN_MATCH && (at - p.at) as usize <= WINDOW {
                self.copy(shared, (at - p.at) as usize);
                from += shared;
            }
        }
        self.literals(from, head);
        // The tail: where the same bytes were last seen, or else the start it shares with
        // the tail of the line before (the same labels, another `le`).
        let slot = tail_hash(&self.text[head..tail]);
        let seen = std::mem::replace(&mut self.tails[slot], self.base + head as u64);
        let distance = (self.base + head as u64).wrapping_sub(seen) as usize;
        let mut from = head;
        if seen != NO_TAIL
            && tail - head >= MIN_MATCH
            && distance <= WINDOW
            && distance <= head
            && self.text[head - distance..tail - distance] == self.text[head..tail]
        {
            self.copy(tail - head, distance);
            from = tail;
        } else if let Some(Line {
            at: prev_at,
            shape: Some(prev_shape),
            ..
        }) = prev
        {
            let distance = (self.base + head as u64 - (prev_at + prev_shape.head as u64)) as usize;
            from += self.copy_shared(head, tail, distance);
        }
        self.literals(from, end);
    }

    /// Refers to the longest start of `text[from..to]` found `distance` back, if long
    /// enough; returns its length.
    fn copy_shared(&mut self, from: usize, to: usize, distance: usize) -> usize {
        if distance > WINDOW || distance > from {
            return 0;
        }
        let p = from - distance;
        let shared = common_prefix(&self.text[from..to], &self.text[p..p + (to - from)]);
        if shared < MIN_MATCH {
            return 0;
        }
        self.copy(shared, distance);
        shared
    }

    fn literals(&mut self, from: usize, to: usize) {
        // The bit buffer in locals: stores to `self` in the loop would chain every byte.
        // Four literals (at most 48 bits) go in before the whole bytes are written out,
        // without a branch: 8 bytes are stored and the length moves by those complete.
        let (mut bits, mut nbits) = (self.bits, self.nbits);
        let out = &mut self.out;
        out.reserve((to - from) * 2 + 16);
        let mut flush = |bits: &mut u64, nbits: &mut u32| {
            let len = out.len();
            out.extend_from_slice(&bits.to_le_bytes());
            let whole = *nbits / 8;
            out.truncate(len + whole as usize);
            *bits = bits.checked_shr(whole * 8).unwrap_or(0);
            *nbits -= whole * 8;
        };
        // What `put` left (up to 31 bits) goes out first.
        flush(&mut bits, &mut nbits);
        let mut quads = self.text[from..to].chunks_exact(4);
        for quad in &mut quads {
            for &b in quad {
                let (code, len) = LITERALS[b as usize];
                bits |= (code as u64) << nbits;
                nbits += len as u32;
            }
            flush(&mut bits, &mut nbits);
        }
        for &b in quads.remainder() {
            let (code, len) = LITERALS[b as usize];
            bits |= (code as u64) << nbits;
            nbits += len as u32;
        }
        flush(&mut bits, &mut nbits);
        (self.bits, self.nbits) = (bits, nbits);
    }

    /// A reference to `length` bytes `distance` back (longer than deflate allows: several).
    fn copy(&mut self, mut length: usize, distance: usize) {
        debug_assert!((1..=WINDOW).contains(&distance));
        let (dcode, dbits) = distance_code(distance);
        while length >= MIN_MATCH {
            // What is left after a piece must itself be long enough to be a reference.
            let piece = if length > MAX_MATCH {
                MAX_MATCH.min(length - MIN_MATCH)
            } else {
                length
            };
            let (lcode, lbits) = LENGTHS[piece - MIN_MATCH];
            self.put(lcode as u64 | (dcode as u64) << lbits, lbits as u32 + dbits);
            length -= piece;
        }
        debug_assert_eq!(length, 0);
    }

    #[inline]
    fn put(&mut self, code: u64, len: u32) {
        self.bits |= code << self.nbits;
        self.nbits += len;
        if self.nbits >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.nbits -= 32;
        }
    }

    /// Pads with zero bits to the next byte boundary and writes what is pending.
    fn align(&mut self) {
        while self.nbits > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }
}

/// Where the parts of a sample line are, from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    /// `{`, and the quote that opens the first label's value.
    brace: usize,
    open: usize,
    /// The head ends at the quote that closes the first label's value.
    head: usize,
    /// The tail ends after `}` and the space after it.
    tail: usize,
}

impl Shape {
    /// The shape of `line`, or `None` for a line of another shape. `prev` is the line
    /// before's shape, whose first `shared` bytes are the same as this line's: what lies in
    /// them is where it was, and is not searched again.
    fn of(line: &[u8], prev: Option<Shape>, shared: usize) -> Option<Shape> {
        let find = |byte: u8, from: usize| {
            line[from..]
                .iter()
                .position(|&b| b == byte)
                .map(|i| from + i)
        };
        let (brace, open, head) = match prev {
            Some(p) if shared > p.head => (p.brace, p.open, p.head),
            // No quote lies between the open one and `shared`: the line before had none.
            Some(p) if shared > p.open => (p.brace, p.open, find(b'"', shared.max(p.open + 1))?),
            _ => {
                let brace = memchr::memchr(b'{', line)?;
                let open = find(b'"', brace + 1)?;
                (brace, open, find(b'"', open + 1)?)
            }
        };
        // The value, after the last `}`, is short: searched from the end.
        let close = memchr::memrchr(b'}', line)?;
        let tail = close + 1 + (line.get(close + 1) == Some(&b' ')) as usize;
        (close > head).then_some(Shape {
            brace,
            open,
            head,
            tail,
        })
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap())
            ^ u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// A slot for `bytes`. The words are combined side by side rather than one after the
/// other (a chain of multiplications would be the slowest part of a line), then mixed
/// once; the slot is taken from the top bits, which every input bit reaches.
fn tail_hash(bytes: &[u8]) -> usize {
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for (i, w) in (&mut words).enumerate() {
        h = h.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()).rotate_left(11 * i as u32));
    }
    // The last 8 bytes, overlapping the words when the length is not a multiple of 8.
    let last = match bytes.len() {
        8.. => u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap()),
        _ => words.remainder().iter().fold(0, |h, &b| h << 8 | b as u64),
    };
    h ^= last.rotate_left(32);
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - TAIL_BITS)) as usize
}

/// Literal/length symbols that have a code (257 to 285 are the lengths) and distance
/// symbols.
const LITERAL_SYMBOLS: usize = 286;
const DISTANCE_SYMBOLS: usize = 30;
const END_OF_BLOCK: usize = 256;

/// The code's lengths for literals and lengths, chosen for exposition text once, rather than
/// counted for each run: what is left to literals is almost all the digits of values. So
/// digits take 4 bits (their entropy is 3.3), `.` and newlines 5, references 7 plus their
/// extra bits, and every other byte 11 or 12. The code is complete, as decoders require.
const LITERAL_LENGTHS: [u8; LITERAL_SYMBOLS] = {
    let mut lengths = [12u8; LITERAL_SYMBOLS];
    let mut s = 0;
    while s < LITERAL_SYMBOLS {
        lengths[s] = match s {
            0x30..=0x39 => 4,
            0x2e | 0x0a => 5,
            257..=285 => 7,
            END_OF_BLOCK | 0x65 | 0x2b | 0x2d => 9,
            _ => 12,
        };
        s += 1;
    }
    // Room left in the code goes to the other printable characters, one bit shorter.
    let mut c = 0x20;
    while c < 0x7f && kraft(&lengths) < 1 << 15 {
        if lengths[c] == 12 {
            lengths[c] = 11;
        }
        c += 1;
    }
    assert!(
        kraft(&lengths) == 1 << 15,
        "the literal code is not complete"
    );
    lengths
};

/// Distances: 5 bits each, but 4 for 65 to 128 back, about a line: the heads' references.
const DISTANCE_LENGTHS: [u8; DISTANCE_SYMBOLS] = {
    let mut lengths = [5u8; DISTANCE_SYMBOLS];
    lengths[12] = 4;
    lengths[13] = 4;
    assert!(
        kraft(&lengths) == 1 << 15,
        "the distance code is not complete"
    );
    lengths
};

/// The lengths of the code for code lengths (deflate sends a dynamic block's codes as code
/// lengths, themselves coded): only the lengths used above have a code.
const CODE_LENGTH_LENGTHS: [u8; 19] = {
    let mut lengths = [0u8; 19];
    lengths[12] = 2;
    lengths[11] = 2;
    lengths[7] = 3;
    lengths[5] = 3;
    lengths[4] = 3;
    lengths[9] = 3;
    assert!(
        kraft(&lengths) == 1 << 15,
        "the code-length code is not complete"
    );
    lengths
};

/// The order in which a dynamic block's header gives the code-length code's lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

const LITERAL_CODES: [u16; LITERAL_SYMBOLS] = canonical(&LITERAL_LENGTHS);
const DISTANCE_CODES: [u16; DISTANCE_SYMBOLS] = canonical(&DISTANCE_LENGTHS);
const CODE_LENGTH_CODES: [u16; 19] = canonical(&CODE_LENGTH_LENGTHS);

/// Kraft's sum of a code's lengths, in units of 2^-15: 2^15 for a complete code.
const fn kraft<const N: usize>(lengths: &[u8; N]) -> u32 {
    let mut sum = 0;
    let mut s = 0;
    while s < N {
        if lengths[s] > 0 {
            sum += 1 << (15 - lengths[s]);
        }
        s += 1;
    }
    sum
}

/// The canonical Huffman codes of `lengths` (RFC 1951, 3.2.2), bit-reversed for deflate's
/// LSB-first order.
const fn canonical<const N: usize>(lengths: &[u8; N]) -> [u16; N] {
    let mut count = [0u16; 16];
    let mut s = 0;
    while s < N {
        count[lengths[s] as usize] += 1;
        s += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0;
    let mut bits = 1;
    while bits < 16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
        bits += 1;
    }
    let mut codes = [0u16; N];
    let mut s = 0;
    while s < N {
        let len = lengths[s] as usize;
        if len > 0 {
            codes[s] = reverse(next[len], len as u16);
            next[len] += 1;
        }
        s += 1;
    }
    codes
}

const fn reverse(code: u16, len: u16) -> u16 {
    let mut out = 0;
    let mut i = 0;
    while i < len {
        out |= ((code >> i) & 1) << (len - 1 - i);
        i += 1;
    }
    out
}

/// Each byte's code and its length in bits.
const LITERALS: [(u16, u8); 256] = {
    let mut table = [(0, 0); 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (LITERAL_CODES[b], LITERAL_LENGTHS[b]);
        b += 1;
    }
    table
};

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// For each length from 3 to 258: its symbol's code followed by its extra bits, and the
/// number of bits in all.
const LENGTHS: [(u32, u8); MAX_MATCH - MIN_MATCH + 1] = {
    let mut table = [(0, 0); MAX_MATCH - MIN_MATCH + 1];
    let mut length = MIN_MATCH;
    while length <= MAX_MATCH {
        let mut k = 28;
        while LENGTH_BASE[k] as usize > length {
            k -= 1;
        }
        let (code, bits) = (LITERAL_CODES[257 + k], LITERAL_LENGTHS[257 + k]);
        let extra = (length - LENGTH_BASE[k] as usize) as u32;
        table[length - MIN_MATCH] = (code as u32 | extra << bits, bits + LENGTH_EXTRA[k]);
        length += 1;
    }
    table
};

/// A distance's symbol (0 to 29), its extra bits' count and their value (RFC 1951, 3.2.5).
fn distance_symbol(distance: usize) -> (usize, u32, u32) {
    let d = (distance - 1) as u32;
    if d < 4 {
        return (d as usize, 0, 0);
    }
    let n = 31 - d.leading_zeros();
    let symbol = 2 * n + ((d >> (n - 1)) & 1);
    let extra_bits = n - 1;
    (symbol as usize, extra_bits, d & ((1 << extra_bits) - 1))
}

/// A distance's code followed by its extra bits, and the number of bits.
fn distance_code(distance: usize) -> (u32, u32) {
    let (symbol, extra_bits, extra) = distance_symbol(distance);
    let len = DISTANCE_LENGTHS[symbol] as u32;
    (
        DISTANCE_CODES[symbol] as u32 | extra << len,
        len + extra_bits,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a valid deflate stream");
        out
    }

    /// `runs` compressed one after the other into one stream, each written in pieces of
    /// `piece` bytes.
    fn deflate(runs: &[&[u8]], piece: usize) -> Vec<u8> {
        let mut d = LineDeflater::new();
        let mut out = Vec::new();
        for (r, run) in runs.iter().enumerate() {
            d.begin(r + 1 == runs.len());
            for part in run.chunks(piece.max(1)) {
                d.write_with(|text| text.extend_from_slice(part));
            }
            let (crc, len) = d.finish();
            let mut expected = crc32fast::Hasher::new();
            expected.update(run);
            assert_eq!(
                (crc.finalize(), len),
                (expected.finalize(), run.len() as u64)
            );
            out.append(d.output());
        }
        out
    }

    fn exposition(servers: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for (name, extra) in [
            ("app_cpu_usage", ""),
            ("app_requests_total", ",status=\"2xx\""),
            ("app_request_duration_seconds_bucket", ",le=\"0.05\""),
            ("app_request_duration_seconds_bucket", ",le=\"+Inf\""),
        ] {
            text.extend_from_slice(
                format!("# HELP {name} Help.\n# TYPE {name} gauge\n").as_bytes(),
            );
            for s in 0..servers {
                let value = (s as f64 * 7.31).sin() * 1e4;
                let line = format!(
                    "{name}{{server=\"srv-{s:05}\",dc=\"dc{}\",role=\"r{}\"{extra}}} {value}\n",
                    s % 3,
                    s % 5
                );
                text.extend_from_slice(line.as_bytes());
            }
        }
        text
    }

    #[test]
    fn an_exposition_compresses_and_inflates_back_whatever_the_pieces() {
        let text = exposition(3000);
        for piece in [1, 7, 4096, text.len()] {
            let compressed = deflate(&[&text], piece);
            assert_eq!(inflate(&compressed), text, "pieces of {piece}");
            // The heads and tails are found: what is left is mostly the values' digits.
            assert!(
                compressed.len() * 3 < text.len(),
                "{} of {}",
                compressed.len(),
                text.len()
            );
        }
    }

    #[test]
    fn runs_join_into_one_stream() {
        let text = exposition(500);
        let (a, b) = text.split_at(text.len() / 3);
        let (b, c) = b.split_at(b.len() / 2);
        // The cut falls inside lines: each run ends with an incomplete one.
        assert_eq!(inflate(&deflate(&[a, b, c], 1000)), text);
        assert_eq!(inflate(&deflate(&[b"", &text, b""], 100)), text);
        assert_eq!(inflate(&deflate(&[b""], 1)), b"");
    }

    #[test]
    fn text_of_any_shape_inflates_back() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"{}\" ,=\nab\\";
        for round in 0..200 {
            let len = (next() % 5000) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| match round % 3 {
                    // Bytes that make and break the shape of lines.
                    0 => alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => next() as u8,
                    _ => {
                        let line = b"x{a=\"1\",b=\"2\"} 3\n";
                        line[(next() % line.len() as u64) as usize]
                    }
                })
                .collect();
            let compressed = deflate(&[&text], 1 + (next() % 300) as usize);
            let back = inflate(&compressed);
            let differ = back.iter().zip(&text).position(|(a, b)| a != b);
            assert!(
                back.len() == text.len() && differ.is_none(),
                "round {round}: {} bytes back of {}, first difference at {differ:?}",
                back.len(),
                text.len()
            );
        }
    }

    #[test]
    fn long_lines_and_far_repeats() {
        let mut text = Vec::new();
        let long_label = "v".repeat(5000);
        for s in 0..40 {
            // Heads and tails longer than one reference can be, lines longer than the
            // window, and tails last seen beyond it.
            let pad = "p".repeat(if s % 7 == 0 { 40_000 } else { s * 10 });
            text.extend_from_slice(
                format!("m{{a=\"{long_label}{s}\",b=\"{long_label}\"}} {pad}\n").as_bytes(),
            );
        }
        text.extend_from_slice(b"m{a=\"x\"} 1"); // no newline at the end
        assert_eq!(inflate(&deflate(&[&text], 65536)), text);
    }

    #[test]
    fn distance_codes_follow_the_rfc_table() {
        const BASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
            1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        for distance in 1..=WINDOW {
            let symbol = BASE.iter().rposition(|&b| b <= distance).unwrap();
            let extra_bits = if symbol < 4 { 0 } else { symbol as u32 / 2 - 1 };
            let extra = (distance - BASE[symbol]) as u32;
            assert_eq!(
                distance_symbol(distance),
                (symbol, extra_bits, extra),
                "{distance}"
            );
        }
    }
}
