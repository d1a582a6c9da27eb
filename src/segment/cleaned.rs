//! The cleaner's output files: `<base>.log.cleaned` with its `.index.cleaned` and
//! `.timeindex.cleaned`, written in full and fsynced before the swap renames them
//! (reference §1.2).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::map::LogMap;
use super::{OffsetIndex, Scanned, Scanner, TimeIndex, file_name};
use crate::error::{IoContext, Result};
use crate::record::NO_TIMESTAMP;

/// Suffix of cleaner output still being written.
pub(crate) const CLEANED: &str = ".cleaned";
/// Suffix of cleaner output ready to replace the originals.
pub(crate) const SWAP: &str = ".swap";
/// Suffix of replaced segment files about to be deleted.
pub(crate) const DELETED: &str = ".deleted";

/// The extensions of one segment's files, in the order the swap renames them: the log
/// last, so that a `.swap` log never exists without its indexes renamed before it.
pub(crate) const SEGMENT_EXTS: [&str; 4] = ["txnindex", "timeindex", "index", "log"];

/// Writes one output segment of the cleaner, indexing as Kafka's append does.
pub(crate) struct CleanedWriter {
    dir: PathBuf,
    base_offset: i64,
    log: File,
    index: OffsetIndex,
    time_index: TimeIndex,
    position: u64,
    bytes_since_index: u64,
    index_interval: u64,
    max_ts: (i64, i64),
}

impl CleanedWriter {
    /// Creates the `.cleaned` files of a segment at `base_offset`, replacing leftovers.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        index_interval: u64,
    ) -> Result<CleanedWriter> {
        let path = |ext| dir.join(format!("{}{CLEANED}", file_name(base_offset, ext)));
        let log_path = path("log");
        let log = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .at(&log_path)?;
        let mut index = OffsetIndex::open(&path("index"), base_offset)?;
        let mut time_index = TimeIndex::open(&path("timeindex"), base_offset)?;
        index.file_mut().truncate_entries(0);
        time_index.file_mut().truncate_entries(0);
        index.file_mut().resize(index_bytes)?;
        time_index.file_mut().resize(index_bytes)?;
        Ok(CleanedWriter {
            dir: dir.to_path_buf(),
            base_offset,
            log,
            index,
            time_index,
            position: 0,
            bytes_since_index: 0,
            index_interval,
            max_ts: (NO_TIMESTAMP, -1),
        })
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.position
    }

    /// Appends one encoded batch (its last offset and max timestamp given).
    pub(crate) fn append(&mut self, bytes: &[u8], last_offset: i64, max_ts: i64) -> Result<()> {
        self.log.write_all(bytes).at(&self.log_path())?;
        if max_ts > self.max_ts.0 {
            self.max_ts = (max_ts, last_offset);
        }
        if self.bytes_since_index > self.index_interval && !self.index.is_full() {
            self.index.push(last_offset, self.position as u32);
            self.time_index
                .maybe_push(self.max_ts.0, self.max_ts.1, false);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += bytes.len() as u64;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}{CLEANED}", file_name(self.base_offset, "log")))
    }

    /// Deletes the `.cleaned` files: the output is not needed.
    pub(crate) fn discard(self) -> Result<()> {
        let path = |ext| {
            self.dir
                .join(format!("{}{CLEANED}", file_name(self.base_offset, ext)))
        };
        let paths = [path("log"), path("index"), path("timeindex")];
        drop(self);
        for p in paths {
            std::fs::remove_file(&p).at(&p)?;
        }
        Ok(())
    }

    /// Writes the final time-index entry, trims the indexes and fsyncs all three files.
    pub(crate) fn finish(mut self) -> Result<()> {
        if self.max_ts.1 >= 0 {
            self.time_index
                .maybe_push(self.max_ts.0, self.max_ts.1, true);
        }
        self.index.file_mut().trim()?;
        self.time_index.file_mut().trim()?;
        self.index.file().sync()?;
        self.time_index.file().sync()?;
        self.log.sync_all().at(&self.log_path())
    }
}

/// The offset after the last whole batch of the `.log` file at `path` (`None` when it
/// holds no batch). Used at load to find the range a `.swap` segment replaces.
pub(crate) fn scan_next_offset(path: &Path) -> Result<Option<i64>> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len() as usize;
    if len == 0 {
        return Ok(None);
    }
    let map = std::sync::Arc::new(LogMap::new(&file, len).at(path)?);
    let mut scanner = Scanner::new(map.bytes(0, len), 0);
    let mut next = None;
    while let Scanned::Batch(_, b) = scanner.next_batch() {
        next = Some(b.next_offset());
    }
    Ok(next)
}
