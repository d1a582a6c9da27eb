//! snappy (Kafka codec id 2): xerial framing on write, xerial or raw snappy on read.
//!
//! Java writes with snappy-java's `SnappyOutputStream`:
//!
//! | part | bytes |
//! |---|---|
//! | magic | `82 53 4e 41 50 50 59 00` |
//! | version, compatible version | int32 BE 1, int32 BE 1 |
//! | repeated | int32 BE compressed length, raw snappy block of ≤ 32 KiB of input |
//!
//! There is no terminator. This is *not* the official snappy framing format that
//! `snap::write::FrameEncoder` writes; Kafka cannot read that one. librdkafka and other
//! clients write a single raw snappy block instead, and brokers store it as is, so a reader
//! must accept both: a payload that does not start with the magic is one raw block.

use std::io;

use snap::raw::{Decoder, Encoder, decompress_len, max_compress_len};

use super::{Input, append_or_rollback, grow_to, invalid_data};
use crate::record::{Codec, Compression};

/// xerial's magic: -126, "SNAPPY", 0.
const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Magic, then version 1 and compatible version 1 as big-endian int32s.
const HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];

/// Input bytes per block: snappy-java's default block size.
const BLOCK_SIZE: usize = 32 * 1024;

/// The most a raw snappy block can expand: its densest element is a 3-byte copy of 64 bytes
/// (21.3×), so a claimed length above this many times the block size is a lie.
const MAX_EXPANSION: usize = 22;

/// snappy in xerial framing, as Kafka's `SnappyCompression` writes it.
///
/// Kafka name: `compression.type=snappy`. Decompression also accepts a payload that is a
/// single raw snappy block, which librdkafka-based producers write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snappy;

impl Codec for Snappy {
    fn compression(&self) -> Compression {
        Compression::Snappy
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            out.reserve(framed_bound(input.len()));
            out.extend_from_slice(&HEADER);
            let mut encoder = Encoder::new();
            let mut end = out.len();
            for block in input.chunks(BLOCK_SIZE) {
                end = write_block(&mut encoder, block, out, end)?;
            }
            out.truncate(end);
            Ok(())
        })
    }

    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            if input.starts_with(&MAGIC) {
                decode_xerial(input, out)
            } else if input.is_empty() {
                // snappy-java reads an empty stream as empty, not as a broken block.
                Ok(())
            } else {
                decode_block(input, out, "raw snappy payload")
            }
        })
    }
}

/// Upper bound of the framed size of `len` input bytes: header, then per block a length
/// word and snappy's worst case.
fn framed_bound(len: usize) -> usize {
    let blocks = len.div_ceil(BLOCK_SIZE);
    HEADER.len() + blocks * 4 + max_compress_len(BLOCK_SIZE) * blocks
}

/// Writes one length-prefixed block at `end` (the logical end of `out`, which may hold
/// scratch bytes past it); returns the new logical end.
fn write_block(
    encoder: &mut Encoder,
    block: &[u8],
    out: &mut Vec<u8>,
    end: usize,
) -> io::Result<usize> {
    let data_at = end + 4;
    grow_to(out, data_at + max_compress_len(block.len()));
    let len = encoder
        .compress(block, &mut out[data_at..])
        .map_err(io::Error::other)?;
    // A block of at most 32 KiB compresses to well under 2 GiB, so the length fits an i32.
    out[end..data_at].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(data_at + len)
}

/// Decodes a xerial stream: header, then length-prefixed raw blocks until the input ends.
fn decode_xerial(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut src = Input::new(input, "snappy xerial");
    while !src.is_empty() {
        if src.starts_with(&MAGIC) {
            // The stream header, or that of a concatenated stream. The version ints are
            // ignored: some producers (Redpanda) wrote them little-endian.
            src.take(HEADER.len(), "header")?;
            continue;
        }
        let block = next_block(&mut src)?;
        decode_block(block, out, "snappy xerial block")?;
    }
    Ok(())
}

/// Reads one `[int32 BE length][block]` pair.
fn next_block<'a>(src: &mut Input<'a>) -> io::Result<&'a [u8]> {
    let length = i32::from_be_bytes(src.array("block length")?);
    let remaining = src.remaining();
    match usize::try_from(length) {
        Ok(len) if len <= remaining => src.take(len, "block"),
        Ok(len) => Err(invalid_data(format!(
            "snappy xerial block length {len} exceeds the {remaining} remaining bytes"
        ))),
        Err(_) => Err(invalid_data(format!(
            "snappy xerial block length {length} is negative"
        ))),
    }
}

