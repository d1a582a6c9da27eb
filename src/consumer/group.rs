//! The consumer's side of a group: joining on the first `poll`, syncing with the
//! coordinator in every `poll`, running the rebalance listener on the caller's thread,
//! and committing offsets.
//!
//! A consumer with `group_id` that calls [`Consumer::subscribe`] becomes a member at its
//! next `poll`. Each `poll` then, before returning records:
//! 1. tells the coordinator it is polling (which also removes expired members);
//! 2. if the coordinator signalled a rebalance: commits the positions of the partitions
//!    it must give up (with `enable_auto_commit`), calls
//!    [`ConsumerRebalanceListener::on_partitions_revoked`] with them, hands them back,
//!    and takes whatever of its new assignment is free, starting each at the committed
//!    offset (or by `auto_offset_reset` without one), then calls
//!    [`ConsumerRebalanceListener::on_partitions_assigned`];
//! 3. with `enable_auto_commit`, commits the current positions every
//!    `auto_commit_interval` (by the broker's clock).
//!
//! A consumer waiting inside `poll` is woken by a rebalance, so it hands partitions over
//! without waiting for records. A member removed from the group (it stopped polling for
//! longer than `max_poll_interval`) learns it at its next `poll`: it gets
//! [`ConsumerRebalanceListener::on_partitions_lost`], and joins again as a new member.
//!
//! **Delivery.** A committed offset is the next offset to read. Commit the positions in
//! `on_partitions_revoked` (or use auto-commit, which does it right before that callback)
//! and finish processing the records of a `poll` before the next `poll`: then a
//! partition's new owner starts exactly where the old one stopped, and no record is
//! skipped or read twice across rebalances. Auto-commit alone is at-least-once: a consumer
//! that goes away without `close` (dropped, or removed after `max_poll_interval`) leaves
//! the records it polled since the last interval commit uncommitted, and the next owner
//! reads them again. Nothing is ever skipped: only positions of records already returned
//! are committed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Assigned, Consumer, ConsumerRecord, TopicPartition};
use crate::clock::duration_ms;
use crate::error::{Error, Result};
use crate::group::OffsetAndMetadata;
use crate::group::coordinator::JoinRequest;

/// Callbacks run by [`Consumer::poll`] (on the caller's thread) when a rebalance changes
/// the consumer's partitions: Kafka's `ConsumerRebalanceListener`.
///
/// Each gets the consumer, so it can commit, seek or look up positions. An error returned
/// by a callback is returned by the `poll` that ran it, after the rebalance step
/// completed.
///
/// **How a group rebalances.** The broker's group coordinator runs the assignor when a
/// member joins, leaves (`close`, or dropped), is removed for not polling within
/// `max_poll_interval`, or when a subscribed topic gains partitions. Each member learns
/// of it in its next `poll` (a member parked in `poll` is woken): it revokes what it must
/// give up — everything with an eager assignor (range, roundrobin, sticky), only the
/// partitions that move with cooperative-sticky — and takes the partitions of its new
/// assignment as their previous owners release them. A partition never has two owners
/// among the group's members; a member that was removed gets
/// [`on_partitions_lost`](Self::on_partitions_lost) at its next `poll` and joins again.
///
/// **Delivery.** Commit the positions in `on_partitions_revoked` (auto-commit does it
/// just before that callback) and finish processing what a `poll` returned before the
/// next `poll`: the partition's next owner then starts exactly where this one stopped,
/// so no record is skipped or read twice across rebalances. Auto-commit alone is
/// at-least-once: a consumer dropped without `close`, or removed for not polling, leaves
/// what it polled since the last interval commit to be read again by the next owner.
pub trait ConsumerRebalanceListener: Send {
    /// The consumer is about to give these partitions up; it still owns them, so this is
    /// the place to commit their positions. The coordinator hands them to their new owner
    /// once this returns.
    ///
    /// # Errors
    /// Whatever the listener returns; `poll` passes it on.
    fn on_partitions_revoked(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let _ = (consumer, partitions);
        Ok(())
    }

