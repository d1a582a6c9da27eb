//! A failed write poisons the partition: later appends and flushes fail with `Poisoned`
//! until the log is reopened, and reopening keeps every batch acknowledged before it.
//!
//! The failure is real: a child process runs under `ulimit -f` (with SIGXFSZ ignored), so
//! the kernel refuses the write that would grow the segment past the limit with EFBIG.

use std::process::Command;

use partlog::{BatchBuilder, Codecs, Compression, Error, Log, LogConfig};

const CHILD: &str = "PARTLOG_POISON_CHILD";
/// `ulimit -f` counts 512-byte blocks: the segment may grow to 64 KiB.
const LIMIT_BLOCKS: u64 = 128;

fn batch(i: u64) -> partlog::EncodedBatch {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'a' + (i % 26) as u8; 1000];
    b.push(
        1_700_000_000_000 + i as i64,
        Some(&i.to_be_bytes()),
        Some(&value),
        &[],
    );
    b.build(&Codecs::default()).unwrap()
}

/// In the child: append until the file-size limit makes a write fail, then check that the
/// partition stays poisoned, and print what was acknowledged.
fn child(dir: &str) {
    // Small preallocated indexes, so that the limit stops the log's data, not them.
    let config = LogConfig {
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let log = Log::open(dir, config).unwrap();
    let mut acked = 0u64;
    let failure = loop {
        match log.append(batch(acked)) {
            Ok(info) => {
                assert_eq!(info.base_offset, acked as i64);
                acked += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(failure, Error::Io { .. }),
        "first failure is the I/O error: {failure}"
    );
    assert!(log.poisoned().is_some());
    let again = log.append(batch(acked)).unwrap_err();
    assert!(matches!(again, Error::Poisoned { .. }), "{again}");
    assert!(again.to_string().contains("reopen it"), "{again}");
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    assert!(matches!(log.roll_now(), Err(Error::Poisoned { .. })));
    // Reads still work, up to the last acknowledged batch.
    assert_eq!(log.log_end_offset(), acked as i64);
    assert_eq!(log.read(0, 1 << 20).unwrap()[0].base_offset(), 0);
    println!("acked {acked}");
}

#[test]
fn a_failed_write_poisons_until_reopened() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("poison-0");
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f {LIMIT_BLOCKS}; exec \"$0\" a_failed_write_poisons_until_reopened --exact --nocapture --test-threads 1"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&exe)
        .env(CHILD, &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked: u64 = stdout
        .lines()
        // libtest may print `test ... ` on the same line before the child's output.
        .find_map(|l| l.split("acked ").nth(1))
        .expect("the child reports what was acknowledged")
        .trim()
        .parse()
        .unwrap();
    assert!(
        acked > 10 && acked < 70,
        "the limit should stop appends at about 64 KiB: {acked}"
    );

    // Reopen without the limit: every acknowledged batch is there, the torn tail (if the
    // failed write left part of a batch) is cut, and appends work again.
    let log = Log::open(&dir, LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), acked as i64);
    let mut offset = 0;
    while offset < log.log_end_offset() {
        for b in log.read(offset, 1 << 20).unwrap() {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                assert_eq!(r.key.as_deref(), Some(&(r.offset as u64).to_be_bytes()[..]));
                assert_eq!(r.value.as_deref().unwrap()[0], b'a' + (r.offset % 26) as u8);
            }
            offset = b.next_offset();
        }
    }
    assert_eq!(log.append(batch(acked)).unwrap().base_offset, acked as i64);
    log.close().unwrap();
}
