//! lz4 (Kafka codec id 3): the LZ4 frame format as Kafka's `Lz4BlockOutputStream` writes
//! it and `Lz4BlockInputStream` reads it.
//!
//! Written: the 7-byte header `04 22 4d 18 60 40 82` (magic `0x184D2204` LE; FLG `0x60`:
//! version 01, independent blocks, no checksums, no content size; BD `0x40`: 64 KiB
//! blocks; HC `0x82`), then per ≤ 64 KiB of input a `u32 LE` size word and the block,
//! compressed on its own; a block that does not shrink is stored raw with the size word's
//! high bit set. The end mark `00 00 00 00` closes the frame; there is no content checksum.
//!
//! The frame is written and read by hand around lz4_flex's *block* API: that keeps the
//! header byte-exact with Java's and lets blocks compress straight into `out`.
//!
//! Read: what Kafka's reader accepts. Version 01; **linked blocks are rejected**, as Kafka
//! rejects them ("Dependent block stream is unsupported"), since a writer that emits them
//! cannot be read by Java consumers either; BD codes 4–7 (64 KiB to 4 MiB blocks); an
//! optional content-size field, block checksums and content checksum, all skipped, not
//! verified. The HC byte is not verified either: lz4_flex does not expose xxh32, and the
//! batch's CRC-32C already covers every byte of the frame. Bytes after the end mark (and
//! the content checksum) are ignored, as Kafka ignores them.

use std::io;

use lz4_flex::block::{DecompressError, compress_into, decompress_into, get_maximum_output_size};

use super::{Input, append_or_rollback, grow_to, invalid_data};
use crate::record::{Codec, Compression};

/// The frame header Kafka writes: magic, FLG `0x60`, BD `0x40`, HC `0x82`.
const HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];

/// The frame magic number, stored little-endian.
const MAGIC: u32 = 0x184D_2204;

/// Input bytes per written block (BD code 4).
const BLOCK_SIZE: usize = 64 * 1024;

/// Size-word flag: the block is stored uncompressed.
const UNCOMPRESSED: u32 = 0x8000_0000;

/// A zero size word ends the frame.
const END_MARK: [u8; 4] = [0; 4];

/// An LZ4 block expands at most 255× (each 255 byte of a match length adds 255 bytes).
const MAX_EXPANSION: usize = 255;

/// Compressed blocks shorter than this are sized exactly before decoding (see
/// [`output_room`]); measured: scanning 1 KiB of block costs about as much as zeroing
/// 64 KiB.
const EXACT_SIZE_BELOW: usize = 1024;

// FLG bits (LZ4 frame format 1.6, "Frame Descriptor").
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_INDEPENDENT: u8 = 0b0010_0000;
const FLG_BLOCK_CHECKSUM: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_DICT_ID: u8 = 0b0000_0001;

/// BD bits other than the block-size code must be zero.
const BD_RESERVED: u8 = 0b1000_1111;

/// lz4 in Kafka's LZ4 frame, as Kafka's `Lz4Compression` writes it.
///
/// Kafka name: `compression.type=lz4`. Compressed with lz4_flex's fast compressor (Kafka's
/// default level 9 also uses lz4-java's fast compressor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lz4;

impl Codec for Lz4 {
    fn compression(&self) -> Compression {
        Compression::Lz4
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            out.reserve(frame_bound(input.len()));
            out.extend_from_slice(&HEADER);
            let mut end = out.len();
            for block in input.chunks(BLOCK_SIZE) {
                end = write_block(block, out, end)?;
            }
            out.truncate(end);
            out.extend_from_slice(&END_MARK);
            Ok(())
        })
    }

    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| decode_frame(input, out))
    }
}

/// Upper bound of the frame size for `len` input bytes.
fn frame_bound(len: usize) -> usize {
    let blocks = len.div_ceil(BLOCK_SIZE);
    HEADER.len() + blocks * (4 + get_maximum_output_size(BLOCK_SIZE)) + END_MARK.len()
}

