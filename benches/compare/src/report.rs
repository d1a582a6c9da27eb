//! Medians per case, the target ratios, and the terminal, CSV and Markdown renderings.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use crate::cases::{Case, Job, Sample, System, Workload, durability};
use crate::machine::Machine;
use crate::systems::E2eSettings;

/// The exact CSV header the issue asks for.
pub const CSV_HEADER: &str =
    "system,workload,record_bytes,records,records_per_sec,mb_per_sec,p50_us,p99_us,p999_us";

/// One result row: the medians of a case's measured rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What was measured.
    pub case: Case,
    /// Records per measurement (records × read passes).
    pub records: u64,
    /// Median records per second (throughput workloads).
    pub records_per_sec: Option<f64>,
    /// Median payload megabytes (10^6 bytes of record values) per second.
    pub mb_per_sec: Option<f64>,
    /// Median p50, p99, p99.9 in microseconds (latency workload).
    pub latency_us: Option<[u64; 3]>,
    /// Measured rounds.
    pub rounds: usize,
    /// Shortest measured round, in seconds (0 for latency rows).
    pub min_secs: f64,
}

/// How the run was made, for the headers.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Measured rounds.
    pub rounds: usize,
    /// Warm-up rounds (also used to size N).
    pub warmup_rounds: usize,
    /// Whether this was a `--quick` smoke run.
    pub quick: bool,
    /// Wall-clock time of all rounds.
    pub wall: Duration,
    /// Latency workload settings.
    pub e2e: E2eSettings,
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One line for the progress log.
pub fn describe(s: &Sample) -> String {
    match s.latency_us {
        Some([p50, p99, p999]) => format!("p50 {p50} µs, p99 {p99} µs, p99.9 {p999} µs"),
        None => format!(
            "{} rec/s ({} records in {:.3} s)",
            si(s.records as f64 / s.secs),
            s.records,
            s.secs
        ),
    }
}

/// Rows in group order, from each case's job and samples.
pub fn rows(groups: &[Vec<Case>], samples: &HashMap<Case, (Job, Vec<Sample>)>) -> Vec<Row> {
    let mut cases: Vec<Case> = groups.iter().flatten().copied().collect();
    cases.sort();
    cases
        .into_iter()
        .filter_map(|case| {
            let (_, s) = samples.get(&case)?;
            let records = s.first()?.records;
            let throughput = s[0].latency_us.is_none();
            let rps =
                throughput.then(|| median(s.iter().map(|x| x.records as f64 / x.secs).collect()));
            let latency_us = s[0].latency_us.map(|_| {
                [0, 1, 2].map(|q| {
                    median(
                        s.iter()
                            .filter_map(|x| x.latency_us)
                            .map(|l| l[q] as f64)
                            .collect(),
                    ) as u64
                })
            });
            Some(Row {
                case,
                records,
                records_per_sec: rps,
                mb_per_sec: rps.map(|r| r * case.record_bytes as f64 / 1e6),
                latency_us,
                rounds: s.len(),
                min_secs: if throughput {
                    s.iter().map(|x| x.secs).fold(f64::INFINITY, f64::min)
                } else {
                    0.0
                },
            })
        })
        .collect()
}

/// The CSV file: the exact header, then one line per row; cells that do not apply are
/// empty.
pub fn csv(rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in rows {
        let lat = |q: usize| opt(r.latency_us.map(|l| l[q].to_string()));
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            r.case.system.name(),
            r.case.workload.name(),
            r.case.record_bytes,
            r.records,
            opt(r.records_per_sec.map(|v| format!("{v:.0}"))),
            opt(r.mb_per_sec.map(|v| format!("{v:.1}"))),
            lat(0),
            lat(1),
            lat(2)
        )
        .unwrap();
    }
    out
}

/// An issue target: a ratio of two rows' medians and the bound it must meet.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    /// What is compared, in words.
    pub label: String,
    /// The measured ratio, when both rows ran.
    pub value: Option<f64>,
    /// The bound.
    pub bound: f64,
    /// `true`: the ratio must be at least `bound` (throughput); `false`: at most
    /// (latency).
    pub at_least: bool,
}

impl Ratio {
    /// "PASS", "MISS", or "n/a" when a row is missing.
    pub fn verdict(&self) -> &'static str {
        match self.value {
            None => "n/a",
            Some(v) if (v >= self.bound) == self.at_least || v == self.bound => "PASS",
            Some(_) => "MISS",
        }
    }

    fn target(&self) -> String {
        format!("{} {}×", if self.at_least { "≥" } else { "≤" }, self.bound)
    }
}

