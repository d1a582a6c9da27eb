//! A writer killed with SIGKILL loses no acknowledged record.
//!
//! The test binary runs itself again as a child process (selected by the
//! `PARTLOG_CRASH_CHILD` environment variable). The child opens a partition through
//! [`LogDir`] with [`FsyncPolicy::EveryAppend`], appends batches whose content is a pure
//! function of their offsets, and prints `acked <last offset>` after each append returns.
//! The parent kills it at a random moment, reopens the directory and checks:
//!
//! - offsets run from 0 without a gap, every batch passes its CRC, and every record
//!   reads back byte for byte (key, value, headers, timestamp) as the generator made it;
//! - every acknowledged record is there, and at most the one batch that was in flight
//!   beyond it (written but not acknowledged);
//! - an append after recovery gets the log end offset as its base offset, and the next
//!   child's recovery finds exactly the log the parent left.
//!
//! One directory serves every round, so each round also recovers the previous crash. In
//! even rounds the parent closes the directory cleanly (checkpoints, clean-shutdown
//! marker), so the next crash is recovered from a checkpointed recovery point; in odd
//! rounds it drops it unclosed. Every tenth round kills the child while it may still be
//! recovering. At the end the directory is closed cleanly and, when kafka-python is
//! available, checked with `shared/tools/kafka_verify.py`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use partlog::{
    BatchBuilder, Codecs, Compression, EncodedBatch, FsyncPolicy, Header, Log, LogConfig, LogDir,
    Record,
};

const CHILD_ENV: &str = "PARTLOG_CRASH_CHILD";
/// Set to keep the data directory after the test, for inspection.
const KEEP_ENV: &str = "PARTLOG_CRASH_KEEP";
/// The Python that runs kafka_verify.py; when set, kafka-python must import in it.
const PYTHON_ENV: &str = "PARTLOG_PYTHON";
const TEST_NAME: &str = "sigkill_mid_append_loses_no_acknowledged_record";
const TOPIC: &str = "crash";
const ROUNDS: u64 = 100;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// How long the child appends if nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
/// How long the parent waits for the child to open its log.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 10,
        fsync: FsyncPolicy::EveryAppend,
        ..LogConfig::default()
    }
}

/// SplitMix64's output function: the content generator and the kill timer's PRNG.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = mix(self.0);
        lo + self.0 % (hi - lo + 1)
    }
}

/// Number of records in the batch that starts at `base`: 1 to 50.
fn batch_len(base: i64) -> i64 {
    1 + (mix(base as u64 ^ 0xba7c_4000) % 50) as i64
}

/// Codec of the batch that starts at `base`.
fn batch_codec(base: i64) -> Compression {
    const CODECS: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Gzip];
    CODECS[(mix(base as u64 ^ 0xc0de_c000) % 3) as usize]
}

/// The record at `offset`, as the writer makes it. Timestamps step back now and then, so
/// batches hold negative deltas; keys, values and header values are sometimes null.
fn expected_record(offset: i64) -> Record {
    let h = mix(offset as u64);
    let step_back = if h.is_multiple_of(4) {
        ((h >> 8) % 10) as i64
    } else {
        0
    };
    let key = (!h.is_multiple_of(7)).then(|| Bytes::from(format!("key-{offset}")));
    let value = match (h >> 16) % 11 {
        0 => None,
        1 => Some(Bytes::new()),
        _ => {
            let len = ((h >> 24) % 400) as usize;
            let mut v = Vec::with_capacity(len + 8);
            let mut word = h;
            while v.len() < len {
                word = mix(word);
                // Half random, half repeated: compressible, but not to nothing.
                v.extend_from_slice(&word.to_le_bytes()[..4]);
                v.extend_from_slice(b"abcd");
            }
            v.truncate(len);
            Some(Bytes::from(v))
        }
    };
    let headers = match (h >> 40) % 5 {
        0 => vec![
            Header::new("offset", offset.to_string()),
            Header {
                key: "null".into(),
                value: None,
            },
        ],
        1 => vec![Header::new("e", Bytes::new())],
        _ => vec![],
    };
    Record {
        offset,
        timestamp: BASE_TIMESTAMP + 3 * offset - step_back,
        key,
        value,
        headers,
    }
}

