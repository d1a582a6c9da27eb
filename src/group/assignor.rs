//! Partition assignors: how a consumer group shares its topics' partitions among members.
//!
//! These are Kafka's client-side assignors of the classic group protocol, with the names
//! Kafka uses in `partition.assignment.strategy`:
//!
//! | name | type | protocol | rule |
//! |---|---|---|---|
//! | `range` | [`RangeAssignor`] | eager | consecutive ranges, per topic |
//! | `roundrobin` | [`RoundRobinAssignor`] | eager | deal all partitions in turn |
//! | `sticky` | [`StickyAssignor`] | eager | balance first, then keep ownership |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | cooperative | sticky, moved partitions withheld one round |
//!
//! All of them order members as Kafka's `MemberInfo` does: members with a
//! `group.instance.id` (static members) first, by instance id, then the others by member
//! id. Given the same input every assignor returns the same assignment. (Kafka's sticky
//! assignor iterates Java hash maps in places and sorts by member id alone, so its
//! tie-breaks can differ from these; the balance and stickiness guarantees are the same.)
//!
//! A custom assignor implements [`Assignor`]; [`validate_assignment`] checks what any
//! assignor returned before a group acts on it.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use crate::TopicPartition;
use crate::error::{Error, Result};

/// Eager (stop-the-world) or cooperative (incremental) rebalancing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before the rebalance and gets its new
    /// assignment after it (Kafka's `EAGER`).
    #[default]
    Eager,
    /// Members keep the partitions they own through the rebalance; only partitions that
    /// move are revoked, and their new owner gets them in a follow-up rebalance (Kafka's
    /// `COOPERATIVE`, KIP-429).
    Cooperative,
}

/// One member's input to an assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member; `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions this member owned before this rebalance.
    pub owned: Vec<TopicPartition>,
    /// The generation in which it owned them (-1 when none).
    pub generation: i32,
}

impl MemberSubscription {
    /// A dynamic member subscribing to `topics`, owning nothing (generation -1).
    pub fn new<S: Into<String>>(
        member_id: impl Into<String>,
        topics: impl IntoIterator<Item = S>,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            owned: Vec::new(),
            generation: -1,
        }
    }

    /// The same member, owning `owned` since `generation`.
    pub fn owning(mut self, owned: Vec<TopicPartition>, generation: i32) -> MemberSubscription {
        self.owned = owned;
        self.generation = generation;
        self
    }

    /// The same member, as a static member with this `group.instance.id`.
    pub fn with_instance_id(mut self, group_instance_id: impl Into<String>) -> MemberSubscription {
        self.group_instance_id = Some(group_instance_id.into());
        self
    }
}

/// Assignment result: member id -> partitions (sorted by topic, partition).
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

/// Decides which member of a group reads which partition.
///
/// The coordinator calls [`assign`](Assignor::assign) with every member's subscription
/// and gives each member its share. An implementation must put every partition of a
/// subscribed topic in exactly one member's list, and only in the list of a member that
/// subscribes to its topic; it must list every member, with an empty list when it gets
/// nothing. [`validate_assignment`] checks these rules; a group should run it on the
/// output of any assignor it did not write itself.
///
/// A custom assignor, giving every partition to the first member by member id:
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, GroupAssignment, MemberSubscription, TopicPartition};
///
/// #[derive(Debug)]
/// struct FirstTakesAll;
///
/// impl Assignor for FirstTakesAll {
///     fn name(&self) -> &str {
///         "first-takes-all"
///     }
///     fn assign(
///         &self,
///         partitions: &BTreeMap<String, i32>,
///         members: &[MemberSubscription],
///     ) -> GroupAssignment {
///         let mut out: GroupAssignment =
///             members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
///         for (topic, &count) in partitions {
///             let first = members.iter().filter(|m| m.topics.contains(topic)).min_by_key(|m| &m.member_id);
///             if let Some(first) = first {
///                 let list = out.get_mut(&first.member_id).unwrap();
///                 list.extend((0..count).map(|p| TopicPartition::new(topic.as_str(), p)));
///             }
///         }
///         out
///     }
/// }
///
/// let partitions = BTreeMap::from([("t".to_string(), 2)]);
/// let members = [MemberSubscription::new("b", ["t"]), MemberSubscription::new("a", ["t"])];
/// let out = FirstTakesAll.assign(&partitions, &members);
/// assert_eq!(out["a"], [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
/// assert!(out["b"].is_empty());
/// ```
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// Kafka's protocol name: "range", "roundrobin", "sticky", "cooperative-sticky".
    fn name(&self) -> &str;

    /// Whether members keep their partitions through a rebalance ([`Cooperative`]) or give
    /// them all up first ([`Eager`], the default).
    ///
    /// [`Cooperative`]: RebalanceProtocol::Cooperative
    /// [`Eager`]: RebalanceProtocol::Eager
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// `partitions`: partition count of every topic any member subscribes to (topics missing here are ignored).
    /// Every member of `members` must appear in the result (possibly with an empty list).
    fn assign(
        &self,
        partitions: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment;
}

