//! Hanging transactions (Kafka's `kafka-transactions.sh find-hanging` and `abort`): a
//! transactional batch written past the coordinator holds the partition's last stable
//! offset until `abort_hanging_transaction` ends it with an ABORT marker; a transaction
//! that a transactional id holds is listed with it and not aborted.

use std::time::Duration;

use partlog::record::ProducerInfo;
use partlog::{
    BatchBuilder, Broker, BrokerConfig, Codecs, Compression, ConsumerConfig, Error, IsolationLevel,
    OffsetReset, PartitionTransaction, Producer, ProducerConfig, ProducerRecord, TopicConfig,
    TopicPartition,
};

/// Appends a transactional batch of producer `producer_id` holding `value` to partition
/// `partition` of `t` directly, as a producer whose coordinator lost its state would
/// have left it.
fn append_past_the_coordinator(broker: &Broker, partition: i32, producer_id: i64, value: &[u8]) {
    let mut b = BatchBuilder::new(Compression::None)
        .producer(ProducerInfo {
            producer_id,
            producer_epoch: 3,
            base_sequence: 0,
        })
        .transactional(true);
    b.push(1_700_000_000_000, None, Some(value), &[]);
    let batch = b.build(&Codecs::default()).unwrap();
    let p = broker.partition("t", partition).unwrap();
    p.log().append(batch).unwrap();
}

/// Plain records sent to partition `partition` of `t`, one at a time.
fn send_plain(broker: &Broker, partition: i32, values: &[&str]) {
    let producer = broker.producer(ProducerConfig::default());
    for v in values {
        producer
            .send_blocking(ProducerRecord::new("t", v.as_bytes()).partition(partition))
            .unwrap();
    }
}

/// The values a `read_committed` consumer of partition `partition` of `t` reads from the
/// beginning, polling until nothing more comes.
fn read_committed(broker: &Broker, partition: i32) -> Vec<String> {
    let mut c = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::default()
    });
    c.assign(&[TopicPartition::new("t", partition)]).unwrap();
    let mut out = Vec::new();
    loop {
        let records = c.poll(Duration::from_millis(50)).unwrap();
        if records.is_empty() {
            return out;
        }
        out.extend(
            records
                .iter()
                .map(|r| String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap()),
        );
    }
}

/// A transactional producer with id `id`, initialised.
fn transactional(broker: &Broker, id: &str) -> Producer {
    let p = broker.producer(ProducerConfig {
        transactional_id: Some(id.into()),
        ..ProducerConfig::default()
    });
    p.init_transactions().unwrap();
    p
}

#[test]
fn a_hanging_transaction_is_found_and_its_abort_frees_the_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 2, TopicConfig::default()).unwrap();
    send_plain(&broker, 1, &["a", "b"]);
    append_past_the_coordinator(&broker, 1, 9_001, b"hanging");
    send_plain(&broker, 1, &["c"]);
    let hanging = PartitionTransaction {
        partition: TopicPartition::new("t", 1),
        producer_id: 9_001,
        producer_epoch: 3,
        start_offset: 2,
        transactional_id: None,
    };
    assert_eq!(broker.find_hanging_transactions(), vec![hanging.clone()]);
    assert_eq!(broker.partition_transactions(), vec![hanging.clone()]);
    // The last stable offset stays at the hanging batch: "c" is not read.
    assert_eq!(read_committed(&broker, 1), vec!["a", "b"]);

    let wrong = broker.abort_hanging_transaction("t", 1, 3).unwrap_err();
    assert!(
        matches!(&wrong, Error::NoOpenTransaction { topic, partition: 1, start_offset: 3, open }
            if topic == "t" && open == &vec![2]),
        "{wrong:?}"
    );
    assert_eq!(
        wrong.to_string(),
        "no transaction open on t-1 starts at offset 3 (open ones start at [2])"
    );
    let none = broker.abort_hanging_transaction("t", 0, 0).unwrap_err();
    assert!(
        matches!(&none, Error::NoOpenTransaction { partition: 0, open, .. } if open.is_empty()),
        "{none:?}"
    );
    assert!(matches!(
        broker.abort_hanging_transaction("t", 2, 0),
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        broker.abort_hanging_transaction("nope", 0, 0),
        Err(Error::UnknownTopic { .. })
    ));

    assert_eq!(
        broker.abort_hanging_transaction("t", 1, 2).unwrap(),
        hanging
    );
    assert_eq!(broker.find_hanging_transactions(), vec![]);
    assert_eq!(read_committed(&broker, 1), vec!["a", "b", "c"]);
    let p = broker.partition("t", 1).unwrap();
    assert_eq!(
        p.log_end_offset(),
        5,
        "a, b, the batch, c and the ABORT marker"
    );
    drop(p);

    // The marker is durable: after a reopen the transaction stays aborted.
    broker.close().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    assert_eq!(broker.find_hanging_transactions(), vec![]);
    assert_eq!(read_committed(&broker, 1), vec!["a", "b", "c"]);
}

