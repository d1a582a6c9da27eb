//! Record values, scratch directories and timing helpers shared by every system.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// Records per batch in the batched and durable workloads.
pub const BATCH: usize = 1000;

/// Any error a run can meet; the harness reports it and stops.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A pool of 1,024 distinct values of one length, cycled through by every system alike:
/// a decimal counter, then words drawn by a small linear congruential generator, so the
/// values compress about as well as ordinary text-like payloads.
pub fn value_pool(record_bytes: usize) -> Vec<Vec<u8>> {
    const WORDS: [&[u8]; 12] = [
        b"order ",
        b"shipped ",
        b"42 ",
        b"eur ",
        b"pending ",
        b"user-",
        b"id=",
        b"ok ",
        b"warehouse ",
        b"7 ",
        b"retry ",
        b"amount ",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    (0..1024u64)
        .map(|i| {
            let mut v = format!("{i:010} ").into_bytes();
            while v.len() < record_bytes {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                v.extend_from_slice(WORDS[(seed >> 60) as usize % WORDS.len()]);
            }
            v.truncate(record_bytes);
            v
        })
        .collect()
}

/// Where every system writes: `<repo>/target/compare/scratch`, one fresh directory per
/// measurement, so all systems share one filesystem (the repository's, not a tmpfs).
#[derive(Debug, Clone)]
pub struct Scratch {
    base: PathBuf,
}

impl Scratch {
    /// The scratch area under `out_dir`.
    pub fn new(out_dir: &Path) -> Res<Scratch> {
        let base = out_dir.join("scratch");
        std::fs::create_dir_all(&base)?;
        Ok(Scratch { base })
    }

    /// A fresh, empty directory, deleted when the handle drops.
    pub fn fresh(&self) -> Res<tempfile::TempDir> {
        Ok(tempfile::tempdir_in(&self.base)?)
    }
}

/// Seconds taken by `f`.
pub fn timed<T>(f: impl FnOnce() -> Res<T>) -> Res<(f64, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64(), out))
}

/// Writes every dirty page of the machine back (the `sync` system call), so that the
/// writeback of one measurement's data does not run during the next one's timing.
pub fn sync_all() {
    // SAFETY: `sync` takes no arguments and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync();
    }
}

/// Milliseconds since the Unix epoch, the timestamp a producer would stamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An end-to-end latency value: `record_bytes` bytes whose first eight carry the send
/// time in nanoseconds since `base`.
pub fn stamped(base: Instant, record_bytes: usize) -> Vec<u8> {
    let mut v = vec![b'x'; record_bytes.max(8)];
    v[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_be_bytes());
    v
}

/// Microseconds from the stamp in `value` to now.
pub fn age_us(base: Instant, value: &[u8]) -> u64 {
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&value[..8]);
    let now = base.elapsed().as_nanos() as u64;
    now.saturating_sub(u64::from_be_bytes(sent)) / 1000
}