/// Look an assignor up by Kafka's name (for configs and the CLI).
///
/// Accepts the protocol names (`range`, `roundrobin`, `sticky`, `cooperative-sticky`)
/// and Kafka's class names (`org.apache.kafka.clients.consumer.RangeAssignor`, ...).
///
/// ```
/// use partlog::{RebalanceProtocol, assignor_by_name};
///
/// let assignor = assignor_by_name("cooperative-sticky").unwrap();
/// assert_eq!(assignor.protocol(), RebalanceProtocol::Cooperative);
/// assert!(assignor_by_name("fastest").is_none());
/// ```
pub fn assignor_by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    let short = name
        .strip_prefix("org.apache.kafka.clients.consumer.")
        .unwrap_or(name);
    match short {
        "range" | "RangeAssignor" => Some(Arc::new(RangeAssignor)),
        "roundrobin" | "RoundRobinAssignor" => Some(Arc::new(RoundRobinAssignor)),
        "sticky" | "StickyAssignor" => Some(Arc::new(StickyAssignor)),
        "cooperative-sticky" | "CooperativeStickyAssignor" => {
            Some(Arc::new(CooperativeStickyAssignor))
        }
        _ => None,
    }
}

/// Checks an assignment an [`Assignor`] returned before the group uses it.
///
/// The rules: every member of `members` is listed and nobody else; each partition
/// exists, goes to a member subscribing to its topic, and to one member only; every
/// partition of a subscribed topic is assigned. Under the [`Cooperative`] protocol a
/// partition may also be left out while some member still claims it (it is being
/// revoked), and a partition another member claims must not be assigned (Kafka's
/// `validateCooperativeAssignment`: nobody may read a partition its owner has not yet
/// revoked).
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, MemberSubscription, RangeAssignor, TopicPartition, validate_assignment};
///
/// let partitions = BTreeMap::from([("t".to_string(), 2)]);
/// let members = [MemberSubscription::new("a", ["t"]), MemberSubscription::new("b", ["t"])];
/// let mut out = RangeAssignor.assign(&partitions, &members);
/// validate_assignment("g", &RangeAssignor, &partitions, &members, &out).unwrap();
///
/// out.get_mut("a").unwrap().push(TopicPartition::new("t", 1)); // also b's
/// let err = validate_assignment("g", &RangeAssignor, &partitions, &members, &out).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "assignor range returned an invalid assignment for group \"g\": t-1 is assigned to both a and b"
/// );
/// ```
///
/// # Errors
/// [`Error::InvalidAssignment`] naming the group, the assignor and the first
/// [`AssignmentFault`] found.
///
/// [`Cooperative`]: RebalanceProtocol::Cooperative
pub fn validate_assignment(
    group: &str,
    assignor: &dyn Assignor,
    partitions: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    assignment: &GroupAssignment,
) -> Result<()> {
    let cooperative = assignor.protocol() == RebalanceProtocol::Cooperative;
    find_fault(cooperative, partitions, members, assignment).map_err(|fault| {
        Error::InvalidAssignment {
            group: group.to_string(),
            assignor: assignor.name().to_string(),
            fault: Box::new(fault),
        }
    })
}

/// What is wrong with an assignment (see [`validate_assignment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssignmentFault {
    /// The assignment lists a member that is not in the group.
    UnknownMember {
        /// The member id.
        member: String,
    },
    /// A member of the group is not listed.
    MissingMember {
        /// The member id.
        member: String,
    },
    /// A partition that does not exist.
    NoSuchPartition {
        /// The member it was assigned to.
        member: String,
        /// The partition.
        partition: TopicPartition,
    },
    /// A partition assigned to a member that does not subscribe to its topic.
    NotSubscribed {
        /// The member.
        member: String,
        /// The partition.
        partition: TopicPartition,
    },
    /// A partition assigned to two members.
    AssignedTwice {
        /// The partition.
        partition: TopicPartition,
        /// The first member (in member id order).
        first: String,
        /// The second member.
        second: String,
    },
    /// Cooperative protocol: a partition assigned to a member while another member still
    /// owns it.
    StillOwned {
        /// The partition.
        partition: TopicPartition,
        /// The member it was assigned to.
        member: String,
        /// The member that owns it.
        owner: String,
    },
    /// A partition of a subscribed topic that nobody gets (and, under the cooperative
    /// protocol, nobody is revoking).
    Unassigned {
        /// The partition.
        partition: TopicPartition,
    },
}

