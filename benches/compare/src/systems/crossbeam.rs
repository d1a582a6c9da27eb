//! crossbeam-channel: the in-memory hand-off floor. A bounded channel (4,096 slots) from
//! a producer thread to a consumer thread blocked in `recv`; nothing is stored.

use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use hdrhistogram::Histogram;

use crate::data::{BATCH, Res, age_us, stamped, timed};

/// Sends `n` owned records (one `Vec` each, as a log append copies its input) until the
/// consumer has received them all.
pub fn append_one(n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let size = values[0].len();
    let (tx, rx) = bounded::<Vec<u8>>(4096);
    let (secs, count) = timed(|| {
        let consumer = thread::spawn(move || rx.iter().map(|v| v.len()).sum::<usize>() / size);
        for i in 0..n {
            tx.send(values[i % values.len()].clone())?;
        }
        drop(tx);
        consumer
            .join()
            .map_err(|_| "crossbeam consumer panicked".into())
    })?;
    check(count, n)?;
    Ok(secs)
}

/// Sends `n` records as messages of 1,000 records each (one flat buffer per message).
pub fn append_batched(n: usize, values: &[Vec<u8>]) -> Res<f64> {
    let size = values[0].len();
    let (tx, rx) = bounded::<Vec<u8>>(4096);
    let (secs, count) = timed(|| {
        let consumer = thread::spawn(move || rx.iter().map(|v| v.len() / size).sum::<usize>());
        for first in (0..n).step_by(BATCH) {
            let mut msg = Vec::with_capacity(BATCH * size);
            for i in first..first + BATCH {
                msg.extend_from_slice(&values[i % values.len()]);
            }
            tx.send(msg)?;
        }
        drop(tx);
        consumer
            .join()
            .map_err(|_| "crossbeam consumer panicked".into())
    })?;
    check(count, n)?;
    Ok(secs)
}

fn check(count: usize, n: usize) -> Res<()> {
    if count != n {
        return Err(format!("crossbeam delivered {count} of {n}").into());
    }
    Ok(())
}

/// As partlog's latency run: `send`, `gap` apart, to a consumer blocked in `recv`.
pub fn e2e(warmup: usize, samples: usize, gap: Duration, bytes: usize) -> Res<[u64; 3]> {
    let (tx, rx) = bounded::<Vec<u8>>(4096);
    let base = Instant::now();
    let reader = thread::spawn(move || -> Res<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        for (seen, v) in rx.iter().enumerate() {
            if seen >= warmup {
                h.record(age_us(base, &v))?;
            }
        }
        Ok(h)
    });
    for _ in 0..warmup + samples {
        tx.send(stamped(base, bytes))?;
        thread::sleep(gap);
    }
    drop(tx);
    let h = reader.join().map_err(|_| "crossbeam consumer panicked")??;
    if h.len() != samples as u64 {
        return Err(format!("crossbeam e2e recorded {} of {samples}", h.len()).into());
    }
    Ok(crate::systems::quantiles(&h))
}
