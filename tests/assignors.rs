//! Each assignor against hand-worked expected assignments: Kafka's rules (§7.3), balance,
//! stickiness, and cooperative revocation of only the partitions that move.

use std::collections::BTreeMap;

use partlog::{
    AssignmentFault, Assignor, CooperativeStickyAssignor, Error, GroupAssignment,
    MemberSubscription, RangeAssignor, RebalanceProtocol, RoundRobinAssignor, StickyAssignor,
    TopicPartition, assignor_by_name, validate_assignment,
};

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|&(t, n)| (t.to_string(), n)).collect()
}

fn member(id: &str, subscribed: &[&str]) -> MemberSubscription {
    MemberSubscription::new(id, subscribed.iter().copied())
}

/// `expected`: member id -> list of (topic, partition).
fn assert_assignment(actual: &GroupAssignment, expected: &[(&str, &[(&str, i32)])]) {
    let expected: GroupAssignment = expected
        .iter()
        .map(|&(m, tps)| (m.to_string(), tps.iter().map(|&(t, p)| tp(t, p)).collect()))
        .collect();
    assert_eq!(actual, &expected);
}

// ---------------------------------------------------------------------------------- range

#[test]
fn range_two_consumers_two_topics_three_partitions() {
    let members = [member("c0", &["t0", "t1"]), member("c1", &["t0", "t1"])];
    let out = RangeAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &members);
    assert_assignment(
        &out,
        &[
            ("c0", &[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]),
            ("c1", &[("t0", 2), ("t1", 2)]),
        ],
    );
}

#[test]
fn range_first_members_get_the_extra_partition_of_every_topic() {
    let members = [
        member("c2", &["a", "b"]),
        member("c0", &["a", "b"]),
        member("c1", &["a", "b"]),
    ];
    let out = RangeAssignor.assign(&topics(&[("a", 4), ("b", 5)]), &members);
    assert_assignment(
        &out,
        &[
            ("c0", &[("a", 0), ("a", 1), ("b", 0), ("b", 1)]),
            ("c1", &[("a", 2), ("b", 2), ("b", 3)]),
            ("c2", &[("a", 3), ("b", 4)]),
        ],
    );
}

#[test]
fn range_mixed_subscriptions_split_each_topic_among_its_subscribers() {
    let members = [
        member("c1", &["t1"]),
        member("c2", &["t1", "t2"]),
        member("c3", &["t1"]),
    ];
    let out = RangeAssignor.assign(&topics(&[("t1", 3), ("t2", 2)]), &members);
    assert_assignment(
        &out,
        &[
            ("c1", &[("t1", 0)]),
            ("c2", &[("t1", 1), ("t2", 0), ("t2", 1)]),
            ("c3", &[("t1", 2)]),
        ],
    );
}

#[test]
fn range_orders_static_members_first_by_instance_id() {
    let members = [
        member("z", &["t"]).with_instance_id("i1"),
        member("a", &["t"]),
        member("m", &["t"]).with_instance_id("i0"),
    ];
    let out = RangeAssignor.assign(&topics(&[("t", 5)]), &members);
    assert_assignment(
        &out,
        &[
            ("m", &[("t", 0), ("t", 1)]),
            ("z", &[("t", 2), ("t", 3)]),
            ("a", &[("t", 4)]),
        ],
    );
}

#[test]
fn every_assignor_lists_members_without_partitions_and_ignores_unknown_topics() {
    let members = [
        member("c0", &["missing"]),
        member("c1", &["t", "missing"]),
        member("c2", &[]),
    ];
    let partitions = topics(&[("t", 2), ("unsubscribed", 4)]);
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let out = assignor_by_name(name)
            .unwrap()
            .assign(&partitions, &members);
        assert_assignment(
            &out,
            &[("c0", &[]), ("c1", &[("t", 0), ("t", 1)]), ("c2", &[])],
        );
        assert!(
            assignor_by_name(name)
                .unwrap()
                .assign(&partitions, &[])
                .is_empty()
        );
    }
}

