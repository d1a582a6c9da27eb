//! Group administration on [`Broker`], as Kafka's `kafka-consumer-groups` does it: list,
//! describe with lag, reset offsets, delete.

use std::collections::BTreeSet;

use super::offsets::OffsetAndMetadata;
use crate::broker::Broker;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// Where [`Broker::reset_group_offsets`] moves a group's offsets (the options of
/// `kafka-consumer-groups --reset-offsets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// `--to-earliest`: each partition's log start offset.
    Earliest,
    /// `--to-latest`: each partition's log end offset.
    Latest,
    /// `--to-offset`: this offset, clamped into each partition's log as Kafka does.
    Offset(i64),
    /// `--to-datetime`: the first offset whose timestamp is at or after this time (ms
    /// since the Unix epoch), or the log end offset when every record is older.
    Timestamp(i64),
}

/// A group member as [`Broker::describe_group`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group_instance_id`, for a static member.
    pub group_instance_id: Option<String>,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owns now.
    pub assignment: Vec<TopicPartition>,
}

/// One partition of [`Broker::describe_group`], as a row of `kafka-consumer-groups
/// --describe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset (CURRENT-OFFSET), if any.
    pub committed: Option<i64>,
    /// The partition's log end offset (LOG-END-OFFSET), if the topic still exists.
    pub log_end_offset: Option<i64>,
    /// LOG-END-OFFSET − CURRENT-OFFSET, when both are known.
    pub lag: Option<i64>,
    /// The member owning the partition (CONSUMER-ID), if any.
    pub owner: Option<String>,
}

/// What [`Broker::describe_group`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// The current generation (0 before anyone joined in this process).
    pub generation: i32,
    /// The assignor in use, if the group has members.
    pub assignor: Option<String>,
    /// The members, by member id.
    pub members: Vec<MemberDescription>,
    /// Every partition that has a committed offset or an owner, sorted.
    pub partitions: Vec<PartitionLag>,
}

impl Broker {
    /// Expires committed offsets now, as the background thread does every
    /// [`BrokerConfig::offsets_retention_check_interval`](crate::BrokerConfig::offsets_retention_check_interval):
    /// each group without members loses the offsets older than
    /// [`BrokerConfig::offsets_retention`](crate::BrokerConfig::offsets_retention)
    /// (Kafka's `offsets.retention.minutes`), written as tombstones to
    /// `__consumer_offsets` first. Returns how many offsets expired.
    ///
    /// # Errors
    /// The first write error (that group keeps its offsets until the next run).
    pub fn expire_group_offsets(&self) -> Result<usize> {
        self.check_open()?;
        let now = self.config().clock.now_ms();
        let retention = crate::clock::duration_ms(self.config().offsets_retention);
        let txns = &self.inner.txns;
        self.inner
            .groups
            .expire_offsets(self, now, retention, |group| txns.pending_offsets(group))
    }

    /// The ids of every group that has members or committed offsets, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        self.inner.groups.live_group_names()
    }

    /// A group's members, their assignments, and per partition the committed offset,
    /// the log end offset and the lag.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`].
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let coordinator = &self.inner.groups;
        coordinator
            .with_group(self, group, |g| {
                let members: Vec<MemberDescription> = g
                    .members()
                    .map(|m| MemberDescription {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        topics: m.topics.clone(),
                        assignment: m.owned.iter().cloned().collect(),
                    })
                    .collect();
                let tps: BTreeSet<TopicPartition> = g
                    .offsets
                    .keys()
                    .cloned()
                    .chain(members.iter().flat_map(|m| m.assignment.clone()))
                    .collect();
                let partitions = tps
                    .into_iter()
                    .map(|tp| {
                        let committed = g.offsets.get(&tp).map(|o| o.offset);
                        let end = self
                            .partition(&tp.topic, tp.partition)
                            .ok()
                            .map(|p| p.log_end_offset());
                        PartitionLag {
                            committed,
                            log_end_offset: end,
                            lag: committed.zip(end).map(|(c, e)| (e - c).max(0)),
                            owner: g.owner(&tp).map(str::to_string),
                            partition: tp,
                        }
                    })
                    .collect();
                GroupDescription {
                    group: group.to_string(),
                    generation: g.generation,
                    assignor: g.protocol.as_ref().map(|a| a.name().to_string()),
                    members,
                    partitions,
                }
            })
            .ok_or_else(|| Error::UnknownGroup {
                group: group.to_string(),
            })
    }

    /// Moves a group's committed offsets for every partition of `topic` (Kafka's
    /// `--reset-offsets --execute`), durably. A group that has none yet is created.
    /// Returns the new offsets.
    ///
    /// # Errors
    /// [`Error::GroupNotEmpty`] while the group has members; [`Error::UnknownTopic`];
    /// [`Error::InvalidConfig`] for an empty or over-long group id; a read or write error.
    pub fn reset_group_offsets(
        &self,
        group: &str,
        topic: &str,
        spec: OffsetSpec,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let count = self.partition_count(topic)?;
        let now = self.config().clock.now_ms();
        let mut new = Vec::with_capacity(count as usize);
        for p in 0..count {
            let part = self.partition(topic, p)?;
            let (start, end) = (part.log_start_offset(), part.log_end_offset());
            let offset = match spec {
                OffsetSpec::Earliest => start,
                OffsetSpec::Latest => end,
                OffsetSpec::Offset(o) => o.clamp(start, end),
                OffsetSpec::Timestamp(ts) => {
                    part.offset_for_timestamp(ts)?.map_or(end, |t| t.offset)
                }
            };
            new.push((TopicPartition::new(topic, p), offset));
        }
        let offsets = new
            .iter()
            .map(|(tp, offset)| {
                let value = OffsetAndMetadata {
                    offset: *offset,
                    metadata: String::new(),
                    commit_timestamp: now,
                };
                (tp.clone(), value)
            })
            .collect();
        self.inner.groups.reset_offsets(self, group, offsets)?;
        Ok(new)
    }

    /// Deletes a group: a tombstone for each of its committed offsets (fsynced), then the
    /// group is forgotten. Kafka refuses to delete a group with members, and so does this.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`], [`Error::GroupNotEmpty`], or the write's error.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        self.inner.groups.delete(self, group)
    }
}
