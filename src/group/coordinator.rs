//! The group coordinator: membership, generations, partition ownership and committed
//! offsets of every group of one broker.
//!
//! Kafka's JoinGroup/SyncGroup/Heartbeat exchange collapses into method calls under a
//! per-group mutex, since every member lives in this process. What is kept of Kafka:
//! member ids, generation ids, the assignor chosen among those every member supports,
//! eager and cooperative rebalances, static members, and fencing of commits. What
//! changes, and why:
//!
//! - There is no group leader: the coordinator runs the chosen assignor itself when a
//!   rebalance starts, with each member's subscription, owned partitions and generation.
//! - Ownership is tracked per partition. A partition is handed to its new owner only once
//!   its old owner has revoked it (at the old owner's next `poll`) or left the group, so
//!   at every moment each partition has at most one owner. Kafka's eager protocol gets
//!   the same guarantee from a stop-the-world barrier (nobody is assigned anything until
//!   everybody has rejoined); here a member gets each partition of its new assignment as
//!   soon as it is free, which is the same end state without waiting for the slowest
//!   member to hand over partitions that are not moving to it.
//! - Eager: at the first sync of a new generation a member revokes everything it owns,
//!   then takes its new assignment. Cooperative: a member revokes only the partitions
//!   its new assignment no longer holds, and any revocation starts a follow-up rebalance
//!   (a new generation), as Kafka's cooperative consumers rejoin after revoking.
//! - Liveness uses the broker's [`Clock`](crate::Clock): a member that is not inside
//!   `poll` and has not polled for `max_poll_interval` is removed, and a static member
//!   that went away (closed or dropped) is removed after `session_timeout`. There is no
//!   timer thread: every call into a group (any member's poll, commit, join or leave, and
//!   the admin calls) first removes the expired members of that group. Ownership only
//!   matters to callers, so expiring at the next call is indistinguishable from expiring
//!   on time. Dynamic members have no separate session: a dropped consumer leaves at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{ArcMutexGuard, Mutex, RawMutex};

use super::assignor::{Assignor, MemberSubscription, RebalanceProtocol, validate_assignment};
use super::offsets::{OffsetAndMetadata, fits_string};
use super::store;
use crate::broker::Broker;
use crate::consumer::{ConsumerGroupMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::log::Waiter;

/// A locked group, owning a reference to it.
type GroupGuard = ArcMutexGuard<RawMutex, Group>;

/// Every group of one broker.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    groups: Mutex<BTreeMap<String, Arc<Mutex<Group>>>>,
    next_member: AtomicU64,
}

/// What a consumer says when it joins.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    pub(crate) group: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) assignors: Vec<Arc<dyn Assignor>>,
    pub(crate) session_timeout_ms: i64,
    pub(crate) max_poll_interval_ms: i64,
    pub(crate) waiter: Arc<Waiter>,
}

/// The coordinator's answer to a join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) member_id: String,
    /// Partitions the member owns already: a static member coming back within its session
    /// gets its partitions back without a rebalance.
    pub(crate) owned: Vec<TopicPartition>,
    /// Set (and the consumer woken) when the member has something to do at its next poll.
    pub(crate) signal: Arc<AtomicBool>,
    /// The generation the member is at once joined (0 for a new member, which takes the
    /// group's generation at its first sync).
    pub(crate) generation: i32,
}

/// One member as the coordinator sees it.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) topics: Vec<String>,
    assignors: Vec<Arc<dyn Assignor>>,
    /// Partitions this member owns; the consumer's assignment is the same set once it has
    /// run the callbacks of its last sync.
    pub(crate) owned: BTreeSet<TopicPartition>,
    /// The group generation this member last synced at.
    generation: i32,
    last_poll_ms: i64,
    /// Inside `poll` now (waiting for records counts as polling).
    polling: bool,
    /// When a static member went away without leaving.
    departed_ms: Option<i64>,
    session_timeout_ms: i64,
    max_poll_interval_ms: i64,
    waiter: Arc<Waiter>,
    signal: Arc<AtomicBool>,
}

impl Member {
    fn notify(&self) {
        self.signal.store(true, Ordering::SeqCst);
        self.waiter.wake();
    }