#[test]
fn a_member_id_listed_twice_counts_once_with_its_first_subscription() {
    let members = [
        member("c0", &["t"]),
        member("c0", &["u"]),
        member("c1", &["t"]),
    ];
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let out = assignor_by_name(name)
            .unwrap()
            .assign(&topics(&[("t", 2), ("u", 1)]), &members);
        assert_assignment(&out, &[("c0", &[("t", 0)]), ("c1", &[("t", 1)])]);
    }
}

// ----------------------------------------------------------------------------- roundrobin

#[test]
fn roundrobin_two_consumers_two_topics_three_partitions() {
    let members = [member("c0", &["t0", "t1"]), member("c1", &["t0", "t1"])];
    let out = RoundRobinAssignor.assign(&topics(&[("t0", 3), ("t1", 3)]), &members);
    assert_assignment(
        &out,
        &[
            ("c0", &[("t0", 0), ("t0", 2), ("t1", 1)]),
            ("c1", &[("t0", 1), ("t1", 0), ("t1", 2)]),
        ],
    );
}

#[test]
fn roundrobin_skips_members_not_subscribed_to_the_topic() {
    let members = [
        member("c1", &["t1"]),
        member("c2", &["t1", "t2"]),
        member("c3", &["t1"]),
    ];
    let out = RoundRobinAssignor.assign(&topics(&[("t1", 3), ("t2", 2)]), &members);
    assert_assignment(
        &out,
        &[
            ("c1", &[("t1", 0)]),
            ("c2", &[("t1", 1), ("t2", 0), ("t2", 1)]),
            ("c3", &[("t1", 2)]),
        ],
    );
}

#[test]
fn roundrobin_continues_after_the_member_that_got_the_last_partition() {
    // t: a, b, c, a; u (only b and c): b, c; v: a, b.
    let members = [
        member("a", &["t", "v"]),
        member("b", &["t", "u", "v"]),
        member("c", &["t", "u"]),
    ];
    let out = RoundRobinAssignor.assign(&topics(&[("t", 4), ("u", 2), ("v", 2)]), &members);
    assert_assignment(
        &out,
        &[
            ("a", &[("t", 0), ("t", 3), ("v", 0)]),
            ("b", &[("t", 1), ("u", 0), ("v", 1)]),
            ("c", &[("t", 2), ("u", 1)]),
        ],
    );
}

// --------------------------------------------------------------------------------- sticky

#[test]
fn sticky_fresh_group_fills_minimum_shares_then_hands_out_the_rest() {
    // Kafka's constrainedAssign: everyone to floor(3/2) = 1 in member order, then the
    // remaining partition to the first member at the minimum.
    let members = [member("a", &["t"]), member("b", &["t"])];
    let out = StickyAssignor.assign(&topics(&[("t", 3)]), &members);
    assert_assignment(&out, &[("a", &[("t", 0), ("t", 2)]), ("b", &[("t", 1)])]);
}

#[test]
fn sticky_member_joining_takes_only_what_balance_requires() {
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0), tp("t", 1), tp("t", 2)], 4),
        member("b", &["t"]).owning(vec![tp("t", 3), tp("t", 4), tp("t", 5)], 4),
        member("c", &["t"]),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 6)]), &members);
    assert_assignment(
        &out,
        &[
            ("a", &[("t", 0), ("t", 1)]),
            ("b", &[("t", 3), ("t", 4)]),
            ("c", &[("t", 2), ("t", 5)]),
        ],
    );
}

#[test]
fn sticky_member_leaving_spreads_only_its_partitions() {
    let members = [
        member("c1", &["t"]).owning(vec![tp("t", 0), tp("t", 1)], 7),
        member("c3", &["t"]).owning(vec![tp("t", 4), tp("t", 5)], 7),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 6)]), &members);
    assert_assignment(
        &out,
        &[
            ("c1", &[("t", 0), ("t", 1), ("t", 2)]),
            ("c3", &[("t", 3), ("t", 4), ("t", 5)]),
        ],
    );
}

