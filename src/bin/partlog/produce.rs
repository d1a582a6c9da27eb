//! `partlog produce`: one record per stdin line, as `kafka-console-producer` sends them.
//!
//! A line is its bytes without the line ending (`\n` or `\r\n`); an empty line is a record
//! with an empty value. With `--key-separator SEP` the key is what comes before the first
//! SEP and the value what follows it; a line without SEP is an error naming the line
//! number (Kafka's console producer with `parse.key=true` fails the same way). Records
//! of the lines before it are kept, as Kafka's producer has sent them by then.

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::path::Path;

use clap::Args;
use partlog::{Broker, Producer, ProducerConfig, ProducerRecord, SendHandle};

use crate::{CliError, with_broker};

/// Sends not yet known to be appended, beyond which `produce` waits for the oldest.
const MAX_IN_FLIGHT: usize = 64 * 1024;

/// `partlog produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The topic.
    topic: String,
    /// Send every record to this partition (default: Kafka's partitioner, by key hash
    /// or sticky for keyless records).
    #[arg(long)]
    partition: Option<i32>,
    /// Split each line into KEY SEP VALUE at the first SEP (Kafka's key.separator with
    /// parse.key=true).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
}

/// Runs `produce`: prints nothing on success.
pub(crate) fn run(dir: &Path, args: &ProduceArgs) -> Result<(), CliError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage("--key-separator cannot be empty".into()));
    }
    with_broker(dir, false, |broker| produce(broker, args))
}

/// Sends every stdin line, then flushes and waits for every record's append.
fn produce(broker: &Broker, args: &ProduceArgs) -> Result<(), CliError> {
    // Fail on an unknown topic before reading any input.
    broker.partition_count(&args.topic)?;
    let producer = broker.producer(ProducerConfig::default());
    let mut pending = VecDeque::new();
    let sent = send_lines(&producer, args, &mut pending, io::stdin().lock());
    // Flush what was sent even when a line failed: those records are kept.
    let closed = producer.close();
    let appended = wait_all(pending);
    sent.and(appended).and(closed.map_err(CliError::from))
}

/// Reads `input` line by line and sends each line as a record.
fn send_lines(
    producer: &Producer,
    args: &ProduceArgs,
    pending: &mut VecDeque<(u64, SendHandle)>,
    mut input: impl BufRead,
) -> Result<(), CliError> {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let record = parse_line(trim_line_ending(&line), args, number)?;
        let handle = producer
            .send(record)
            .map_err(|e| CliError::Failed(format!("line {number}: {e}")))?;
        pending.push_back((number, handle));
        settle(pending)?;
    }
}

/// Strips one trailing `\n` or `\r\n`.
fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The record a line stands for.
fn parse_line<'a>(
    line: &'a [u8],
    args: &'a ProduceArgs,
    number: u64,
) -> Result<ProducerRecord<'a>, CliError> {
    let mut record = match &args.key_separator {
        None => ProducerRecord::new(&args.topic, line),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = find(line, sep).ok_or_else(|| {
                CliError::Failed(format!(
                    "line {number} has no key separator {:?} (with --key-separator every line \
                     must be KEY{0}VALUE); the lines before it were produced",
                    String::from_utf8_lossy(sep)
                ))
            })?;
            ProducerRecord::new(&args.topic, &line[at + sep.len()..]).key(&line[..at])
        }
    };
    if let Some(p) = args.partition {
        record = record.partition(p);
    }
    Ok(record)
}

/// Index of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Drops the handles already resolved (failing on the first failed one) and waits for
/// the oldest while too many are in flight.
fn settle(pending: &mut VecDeque<(u64, SendHandle)>) -> Result<(), CliError> {
    while let Some((_, handle)) = pending.front() {
        if pending.len() <= MAX_IN_FLIGHT && !handle.is_done() {
            break;
        }
        let (number, handle) = pending.pop_front().expect("front exists");
        handle
            .wait()
            .map_err(|e| CliError::Failed(format!("line {number}: {e}")))?;
    }
    Ok(())
}

/// Waits for every remaining handle; the first failure names its line.
fn wait_all(pending: VecDeque<(u64, SendHandle)>) -> Result<(), CliError> {
    let mut first = Ok(());
    for (number, handle) in pending {
        if let Err(e) = handle.wait() {
            first = first.and(Err(CliError::Failed(format!("line {number}: {e}"))));
        }
    }
    first
}
