//! zstd (Kafka codec id 4): standard Zstandard frames, decoded as a stream.
//!
//! Java writes through zstd-jni's `ZstdOutputStream`, whose frames carry no content size,
//! so the reader must stream (one-shot decompression needs that size). The reader also
//! accepts several concatenated frames, and skippable frames, as zstd's stream API does.
//!
//! Compression and decompression contexts are cached per thread: creating one allocates
//! (and page-faults in) up to a few megabytes, which would dominate the cost of a small
//! batch. Each thread that used the codec keeps one of each until it exits; a context is
//! dropped rather than cached after a failed call.

use std::cell::Cell;
use std::io;

use ::zstd::zstd_safe::{
    self, CCtx, CParameter, DCtx, ErrorCode, InBuffer, OutBuffer, compress_bound,
};

use super::{MAX_RESERVE_HINT, append_or_rollback, invalid_data};
use crate::record::{Codec, Compression};

/// zstd-jni's and Kafka's default level.
const DEFAULT_LEVEL: i32 = 3;

/// Output to make room for when the decoder fills `out`'s spare capacity; `Vec` growth
/// doubles on top of it, so large outputs take few reallocations.
const OUTPUT_STEP: usize = 128 << 10;

/// Without a content size, reserve this many times the input before decoding.
const GUESSED_RATIO: usize = 4;

thread_local! {
    static COMPRESSOR: Cell<Option<CCtx<'static>>> = const { Cell::new(None) };
    static DECOMPRESSOR: Cell<Option<DCtx<'static>>> = const { Cell::new(None) };
}

/// zstd, as Kafka's `ZstdCompression` writes and reads it.
///
/// Kafka name: `compression.type=zstd`, level from `compression.zstd.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Zstd {
    level: i32,
}

impl Zstd {
    /// A zstd codec compressing at `level`: 1–22, negative for zstd's fast levels, and 0
    /// for zstd's default (3). libzstd clamps values out of its range.
    pub fn new(level: i32) -> Zstd {
        Zstd { level }
    }
}

impl Default for Zstd {
    /// Level 3, Kafka's default `compression.zstd.level`.
    fn default() -> Zstd {
        Zstd::new(DEFAULT_LEVEL)
    }
}

impl Codec for Zstd {
    fn compression(&self) -> Compression {
        Compression::Zstd
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        with_cached(&COMPRESSOR, new_compressor, |cctx| {
            cctx.set_parameter(CParameter::CompressionLevel(self.level))
                .map_err(|code| zstd_error("setting the level", code))?;
            out.reserve(compress_bound(input.len()));
            // The cursor makes zstd write into the spare capacity after `out`'s bytes.
            let mut dst = io::Cursor::new(&mut *out);
            dst.set_position(dst.get_ref().len() as u64);
            cctx.compress2(&mut dst, input)
                .map_err(|code| zstd_error("compressing", code))?;
            Ok(())
        })
    }

    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        append_or_rollback(out, |out| {
            with_cached(&DECOMPRESSOR, new_decompressor, |dctx| {
                decode_frames(dctx, input, out)
            })
        })
    }
}

/// Runs `f` with this thread's cached context, creating one if there is none, and caches
/// it again only if `f` succeeded (a failed context may be mid-frame or poisoned).
fn with_cached<C, R>(
    slot: &'static std::thread::LocalKey<Cell<Option<C>>>,
    create: fn() -> io::Result<C>,
    f: impl FnOnce(&mut C) -> io::Result<R>,
) -> io::Result<R> {
    let mut context = match slot.take() {
        Some(context) => context,
        None => create()?,
    };
    let result = f(&mut context)?;
    slot.set(Some(context));
    Ok(result)
}

fn new_compressor() -> io::Result<CCtx<'static>> {
    CCtx::try_create().ok_or_else(|| io::Error::other("zstd: cannot create a compression context"))
}

fn new_decompressor() -> io::Result<DCtx<'static>> {
    DCtx::try_create()
        .ok_or_else(|| io::Error::other("zstd: cannot create a decompression context"))
}

/// Streams every frame of `input` into `out`'s spare capacity, growing it as needed.
fn decode_frames(dctx: &mut DCtx<'_>, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.reserve(size_hint(input));
    let mut src = InBuffer::around(input);
    // An empty input is an empty stream, as zstd-jni's reader sees it.
    let mut frame_open = false;
    while src.pos() < input.len() || frame_open {
        if out.len() == out.capacity() {
            out.reserve(OUTPUT_STEP);
        }
        let at = out.len();
        let mut dst = OutBuffer::around_pos(out, at);
        let hint = dctx
            .decompress_stream(&mut dst, &mut src)
            .map_err(|code| invalid_data(format!("zstd: {}", zstd_safe::get_error_name(code))))?;
        // 0 means a frame just ended; anything else, that the current frame goes on.
        frame_open = hint != 0;
        // With output room to spare the decoder has flushed all it can; if it has also
        // taken all the input and still wants more, the frame was cut short.
        let starved = dst.pos() < dst.capacity();
        if frame_open && starved && src.pos() == input.len() {
            return Err(invalid_data("zstd: truncated frame"));
        }
    }
    Ok(())
}