    fn expired(&self, now: i64) -> bool {
        match self.departed_ms {
            Some(t) => now.saturating_sub(t) > self.session_timeout_ms,
            None => {
                !self.polling && now.saturating_sub(self.last_poll_ms) > self.max_poll_interval_ms
            }
        }
    }
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<Arc<dyn Assignor>>,
    pub(crate) members: BTreeMap<String, Member>,
    /// The current assignment's target for each member.
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// Partition -> owning member id.
    owners: BTreeMap<TopicPartition, String>,
    /// Partition counts of the subscribed topics at the last rebalance.
    partitions: BTreeMap<String, i32>,
    topic_epoch: u64,
    pub(crate) offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// Member ids taken over by another consumer with the same instance id.
    fenced: BTreeMap<String, String>,
    /// What was wrong with the assignor's answer at the last rebalance, returned to each
    /// member's sync until a rebalance gets a valid one.
    invalid: Option<(String, crate::group::assignor::AssignmentFault)>,
    /// The last time (the broker's clock) the group was seen with members, or loaded:
    /// an empty group's offsets expire `offsets_retention` after the later of this and
    /// their commit (`i64::MIN` for a group that never had members since it was loaded
    /// or created: a group of `assign` consumers, whose offsets expire by commit time).
    active_ms: i64,
    /// Deleted by `delete_group`, which sets this and takes the group out of the
    /// coordinator's map under the group's lock: a thread that looked the group up before
    /// finds this once it holds the lock, and looks the name up again
    /// ([`Coordinator::lock_group`]), so that nothing lands in a forgotten group.
    deleted: bool,
}

impl Group {
    fn new(name: &str) -> Group {
        Group {
            name: name.to_string(),
            generation: 0,
            protocol: None,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            owners: BTreeMap::new(),
            partitions: BTreeMap::new(),
            topic_epoch: u64::MAX,
            offsets: BTreeMap::new(),
            fenced: BTreeMap::new(),
            invalid: None,
            active_ms: i64::MIN,
            deleted: false,
        }
    }

    /// The partition's owner, if any.
    pub(crate) fn owner(&self, tp: &TopicPartition) -> Option<&str> {
        self.owners.get(tp).map(String::as_str)
    }

    fn member(&self, id: &str) -> Result<&Member> {
        self.members.get(id).ok_or_else(|| self.gone(id))
    }

    fn member_mut(&mut self, id: &str) -> Result<&mut Member> {
        if !self.members.contains_key(id) {
            return Err(self.gone(id));
        }
        Ok(self.members.get_mut(id).expect("checked"))
    }

    /// The error for a member id that is not in the group.
    fn gone(&self, id: &str) -> Error {
        match self.fenced.get(id) {
            Some(instance) => Error::FencedInstanceId {
                group: self.name.clone(),
                instance_id: instance.clone(),
                member: id.to_string(),
            },
            None => Error::UnknownMember {
                group: self.name.clone(),
                member: id.to_string(),
            },
        }
    }

