//! partlog side by side with the crates a Rust user would pick instead, and with the
//! machine's own limits, measured in one run.
//!
//! `cargo run --release --manifest-path benches/compare/Cargo.toml [-- --quick]`
//!
//! Every (workload, record size) group runs each of its systems once per round, in an
//! order that rotates from round to round, so drift on the machine (page-cache
//! writeback, other processes) hits every system alike. Two warm-up rounds come first and
//! also size each measurement (N records) to last about `--target-secs`; each row is
//! the median of the measured rounds. Every measurement writes into a fresh directory
//! under the repository's `target/compare/scratch`, after a `sync`, so no system pays
//! for the writeback of another's data.

#![deny(unsafe_code)]

mod cases;
mod chart;
mod data;
mod machine;
mod report;
mod systems;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

use cases::{Case, Job, Sample, Workload};
use data::{Res, Scratch};
use systems::E2eSettings;

/// Runs the comparison and writes `results.csv`, `results.md` and `results.svg`.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Smoke run: small N, one round, no warm-up (numbers are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Measured rounds (default 5, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds each measurement should last; N is sized in the warm-up rounds to this.
    #[arg(long, default_value_t = 0.3)]
    target_secs: f64,
    /// Output directory (default: the repository's target/compare).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only the cases whose system or workload name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Also copy the Markdown table and the chart to the repository's
    /// docs/compare.md and docs/compare.svg, which the README embeds.
    #[arg(long)]
    docs: bool,
}

/// How a run is sized.
#[derive(Clone, Copy, Debug)]
struct Plan {
    warmup_rounds: usize,
    rounds: usize,
    /// Whether the warm-up rounds resize N to `target_secs`.
    calibrate: bool,
    target_secs: f64,
    e2e: E2eSettings,
}

/// Payload bytes one measurement may write: past this, reads repeat passes instead.
const MAX_BYTES: usize = 512 << 20;
/// Every N is a multiple of this: whole batches of 1,000 for each of four threads.
const N_STEP: usize = 4000;

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// The first N of a case: the whole run with `--quick`, the calibration run otherwise.
fn initial_job(case: Case, quick: bool) -> Job {
    let records = match (case.workload.durable(), case.record_bytes <= 100, quick) {
        (true, _, true) => 8_000,
        (true, _, false) => 20_000,
        (false, true, true) => 20_000,
        (false, false, true) => 8_000,
        (false, true, false) => 200_000,
        (false, false, false) => 40_000,
    };
    Job { records, passes: 1 }
}

