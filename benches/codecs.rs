//! Encode (build a batch: records + compression + CRC) and decode (CRC + decompress +
//! records) throughput of each codec on 16 KiB batches of 100-byte records.
//!
//! `cargo bench --bench codecs`

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use partlog::{BatchBuilder, Codecs, Compression};

fn codecs(c: &mut Criterion) {
    let codecs = Codecs::default();
    let values: Vec<Vec<u8>> = (0..150).map(|i| common::value(i, 100)).collect();
    let raw: usize = values.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(raw as u64));
    for compression in Compression::ALL {
        g.bench_function(BenchmarkId::new("encode", compression), |b| {
            let mut builder = BatchBuilder::with_capacity(compression, 16 << 10);
            b.iter(|| {
                builder.clear();
                for (i, v) in values.iter().enumerate() {
                    builder.push(1_700_000_000_000 + i as i64, None, Some(v), &[]);
                }
                black_box(builder.build(&codecs).unwrap())
            })
        });
        let mut builder = BatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            builder.push(1_700_000_000_000 + i as i64, None, Some(v), &[]);
        }
        let batch = builder.build(&codecs).unwrap().into_batch();
        g.bench_function(BenchmarkId::new("decode", compression), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for r in batch.records(&codecs).unwrap() {
                    bytes += r.unwrap().value.map_or(0, |v| v.len());
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
