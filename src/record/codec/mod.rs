//! The built-in codecs, each framed exactly as Kafka frames it inside a v2 batch.
//!
//! | codec | written as | read |
//! |---|---|---|
//! | [`Gzip`] | one RFC 1952 member with Java's header bytes | any gzip, multi-member too |
//! | [`Snappy`] | xerial framing, 32 KiB blocks | xerial framing or one raw snappy block |
//! | [`Lz4`] | Kafka's LZ4 frame: `04 22 4d 18 60 40 82`, 64 KiB blocks | LZ4 frames with independent blocks |
//! | [`Zstd`] | one zstd frame | a stream of zstd frames |
//!
//! Every decoder treats its input as untrusted. Lengths are checked before any slicing, a
//! length read from the input never sizes an allocation beyond what that input could
//! really expand to (or a fixed cap), and a bad payload is an `io::ErrorKind::InvalidData`
//! error saying what is wrong, never a panic. When a call fails, `out` is truncated back to
//! its length before the call, so a failed compression or decompression appends nothing.

use std::io;

mod gzip;
mod lz4;
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

pub use self::gzip::Gzip;
pub use self::lz4::Lz4;
pub use self::snappy::Snappy;
#[cfg(feature = "zstd")]
pub use self::zstd::Zstd;

/// The most a decoder reserves up front from a size the input merely *claims*.
///
/// Streaming decoders (gzip, zstd) grow `out` past this as real output arrives; the cap only
/// stops a forged size field from allocating gigabytes before anything is decoded.
const MAX_RESERVE_HINT: usize = 64 << 20;

