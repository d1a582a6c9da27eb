//! gzip (Kafka codec id 1): one RFC 1952 member, as `java.util.zip.GZIPOutputStream`
//! writes it.
//!
//! The member is written by hand around a raw deflate stream: the 10-byte header is a
//! constant (Java's exact bytes) and the trailer is the CRC-32 and length of the input.
//! That lets deflate write straight into `out` with no intermediate buffer. Reading goes
//! through flate2's full gzip parser, so any valid gzip is accepted, multi-member included.

use std::io::{self, Read};

use flate2::bufread::MultiGzDecoder;
use flate2::{Compress, Crc, FlushCompress, Status};

use super::{MAX_RESERVE_HINT, append_or_rollback, invalid_data};
use crate::record::{Codec, Compression};

/// The member header Java writes: magic `1f 8b`, method 8 (deflate), no flags, mtime 0,
/// no extra flags, OS 255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// Trailer: CRC-32 of the input, then its length mod 2^32, both little-endian.
const TRAILER_LEN: usize = 8;

/// deflate's worst-case expansion is about 1 part in 1000, its best compression 1032:1.
const MAX_EXPANSION: usize = 1032;

/// The highest zlib level; higher requests are clamped to it.
const MAX_LEVEL: u32 = 9;

/// Java's `GZIPOutputStream` default (zlib level -1, which zlib maps to 6).
const DEFAULT_LEVEL: u32 = 6;

/// gzip, as Kafka's `GzipCompression` writes and reads it.
///
/// Kafka name: `compression.type=gzip`, level from `compression.gzip.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gzip {
    level: u32,
}

impl Gzip {
    /// A gzip codec compressing at zlib `level`: 0 stores, 1 is fastest, 9 smallest.
    /// Levels above 9 are treated as 9.
    pub fn new(level: u32) -> Gzip {
        Gzip {
            level: level.min(MAX_LEVEL),
        }
    }
}

impl Default for Gzip {
    /// Level 6, the level Java's `GZIPOutputStream` uses by default.
    fn default() -> Gzip {
        Gzip::new(DEFAULT_LEVEL)
    }
}

impl Codec for Gzip {
    fn compression(&self) -> Compression {
        Compression::Gzip
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            out.reserve(HEADER.len() + deflate_bound(input.len()) + TRAILER_LEN);
            out.extend_from_slice(&HEADER);
            deflate(input, self.level, out)?;
            let mut crc = Crc::new();
            crc.update(input);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            // ISIZE is the input length modulo 2^32, so the truncation is the format.
            out.extend_from_slice(&(input.len() as u32).to_le_bytes());
            Ok(())
        })
    }

    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            out.reserve(size_hint(input));
            MultiGzDecoder::new(input)
                .read_to_end(out)
                .map_err(|e| invalid_data(format!("gzip: {e}")))?;
            Ok(())
        })
    }
}

/// Appends the raw deflate stream of `input` to `out`.
fn deflate(input: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    let mut deflater = Compress::new(flate2::Compression::new(level), false);
    loop {
        // total_in never exceeds input.len(): it counts bytes taken from `input`.
        let consumed = deflater.total_in() as usize;
        let status = deflater
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            return Ok(());
        }
        // The output ran out of spare capacity (the bound was an estimate): grow and go on.
        out.reserve(deflate_bound(input.len() - consumed).max(4096));
    }
}

/// A generous estimate of the deflate output size (zlib's `deflateBound` plus slack).
fn deflate_bound(len: usize) -> usize {
    len + len / 1000 + (len >> 12) + 64
}

/// How much to reserve before inflating: the last member's ISIZE, capped by what the
/// input could expand to. Only a hint; the real output size governs growth.
fn size_hint(input: &[u8]) -> usize {
    let Some(tail) = input.len().checked_sub(4).map(|at| &input[at..]) else {
        return 0;
    };
    let member_size = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    member_size
        .min(input.len().saturating_mul(MAX_EXPANSION))
        .min(MAX_RESERVE_HINT)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::GzBuilder;

    use super::*;
    use crate::record::codec::test_support::*;

    #[test]
    fn round_trips() {
        assert_standard_round_trips(&Gzip::default());
    }

    #[test]
    fn every_level_round_trips() {
        let data = compressible_bytes(50_000);
        for level in [0, 1, 6, 9, 42] {
            assert_round_trip(&Gzip::new(level), &data);
        }
        assert_eq!(Gzip::new(42), Gzip::new(9), "levels above 9 clamp");
    }

    #[test]
    fn default_level_is_javas() {
        assert_eq!(Gzip::default().level, 6);
    }

    #[test]
    fn header_is_javas_and_trailer_is_crc_and_size() {
        let input = compressible_bytes(1000);
        let payload = compress(&Gzip::default(), &input);
        assert_eq!(payload[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let mut crc = Crc::new();
        crc.update(&input);
        let trailer = &payload[payload.len() - 8..];
        assert_eq!(trailer[..4], crc.sum().to_le_bytes());
        assert_eq!(trailer[4..], 1000u32.to_le_bytes());
    }

    #[test]
    fn empty_input_is_one_valid_member() {
        let payload = compress(&Gzip::default(), b"");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&payload[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(decoded.is_empty());
    }

    #[test]
    fn multi_member_streams_decode_whole() {
        let gzip = Gzip::default();
        let mut payload = compress(&gzip, b"first member, ");
        payload.extend(compress(&gzip, b"second member"));
        assert_eq!(
            decompress(&gzip, &payload).unwrap(),
            b"first member, second member"
        );
    }

    #[test]
    fn headers_with_optional_fields_decode() {
        let mut encoder = GzBuilder::new()
            .filename("records.bin")
            .comment("written by another producer")
            .extra(vec![1, 2, 3])
            .mtime(1_700_000_000)
            .write(Vec::new(), flate2::Compression::best());
        encoder.write_all(b"hello kafka").unwrap();
        let payload = encoder.finish().unwrap();
        assert_eq!(
            decompress(&Gzip::default(), &payload).unwrap(),
            b"hello kafka"
        );
    }

    #[test]
    fn empty_payload_is_rejected() {
        assert_invalid(&Gzip::default(), b"", "gzip");
    }

    #[test]
    fn bad_crc_is_rejected() {
        let mut payload = compress(&Gzip::default(), b"some records");
        let crc_at = payload.len() - 8;
        payload[crc_at] ^= 1;
        assert_invalid(&Gzip::default(), &payload, "gzip");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut payload = compress(&Gzip::default(), b"some records");
        payload.extend_from_slice(b"junk");
        assert_invalid(&Gzip::default(), &payload, "gzip");
    }

    #[test]
    fn forged_isize_does_not_over_allocate() {
        let mut payload = compress(&Gzip::default(), b"tiny");
        let at = payload.len() - 4;
        payload[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(size_hint(&payload), payload.len() * MAX_EXPANSION);
        assert_invalid(&Gzip::default(), &payload, "gzip");
    }

    #[test]
    fn corruption_never_panics() {
        let payload = compress(&Gzip::default(), &compressible_bytes(20_000));
        assert_corruption_is_handled(&Gzip::default(), &payload);
    }

    #[test]
    fn decodes_kafka_golden_batch() {
        assert_decodes_golden(&Gzip::default());
    }
}
