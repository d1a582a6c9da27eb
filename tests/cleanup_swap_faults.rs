//! A compaction's segment swap can stop at any step (reference §1.2) without losing a
//! record or resurrecting one:
//!
//! - a hook fails the swap before each of its steps in turn (each rename of a
//!   `.cleaned`, old or `.swap` file, the in-memory list swap, each unlink);
//! - the failed log keeps serving every record it had, refuses to clean again
//!   ([`Error::CleanerDisabled`]), and is dropped without a close, as in a crash;
//! - the reopened log holds every record the compaction keeps, only records the log had
//!   before, the same latest value per key, and the same log end offset; compacting it
//!   again gives exactly what an uninterrupted compaction gives;
//! - kafka_verify (kafka-python) accepts the directory with `--allow-gaps`, when
//!   `PARTLOG_PYTHON` (or `python3`) can import kafka-python.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use partlog::{
    BatchBuilder, Codecs, CompactionConfig, Compression, Error, Log, LogConfig, LogOptions,
    ManualClock, SwapStep,
};

const T0: i64 = 1_700_000_000_000;
const PYTHON_ENV: &str = "PARTLOG_PYTHON";

type Rec = (i64, Vec<u8>, Option<Vec<u8>>);

fn config() -> LogConfig {
    LogConfig {
        // Small segments, so the compaction writes several groups (several swaps).
        segment_bytes: 700,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    let options = LogOptions {
        clock: Arc::new(ManualClock::new(T0)),
        ..LogOptions::default()
    };
    Log::open_with(dir.join("t-0"), config(), options).unwrap()
}

/// Six keys overwritten in rounds over several segments, with tombstones, codecs mixed.
fn fill(log: &Log) {
    let codecs = [Compression::None, Compression::Gzip, Compression::Lz4];
    for round in 0..4 {
        for k in 0..6 {
            let mut b = BatchBuilder::new(codecs[(round + k) % 3]);
            let key = format!("key-{k}");
            let value = format!("value-{round}-{k}");
            let tombstone = (round + k) % 7 == 0;
            b.push(
                T0,
                Some(key.as_bytes()),
                (!tombstone).then_some(value.as_bytes()),
                &[],
            );
            log.append(b.build(&Codecs::default()).unwrap()).unwrap();
        }
    }
    log.roll_now().unwrap();
}

fn all(log: &Log) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        for b in log.read(next, 1 << 20).unwrap() {
            for r in b.records(log.codecs()).unwrap() {
                let r = r.unwrap();
                if r.offset >= next {
                    out.push((
                        r.offset,
                        r.key.unwrap().to_vec(),
                        r.value.map(|v| v.to_vec()),
                    ));
                }
            }
            next = b.next_offset();
        }
    }
    out
}

fn latest(records: &[Rec]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    records
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Copies the partition directory of `from` (closed) into `to`, without fsyncs: each
/// case starts from the same files at the cost of a copy.
fn copy_dir(from: &Path, to: &Path) {
    let (src, dst) = (from.join("t-0"), to.join("t-0"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// The records before and after an uninterrupted compaction of a copy of `template`,
/// and its number of steps.
fn reference(template: &Path) -> (Vec<Rec>, Vec<Rec>, usize) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let log = open(dir.path());
    let before = all(&log);
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    log.set_swap_hook(Some(Arc::new(move |s: &SwapStep| {
        seen.lock().unwrap().push(s.clone());
        Ok(())
    })));
    let r = log.compact(&CompactionConfig::default()).unwrap();
    assert!(r.segments_written >= 2, "several swaps: {r:?}");
    let after = all(&log);
    assert!(after.len() < before.len());
    let steps = steps.lock().unwrap();
    assert!(steps.iter().any(|s| matches!(s, SwapStep::ToDeleted(_))));
    eprintln!("{} swap steps", steps.len());
    (before, after, steps.len())
}

#[test]
fn a_swap_stopped_at_any_step_loses_and_resurrects_nothing() {
    let template = tempfile::tempdir().unwrap();
    let log = open(template.path());
    fill(&log);
    log.close().unwrap();
    drop(log);
    let (before, after, steps) = reference(template.path());
    assert_eq!(latest(&before), latest(&after));
    let before_set: BTreeSet<Rec> = before.iter().cloned().collect();
    for fail_at in 0..steps {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let log = open(dir.path());
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        log.set_swap_hook(Some(Arc::new(move |s: &SwapStep| {
            if counter.fetch_add(1, Ordering::SeqCst) == fail_at {
                return Err(Error::Closed(format!("injected crash before {s:?}")));
            }
            Ok(())
        })));
        let err = log.compact(&CompactionConfig::default()).unwrap_err();
        assert!(err.to_string().contains("injected crash"), "{err}");
        // Still serving a consistent log, and refusing to clean until reopened.
        let live = all(&log);
        check(&live, &before_set, &after, fail_at);
        let again = log.compact(&CompactionConfig::default()).unwrap_err();
        assert!(matches!(again, Error::CleanerDisabled { .. }), "{again}");
        let end = log.log_end_offset();
        drop(log); // a crash: no close

        let log = open(dir.path());
        assert_eq!(log.log_end_offset(), end, "step {fail_at}");
        let reopened = all(&log);
        check(&reopened, &before_set, &after, fail_at);
        leftovers_are_gone(&dir.path().join("t-0"));
        log.compact(&CompactionConfig::default()).unwrap();
        assert_eq!(all(&log), after, "step {fail_at}: compacting again");
        log.close().unwrap();
        drop(log);
        // kafka-python takes most of a second to start: check a few of the cases.
        if fail_at % 8 == 0 || fail_at + 1 == steps {
            kafka_verify(dir.path());
        }
    }
}

/// Every record is one the log had; every record the compaction keeps is there; the
/// latest value per key is unchanged.
fn check(got: &[Rec], before: &BTreeSet<Rec>, after: &[Rec], step: usize) {
    for r in got {
        assert!(before.contains(r), "step {step}: {r:?} was never written");
    }
    let got_set: BTreeSet<&Rec> = got.iter().collect();
    for r in after {
        assert!(got_set.contains(r), "step {step}: lost {r:?}");
    }
    let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "step {step}: offsets out of order"
    );
    assert_eq!(latest(got), latest(after), "step {step}");
}

fn leftovers_are_gone(part: &Path) {
    for e in std::fs::read_dir(part).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            !(name.ends_with(".cleaned") || name.ends_with(".swap") || name.ends_with(".deleted")),
            "{name} left behind"
        );
    }
}

/// shared/tools/kafka_verify.py --allow-gaps on the closed directory, when kafka-python
/// is importable.
fn kafka_verify(dir: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/kafka_verify.py");
    let explicit = std::env::var_os(PYTHON_ENV);
    let python = explicit.clone().unwrap_or_else(|| "python3".into());
    let import = Command::new(&python).args(["-c", "import kafka"]).output();
    if !script.exists() || !matches!(&import, Ok(o) if o.status.success()) {
        assert!(
            explicit.is_none(),
            "{PYTHON_ENV} is set but kafka_verify cannot run"
        );
        return;
    }
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .arg("--allow-gaps")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kafka_verify --allow-gaps failed on {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
