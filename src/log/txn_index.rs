//! The aborted-transaction index, `.txnindex` (reference §3.3).
//!
//! One 34-byte entry per aborted transaction that wrote data to the partition, appended
//! to the file of the segment that holds its ABORT marker: version `0` (int16), producer
//! id, first offset, last offset (the marker's) and the last stable offset when the abort
//! was written (int64 each). The file grows by plain appends and is fsynced after each
//! (aborts are rare; an entry lost to a crash would otherwise show aborted records to
//! read_committed consumers until recovery rebuilt it). Recovery rebuilds the entries of
//! the batches it replays (see `producer_state::rebuild`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Bytes per entry.
const ENTRY_SIZE: usize = 34;

/// An aborted transaction: the records of `producer_id` from `first_offset` up to the
/// ABORT marker at `last_offset` are not part of the committed log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The producer id.
    pub producer_id: i64,
    /// The transaction's first offset on the partition.
    pub first_offset: i64,
    /// The ABORT marker's offset.
    pub last_offset: i64,
    /// The partition's last stable offset when the abort was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> AbortedTxn {
        let at = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        AbortedTxn {
            producer_id: at(2),
            first_offset: at(10),
            last_offset: at(18),
            last_stable_offset: at(26),
        }
    }
}

/// The `.txnindex` path of the segment at `base_offset` in `dir`.
pub(crate) fn path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(base_offset, "txnindex"))
}

/// The entries of a `.txnindex` file (none when it does not exist).
///
/// # Errors
/// [`Error::Io`]; [`Error::BadCheckpoint`] for a length that is not a whole number of
/// entries or an entry of an unknown version, naming the file.
pub(crate) fn read(path: &Path) -> Result<Vec<AbortedTxn>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        line: 0,
        reason,
    };
    if bytes.len() % ENTRY_SIZE != 0 {
        return Err(bad(format!(
            "{} bytes is not a whole number of {ENTRY_SIZE}-byte entries",
            bytes.len()
        )));
    }
    bytes
        .chunks_exact(ENTRY_SIZE)
        .enumerate()
        .map(|(i, e)| match i16::from_be_bytes([e[0], e[1]]) {
            0 => Ok(AbortedTxn::decode(e)),
            v => Err(bad(format!("entry {i} has unknown version {v}"))),
        })
        .collect()
}

/// Appends `entries` to the file at `path` and fsyncs it (creating it, and then
/// fsyncing the directory, when it is new).
pub(crate) fn append(path: &Path, entries: &[AbortedTxn]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at(path)?;
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_SIZE);
    for e in entries {
        bytes.extend_from_slice(&e.encode());
    }
    f.write_all(&bytes).at(path)?;
    f.sync_all().at(path)?;
    if !existed {
        super::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Cuts a torn trailing entry and every entry whose marker is at or past `log_end`
/// (the marker was lost in a crash after its entry was written) from the file at `path`.
pub(crate) fn repair(path: &Path, log_end: i64) -> Result<()> {
    let Ok(bytes) = fs::read(path) else {
        return Ok(());
    };
    let whole = bytes.len() - bytes.len() % ENTRY_SIZE;
    let keep = bytes[..whole]
        .chunks_exact(ENTRY_SIZE)
        .take_while(|e| AbortedTxn::decode(e).last_offset < log_end)
        .count()
        * ENTRY_SIZE;
    if keep == bytes.len() {
        return Ok(());
    }
    let f = OpenOptions::new().write(true).open(path).at(path)?;
    f.set_len(keep as u64).at(path)?;
    f.sync_all().at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_kafkas_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), 0);
        assert_eq!(read(&p).unwrap(), vec![]);
        let a = AbortedTxn {
            producer_id: 1234,
            first_offset: 25,
            last_offset: 28,
            last_stable_offset: 29,
        };
        append(&p, &[a]).unwrap();
        let bytes = fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &1234i64.to_be_bytes());
        assert_eq!(&bytes[18..26], &28i64.to_be_bytes());
        append(&p, &[a, a]).unwrap();
        assert_eq!(read(&p).unwrap(), vec![a, a, a]);
        fs::write(&p, &bytes[..33]).unwrap();
        assert!(read(&p).is_err());
    }
}