impl std::fmt::Display for AssignmentFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tp = |p: &TopicPartition| format!("{}-{}", p.topic, p.partition);
        match self {
            AssignmentFault::UnknownMember { member } => {
                write!(f, "{member} is not a member of the group")
            }
            AssignmentFault::MissingMember { member } => write!(f, "member {member} is missing"),
            AssignmentFault::NoSuchPartition { member, partition } => {
                write!(f, "{member} got {}, which does not exist", tp(partition))
            }
            AssignmentFault::NotSubscribed { member, partition } => write!(
                f,
                "{member} got {}, but does not subscribe to {:?}",
                tp(partition),
                partition.topic
            ),
            AssignmentFault::AssignedTwice {
                partition,
                first,
                second,
            } => write!(
                f,
                "{} is assigned to both {first} and {second}",
                tp(partition)
            ),
            AssignmentFault::StillOwned {
                partition,
                member,
                owner,
            } => write!(
                f,
                "{member} got {}, which {owner} still owns (cooperative protocol)",
                tp(partition)
            ),
            AssignmentFault::Unassigned { partition } => {
                write!(f, "{} is not assigned to anyone", tp(partition))
            }
        }
    }
}

fn find_fault(
    cooperative: bool,
    partitions: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    assignment: &GroupAssignment,
) -> std::result::Result<(), AssignmentFault> {
    let members = member_order(members);
    let by_id: HashMap<&str, &MemberSubscription> =
        members.iter().map(|m| (m.member_id.as_str(), *m)).collect();
    if let Some(member) = assignment
        .keys()
        .find(|id| !by_id.contains_key(id.as_str()))
    {
        let member = member.clone();
        return Err(AssignmentFault::UnknownMember { member });
    }
    if let Some(m) = members
        .iter()
        .find(|m| !assignment.contains_key(&m.member_id))
    {
        let member = m.member_id.clone();
        return Err(AssignmentFault::MissingMember { member });
    }
    let claims = claimants(&members);
    let mut holder: HashMap<&TopicPartition, &str> = HashMap::new();
    for (id, list) in assignment {
        let member = by_id[id.as_str()];
        for tp in list {
            check_one(cooperative, partitions, &claims, &mut holder, member, tp)?;
        }
    }
    for (topic, &count) in partitions {
        if !members.iter().any(|m| m.topics.contains(topic)) {
            continue;
        }
        for p in 0..count {
            let partition = TopicPartition::new(topic.as_str(), p);
            let revoking = cooperative && claims.contains_key(&partition);
            if !holder.contains_key(&partition) && !revoking {
                return Err(AssignmentFault::Unassigned { partition });
            }
        }
    }
    Ok(())
}

fn check_one<'a>(
    cooperative: bool,
    partitions: &BTreeMap<String, i32>,
    claims: &HashMap<&TopicPartition, Vec<&str>>,
    holder: &mut HashMap<&'a TopicPartition, &'a str>,
    member: &'a MemberSubscription,
    tp: &'a TopicPartition,
) -> std::result::Result<(), AssignmentFault> {
    let id = member.member_id.as_str();
    let exists = partitions
        .get(&tp.topic)
        .is_some_and(|&count| (0..count).contains(&tp.partition));
    if !exists {
        return Err(AssignmentFault::NoSuchPartition {
            member: id.to_string(),
            partition: tp.clone(),
        });
    }
    if !member.topics.contains(&tp.topic) {
        return Err(AssignmentFault::NotSubscribed {
            member: id.to_string(),
            partition: tp.clone(),
        });
    }
    if let Some(first) = holder.insert(tp, id) {
        return Err(AssignmentFault::AssignedTwice {
            partition: tp.clone(),
            first: first.to_string(),
            second: id.to_string(),
        });
    }
    if let Some(owner) = other_claimant(claims, tp, id).filter(|_| cooperative) {
        return Err(AssignmentFault::StillOwned {
            partition: tp.clone(),
            member: id.to_string(),
            owner: owner.to_string(),
        });
    }
    Ok(())
}