    /// Removes expired members and notices topic changes; rebalances if either happened.
    fn maintain(&mut self, broker: &Broker, now: i64) {
        if !self.members.is_empty() {
            self.active_ms = self.active_ms.max(now);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id);
        }
        let metadata_changed = self.refresh_partitions(broker);
        if !expired.is_empty() || metadata_changed {
            self.rebalance(broker);
        }
    }

    /// Re-reads the partition counts of the subscribed topics when the broker's topics
    /// changed; returns whether they differ from the last rebalance's.
    fn refresh_partitions(&mut self, broker: &Broker) -> bool {
        let epoch = broker.topic_epoch();
        if epoch == self.topic_epoch {
            return false;
        }
        self.topic_epoch = epoch;
        let counts = self.subscribed_partitions(broker);
        counts != self.partitions
    }

    fn subscribed_partitions(&self, broker: &Broker) -> BTreeMap<String, i32> {
        let topics: BTreeSet<&String> = self.members.values().flat_map(|m| &m.topics).collect();
        topics
            .into_iter()
            .filter_map(|t| Some((t.clone(), broker.partition_count(t).ok()?)))
            .collect()
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            // Its consumer, if it polls again, learns it was removed.
            m.notify();
            for tp in &m.owned {
                self.owners.remove(tp);
            }
        }
        self.target.remove(id);
    }

    /// Starts a new generation: picks the assignor, computes every member's target and
    /// tells every member to sync.
    fn rebalance(&mut self, broker: &Broker) {
        self.generation = self.generation.wrapping_add(1).max(1);
        self.topic_epoch = broker.topic_epoch();
        self.partitions = self.subscribed_partitions(broker);
        self.protocol = self.choose_protocol();
        self.target.clear();
        let Some(assignor) = self.protocol.clone() else {
            return;
        };
        let subscriptions: Vec<MemberSubscription> = self
            .members
            .values()
            .map(|m| MemberSubscription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                topics: m.topics.clone(),
                owned: m.owned.iter().cloned().collect(),
                generation: m.generation,
            })
            .collect();
        let assignment = assignor.assign(&self.partitions, &subscriptions);
        self.invalid = match validate_assignment(
            &self.name,
            assignor.as_ref(),
            &self.partitions,
            &subscriptions,
            &assignment,
        ) {
            Err(Error::InvalidAssignment {
                assignor, fault, ..
            }) => Some((assignor, *fault)),
            _ => None,
        };
        // Even a faulty answer is applied as far as it is safe (see `set_target`), so
        // the members keep reading what it does assign.
        self.set_target(assignment);
        for m in self.members.values() {
            m.notify();
        }
    }

    /// Keeps the assignor's answer for partitions that exist, each given to one member
    /// that subscribes to its topic (a custom assignor cannot break the invariant).
    fn set_target(&mut self, assignment: BTreeMap<String, Vec<TopicPartition>>) {
        let mut given = BTreeSet::new();
        for (member, tps) in assignment {
            let Some(m) = self.members.get(&member) else {
                continue;
            };
            let valid: BTreeSet<TopicPartition> = tps
                .into_iter()
                .filter(|tp| {
                    m.topics.contains(&tp.topic)
                        && self
                            .partitions
                            .get(&tp.topic)
                            .is_some_and(|n| (0..*n).contains(&tp.partition))
                        && given.insert(tp.clone())
                })
                .collect();
            self.target.insert(member, valid);
        }
    }

    /// The assignor every member supports that most members prefer (each member votes
    /// for the first one in its list that all support), as Kafka's coordinator picks the
    /// protocol; ties go to the order of the first member's list.
    fn choose_protocol(&self) -> Option<Arc<dyn Assignor>> {
        let first = self.members.values().next()?;
        let common: Vec<&Arc<dyn Assignor>> = first
            .assignors
            .iter()
            .filter(|a| self.members.values().all(|m| supports(m, a.name())))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(a) = m
                .assignors
                .iter()
                .find(|a| common.iter().any(|c| c.name() == a.name()))
            {
                *votes.entry(a.name()).or_default() += 1;
            }
        }
        let best = common
            .iter()
            .map(|a| votes.get(a.name()).copied().unwrap_or(0))
            .max()?;
        common
            .into_iter()
            .find(|a| votes.get(a.name()).copied().unwrap_or(0) == best)
            .cloned()
    }

    fn cooperative(&self) -> bool {
        self.protocol
            .as_ref()
            .is_some_and(|p| p.protocol() == RebalanceProtocol::Cooperative)
    }

    /// Gives `id` every partition of its target that nobody owns.
    fn grant(&mut self, id: &str) -> Vec<TopicPartition> {
        let Some(target) = self.target.get(id) else {
            return Vec::new();
        };
        let free: Vec<TopicPartition> = target
            .iter()
            .filter(|tp| !self.owners.contains_key(*tp))
            .cloned()
            .collect();
        let m = self.members.get_mut(id).expect("granting to a member");
        for tp in &free {
            m.owned.insert(tp.clone());
            self.owners.insert(tp.clone(), id.to_string());
        }
        free
    }

    /// Wakes the members whose target holds one of `freed`.
    fn notify_receivers(&self, freed: &[TopicPartition]) {
        for (id, target) in &self.target {
            if freed.iter().any(|tp| target.contains(tp))
                && let Some(m) = self.members.get(id)
            {
                m.notify();
            }
        }
    }

    /// Members that count against admin operations (static ones away within their
    /// session included).
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Each member with its owned partitions, for describe.
    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }
}

fn supports(m: &Member, name: &str) -> bool {
    m.assignors.iter().any(|a| a.name() == name)
}

/// What a member does at the start of a sync.
#[derive(Debug)]
pub(crate) struct SyncStep {
    /// Partitions to revoke (run the revoke callback, then `finish_sync`).
    pub(crate) revoke: Vec<TopicPartition>,
}

impl Coordinator {
    /// Loads every group's committed offsets from the offsets topic.
    pub(crate) fn load(&self, broker: &Broker) -> Result<()> {
        let loaded = store::load(broker)?;
        let mut groups = self.groups.lock();
        // Whether a loaded group had members before the restart is not stored: their
        // offsets count as active at the load, so none expires sooner than
        // `offsets_retention` after it.
        let now = broker.config().clock.now_ms();
        for (name, offsets) in loaded {
            let mut g = Group::new(&name);
            g.offsets = offsets;
            g.active_ms = now;
            groups.insert(name, Arc::new(Mutex::new(g)));
        }
        Ok(())
    }

