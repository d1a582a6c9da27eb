//! The active segment's file runs ahead of its data: appends copy batches into a shared
//! map of space reserved (with `fallocate`) in steps, and the file is trimmed back to its
//! batches when the segment is sealed (roll, close). A crash or a drop without close
//! leaves the zeros behind; the next open cuts them without reporting a truncation and
//! keeps every batch.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use partlog::{BatchBuilder, Codecs, Compression, Log, LogConfig, LogOptions, Record};

/// Whether `dir` is on a file system where partlog stores small appends through a map
/// and reserves the active file ahead (ext4, XFS, tmpfs on Linux); elsewhere every
/// append is a `write` and files hold exactly their data, which these tests do not cover.
fn reserves_ahead(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: `statfs` fills the zeroed struct we pass from a valid C string.
        let f_type = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            assert_eq!(libc::statfs(path.as_ptr(), &mut st), 0);
            st.f_type as i64
        };
        let reserves = matches!(f_type, 0xEF53 | 0x5846_5342 | 0x0102_1994);
        if !reserves {
            eprintln!("skipped: {} is not on ext4, XFS or tmpfs", dir.display());
        }
        reserves
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

fn config(segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        ..LogConfig::default()
    }
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("record {i} ").into_bytes();
    v.resize(len, b'a' + (i % 26) as u8);
    v
}

/// Appends `batches` batches of `per_batch` records of `len` bytes, numbered from
/// `first`, and returns the next number.
fn append(log: &Log, first: usize, batches: usize, per_batch: usize, len: usize) -> usize {
    let mut i = first;
    for _ in 0..batches {
        let mut b = BatchBuilder::new(Compression::None);
        for _ in 0..per_batch {
            b.push(
                1_700_000_000_000 + i as i64,
                None,
                Some(&value(i, len)),
                &[],
            );
            i += 1;
        }
        let info = log.append(b.build(&Codecs::default()).unwrap()).unwrap();
        assert_eq!(info.base_offset, (i - per_batch) as i64);
    }
    i
}

fn read_all(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let batches = log.read(next, 1 << 20).unwrap();
        for b in &batches {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                if r.offset >= next {
                    out.push(r);
                }
            }
        }
        next = out.last().map_or(next, |r| r.offset + 1);
    }
    out
}

fn assert_records(log: &Log, n: usize, len: usize) {
    let records = read_all(log);
    assert_eq!(records.len(), n);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
        assert_eq!(r.value.as_deref(), Some(&value(i, len)[..]), "record {i}");
    }
}

/// `.log` files of `dir`, oldest first, with their lengths on disk.
fn log_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let len = fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_active_file_is_reserved_ahead_in_doubling_steps_and_close_trims_it() {
    let tmp = tempfile::tempdir().unwrap();
    if !reserves_ahead(tmp.path()) {
        return;
    }
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, config(64 << 20)).unwrap();
    assert_eq!(log_files(&dir)[0].1, 0, "an empty segment reserves nothing");

    // One small batch reserves the first 64 KiB step at once, and the preparer thread
    // soon grows the file on, in whole doubling steps, to 256 KiB past the batch's end.
    let mut n = append(&log, 0, 1, 1, 1000);
    assert!(log.size_bytes() < 2048);
    let ahead = log.size_bytes() + 256 * 1024;
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_files(&dir)[0].1 < ahead {
        assert!(Instant::now() < deadline, "{:?}", log_files(&dir));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(log_files(&dir)[0].1, 512 * 1024);

    // Then the file grows in doubling steps (64, 128, 256 KiB…, at most 4 MiB), always
    // ahead of the data: every length is on that grid, and at most a step and the 256
    // KiB the preparer asks for lie past the data.
    let grid: Vec<u64> = (0..6)
        .map(|k| (64 * 1024) << k)
        .chain((1..8).map(|k| k * (4 << 20)))
        .collect();
    let mut lengths = vec![];
    while log.size_bytes() < 12 << 20 {
        n = append(&log, n, 1, 10, 1000);
        let (_, len) = log_files(&dir)[0].clone();
        assert!(len >= log.size_bytes(), "{len} < {}", log.size_bytes());
        assert!(
            len - log.size_bytes() <= (4 << 20) + 256 * 1024,
            "{len} vs {}",
            log.size_bytes()
        );
        if lengths.last() != Some(&len) {
            lengths.push(len);
        }
    }
    assert!(
        lengths.iter().all(|l| grid.contains(l)),
        "file lengths {lengths:?} off the grid {grid:?}"
    );
    assert!(lengths.is_sorted(), "{lengths:?}");

    log.close().unwrap();
    assert_eq!(
        log_files(&dir),
        vec![(dir.join(format!("{:020}.log", 0)), log.size_bytes())]
    );
    drop(log);
    let log = Log::open_with(
        &dir,
        config(64 << 20),
        LogOptions {
            clean_shutdown: true,
            ..LogOptions::default()
        },
    )
    .unwrap();
    assert_eq!(log.recovery_report().rebuilt_indexes, vec![]);
    assert_eq!(log.recovery_report().zero_tail_bytes, 0);
    assert_records(&log, n, 1000);
}