/// Kafka's `range` assignor: each topic on its own, consecutive partitions per member.
///
/// For a topic with `P` partitions and `C` subscribers (in member order), with
/// `q = P / C` and `r = P % C`, member `i` gets the `q + (i < r ? 1 : 0)` partitions
/// starting at `i*q + min(i, r)`. The first members therefore get the extra partition of
/// *every* topic, which is what makes co-partitioned topics line up (partition `n` of
/// every topic goes to the same member).
///
/// Two members, two topics of three partitions:
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, MemberSubscription, RangeAssignor, TopicPartition};
///
/// let partitions = BTreeMap::from([("t0".to_string(), 3), ("t1".to_string(), 3)]);
/// let members = [
///     MemberSubscription::new("c0", ["t0", "t1"]),
///     MemberSubscription::new("c1", ["t0", "t1"]),
/// ];
/// let out = RangeAssignor.assign(&partitions, &members);
/// let tp = TopicPartition::new;
/// assert_eq!(out["c0"], [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]);
/// assert_eq!(out["c1"], [tp("t0", 2), tp("t1", 2)]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        partitions: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let problem = Problem::new(partitions, members);
        let mut out = vec![Vec::new(); problem.members.len()];
        for (t, slot) in problem.topics.iter().enumerate() {
            let subscribers = &problem.subscribers[t];
            let (q, r) = (
                slot.count / subscribers.len(),
                slot.count % subscribers.len(),
            );
            for (i, &m) in subscribers.iter().enumerate() {
                let start = slot.base + i * q + i.min(r);
                out[m].extend(start..start + q + usize::from(i < r));
            }
        }
        problem.into_assignment(out)
    }
}

/// Kafka's `roundrobin` assignor: deal all partitions to the members in turn.
///
/// All partitions of all subscribed topics, sorted by (topic, partition), are dealt one
/// at a time around the circle of members (in member order); a member not subscribed to
/// a partition's topic is skipped for that partition, and the next partition continues
/// after the member that got this one.
///
/// Members c0 (topic t) and c1 (topics t and u):
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, MemberSubscription, RoundRobinAssignor, TopicPartition};
///
/// let partitions = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 2)]);
/// let members = [MemberSubscription::new("c0", ["t"]), MemberSubscription::new("c1", ["t", "u"])];
/// let out = RoundRobinAssignor.assign(&partitions, &members);
/// let tp = TopicPartition::new;
/// assert_eq!(out["c0"], [tp("t", 0), tp("t", 2)]);
/// assert_eq!(out["c1"], [tp("t", 1), tp("u", 0), tp("u", 1)]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let problem = Problem::new(partitions, members);
        let n = problem.members.len();
        let mut out = vec![Vec::new(); n];
        let mut next = 0;
        for (t, slot) in problem.topics.iter().enumerate() {
            for pid in slot.base..slot.base + slot.count {
                // The topic has at least one subscriber, so this stops within one lap.
                while problem.member_topics[next].binary_search(&t).is_err() {
                    next = (next + 1) % n;
                }
                out[next].push(pid);
                next = (next + 1) % n;
            }
        }
        problem.into_assignment(out)
    }
}

