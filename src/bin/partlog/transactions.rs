//! `partlog transactions list`: the transactional ids of a data directory and their
//! state, as `kafka-transactions list` / `describe` show them.
//!
//! It reads the `__transaction_state` segment files directly (like `dump`: no lock, no
//! recovery), so it shows the transactions of a directory that another process has open,
//! or that a crash left open; opening the directory with any other subcommand finishes
//! or aborts those. Columns: `TRANSACTIONAL-ID PRODUCER-ID EPOCH STATE START-MS
//! TIMEOUT-MS PARTITIONS` (partitions as `topic-partition,...`, `-` when none).
//!
//! `partlog transactions find-hanging` and `abort --topic T --partition P --start-offset
//! O`, as `kafka-transactions find-hanging` and `abort`: transactions open on a partition
//! that no transactional id holds (see `partlog::PartitionTransaction`), and their end
//! with an ABORT marker. These open the directory. `find-hanging` columns: `TOPIC
//! PARTITION PRODUCER-ID EPOCH START-OFFSET`.

use std::path::Path;

use clap::Subcommand;

use crate::{CliError, print, with_broker};

/// `partlog transactions ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TransactionsCommand {
    /// Print the open transactions (with --all, every transactional id), one per line.
    List {
        /// Also list ids with no open transaction.
        #[arg(long)]
        all: bool,
    },
    /// Print the hanging transactions (open on a partition, held by no transactional id),
    /// one per line.
    FindHanging,
    /// End a hanging transaction with an ABORT marker.
    Abort {
        /// Its topic.
        #[arg(long)]
        topic: String,
        /// Its partition.
        #[arg(long)]
        partition: i32,
        /// The offset of its first record on the partition (from `find-hanging`).
        #[arg(long)]
        start_offset: i64,
    },
}

/// Runs `transactions`.
pub(crate) fn run(dir: &Path, cmd: TransactionsCommand) -> Result<(), CliError> {
    match cmd {
        TransactionsCommand::List { all } => list(dir, all),
        TransactionsCommand::FindHanging => with_broker(dir, false, |broker| {
            let mut out = String::from("TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tSTART-OFFSET\n");
            for t in broker.find_hanging_transactions() {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    t.partition.topic,
                    t.partition.partition,
                    t.producer_id,
                    t.producer_epoch,
                    t.start_offset
                ));
            }
            print(&out)
        }),
        TransactionsCommand::Abort {
            topic,
            partition,
            start_offset,
        } => with_broker(dir, false, |broker| {
            let t = broker.abort_hanging_transaction(&topic, partition, start_offset)?;
            print(&format!(
                "Aborted the transaction of producer {} (epoch {}) on {topic}-{partition} \
                 starting at offset {start_offset}.\n",
                t.producer_id, t.producer_epoch
            ))
        }),
    }
}

/// `transactions list`.
fn list(dir: &Path, all: bool) -> Result<(), CliError> {
    if !dir.is_dir() {
        return Err(CliError::Failed(format!(
            "data directory {} does not exist",
            dir.display()
        )));
    }
    let mut out = String::from(
        "TRANSACTIONAL-ID\tPRODUCER-ID\tEPOCH\tSTATE\tSTART-MS\tTIMEOUT-MS\tPARTITIONS\n",
    );
    for t in partlog::read_transactions(dir)? {
        if !all && !t.state.is_open() {
            continue;
        }
        let partitions = if t.partitions.is_empty() {
            "-".to_string()
        } else {
            let names: Vec<String> = t
                .partitions
                .iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect();
            names.join(",")
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            t.transactional_id,
            t.producer_id,
            t.producer_epoch,
            t.state.name(),
            t.start_ms,
            t.timeout_ms,
            partitions
        ));
    }
    print(&out)
}
