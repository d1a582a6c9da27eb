//! The command line and transactions: `transactions list` shows a transaction a crash
//! left open (reading the files, without recovering them), `consume
//! --isolation-level` hides aborted records under read_committed, and `transactions
//! find-hanging` and `abort` end a transaction no transactional id holds.
//!
//! The CLI is behind the `cli` feature: `cargo test --features cli --test transactions_cli`.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::Command;

use partlog::{Broker, BrokerConfig, ProducerConfig, ProducerRecord, TopicConfig};

fn partlog(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_partlog"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("the partlog binary runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn list_shows_an_open_transaction_and_consume_honours_the_isolation_level() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pid = {
        let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let p = broker.producer(ProducerConfig {
            transactional_id: Some("cli-app".into()),
            ..ProducerConfig::default()
        });
        p.init_transactions().unwrap();
        p.begin_transaction().unwrap();
        drop(p.send(ProducerRecord::new("t", b"committed")).unwrap());
        p.commit_transaction().unwrap();
        p.begin_transaction().unwrap();
        drop(p.send(ProducerRecord::new("t", b"aborted")).unwrap());
        p.abort_transaction().unwrap();
        p.begin_transaction().unwrap();
        drop(p.send(ProducerRecord::new("t", b"left-open")).unwrap());
        p.flush().unwrap();
        let pid = p.producer_id().unwrap().0;
        drop(p);
        drop(broker); // a crash: the transaction stays open on disk
        pid
    };
    let (ok, out, err) = partlog(dir, &["transactions", "list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "TRANSACTIONAL-ID\tPRODUCER-ID\tEPOCH\tSTATE\tSTART-MS\tTIMEOUT-MS\tPARTITIONS"
    );
    assert_eq!(lines.len(), 2, "{out}");
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(fields[0], "cli-app");
    assert_eq!(fields[1], pid.to_string());
    assert_eq!(fields[2], "0");
    assert_eq!(fields[3], "Ongoing");
    assert_eq!(fields[5], "60000");
    assert_eq!(fields[6], "t-0");

    // Any other command opens the directory, which aborts the open transaction.
    let (ok, out, err) = partlog(
        dir,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "committed\n");
    let (ok, out, _) = partlog(
        dir,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--isolation-level",
            "read_uncommitted",
        ],
    );
    assert!(ok);
    assert_eq!(out, "committed\naborted\nleft-open\n");
    let (ok, out, _) = partlog(dir, &["transactions", "list"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "nothing open any more: {out}");
    let (ok, out, _) = partlog(dir, &["transactions", "list", "--all"]);
    assert!(ok);
    assert!(out.contains("\tCompleteAbort\t"), "{out}");
    let (ok, _, err) = partlog(dir, &["consume", "t", "--isolation-level", "serializable"]);
    assert!(!ok);
    assert!(err.contains("read_committed"), "{err}");
}

/// `transactions find-hanging` lists a transactional batch that no transactional id
/// holds, `transactions abort` ends it, and `consume --isolation-level read_committed`
/// then reads past it.
#[test]
fn find_hanging_and_abort_free_a_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let broker = Broker::open(dir, BrokerConfig::default()).unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let mut b = partlog::BatchBuilder::new(partlog::Compression::None)
            .producer(partlog::record::ProducerInfo {
                producer_id: 777,
                producer_epoch: 0,
                base_sequence: 0,
            })
            .transactional(true);
        b.push(1_700_000_000_000, None, Some(b"hanging"), &[]);
        let batch = b.build(&partlog::Codecs::default()).unwrap();
        broker
            .partition("t", 0)
            .unwrap()
            .log()
            .append(batch)
            .unwrap();
        broker
            .producer(ProducerConfig::default())
            .send_blocking(ProducerRecord::new("t", b"after"))
            .unwrap();
        broker.close().unwrap();
    }
    let consume = [
        "consume",
        "t",
        "--from-beginning",
        "--isolation-level",
        "read_committed",
    ];
    let (ok, out, err) = partlog(dir, &consume);
    assert!(ok, "{err}");
    assert_eq!(out, "", "the hanging batch holds the last stable offset");
    let (ok, out, err) = partlog(dir, &["transactions", "find-hanging"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tSTART-OFFSET\nt\t0\t777\t0\t0\n"
    );
    let abort = ["transactions", "abort", "--topic", "t", "--partition", "0"];
    let (ok, _, err) = partlog(dir, &[&abort[..], &["--start-offset", "1"]].concat());
    assert!(!ok);
    assert!(
        err.contains("no transaction open on t-0 starts at offset 1 (open ones start at [0])"),
        "{err}"
    );
    let (ok, out, err) = partlog(dir, &[&abort[..], &["--start-offset", "0"]].concat());
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Aborted the transaction of producer 777 (epoch 0) on t-0 starting at offset 0.\n"
    );
    let (ok, out, err) = partlog(dir, &["transactions", "find-hanging"]);
    assert!(ok, "{err}");
    assert_eq!(out, "TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tSTART-OFFSET\n");
    let (ok, out, err) = partlog(dir, &consume);
    assert!(ok, "{err}");
    assert_eq!(out, "after\n");
}