/// Kafka's `sticky` assignor: as balanced as possible, then as little movement as possible.
///
/// **Previous ownership.** Each member reports the partitions it owned and the generation
/// it owned them in. A partition claimed by several members goes to the claim with the
/// highest generation; when two or more members claim it in that same highest generation
/// the claims are dropped and the partition counts as unowned. Claims on partitions that
/// no longer exist, or of topics the member no longer subscribes to, are ignored.
///
/// **All members subscribe to the same topics** (Kafka's `constrainedAssign`). With `P`
/// partitions and `C` members, every member gets `floor(P/C)` or `ceil(P/C)` partitions,
/// and exactly `P % C` members get `ceil(P/C)`.
/// 1. In member order, each member keeps its owned partitions (lowest first) up to its
///    quota: `ceil(P/C)` while members owning more than `floor(P/C)` remain to take the
///    `P % C` larger shares, `floor(P/C)` after that.
/// 2. The partitions left, in (topic, partition) order, fill the members below
///    `floor(P/C)` in member order, then one each to members at `floor(P/C)` until `P % C`
///    members hold `ceil(P/C)`.
///
/// So a member keeps `min(owned, share)` of its partitions: nothing moves unless balance
/// needs it.
///
/// **Different subscriptions** (Kafka's `generalAssign`).
/// 1. Every valid claim is kept.
/// 2. Unowned partitions go, topic by topic (topics with fewest subscribers first, then
///    by name), each to the least-loaded subscriber (ties to member order).
/// 3. While some member holds at least two partitions more than another member it can
///    reach through a chain of moves (a partition of topic `t` can move from `a` to `b`
///    when `b` subscribes to `t`), one partition moves along each link of the chain;
///    partitions a member got in step 2 move before ones it kept. The result is as
///    balanced as the subscriptions allow (no chain of moves can narrow the gap between
///    two members), and kept partitions only move when balance cannot be reached
///    otherwise.
///
/// Cost: `O(P log P)` for equal subscriptions; the general case costs one breadth-first
/// search over members per moved partition.
///
/// A third member joins a group of two that share four partitions:
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, MemberSubscription, StickyAssignor, TopicPartition};
///
/// let tp = TopicPartition::new;
/// let partitions = BTreeMap::from([("t".to_string(), 4)]);
/// let members = [
///     MemberSubscription::new("a", ["t"]).owning(vec![tp("t", 0), tp("t", 1)], 3),
///     MemberSubscription::new("b", ["t"]).owning(vec![tp("t", 2), tp("t", 3)], 3),
///     MemberSubscription::new("c", ["t"]),
/// ];
/// let out = StickyAssignor.assign(&partitions, &members);
/// // One member may keep 2 (4 % 3 == 1), so "b" gives up its higher partition.
/// assert_eq!(out["a"], [tp("t", 0), tp("t", 1)]);
/// assert_eq!(out["b"], [tp("t", 2)]);
/// assert_eq!(out["c"], [tp("t", 3)]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn assign(
        &self,
        partitions: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let problem = Problem::new(partitions, members);
        let claims = problem.valid_claims();
        let out = if problem.subscriptions_equal() {
            assign_equal(&problem, &claims)
        } else {
            Balancer::new(&problem, &claims).run()
        };
        problem.into_assignment(out)
    }
}

/// Kafka's `cooperative-sticky` assignor: the sticky assignment, reached incrementally.
///
/// It computes the [`StickyAssignor`]'s assignment, then withholds from each member every
/// partition that another member reported owning. The old owner is not assigned that
/// partition, so it revokes it; the new owner gets it in the follow-up rebalance, when
/// nobody claims it any more. A partition is thus never owned by two members at once, and
/// members keep reading every partition that does not move.
///
/// Kafka withholds only the partitions it computed as changing owner; partlog withholds
/// any partition that another member still claims, whatever its generation, so even a
/// member with a stale claim never reads a partition at the same time as its new owner.
///
/// A third member joins: the moving partition is revoked now and assigned next round.
///
/// ```
/// use std::collections::BTreeMap;
/// use partlog::{Assignor, CooperativeStickyAssignor, MemberSubscription, TopicPartition};
///
/// let tp = TopicPartition::new;
/// let partitions = BTreeMap::from([("t".to_string(), 3)]);
/// let owned = vec![tp("t", 0), tp("t", 1), tp("t", 2)];
/// let round1 = [
///     MemberSubscription::new("a", ["t"]).owning(owned, 1),
///     MemberSubscription::new("b", ["t"]),
/// ];
/// let out = CooperativeStickyAssignor.assign(&partitions, &round1);
/// assert_eq!(out["a"], [tp("t", 0), tp("t", 1)]); // "a" revokes t-2 ...
/// assert!(out["b"].is_empty()); // ... before "b" gets it.
///
/// let round2 = [
///     MemberSubscription::new("a", ["t"]).owning(out["a"].clone(), 2),
///     MemberSubscription::new("b", ["t"]).owning(vec![], 2),
/// ];
/// let out = CooperativeStickyAssignor.assign(&partitions, &round2);
/// assert_eq!(out["b"], [tp("t", 2)]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        partitions: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let mut out = StickyAssignor.assign(partitions, members);
        let claims = claimants(&member_order(members));
        for (member, list) in out.iter_mut() {
            list.retain(|tp| other_claimant(&claims, tp, member).is_none());
        }
        out
    }
}