    /// The consumer now owns these partitions (and starts each at its committed offset).
    ///
    /// # Errors
    /// Whatever the listener returns; `poll` passes it on.
    fn on_partitions_assigned(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let _ = (consumer, partitions);
        Ok(())
    }

    /// The consumer lost these partitions without revoking them (it was removed from the
    /// group); they may be owned by another member already, so commits for them fail.
    /// By default this calls [`on_partitions_revoked`](Self::on_partitions_revoked), as
    /// Kafka's default does.
    ///
    /// # Errors
    /// Whatever the listener returns; `poll` passes it on.
    fn on_partitions_lost(
        &mut self,
        consumer: &mut Consumer,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// A consumer's membership of its group.
pub(super) struct Membership {
    group: String,
    topics: Vec<String>,
    member_id: Option<String>,
    /// The generation this member last synced at (`-1` while not a member).
    generation: i32,
    signal: Arc<AtomicBool>,
    listener: Option<Box<dyn ConsumerRebalanceListener>>,
    in_callback: bool,
    last_auto_commit_ms: i64,
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("member_id", &self.member_id)
            .field("generation", &self.generation)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl Membership {
    /// Whether the coordinator has something for this member that `poll` can act on now
    /// (not from inside a callback, where the sync is not run).
    pub(super) fn signalled(&self) -> bool {
        !self.in_callback && self.signal.load(Ordering::SeqCst)
    }
}

/// A consumer's group membership as it last learned it: what a transactional producer
/// sends with its offsets, so that the group coordinator refuses them from a consumer
/// that is no longer a member at the current generation (Kafka's
/// `ConsumerGroupMetadata`). Get it from [`Consumer::group_metadata`]; a bare group id
/// converts into one with no member and generation `-1`, which is not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    group_id: String,
    generation_id: i32,
    member_id: String,
    group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata naming only `group_id` (no member, generation `-1`): offsets sent with
    /// it are not checked against the group's members, as with Kafka's one-argument
    /// constructor.
    pub fn new(group_id: impl Into<String>) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The generation the consumer last synced at; `-1` when it is not a member.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The member id; empty when the consumer is not a member.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The consumer's `group_instance_id` (a static member), if it has one.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }
}

impl From<&str> for ConsumerGroupMetadata {
    fn from(group_id: &str) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata::new(group_id)
    }
}

impl From<String> for ConsumerGroupMetadata {
    fn from(group_id: String) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata::new(group_id)
    }
}

impl From<&String> for ConsumerGroupMetadata {
    fn from(group_id: &String) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata::new(group_id.as_str())
    }
}

impl From<&ConsumerGroupMetadata> for ConsumerGroupMetadata {
    fn from(meta: &ConsumerGroupMetadata) -> ConsumerGroupMetadata {
        meta.clone()
    }
}

/// Whether `e` says this member is out of its group (so it rejoins).
fn out_of_group(e: &Error) -> bool {
    matches!(e, Error::UnknownMember { .. })
}

/// Whether an auto-commit failure is a fencing one (the partitions moved on; the next
/// owner reads from the last successful commit).
fn fenced(e: &Error) -> bool {
    matches!(
        e,
        Error::CommitFailed { .. } | Error::UnknownMember { .. } | Error::FencedInstanceId { .. }
    )
}