#[test]
fn sticky_gives_the_larger_shares_to_members_that_owned_more() {
    // 7 partitions, 3 members: one member gets 3. "c" owned 3, "a" and "b" owned 1 each,
    // so "c" keeps all three rather than "a" taking the larger share.
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0)], 2),
        member("b", &["t"]).owning(vec![tp("t", 1)], 2),
        member("c", &["t"]).owning(vec![tp("t", 4), tp("t", 5), tp("t", 6)], 2),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 7)]), &members);
    assert_assignment(
        &out,
        &[
            ("a", &[("t", 0), ("t", 2)]),
            ("b", &[("t", 1), ("t", 3)]),
            ("c", &[("t", 4), ("t", 5), ("t", 6)]),
        ],
    );
}

#[test]
fn sticky_conflicting_claims_go_to_the_highest_generation() {
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0)], 2),
        member("b", &["t"]).owning(vec![tp("t", 0), tp("t", 1), tp("t", 2)], 1),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 4)]), &members);
    // "a" keeps t-0 (generation 2 beats 1); "b" keeps t-1, t-2; t-3 fills "a".
    assert_assignment(
        &out,
        &[("a", &[("t", 0), ("t", 3)]), ("b", &[("t", 1), ("t", 2)])],
    );
}

#[test]
fn sticky_claims_from_the_same_generation_are_dropped() {
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 1), tp("t", 0)], 3),
        member("b", &["t"]).owning(vec![tp("t", 0)], 3),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 2)]), &members);
    // t-0 is claimed twice in generation 3, so nobody keeps it: "a" keeps t-1, "b" gets t-0.
    assert_assignment(&out, &[("a", &[("t", 1)]), ("b", &[("t", 0)])]);
}

#[test]
fn sticky_ignores_claims_on_unsubscribed_topics_and_missing_partitions() {
    let members = [
        member("a", &["t"]).owning(vec![tp("u", 0), tp("t", 9), tp("t", -1)], 1),
        member("b", &["t", "u"]).owning(vec![tp("t", 1)], 1),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 2), ("u", 1)]), &members);
    // General case (subscriptions differ): "b" keeps t-1; t-0 goes to the least-loaded
    // subscriber of t ("a"); u-0 to its only subscriber.
    assert_assignment(&out, &[("a", &[("t", 0)]), ("b", &[("t", 1), ("u", 0)])]);
}

#[test]
fn sticky_mixed_subscriptions_balance_like_kafka() {
    // Kafka's StickyAssignorTest.testMultipleConsumersMixedTopicSubscriptions: topics
    // with fewer subscribers are placed first, each partition on the least-loaded member.
    let members = [
        member("c1", &["t1"]),
        member("c2", &["t1", "t2"]),
        member("c3", &["t1"]),
    ];
    let out = StickyAssignor.assign(&topics(&[("t1", 3), ("t2", 2)]), &members);
    assert_assignment(
        &out,
        &[
            ("c1", &[("t1", 0), ("t1", 2)]),
            ("c2", &[("t2", 0), ("t2", 1)]),
            ("c3", &[("t1", 1)]),
        ],
    );
}

#[test]
fn sticky_moves_partitions_along_a_chain_when_no_direct_move_balances() {
    // "a" reads only t1, "c" only t2; "b" both. c holds 2, a 0: c cannot hand a t2
    // partition to a, but c -> b (t2) and b -> a (t1) balances everyone at 1.
    let members = [
        member("a", &["t1"]),
        member("b", &["t1", "t2"]).owning(vec![tp("t1", 0)], 5),
        member("c", &["t2"]).owning(vec![tp("t2", 0), tp("t2", 1)], 5),
    ];
    let out = StickyAssignor.assign(&topics(&[("t1", 1), ("t2", 2)]), &members);
    assert_assignment(
        &out,
        &[
            ("a", &[("t1", 0)]),
            ("b", &[("t2", 1)]),
            ("c", &[("t2", 0)]),
        ],
    );
}

#[test]
fn sticky_mixed_subscriptions_move_one_owned_partition_to_balance() {
    let members = [
        member("a", &["t", "u"]).owning(vec![tp("t", 0), tp("t", 1), tp("u", 0)], 2),
        member("b", &["t"]).owning(vec![tp("t", 2)], 2),
    ];
    let out = StickyAssignor.assign(&topics(&[("t", 3), ("u", 1)]), &members);
    assert_assignment(
        &out,
        &[("a", &[("t", 0), ("u", 0)]), ("b", &[("t", 1), ("t", 2)])],
    );
}