/// Writes one block at `end` (the logical end of `out`, which may hold scratch bytes past
/// it); returns the new logical end.
fn write_block(block: &[u8], out: &mut Vec<u8>, end: usize) -> io::Result<usize> {
    let data_at = end + 4;
    grow_to(out, data_at + get_maximum_output_size(block.len()));
    let compressed = compress_into(block, &mut out[data_at..]).map_err(io::Error::other)?;
    // Kafka stores the block raw when compression does not make it strictly smaller.
    let (len, word) = if compressed < block.len() {
        (compressed, compressed as u32)
    } else {
        out[data_at..data_at + block.len()].copy_from_slice(block);
        (block.len(), block.len() as u32 | UNCOMPRESSED)
    };
    out[end..data_at].copy_from_slice(&word.to_le_bytes());
    Ok(data_at + len)
}

/// What the frame descriptor says about the blocks that follow it.
struct Descriptor {
    block_max: usize,
    block_checksums: bool,
    content_checksum: bool,
}

/// Appends the content of one LZ4 frame to `out`.
fn decode_frame(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut src = Input::new(input, "lz4 frame");
    let descriptor = read_descriptor(&mut src)?;
    let mut end = out.len();
    while let Some(word) = next_block_word(&mut src)? {
        end = decode_block(&mut src, word, &descriptor, out, end)?;
        if descriptor.block_checksums {
            src.take(4, "block checksum")?;
        }
    }
    if descriptor.content_checksum {
        src.take(4, "content checksum")?;
    }
    out.truncate(end);
    Ok(())
}

/// Reads magic, FLG, BD, the optional content size and HC, rejecting what Kafka rejects.
fn read_descriptor(src: &mut Input<'_>) -> io::Result<Descriptor> {
    let magic = u32::from_le_bytes(src.array("magic")?);
    if magic != MAGIC {
        return Err(invalid_data(format!(
            "lz4 frame: bad magic {magic:#010x}, expected {MAGIC:#010x}"
        )));
    }
    let [flg, bd] = src.array("frame descriptor")?;
    check_flags(flg)?;
    let block_max = block_max_size(bd)?;
    if flg & FLG_CONTENT_SIZE != 0 {
        src.take(8, "content size")?;
    }
    src.take(1, "header checksum")?;
    Ok(Descriptor {
        block_max,
        block_checksums: flg & FLG_BLOCK_CHECKSUM != 0,
        content_checksum: flg & FLG_CONTENT_CHECKSUM != 0,
    })
}

fn check_flags(flg: u8) -> io::Result<()> {
    if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
        return Err(invalid_data(format!(
            "lz4 frame: version {:02b} is not supported (expected 01)",
            flg >> 6
        )));
    }
    if flg & FLG_DICT_ID != 0 {
        return Err(invalid_data("lz4 frame: dictionary IDs are not supported"));
    }
    if flg & FLG_RESERVED != 0 {
        return Err(invalid_data("lz4 frame: reserved FLG bit is set"));
    }
    if flg & FLG_INDEPENDENT == 0 {
        return Err(invalid_data(
            "lz4 frame: linked blocks are not supported (Kafka requires independent blocks)",
        ));
    }
    Ok(())
}

/// The maximum block size a BD byte announces: codes 4–7 are 64 KiB, 256 KiB, 1 MiB, 4 MiB.
fn block_max_size(bd: u8) -> io::Result<usize> {
    if bd & BD_RESERVED != 0 {
        return Err(invalid_data(format!(
            "lz4 frame: reserved BD bits are set in {bd:#04x}"
        )));
    }
    match bd >> 4 {
        code @ 4..=7 => Ok(1 << (8 + 2 * code)),
        code => Err(invalid_data(format!(
            "lz4 frame: block size code {code} is invalid (expected 4-7)"
        ))),
    }
}

/// The next block's size word, or `None` at the end mark.
fn next_block_word(src: &mut Input<'_>) -> io::Result<Option<u32>> {
    let word = u32::from_le_bytes(src.array("block size")?);
    Ok((word != 0).then_some(word))
}

