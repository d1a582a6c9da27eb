//! `partlog dump`: print segment files as `kafka-dump-log` does, and check them.
//!
//! Takes `.log`, `.index` and `.timeindex` files, or partition directories (their files
//! of those kinds, in name order), written by partlog or by Kafka. Each file is read as
//! plain bytes: nothing is locked, mapped, repaired or written, so a directory in use by
//! another process can be dumped (an active segment may then end in a torn batch).
//!
//! The output follows `kafka-dump-log --deep-iteration --print-data-log` line for line:
//! `Dumping FILE`, `Log starting offset: N`, one `baseOffset: ...` line per batch and,
//! with `--print-records`, one `| offset: ...` line per record (a null key prints no
//! `key:` field and a null value no `payload:` field, as Kafka does); index entries print
//! as `offset: O position: P` and time-index entries as `timestamp: T offset: O`.
//!
//! Problems (a bad CRC, a record that does not decode, bytes that are not a batch, an
//! index entry that does not match the log) go to stderr as `FILE: position P: what`.
//! With `--verify` every record is decoded and every index entry is checked against the
//! segment's `.log`, and any problem makes the command exit with 1.

mod index;
mod log;

use std::fmt::Display;
use std::fs;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use partlog::Codecs;

use crate::{CliError, Stop};

/// `partlog dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// Segment files (`.log`, `.index`, `.timeindex`) or partition directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print every record of every batch, with its key and value.
    #[arg(long)]
    print_records: bool,
    /// Decode every record and check every CRC and index entry; exit 1 on any problem.
    #[arg(long)]
    verify: bool,
}

/// The state of one `dump` run: where it prints and what it found.
pub(crate) struct Dump {
    out: BufWriter<StdoutLock<'static>>,
    codecs: Codecs,
    print_records: bool,
    verify: bool,
    problems: u64,
    batches: u64,
    records: u64,
    entries: u64,
}

impl Dump {
    /// Prints one line to stdout.
    fn line(&mut self, text: impl Display) -> Result<(), Stop> {
        writeln!(self.out, "{text}").map_err(Stop::from)
    }

    /// Reports a problem in `file` at byte `position` on stderr.
    fn problem(&mut self, file: &Path, position: u64, what: impl Display) {
        self.problems += 1;
        // stdout first, so that the report lands after the line it is about.
        let _flushed = self.out.flush();
        eprintln!("{}: position {position}: {what}", file.display());
    }
}

/// Runs `dump`.
pub(crate) fn run(args: &DumpArgs) -> Result<(), CliError> {
    let mut dump = Dump {
        out: BufWriter::new(io::stdout().lock()),
        codecs: Codecs::default(),
        print_records: args.print_records,
        verify: args.verify,
        problems: 0,
        batches: 0,
        records: 0,
        entries: 0,
    };
    let mut files = 0;
    for path in &args.paths {
        match dump_path(&mut dump, path) {
            Ok(n) => files += n,
            Err(Stop::Closed) => return Ok(()),
            Err(Stop::Failed(e)) => {
                let _flushed = dump.out.flush();
                return Err(e);
            }
        }
    }
    match dump.out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(CliError::Failed(format!("cannot write to stdout: {e}")));
        }
        _ => {}
    }
    summary(&dump, files)
}

/// Ends a `--verify` run: a summary on stderr, and failure if there were problems.
fn summary(dump: &Dump, files: u64) -> Result<(), CliError> {
    if !dump.verify {
        return Ok(());
    }
    let counts = format!(
        "{files} file(s), {} batch(es), {} record(s), {} index entr(ies)",
        dump.batches, dump.records, dump.entries
    );
    if dump.problems == 0 {
        eprintln!("verified {counts}: no problems");
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "--verify found {} problem(s) in {counts}",
            dump.problems
        )))
    }
}

/// Dumps one path: a file, or a directory's segment files. Returns the files dumped.
fn dump_path(dump: &mut Dump, path: &Path) -> Result<u64, Stop> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_dir() {
        return dump_file(dump, path, true).map(u64::from);
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| io_error(path, e))? {
        names.push(entry.map_err(|e| io_error(path, e))?.file_name());
    }
    names.sort();
    let mut files = 0;
    for name in names {
        files += u64::from(dump_file(dump, &path.join(name), false)?);
    }
    Ok(files)
}

/// Dumps one file by its extension; others are reported (when named on the command
/// line, as Kafka does) and skipped. Returns whether the file was dumped.
fn dump_file(dump: &mut Dump, path: &Path, named: bool) -> Result<bool, Stop> {
    let kind = path.extension().and_then(|e| e.to_str());
    if !matches!(kind, Some("log" | "index" | "timeindex")) {
        if named {
            let _flushed = dump.out.flush();
            eprintln!("Ignoring unknown file {}", path.display());
        }
        return Ok(false);
    }
    dump.line(format_args!("Dumping {}", path.display()))?;
    match kind {
        Some("log") => log::dump_log(dump, path)?,
        Some("index") => index::dump_offset_index(dump, path)?,
        _ => index::dump_time_index(dump, path)?,
    }
    Ok(true)
}

/// The base offset in a segment file name (`00000000000000000042.log` → 42).
fn base_offset(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    name.split('.').next()?.parse().ok()
}

/// An I/O error on an input file, naming it.
fn io_error(path: &Path, e: io::Error) -> Stop {
    Stop::Failed(CliError::Failed(format!(
        "I/O error on {}: {e}",
        path.display()
    )))
}