    /// Kafka's offsets expiry (`offsets.retention.minutes`): deletes the committed
    /// offsets of every group without members that are older than `retention_ms` at
    /// `now`, counted from the later of their commit and the last time the group had
    /// members, except those a transaction has pending (`pending(group)`). Each group's
    /// expired offsets are written as tombstones to `__consumer_offsets` (fsynced) before
    /// they are dropped. (A group left with neither stays in memory, out of
    /// `list_groups`, until the broker is reopened, which loads only groups with
    /// offsets.) Returns how many offsets expired.
    ///
    /// # Errors
    /// The first write error; that group keeps its offsets, and the next run retries.
    pub(crate) fn expire_offsets(
        &self,
        broker: &Broker,
        now: i64,
        retention_ms: i64,
        pending: impl Fn(&str) -> BTreeSet<TopicPartition>,
    ) -> Result<usize> {
        let mut expired_total = 0;
        for name in self.group_names() {
            let Some(mut g) = self.lock_existing(&name) else {
                continue;
            };
            g.maintain(broker, now);
            if !g.members.is_empty() {
                continue;
            }
            // Read under the group's lock, which `send_txn_offsets` holds while a
            // transaction's offsets are written and registered, and which a commit takes
            // to apply them (they stay pending until then): no tombstone can follow a
            // transaction's offset for its partition. (The pending list's own lock is
            // never held while a group's is taken.)
            let pending = pending(&name);
            let active_ms = g.active_ms;
            let expired: Vec<(TopicPartition, Option<OffsetAndMetadata>)> = g
                .offsets
                .iter()
                .filter(|(tp, o)| {
                    !pending.contains(*tp)
                        && now.saturating_sub(o.commit_timestamp.max(active_ms)) >= retention_ms
                })
                .map(|(tp, _)| (tp.clone(), None))
                .collect();
            if !expired.is_empty() {
                store::write(broker, &name, &expired)?;
                for (tp, _) in &expired {
                    g.offsets.remove(tp);
                }
                expired_total += expired.len();
            }
        }
        Ok(expired_total)
    }

