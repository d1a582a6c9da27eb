//! `partlog offsets`: each partition's offset for a time, as `kafka-get-offsets` prints it.
//!
//! One `TOPIC:PARTITION:OFFSET` line per partition, in partition order. `earliest` is the
//! log start offset, `latest` the log end offset (the offset the next record gets). For a
//! time in ms it is the first offset whose record timestamp is at or after that time;
//! when every record is older, partlog prints the log end offset, where a consumer
//! looking for records from that time would start. (Kafka's tool prints no line for such
//! a partition, since the broker answers -1.)

use std::path::Path;
use std::str::FromStr;

use clap::Args;
use partlog::Broker;

use crate::{CliError, print, with_broker};

/// `partlog offsets`.
#[derive(Debug, Args)]
pub(crate) struct OffsetsArgs {
    /// The topic.
    topic: String,
    /// `earliest` (or -2), `latest` (or -1), or a timestamp in ms since the Unix epoch.
    #[arg(long, default_value = "latest", allow_negative_numbers = true)]
    time: OffsetTime,
}

/// The value of `--time`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OffsetTime {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset at or after this timestamp.
    At(i64),
}

impl FromStr for OffsetTime {
    type Err = String;

    fn from_str(s: &str) -> Result<OffsetTime, String> {
        match s {
            "earliest" | "-2" => Ok(OffsetTime::Earliest),
            "latest" | "-1" => Ok(OffsetTime::Latest),
            t => match t.parse::<i64>() {
                Ok(ms) if ms >= 0 => Ok(OffsetTime::At(ms)),
                _ => Err(format!(
                    "expected earliest, latest or a timestamp in ms (0 or more), got {t:?}"
                )),
            },
        }
    }
}

/// Runs `offsets`.
pub(crate) fn run(dir: &Path, args: &OffsetsArgs) -> Result<(), CliError> {
    with_broker(dir, false, |broker| {
        let mut out = String::new();
        for p in 0..broker.partition_count(&args.topic)? {
            let offset = offset(broker, &args.topic, p, args.time)?;
            out.push_str(&format!("{}:{p}:{offset}\n", args.topic));
        }
        print(&out)
    })
}

/// One partition's offset for `time`.
fn offset(broker: &Broker, topic: &str, p: i32, time: OffsetTime) -> Result<i64, CliError> {
    let part = broker.partition(topic, p)?;
    Ok(match time {
        OffsetTime::Earliest => part.log_start_offset(),
        OffsetTime::Latest => part.log_end_offset(),
        OffsetTime::At(ms) => part
            .offset_for_timestamp(ms)?
            .map_or_else(|| part.log_end_offset(), |found| found.offset),
    })
}