/// Appends one block at `end` (the logical end of `out`); returns the new logical end.
fn decode_block(
    src: &mut Input<'_>,
    word: u32,
    descriptor: &Descriptor,
    out: &mut Vec<u8>,
    end: usize,
) -> io::Result<usize> {
    let len = (word & !UNCOMPRESSED) as usize;
    if len > descriptor.block_max {
        return Err(invalid_data(format!(
            "lz4 frame: block of {len} bytes exceeds the frame's maximum block size {}",
            descriptor.block_max
        )));
    }
    let data = src.take(len, "block")?;
    if word & UNCOMPRESSED != 0 {
        grow_to(out, end + len);
        out[end..end + len].copy_from_slice(data);
        return Ok(end + len);
    }
    let room = output_room(data, descriptor.block_max)?;
    grow_to(out, end + room);
    let written = decode_block_into(data, &mut out[end..end + room]).map_err(|e| match e {
        DecompressError::OutputTooSmall { .. } => too_large(descriptor.block_max),
        e => invalid_data(format!("lz4 frame: bad block: {e}")),
    })?;
    Ok(end + written)
}

/// `decompress_into`, kept out of line on purpose: inlined into the frame loop, LLVM stops
/// inlining lz4_flex's fixed-size copies and decoding runs about 30% slower (measured).
#[inline(never)]
fn decode_block_into(data: &[u8], dst: &mut [u8]) -> Result<usize, DecompressError> {
    decompress_into(data, dst)
}

fn too_large(block_max: usize) -> io::Error {
    invalid_data(format!(
        "lz4 frame: block decodes to more than the frame's maximum block size {block_max}"
    ))
}

/// How many initialised bytes to offer the decoder for `block`.
///
/// The decoder needs an initialised slice, so every byte offered is zeroed first. A large
/// block gets the frame's block size (or less, if it cannot expand that far): writers fill
/// every block but the last, so the only bytes zeroed in vain are once per frame, after a
/// short last block. A small block gets exactly its decoded size, found by a scan of its
/// sequence headers that costs less than zeroing a 64 KiB block it would barely use.
fn output_room(block: &[u8], block_max: usize) -> io::Result<usize> {
    if block.len() < EXACT_SIZE_BELOW {
        decoded_len(block, block_max)
    } else {
        Ok(block_max.min(block.len().saturating_mul(MAX_EXPANSION)))
    }
}

/// The number of bytes an LZ4 block decodes to, found by walking its sequence headers
/// (token, length bytes, offset) and skipping the literals, without decoding anything.
///
/// Fails when the headers run past the block or the total exceeds `limit`; whether the
/// offsets are valid is left to the decoder.
fn decoded_len(block: &[u8], limit: usize) -> io::Result<usize> {
    let mut pos = 0;
    let mut total = 0usize;
    while pos < block.len() {
        let token = block[pos];
        pos += 1;
        let literals = sequence_length(block, &mut pos, token >> 4)?;
        pos = pos.saturating_add(literals);
        total = total.saturating_add(literals);
        if pos >= block.len() {
            // The last sequence is literals only; literals past the end are the
            // decoder's to reject.
            break;
        }
        pos += 2; // the match offset
        let matched = sequence_length(block, &mut pos, token & 0x0f)?;
        total = total.saturating_add(matched + 4);
        if total > limit {
            break;
        }
    }
    if total > limit {
        return Err(too_large(limit));
    }
    Ok(total)
}