    fn group(&self, name: &str) -> Arc<Mutex<Group>> {
        self.groups
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Group::new(name))))
            .clone()
    }

    fn existing(&self, name: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups.lock().get(name).cloned()
    }

    /// Locks group `name`, creating it if there is none. A group deleted while this
    /// thread waited for its lock is out of the map by then: the name is looked up again.
    fn lock_group(&self, name: &str) -> GroupGuard {
        loop {
            let g = self.group(name).lock_arc();
            if !g.deleted {
                return g;
            }
        }
    }

    /// Locks group `name` if it exists, as [`Coordinator::lock_group`] does.
    fn lock_existing(&self, name: &str) -> Option<GroupGuard> {
        loop {
            let g = self.existing(name)?.lock_arc();
            if !g.deleted {
                return Some(g);
            }
        }
    }

    /// Runs `f` on a group after removing its expired members.
    pub(crate) fn with_group<T>(
        &self,
        broker: &Broker,
        name: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Option<T> {
        let mut g = self.lock_existing(name)?;
        g.maintain(broker, broker.config().clock.now_ms());
        Some(f(&mut g))
    }

    /// The ids of every group with members or committed offsets.
    pub(crate) fn group_names(&self) -> Vec<String> {
        self.groups.lock().keys().cloned().collect()
    }

    /// The names of the groups that have members or committed offsets, sorted.
    pub(crate) fn live_group_names(&self) -> Vec<String> {
        let groups: Vec<(String, Arc<Mutex<Group>>)> = self
            .groups
            .lock()
            .iter()
            .map(|(n, g)| (n.clone(), g.clone()))
            .collect();
        groups
            .into_iter()
            .filter(|(_, g)| {
                let g = g.lock();
                !g.members.is_empty() || !g.offsets.is_empty()
            })
            .map(|(n, _)| n)
            .collect()
    }

    /// Adds a member (or brings a static one back) and rebalances if the membership
    /// changed.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty or over-long group id;
    /// [`Error::InconsistentGroupProtocol`] when its assignors share none with the group.
    pub(crate) fn join(&self, broker: &Broker, req: JoinRequest) -> Result<Joined> {
        check_group_id(&req.group)?;
        let now = broker.config().clock.now_ms();
        let mut g = self.lock_group(&req.group);
        g.maintain(broker, now);
        check_assignors(&g, &req)?;
        let id = self.new_member_id(&req);
        let signal = Arc::new(AtomicBool::new(true));
        if let Some((owned, resubscribed)) = rejoin_static(&mut g, &req, &id, &signal, now) {
            if resubscribed {
                g.rebalance(broker);
            }
            let generation = g.member(&id)?.generation;
            return Ok(Joined {
                member_id: id,
                owned,
                signal,
                generation,
            });
        }
        g.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: req.instance_id,
                topics: req.topics,
                assignors: req.assignors,
                owned: BTreeSet::new(),
                generation: 0,
                last_poll_ms: now,
                polling: false,
                departed_ms: None,
                session_timeout_ms: req.session_timeout_ms,
                max_poll_interval_ms: req.max_poll_interval_ms,
                waiter: req.waiter,
                signal: signal.clone(),
            },
        );
        g.rebalance(broker);
        Ok(Joined {
            member_id: id,
            owned: Vec::new(),
            signal,
            generation: 0,
        })
    }

    fn new_member_id(&self, req: &JoinRequest) -> String {
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        let prefix = req.instance_id.as_deref().unwrap_or("consumer");
        format!("{prefix}-{n}")
    }

    /// Marks the start of a member's poll: removes the group's expired members first,
    /// then records the poll.
    ///
    /// # Errors
    /// [`Error::UnknownMember`] or [`Error::FencedInstanceId`].
    pub(crate) fn begin_poll(&self, broker: &Broker, group: &str, member: &str) -> Result<()> {
        let now = broker.config().clock.now_ms();
        let mut g = self.lock_group(group);
        g.maintain(broker, now);
        let m = g.member_mut(member)?;
        m.polling = true;
        m.last_poll_ms = now;
        Ok(())
    }

    /// Starts a member's sync: records the poll and says what to revoke.
    ///
    /// # Errors
    /// [`Error::UnknownMember`] or [`Error::FencedInstanceId`].
    pub(crate) fn begin_sync(
        &self,
        broker: &Broker,
        group: &str,
        member: &str,
    ) -> Result<SyncStep> {
        let now = broker.config().clock.now_ms();
        let mut g = self.lock_group(group);
        g.maintain(broker, now);
        if let Some((assignor, fault)) = &g.invalid {
            return Err(Error::InvalidAssignment {
                group: g.name.clone(),
                assignor: assignor.clone(),
                fault: Box::new(fault.clone()),
            });
        }
        let eager_restart = !g.cooperative();
        let generation = g.generation;
        let target = g.target.get(member).cloned().unwrap_or_default();
        let m = g.member_mut(member)?;
        m.polling = true;
        m.last_poll_ms = now;
        let revoke = if eager_restart && m.generation != generation {
            m.owned.iter().cloned().collect()
        } else {
            m.owned.difference(&target).cloned().collect()
        };
        Ok(SyncStep { revoke })
    }

    /// Ends a member's sync: releases what it revoked and gives it the free partitions of
    /// its target. Returns the granted partitions and the generation the member is now at.
    ///
    /// # Errors
    /// [`Error::UnknownMember`] or [`Error::FencedInstanceId`].
    pub(crate) fn finish_sync(
        &self,
        broker: &Broker,
        group: &str,
        member: &str,
        revoked: &[TopicPartition],
    ) -> Result<(Vec<TopicPartition>, i32)> {
        let mut g = self.lock_group(group);
        let generation = g.generation;
        let m = g.member_mut(member)?;
        let released: Vec<TopicPartition> = revoked
            .iter()
            .filter(|tp| m.owned.remove(*tp))
            .cloned()
            .collect();
        m.generation = generation;
        for tp in &released {
            g.owners.remove(tp);
        }
        if !released.is_empty() && g.cooperative() {
            // Kafka's cooperative members rejoin after revoking, so that the revoked
            // partitions are assigned in a follow-up rebalance.
            g.rebalance(broker);
            let generation = g.generation;
            g.member_mut(member)?.generation = generation;
        } else {
            g.notify_receivers(&released);
        }
        let granted = g.grant(member);
        Ok((granted, g.member(member)?.generation))
    }

    /// Marks the end of a member's poll (the `max_poll_interval` clock starts).
    pub(crate) fn poll_done(&self, broker: &Broker, group: &str, member: &str) {
        let now = broker.config().clock.now_ms();
        if let Some(mut g) = self.lock_existing(group)
            && let Some(m) = g.members.get_mut(member)
        {
            m.polling = false;
            m.last_poll_ms = now;
        }
    }

    /// Removes a member (Kafka's LeaveGroup) and rebalances the others.
    pub(crate) fn leave(&self, broker: &Broker, group: &str, member: &str) {
        if let Some(mut g) = self.lock_existing(group)
            && g.members.contains_key(member)
        {
            let now = broker.config().clock.now_ms();
            g.active_ms = g.active_ms.max(now);
            g.remove_member(member);
            g.rebalance(broker);
        }
    }

    /// A static member went away without leaving: it keeps its partitions until
    /// `session_timeout` passes, as Kafka keeps a static member that stops heartbeating.
    pub(crate) fn depart(&self, broker: &Broker, group: &str, member: &str) {
        let now = broker.config().clock.now_ms();
        if let Some(mut g) = self.lock_existing(group)
            && let Some(m) = g.members.get_mut(member)
        {
            m.departed_ms = Some(now);
            m.polling = false;
        }
    }

    /// Commits offsets durably. With `member`, each partition must be owned by it;
    /// without (a consumer using `assign`), the group must have no members.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty or over-long group id (its key would not
    /// decode when the offsets are loaded again); [`Error::CommitFailed`] naming the
    /// first rejected partition and why (not owned, a negative offset; nothing is
    /// written then), or the write's error.
    pub(crate) fn commit(
        &self,
        broker: &Broker,
        group: &str,
        member: Option<&str>,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    ) -> Result<()> {
        check_group_id(group)?;
        let now = broker.config().clock.now_ms();
        let mut g = self.lock_group(group);
        g.maintain(broker, now);
        for (tp, value) in &offsets {
            check_commit(&g, member, tp)?;
            check_value(&g, member, tp, value)?;
        }
        let records: Vec<(TopicPartition, Option<OffsetAndMetadata>)> = offsets
            .iter()
            .map(|(tp, v)| (tp.clone(), Some(v.clone())))
            .collect();
        store::write(broker, group, &records)?;
        g.offsets.extend(offsets);
        Ok(())
    }

    /// Checks offsets that a transactional producer sends for `meta`'s group, as Kafka's
    /// coordinator checks a `TxnOffsetCommit`, then runs `write` (which writes them and
    /// registers them as pending) under the group's lock, so that the offsets expiry
    /// cannot write a tombstone for their partitions in between. The member must still
    /// be in the group, at the group's current generation, and (as for
    /// [`Coordinator::commit`]) own each partition. Metadata with no member id and no
    /// generation (a bare group id, the form of Kafka's deprecated
    /// `sendOffsetsToTransaction(offsets, groupId)`) is not checked.
    ///
    /// `write` must not take the transaction coordinator's lock, which is held while
    /// group locks are taken.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad group id; [`Error::CommitFailed`] naming the
    /// first partition refused and why; [`Error::FencedInstanceId`] for a static member
    /// replaced by another consumer; `write`'s error.
    pub(crate) fn send_txn_offsets(
        &self,
        broker: &Broker,
        meta: &ConsumerGroupMetadata,
        tps: &[TopicPartition],
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        check_group_id(meta.group_id())?;
        let now = broker.config().clock.now_ms();
        let mut g = self.lock_group(meta.group_id());
        g.maintain(broker, now);
        if !(meta.member_id().is_empty() && meta.generation_id() < 0) {
            check_txn_member(&g, meta, tps)?;
        }
        write()
    }

    /// Makes offsets committed inside a transaction the groups' committed offsets, once
    /// the transaction's COMMIT markers are written (their records are on disk already).
    pub(crate) fn apply_transactional_offsets(
        &self,
        offsets: Vec<(String, TopicPartition, OffsetAndMetadata)>,
    ) {
        for (group, tp, value) in offsets {
            self.lock_group(&group).offsets.insert(tp, value);
        }
    }

    /// The committed offsets of these partitions (those without one are left out).
    pub(crate) fn committed(
        &self,
        group: &str,
        tps: &[TopicPartition],
    ) -> HashMap<TopicPartition, OffsetAndMetadata> {
        let Some(g) = self.lock_existing(group) else {
            return HashMap::new();
        };
        tps.iter()
            .filter_map(|tp| Some((tp.clone(), g.offsets.get(tp)?.clone())))
            .collect()
    }

    /// Overwrites committed offsets while the group has no members (Kafka's
    /// `--reset-offsets --execute`), creating the group if there is none.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad group id, [`Error::GroupNotEmpty`], or the
    /// write's error.
    pub(crate) fn reset_offsets(
        &self,
        broker: &Broker,
        group: &str,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    ) -> Result<()> {
        check_group_id(group)?;
        let mut g = self.lock_group(group);
        check_no_members(broker, &mut g, "resetting offsets")?;
        let records: Vec<(TopicPartition, Option<OffsetAndMetadata>)> =
            offsets.into_iter().map(|(tp, v)| (tp, Some(v))).collect();
        store::write(broker, group, &records)?;
        g.offsets
            .extend(records.into_iter().filter_map(|(tp, v)| Some((tp, v?))));
        Ok(())
    }

    /// Deletes a group without members: a tombstone for each offset it holds (fsynced),
    /// then the group is forgotten. All under the group's lock, so that every offset
    /// committed before gets its tombstone, and a thread waiting for the lock finds the
    /// group deleted and looks again, rather than committing into a forgotten group.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`], [`Error::GroupNotEmpty`], or the write's error (the group
    /// then stays, with its offsets).
    pub(crate) fn delete(&self, broker: &Broker, group: &str) -> Result<()> {
        let Some(mut g) = self.lock_existing(group) else {
            return Err(Error::UnknownGroup {
                group: group.to_string(),
            });
        };
        check_no_members(broker, &mut g, "deleting the group")?;
        let tombstones: Vec<(TopicPartition, Option<OffsetAndMetadata>)> =
            g.offsets.keys().map(|tp| (tp.clone(), None)).collect();
        store::write(broker, group, &tombstones)?;
        g.offsets.clear();
        g.deleted = true;
        let mut groups = self.groups.lock();
        if groups
            .get(group)
            .is_some_and(|x| Arc::ptr_eq(x, ArcMutexGuard::mutex(&g)))
        {
            groups.remove(group);
        }
        Ok(())
    }
}