/// Every partition some member reports owning, with the distinct members claiming it.
fn claimants<'a>(members: &[&'a MemberSubscription]) -> HashMap<&'a TopicPartition, Vec<&'a str>> {
    let mut claims: HashMap<&TopicPartition, Vec<&str>> = HashMap::new();
    for member in members {
        for tp in &member.owned {
            let owners = claims.entry(tp).or_default();
            if !owners.contains(&member.member_id.as_str()) {
                owners.push(&member.member_id);
            }
        }
    }
    claims
}

/// A member other than `member` among the claimants of `tp`.
fn other_claimant<'a>(
    claims: &HashMap<&TopicPartition, Vec<&'a str>>,
    tp: &TopicPartition,
    member: &str,
) -> Option<&'a str> {
    claims
        .get(tp)?
        .iter()
        .copied()
        .find(|&owner| owner != member)
}

/// Kafka's member order: static members (by `group.instance.id`) first, then the others,
/// by member id. A member id listed twice counts once, with its first subscription.
fn member_order(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut seen = std::collections::HashSet::new();
    let mut ordered: Vec<_> = members
        .iter()
        .filter(|m| seen.insert(m.member_id.as_str()))
        .collect();
    ordered.sort_by(|a, b| compare_members(a, b));
    ordered
}

fn compare_members(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// One topic of the problem: its partitions are the ids `base..base + count`.
struct TopicSlot<'a> {
    name: &'a str,
    count: usize,
    base: usize,
}

/// An assignment problem in index form: members in Kafka's order (index = position),
/// the topics that exist and have a subscriber (sorted by name), and every partition as
/// one id, numbered in (topic, partition) order.
struct Problem<'a> {
    members: Vec<&'a MemberSubscription>,
    topics: Vec<TopicSlot<'a>>,
    topic_index: HashMap<&'a str, usize>,
    /// Per member: the topics it subscribes to, sorted, deduplicated.
    member_topics: Vec<Vec<usize>>,
    /// Per topic: its subscribers, in member order.
    subscribers: Vec<Vec<usize>>,
    partition_count: usize,
}

impl<'a> Problem<'a> {
    fn new(partitions: &'a BTreeMap<String, i32>, members: &'a [MemberSubscription]) -> Self {
        let members = member_order(members);
        let existing = |t: &&'a String| partitions.get(*t).is_some_and(|&count| count > 0);
        let wanted: BTreeSet<&'a String> = members
            .iter()
            .flat_map(|m| m.topics.iter().filter(existing))
            .collect();
        let mut topics = Vec::with_capacity(wanted.len());
        let mut base = 0;
        for name in wanted {
            let count = usize::try_from(partitions[name]).unwrap_or(0);
            topics.push(TopicSlot { name, count, base });
            base += count;
        }
        let topic_index: HashMap<&str, usize> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name, i))
            .collect();
        let member_topics: Vec<Vec<usize>> = members
            .iter()
            .map(|m| {
                let mut ts: Vec<usize> = m
                    .topics
                    .iter()
                    .filter_map(|t| topic_index.get(t.as_str()).copied())
                    .collect();
                ts.sort_unstable();
                ts.dedup();
                ts
            })
            .collect();
        let mut subscribers = vec![Vec::new(); topics.len()];
        for (m, ts) in member_topics.iter().enumerate() {
            for &t in ts {
                subscribers[t].push(m);
            }
        }
        Problem {
            members,
            topics,
            topic_index,
            member_topics,
            subscribers,
            partition_count: base,
        }
    }

    fn subscribes(&self, member: usize, topic: usize) -> bool {
        self.member_topics[member].binary_search(&topic).is_ok()
    }

    /// The topic index and partition id of `tp`, if it is part of this problem.
    fn locate(&self, tp: &TopicPartition) -> Option<(usize, usize)> {
        let &t = self.topic_index.get(tp.topic.as_str())?;
        let p = usize::try_from(tp.partition).ok()?;
        let slot = &self.topics[t];
        (p < slot.count).then_some((t, slot.base + p))
    }

    fn topic_of(&self, pid: usize) -> usize {
        self.topics.partition_point(|t| t.base + t.count <= pid)
    }

    fn subscriptions_equal(&self) -> bool {
        self.member_topics.windows(2).all(|w| w[0] == w[1])
    }

    /// Per partition id, the member whose ownership claim stands (see [`StickyAssignor`]).
    fn valid_claims(&self) -> Vec<Option<usize>> {
        // (generation, member, whether another member claims it in that generation)
        let mut best: Vec<Option<(i32, usize, bool)>> = vec![None; self.partition_count];
        for (m, member) in self.members.iter().enumerate() {
            let generation = member.generation;
            for tp in &member.owned {
                let Some((t, pid)) = self.locate(tp) else {
                    continue;
                };
                if !self.subscribes(m, t) {
                    continue;
                }
                best[pid] = match best[pid] {
                    None => Some((generation, m, false)),
                    Some((g, _, _)) if generation > g => Some((generation, m, false)),
                    Some((g, o, _)) if generation == g && o != m => Some((g, o, true)),
                    keep => keep,
                };
            }
        }
        best.into_iter()
            .map(|b| b.and_then(|(_, m, tied)| (!tied).then_some(m)))
            .collect()
    }

    /// Turns per-member partition ids into the public result.
    fn into_assignment(self, per_member: Vec<Vec<usize>>) -> GroupAssignment {
        let mut out = GroupAssignment::new();
        for (member, mut pids) in self.members.iter().zip(per_member) {
            pids.sort_unstable();
            let list = pids
                .into_iter()
                .map(|pid| {
                    let slot = &self.topics[self.topic_of(pid)];
                    // pid - base < count, which came from an i32.
                    TopicPartition::new(slot.name, (pid - slot.base) as i32)
                })
                .collect();
            out.insert(member.member_id.clone(), list);
        }
        out
    }
}

