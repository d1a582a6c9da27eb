//! `partlog transactions list`: the transactional ids of a data directory and their
//! state, as `kafka-transactions list` / `describe` show them.
//!
//! It reads the `__transaction_state` segment files directly (like `dump`: no lock, no
//! recovery), so it shows the transactions of a directory that another process has open,
//! or that a crash left open; opening the directory with any other subcommand finishes
//! or aborts those. Columns: `TRANSACTIONAL-ID PRODUCER-ID EPOCH STATE START-MS
//! TIMEOUT-MS PARTITIONS` (partitions as `topic-partition,...`, `-` when none).

use std::path::Path;

use clap::Subcommand;

use crate::{CliError, print};

/// `partlog transactions ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TransactionsCommand {
    /// Print the open transactions (with --all, every transactional id), one per line.
    List {
        /// Also list ids with no open transaction.
        #[arg(long)]
        all: bool,
    },
}

/// Runs `transactions`.
pub(crate) fn run(dir: &Path, cmd: TransactionsCommand) -> Result<(), CliError> {
    let TransactionsCommand::List { all } = cmd;
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