// --------------------------------------------------------------------- cooperative-sticky

#[test]
fn cooperative_withholds_moving_partitions_for_one_round() {
    let partitions = topics(&[("t", 8)]);
    let owned = |ps: &[i32]| ps.iter().map(|&p| tp("t", p)).collect::<Vec<_>>();
    let round1 = [
        member("a", &["t"]).owning(owned(&[0, 1, 2]), 3),
        member("b", &["t"]).owning(owned(&[3, 4, 5]), 3),
        member("c", &["t"]).owning(owned(&[6, 7]), 3),
        member("d", &["t"]),
    ];
    let sticky = StickyAssignor.assign(&partitions, &round1);
    assert_eq!(sticky["d"], owned(&[2, 5]));
    let out = CooperativeStickyAssignor.assign(&partitions, &round1);
    // Only t-2 (from a) and t-5 (from b) move: a and b revoke them, d waits.
    assert_assignment(
        &out,
        &[
            ("a", &[("t", 0), ("t", 1)]),
            ("b", &[("t", 3), ("t", 4)]),
            ("c", &[("t", 6), ("t", 7)]),
            ("d", &[]),
        ],
    );

    let round2: Vec<_> = round1
        .iter()
        .map(|m| m.clone().owning(out[&m.member_id].clone(), 4))
        .collect();
    let out2 = CooperativeStickyAssignor.assign(&partitions, &round2);
    assert_eq!(out2, sticky);
}

#[test]
fn cooperative_assigns_a_departed_members_partitions_at_once() {
    let partitions = topics(&[("t", 6)]);
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0), tp("t", 1)], 2),
        member("b", &["t"]).owning(vec![tp("t", 2), tp("t", 3)], 2),
    ];
    let out = CooperativeStickyAssignor.assign(&partitions, &members);
    // Nobody claims t-4 and t-5 any more, so nothing has to wait.
    assert_assignment(
        &out,
        &[
            ("a", &[("t", 0), ("t", 1), ("t", 4)]),
            ("b", &[("t", 2), ("t", 3), ("t", 5)]),
        ],
    );
}

#[test]
fn cooperative_withholds_partitions_any_other_member_still_claims() {
    // Same-generation double claim on t-0: sticky gives it to "a", but "b" still thinks
    // it owns it, so "a" must wait until "b" has revoked it.
    let partitions = topics(&[("t", 2)]);
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0)], 3),
        member("b", &["t"]).owning(vec![tp("t", 0), tp("t", 1)], 3),
    ];
    assert_assignment(
        &StickyAssignor.assign(&partitions, &members),
        &[("a", &[("t", 0)]), ("b", &[("t", 1)])],
    );
    assert_assignment(
        &CooperativeStickyAssignor.assign(&partitions, &members),
        &[("a", &[]), ("b", &[("t", 1)])],
    );
}

// ------------------------------------------------------------------------------- by name

#[test]
fn assignors_are_found_by_kafka_protocol_and_class_names() {
    let cases = [
        (
            "range",
            "org.apache.kafka.clients.consumer.RangeAssignor",
            RebalanceProtocol::Eager,
        ),
        (
            "roundrobin",
            "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            RebalanceProtocol::Eager,
        ),
        (
            "sticky",
            "org.apache.kafka.clients.consumer.StickyAssignor",
            RebalanceProtocol::Eager,
        ),
        (
            "cooperative-sticky",
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            RebalanceProtocol::Cooperative,
        ),
    ];
    for (name, class, protocol) in cases {
        for key in [name, class] {
            let assignor = assignor_by_name(key).unwrap();
            assert_eq!(assignor.name(), name);
            assert_eq!(assignor.protocol(), protocol);
        }
    }
    assert!(assignor_by_name("Range").is_none());
    assert!(assignor_by_name("").is_none());
}

// ---------------------------------------------------------------------------- validation