/// The sticky assignment when every member subscribes to the same topics.
fn assign_equal(problem: &Problem<'_>, claims: &[Option<usize>]) -> Vec<Vec<usize>> {
    let n = problem.members.len();
    let p = problem.partition_count;
    if n == 0 {
        return Vec::new();
    }
    let min_quota = p / n;
    let mut larger_shares = p % n;
    let mut out = vec![Vec::new(); n];
    for (pid, claim) in claims.iter().enumerate() {
        if let Some(m) = *claim {
            out[m].push(pid);
        }
    }
    let mut taken = vec![false; p];
    for list in &mut out {
        let quota = if list.len() > min_quota && larger_shares > 0 {
            larger_shares -= 1;
            min_quota + 1
        } else {
            min_quota
        };
        list.truncate(quota);
        for &pid in list.iter() {
            taken[pid] = true;
        }
    }
    // Exactly `larger_shares` partitions remain once everyone holds `min_quota`.
    let mut free = (0..p).filter(|&pid| !taken[pid]);
    for list in &mut out {
        let missing = min_quota.saturating_sub(list.len());
        list.extend(free.by_ref().take(missing));
    }
    for list in &mut out {
        if larger_shares == 0 {
            break;
        }
        if list.len() == min_quota {
            list.extend(free.next());
            larger_shares -= 1;
        }
    }
    out
}

/// The partitions one member holds of one topic during the general sticky assignment.
#[derive(Default)]
struct Holding {
    /// Partitions the member owned before this rebalance (moved last).
    kept: Vec<usize>,
    /// Partitions new to the member (moved first).
    fresh: Vec<usize>,
}

/// The general sticky assignment: keep, place greedily, then balance along chains.
struct Balancer<'p> {
    problem: &'p Problem<'p>,
    claims: &'p [Option<usize>],
    load: Vec<usize>,
    /// Per member: topic index -> the partitions of it the member holds.
    held: Vec<BTreeMap<usize, Holding>>,
}

/// One link of a chain of moves: a partition of `topic` goes from `from` to `to`.
struct Hop {
    from: usize,
    to: usize,
    topic: usize,
}

impl<'p> Balancer<'p> {
    fn new(problem: &'p Problem<'p>, claims: &'p [Option<usize>]) -> Self {
        let n = problem.members.len();
        Balancer {
            problem,
            claims,
            load: vec![0; n],
            held: (0..n).map(|_| BTreeMap::new()).collect(),
        }
    }

    fn run(mut self) -> Vec<Vec<usize>> {
        for (pid, claim) in self.claims.iter().enumerate() {
            if let Some(m) = *claim {
                self.give(m, self.problem.topic_of(pid), pid);
            }
        }
        self.place_unclaimed();
        // Moving only partitions new to their holder reaches the best balance whenever
        // some balanced assignment keeps every claim; the second pass moves kept ones.
        self.balance(true);
        self.balance(false);
        self.held
            .into_iter()
            .map(|h| {
                h.into_values()
                    .flat_map(|h| h.kept.into_iter().chain(h.fresh))
                    .collect()
            })
            .collect()
    }

