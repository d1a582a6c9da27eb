//! `partlog topics`: create, list, describe and delete topics, as `kafka-topics` does.

use std::path::Path;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use partlog::{Broker, TopicConfig, TopicDescription};

use crate::{CliError, print, with_broker};

/// `partlog topics ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create a topic; prints `Created topic NAME.`
    Create(CreateArgs),
    /// Print every topic name, one per line, sorted.
    List,
    /// Print a topic's config (`key=value`) and each partition's offsets, size and segments.
    Describe {
        /// The topic.
        name: String,
    },
    /// Delete a topic and all its data.
    Delete {
        /// The topic.
        name: String,
    },
    /// Run retention and compaction on a topic now and wait for them; prints one line
    /// per partition with what was deleted and compacted.
    Clean {
        /// The topic.
        name: String,
    },
}

/// `partlog topics create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The topic name: 1 to 249 of [a-zA-Z0-9._-].
    name: String,
    /// Number of partitions.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// The topic's compression.type: every batch is stored with this codec
    /// (`producer` keeps the producer's).
    #[arg(long, value_parser = PossibleValuesParser::new(
        ["producer", "none", "gzip", "snappy", "lz4", "zstd"]
    ))]
    compression: Option<String>,
    /// A topic config by its Kafka name, e.g. segment.bytes=1048576; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
    configs: Vec<(String, String)>,
}

/// Splits `KEY=VALUE` at the first `=`.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Runs a `topics` subcommand.
pub(crate) fn run(dir: &Path, cmd: TopicsCommand) -> Result<(), CliError> {
    match cmd {
        TopicsCommand::Create(args) => {
            let config = topic_config(&args)?;
            with_broker(dir, true, |broker| {
                broker.create_topic(&args.name, args.partitions, config)?;
                print(&format!("Created topic {}.\n", args.name))
            })
        }
        TopicsCommand::List => with_broker(dir, false, |broker| {
            print(
                &broker
                    .topics()
                    .iter()
                    .map(|t| format!("{t}\n"))
                    .collect::<String>(),
            )
        }),
        TopicsCommand::Describe { name } => with_broker(dir, false, |broker| {
            print(&describe(&broker.describe_topic(&name)?))
        }),
        TopicsCommand::Clean { name } => with_broker(dir, false, |broker| {
            print(&clean_report(&name, &broker.clean_topic(&name)?))
        }),
        TopicsCommand::Delete { name } => {
            with_broker(
                dir,
                false,
                |broker: &Broker| Ok(broker.delete_topic(&name)?),
            )
        }
    }
}

/// The topic config the flags ask for, checked before the directory is opened.
///
/// A bad key or value is a usage error (exit 2): nothing was attempted yet.
fn topic_config(args: &CreateArgs) -> Result<TopicConfig, CliError> {
    let mut config = TopicConfig::default();
    for (key, value) in &args.configs {
        if key == "compression.type" && args.compression.is_some() {
            return Err(CliError::Usage(
                "give --compression or --config compression.type=..., not both".into(),
            ));
        }
        config
            .set(key, value)
            .map_err(|e| CliError::Usage(format!("bad --config {key}={value}: {e}")))?;
    }
    if let Some(codec) = &args.compression {
        config
            .set("compression.type", codec)
            .map_err(|e| CliError::Usage(format!("bad --compression {codec}: {e}")))?;
    }
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(config)
}

/// The describe output, in the manner of `kafka-topics --describe`: a summary line, one
/// `Config: key=value` line per setting, one line per partition.
fn describe(d: &TopicDescription) -> String {
    let mut out = format!(
        "Topic: {}\tPartitionCount: {}\n",
        d.name,
        d.partitions.len()
    );
    for (key, value) in d.config.to_pairs() {
        out.push_str(&format!("\tConfig: {key}={value}\n"));
    }
    for p in &d.partitions {
        out.push_str(&format!(
            "\tTopic: {}\tPartition: {}\tLogStartOffset: {}\tLogEndOffset: {}\tSize: {}\tSegments: {}\tDirtyRatio: {:.3}\n",
            d.name,
            p.partition,
            p.log_start_offset,
            p.log_end_offset,
            p.size_bytes,
            p.segments,
            p.dirty_ratio.get()
        ));
    }
    out
}

/// The `topics clean` output: one line per partition.
fn clean_report(name: &str, reports: &[partlog::PartitionCleanReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let (cleaned, removed) = r
            .compaction
            .as_ref()
            .map_or((0, 0), |c| (c.segments_cleaned, c.records_removed));
        out.push_str(&format!(
            "Topic: {name}\tPartition: {}\tDeletedSegments: {}\tLogStartOffset: {}\tCompactedSegments: {cleaned}\tRemovedRecords: {removed}\n",
            r.partition,
            r.retention.deleted_segments.len(),
            r.retention.log_start_offset,
        ));
    }
    out
}