#[test]
fn a_drop_without_close_leaves_zeros_that_the_next_open_cuts_keeping_every_batch() {
    let tmp = tempfile::tempdir().unwrap();
    if !reserves_ahead(tmp.path()) {
        return;
    }
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, config(1 << 30)).unwrap();
    let n = append(&log, 0, 50, 7, 300);
    let data = log.size_bytes();
    let (_, len) = log_files(&dir)[0].clone();
    assert!(len > data, "reserved {len} for {data} bytes of batches");
    drop(log);
    assert_eq!(log_files(&dir)[0].1, len, "the zeros stay on disk");

    let log = Log::open(&dir, config(1 << 30)).unwrap();
    let report = log.recovery_report().clone();
    assert_eq!(report.truncations, vec![], "zeros are no truncation");
    assert_eq!(report.deleted_segments, Vec::<PathBuf>::new());
    assert_eq!(report.zero_tail_bytes, len - data);
    assert_eq!(report.bytes_recovered, data);
    // The open cut the zeros (above); the segment preparer may already have reserved
    // space again for the reopened active segment, so the file holds the batches and,
    // past them, only zeros.
    let (path, reopened) = log_files(&dir)[0].clone();
    assert!(reopened >= data, "{reopened} bytes for {data} of batches");
    let bytes = fs::read(&path).unwrap();
    assert!(
        bytes[data as usize..].iter().all(|&b| b == 0),
        "a tail past the batches"
    );
    assert_eq!(log.log_end_offset(), n as i64);
    assert_records(&log, n, 300);

    // The reopened log appends after its last batch and reserves afresh.
    let n = append(&log, n, 1, 1, 300);
    assert_records(&log, n, 300);
    log.close().unwrap();
}

#[test]
fn a_roll_trims_the_sealed_file_and_only_the_active_one_runs_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    if !reserves_ahead(tmp.path()) {
        return;
    }
    let dir = tmp.path().join("t-0");
    // 200 KiB segments: the third 64/128 KiB step is capped at `segment.bytes`.
    let log = Log::open(&dir, config(200 * 1024)).unwrap();
    let n = append(&log, 0, 120, 10, 500);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "{bases:?}");
    let files = log_files(&dir);
    assert_eq!(files.len(), bases.len());
    let (active, sealed) = files.split_last().unwrap();
    let mut total = 0;
    for (path, len) in sealed {
        assert!(*len <= 200 * 1024, "{}: {len}", path.display());
        total += len;
    }
    // Every sealed file holds exactly its batches: the log's size is theirs plus the
    // active segment's data, which its file runs ahead of.
    let active_data = log.size_bytes() - total;
    assert!(active.1 > active_data, "{active:?} for {active_data}");
    assert!(active.1 <= 200 * 1024);
    assert_records(&log, n, 500);

    // Crash-like reopen: sealed segments are not touched, the active one is cut.
    drop(log);
    let log = Log::open(&dir, config(200 * 1024)).unwrap();
    let report = log.recovery_report();
    assert_eq!(report.truncations, vec![]);
    assert_eq!(report.deleted_segments, Vec::<PathBuf>::new());
    assert_eq!(report.zero_tail_bytes, active.1 - active_data);
    assert_eq!(log.segment_base_offsets(), bases);
    assert_records(&log, n, 500);
}

const LIMIT_CHILD: &str = "PARTLOG_RESERVE_LIMIT_CHILD";
/// `ulimit -f` counts 512-byte blocks: 1 MiB.
const LIMIT_BLOCKS: u64 = 2048;

/// In the child, under `ulimit -f` with `SIGXFSZ` left to kill it: appends until the data
/// is within 100 KiB of the limit, so the preparer is asked for 256 KiB past the data,
/// beyond the limit; then waits for it and prints the file's length.
fn limit_child(dir: &Path) {
    let config = LogConfig {
        segment_index_bytes: 4096,
        ..config(64 << 20)
    };
    let log = Log::open(dir, config).unwrap();
    let limit = LIMIT_BLOCKS * 512;
    let mut n = 0;
    while log.size_bytes() < limit - 100 * 1024 {
        n = append(&log, n, 1, 1, 1000);
    }
    // The preparer's job for the last appends, if it were to go past the limit, would
    // raise SIGXFSZ within this time.
    std::thread::sleep(Duration::from_millis(500));
    println!("data {} file {}", log.size_bytes(), log_files(dir)[0].1);
    log.close().unwrap();
    assert_records(&log, n, 1000);
}

#[test]
fn the_preparer_never_reserves_past_the_file_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    if let Ok(dir) = std::env::var(LIMIT_CHILD) {
        limit_child(Path::new(&dir));
        return;
    }
    if !reserves_ahead(tmp.path()) {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "ulimit -f {LIMIT_BLOCKS}; exec \"$0\" the_preparer_never_reserves_past_the_file_size_limit --exact --nocapture --test-threads 1"
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&exe)
        .env(LIMIT_CHILD, &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({:?}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The report follows the harness's "test ... " on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("data ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (data, file) = (nums[0], nums[1]);
    assert!(data > LIMIT_BLOCKS * 512 - 100 * 1024, "{line}");
    // Reserved ahead as far as the limit allows, and no further.
    assert_eq!(file, LIMIT_BLOCKS * 512, "{line}");
}