impl Consumer {
    /// Subscribes to `topics` as a member of the consumer's group (`group_id` must be
    /// set), with callbacks for rebalances. Without a group, use
    /// [`Consumer::subscribe`].
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use partlog::{
    ///     Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRebalanceListener,
    ///     OffsetReset, TopicConfig, TopicPartition,
    /// };
    ///
    /// /// Commits the position of each partition before it moves to another member.
    /// struct CommitOnRevoke;
    ///
    /// impl ConsumerRebalanceListener for CommitOnRevoke {
    ///     fn on_partitions_revoked(
    ///         &mut self,
    ///         consumer: &mut Consumer,
    ///         partitions: &[TopicPartition],
    ///     ) -> partlog::Result<()> {
    ///         let mut offsets = HashMap::new();
    ///         for tp in partitions {
    ///             offsets.insert(tp.clone(), consumer.position(tp)?);
    ///         }
    ///         consumer.commit_sync_offsets(&offsets)
    ///     }
    /// }
    ///
    /// # fn main() -> partlog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let broker = Broker::open(dir.path(), BrokerConfig::default())?;
    /// broker.create_topic("jobs", 4, TopicConfig::default())?;
    /// let mut worker = broker.consumer(ConsumerConfig {
    ///     group_id: Some("workers".into()),
    ///     enable_auto_commit: false,
    ///     auto_offset_reset: OffsetReset::Earliest,
    ///     ..ConsumerConfig::default()
    /// });
    /// worker.subscribe_with_listener(&["jobs"], Box::new(CommitOnRevoke))?;
    /// let records = worker.poll(Duration::from_millis(10))?; // joins the group
    /// assert!(records.is_empty());
    /// assert_eq!(worker.assignment().len(), 4);
    /// worker.commit_sync()?;
    /// worker.close()?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::NoGroupId`]; [`Error::UnknownTopic`] (unless the broker auto-creates
    /// topics); an error from revoking the partitions of an earlier subscription.
    pub fn subscribe_with_listener(
        &mut self,
        topics: &[&str],
        listener: Box<dyn ConsumerRebalanceListener>,
    ) -> Result<()> {
        self.subscribe_group(topics, Some(listener))
    }

    pub(super) fn subscribe_group(
        &mut self,
        topics: &[&str],
        listener: Option<Box<dyn ConsumerRebalanceListener>>,
    ) -> Result<()> {
        let Some(group) = self.config.group_id.clone() else {
            return Err(Error::NoGroupId {
                operation: "subscribe_with_listener",
            });
        };
        for t in topics {
            self.broker.topic(t)?;
        }
        let mut names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        names.sort();
        names.dedup();
        self.leave_group(true)?;
        self.subscription = Some(names.clone());
        self.set_assignment(Vec::new());
        self.membership = Some(Membership {
            group,
            topics: names,
            member_id: None,
            generation: -1,
            signal: Arc::new(AtomicBool::new(true)),
            listener,
            in_callback: false,
            last_auto_commit_ms: self.broker.config().clock.now_ms(),
        });
        Ok(())
    }

    /// The member id the group coordinator gave this consumer, once it joined.
    pub fn member_id(&self) -> Option<&str> {
        self.membership.as_ref()?.member_id.as_deref()
    }

    /// This consumer's group, member id and generation as it last learned them, for
    /// [`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)
    /// (Kafka's `groupMetadata`).
    ///
    /// Pass it with the offsets of a transaction, and the transaction's offsets are
    /// refused if this consumer has been removed from the group or the group has
    /// rebalanced since its last `poll`: a consumer that stalled past
    /// `max_poll_interval` cannot send offsets for partitions that have moved on.
    /// A consumer that has not joined yet, or one that uses [`Consumer::assign`], gives
    /// no member id and generation `-1`, which are not checked.
    ///
    /// # Errors
    /// [`Error::NoGroupId`] without `group_id`.
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata> {
        let Some(group) = self.config.group_id.clone() else {
            return Err(Error::NoGroupId {
                operation: "group_metadata",
            });
        };
        let (member_id, generation_id) = match &self.membership {
            Some(Membership {
                member_id: Some(id),
                generation,
                ..
            }) => (id.clone(), *generation),
            _ => (String::new(), -1),
        };
        Ok(ConsumerGroupMetadata {
            group_id: group,
            generation_id,
            member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        })
    }

    /// Leaves the group if a member: revokes (running the callback, with `callbacks`),
    /// then leaves (a dynamic member) or departs keeping its partitions for
    /// `session_timeout` (a static one, as Kafka's close of a static member does).
    pub(super) fn leave_group(&mut self, callbacks: bool) -> Result<()> {
        if self.membership.is_none() {
            return Ok(());
        }
        let mut result = Ok(());
        if callbacks && self.member_id().is_some() {
            let owned = self.assignment();
            if !owned.is_empty() {
                result = self.revoke(&owned);
            }
        }
        if let Some(m) = self.membership.take()
            && let Some(id) = m.member_id
        {
            let coordinator = &self.broker.inner.groups;
            if self.config.group_instance_id.is_some() {
                coordinator.depart(&self.broker, &m.group, &id);
            } else {
                coordinator.leave(&self.broker, &m.group, &id);
            }
        }
        self.subscription = None;
        self.set_assignment(Vec::new());
        result
    }

    /// `poll` for a group member.
    pub(super) fn group_poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now().checked_add(timeout);
        let result = self.group_poll_until(deadline);
        if let Some(m) = &self.membership
            && let Some(id) = &m.member_id
            && !m.in_callback
        {
            self.broker
                .inner
                .groups
                .poll_done(&self.broker, &m.group, id);
        }
        result
    }

