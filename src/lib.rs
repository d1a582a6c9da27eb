//! partlog: Kafka's partitioned, append-only log inside your process.
//!
//! Every byte partlog writes is in Kafka's own on-disk format: RecordBatch v2 segments
//! (`%020d.log`) with their `.index` and `.timeindex` files, compressed with gzip,
//! snappy, lz4 or zstd exactly as Kafka frames them. Kafka's tools and clients read what
//! partlog writes, and partlog reads what Kafka writes.
//!
//! The storage core is one partition's [`Log`]: append batches, read from any offset,
//! look offsets up by timestamp, fsync by policy, recover after a crash.
//!
//! ```
//! use partlog::{BatchBuilder, Codecs, Compression, Log, LogConfig};
//!
//! # fn main() -> partlog::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path().join("orders-0"), LogConfig::default())?;
//!
//! let mut batch = BatchBuilder::new(Compression::Lz4);
//! batch.push(1_700_000_000_000, Some(b"k1"), Some(b"hello"), &[]);
//! batch.push(1_700_000_000_001, None, Some(b"world"), &[]);
//! let info = log.append(batch.build(&Codecs::default())?)?;
//! assert_eq!((info.base_offset, info.last_offset), (0, 1));
//!
//! for batch in log.read(0, 1 << 20)? {
//!     for record in batch.records(log.codecs())? {
//!         let record = record?;
//!         println!("{} {:?}", record.offset, record.value);
//!     }
//! }
//! log.close()?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod broker;
mod clock;
mod consumer;
mod error;
mod group;
mod log;
mod padded;
mod producer;
pub mod record;
mod segment;
mod txn;

pub use broker::{
    Broker, BrokerConfig, CleanupPolicy, Partition, PartitionInfo, TopicCompression, TopicConfig,
    TopicDescription,
};
pub use broker::{CleanerConfig, PartitionCleanReport, Ratio};
pub use clock::{Clock, ManualClock, SystemClock};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetAndTimestamp, OffsetReset,
    TopicPartition, WaitStrategy,
};
pub use consumer::{ConsumerGroupMetadata, ConsumerRebalanceListener};
pub use error::{DecodeError, Error, Result};
pub use group::assignor::{
    AssignmentFault, Assignor, CooperativeStickyAssignor, GroupAssignment, MemberSubscription,
    RangeAssignor, RebalanceProtocol, RoundRobinAssignor, StickyAssignor, assignor_by_name,
    validate_assignment,
};
pub use group::{GroupDescription, MemberDescription, OffsetAndMetadata, OffsetSpec, PartitionLag};
pub use log::{
    AbortedTxn, AppendInfo, FsyncPolicy, Log, LogConfig, LogDir, LogOptions, RecoveryReport,
    TimestampOffset, Truncation, partition_dir_name, read_checkpoint, validate_topic_name,
    write_checkpoint,
};
pub use log::{
    CompactionConfig, CompactionReport, MAP_ENTRY_OVERHEAD, RetentionReport, SwapHook, SwapStep,
};
pub use producer::{
    Partitioner, Producer, ProducerConfig, ProducerRecord, RecordMetadata, SendHandle, murmur2,
    partition_for_key,
};
pub use record::{
    BatchBuilder, Codec, Codecs, Compression, EncodedBatch, Header, HeaderRefs, Record,
    RecordBatch, RecordRef, TimestampType,
};
pub use segment::TruncationReason;
pub use txn::{PartitionTransaction, TransactionDescription, TransactionState, read_transactions};
