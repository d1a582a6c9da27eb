//! Time of one rebalance for each assignor, with previous ownership present: one member
//! leaves and another joins a group whose members own a sticky assignment.
//!
//! - 16 members x 256 partitions: one topic, and 8 topics of 32 (equal subscriptions);
//!   sticky and cooperative-sticky also with mixed subscriptions (the general path);
//! - 100 members x 2000 partitions (20 topics of 100), sticky and cooperative-sticky,
//!   equal and mixed subscriptions, and mixed with lopsided previous ownership (most
//!   partitions move).
//!
//! `cargo bench --bench assignors`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use partlog::{
    Assignor, CooperativeStickyAssignor, MemberSubscription, RangeAssignor, RoundRobinAssignor,
    StickyAssignor, TopicPartition,
};

/// The input of a rebalance: partition counts and member subscriptions.
struct Scenario {
    partitions: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
}

/// `members` members over `topics` topics of `per_topic` partitions. The group held a
/// sticky assignment in generation 1; now member 0 has left and a new member joins.
fn scenario(members: usize, topics: usize, per_topic: i32, mixed: bool) -> Scenario {
    let names: Vec<String> = (0..topics).map(|t| format!("topic-{t:02}")).collect();
    let partitions = names.iter().map(|t| (t.clone(), per_topic)).collect();
    let subscription = |i: usize| -> Vec<String> {
        if mixed && topics > 1 {
            // Each member reads three topics next to "its" one.
            [0, 1, 3]
                .iter()
                .map(|d| names[(i + d) % topics].clone())
                .collect()
        } else {
            names.clone()
        }
    };
    let previous: Vec<MemberSubscription> = (0..members)
        .map(|i| MemberSubscription::new(format!("member-{i:03}"), subscription(i)))
        .collect();
    let owned = StickyAssignor.assign(&partitions, &previous);
    let mut current: Vec<MemberSubscription> = previous[1..]
        .iter()
        .map(|m| m.clone().owning(owned[&m.member_id].clone(), 1))
        .collect();
    current.push(MemberSubscription::new(
        format!("member-{members:03}"),
        subscription(members),
    ));
    Scenario {
        partitions,
        members: current,
    }
}

/// Mixed subscriptions where the previous ownership is as lopsided as it gets: every
/// member claims every partition of its topics, in its own generation, so the members
/// with the highest generations keep all their claims and the balancing has to move most
/// partitions, many along chains.
fn skewed(members: usize, topics: usize, per_topic: i32) -> Scenario {
    let mut s = scenario(members, topics, per_topic, true);
    for (i, m) in s.members.iter_mut().enumerate() {
        let owned = m
            .topics
            .iter()
            .flat_map(|t| (0..per_topic).map(move |p| TopicPartition::new(t.as_str(), p)))
            .collect();
        *m = m.clone().owning(owned, i as i32);
    }
    s
}

fn rebalance(c: &mut Criterion) {
    let all: [&dyn Assignor; 4] = [
        &RangeAssignor,
        &RoundRobinAssignor,
        &StickyAssignor,
        &CooperativeStickyAssignor,
    ];
    let sticky: [&dyn Assignor; 2] = [&StickyAssignor, &CooperativeStickyAssignor];
    let cases: [(&str, Scenario, &[&dyn Assignor]); 6] = [
        ("16x256/1-topic", scenario(16, 1, 256, false), &all),
        ("16x256/8-topics", scenario(16, 8, 32, false), &all),
        ("16x256/8-topics-mixed", scenario(16, 8, 32, true), &sticky),
        ("100x2000/20-topics", scenario(100, 20, 100, false), &sticky),
        (
            "100x2000/20-topics-mixed",
            scenario(100, 20, 100, true),
            &sticky,
        ),
        (
            "100x2000/20-topics-mixed-skewed",
            skewed(100, 20, 100),
            &sticky,
        ),
    ];
    let mut g = c.benchmark_group("assign");
    for (shape, input, assignors) in &cases {
        for assignor in assignors.iter() {
            g.bench_function(BenchmarkId::new(assignor.name(), shape), |b| {
                b.iter(|| black_box(assignor.assign(&input.partitions, &input.members)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, rebalance);
criterion_main!(benches);
