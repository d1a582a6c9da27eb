//! Producer id allocation: `partlog-producer-ids` at the data directory's root.
//!
//! Kafka's controller hands brokers blocks of producer ids and records each block in its
//! metadata log, so an id is never given out twice, even across restarts. partlog does the
//! same in-process: it reserves a block of [`BLOCK_SIZE`] ids by writing the first id past
//! the block to this file (Kafka's checkpoint text layout, written to a temporary file,
//! fsynced and renamed), and hands ids out of the block from memory. A restart starts a
//! new block after the recorded one, so the ids of an unfinished block are skipped, never
//! reused. File format: line 1 the version `0`, line 2 the entry count `1`, line 3 the
//! next unreserved id.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::Result;
use crate::log::{bad_line, read_entry_lines, write_entry_lines};

/// File name of the producer id reservation.
pub(crate) const PRODUCER_IDS_FILE: &str = "partlog-producer-ids";

/// Ids reserved per write of the file (Kafka's `PRODUCER_ID_BLOCK_SIZE` is 1000).
pub(crate) const BLOCK_SIZE: i64 = 1000;

/// Hands out producer ids that are unique for the life of the data directory.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    path: PathBuf,
    /// (next id to hand out, first id past the reserved block).
    block: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Reads the reservation of the data directory `dir` (none yet: ids start at 0).
    pub(crate) fn open(dir: &Path) -> Result<ProducerIds> {
        let path = dir.join(PRODUCER_IDS_FILE);
        let mut next = 0;
        for (n, line) in read_entry_lines(&path)?.unwrap_or_default() {
            next = line
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| bad_line(&path, n, format!("bad producer id {line:?}")))?;
        }
        Ok(ProducerIds {
            path,
            block: Mutex::new((next, next)),
        })
    }

    /// A producer id never handed out before in this data directory.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when reserving a new block fails.
    pub(crate) fn allocate(&self) -> Result<i64> {
        let mut block = self.block.lock();
        if block.0 == block.1 {
            let end = block.1 + BLOCK_SIZE;
            write_entry_lines(&self.path, &[end.to_string()])?;
            block.1 = end;
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

impl ProducerIds {
    /// Makes sure no id at or below `id` is handed out from now on (the next one starts
    /// a new, durably reserved block after it). Ids too close to `i64::MAX` to reserve a
    /// block after are ignored: the counter could never reach them.
    pub(crate) fn skip_through(&self, id: i64) {
        if id >= i64::MAX - 2 * BLOCK_SIZE {
            return;
        }
        let mut block = self.block.lock();
        if block.0 <= id {
            *block = (id + 1, id + 1);
        }
    }
}

/// The highest producer id any partition's producer state or any transactional id of
/// `broker` holds: ids this broker may not have handed out itself (a directory copied
/// from Kafka, batches appended raw with [`crate::EncodedBatch::from_raw`]). A new
/// producer given one of them would have its first batches taken for resends of that
/// producer's and acknowledged without being written.
pub(crate) fn highest_in_use(broker: &crate::Broker) -> Option<i64> {
    let in_logs = broker
        .inner
        .dir
        .logs()
        .into_iter()
        .filter_map(|(_, log)| log.max_producer_id());
    let in_txns = broker.transactions().into_iter().map(|t| t.producer_id);
    in_logs.chain(in_txns).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), 0);
        assert_eq!(ids.allocate().unwrap(), 1);
        let again = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(again.allocate().unwrap(), BLOCK_SIZE);
        for i in 1..BLOCK_SIZE {
            assert_eq!(again.allocate().unwrap(), BLOCK_SIZE + i);
        }
        assert_eq!(again.allocate().unwrap(), 2 * BLOCK_SIZE);
        let third = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(third.allocate().unwrap(), 3 * BLOCK_SIZE);
    }

    #[test]
    fn ids_in_use_are_skipped_durably() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), 0);
        ids.skip_through(4_500);
        assert_eq!(ids.allocate().unwrap(), 4_501);
        ids.skip_through(10); // below: no effect
        assert_eq!(ids.allocate().unwrap(), 4_502);
        ids.skip_through(i64::MAX - 1); // unreachable: ignored
        assert_eq!(ids.allocate().unwrap(), 4_503);
        let again = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(again.allocate().unwrap(), 4_501 + BLOCK_SIZE);
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PRODUCER_IDS_FILE), "0\n1\n-5\n").unwrap();
        let err = ProducerIds::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(PRODUCER_IDS_FILE), "{err}");
    }
}
