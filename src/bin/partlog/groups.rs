//! `partlog groups`: list, describe, reset and delete consumer groups, as
//! `kafka-consumer-groups` does.
//!
//! `describe` prints Kafka's columns: `GROUP TOPIC PARTITION CURRENT-OFFSET
//! LOG-END-OFFSET LAG CONSUMER-ID`, with `-` where a value is unknown (no committed
//! offset, no owner). A group opened by the command line has no members (its consumers
//! lived in other processes, which ended), so CONSUMER-ID is `-` unless a consumer of this
//! process owns the partition.

use std::path::Path;

use clap::{ArgGroup, Args, Subcommand};
use partlog::{GroupDescription, OffsetSpec};

use crate::{CliError, print, with_broker};

/// `partlog groups ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// Print every group id, one per line, sorted.
    List,
    /// Print each partition's committed offset, log end offset and lag.
    Describe {
        /// The group.
        group: String,
    },
    /// Move a group's committed offsets for a topic; prints TOPIC PARTITION NEW-OFFSET.
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets.
    Delete {
        /// The group.
        group: String,
    },
}

/// `partlog groups reset-offsets`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("to").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_datetime"]
)))]
pub(crate) struct ResetArgs {
    /// The group.
    group: String,
    /// The topic whose partitions are reset.
    #[arg(long)]
    topic: String,
    /// Each partition's log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// Each partition's log end offset.
    #[arg(long)]
    to_latest: bool,
    /// This offset (clamped into each partition's log).
    #[arg(long, value_name = "O")]
    to_offset: Option<i64>,
    /// The first offset at or after this time, in ms since the Unix epoch.
    #[arg(long, value_name = "MILLIS")]
    to_datetime: Option<i64>,
}

impl ResetArgs {
    fn spec(&self) -> OffsetSpec {
        match (self.to_offset, self.to_datetime) {
            (Some(o), _) => OffsetSpec::Offset(o),
            (_, Some(ts)) => OffsetSpec::Timestamp(ts),
            _ if self.to_earliest => OffsetSpec::Earliest,
            _ => OffsetSpec::Latest,
        }
    }
}

/// Runs a `groups` subcommand.
pub(crate) fn run(dir: &Path, cmd: GroupsCommand) -> Result<(), CliError> {
    with_broker(dir, false, |broker| match &cmd {
        GroupsCommand::List => print(
            &broker
                .list_groups()
                .iter()
                .map(|g| format!("{g}\n"))
                .collect::<String>(),
        ),
        GroupsCommand::Describe { group } => print(&describe(&broker.describe_group(group)?)),
        GroupsCommand::ResetOffsets(args) => {
            let new = broker.reset_group_offsets(&args.group, &args.topic, args.spec())?;
            let mut rows = vec![
                ["TOPIC", "PARTITION", "NEW-OFFSET"]
                    .map(String::from)
                    .to_vec(),
            ];
            for (tp, offset) in new {
                rows.push(vec![tp.topic, tp.partition.to_string(), offset.to_string()]);
            }
            print(&table(&rows))
        }
        GroupsCommand::Delete { group } => {
            broker.delete_group(group)?;
            print(&format!(
                "Deletion of requested consumer group '{group}' was successful.\n"
            ))
        }
    })
}

/// The `describe` table.
fn describe(d: &GroupDescription) -> String {
    let header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    let or_dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for p in &d.partitions {
        rows.push(vec![
            d.group.clone(),
            p.partition.topic.clone(),
            p.partition.partition.to_string(),
            or_dash(p.committed),
            or_dash(p.log_end_offset),
            or_dash(p.lag),
            p.owner.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

/// Left-aligned columns separated by two spaces, one row per line.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
