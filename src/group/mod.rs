//! Consumer groups: members sharing the partitions of the topics they subscribe to, with
//! committed offsets kept durably in Kafka's `__consumer_offsets` format.
//!
//! One [`coordinator::Coordinator`] per broker serves every group (see its module docs
//! for how Kafka's protocol maps onto in-process calls); committed offsets are written to
//! and reloaded from the internal topic by [`store`] in the formats of [`offsets`]. The
//! consumer side (joining, syncing in `poll`, the rebalance listener, commits) is in
//! `consumer::group`.
//!
//! Only committed offsets are persisted. Kafka also writes each group's membership
//! (`GroupMetadataKey`, version 2) so that a restarted coordinator knows the members
//! of a still-running group; an embedded broker's members all end with its process, so a
//! reopened broker starts every group empty, with its offsets.

mod admin;
pub mod assignor;
pub(crate) mod coordinator;
pub(crate) mod offsets;
pub(crate) mod store;

pub use admin::{GroupDescription, MemberDescription, OffsetSpec, PartitionLag};
pub use offsets::OffsetAndMetadata;
