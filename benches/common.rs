//! Shared workload builders for the benches.

#![allow(dead_code)]

use partlog::{BatchBuilder, Codecs, Compression, EncodedBatch};

/// Deterministic, mildly compressible 100-byte values: a counter plus repeating text.
pub fn value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{i:016x}-").into_bytes();
    let text = b"the quick brown fox jumps over the lazy dog ";
    while v.len() < len {
        v.push(text[(v.len() + i as usize) % text.len()]);
    }
    v.truncate(len);
    v
}

/// Batches of `record_bytes`-byte values filling about `batch_bytes` each, `total_bytes`
/// in all, with timestamps one millisecond apart.
pub fn batches(
    total_bytes: usize,
    batch_bytes: usize,
    record_bytes: usize,
    compression: Compression,
) -> Vec<EncodedBatch> {
    let codecs = Codecs::default();
    let mut out = Vec::new();
    let mut i = 0u64;
    let mut size = 0;
    while size < total_bytes {
        let mut b = BatchBuilder::with_capacity(compression, batch_bytes);
        while b.estimated_size() + record_bytes + 8 <= batch_bytes {
            b.push(
                1_700_000_000_000 + i as i64,
                None,
                Some(&value(i, record_bytes)),
                &[],
            );
            i += 1;
        }
        let e = b.build(&codecs).unwrap();
        size += e.size();
        out.push(e);
    }
    out
}