/// How much to reserve before decoding: the first frame's content size when it has one
/// (our own frames do, Java's do not), else a typical ratio; always capped.
fn size_hint(input: &[u8]) -> usize {
    let guess = match zstd_safe::get_frame_content_size(input) {
        Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
        _ => input.len().saturating_mul(GUESSED_RATIO),
    };
    guess.min(MAX_RESERVE_HINT)
}

fn zstd_error(doing: &str, code: ErrorCode) -> io::Error {
    io::Error::other(format!(
        "zstd: {doing} failed: {}",
        zstd_safe::get_error_name(code)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::codec::test_support::*;

    /// A frame as Java's streaming writer makes it: no content size, no checksum.
    fn streamed_frame(input: &[u8]) -> Vec<u8> {
        ::zstd::stream::encode_all(input, 3).unwrap()
    }

    #[test]
    fn round_trips() {
        assert_standard_round_trips(&Zstd::default());
    }

    #[test]
    fn every_level_round_trips() {
        let data = compressible_bytes(50_000);
        for level in [-5, 0, 1, 3, 19, 22, 100] {
            assert_round_trip(&Zstd::new(level), &data);
        }
    }

    #[test]
    fn default_level_is_kafkas() {
        assert_eq!(Zstd::default().level, 3);
    }

    #[test]
    fn output_is_a_standard_frame() {
        let input = compressible_bytes(100_000);
        let payload = compress(&Zstd::default(), &input);
        assert_eq!(payload[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(::zstd::stream::decode_all(&payload[..]).unwrap(), input);
    }

    #[test]
    fn frames_without_content_size_decode() {
        let input = compressible_bytes(300_000);
        let payload = streamed_frame(&input);
        assert!(matches!(
            zstd_safe::get_frame_content_size(&payload),
            Ok(None)
        ));
        assert_eq!(decompress(&Zstd::default(), &payload).unwrap(), input);
    }

    #[test]
    fn concatenated_frames_decode_whole() {
        let mut payload = compress(&Zstd::default(), b"first frame, ");
        payload.extend(streamed_frame(b"second frame"));
        assert_eq!(
            decompress(&Zstd::default(), &payload).unwrap(),
            b"first frame, second frame"
        );
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let mut payload = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        payload.extend(compress(&Zstd::default(), b"records"));
        assert_eq!(decompress(&Zstd::default(), &payload).unwrap(), b"records");
    }

    #[test]
    fn empty_payload_is_an_empty_stream() {
        assert_eq!(decompress(&Zstd::default(), b"").unwrap(), b"");
    }

    #[test]
    fn truncated_frames_are_rejected() {
        let payload = streamed_frame(&compressible_bytes(10_000));
        for cut in [1, 5, payload.len() / 2, payload.len() - 1] {
            assert_invalid(&Zstd::default(), &payload[..cut], "zstd");
        }
    }

    #[test]
    fn garbage_is_rejected_and_the_context_recovers() {
        let zstd = Zstd::default();
        assert_invalid(&zstd, b"not zstd at all", "zstd: Unknown frame descriptor");
        let mut payload = compress(&zstd, b"records");
        payload.extend_from_slice(b"junk");
        assert_invalid(&zstd, &payload, "zstd");
        assert_round_trip(&zstd, b"the next batch decodes fine");
    }

    #[test]
    fn large_output_grows_past_the_hint() {
        // 8 MiB of one byte compresses to a few hundred bytes, far below the 4x guess.
        let input = vec![b'x'; 8 << 20];
        assert_eq!(
            decompress(&Zstd::default(), &streamed_frame(&input)).unwrap(),
            input
        );
    }

    #[test]
    fn corruption_never_panics() {
        let payload = streamed_frame(&compressible_bytes(40_000));
        assert_corruption_is_handled(&Zstd::default(), &payload);
    }

    #[test]
    fn decodes_kafka_golden_batch() {
        assert_decodes_golden(&Zstd::default());
        let golden = golden_batches()
            .into_iter()
            .find(|(id, _)| *id == 4)
            .unwrap()
            .1;
        assert_eq!(golden[..6], [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]);
    }
}
