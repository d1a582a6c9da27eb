//! `partlog`: Kafka's command-line tools for a partlog data directory.
//!
//! Each subcommand is named after the Kafka tool it stands in for, and prints what that
//! tool prints where a script might read it:
//!
//! | partlog | Kafka |
//! |---|---|
//! | `topics create/list/describe/delete/clean` | `kafka-topics` (`clean`: `kafka-delete-records` and the log cleaner, run now) |
//! | `produce` | `kafka-console-producer` |
//! | `consume` | `kafka-console-consumer` |
//! | `offsets` | `kafka-get-offsets` |
//! | `dump` | `kafka-dump-log` |
//! | `perf produce`, `perf consume` | `kafka-producer-perf-test`, `kafka-consumer-perf-test` |
//! | `groups list/describe/reset-offsets/delete` | `kafka-consumer-groups` |
//! | `transactions list` | `kafka-transactions list` (reads the files, like `dump`) |
//!
//! Every subcommand but `dump` opens the data directory given by `--data-dir` as a
//! [`partlog::Broker`] (taking its lock, so one process at a time) and closes it cleanly on
//! the way out, after flushing its producer. `dump` reads segment files directly and
//! neither locks nor changes anything, so it also works on a directory in use or copied
//! from Kafka.
//!
//! Errors go to stderr as `error: ...`. Exit codes: 0 success, 1 an operation failed (the
//! message is the library's, naming the topic, partition, file or offset range), 2 the
//! command line is wrong (clap's own code for usage errors).

mod consume;
mod dump;
mod groups;
mod offsets;
mod perf;
mod produce;
mod topics;
mod transactions;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use partlog::{Broker, BrokerConfig};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "partlog",
    version,
    about = "Kafka's partition log in a directory: topics, produce, consume, offsets, dump, perf",
    long_about = "Kafka's partition log in a directory, in Kafka's exact on-disk format.\n\n\
        Subcommands follow Kafka's tools: topics (kafka-topics), produce \
        (kafka-console-producer), consume (kafka-console-consumer), offsets \
        (kafka-get-offsets), dump (kafka-dump-log) and perf (kafka-*-perf-test).\n\n\
        Exit codes: 0 success, 1 the operation failed, 2 bad command line."
)]
struct Cli {
    /// The data directory (one of Kafka's log.dirs); every subcommand but `dump` needs it.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, delete and clean topics (kafka-topics).
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Append one record per stdin line to a topic (kafka-console-producer).
    Produce(produce::ProduceArgs),
    /// Print a topic's records, one value per line (kafka-console-consumer).
    Consume(consume::ConsumeArgs),
    /// Print each partition's offset for a time: TOPIC:PARTITION:OFFSET (kafka-get-offsets).
    Offsets(offsets::OffsetsArgs),
    /// Print the batches, records and index entries of segment files (kafka-dump-log).
    Dump(dump::DumpArgs),
    /// Measure produce or consume throughput and latency (kafka-*-perf-test).
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// List, describe, reset and delete consumer groups (kafka-consumer-groups).
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// List open transactions of the directory (kafka-transactions).
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line asks for something invalid: exit code 2, as clap's own errors.
    Usage(String),
    /// A library operation failed: exit code 1, with the library's message.
    Partlog(partlog::Error),
    /// Something else failed (an I/O error on stdin or stdout, bad input data): exit 1.
    Failed(String),
}

impl CliError {
    /// The process exit code for this error.
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Partlog(_) | CliError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Partlog(e) => write!(f, "{e}"),
        }
    }
}

impl From<partlog::Error> for CliError {
    fn from(e: partlog::Error) -> CliError {
        CliError::Partlog(e)
    }
}

/// Writes `bytes` to `out`, naming what failed if the write does.
///
/// A closed pipe (`partlog consume ... | head`) is reported as [`Stop::Closed`] so the
/// caller can stop early and still close the broker cleanly.
pub(crate) fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), Stop> {
    out.write_all(bytes).map_err(Stop::from)
}

/// Why writing to stdout stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The reader went away: not an error for a command-line filter.
    Closed,
    /// Any other write error.
    Failed(CliError),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Closed
        } else {
            Stop::Failed(CliError::Failed(format!("cannot write to stdout: {e}")))
        }
    }
}

/// Prints `text` to stdout and flushes; a closed pipe is not an error.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match write_out(&mut out, text.as_bytes()).and_then(|()| out.flush().map_err(Stop::from)) {
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// Opens the broker at `dir`, runs `f`, and closes the broker whatever `f` returned.
///
/// Only `topics create` may create the directory; other commands refuse a missing one
/// rather than leave an empty directory behind after a typo.
pub(crate) fn with_broker<T>(
    dir: &Path,
    create: bool,
    f: impl FnOnce(&Broker) -> Result<T, CliError>,
) -> Result<T, CliError> {
    if !create && !dir.is_dir() {
        return Err(CliError::Failed(format!(
            "data directory {} does not exist",
            dir.display()
        )));
    }
    let broker = Broker::open(dir, BrokerConfig::default())?;
    let result = f(&broker);
    let closed = broker.close();
    match (result, closed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(close)) => Err(close.into()),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(close)) => {
            eprintln!("error: closing the data directory also failed: {close}");
            Err(e)
        }
    }
}

/// Runs the parsed command line.
fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Dump(args) = &cli.command {
        if cli.data_dir.is_some() {
            return Err(CliError::Usage(
                "dump reads files directly and takes no --data-dir".into(),
            ));
        }
        return dump::run(args);
    }
    let Some(dir) = cli.data_dir else {
        return Err(CliError::Usage(
            "--data-dir DIR is required (before the subcommand)".into(),
        ));
    };
    match cli.command {
        Command::Topics(cmd) => topics::run(&dir, cmd),
        Command::Produce(args) => produce::run(&dir, &args),
        Command::Consume(args) => consume::run(&dir, &args),
        Command::Offsets(args) => offsets::run(&dir, &args),
        Command::Perf(cmd) => perf::run(&dir, &cmd),
        Command::Groups(cmd) => groups::run(&dir, cmd),
        Command::Transactions(cmd) => transactions::run(&dir, cmd),
        Command::Dump(_) => unreachable!("handled above"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
