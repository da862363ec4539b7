//! The protobuf wire format, the little of it fleetsim writes, by hand: varints and
//! length-delimited fields. The messages are small and fixed (remote write's requests, the
//! protobuf exposition's families), and writing them straight from the model's arrays is
//! what keeps an encode a few byte copies per series; a code generator would build a
//! message object per series first.

/// A field's key: its number and wire type (0 varint, 1 64-bit, 2 length-delimited).
pub const fn tag(field: u8, wire_type: u8) -> u8 {
    field << 3 | wire_type
}

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A `sint32`/`sint64` value as its varint: zigzag, so that small negative numbers stay
/// short.
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// A `double` field: tag and 8 little-endian bytes.
pub fn put_double(out: &mut Vec<u8>, tag: u8, v: f64) {
    out.push(tag);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A length-delimited field: tag, length, bytes.
pub fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A label as field 1 of its message, tag included: remote write's `TimeSeries.labels`
/// and the exposition's `Metric.label` are both `repeated { string name = 1; string value
/// = 2; } = 1`, so one encoding serves both.
pub fn encode_label(name: &str, value: &str) -> Vec<u8> {
    let mut label = Vec::with_capacity(name.len() + value.len() + 4);
    put_bytes(&mut label, tag(1, LEN), name.as_bytes());
    put_bytes(&mut label, tag(2, LEN), value.as_bytes());
    let mut out = Vec::with_capacity(label.len() + 2);
    put_bytes(&mut out, tag(1, LEN), &label);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for (v, bytes) in [
            (0u64, vec![0u8]),
            (1, vec![1]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len());
        }
    }

    #[test]
    fn zigzags() {
        for (v, z) in [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i64::MAX, u64::MAX - 1),
        ] {
            assert_eq!(zigzag(v), z, "{v}");
        }
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn tags() {
        assert_eq!(tag(1, LEN), 0x0a);
        assert_eq!(tag(2, VARINT), 0x10);
        assert_eq!(tag(1, FIXED64), 0x09);
    }
}