    fn group_poll_until(&mut self, deadline: Option<Instant>) -> Result<Vec<ConsumerRecord>> {
        let mut spins = 0u32;
        self.begin_poll()?;
        loop {
            self.group_sync()?;
            self.maybe_auto_commit()?;
            let records = self.take_available()?;
            if !records.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(records);
            }
            self.wait(deadline, &mut spins);
        }
    }

    /// Joins if not a member; tells the coordinator this member is polling.
    fn begin_poll(&mut self) -> Result<()> {
        let Some(m) = &self.membership else {
            return Ok(());
        };
        if m.in_callback {
            return Ok(());
        }
        let Some(id) = m.member_id.clone() else {
            return self.join();
        };
        let group = m.group.clone();
        match self
            .broker
            .inner
            .groups
            .begin_poll(&self.broker, &group, &id)
        {
            Err(e) if out_of_group(&e) => {
                self.lose_all()?;
                self.join()
            }
            other => other,
        }
    }

    fn join(&mut self) -> Result<()> {
        let m = self
            .membership
            .as_ref()
            .expect("joining needs a membership");
        let req = JoinRequest {
            group: m.group.clone(),
            instance_id: self.config.group_instance_id.clone(),
            topics: m.topics.clone(),
            assignors: self.config.partition_assignment_strategy.clone(),
            session_timeout_ms: duration_ms(self.config.session_timeout),
            max_poll_interval_ms: duration_ms(self.config.max_poll_interval),
            waiter: self.waiter.clone(),
        };
        let joined = self.broker.inner.groups.join(&self.broker, req)?;
        let m = self.membership.as_mut().expect("checked");
        m.member_id = Some(joined.member_id);
        m.generation = joined.generation;
        m.signal = joined.signal;
        if !joined.owned.is_empty() {
            self.take_partitions(&joined.owned);
            return self.call_listener(|l, c| l.on_partitions_assigned(c, &joined.owned));
        }
        Ok(())
    }

    /// Runs rebalance steps while the coordinator signals this member (a few at most per
    /// poll; a cooperative rebalance takes two).
    fn group_sync(&mut self) -> Result<()> {
        for _ in 0..4 {
            let Some(m) = &self.membership else {
                return Ok(());
            };
            if m.in_callback || !m.signal.swap(false, Ordering::SeqCst) {
                return Ok(());
            }
            let Some(id) = m.member_id.clone() else {
                self.join()?;
                continue;
            };
            let group = m.group.clone();
            match self.sync_once(&group, &id) {
                Err(e) if out_of_group(&e) => {
                    self.lose_all()?;
                    self.join()?;
                }
                Err(e) => {
                    // Try again at the next poll (an invalid assignment, an I/O error).
                    if let Some(m) = &self.membership {
                        m.signal.store(true, Ordering::SeqCst);
                    }
                    return Err(e);
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }

    fn sync_once(&mut self, group: &str, id: &str) -> Result<()> {
        let coordinator = &self.broker.inner.groups;
        let step = coordinator.begin_sync(&self.broker, group, id)?;
        let revoked = if step.revoke.is_empty() {
            Ok(())
        } else {
            self.revoke(&step.revoke)
        };
        let (granted, generation) =
            self.broker
                .inner
                .groups
                .finish_sync(&self.broker, group, id, &step.revoke)?;
        if let Some(m) = self.membership.as_mut() {
            m.generation = generation;
        }
        revoked?;
        if granted.is_empty() {
            return Ok(());
        }
        self.take_partitions(&granted);
        self.call_listener(|l, c| l.on_partitions_assigned(c, &granted))
    }

    /// Gives partitions up: auto-commit, the revoke callback, then forgets them.
    fn revoke(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let mut result = Ok(());
        if self.config.enable_auto_commit {
            let positions = self.positions_of(tps);
            result = self.commit_ignoring_fencing(positions);
        }
        let callback = self.call_listener(|l, c| l.on_partitions_revoked(c, tps));
        self.drop_partitions(tps);
        result.and(callback)
    }

    /// After removal from the group: every partition is lost.
    /// The callback runs with the old member id, so a commit attempted in it fails with
    /// an error naming the member that was removed.
    fn lose_all(&mut self) -> Result<()> {
        let owned = self.assignment();
        let result = if owned.is_empty() {
            Ok(())
        } else {
            self.call_listener(|l, c| l.on_partitions_lost(c, &owned))
        };
        self.drop_partitions(&owned);
        if let Some(m) = self.membership.as_mut() {
            m.member_id = None;
            m.generation = -1;
        }
        result
    }

    fn call_listener(
        &mut self,
        f: impl FnOnce(&mut dyn ConsumerRebalanceListener, &mut Consumer) -> Result<()>,
    ) -> Result<()> {
        let Some(mut listener) = self.membership.as_mut().and_then(|m| m.listener.take()) else {
            return Ok(());
        };
        self.set_in_callback(true);
        let result = f(listener.as_mut(), self);
        self.set_in_callback(false);
        if let Some(m) = self.membership.as_mut() {
            m.listener = Some(listener);
        }
        result
    }

    fn set_in_callback(&mut self, on: bool) {
        if let Some(m) = self.membership.as_mut() {
            m.in_callback = on;
        }
    }

    /// Adds granted partitions, each positioned at its committed offset (or left to
    /// `auto_offset_reset`). A partition whose topic has gone is skipped.
    fn take_partitions(&mut self, tps: &[TopicPartition]) {
        let group = self
            .membership
            .as_ref()
            .map(|m| m.group.clone())
            .unwrap_or_default();
        let committed = self.broker.inner.groups.committed(&group, tps);
        for tp in tps {
            if self.assigned.iter().any(|a| &a.tp == tp) {
                continue;
            }
            let Ok(part) = self.broker.partition(&tp.topic, tp.partition) else {
                continue;
            };
            let position = committed.get(tp).map(|o| o.offset);
            let a = Assigned {
                topic: tp.topic.as_str().into(),
                tp: tp.clone(),
                log: part.log().clone(),
                position,
                fetch: position.unwrap_or(0),
                buffer: Default::default(),
                paused: false,
                cursor: Default::default(),
                batches: Vec::new(),
            };
            a.log.add_waiter(&self.waiter);
            self.assigned.push(a);
        }
        self.next = 0;
    }

    fn drop_partitions(&mut self, tps: &[TopicPartition]) {
        let waiter = self.waiter.clone();
        self.assigned.retain(|a| {
            let keep = !tps.contains(&a.tp);
            if !keep {
                a.log.remove_waiter(&waiter);
            }
            keep
        });
        self.next = 0;
    }

    /// Positions of these assigned partitions that have one.
    fn positions_of(&self, tps: &[TopicPartition]) -> HashMap<TopicPartition, i64> {
        self.assigned
            .iter()
            .filter(|a| tps.contains(&a.tp))
            .filter_map(|a| Some((a.tp.clone(), a.position?)))
            .collect()
    }

    fn all_positions(&self) -> HashMap<TopicPartition, i64> {
        self.assigned
            .iter()
            .filter_map(|a| Some((a.tp.clone(), a.position?)))
            .collect()
    }

    fn commit_ignoring_fencing(&mut self, offsets: HashMap<TopicPartition, i64>) -> Result<()> {
        match self.commit_sync_offsets(&offsets) {
            Err(e) if fenced(&e) => Ok(()),
            other => other,
        }
    }

    fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit {
            return Ok(());
        }
        let Some(m) = &self.membership else {
            return Ok(());
        };
        let now = self.broker.config().clock.now_ms();
        if now.saturating_sub(m.last_auto_commit_ms) < duration_ms(self.config.auto_commit_interval)
        {
            return Ok(());
        }
        if let Some(m) = self.membership.as_mut() {
            m.last_auto_commit_ms = now;
        }
        let positions = self.all_positions();
        self.commit_ignoring_fencing(positions)
    }

    /// Commits the current position of every assigned partition that has one, durably
    /// (Kafka's `commitSync()`).
    ///
    /// # Errors
    /// [`Error::NoGroupId`]; [`Error::CommitFailed`] when a partition is no longer this
    /// member's (nothing is committed then); the write's error.
    pub fn commit_sync(&mut self) -> Result<()> {
        let positions = self.all_positions();
        self.commit_sync_offsets(&positions)
    }

    /// Commits these offsets (each the next offset to read) durably: they are fsynced to
    /// `__consumer_offsets` before this returns (Kafka's `commitSync(offsets)`).
    ///
    /// A group member may commit only partitions it owns; a consumer with `group_id` that
    /// uses [`Consumer::assign`] may commit while the group has no members.
    ///
    /// # Errors
    /// [`Error::NoGroupId`]; [`Error::CommitFailed`] naming the group, member, generation
    /// and partition, also for a negative offset (nothing is committed then); the write's
    /// error.
    pub fn commit_sync_offsets(&mut self, offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        let (group, member) = self.commit_identity("commit_sync")?;
        if offsets.is_empty() {
            return Ok(());
        }
        let now = self.broker.config().clock.now_ms();
        let mut values: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
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
        values.sort_by(|a, b| a.0.cmp(&b.0));
        self.broker
            .inner
            .groups
            .commit(&self.broker, &group, member.as_deref(), values)
    }

    fn commit_identity(&self, operation: &'static str) -> Result<(String, Option<String>)> {
        let Some(group) = self.config.group_id.clone() else {
            return Err(Error::NoGroupId { operation });
        };
        // A subscribed consumer that has not joined yet owns nothing, so the coordinator
        // rejects its commits naming the partition (an empty member id is no member's).
        let member = self
            .membership
            .as_ref()
            .map(|m| m.member_id.clone().unwrap_or_default());
        Ok((group, member))
    }

    /// The group's committed offsets of these partitions; partitions without one are
    /// left out (Kafka's `committed`).
    ///
    /// # Errors
    /// [`Error::NoGroupId`].
    pub fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        let (group, _) = self.commit_identity("committed")?;
        Ok(self.broker.inner.groups.committed(&group, tps))
    }

    /// Closes the consumer: with `enable_auto_commit` commits the positions, runs the
    /// revoke callback, and leaves the group (a static member stays in it, keeping its
    /// partitions, until `session_timeout`, as in Kafka). Dropping a consumer leaves the
    /// group too, but commits nothing and runs no callback.
    ///
    /// # Errors
    /// A commit or callback error; the consumer has left the group anyway.
    pub fn close(mut self) -> Result<()> {
        // Leaving revokes every partition, which auto-commits their positions first.
        self.leave_group(true)
    }

    /// On drop: leave (or depart) without callbacks.
    pub(super) fn drop_membership(&mut self) {
        if let Some(m) = self.membership.take()
            && let Some(id) = m.member_id
        {
            let coordinator = &self.broker.inner.groups;
            if self.config.group_instance_id.is_some() {
                coordinator.depart(&self.broker, &m.group, &id);
            } else {
                coordinator.leave(&self.broker, &m.group, &id);
            }
        }
    }
}