/// The error every decoder returns for a payload it cannot decode.
fn invalid_data(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Runs `write`, truncating `out` back to its current length if it fails.
///
/// Codecs write into `out` as they go; this makes a failed call append nothing.
fn append_or_rollback(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let start = out.len();
    let result = write(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Grows `out` with zeros to at least `len` bytes; never shrinks it.
///
/// Block codecs need an initialised `&mut [u8]` to write into. Callers keep their own
/// logical end and truncate once at the end, so bytes zeroed for one block's worst case and
/// left unused are reused by the next block instead of being zeroed again.
fn grow_to(out: &mut Vec<u8>, len: usize) {
    if out.len() < len {
        out.resize(len, 0);
    }
}

/// A read position in an untrusted payload: every read checks the length first.
struct Input<'a> {
    rest: &'a [u8],
    /// Names the format in error messages (`"lz4 frame"`, `"snappy xerial"`).
    format: &'static str,
}

impl<'a> Input<'a> {
    fn new(bytes: &'a [u8], format: &'static str) -> Input<'a> {
        Input {
            rest: bytes,
            format,
        }
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn starts_with(&self, prefix: &[u8]) -> bool {
        self.rest.starts_with(prefix)
    }

    /// The next `n` bytes, or an error naming `what` was cut short.
    fn take(&mut self, n: usize, what: &str) -> io::Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(invalid_data(format!(
                "{}: truncated {what}: needs {n} bytes, {} remain",
                self.format,
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array (for fixed-width integers).
    fn array<const N: usize>(&mut self, what: &str) -> io::Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Inputs, round trips, corruption loops and the golden Kafka segment, shared by the
    //! tests of every codec.

    use std::io;

    use crate::record::Codec;

    /// Bytes before the payload in `out`, to prove that codecs append and never clear.
    const PREFIX: &[u8] = b"prefix";

    /// `len` bytes from a 64-bit LCG (Knuth's MMIX constants): incompressible in practice.
    pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect()
    }

    /// `len` bytes of record-like text: repetitive, compresses several times over.
    pub fn compressible_bytes(len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len + 64);
        let mut i = 0u64;
        while data.len() < len {
            data.extend_from_slice(format!("key-{i} value-{}-xxxxxxxxxxxx;", i % 97).as_bytes());
            i += 1;
        }
        data.truncate(len);
        data
    }

    /// Compresses `input` after a prefix in `out`; returns only the compressed bytes.
    pub fn compress(codec: &dyn Codec, input: &[u8]) -> Vec<u8> {
        let mut out = PREFIX.to_vec();
        codec.compress(input, &mut out).expect("compress");
        assert_eq!(&out[..PREFIX.len()], PREFIX, "compress clobbered out");
        out.split_off(PREFIX.len())
    }

    /// Decompresses `payload` after a prefix; checks that a failure appends nothing.
    pub fn decompress(codec: &dyn Codec, payload: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = PREFIX.to_vec();
        match codec.decompress(payload, &mut out) {
            Ok(()) => {
                assert_eq!(&out[..PREFIX.len()], PREFIX, "decompress clobbered out");
                Ok(out.split_off(PREFIX.len()))
            }
            Err(e) => {
                assert_eq!(out, PREFIX, "a failed decompress left bytes in out");
                Err(e)
            }
        }
    }

    /// Asserts that `payload` is rejected with `InvalidData` and a message containing
    /// `needle`.
    pub fn assert_invalid(codec: &dyn Codec, payload: &[u8], needle: &str) {
        let err = decompress(codec, payload).expect_err("payload must be rejected");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let message = err.to_string();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }

    /// Compresses and decompresses `input`, asserting that it comes back unchanged.
    pub fn assert_round_trip(codec: &dyn Codec, input: &[u8]) -> Vec<u8> {
        let compressed = compress(codec, input);
        let back = decompress(codec, &compressed).expect("decompress own output");
        assert!(back == input, "round trip of {} bytes differs", input.len());
        compressed
    }

    /// Round trips of the sizes every codec must handle, including each framing's block
    /// boundaries (32 KiB for snappy, 64 KiB for lz4).
    pub fn assert_standard_round_trips(codec: &dyn Codec) {
        assert_round_trip(codec, b"");
        assert_round_trip(codec, b"x");
        assert_round_trip(codec, &compressible_bytes(100 << 10));
        assert_round_trip(codec, &random_bytes(100 << 10, 1));
        for len in [32 << 10, (32 << 10) + 1, 64 << 10, (64 << 10) + 1] {
            assert_round_trip(codec, &compressible_bytes(len));
            assert_round_trip(codec, &random_bytes(len, len as u64));
        }
    }

    /// Truncates `payload` at many positions and flips bits at many positions. Every decode
    /// must return `Ok` or an `InvalidData` error (never panic), and a truncated payload
    /// that still decodes must yield a prefix of the full output, never invented bytes.
    pub fn assert_corruption_is_handled(codec: &dyn Codec, payload: &[u8]) {
        let full = decompress(codec, payload).expect("the intact payload decodes");
        let step = (payload.len() / 512).max(1);
        for cut in (0..payload.len()).step_by(step) {
            if let Some(partial) = outcome(decompress(codec, &payload[..cut])) {
                assert!(full.starts_with(&partial), "cut at {cut} invented bytes");
            }
        }
        let mut damaged = payload.to_vec();
        for pos in (0..payload.len()).step_by(step) {
            for bit in [0u8, 3, 7] {
                damaged[pos] ^= 1 << bit;
                outcome(decompress(codec, &damaged));
                damaged[pos] ^= 1 << bit;
            }
        }
    }

    /// The output of a decode that succeeded; asserts that a failure is `InvalidData`.
    fn outcome(result: io::Result<Vec<u8>>) -> Option<Vec<u8>> {
        match result {
            Ok(out) => Some(out),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                None
            }
        }
    }

    /// The batches of Kafka's golden segment as (codec id, records payload) pairs.
    ///
    /// Batch layout: baseOffset (8), batchLength (4, big-endian; the batch spans
    /// 12 + batchLength bytes), the rest of the 61-byte header with the codec in the low
    /// three bits of byte 22, then the (compressed) records.
    pub fn golden_batches() -> Vec<(u8, Vec<u8>)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/kafka-golden/00000000000000000000.log"
        );
        let log = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let mut batches = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            let length = i32::from_be_bytes(log[pos + 8..pos + 12].try_into().unwrap());
            let end = pos + 12 + usize::try_from(length).unwrap();
            batches.push((log[pos + 22] & 0x07, log[pos + 61..end].to_vec()));
            pos = end;
        }
        assert_eq!(
            pos,
            log.len(),
            "the last batch runs past the end of the file"
        );
        batches
    }

    /// Decodes the golden batch written with `codec` by Kafka's Java code and checks it
    /// against the golden uncompressed batch, which holds the same five records.
    pub fn assert_decodes_golden(codec: &dyn Codec) {
        let batches = golden_batches();
        let (_, plain) = batches.iter().find(|(id, _)| *id == 0).unwrap();
        let id = codec.compression().id();
        let found: Vec<&Vec<u8>> = batches
            .iter()
            .filter(|(c, _)| *c == id)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(found.len(), 1, "golden file has one batch of codec {id}");
        let records = decompress(codec, found[0]).expect("golden batch decodes");
        assert_eq!(records.len(), 263, "five records of the golden batch");
        for i in 0..5 {
            assert!(contains(&records, format!("key-{i}").as_bytes()), "key-{i}");
            if i != 1 {
                let value = format!("{:x<48}", format!("value-{i}-"));
                assert!(contains(&records, value.as_bytes()), "value of {i}");
            }
        }
        assert_eq!(&records, plain, "same records as the uncompressed batch");
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_take_checks_length_before_slicing() {
        let mut input = Input::new(b"abcdef", "test");
        assert_eq!(input.take(2, "head").unwrap(), b"ab");
        assert_eq!(input.array::<3>("word").unwrap(), *b"cde");
        let err = input.take(2, "tail").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "test: truncated tail: needs 2 bytes, 1 remain"
        );
        assert_eq!(input.remaining(), 1, "a failed take consumes nothing");
    }

    #[test]
    fn failed_decode_appends_nothing() {
        let mut out = b"keep".to_vec();
        let result = append_or_rollback(&mut out, |out| {
            out.extend_from_slice(b"partial");
            Err(invalid_data("bad"))
        });
        assert!(result.is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn golden_file_holds_every_codec() {
        let ids: Vec<u8> = test_support::golden_batches()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 0, 0]);
    }
}