/// Appends the decompression of one raw snappy block to `out`.
fn decode_block(block: &[u8], out: &mut Vec<u8>, what: &str) -> io::Result<()> {
    let len = decompress_len(block).map_err(|e| invalid_data(format!("{what}: {e}")))?;
    if len > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(invalid_data(format!(
            "{what} of {} bytes claims {len} decompressed bytes, more than snappy can encode",
            block.len()
        )));
    }
    let at = out.len();
    out.resize(at + len, 0);
    // snap checks that the block fills exactly the `len` bytes its header announced.
    Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(|e| invalid_data(format!("{what}: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::codec::test_support::*;

    /// Splits a xerial stream written by `Snappy` into its raw blocks.
    fn blocks(payload: &[u8]) -> Vec<&[u8]> {
        assert_eq!(payload[..16], HEADER);
        let mut src = Input::new(&payload[16..], "test");
        let mut blocks = Vec::new();
        while !src.is_empty() {
            blocks.push(next_block(&mut src).unwrap());
        }
        blocks
    }

    #[test]
    fn round_trips() {
        assert_standard_round_trips(&Snappy);
    }

    #[test]
    fn header_is_xerial_magic_and_big_endian_versions() {
        let payload = compress(&Snappy, b"records");
        assert_eq!(
            payload[..16],
            [
                0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1
            ]
        );
    }

    #[test]
    fn empty_input_is_just_the_header() {
        assert_eq!(compress(&Snappy, b""), HEADER);
        assert_eq!(decompress(&Snappy, &HEADER).unwrap(), b"");
    }

    #[test]
    fn blocks_hold_at_most_32_kib_of_input() {
        for (len, expected) in [
            (32 << 10, vec![32 << 10]),
            ((32 << 10) + 1, vec![32 << 10, 1]),
        ] {
            let payload = compress(&Snappy, &random_bytes(len, 7));
            let sizes: Vec<usize> = blocks(&payload)
                .iter()
                .map(|b| decompress_len(b).unwrap())
                .collect();
            assert_eq!(sizes, expected, "input of {len} bytes");
        }
    }

    #[test]
    fn raw_snappy_payload_is_accepted() {
        let input = compressible_bytes(100_000);
        let raw = Encoder::new().compress_vec(&input).unwrap();
        assert_ne!(raw[..8], MAGIC);
        assert_eq!(decompress(&Snappy, &raw).unwrap(), input);
        assert_eq!(decompress(&Snappy, b"").unwrap(), b"", "empty raw payload");
    }

    #[test]
    fn concatenated_streams_skip_the_second_header() {
        let mut payload = compress(&Snappy, b"first stream, ");
        payload.extend(compress(&Snappy, b"second stream"));
        assert_eq!(
            decompress(&Snappy, &payload).unwrap(),
            b"first stream, second stream"
        );
    }

    #[test]
    fn little_endian_version_ints_are_ignored() {
        let mut payload = compress(&Snappy, b"written by redpanda");
        payload[8..16].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            decompress(&Snappy, &payload).unwrap(),
            b"written by redpanda"
        );
    }

    #[test]
    fn block_length_past_the_end_is_rejected() {
        let mut payload = HEADER.to_vec();
        payload.extend_from_slice(&12_345i32.to_be_bytes());
        payload.extend_from_slice(&[0; 40]);
        assert_invalid(
            &Snappy,
            &payload,
            "snappy xerial block length 12345 exceeds the 40 remaining bytes",
        );
    }

    #[test]
    fn negative_block_length_is_rejected() {
        let mut payload = HEADER.to_vec();
        payload.extend_from_slice(&(-5i32).to_be_bytes());
        assert_invalid(&Snappy, &payload, "block length -5 is negative");
    }

    #[test]
    fn partial_length_word_is_rejected() {
        let mut payload = compress(&Snappy, b"records");
        payload.extend_from_slice(&[0, 0]);
        assert_invalid(&Snappy, &payload, "truncated block length");
    }

    #[test]
    fn truncated_header_is_rejected() {
        assert_invalid(&Snappy, &HEADER[..12], "truncated header");
    }

    #[test]
    fn forged_length_claim_is_rejected_before_allocating() {
        // varint 0xffff_ffff: a raw block claiming 4 GiB from 7 bytes.
        let raw = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00];
        assert_invalid(&Snappy, &raw, "more than snappy can encode");
    }

    #[test]
    fn corruption_never_panics() {
        let payload = compress(&Snappy, &compressible_bytes(40_000));
        assert_corruption_is_handled(&Snappy, &payload);
        let raw = Encoder::new()
            .compress_vec(&compressible_bytes(20_000))
            .unwrap();
        assert_corruption_is_handled(&Snappy, &raw);
    }

    #[test]
    fn decodes_kafka_golden_batch() {
        assert_decodes_golden(&Snappy);
        let golden = golden_batches()
            .into_iter()
            .find(|(id, _)| *id == 2)
            .unwrap()
            .1;
        assert_eq!(golden[..16], HEADER, "Java writes xerial framing");
    }
}
