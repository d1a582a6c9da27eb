//! The SVG chart: records/s per system per workload (log scale), and the end-to-end
//! latency quantiles, titled with the date and the machine.

use std::path::Path;

use plotters::prelude::*;

use crate::cases::{System, Workload};
use crate::data::Res;
use crate::machine::Machine;
use crate::report::Row;

/// A colour per system, the same in both panels.
fn color(s: System) -> RGBColor {
    match s {
        System::Partlog => RGBColor(31, 119, 180),
        System::PartlogFsync => RGBColor(23, 190, 207),
        System::PartlogLz4 => RGBColor(44, 160, 44),
        System::PartlogZstd => RGBColor(148, 103, 189),
        System::Commitlog => RGBColor(255, 127, 14),
        System::Okaywal => RGBColor(214, 39, 40),
        System::Fjall => RGBColor(140, 86, 75),
        System::Crossbeam => RGBColor(227, 119, 194),
        System::Floor => RGBColor(127, 127, 127),
    }
}

/// Bars grouped on the x axis: group names, and per system its bars as (x, value).
struct Bars {
    groups: Vec<String>,
    slots: usize,
    series: Vec<(System, Vec<(f64, f64)>)>,
}

impl Bars {
    /// Bars from (group, system, value) in order: groups in order of first appearance,
    /// and inside a group each bar takes the next slot.
    fn new(items: &[(String, System, f64)]) -> Bars {
        let mut groups: Vec<String> = Vec::new();
        let mut filled: Vec<usize> = Vec::new();
        let mut placed: Vec<(usize, usize, System, f64)> = Vec::new();
        for (g, system, v) in items {
            let gi = groups.iter().position(|x| x == g).unwrap_or_else(|| {
                groups.push(g.clone());
                filled.push(0);
                groups.len() - 1
            });
            placed.push((gi, filled[gi], *system, *v));
            filled[gi] += 1;
        }
        let slots = filled.iter().copied().max().unwrap_or(1) + 1;
        let mut series: Vec<(System, Vec<(f64, f64)>)> = Vec::new();
        for (g, k, system, v) in placed {
            let bar = ((g * slots + k) as f64 + 0.5, v);
            match series.iter_mut().find(|(s, _)| *s == system) {
                Some((_, bars)) => bars.push(bar),
                None => series.push((system, vec![bar])),
            }
        }
        Bars {
            groups,
            slots,
            series,
        }
    }

    fn range(&self) -> (f64, f64) {
        let vals = self.series.iter().flat_map(|(_, v)| v.iter().map(|x| x.1));
        let lo = vals.clone().fold(f64::INFINITY, f64::min).max(1e-3);
        let hi = vals.fold(0.0, f64::max).max(lo * 10.0);
        // A decade of room above the highest bar for the legend.
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().floor() + 1.0),
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        caption: &str,
        y_desc: &str,
    ) -> Res<()>
    where
        DB::ErrorType: 'static,
    {
        let (lo, hi) = self.range();
        let width = (self.groups.len() * self.slots) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..width, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        let centre = |g: usize| (g * self.slots) as f64 + (self.slots - 1) as f64 / 2.0;
        let groups = &self.groups;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(self.groups.len() * self.slots * 2 + 1)
            .x_label_formatter(&|x| {
                (0..groups.len())
                    .find(|&g| (centre(g) - x).abs() < 0.25)
                    .map_or(String::new(), |g| groups[g].clone())
            })
            .y_desc(y_desc)
            .y_label_formatter(&|y| crate::report::si(*y))
            .draw()
            .map_err(|e| e.to_string())?;
        for (system, bars) in &self.series {
            let c = color(*system);
            chart
                .draw_series(bars.iter().map(|&(x, v)| {
                    Rectangle::new([(x - 0.45, lo), (x + 0.45, v.max(lo))], c.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(system.name())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Writes the chart to `path`; `note` (if not empty) follows the title.
pub fn svg(path: &Path, rows: &[Row], machine: &Machine, note: &str) -> Res<()> {
    let root = SVGBackend::new(path, (1500, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(
            &format!("partlog side by side{note} — {}", machine.line()),
            ("sans-serif", 20),
        )
        .map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(700);
    let throughput: Vec<(String, System, f64)> = rows
        .iter()
        .filter_map(|r| {
            let group = format!("{} {} B", r.case.workload.name(), r.case.record_bytes);
            Some((group, r.case.system, r.records_per_sec?))
        })
        .collect();
    Bars::new(&throughput).draw(
        &top,
        "records/s, median of rounds (log scale; durable-* rows fsync per batch of 1,000)",
        "records/s",
    )?;
    let mut latency: Vec<(String, System, f64)> = Vec::new();
    for (q, name) in ["p50", "p99", "p99.9"].iter().enumerate() {
        for r in rows.iter().filter(|r| r.case.workload == Workload::E2e) {
            if let Some(l) = r.latency_us {
                latency.push((name.to_string(), r.case.system, l[q].max(1) as f64));
            }
        }
    }
    if !latency.is_empty() {
        Bars::new(&latency).draw(
            &bottom,
            "end-to-end latency, producer thread to parked consumer thread (µs, log scale)",
            "µs",
        )?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