/// The targets, each from the same run.
pub fn ratios(rows: &[Row]) -> Vec<Ratio> {
    use System as S;
    use Workload as W;
    let find = |s: System, w: Workload, b: usize| {
        rows.iter().find(|r| {
            r.case
                == Case {
                    workload: w,
                    record_bytes: b,
                    system: s,
                }
        })
    };
    let rate = |s, w, b| find(s, w, b).and_then(|r| r.records_per_sec);
    let mut out = Vec::new();
    let throughput: [(&str, System, Workload, System, Workload, f64); 8] = [
        (
            "partlog batched append / write floor",
            S::Partlog,
            W::AppendBatched,
            S::Floor,
            W::AppendBatched,
            0.7,
        ),
        (
            "partlog batched append / commitlog batched",
            S::Partlog,
            W::AppendBatched,
            S::Commitlog,
            W::AppendBatched,
            1.0,
        ),
        (
            "partlog send one at a time / commitlog append_msg",
            S::Partlog,
            W::AppendOne,
            S::Commitlog,
            W::AppendOne,
            5.0,
        ),
        (
            "partlog read / commitlog read",
            S::Partlog,
            W::Read,
            S::Commitlog,
            W::Read,
            1.0,
        ),
        (
            "partlog read / read floor",
            S::Partlog,
            W::Read,
            S::Floor,
            W::Read,
            0.3,
        ),
        (
            "partlog durable 1 thread / okaywal",
            S::PartlogFsync,
            W::Durable1t,
            S::Okaywal,
            W::Durable1t,
            2.0,
        ),
        (
            "partlog durable 4 threads / okaywal",
            S::PartlogFsync,
            W::Durable4t,
            S::Okaywal,
            W::Durable4t,
            2.0,
        ),
        (
            "partlog durable 4 threads / fjall (not an issue target)",
            S::PartlogFsync,
            W::Durable4t,
            S::Fjall,
            W::Durable4t,
            1.0,
        ),
    ];
    for (label, s1, w1, s2, w2, bound) in throughput {
        for b in crate::cases::SIZES {
            let value = match (rate(s1, w1, b), rate(s2, w2, b)) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            };
            out.push(Ratio {
                label: format!("{label}, {b} B"),
                value,
                bound,
                at_least: true,
            });
        }
    }
    let p99 = |s| {
        find(s, W::E2e, crate::cases::E2E_BYTES)
            .and_then(|r| r.latency_us)
            .map(|l| l[1])
    };
    out.push(Ratio {
        label: "partlog e2e p99 / crossbeam p99 (parked consumer)".into(),
        value: match (p99(S::Partlog), p99(S::Crossbeam)) {
            (Some(x), Some(y)) => Some(x as f64 / y.max(1) as f64),
            _ => None,
        },
        bound: 2.0,
        at_least: false,
    });
    out
}

