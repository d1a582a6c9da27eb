//! Kafka's RecordBatch v2 format: batches, records, varints, CRC and compression.
//!
//! [`BatchBuilder`] encodes records into a batch, [`RecordBatch`] wraps the bytes of one
//! stored batch and decodes its [`Record`]s, and [`Codecs`] maps Kafka's codec ids to
//! implementations. docs/format.md has the byte tables.

mod batch;
mod builder;
mod codec;
mod compression;
mod control;
pub(crate) mod layout;
mod rewrite;
mod varint;

pub(crate) use builder::RecordHead;
pub(crate) use rewrite::rebuild;

pub use batch::{
    Header, HeaderRefs, Record, RecordBatch, RecordRef, Records, TimestampType, batch_size,
};
pub use builder::{BatchBuilder, EncodedBatch, ProducerInfo};
#[cfg(feature = "zstd")]
pub use codec::Zstd;
pub use codec::{Gzip, Lz4, Snappy};
pub use compression::{Codec, Codecs, Compression};
pub use control::{ControlRecordType, EndTxnMarker};
pub use layout::{
    BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    NO_TIMESTAMP,
};
