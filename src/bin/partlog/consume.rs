//! `partlog consume`: print records one per line, as `kafka-console-consumer` does.
//!
//! Each record prints as its value, preceded by `partition:offset<TAB>` with
//! `--print-offset` and by `key<TAB>` with `--print-key`; a null key or value prints as
//! `null`. Bytes are written as stored, without decoding. Control records (transaction
//! markers) are skipped; records of aborted transactions are printed, as a
//! `read_uncommitted` Kafka consumer does.
//!
//! With `--group G` the command reads as a member of group G: it starts where G last
//! committed (or, where G has no offset, at the log start with `--from-beginning` and at
//! the log end without), and commits the next offset after each printed batch of records
//! once they are written to stdout, so successive runs read consecutive, disjoint ranges.
//!
//! Without `--follow` the command stops at the log end offsets it saw when it started;
//! with it, it waits for new records until `--max-messages` or Ctrl-C. Only one process
//! can open a data directory, so `--follow` sees records appended by this process only:
//! nothing, until the library can share a directory between processes.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use partlog::{
    Broker, Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetReset, TopicPartition,
};

use crate::{CliError, Stop, with_broker, write_out};

/// How long one `poll` waits before the loop checks whether it is done.
const POLL: Duration = Duration::from_millis(200);

/// `partlog consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Start at each partition's log start offset (default: the log end, new records only).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Start at this offset of --partition: a number, `earliest` or `latest`.
    #[arg(long, requires = "partition")]
    offset: Option<StartOffset>,
    /// Read as a member of this consumer group, from its committed offsets, committing
    /// what is printed.
    #[arg(long, value_name = "G", conflicts_with_all = ["partition", "offset"])]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Keep waiting for new records instead of stopping at the log end.
    #[arg(long)]
    follow: bool,
    /// Print `key<TAB>` before each value.
    #[arg(long)]
    print_key: bool,
    /// Print `partition:offset<TAB>` first.
    #[arg(long)]
    print_offset: bool,
    /// `read_uncommitted` (default: every record, aborted transactions included) or
    /// `read_committed` (only committed records, up to the last stable offset).
    #[arg(long, value_name = "LEVEL", default_value = "read_uncommitted", value_parser = parse_isolation)]
    isolation_level: IsolationLevel,
}

/// Parses `--isolation-level` with Kafka's names.
fn parse_isolation(s: &str) -> Result<IsolationLevel, String> {
    match s {
        "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
        "read_committed" => Ok(IsolationLevel::ReadCommitted),
        other => Err(format!(
            "expected read_uncommitted or read_committed, got {other:?}"
        )),
    }
}

/// The value of `--offset`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StartOffset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest`: the log end offset.
    Latest,
    /// An absolute offset; outside the log it is an error naming the valid range.
    At(i64),
}

impl FromStr for StartOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<StartOffset, String> {
        match s {
            "earliest" => Ok(StartOffset::Earliest),
            "latest" => Ok(StartOffset::Latest),
            n => match n.parse::<i64>() {
                Ok(o) if o >= 0 => Ok(StartOffset::At(o)),
                _ => Err(format!(
                    "expected an offset (0 or more), `earliest` or `latest`, got {n:?}"
                )),
            },
        }
    }
}

/// Runs `consume`.
pub(crate) fn run(dir: &Path, args: &ConsumeArgs) -> Result<(), CliError> {
    if let Some(group) = &args.group {
        return with_broker(dir, false, |broker| consume_group(broker, group, args));
    }
    with_broker(dir, false, |broker| consume(broker, args))
}

/// Where each partition starts.
fn start(args: &ConsumeArgs) -> StartOffset {
    match args.offset {
        Some(o) => o,
        None if args.from_beginning => StartOffset::Earliest,
        None => StartOffset::Latest,
    }
}