/// N for `target_secs`, from a run of `job` that took `secs`.
fn calibrated(case: Case, job: Job, secs: f64, target_secs: f64) -> Job {
    let rate = (job.records * job.passes) as f64 / secs.max(1e-6);
    let wanted = ((rate * target_secs) as usize).div_ceil(N_STEP).max(1) * N_STEP;
    let cap = (MAX_BYTES / case.record_bytes / N_STEP).max(1) * N_STEP;
    if wanted <= cap {
        return Job {
            records: wanted,
            passes: 1,
        };
    }
    let passes = if case.workload == Workload::Read {
        wanted.div_ceil(cap)
    } else {
        1
    };
    Job {
        records: cap,
        passes,
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = Args::parse();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| repo_root().join("target/compare"));
    std::fs::create_dir_all(&out)?;
    let plan = Plan {
        // The first warm-up round sizes N from a cold start (first files, first page
        // faults), which underestimates some systems; the second sizes it again.
        warmup_rounds: if args.quick { 0 } else { 2 },
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 5 }),
        calibrate: !args.quick,
        target_secs: args.target_secs,
        e2e: E2eSettings {
            warmup: if args.quick { 200 } else { 1_000 },
            samples: if args.quick { 2_000 } else { 10_000 },
            gap: Duration::from_micros(50),
        },
    };
    let groups: Vec<Vec<Case>> = cases::groups()
        .into_iter()
        .map(|g| {
            g.into_iter()
                .filter(|c| {
                    args.only.as_deref().is_none_or(|o| {
                        c.system.name().contains(o) || c.workload.name().contains(o)
                    })
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect();
    let scratch = Scratch::new(&out)?;
    let machine = machine::Machine::describe(&out);
    let began = Instant::now();
    let samples = measure(&groups, &plan, &scratch, args.quick)?;
    let wall = began.elapsed();
    let rows = report::rows(&groups, &samples);
    let settings = report::Settings {
        rounds: plan.rounds,
        warmup_rounds: plan.warmup_rounds,
        quick: args.quick,
        wall,
        e2e: plan.e2e,
    };
    let ratios = report::ratios(&rows);
    println!("{}", report::terminal(&rows, &ratios, &settings, &machine));
    std::fs::write(out.join("results.csv"), report::csv(&rows))?;
    std::fs::write(
        out.join("results.md"),
        report::markdown(&rows, &ratios, &settings, &machine),
    )?;
    let note = if args.quick {
        " (QUICK SMOKE RUN, not meaningful)"
    } else {
        ""
    };
    chart::svg(&out.join("results.svg"), &rows, &machine, note)?;
    std::fs::remove_dir_all(out.join("scratch")).ok();
    if args.docs {
        let docs = repo_root().join("docs");
        std::fs::copy(out.join("results.md"), docs.join("compare.md"))?;
        std::fs::copy(out.join("results.svg"), docs.join("compare.svg"))?;
        eprintln!(
            "copied to {0}/compare.md and {0}/compare.svg",
            docs.display()
        );
    }
    eprintln!(
        "wrote {0}/results.csv, {0}/results.md, {0}/results.svg in {1:.0} s",
        out.display(),
        wall.as_secs_f64()
    );
    Ok(())
}

/// The order of a group's systems in `round`: each round starts one system later, so
/// no system always runs first (after a quiet moment) or last.
fn rotation(len: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |k| (round + k) % len)
}

/// Runs every round and returns each case's measured samples (warm-up excluded).
fn measure(
    groups: &[Vec<Case>],
    plan: &Plan,
    scratch: &Scratch,
    quick: bool,
) -> Res<HashMap<Case, (Job, Vec<Sample>)>> {
    let pools: HashMap<usize, Vec<Vec<u8>>> = groups
        .iter()
        .flatten()
        .map(|c| (c.record_bytes, data::value_pool(c.record_bytes)))
        .collect();
    let mut jobs: HashMap<Case, Job> = groups
        .iter()
        .flatten()
        .map(|&c| (c, initial_job(c, quick)))
        .collect();
    let mut samples: HashMap<Case, Vec<Sample>> = HashMap::new();
    let total = plan.warmup_rounds + plan.rounds;
    for round in 0..total {
        let warmup = round < plan.warmup_rounds;
        for group in groups {
            for i in rotation(group.len(), round) {
                let case = group[i];
                let job = jobs[&case];
                let dir = scratch.fresh()?;
                data::sync_all();
                let s = systems::run(case, job, dir.path(), &pools[&case.record_bytes], plan.e2e)
                    .map_err(|e| {
                    format!(
                        "{} {} {} B: {e}",
                        case.system, case.workload, case.record_bytes
                    )
                })?;
                drop(dir);
                eprintln!(
                    "round {}/{total}{} {:<18} {:>5} B {:<13} {}",
                    round + 1,
                    if warmup { " (warm-up)" } else { "" },
                    case.workload.name(),
                    case.record_bytes,
                    case.system.name(),
                    report::describe(&s)
                );
                if warmup {
                    if plan.calibrate && s.latency_us.is_none() {
                        // fsync times vary most from one call to the next: durable
                        // measurements average over twice as long.
                        let target = if case.workload.durable() {
                            2.0 * plan.target_secs
                        } else {
                            plan.target_secs
                        };
                        jobs.insert(case, calibrated(case, job, s.secs, target));
                    }
                } else {
                    samples.entry(case).or_default().push(s);
                }
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|(case, s)| (case, (jobs[&case], s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cases::{System, Workload};

    fn case(workload: Workload, record_bytes: usize, system: System) -> Case {
        Case {
            workload,
            record_bytes,
            system,
        }
    }

    #[test]
    fn rotation_starts_one_later_each_round() {
        assert_eq!(rotation(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rotation(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(rotation(3, 5).collect::<Vec<_>>(), [2, 0, 1]);
    }

    #[test]
    fn calibration_scales_to_the_target_and_caps_bytes() {
        let c = case(Workload::AppendOne, 100, System::Partlog);
        let job = Job {
            records: 200_000,
            passes: 1,
        };
        // 1 M records/s for 0.3 s.
        assert_eq!(
            calibrated(c, job, 0.2, 0.3),
            Job {
                records: 300_000,
                passes: 1
            }
        );
        // 1 G records/s would be 300 M records: capped at 512 MiB of values.
        let capped = calibrated(c, job, 0.0002, 0.3);
        assert_eq!(capped.passes, 1);
        assert!(capped.records * 100 <= MAX_BYTES && capped.records.is_multiple_of(N_STEP));
        // A read that fast repeats passes instead.
        let r = case(Workload::Read, 100, System::Floor);
        let read = calibrated(r, job, 0.0002, 0.3);
        assert_eq!(read.records, capped.records);
        assert!(read.records * read.passes >= 300_000_000);
    }

    /// Every case runs end to end on a small N, and each run's own checks (records
    /// counted back, offsets, bytes) pass.
    #[test]
    fn every_case_runs_and_counts_its_records() {
        let tmp = tempfile::tempdir_in(repo_root().join("target")).unwrap();
        let scratch = Scratch::new(tmp.path()).unwrap();
        let e2e = E2eSettings {
            warmup: 10,
            samples: 100,
            gap: Duration::from_micros(20),
        };
        for c in cases::groups().into_iter().flatten() {
            let values = data::value_pool(c.record_bytes);
            let job = Job {
                records: N_STEP,
                passes: 2,
            };
            let dir = scratch.fresh().unwrap();
            let s = systems::run(c, job, dir.path(), &values, e2e)
                .unwrap_or_else(|e| panic!("{c:?}: {e}"));
            match c.workload {
                Workload::E2e => {
                    let [p50, p99, p999] = s.latency_us.unwrap();
                    assert!(p50 <= p99 && p99 <= p999, "{c:?}");
                    assert_eq!(s.records, 100);
                }
                Workload::Read => assert_eq!(s.records, 2 * N_STEP as u64, "{c:?}"),
                _ => assert_eq!(s.records, N_STEP as u64, "{c:?}"),
            }
        }
    }
}