/// The batch that starts at `base`.
fn build_batch(base: i64, codecs: &Codecs) -> EncodedBatch {
    let mut builder = BatchBuilder::new(batch_codec(base));
    for offset in base..base + batch_len(base) {
        let r = expected_record(offset);
        builder.push(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    builder.build(codecs).expect("the built-in codecs encode")
}

#[test]
fn sigkill_mid_append_loses_no_acknowledged_record() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("partlog-crash-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let _cleanup = if std::env::var_os(KEEP_ENV).is_some() {
        eprintln!("keeping {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };
    let started = Instant::now();
    let mut checker = Checker::default();
    let mut stats = Stats::default();
    let mut log_end = 0i64;
    for round in 0..ROUNDS {
        let crash = crash_round(&dir, round, log_end, &mut stats);
        log_end = checker.recover_and_check(&dir, round, log_end, crash, &mut stats);
    }
    let log_end = final_checks(&dir, &mut checker);
    eprintln!(
        "crash test: {ROUNDS} rounds in {:.1?}: {} appends acknowledged, {} un-acknowledged \
         batches found on disk, {} torn tails cut, {} rounds killed before the first ack, \
         {} segments, log end offset {log_end}",
        started.elapsed(),
        stats.acks,
        stats.unacked_batches,
        stats.truncations,
        stats.no_ack_rounds,
        stats.segments
    );
    assert!(
        stats.acks >= ROUNDS,
        "only {} appends were acknowledged in {ROUNDS} rounds: the kills came too early to test anything",
        stats.acks
    );
    assert!(
        stats.segments > 2,
        "{} segments: the run should roll",
        stats.segments
    );
    kafka_verify(&dir, log_end);
}

/// The child: append deterministic batches until killed, acknowledging each on stdout.
fn child(dir: &Path) {
    let codecs = Codecs::default();
    let log_dir = LogDir::open(dir).unwrap();
    let log = log_dir.open_log(TOPIC, 0, config()).unwrap();
    let mut out = std::io::stdout().lock();
    let mut next = log.log_end_offset();
    // libtest has printed `test <name> ... ` without a newline: start a line of our own.
    writeln!(out, "\nready {next}").unwrap();
    out.flush().unwrap();
    let deadline = Instant::now() + CHILD_LIFETIME;
    while Instant::now() < deadline {
        let info = log.append(build_batch(next, &codecs)).unwrap();
        assert_eq!(
            info.base_offset, next,
            "append did not continue at the log end"
        );
        next = info.last_offset + 1;
        writeln!(out, "acked {}", info.last_offset).unwrap();
        out.flush().unwrap();
    }
}

#[derive(Default)]
struct Stats {
    acks: u64,
    unacked_batches: u64,
    truncations: u64,
    no_ack_rounds: u64,
    segments: usize,
}

/// What the parent learnt from one killed child.
#[derive(Clone, Copy)]
struct Crash {
    /// The child reported its log open (so it had removed any clean-shutdown marker).
    opened: bool,
    /// The highest acknowledged offset.
    acked: Option<i64>,
}

/// Runs one child and kills it.
///
/// `log_end` is the log end offset the parent left, which the child must recover exactly.
fn crash_round(dir: &Path, round: u64, log_end: i64, stats: &mut Stats) -> Crash {
    let mut rng = Rng(round.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let mut writer = Writer(
        Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("re-run the test binary as the writer"),
    );
    let child = &mut writer.0;
    let lines = read_lines(child.stdout.take().unwrap());
    // Every tenth round kills the child from its start, perhaps while it recovers.
    let during_open = round % 10 == 7;
    let mut opened = !during_open;
    let delay = if during_open {
        Duration::from_millis(rng.range(0, 30))
    } else {
        let ready = wait_for_ready(&lines, child);
        assert_eq!(
            ready, log_end,
            "round {round}: the child recovered log end offset {ready}, the parent left {log_end}"
        );
        Duration::from_millis(rng.range(2, 200))
    };
    thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        panic!("round {round}: the child ended by itself before the kill: {status}");
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: child exited with {status}"
    );
    let mut acked = None;
    for line in lines.iter() {
        if let Some(n) = line.strip_prefix("ready ") {
            let ready: i64 = n.parse().unwrap();
            assert_eq!(
                ready, log_end,
                "round {round}: child recovered {ready}, parent left {log_end}"
            );
            opened = true;
        } else if let Some(n) = line.strip_prefix("acked ") {
            let n: i64 = n.parse().unwrap();
            assert!(acked < Some(n), "acks go backwards: {n} after {acked:?}");
            acked = Some(n);
            stats.acks += 1;
        }
    }
    if acked.is_none() {
        stats.no_ack_rounds += 1;
    }
    Crash { opened, acked }
}

/// The child process, killed if the parent panics before it does.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        // Errors here mean the child is gone already, which is what is wanted.
        if self.0.kill().is_ok() {
            self.0.wait().ok();
        }
    }
}

/// Lines of the child's stdout, read by a thread until the child's end closes the pipe.
fn read_lines(stdout: std::process::ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the child's `ready <log end offset>` line (libtest's own lines are skipped).
fn wait_for_ready(lines: &Receiver<String>, child: &mut Child) -> i64 {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("ready ") {
                    return n.parse().unwrap();
                }
            }
            Err(e) => {
                let status = child.try_wait().unwrap();
                panic!("the child never reported ready ({e}); its exit status: {status:?}");
            }
        }
    }
}