    fn give(&mut self, member: usize, topic: usize, pid: usize) {
        let holding = self.held[member].entry(topic).or_default();
        if self.claims[pid] == Some(member) {
            holding.kept.push(pid);
        } else {
            holding.fresh.push(pid);
        }
        self.load[member] += 1;
    }

    fn take(&mut self, member: usize, topic: usize, fresh_only: bool) -> Option<usize> {
        let holding = self.held[member].get_mut(&topic)?;
        let pid = match holding.fresh.pop() {
            Some(pid) => pid,
            None if fresh_only => return None,
            None => holding.kept.pop()?,
        };
        if holding.kept.is_empty() && holding.fresh.is_empty() {
            self.held[member].remove(&topic);
        }
        self.load[member] -= 1;
        Some(pid)
    }

    /// Gives each unclaimed partition to the least-loaded subscriber of its topic.
    fn place_unclaimed(&mut self) {
        let problem = self.problem;
        let mut order: Vec<usize> = (0..problem.topics.len()).collect();
        order.sort_by_key(|&t| (problem.subscribers[t].len(), t));
        for t in order {
            let slot = &problem.topics[t];
            let mut heap: BinaryHeap<Reverse<(usize, usize)>> = problem.subscribers[t]
                .iter()
                .map(|&m| Reverse((self.load[m], m)))
                .collect();
            for pid in slot.base..slot.base + slot.count {
                if self.claims[pid].is_some() {
                    continue;
                }
                let Some(Reverse((load, m))) = heap.pop() else {
                    break;
                };
                self.give(m, t, pid);
                heap.push(Reverse((load + 1, m)));
            }
        }
    }

    /// Moves partitions along chains until no member can pass one, directly or through
    /// others, to a member holding at least two fewer.
    fn balance(&mut self, fresh_only: bool) {
        let n = self.load.len();
        let mut stuck = vec![false; n];
        loop {
            let Some(&min) = self.load.iter().min() else {
                return;
            };
            let mut sources: Vec<usize> = (0..n).filter(|&m| self.load[m] >= min + 2).collect();
            sources.sort_by_key(|&m| (Reverse(self.load[m]), m));
            let mut moved = false;
            for source in sources {
                if stuck[source] {
                    continue;
                }
                match self.find_chain(source, fresh_only) {
                    Ok(chain) => {
                        self.shift(&chain, fresh_only);
                        moved = true;
                        break;
                    }
                    // Whatever a reached member with no more load than `source` could
                    // reach, `source` reaches too: they are stuck as well.
                    Err(reached) => {
                        for m in reached {
                            if self.load[m] <= self.load[source] {
                                stuck[m] = true;
                            }
                        }
                    }
                }
            }
            if !moved {
                return;
            }
            stuck.fill(false);
        }
    }

    /// Breadth-first search from `source` for a member holding at least two fewer
    /// partitions. Returns the chain (last hop first), or every member reached.
    fn find_chain(&self, source: usize, fresh_only: bool) -> Result<Vec<Hop>, Vec<usize>> {
        let n = self.load.len();
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut seen = vec![false; n];
        seen[source] = true;
        let mut reached = vec![source];
        let mut queue = VecDeque::from([source]);
        while let Some(x) = queue.pop_front() {
            for (&t, holding) in &self.held[x] {
                if fresh_only && holding.fresh.is_empty() {
                    continue;
                }
                for &y in &self.problem.subscribers[t] {
                    if seen[y] {
                        continue;
                    }
                    seen[y] = true;
                    parent[y] = Some((x, t));
                    if self.load[y] + 2 <= self.load[source] {
                        return Ok(chain_to(y, &parent));
                    }
                    reached.push(y);
                    queue.push_back(y);
                }
            }
        }
        Err(reached)
    }

    /// Moves one partition along every hop, starting at the receiving end, so that each
    /// member gives before it receives and holds what the search saw when it gives.
    fn shift(&mut self, chain: &[Hop], fresh_only: bool) {
        for hop in chain {
            if let Some(pid) = self.take(hop.from, hop.topic, fresh_only) {
                self.give(hop.to, hop.topic, pid);
            }
        }
    }
}

fn chain_to(target: usize, parent: &[Option<(usize, usize)>]) -> Vec<Hop> {
    let mut chain = Vec::new();
    let mut to = target;
    while let Some((from, topic)) = parent[to] {
        chain.push(Hop { from, to, topic });
        to = from;
    }
    chain
}