/// Removes a group's expired members, then refuses `operation` if members remain, as
/// Kafka refuses to reset the offsets of, or delete, a group with members.
fn check_no_members(broker: &Broker, g: &mut Group, operation: &'static str) -> Result<()> {
    g.maintain(broker, broker.config().clock.now_ms());
    match g.member_count() {
        0 => Ok(()),
        members => Err(Error::GroupNotEmpty {
            group: g.name.clone(),
            members,
            operation,
        }),
    }
}

/// [`Coordinator::send_txn_offsets`]'s checks of a member's offsets.
fn check_txn_member(g: &Group, meta: &ConsumerGroupMetadata, tps: &[TopicPartition]) -> Result<()> {
    for tp in tps {
        check_commit(g, Some(meta.member_id()), tp).map_err(|e| match e {
            // Named with the generation the offsets were sent with.
            Error::CommitFailed {
                group,
                member,
                topic,
                partition,
                reason,
                ..
            } => Error::CommitFailed {
                group,
                member,
                generation: meta.generation_id(),
                topic,
                partition,
                reason,
            },
            other => other,
        })?;
        if meta.generation_id() != g.generation {
            return Err(Error::CommitFailed {
                group: g.name.clone(),
                member: meta.member_id().to_string(),
                generation: meta.generation_id(),
                topic: tp.topic.clone(),
                partition: tp.partition,
                reason: format!(
                    "the group rebalanced to generation {} since this consumer last \
                     synced (poll, then retry the transaction)",
                    g.generation
                ),
            });
        }
    }
    Ok(())
}