/// Batches already checked record by record: base offset → (last offset, CRC). A batch
/// seen again is compared by its offsets and CRC only, so each round decodes only what is
/// new while still reading every batch of the log.
#[derive(Default)]
struct Checker {
    verified: BTreeMap<i64, (i64, u32)>,
}

impl Checker {
    /// Reopens the directory after a crash, checks the log against the acknowledgements,
    /// appends one batch and leaves the directory closed or not; returns the log end.
    fn recover_and_check(
        &mut self,
        dir: &Path,
        round: u64,
        left: i64,
        crash: Crash,
        stats: &mut Stats,
    ) -> i64 {
        let log_dir = LogDir::open(dir).unwrap();
        if crash.opened {
            assert!(
                !log_dir.had_clean_shutdown(),
                "round {round}: the child never closed"
            );
        }
        let log = log_dir.open_log(TOPIC, 0, config()).unwrap();
        stats.truncations += log.recovery_report().truncations.len() as u64;
        // The child appends from where the parent left off, one batch at a time.
        let floor = crash.acked.map_or(left, |a| a + 1).max(left);
        let end = log.log_end_offset();
        assert!(
            end == floor || end == floor + batch_len(floor),
            "round {round}: log end offset {end} after recovery; acknowledged up to {}, so it \
             must be {floor} or, with the batch in flight, {}; report: {:?}",
            floor - 1,
            floor + batch_len(floor),
            log.recovery_report()
        );
        if end > floor {
            stats.unacked_batches += 1;
        }
        self.check_log(&log, &format!("round {round}"));
        check_lookups(&log, round, &format!("round {round}"));

        let info = log.append(build_batch(end, log.codecs())).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset),
            (end, end + batch_len(end) - 1),
            "round {round}: an append after recovery must continue at the log end offset"
        );
        let batches = log.read(end, 1).unwrap();
        assert_eq!(batches.len(), 1);
        self.check_batch(
            &batches[0],
            &format!("round {round}, appended after recovery"),
        );
        stats.segments = log.segment_count();
        let end = log.log_end_offset();
        if round.is_multiple_of(2) {
            log_dir.close().unwrap();
        }
        end
    }

    /// Reads the whole log: contiguous offsets from 0, deterministic batch layout, every
    /// record as generated.
    fn check_log(&mut self, log: &Log, at: &str) {
        assert_eq!(log.log_start_offset(), 0, "{at}");
        let end = log.log_end_offset();
        let mut next = 0i64;
        while next < end {
            let batches = log.read(next, 1 << 20).unwrap();
            assert!(
                !batches.is_empty(),
                "{at}: nothing at {next}, log end {end}"
            );
            for batch in &batches {
                assert_eq!(batch.base_offset(), next, "{at}: gap or overlap at {next}");
                self.check_batch(batch, at);
                next = batch.next_offset();
            }
        }
        assert_eq!(
            next, end,
            "{at}: batches end at {next}, log end offset is {end}"
        );
        // Offsets verified earlier must all still be there.
        if let Some((_, &(last, _))) = self.verified.iter().next_back() {
            assert!(
                last < end,
                "{at}: offset {last} was read before, log now ends at {end}"
            );
        }
    }

    fn check_batch(&mut self, batch: &partlog::RecordBatch, at: &str) {
        let base = batch.base_offset();
        let at = format!("{at}: batch at offset {base}");
        batch.verify_crc().unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(batch.last_offset(), base + batch_len(base) - 1, "{at}");
        assert_eq!(batch.compression().unwrap(), batch_codec(base), "{at}");
        let seen = (batch.last_offset(), batch.crc());
        match self.verified.get(&base) {
            Some(&before) => assert_eq!(seen, before, "{at}: changed since it was read"),
            None => {
                let mut count = 0;
                for record in batch.records(&Codecs::default()).unwrap() {
                    let record = record.unwrap_or_else(|e| panic!("{at}: {e}"));
                    let expected = expected_record(record.offset);
                    assert_eq!(record, expected, "{at}: record {}", record.offset);
                    count += 1;
                }
                assert_eq!(count, batch_len(base), "{at}");
                self.verified.insert(base, seen);
            }
        }
    }
}

