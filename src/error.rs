//! The crate's error types.
//!
//! [`DecodeError`] says what is wrong with some bytes; [`Error`] says what went wrong in
//! an operation and where: the partition, the file, the byte position, the offset range.

use std::io;
use std::path::PathBuf;

use crate::record::Compression;

/// The result type of every fallible partlog operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with the bytes of a record batch.
///
/// It carries no location; [`Error::CorruptBatch`] adds the file and byte position when
/// the bytes came from a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("truncated: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The batch length field is below Kafka's minimum or above a limit.
    #[error("batch length {length} is invalid ({reason})")]
    BadLength {
        /// The `batchLength` field.
        length: i32,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The magic byte is not 2; partlog reads RecordBatch v2 only.
    #[error("magic {magic} is not supported (partlog reads RecordBatch v2, magic 2)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of bytes 21..end.
        computed: u32,
    },
    /// Attribute bits 0–2 hold 5, 6 or 7.
    #[error("invalid codec id {id} in the batch attributes")]
    InvalidCodecId {
        /// The codec bits.
        id: u8,
    },
    /// The batch uses a codec that this build or registry has no implementation for.
    #[error("codec {compression} (id {}) is not available in this build", compression.id())]
    CodecUnavailable {
        /// The codec the batch needs.
        compression: Compression,
    },
    /// The codec rejected the payload.
    #[error("{compression} payload does not decode: {message}")]
    Codec {
        /// The codec.
        compression: Compression,
        /// What the codec said.
        message: String,
    },
    /// A record inside the batch is malformed.
    #[error("record {index} is malformed: {reason}")]
    BadRecord {
        /// Index of the record within the batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The batch header contradicts itself or its records.
    #[error("inconsistent batch: {0}")]
    Inconsistent(&'static str),
}

/// An error from a partlog operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file or directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Bytes handed to a decoder do not decode (no file or partition involved).
    #[error("invalid batch: {0}")]
    Decode(#[from] DecodeError),
    /// A batch read from a partition does not decode.
    #[error("corrupt batch in {partition} at offset {offset}: {source}")]
    CorruptRecords {
        /// The partition.
        partition: String,
        /// The batch's base offset.
        offset: i64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A batch stored in a segment is corrupt.
    #[error("corrupt batch in {path} at byte {position}: {source}")]
    CorruptBatch {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch start in the file.
        position: u64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A batch handed to `append` is not acceptable.
    #[error("invalid batch for {partition}: {source}")]
    InvalidBatch {
        /// The partition (`topic-partition` directory name).
        partition: String,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A batch is larger than the partition accepts.
    #[error("batch of {size} bytes for {partition} exceeds {limit_name} = {limit} bytes")]
    BatchTooLarge {
        /// The partition.
        partition: String,
        /// The batch size including Kafka's 12-byte log overhead.
        size: usize,
        /// The limit that was exceeded.
        limit: usize,
        /// Which limit (`max.message.bytes` or `segment.bytes`).
        limit_name: &'static str,
    },
    /// A read or seek asked for an offset outside the log.
    #[error(
        "offset {offset} is out of range for {partition}: valid offsets are {log_start_offset}..={log_end_offset}"
    )]
    OffsetOutOfRange {
        /// The partition.
        partition: String,
        /// The offset asked for.
        offset: i64,
        /// The first offset of the log.
        log_start_offset: i64,
        /// The log end offset (the next offset to be written; reading it returns nothing).
        log_end_offset: i64,
    },
    /// An earlier write or fsync failed; the partition takes no more writes until reopened.
    #[error("{partition} is poisoned by an earlier failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The partition.
        partition: String,
        /// The failure that poisoned it.
        cause: String,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid config {name} = {value}: {reason}")]
    InvalidConfig {
        /// Kafka's name of the setting.
        name: &'static str,
        /// The value given.
        value: String,
        /// The valid range or the reason.
        reason: &'static str,
    },
    /// A topic config key that partlog does not know.
    #[error(
        "unknown topic config {key:?}; partlog knows segment.bytes, segment.ms, segment.index.bytes, index.interval.bytes, retention.ms, retention.bytes, cleanup.policy, compression.type, max.message.bytes, message.timestamp.type, flush.messages, flush.ms, delete.retention.ms, min.cleanable.dirty.ratio, min.compaction.lag.ms and max.compaction.lag.ms"
    )]
    UnknownConfig {
        /// The key given.
        key: String,
    },
    /// A checkpoint file does not parse.
    #[error("checkpoint {path} is malformed at line {line}: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory name does not follow Kafka's naming.
    #[error("{path} is not a valid {what}")]
    BadName {
        /// The path.
        path: PathBuf,
        /// What it should have been (`partition directory`, `segment file`).
        what: &'static str,
    },
    /// No topic has this name.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The name asked for.
        topic: String,
    },
    /// A topic with this name exists already.
    #[error("topic {topic:?} already exists")]
    TopicExists {
        /// The name.
        topic: String,
    },
    /// The topic has no such partition.
    #[error("topic {topic:?} has no partition {partition}: valid partitions are 0..{partitions}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: i32,
    },
    /// A record cannot fit in a batch the topic accepts.
    #[error(
        "record of {size} bytes for {topic} exceeds {limit_name} = {limit} (with the 61-byte batch header)"
    )]
    RecordTooLarge {
        /// The topic.
        topic: String,
        /// The record's encoded size plus the batch header.
        size: usize,
        /// The limit: the topic's `max.message.bytes`, or its `segment.bytes` when that
        /// is smaller (no segment could hold the batch).
        limit: usize,
        /// `"max.message.bytes"` or `"segment.bytes"`.
        limit_name: &'static str,
    },
    /// The batch holding this record failed to append; every record in it gets this.
    #[error("the batch holding this record failed: {0}")]
    BatchFailed(std::sync::Arc<Error>),
    /// Appending a batch panicked (in a user's [`Clock`](crate::Clock), say); its records
    /// were not acknowledged, and the producer goes on with the batches after it. A
    /// panic after the append had begun to write also poisoned the partition, so those
    /// fail with [`Error::Poisoned`] until it is reopened.
    #[error("appending to {partition} panicked: {message}")]
    AppendPanicked {
        /// The partition.
        partition: String,
        /// The panic's message, when it had one.
        message: String,
    },
    /// A consumer has no position for a partition and `auto_offset_reset` is `None`.
    #[error("no offset for {topic}-{partition} and auto_offset_reset is none")]
    NoOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The partition is not assigned to this consumer.
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Another process (or another handle in this one) holds the data directory's lock.
    #[error("{path} is locked by another process or handle; only one may open a data directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The log (or the directory holding it) has been closed.
    #[error("{0} is closed")]
    Closed(String),
    /// A commit was rejected because the committing member does not own the partition
    /// (a rebalance moved it) or its generation is stale.
    #[error(
        "commit to group {group:?} for {topic}-{partition} failed: {reason} (member {member}, generation {generation})"
    )]
    CommitFailed {
        /// The group.
        group: String,
        /// The committing member's id (empty for a consumer without a subscription).
        member: String,
        /// The generation the member committed with.
        generation: i32,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why it was rejected.
        reason: String,
    },
    /// The member is not in the group any more.
    #[error(
        "member {member} is not in group {group:?}: it left, or was removed for not polling within max_poll_interval (or, static, for staying away past session_timeout)"
    )]
    UnknownMember {
        /// The group.
        group: String,
        /// The member id.
        member: String,
    },
    /// Another consumer joined with this member's `group_instance_id` and took over.
    #[error(
        "member {member} of group {group:?} is fenced: another consumer joined with group_instance_id {instance_id:?}"
    )]
    FencedInstanceId {
        /// The group.
        group: String,
        /// The static instance id.
        instance_id: String,
        /// The fenced member id.
        member: String,
    },
    /// A consumer's assignors share none with the group's members.
    #[error("cannot join group {group:?}: {reason}")]
    InconsistentGroupProtocol {
        /// The group.
        group: String,
        /// Which assignors each side has.
        reason: String,
    },
    /// An admin operation needs a group without members.
    #[error("group {group:?} has {members} member(s); {operation} needs a group with none")]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// How many members it has (static members away within their session count).
        members: usize,
        /// The refused operation.
        operation: &'static str,
    },
    /// No group has this id (no members and no committed offsets).
    #[error("unknown group {group:?}")]
    UnknownGroup {
        /// The group id asked for.
        group: String,
    },
    /// A group operation on a consumer configured without `group_id`.
    #[error("{operation} needs a consumer with group_id set")]
    NoGroupId {
        /// The operation.
        operation: &'static str,
    },
    /// A record of the `__consumer_offsets` topic does not decode.
    #[error("bad __consumer_offsets record in {partition} at offset {offset}: {reason}")]
    BadOffsetsRecord {
        /// The partition.
        partition: String,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// A record without a key was sent to a compacted topic (Kafka's "Compacted topic
    /// cannot accept message without key").
    #[error("compacted topic {topic:?} cannot accept a record without a key")]
    KeylessRecordOnCompactedTopic {
        /// The topic.
        topic: String,
    },
    /// A segment swap of the cleaner failed; the partition is not cleaned again until it
    /// is reopened, which finishes or undoes the swap.
    #[error("cleaning of {partition} is disabled until it is reopened: a swap failed ({cause})")]
    CleanerDisabled {
        /// The partition.
        partition: String,
        /// The failure.
        cause: String,
    },
    /// An idempotent or transactional batch's epoch is older than the producer id's
    /// current epoch on the partition: a newer instance has taken over (Kafka's
    /// `InvalidProducerEpoch` / `ProducerFenced`).
    #[error(
        "producer {producer_id} epoch {epoch} is fenced on {partition}: the current epoch is {current_epoch}"
    )]
    ProducerFenced {
        /// The partition.
        partition: String,
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the partition knows.
        current_epoch: i16,
    },
    /// A batch's base sequence does not follow the producer's last one on the partition
    /// (Kafka's `OutOfOrderSequenceException`): a batch in between was lost.
    #[error(
        "out-of-order sequence on {partition} for producer {producer_id} epoch {epoch}: expected {expected}, received {received}"
    )]
    OutOfOrderSequence {
        /// The partition.
        partition: String,
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The sequence the partition expected.
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },
    /// A transactional producer's id or epoch is no longer the current one for its
    /// transactional id: another producer initialised it since (a zombie is fenced), or
    /// the broker aborted its transaction after `transaction_timeout`.
    #[error(
        "transactional id {transactional_id:?}: producer {producer_id} epoch {epoch} is fenced by producer {current_producer_id} epoch {current_epoch}"
    )]
    TransactionFenced {
        /// The transactional id.
        transactional_id: String,
        /// The caller's producer id.
        producer_id: i64,
        /// The caller's epoch.
        epoch: i16,
        /// The current producer id.
        current_producer_id: i64,
        /// The current epoch.
        current_epoch: i16,
    },
    /// A transactional call that the transaction's state does not allow (Kafka's
    /// `InvalidTxnStateException`), for example a send outside a transaction.
    #[error("transactional id {transactional_id:?}: {reason}")]
    InvalidTxnState {
        /// The transactional id.
        transactional_id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No transaction open on the partition starts at the offset given to
    /// [`Broker::abort_hanging_transaction`](crate::Broker::abort_hanging_transaction).
    #[error(
        "no transaction open on {topic}-{partition} starts at offset {start_offset} \
         (open ones start at {open:?})"
    )]
    NoOpenTransaction {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The start offset asked for.
        start_offset: i64,
        /// The start offsets of the transactions open there.
        open: Vec<i64>,
    },
    /// [`Broker::abort_hanging_transaction`](crate::Broker::abort_hanging_transaction)
    /// was asked to abort a transaction that is not hanging: the transaction coordinator
    /// still has it, under a transactional id.
    #[error(
        "the transaction open on {topic}-{partition} at offset {start_offset} is not \
         hanging: it belongs to transactional id {transactional_id:?}, whose producer ends \
         it (or its transaction_timeout aborts it)"
    )]
    TransactionNotHanging {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The transaction's first offset on the partition.
        start_offset: i64,
        /// The transactional id whose open transaction holds the partition.
        transactional_id: String,
    },
    /// A partition assignor returned an assignment that breaks the rules.
    #[error("assignor {assignor} returned an invalid assignment for group {group:?}: {fault}")]
    InvalidAssignment {
        /// The consumer group.
        group: String,
        /// The assignor's name.
        assignor: String,
        /// What is wrong.
        fault: Box<crate::AssignmentFault>,
    },
    /// The request is not allowed by the topic's configuration (Kafka's
    /// `PolicyViolationException`), such as deleting records of a topic whose
    /// `cleanup.policy` does not include `delete`.
    #[error("{topic}-{partition}: {reason}")]
    PolicyViolation {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// What the policy forbids.
        reason: &'static str,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Turns the I/O error into [`Error::Io`] naming `path`.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
