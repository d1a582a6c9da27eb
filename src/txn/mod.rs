//! Transactions: the in-process transaction coordinator (reference §6.2).
//!
//! One [`coordinator::TxnCoordinator`] per broker keeps each transactional id's state
//! (producer id, epoch, status, partitions) in memory and durably in Kafka's
//! `__transaction_state` format ([`state_log`]): every change is appended and fsynced
//! before it takes effect. Ending a transaction follows Kafka's two steps: the state
//! `PrepareCommit` / `PrepareAbort` is made durable, then a COMMIT / ABORT marker is
//! appended (and fsynced) to every partition of the transaction, then the state becomes
//! `CompleteCommit` / `CompleteAbort`. Opening a broker finishes what a crash interrupted:
//! a prepared transaction gets its markers (again; a marker for a producer with no open
//! transaction changes nothing), and an `Ongoing` one is aborted, so a transaction is
//! never left half visible.
//!
//! In-process choices: the coordinator epoch written in markers is always 0 (there is
//! one coordinator and it never moves); transactional offset commits are written by the
//! producer's call directly (Kafka's `TxnOffsetCommit`), with the producer id and epoch
//! and no sequence number, and become the group's committed offsets when the COMMIT
//! marker is written (and, on reopening, when the loader meets it).

pub(crate) mod coordinator;
pub(crate) mod state_log;

use std::collections::BTreeSet;
use std::path::Path;

use crate::consumer::TopicPartition;
use crate::error::Result;

/// The status of a transactional id (Kafka's `TransactionState`, with its numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// 0: no transaction open.
    Empty,
    /// 1: a transaction is open and has added partitions.
    Ongoing,
    /// 2: commit decided; markers being written.
    PrepareCommit,
    /// 3: abort decided; markers being written.
    PrepareAbort,
    /// 4: the last transaction committed.
    CompleteCommit,
    /// 5: the last transaction aborted.
    CompleteAbort,
    /// 6: the id expired.
    Dead,
    /// 7: an epoch bump is fencing the previous producer.
    PrepareEpochFence,
}

impl TransactionState {
    /// Kafka's number for the status.
    pub const fn id(self) -> i8 {
        match self {
            TransactionState::Empty => 0,
            TransactionState::Ongoing => 1,
            TransactionState::PrepareCommit => 2,
            TransactionState::PrepareAbort => 3,
            TransactionState::CompleteCommit => 4,
            TransactionState::CompleteAbort => 5,
            TransactionState::Dead => 6,
            TransactionState::PrepareEpochFence => 7,
        }
    }

    /// The status with Kafka's number `id`.
    pub const fn from_id(id: i8) -> Option<TransactionState> {
        Some(match id {
            0 => TransactionState::Empty,
            1 => TransactionState::Ongoing,
            2 => TransactionState::PrepareCommit,
            3 => TransactionState::PrepareAbort,
            4 => TransactionState::CompleteCommit,
            5 => TransactionState::CompleteAbort,
            6 => TransactionState::Dead,
            7 => TransactionState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name for the status, as `kafka-transactions.sh` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether a transaction is open or being ended.
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            TransactionState::Ongoing
                | TransactionState::PrepareCommit
                | TransactionState::PrepareAbort
        )
    }
}

/// What the coordinator knows about one transactional id (Kafka's
/// `TransactionMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// A transactional id as [`Broker::transactions`](crate::Broker::transactions) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// The status.
    pub state: TransactionState,
    /// The partitions of the open transaction (empty when none is open).
    pub partitions: Vec<TopicPartition>,
    /// When the open transaction started (ms, broker clock; -1 when none is open).
    pub start_ms: i64,
    /// The transaction timeout (ms).
    pub timeout_ms: i32,
}

/// A transaction open on one partition, as the partition's producer state has it (Kafka's
/// `DescribeProducers`), listed by
/// [`Broker::partition_transactions`](crate::Broker::partition_transactions) to find
/// hanging transactions.
///
/// A transaction is hanging when it is open on a partition but the transaction
/// coordinator has no open transaction holding that partition, so that no marker will
/// ever end it: the partition's last stable offset stays at its first record, and
/// `read_committed` consumers read nothing past it. Kafka's `kafka-transactions.sh
/// find-hanging` and `abort` find and end these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTransaction {
    /// The partition.
    pub partition: TopicPartition,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch the partition last saw from it.
    pub producer_epoch: i16,
    /// The offset of the transaction's first record on this partition (Kafka's
    /// `currentTransactionStartOffset`).
    pub start_offset: i64,
    /// The transactional id whose open transaction holds this partition; `None` when
    /// the coordinator has none: the transaction is hanging.
    pub transactional_id: Option<String>,
}

/// The description of `id` with metadata `m`.
pub(crate) fn describe(id: &str, m: &TxnMetadata) -> TransactionDescription {
    let open = m.state.is_open();
    TransactionDescription {
        transactional_id: id.to_string(),
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        state: m.state,
        partitions: if open {
            m.partitions.iter().cloned().collect()
        } else {
            Vec::new()
        },
        start_ms: if open { m.start_ms } else { -1 },
        timeout_ms: m.timeout_ms,
    }
}

/// The transactional ids recorded in the `__transaction_state` topic of the data
/// directory `data_dir`, read from its segment files without opening the directory (no
/// lock, no recovery, nothing written), so it shows the transactions of a directory that
/// another process has open, or that a crash left open. Opening the directory as a
/// [`Broker`](crate::Broker) finishes (or aborts) those.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) naming the file;
/// [`Error::BadOffsetsRecord`](crate::Error::BadOffsetsRecord) for a record that does not
/// decode.
pub fn read_transactions(data_dir: &Path) -> Result<Vec<TransactionDescription>> {
    Ok(state_log::read_files(data_dir)?
        .iter()
        .map(|(id, m)| describe(id, m))
        .collect())
}