/// Looks up random offsets (through the offset index) and timestamps (through the time
/// index) in the recovered log and checks the answers against the generator.
fn check_lookups(log: &Log, seed: u64, at: &str) {
    let end = log.log_end_offset();
    if end == 0 {
        return;
    }
    let mut rng = Rng(seed ^ 0x0100_c0b5);
    for _ in 0..16 {
        let offset = rng.range(0, end as u64 - 1) as i64;
        let batches = log.read(offset, 1).unwrap();
        let first = batches
            .first()
            .unwrap_or_else(|| panic!("{at}: read({offset}) is empty"));
        assert!(
            first.base_offset() <= offset && offset <= first.last_offset(),
            "{at}: read({offset}) starts with the batch {}..={}",
            first.base_offset(),
            first.last_offset()
        );

        // Timestamps run BASE + 3 * offset, less at most 9: no offset below
        // (t - BASE) / 3 - 1 can reach t, so the answer is the first from there that does.
        let t = BASE_TIMESTAMP + rng.range(0, 3 * end as u64 - 1) as i64;
        let mut o = ((t - BASE_TIMESTAMP) / 3 - 1).max(0);
        while o < end && expected_record(o).timestamp < t {
            o += 1;
        }
        let expected = (o < end).then(|| (o, expected_record(o).timestamp));
        let found = log.offset_for_timestamp(t).unwrap();
        assert_eq!(
            found.map(|f| (f.offset, f.timestamp)),
            expected,
            "{at}: offset_for_timestamp({t})"
        );
    }
}

/// Closes the directory cleanly, reopens it (nothing to recover) and reads it all again;
/// returns the log end offset.
fn final_checks(dir: &Path, checker: &mut Checker) -> i64 {
    let end = {
        let log_dir = LogDir::open(dir).unwrap();
        let log = log_dir.open_log(TOPIC, 0, config()).unwrap();
        checker.check_log(&log, "after the last crash");
        log_dir.close().unwrap();
        log.log_end_offset()
    };
    let log_dir = LogDir::open(dir).unwrap();
    assert!(log_dir.had_clean_shutdown());
    let log = log_dir.open_log(TOPIC, 0, config()).unwrap();
    let report = log.recovery_report();
    assert!(
        report.clean_shutdown && report.segments_recovered == 0,
        "{report:?}"
    );
    assert_eq!(log.log_end_offset(), end);
    checker.check_log(&log, "after a clean close");
    log_dir.close().unwrap();
    end
}

/// Runs shared/tools/kafka_verify.py on the closed directory when kafka-python is there.
fn kafka_verify(dir: &Path, records: i64) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/kafka_verify.py");
    let explicit = std::env::var_os(PYTHON_ENV);
    let python = explicit.clone().unwrap_or_else(|| "python3".into());
    if !script.exists() {
        assert!(
            explicit.is_none(),
            "{PYTHON_ENV} is set but {} is missing",
            script.display()
        );
        eprintln!("skipping kafka_verify: {} is missing", script.display());
        return;
    }
    let import = Command::new(&python).args(["-c", "import kafka"]).output();
    if !matches!(&import, Ok(o) if o.status.success()) {
        assert!(
            explicit.is_none(),
            "{PYTHON_ENV}={python:?} cannot import kafka-python: {import:?}"
        );
        eprintln!(
            "skipping kafka_verify: `{} -c \"import kafka\"` failed (pip install kafka-python \
             crc32c lz4 python-snappy zstandard, or set {PYTHON_ENV})",
            python.to_string_lossy()
        );
        return;
    }
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .args(["--expect-records", &records.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "kafka_verify failed on {}",
        dir.display()
    );
}
