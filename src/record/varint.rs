//! Zigzag varints and varlongs, as Kafka's `ByteUtils` writes them.
//!
//! Every length in the record format is zigzag-encoded, even the record length and the
//! `-1` of a null key: `-1` is `01`, `59` is `76`, `300` is `d8 04`.

/// Appends `v` as a zigzag varint (at most 5 bytes).
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zigzag varlong (at most 10 bytes).
#[inline]
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

#[inline]
fn put_unsigned(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Bytes `put_varint(v)` writes.
#[inline]
pub(crate) fn varint_len(v: i32) -> usize {
    unsigned_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Bytes `put_varlong(v)` writes.
#[inline]
pub(crate) fn varlong_len(v: i64) -> usize {
    unsigned_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Bytes an unsigned varint of `u` takes.
#[inline]
pub(crate) fn unsigned_len(u: u64) -> usize {
    // One byte per started group of 7 bits; zero still takes one byte. With `b` the
    // index of the top bit, that is `b / 7 + 1`, computed as `(9b + 73) / 64`, which
    // agrees for every `b` in 0..64 and takes a multiply-free shift instead of a division.
    let top = (u | 1).ilog2() as usize;
    (top * 9 + 73) >> 6
}

/// Reads a zigzag varint at `*pos`, advancing it. `None` when the bytes run out or the
/// value needs more than 5 bytes.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    // Fast path: one byte, the common case for deltas and short lengths.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Some(((b >> 1) as i32) ^ -((b & 1) as i32));
    }
    let mut at = *pos;
    let u = get_unsigned(buf, &mut at, 5)?;
    if u > u64::from(u32::MAX) {
        return None;
    }
    *pos = at;
    let u = u as u32;
    Some(((u >> 1) as i32) ^ -((u & 1) as i32))
}

/// Reads a zigzag varlong at `*pos`, advancing it. `None` when the bytes run out or the
/// value needs more than 10 bytes.
#[inline]
pub(crate) fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let u = get_unsigned(buf, pos, 10)?;
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

#[inline]
fn get_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut u: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf.get(*pos + i)?;
        u |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Some(u);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_examples() {
        for (v, bytes) in [
            (-1, &[0x01][..]),
            (0, &[0x00]),
            (1, &[0x02]),
            (59, &[0x76]),
            (300, &[0xd8, 0x04]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len());
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn round_trip_extremes() {
        for v in [i32::MIN, i32::MIN + 1, -64, -65, 63, 64, i32::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
        }
        for v in [i64::MIN, -1, 0, 1 << 40, i64::MAX] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            let mut pos = 0;
            assert_eq!(get_varlong(&out, &mut pos), Some(v));
        }
    }

    #[test]
    fn lengths_match_the_bytes_written_at_every_bit_width() {
        for bit in 0..64 {
            for u in [1u64 << bit, (1u64 << bit) - 1, (1u64 << bit) | 1] {
                let mut out = Vec::new();
                put_unsigned(&mut out, u);
                assert_eq!(unsigned_len(u), out.len(), "{u:#x}");
            }
        }
        assert_eq!(unsigned_len(0), 1);
        assert_eq!(unsigned_len(u64::MAX), 10);
    }

    #[test]
    fn truncated_and_overlong_are_rejected() {
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80], &mut pos), None);
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut pos),
            None
        );
        assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos), None);
        assert_eq!(pos, 0);
    }
}