fn fault_of(
    assignor: &dyn Assignor,
    partitions: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    out: &GroupAssignment,
) -> AssignmentFault {
    match validate_assignment("orders", assignor, partitions, members, out) {
        Err(Error::InvalidAssignment {
            group,
            assignor: name,
            fault,
        }) => {
            assert_eq!((group.as_str(), name.as_str()), ("orders", assignor.name()));
            *fault
        }
        other => panic!("expected InvalidAssignment, got {other:?}"),
    }
}

#[test]
fn validation_names_each_kind_of_fault() {
    let partitions = topics(&[("t", 2), ("u", 1)]);
    let members = [member("a", &["t"]), member("b", &["t", "u"])];
    let good = RangeAssignor.assign(&partitions, &members);
    validate_assignment("orders", &RangeAssignor, &partitions, &members, &good).unwrap();
    let edit = |f: &dyn Fn(&mut GroupAssignment)| {
        let mut out = good.clone();
        f(&mut out);
        fault_of(&RangeAssignor, &partitions, &members, &out)
    };
    let who = |s: &str| s.to_string();

    assert_eq!(
        edit(&|o| {
            o.insert(who("zed"), vec![]);
        }),
        AssignmentFault::UnknownMember { member: who("zed") }
    );
    assert_eq!(
        edit(&|o| {
            o.remove("a");
        }),
        AssignmentFault::MissingMember { member: who("a") }
    );
    assert_eq!(
        edit(&|o| o.get_mut("a").unwrap().push(tp("t", 2))),
        AssignmentFault::NoSuchPartition {
            member: who("a"),
            partition: tp("t", 2)
        }
    );
    assert_eq!(
        edit(&|o| o.get_mut("a").unwrap().push(tp("u", 0))),
        AssignmentFault::NotSubscribed {
            member: who("a"),
            partition: tp("u", 0)
        }
    );
    assert_eq!(
        edit(&|o| o.get_mut("b").unwrap().push(tp("t", 0))),
        AssignmentFault::AssignedTwice {
            partition: tp("t", 0),
            first: who("a"),
            second: who("b")
        }
    );
    assert_eq!(
        edit(&|o| o.get_mut("b").unwrap().retain(|p| p.topic != "u")),
        AssignmentFault::Unassigned {
            partition: tp("u", 0)
        }
    );
    let err = validate_assignment("orders", &RangeAssignor, &partitions, &members, &{
        let mut o = good.clone();
        o.get_mut("b").unwrap().clear();
        o
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "assignor range returned an invalid assignment for group \"orders\": t-1 is not assigned to anyone"
    );
}

#[test]
fn cooperative_validation_allows_revoking_and_forbids_taking_owned_partitions() {
    let partitions = topics(&[("t", 4)]);
    let members = [
        member("a", &["t"]).owning(vec![tp("t", 0), tp("t", 1), tp("t", 2)], 1),
        member("b", &["t"]),
    ];
    // Cooperative output leaves t-2 out while "a" revokes it (b gets only t-3): valid.
    let out = CooperativeStickyAssignor.assign(&partitions, &members);
    validate_assignment("g", &CooperativeStickyAssignor, &partitions, &members, &out).unwrap();
    // The same omission is a fault for an eager assignor.
    assert_eq!(
        fault_of(&StickyAssignor, &partitions, &members, &out),
        AssignmentFault::Unassigned {
            partition: tp("t", 2)
        }
    );
    // Handing t-2 to "b" while "a" still owns it breaks the cooperative protocol.
    let sticky = StickyAssignor.assign(&partitions, &members);
    assert_eq!(
        fault_of(&CooperativeStickyAssignor, &partitions, &members, &sticky),
        AssignmentFault::StillOwned {
            partition: tp("t", 2),
            member: "b".into(),
            owner: "a".into()
        }
    );
    // A partition nobody claims must still be assigned under the cooperative protocol.
    assert_eq!(out["b"], [tp("t", 3)]);
    let mut dropped = out.clone();
    dropped.get_mut("b").unwrap().clear();
    assert_eq!(
        fault_of(&CooperativeStickyAssignor, &partitions, &members, &dropped),
        AssignmentFault::Unassigned {
            partition: tp("t", 3)
        }
    );
}