#[test]
fn a_transaction_its_producer_holds_is_listed_with_its_id_and_not_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = transactional(&broker, "app");
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("t", b"live".as_slice()))
        .unwrap()
        .wait()
        .unwrap();
    let (producer_id, producer_epoch) = p.producer_id().unwrap();
    let listed = broker.partition_transactions();
    assert_eq!(
        listed,
        vec![PartitionTransaction {
            partition: TopicPartition::new("t", 0),
            producer_id,
            producer_epoch,
            start_offset: 0,
            transactional_id: Some("app".into()),
        }]
    );
    assert_eq!(broker.find_hanging_transactions(), vec![]);
    let err = broker.abort_hanging_transaction("t", 0, 0).unwrap_err();
    assert!(
        matches!(&err, Error::TransactionNotHanging { transactional_id, start_offset: 0, .. }
            if transactional_id == "app"),
        "{err:?}"
    );
    // Nothing was written: the producer commits its transaction as usual.
    p.commit_transaction().unwrap();
    assert_eq!(read_committed(&broker, 0), vec!["live"]);
    assert_eq!(broker.partition_transactions(), vec![]);
}

/// `send_offsets_to_transaction` on one thread racing `commit_transaction` on another:
/// the offsets either join the transaction before its markers or are refused. They used
/// to be able to land after the COMMIT marker (leaving `__consumer_offsets` with a
/// transaction that nothing ends), or to open a transaction of their own at the
/// coordinator after the commit, which the producer did not know it had.
#[test]
fn offsets_sent_during_a_commit_join_it_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
    broker.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = transactional(&broker, "racer");
    let offsets = std::collections::HashMap::from([(TopicPartition::new("t", 0), 1)]);
    for round in 0..60 {
        p.begin_transaction().unwrap();
        let record = p.send(ProducerRecord::new("t", b"x".as_slice())).unwrap();
        let start = std::sync::Barrier::new(2);
        let sent = std::thread::scope(|s| {
            let sender = s.spawn(|| {
                start.wait();
                p.send_offsets_to_transaction(&offsets, "g")
            });
            start.wait();
            match p.commit_transaction() {
                Ok(()) => {}
                // The offsets were refused half-way: the transaction can only be aborted.
                Err(Error::InvalidTxnState { .. }) => p.abort_transaction().unwrap(),
                Err(e) => panic!("round {round}: commit: {e}"),
            }
            sender.join().unwrap()
        });
        // Committed, or aborted after a refusal: either way, the record's batch landed.
        record.wait().unwrap();
        match sent {
            Ok(()) => {}
            Err(Error::InvalidTxnState { .. }) => {}
            Err(e) => panic!("round {round}: send_offsets_to_transaction: {e}"),
        }
        // Nothing is open anywhere once both calls have returned: offsets that landed
        // after the markers would be open on `__consumer_offsets`, hanging or held by a
        // transaction the producer does not know it has.
        assert_eq!(
            broker.partition_transactions(),
            vec![],
            "round {round}: offsets outlived the transaction"
        );
    }
}