/// Kafka's rule for `group.id`: not empty (and it must fit an `int16`-length string).
fn check_group_id(group: &str) -> Result<()> {
    if group.is_empty() || !fits_string(group) {
        return Err(Error::InvalidConfig {
            name: "group.id",
            value: group.to_string(),
            reason: "a group id must be non-empty and at most 32767 bytes",
        });
    }
    Ok(())
}

/// Refuses a member whose assignors share none with the group's current members.
fn check_assignors(g: &Group, req: &JoinRequest) -> Result<()> {
    if req.assignors.is_empty() {
        return Err(Error::InconsistentGroupProtocol {
            group: g.name.clone(),
            reason: "the consumer lists no partition_assignment_strategy".into(),
        });
    }
    let shared = req
        .assignors
        .iter()
        .any(|a| g.members.values().all(|m| supports(m, a.name())));
    if shared {
        return Ok(());
    }
    let names = |list: &[Arc<dyn Assignor>]| {
        list.iter()
            .map(|a| a.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let theirs: Vec<String> = g
        .members
        .values()
        .map(|m| format!("{}: [{}]", m.id, names(&m.assignors)))
        .collect();
    Err(Error::InconsistentGroupProtocol {
        group: g.name.clone(),
        reason: format!(
            "the consumer offers [{}], which the members do not all support ({})",
            names(&req.assignors),
            theirs.join("; ")
        ),
    })
}

/// A static member whose instance id is in the group takes its place: same partitions,
/// no rebalance (unless it comes back subscribed to other topics, which Kafka also
/// rebalances for). A live holder of that instance id is fenced, as Kafka does. Returns
/// the partitions it owns and whether its subscription changed.
fn rejoin_static(
    g: &mut Group,
    req: &JoinRequest,
    id: &str,
    signal: &Arc<AtomicBool>,
    now: i64,
) -> Option<(Vec<TopicPartition>, bool)> {
    let instance = req.instance_id.as_ref()?;
    let old_id = g
        .members
        .values()
        .find(|m| m.instance_id.as_ref() == Some(instance))?
        .id
        .clone();
    let mut m = g.members.remove(&old_id).expect("found");
    if m.departed_ms.is_none() {
        g.fenced.insert(old_id.clone(), instance.clone());
    }
    m.id = id.to_string();
    m.departed_ms = None;
    m.polling = false;
    m.last_poll_ms = now;
    m.waiter = req.waiter.clone();
    m.signal = signal.clone();
    m.assignors = req.assignors.clone();
    m.session_timeout_ms = req.session_timeout_ms;
    m.max_poll_interval_ms = req.max_poll_interval_ms;
    let resubscribed = m.topics != req.topics;
    m.topics = req.topics.clone();
    for tp in &m.owned {
        g.owners.insert(tp.clone(), id.to_string());
    }
    if let Some(t) = g.target.remove(&old_id) {
        g.target.insert(id.to_string(), t);
    }
    let owned = m.owned.iter().cloned().collect();
    g.members.insert(id.to_string(), m);
    Some((owned, resubscribed))
}

/// Whether the committed value can be stored: a non-negative offset, strings that fit
/// Kafka's `int16` lengths.
fn check_value(
    g: &Group,
    member: Option<&str>,
    tp: &TopicPartition,
    value: &OffsetAndMetadata,
) -> Result<()> {
    let reason = if value.offset < 0 {
        format!(
            "offset {} is negative (a committed offset is the next offset to read)",
            value.offset
        )
    } else if !fits_string(&value.metadata) || !fits_string(&tp.topic) {
        "the metadata or topic name is longer than 32767 bytes".to_string()
    } else {
        return Ok(());
    };
    let generation = member
        .and_then(|id| g.members.get(id))
        .map_or(-1, |m| m.generation);
    Err(Error::CommitFailed {
        group: g.name.clone(),
        member: member.unwrap_or_default().to_string(),
        generation,
        topic: tp.topic.clone(),
        partition: tp.partition,
        reason,
    })
}

/// Whether `member` may commit `tp`.
fn check_commit(g: &Group, member: Option<&str>, tp: &TopicPartition) -> Result<()> {
    let fail = |member: &str, generation: i32, reason: String| Error::CommitFailed {
        group: g.name.clone(),
        member: member.to_string(),
        generation,
        topic: tp.topic.clone(),
        partition: tp.partition,
        reason,
    };
    let Some(id) = member else {
        if g.members.is_empty() {
            return Ok(());
        }
        return Err(fail(
            "",
            -1,
            format!(
                "the group has {} member(s); a consumer outside it cannot commit",
                g.members.len()
            ),
        ));
    };
    let m = g.member(id).map_err(|e| match e {
        Error::UnknownMember { .. } if id.is_empty() => fail(
            id,
            -1,
            "the consumer has not joined its group yet (it joins in poll)".into(),
        ),
        Error::UnknownMember { .. } => fail(
            id,
            -1,
            "the member is no longer in the group (it left or was removed after max_poll_interval)"
                .into(),
        ),
        other => other,
    })?;
    if m.owned.contains(tp) {
        return Ok(());
    }
    let reason = match g.owner(tp) {
        Some(owner) => format!(
            "the partition is owned by member {owner} since a rebalance (group generation {})",
            g.generation
        ),
        None => format!(
            "the partition is not assigned to this member (group generation {})",
            g.generation
        ),
    };
    Err(fail(id, m.generation, reason))
}