/// 1234567.0 as "1.23 M".
pub fn si(v: f64) -> String {
    match v {
        v if !v.is_finite() => "-".into(),
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// The cells of a row as the tables show them.
fn cells(r: &Row) -> [String; 9] {
    let lat = |q: usize| r.latency_us.map_or(String::new(), |l| l[q].to_string());
    [
        r.case.system.name().to_string(),
        r.case.workload.name().to_string(),
        r.case.record_bytes.to_string(),
        r.records.to_string(),
        r.records_per_sec.map_or(String::new(), si),
        r.mb_per_sec.map_or(String::new(), |v| format!("{v:.1}")),
        lat(0),
        lat(1),
        lat(2),
    ]
}

const TITLES: [&str; 10] = [
    "system",
    "workload",
    "bytes",
    "records",
    "records/s",
    "MB/s",
    "p50 µs",
    "p99 µs",
    "p99.9 µs",
    "durability",
];

fn run_line(s: &Settings) -> String {
    format!(
        "{}median of {} interleaved round(s) after {} warm-up round(s), {:.0} s in all; e2e: {} messages {:?} apart",
        if s.quick {
            "QUICK SMOKE RUN (numbers not meaningful): "
        } else {
            ""
        },
        s.rounds,
        s.warmup_rounds,
        s.wall.as_secs_f64(),
        s.e2e.samples,
        s.e2e.gap
    )
}

fn short_rows(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.latency_us.is_none() && r.min_secs < 0.1)
        .map(|r| {
            format!(
                "{} {} {} B: shortest round {:.0} ms",
                r.case.system,
                r.case.workload,
                r.case.record_bytes,
                r.min_secs * 1e3
            )
        })
        .collect()
}

/// The table and the ratios for the terminal.
pub fn terminal(rows: &[Row], ratios: &[Ratio], s: &Settings, m: &Machine) -> String {
    let mut out = format!("{}\n{}\n\n", m.line(), run_line(s));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = cells(r).to_vec();
            c.push(durability(r.case.system, r.case.workload).to_string());
            c
        })
        .collect();
    let widths: Vec<usize> = (0..TITLES.len())
        .map(|i| {
            body.iter()
                .map(|c| c[i].chars().count())
                .chain([TITLES[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[String]| {
        let mut l = String::new();
        for (i, cell) in c.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if (2..9).contains(&i) {
                l += &format!("{}{cell}  ", " ".repeat(pad));
            } else {
                l += &format!("{cell}{}  ", " ".repeat(pad));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out += &line(&TITLES.map(String::from));
    for c in &body {
        out += &line(c);
    }
    out += "\ntargets (ratios of medians from this run):\n";
    for r in ratios {
        out += &format!(
            "  {:<4} {:<62} {:>8}  (target {})\n",
            r.verdict(),
            r.label,
            r.value.map_or("-".into(), |v| format!("{v:.2}×")),
            r.target()
        );
    }
    let short = short_rows(rows);
    if s.quick && !short.is_empty() {
        out += &format!(
            "{} rows had a round under 100 ms (expected with --quick)\n",
            short.len()
        );
    } else {
        for w in short {
            out += &format!("warning: under 100 ms: {w}\n");
        }
    }
    out
}

/// The Markdown copy: header, the table with the durability column, the ratios.
pub fn markdown(rows: &[Row], ratios: &[Ratio], s: &Settings, m: &Machine) -> String {
    let mut out = String::from("# partlog side by side\n\n");
    out += &format!(
        "Made on {}.  \n{}.  \nCommand: `cargo run --release --manifest-path benches/compare/Cargo.toml` \
         (see `benches/compare/README.md` for what each row does).\n\n",
        m.line(),
        run_line(s)
    );
    out += "Records/s and MB/s (record values only, 10^6 bytes) are medians over rounds; \
            never compare a row that fsyncs with one that does not without reading the \
            durability column. `read` reads data the same system wrote in the same round \
            (page cache warm for every system).\n\n";
    out += &format!("| {} |\n|", TITLES.join(" | "));
    for i in 0..TITLES.len() {
        out += if (2..9).contains(&i) { "---:|" } else { "---|" };
    }
    out += "\n";
    for r in rows {
        out += &format!(
            "| {} | {} |\n",
            cells(r).join(" | "),
            durability(r.case.system, r.case.workload)
        );
    }
    out += "\n## Targets\n\n| | target | ratio | |\n|---|---:|---:|---|\n";
    for r in ratios {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            r.label,
            r.target(),
            r.value.map_or("-".into(), |v| format!("{v:.2}×")),
            r.verdict()
        );
    }
    let short = short_rows(rows);
    if !short.is_empty() {
        out += "\nRows with a round under 100 ms (less reliable):\n\n";
        for w in short {
            out += &format!("- {w}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: System, workload: Workload, rps: Option<f64>, lat: Option<[u64; 3]>) -> Row {
        Row {
            case: Case {
                workload,
                record_bytes: 100,
                system,
            },
            records: 1000,
            records_per_sec: rps,
            mb_per_sec: rps.map(|r| r * 100.0 / 1e6),
            latency_us: lat,
            rounds: 5,
            min_secs: 0.2,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn csv_has_the_exact_header_and_empty_cells() {
        let rows = [
            row(
                System::Partlog,
                Workload::AppendOne,
                Some(2_000_000.0),
                None,
            ),
            row(System::Crossbeam, Workload::E2e, None, Some([5, 9, 30])),
        ];
        let text = csv(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "system,workload,record_bytes,records,records_per_sec,mb_per_sec,p50_us,p99_us,p999_us"
        );
        assert_eq!(lines[1], "partlog,append-one,100,1000,2000000,200.0,,,");
        assert_eq!(lines[2], "crossbeam,e2e-latency,100,1000,,,5,9,30");
    }

    #[test]
    fn ratios_pass_and_miss() {
        let rows = [
            row(System::Partlog, Workload::AppendOne, Some(6e6), None),
            row(System::Commitlog, Workload::AppendOne, Some(1e6), None),
            row(System::Partlog, Workload::E2e, None, Some([10, 50, 90])),
            row(System::Crossbeam, Workload::E2e, None, Some([8, 20, 40])),
        ];
        let r = ratios(&rows);
        let one = r
            .iter()
            .find(|r| {
                r.label.starts_with("partlog send one at a time") && r.label.ends_with("100 B")
            })
            .unwrap();
        assert_eq!((one.value, one.verdict()), (Some(6.0), "PASS"));
        let e2e = r.iter().find(|r| r.label.contains("e2e")).unwrap();
        assert_eq!((e2e.value, e2e.verdict()), (Some(2.5), "MISS"));
        let missing = r.iter().find(|r| r.label.contains("okaywal")).unwrap();
        assert_eq!(missing.verdict(), "n/a");
    }
}