/// A literal or match length: the token's nibble, plus extension bytes while it is 15
/// and they are 255.
fn sequence_length(block: &[u8], pos: &mut usize, nibble: u8) -> io::Result<usize> {
    let mut len = usize::from(nibble);
    if nibble < 15 {
        return Ok(len);
    }
    loop {
        let Some(&byte) = block.get(*pos) else {
            return Err(invalid_data(
                "lz4 frame: bad block: sequence length runs past the block",
            ));
        };
        *pos += 1;
        // At most one 255 per input byte, and blocks are at most 4 MiB: cannot overflow.
        len += usize::from(byte);
        if byte != 255 {
            return Ok(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::*;
    use crate::record::codec::test_support::*;

    /// A frame written by lz4_flex's own frame encoder, as other producers write them.
    fn foreign_frame(info: FrameInfo, input: &[u8]) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(input).unwrap();
        encoder.finish().unwrap()
    }

    /// The size words of a frame `Lz4` wrote, in order, end mark excluded.
    fn block_words(payload: &[u8]) -> Vec<u32> {
        let mut src = Input::new(&payload[HEADER.len()..], "test");
        let mut words = Vec::new();
        while let Some(word) = next_block_word(&mut src).unwrap() {
            src.take((word & !UNCOMPRESSED) as usize, "block").unwrap();
            words.push(word);
        }
        assert!(src.is_empty(), "nothing after the end mark");
        words
    }

    #[test]
    fn round_trips() {
        assert_standard_round_trips(&Lz4);
    }

    #[test]
    fn header_is_kafkas() {
        let payload = compress(&Lz4, b"records");
        assert_eq!(payload[..7], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(payload[payload.len() - 4..], [0, 0, 0, 0], "end mark");
    }

    #[test]
    fn header_matches_lz4_flex_with_kafkas_settings() {
        // lz4_flex computes HC from xxh32; equal bytes prove 0x82 is the right checksum.
        let info = FrameInfo::new()
            .block_mode(BlockMode::Independent)
            .block_size(BlockSize::Max64KB);
        assert_eq!(foreign_frame(info, b"records")[..7], HEADER);
    }

    #[test]
    fn empty_input_is_header_and_end_mark() {
        assert_eq!(compress(&Lz4, b""), [&HEADER[..], &END_MARK].concat());
    }

    #[test]
    fn blocks_hold_at_most_64_kib_of_input() {
        let one = compress(&Lz4, &compressible_bytes(64 << 10));
        assert_eq!(block_words(&one).len(), 1);
        let two = compress(&Lz4, &compressible_bytes((64 << 10) + 1));
        assert_eq!(block_words(&two).len(), 2);
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let input = random_bytes((64 << 10) + 10, 3);
        let words = block_words(&compress(&Lz4, &input));
        assert_eq!(words, [UNCOMPRESSED | (64 << 10), UNCOMPRESSED | 10]);
    }

    #[test]
    fn output_is_read_by_lz4_flex() {
        let input = compressible_bytes(200_000);
        let payload = compress(&Lz4, &input);
        let mut decoded = Vec::new();
        FrameDecoder::new(&payload[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, input);
    }

    #[test]
    fn python_style_frame_with_content_size_decodes() {
        // lz4.frame.compress(block_linked=False) writes FLG 0x68: content size present.
        let input = compressible_bytes(100_000);
        let info = FrameInfo::new()
            .block_mode(BlockMode::Independent)
            .block_size(BlockSize::Max64KB)
            .content_size(Some(input.len() as u64));
        let payload = foreign_frame(info, &input);
        assert_eq!(payload[4], 0x68);
        assert_eq!(decompress(&Lz4, &payload).unwrap(), input);
    }

    #[test]
    fn checksums_and_larger_blocks_decode() {
        let input = random_bytes(300_000, 9);
        let mut compressible = compressible_bytes(3_000_000);
        compressible.extend_from_slice(&input);
        for size in [BlockSize::Max256KB, BlockSize::Max1MB, BlockSize::Max4MB] {
            let info = FrameInfo::new()
                .block_mode(BlockMode::Independent)
                .block_size(size)
                .block_checksums(true)
                .content_checksum(true);
            let payload = foreign_frame(info, &compressible);
            assert_eq!(
                decompress(&Lz4, &payload).unwrap(),
                compressible,
                "{size:?}"
            );
        }
    }

    #[test]
    fn linked_blocks_are_rejected() {
        let info = FrameInfo::new().block_mode(BlockMode::Linked);
        let payload = foreign_frame(info, &compressible_bytes(100_000));
        assert_invalid(&Lz4, &payload, "linked blocks are not supported");
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut payload = compress(&Lz4, b"records");
        payload[0] = 0x05;
        assert_invalid(&Lz4, &payload, "bad magic 0x184d2205");
    }

    #[test]
    fn bad_descriptors_are_rejected() {
        let cases: [(&[u8], &str); 5] = [
            (&[0xa0, 0x40], "version 10"),
            (&[0x61, 0x40], "dictionary IDs"),
            (&[0x62, 0x40], "reserved FLG bit"),
            (&[0x60, 0x30], "block size code 3"),
            (&[0x60, 0x41], "reserved BD bits"),
        ];
        for (descriptor, needle) in cases {
            let mut payload = compress(&Lz4, b"records");
            payload[4..6].copy_from_slice(descriptor);
            assert_invalid(&Lz4, &payload, needle);
        }
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let payload = compress(&Lz4, &compressible_bytes(10_000));
        assert_invalid(&Lz4, &payload[..3], "truncated magic");
        assert_invalid(&Lz4, &payload[..6], "truncated header checksum");
        assert_invalid(&Lz4, &payload[..payload.len() - 1], "truncated block size");
        assert_invalid(&Lz4, &payload[..payload.len() - 10], "truncated block");
    }

    #[test]
    fn oversized_block_is_rejected() {
        let mut payload = HEADER.to_vec();
        payload.extend_from_slice(&(UNCOMPRESSED | ((64 << 10) + 1)).to_le_bytes());
        payload.extend_from_slice(&[0; (64 << 10) + 1]);
        assert_invalid(
            &Lz4,
            &payload,
            "exceeds the frame's maximum block size 65536",
        );
    }

    #[test]
    fn block_decoding_past_the_block_size_is_rejected() {
        // 64 KiB frames whose one block decodes to more than 64 KiB: a small block (sized
        // by scanning) and a large one (decoded into a 64 KiB window).
        for input in [vec![7; (64 << 10) + 1], compressible_bytes(100_000)] {
            let big = lz4_flex::block::compress(&input);
            let mut payload = HEADER.to_vec();
            payload.extend_from_slice(&(big.len() as u32).to_le_bytes());
            payload.extend_from_slice(&big);
            payload.extend_from_slice(&END_MARK);
            let needle = "more than the frame's maximum block size 65536";
            assert_invalid(&Lz4, &payload, needle);
        }
    }

    #[test]
    fn decoded_len_matches_the_decoder() {
        for input in [
            b"x".to_vec(),
            compressible_bytes(60_000),
            random_bytes(1000, 4),
            vec![0; 65_536],
        ] {
            let block = lz4_flex::block::compress(&input);
            assert_eq!(decoded_len(&block, 65_536).unwrap(), input.len());
        }
        // Length extension bytes of 255 that run past the end of the block.
        assert!(decoded_len(&[0x0f, 0x01, 0x00, 0xff], 65_536).is_err());
        assert!(decoded_len(&[0xf0, 0xff, 0xff], 65_536).is_err());
    }

    #[test]
    fn bytes_after_the_end_mark_are_ignored() {
        let mut payload = compress(&Lz4, b"records");
        payload.extend_from_slice(b"ignored, as Kafka ignores it");
        assert_eq!(decompress(&Lz4, &payload).unwrap(), b"records");
    }

    #[test]
    fn corruption_never_panics() {
        // A compressed block, then a raw one.
        let mut input = compressible_bytes(64 << 10);
        input.extend(random_bytes(5_000, 5));
        assert_corruption_is_handled(&Lz4, &compress(&Lz4, &input));
        // Small blocks take the exact-size path.
        let small = compress(&Lz4, &compressible_bytes(3000));
        assert!(small.len() < EXACT_SIZE_BELOW);
        assert_corruption_is_handled(&Lz4, &small);
    }

    #[test]
    fn decodes_kafka_golden_batch() {
        assert_decodes_golden(&Lz4);
        let golden = golden_batches()
            .into_iter()
            .find(|(id, _)| *id == 3)
            .unwrap()
            .1;
        assert_eq!(golden[..7], HEADER, "Java writes the same header");
    }
}
