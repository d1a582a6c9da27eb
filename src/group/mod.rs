//! Consumer groups: how a group's partitions are shared among its members.
pub mod assignor;
