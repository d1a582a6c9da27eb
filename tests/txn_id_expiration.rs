//! Transactional ids expire as with Kafka's `transactional.id.expiration.ms`: an id
//! with no open transaction whose state has not changed for the expiration is forgotten,
//! durably; an open transaction keeps its id; a producer whose id expired is told so, and
//! a new producer starts the id afresh.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use partlog::{
    Broker, BrokerConfig, ManualClock, Producer, ProducerConfig, ProducerRecord, TopicConfig,
    TransactionState,
};

const DAY: i64 = 24 * 3600 * 1000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Broker {
    Broker::open(
        dir,
        BrokerConfig {
            clock: clock.clone(),
            transactional_id_expiration: Duration::from_millis(7 * DAY as u64),
            ..BrokerConfig::default()
        },
    )
    .unwrap()
}

fn producer(broker: &Broker, id: &str) -> Producer {
    let p = broker.producer(ProducerConfig {
        transactional_id: Some(id.into()),
        transaction_timeout: Duration::from_millis((60 * DAY) as u64),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p
}

/// The ids the coordinator knows, with their states.
fn ids(broker: &Broker) -> Vec<(String, TransactionState)> {
    broker
        .transactions()
        .into_iter()
        .map(|t| (t.transactional_id, t.state))
        .collect()
}

#[test]
fn idle_transactional_ids_expire_and_stay_expired_and_open_ones_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let (old_id, a);
    {
        let broker = open(tmp.path(), &clock);
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        a = producer(&broker, "a");
        a.begin_transaction().unwrap();
        drop(a.send(ProducerRecord::new("t", b"1")).unwrap());
        a.commit_transaction().unwrap();
        let b = producer(&broker, "b");
        b.begin_transaction().unwrap();
        drop(b.send(ProducerRecord::new("t", b"2")).unwrap());
        b.flush().unwrap();
        clock.advance(DAY);
        let _c = producer(&broker, "c");
        old_id = broker.transactions()[0].producer_id;

        // a's last change was a day before c's init; b's transaction is open.
        clock.advance(6 * DAY - 1);
        assert_eq!(
            broker.expire_transactional_ids().unwrap(),
            Vec::<String>::new()
        );
        clock.advance(1);
        assert_eq!(broker.expire_transactional_ids().unwrap(), ["a"]);
        clock.advance(DAY);
        assert_eq!(broker.expire_transactional_ids().unwrap(), ["c"]);
        assert_eq!(ids(&broker), [("b".to_string(), TransactionState::Ongoing)]);

        // a's producer learns at its next transaction that its id is gone.
        a.begin_transaction().unwrap();
        drop(a.send(ProducerRecord::new("t", b"3")).unwrap());
        let err = a.flush().unwrap_err().to_string();
        assert!(
            err.contains("expired after transactional_id_expiration"),
            "{err}"
        );
        broker.close().unwrap();
    }
    // The tombstones are durable (b's transaction, left open by the closed process,
    // was aborted by the open); a new producer starts "a" afresh.
    let broker = open(tmp.path(), &clock);
    assert_eq!(
        ids(&broker),
        [("b".to_string(), TransactionState::CompleteAbort)]
    );
    let fresh = producer(&broker, "a");
    let t = broker
        .transactions()
        .into_iter()
        .find(|t| t.transactional_id == "a")
        .unwrap();
    assert_ne!(t.producer_id, old_id);
    assert_eq!((t.producer_epoch, t.state), (0, TransactionState::Empty));
    fresh.begin_transaction().unwrap();
    drop(fresh.send(ProducerRecord::new("t", b"4")).unwrap());
    fresh.commit_transaction().unwrap();
}

#[test]
fn the_background_thread_expires_transactional_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let broker = Broker::open(
        tmp.path(),
        BrokerConfig {
            clock: clock.clone(),
            transactional_id_expiration: Duration::from_millis(DAY as u64),
            transactional_id_expiration_check_interval: Duration::from_millis(20),
            ..BrokerConfig::default()
        },
    )
    .unwrap();
    let _p = producer(&broker, "idle");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(ids(&broker).len(), 1);
    clock.advance(DAY);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ids(&broker).is_empty() {
        assert!(std::time::Instant::now() < deadline, "not expired in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(broker.cleaner_error(), None);
    assert_eq!(
        broker.expire_transactional_ids().unwrap(),
        Vec::<String>::new()
    );
}