/// Assigns the partitions, positions them, and prints records until done.
fn consume(broker: &Broker, args: &ConsumeArgs) -> Result<(), CliError> {
    let tps: Vec<TopicPartition> = match args.partition {
        Some(p) => vec![TopicPartition::new(args.topic.as_str(), p)],
        None => (0..broker.partition_count(&args.topic)?)
            .map(|p| TopicPartition::new(args.topic.as_str(), p))
            .collect(),
    };
    let start = start(args);
    let mut consumer = broker.consumer(ConsumerConfig {
        // An explicit offset outside the log must fail, not silently move.
        auto_offset_reset: match start {
            StartOffset::At(_) => OffsetReset::None,
            StartOffset::Earliest => OffsetReset::Earliest,
            StartOffset::Latest => OffsetReset::Latest,
        },
        isolation_level: args.isolation_level,
        ..ConsumerConfig::default()
    });
    consumer.assign(&tps)?;
    match start {
        StartOffset::Earliest => consumer.seek_to_beginning(&tps)?,
        StartOffset::Latest => consumer.seek_to_end(&tps)?,
        StartOffset::At(o) => consumer.seek(&tps[0], o)?,
    }
    let ends = consumer.end_offsets(&tps)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    match print_records(&mut consumer, args, &ends, &mut out) {
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// The poll loop: prints records until `--max-messages`, or (without `--follow`) until
/// every partition's position reaches its log end offset at the start.
fn print_records(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    ends: &HashMap<TopicPartition, i64>,
    out: &mut impl Write,
) -> Result<(), Stop> {
    let max = args.max_messages.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut line = Vec::new();
    while printed < max {
        if !args.follow && reached(consumer, ends).map_err(Stop::Failed)? {
            break;
        }
        let records = consumer.poll(POLL).map_err(|e| Stop::Failed(e.into()))?;
        for r in records
            .iter()
            .take((max - printed).min(usize::MAX as u64) as usize)
        {
            format_record(r, args, &mut line);
            write_out(out, &line)?;
            printed += 1;
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(())
}

/// `consume --group`: subscribes as a member, prints, and commits what it printed.
fn consume_group(broker: &Broker, group: &str, args: &ConsumeArgs) -> Result<(), CliError> {
    let max = args.max_messages.unwrap_or(u64::MAX);
    let mut consumer = broker.consumer(ConsumerConfig {
        group_id: Some(group.to_string()),
        auto_offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        enable_auto_commit: false,
        max_poll_records: max.clamp(1, 500) as usize,
        isolation_level: args.isolation_level,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&[args.topic.as_str()])?;
    let tps: Vec<TopicPartition> = (0..broker.partition_count(&args.topic)?)
        .map(|p| TopicPartition::new(args.topic.as_str(), p))
        .collect();
    let ends = consumer.end_offsets(&tps)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let printed = print_group_records(&mut consumer, args, &ends, &mut out);
    let closed = consumer.close();
    match printed {
        Ok(()) | Err(Stop::Closed) => closed.map_err(CliError::from),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// The poll loop of `consume --group`: after each poll's records are printed and
/// flushed, commits the offset after the last printed record of each partition.
fn print_group_records(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    ends: &HashMap<TopicPartition, i64>,
    out: &mut impl Write,
) -> Result<(), Stop> {
    let max = args.max_messages.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut line = Vec::new();
    let failed = |e: partlog::Error| Stop::Failed(e.into());
    while printed < max {
        let records = consumer.poll(POLL).map_err(failed)?;
        if records.is_empty()
            && !args.follow
            && group_reached(consumer, ends).map_err(Stop::Failed)?
        {
            break;
        }
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        for r in records
            .iter()
            .take((max - printed).min(usize::MAX as u64) as usize)
        {
            format_record(r, args, &mut line);
            write_out(out, &line)?;
            printed += 1;
            next.insert(TopicPartition::new(&*r.topic, r.partition), r.offset + 1);
        }
        out.flush()?;
        consumer.commit_sync_offsets(&next).map_err(failed)?;
    }
    Ok(())
}

/// Whether every partition the consumer owns is read up to its end offset at the start.
fn group_reached(
    consumer: &mut Consumer,
    ends: &HashMap<TopicPartition, i64>,
) -> Result<bool, CliError> {
    for tp in consumer.assignment() {
        if consumer.position(&tp)? < ends.get(&tp).copied().unwrap_or(0) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether every partition's position is at or past its end offset.
pub(crate) fn reached(
    consumer: &mut Consumer,
    ends: &HashMap<TopicPartition, i64>,
) -> Result<bool, CliError> {
    for (tp, end) in ends {
        if consumer.position(tp)? < *end {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `[partition:offset\t][key\t]value\n` into `line`.
fn format_record(r: &ConsumerRecord, args: &ConsumeArgs, line: &mut Vec<u8>) {
    line.clear();
    if args.print_offset {
        line.extend_from_slice(format!("{}:{}\t", r.partition, r.offset).as_bytes());
    }
    if args.print_key {
        line.extend_from_slice(r.key.as_deref().unwrap_or(b"null"));
        line.push(b'\t');
    }
    line.extend_from_slice(r.value.as_deref().unwrap_or(b"null"));
    line.push(b'\n');
}
