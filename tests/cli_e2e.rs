//! The `partlog` binary driven as a shell user drives it: arguments, stdin, stdout,
//! stderr and exit codes. Runs with `cargo test --features cli`; without the feature the
//! binary is not built and this file compiles to nothing.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a run of the binary left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success; stderr:\n{}", self.stderr);
        self.stdout
    }

    /// Asserts the exit code and returns stderr.
    #[track_caller]
    fn fails(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

/// Runs `partlog [--data-dir DIR] ARGS` with `stdin` on its standard input.
fn partlog(dir: Option<&Path>, args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_partlog"));
    if let Some(dir) = dir {
        cmd.arg("--data-dir").arg(dir);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the partlog binary runs");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("partlog exits");
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

/// `partlog --data-dir DIR ARGS` with empty stdin.
fn run(dir: &Path, args: &[&str]) -> Run {
    partlog(Some(dir), args, "")
}

fn golden_segment() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-golden/00000000000000000000.log")
}

/// A writable copy of the golden segment as partition `golden-0` of a data directory.
fn golden_data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("golden-0");
    std::fs::create_dir(&part).unwrap();
    let copy = part.join("00000000000000000000.log");
    std::fs::copy(golden_segment(), &copy).unwrap();
    let mut perms = std::fs::metadata(&copy).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&copy, perms).unwrap();
    tmp
}

/// The value of record i of a golden data batch: `value-i-` padded with `x` to 48 bytes.
fn golden_value(i: usize) -> String {
    format!("{:x<48}", format!("value-{i}-"))
}

#[test]
fn topics_create_list_describe_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(
        dir,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "2",
            "--compression",
            "lz4",
            "--config",
            "segment.bytes=1048576",
            "--config",
            "retention.ms=-1",
        ],
    )
    .ok();
    assert_eq!(out, "Created topic orders.\n");
    run(dir, &["topics", "create", "audit", "--partitions", "1"]).ok();
    assert_eq!(run(dir, &["topics", "list"]).ok(), "audit\norders\n");

    let describe = run(dir, &["topics", "describe", "orders"]).ok();
    let lines: Vec<&str> = describe.lines().collect();
    assert_eq!(lines[0], "Topic: orders\tPartitionCount: 2");
    for config in [
        "segment.bytes=1048576",
        "retention.ms=-1",
        "compression.type=lz4",
        "cleanup.policy=delete",
    ] {
        assert!(
            lines.contains(&format!("\tConfig: {config}").as_str()),
            "{config} missing from:\n{describe}"
        );
    }
    let partitions: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("Partition: "))
        .collect();
    assert_eq!(
        partitions,
        [
            "\tTopic: orders\tPartition: 0\tLogStartOffset: 0\tLogEndOffset: 0\tSize: 0\tSegments: 1\tDirtyRatio: 0.000",
            "\tTopic: orders\tPartition: 1\tLogStartOffset: 0\tLogEndOffset: 0\tSize: 0\tSegments: 1\tDirtyRatio: 0.000",
        ]
    );

    let err = run(dir, &["topics", "create", "orders", "--partitions", "1"]).fails(1);
    assert!(err.contains(r#"topic "orders" already exists"#), "{err}");

    assert_eq!(run(dir, &["topics", "delete", "orders"]).ok(), "");
    assert_eq!(run(dir, &["topics", "list"]).ok(), "audit\n");
    assert!(!dir.join("orders-0").exists());
    let err = run(dir, &["topics", "describe", "orders"]).fails(1);
    assert!(err.contains(r#"unknown topic "orders""#), "{err}");
}

#[test]
fn topics_clean_compacts_now_and_describe_shows_the_dirty_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let create = [
        "topics",
        "create",
        "c",
        "--partitions",
        "1",
        "--config",
        "cleanup.policy=compact",
        "--config",
        "segment.bytes=100",
    ];
    run(dir, &create).ok();
    let sep = ["produce", "c", "--key-separator", ":"];
    partlog(Some(dir), &sep, "k1:a\nk2:b\nk1:c\n").ok();
    // The next batch does not fit the 100-byte segment: the first one is sealed.
    partlog(Some(dir), &sep, "k2:d\n").ok();
    let describe = run(dir, &["topics", "describe", "c"]).ok();
    assert!(
        describe.contains("\tSegments: 2\tDirtyRatio: 1.000"),
        "{describe}"
    );

    let out = run(dir, &["topics", "clean", "c"]).ok();
    assert_eq!(
        out,
        "Topic: c\tPartition: 0\tDeletedSegments: 0\tLogStartOffset: 0\tCompactedSegments: 1\tRemovedRecords: 1\n"
    );
    let describe = run(dir, &["topics", "describe", "c"]).ok();
    assert!(describe.contains("\tDirtyRatio: 0.000"), "{describe}");
    let all = run(
        dir,
        &[
            "consume",
            "c",
            "--from-beginning",
            "--print-key",
            "--print-offset",
        ],
    )
    .ok();
    assert_eq!(all, "0:1\tk2\tb\n0:2\tk1\tc\n0:3\tk2\td\n");

    let err = partlog(Some(dir), &["produce", "c"], "no-key\n").fails(1);
    assert!(
        err.contains("cannot accept a record without a key"),
        "{err}"
    );
    let err = run(dir, &["topics", "clean", "nope"]).fails(1);
    assert!(err.contains(r#"unknown topic "nope""#), "{err}");
}

#[test]
fn topics_create_rejects_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let create = |extra: &[&str]| {
        let mut args = vec!["topics", "create", "t", "--partitions", "1"];
        args.extend_from_slice(extra);
        run(dir, &args)
    };
    let err = create(&["--config", "retention.hours=1"]).fails(2);
    assert!(err.contains("retention.hours"), "{err}");
    let err = create(&["--config", "segment.bytes=-5"]).fails(2);
    assert!(err.contains("segment.bytes"), "{err}");
    let err = create(&["--config", "segment.bytes"]).fails(2);
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = create(&["--compression", "brotli"]).fails(2);
    assert!(err.contains("brotli"), "{err}");
    let err = run(dir, &["topics", "create", "t", "--partitions", "0"]).fails(2);
    assert!(err.contains("--partitions"), "{err}");
    assert_eq!(run(dir, &["topics", "list"]).ok(), "");
}

#[test]
fn produce_then_consume_with_keys_and_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "t", "--partitions", "1"]).ok();
    let stdin = "a\nb\r\n\nc";
    assert_eq!(partlog(Some(dir), &["produce", "t"], stdin).ok(), "");
    let keyed = "k1:v1\nk2:v2:with:colons\n:empty-key\n";
    partlog(Some(dir), &["produce", "t", "--key-separator", ":"], keyed).ok();

    let all = run(
        dir,
        &[
            "consume",
            "t",
            "--from-beginning",
            "--print-key",
            "--print-offset",
        ],
    )
    .ok();
    assert_eq!(
        all,
        "0:0\tnull\ta\n0:1\tnull\tb\n0:2\tnull\t\n0:3\tnull\tc\n\
         0:4\tk1\tv1\n0:5\tk2\tv2:with:colons\n0:6\t\tempty-key\n"
    );
    let first = run(
        dir,
        &["consume", "t", "--from-beginning", "--max-messages", "2"],
    )
    .ok();
    assert_eq!(first, "a\nb\n");
    let from = run(dir, &["consume", "t", "--partition", "0", "--offset", "4"]).ok();
    assert_eq!(from, "v1\nv2:with:colons\nempty-key\n");
    let keyed = run(
        dir,
        &[
            "consume",
            "t",
            "--partition",
            "0",
            "--offset",
            "5",
            "--print-key",
        ],
    )
    .ok();
    assert_eq!(keyed, "k2\tv2:with:colons\n\tempty-key\n");
    // Without --from-beginning a consumer starts at the end: nothing to print, and it exits.
    assert_eq!(run(dir, &["consume", "t"]).ok(), "");

    let err = run(dir, &["consume", "t", "--partition", "0", "--offset", "99"]).fails(1);
    assert!(err.contains("offset 99 is out of range for t-0"), "{err}");
    assert!(err.contains("0..=7"), "{err}");
}

#[test]
fn produce_to_a_partition_and_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "p", "--partitions", "3"]).ok();
    partlog(Some(dir), &["produce", "p", "--partition", "2"], "x\ny\n").ok();
    let two = run(
        dir,
        &["consume", "p", "--partition", "2", "--offset", "earliest"],
    )
    .ok();
    assert_eq!(two, "x\ny\n");
    // One key always lands in one partition (Kafka's murmur2 partitioner).
    partlog(
        Some(dir),
        &["produce", "p", "--key-separator", "="],
        "k=1\nk=2\nk=3\n",
    )
    .ok();
    let mut ends = [0, 0, 2];
    ends[partlog::partition_for_key(b"k", 3) as usize] += 3;
    let expected: String = (0..3).map(|p| format!("p:{p}:{}\n", ends[p])).collect();
    assert_eq!(run(dir, &["offsets", "p"]).ok(), expected);
    let err = partlog(Some(dir), &["produce", "p", "--partition", "3"], "z\n").fails(1);
    assert!(err.contains("no partition 3"), "{err}");
}

#[test]
fn produce_rejects_a_line_without_the_separator() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "t", "--partitions", "1"]).ok();
    let stdin = "k:v\nno separator here\nk:never\n";
    let err = partlog(Some(dir), &["produce", "t", "--key-separator", ":"], stdin).fails(1);
    assert!(err.contains("line 2 has no key separator \":\""), "{err}");
    // The line before it was produced, as Kafka's console producer would have sent it.
    let all = run(dir, &["consume", "t", "--from-beginning", "--print-key"]).ok();
    assert_eq!(all, "k\tv\n");
}

#[test]
fn consume_with_a_group_resumes_and_groups_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "t", "--partitions", "2"]).ok();
    let lines: String = (0..10).map(|i| format!("v{i}\n")).collect();
    partlog(Some(dir), &["produce", "t", "--partition", "0"], &lines).ok();
    partlog(Some(dir), &["produce", "t", "--partition", "1"], "w0\nw1\n").ok();
    let group = |extra: &[&str]| {
        let mut args = vec![
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--print-offset",
        ];
        args.extend_from_slice(extra);
        run(dir, &args).ok()
    };
    let first = group(&["--max-messages", "5"]);
    let second = group(&["--max-messages", "5"]);
    let rest = group(&[]);
    let mut all: Vec<&str> = first
        .lines()
        .chain(second.lines())
        .chain(rest.lines())
        .collect();
    assert_eq!(first.lines().count(), 5, "{first}");
    assert_eq!(second.lines().count(), 5, "{second}");
    all.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("0:{i}\tv{i}")).collect();
    expected.extend(["1:0\tw0".to_string(), "1:1\tw1".to_string()]);
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(group(&[]), "");

    assert_eq!(run(dir, &["groups", "list"]).ok(), "g\n");
    let described = run(dir, &["groups", "describe", "g"]).ok();
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID"
            ],
            vec!["g", "t", "0", "10", "10", "0", "-"],
            vec!["g", "t", "1", "2", "2", "0", "-"],
        ]
    );
    let reset = run(
        dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-offset",
            "8",
        ],
    )
    .ok();
    assert_eq!(
        reset,
        "TOPIC  PARTITION  NEW-OFFSET\nt      0          8\nt      1          2\n"
    );
    assert_eq!(group(&[]), "0:8\tv8\n0:9\tv9\n");
    run(
        dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
    )
    .ok();
    assert_eq!(group(&["--max-messages", "1"]).lines().count(), 1);
    run(
        dir,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "0",
        ],
    )
    .ok();
    let err = run(dir, &["groups", "reset-offsets", "g", "--topic", "t"]).fails(2);
    assert!(err.contains("--to-earliest"), "{err}");
    let deleted = run(dir, &["groups", "delete", "g"]).ok();
    assert!(deleted.contains("'g'"), "{deleted}");
    assert_eq!(run(dir, &["groups", "list"]).ok(), "");
    let err = run(dir, &["groups", "describe", "g"]).fails(1);
    assert!(err.contains("unknown group \"g\""), "{err}");
    let err = run(dir, &["consume", "t", "--group", "g", "--partition", "0"]).fails(2);
    assert!(err.contains("--partition"), "{err}");
}

#[test]
fn consume_and_offsets_on_a_kafka_written_partition() {
    let tmp = golden_data_dir();
    let dir = tmp.path();
    let head = run(
        dir,
        &[
            "consume",
            "golden",
            "--from-beginning",
            "--print-key",
            "--print-offset",
            "--max-messages",
            "3",
        ],
    )
    .ok();
    let expected = format!(
        "0:0\tkey-0\t{}\n0:1\tkey-1\tnull\n0:2\tkey-2\t{}\n",
        golden_value(0),
        golden_value(2)
    );
    assert_eq!(head, expected);
    // All 28 data records; the ABORT marker at offset 28 is a control record, not printed.
    let all = run(
        dir,
        &["consume", "golden", "--from-beginning", "--print-offset"],
    )
    .ok();
    assert_eq!(all.lines().count(), 28);
    assert!(
        all.ends_with(&format!("0:27\t{}\n", golden_value(2))),
        "{all}"
    );

    let offsets = |time: &str| run(dir, &["offsets", "golden", "--time", time]).ok();
    assert_eq!(run(dir, &["offsets", "golden"]).ok(), "golden:0:29\n");
    assert_eq!(offsets("latest"), "golden:0:29\n");
    assert_eq!(offsets("earliest"), "golden:0:0\n");
    assert_eq!(offsets("-2"), "golden:0:0\n");
    assert_eq!(offsets("1700000000020"), "golden:0:2\n");
    assert_eq!(offsets("1700000000041"), "golden:0:28\n");
    // No record at or after this time: the log end offset.
    assert_eq!(offsets("1800000000000"), "golden:0:29\n");
    let err = run(dir, &["offsets", "golden", "--time", "yesterday"]).fails(2);
    assert!(err.contains("yesterday"), "{err}");
}

#[test]
fn dump_prints_the_golden_segment_like_kafka_dump_log() {
    let path = golden_segment();
    let path = path.to_str().unwrap();
    let run = partlog(None, &["dump", path, "--verify", "--print-records"], "");
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Dumping {path}"));
    assert_eq!(lines[1], "Log starting offset: 0");
    assert_eq!(
        lines[2],
        "baseOffset: 0 lastOffset: 4 count: 5 baseSequence: -1 lastSequence: -1 producerId: -1 \
         producerEpoch: -1 partitionLeaderEpoch: 7 isTransactional: false isControl: false \
         deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000040 size: 324 \
         magic: 2 compresscodec: none crc: 2653775446 isvalid: true"
    );
    assert_eq!(
        lines[3],
        format!(
            "| offset: 0 CreateTime: 1700000000000 keySize: 5 valueSize: 48 sequence: -1 \
             headerKeys: [] key: key-0 payload: {}",
            golden_value(0)
        )
    );
    // A tombstone prints no payload; headers print their keys.
    assert_eq!(
        lines[4],
        "| offset: 1 CreateTime: 1700000000010 keySize: 5 valueSize: -1 sequence: -1 \
         headerKeys: [] key: key-1"
    );
    assert_eq!(
        lines[5],
        format!(
            "| offset: 2 CreateTime: 1700000000020 keySize: 5 valueSize: 48 sequence: -1 \
             headerKeys: [h1,h2] key: key-2 payload: {}",
            golden_value(2)
        )
    );
    assert!(out.contains(
        "baseOffset: 25 lastOffset: 27 count: 3 baseSequence: 0 lastSequence: 2 \
         producerId: 1234 producerEpoch: 3 partitionLeaderEpoch: 7 isTransactional: true"
    ));
    assert!(
        out.contains(
            "| offset: 26 CreateTime: 1700000000010 keySize: 5 valueSize: -1 sequence: 1 "
        )
    );
    assert_eq!(
        lines.last().unwrap(),
        &"| offset: 28 CreateTime: 1700000000999 keySize: 4 valueSize: 6 sequence: -1 \
          headerKeys: [] endTxnMarker: ABORT coordinatorEpoch: 42"
    );
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            out.contains(&format!(" compresscodec: {codec} ")),
            "{codec} missing"
        );
    }
    assert_eq!(out.matches(" isvalid: true").count(), 7);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("| offset: ")).count(),
        29
    );

    // Without --print-records: the batch lines only.
    let batches = partlog(None, &["dump", path], "").ok();
    assert_eq!(batches.lines().count(), 2 + 7);
}

#[test]
fn dump_verify_names_the_position_of_a_corrupt_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(golden_segment()).unwrap();
    // A byte inside the snappy batch's payload, which starts at position 486.
    bytes[486 + 70] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    let copy = copy.to_str().unwrap();
    let run = partlog(None, &["dump", "--verify", copy], "");
    assert!(run.stdout.contains("position: 486 "), "{}", run.stdout);
    assert!(run.stdout.contains("isvalid: false"), "{}", run.stdout);
    let err = run.fails(1);
    assert!(
        err.contains(&format!("{copy}: position 486: CRC-32C mismatch")),
        "{err}"
    );

    // A torn tail: the last batch cut short.
    std::fs::write(tmp.path().join("00000000000000000000.log"), &bytes[..1100]).unwrap();
    let run = partlog(None, &["dump", "--verify", copy], "");
    assert!(
        run.stdout
            .contains("Found 94 invalid bytes at the end of 00000000000000000000.log")
    );
    let err = run.fails(1);
    assert!(err.contains("position 1006"), "{err}");
}

#[test]
fn dump_verifies_a_partition_directory_written_by_partlog() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(
        dir,
        &[
            "topics",
            "create",
            "small",
            "--partitions",
            "1",
            "--compression",
            "gzip",
            "--config",
            "segment.bytes=2048",
            "--config",
            "index.interval.bytes=128",
        ],
    )
    .ok();
    let lines: String = (0..300)
        .map(|i| format!("key-{i}:value-{i}-{i:>40}\n"))
        .collect();
    partlog(
        Some(dir),
        &["produce", "small", "--key-separator", ":"],
        &lines,
    )
    .ok();
    partlog(
        Some(dir),
        &["produce", "small", "--key-separator", ":"],
        &lines,
    )
    .ok();

    let part = dir.join("small-0");
    let run = partlog(None, &["dump", part.to_str().unwrap(), "--verify"], "");
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
    let out = run.ok();
    let segments = std::fs::read_dir(&part)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert!(segments > 1, "segment.bytes=2048 rolls");
    assert_eq!(out.matches("Log starting offset: ").count(), segments);
    assert!(
        out.lines()
            .any(|l| l.starts_with("offset: ") && l.contains(" position: "))
    );
    assert!(out.lines().any(|l| l.starts_with("timestamp: ")));
    assert!(out.contains(" compresscodec: gzip "));
    assert!(!out.contains("isvalid: false"));
    // dump refuses --data-dir: it reads files, never a broker.
    let err = partlog(Some(dir), &["dump", part.to_str().unwrap()], "").fails(2);
    assert!(err.contains("no --data-dir"), "{err}");
}

/// Every file of a directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn dump_reads_a_directory_another_process_holds_without_changing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "live", "--partitions", "1"]).ok();
    let lines: String = (0..2000).map(|i| format!("record {i:>60}\n")).collect();
    partlog(Some(dir), &["produce", "live"], &lines).ok();

    // A following consumer holds the directory's lock, with the active segment's
    // indexes preallocated and mapped.
    let follower = Command::new(env!("CARGO_BIN_EXE_partlog"))
        .arg("--data-dir")
        .arg(dir)
        .args(["consume", "live", "--from-beginning", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut follower = KillOnDrop(follower);
    // Kept open to the end: a closed pipe would make the follower exit and unlock.
    let mut output = BufReader::new(follower.0.stdout.take().unwrap());
    let mut first = String::new();
    output.read_line(&mut first).unwrap();
    assert_eq!(first, format!("record {:>60}\n", 0));
    let err = run(dir, &["topics", "list"]).fails(1);
    assert!(err.contains("locked"), "{err}");

    let part = dir.join("live-0");
    let before = snapshot(&part);
    let run = partlog(None, &["dump", "--verify", part.to_str().unwrap()], "");
    assert!(run.stderr.contains("no problems"), "{}", run.stderr);
    let out = run.ok();
    assert!(out.lines().any(|l| l.starts_with("offset: ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("timestamp: ")), "{out}");
    assert_eq!(snapshot(&part), before, "dump changed a file");
    drop(follower);
    drop(output);
}

/// Kills a child process when dropped, so a failing test leaves none behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // The child may have exited already; either way it is gone afterwards.
        let _killed = self.0.kill();
        let _reaped = self.0.wait();
    }
}

#[test]
fn perf_produce_and_consume_report_rates_and_percentiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "bench", "--partitions", "2"]).ok();
    let produce = run(
        dir,
        &[
            "perf",
            "produce",
            "bench",
            "--num-records",
            "2000",
            "--record-size",
            "100",
            "--compression",
            "snappy",
        ],
    )
    .ok();
    for field in [
        "2000 records sent, ",
        " records/sec (",
        " MB/sec), ",
        " ms avg latency, ",
        " ms max latency, ",
        " ms 50th, ",
        " ms 99th, ",
        " ms 99.9th.",
        "latency: per record, from the send() call",
    ] {
        assert!(
            produce.contains(field),
            "{field:?} missing from:\n{produce}"
        );
    }
    let started = Instant::now();
    let throttled = run(
        dir,
        &[
            "perf",
            "produce",
            "bench",
            "--num-records",
            "100",
            "--record-size",
            "10",
            "--throughput",
            "1000",
        ],
    )
    .ok();
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "1000/s throttles 100 records"
    );
    assert!(throttled.starts_with("100 records sent, "), "{throttled}");
    assert_eq!(run(dir, &["offsets", "bench"]).ok().lines().count(), 2);

    let consume = run(dir, &["perf", "consume", "bench", "--num-records", "2100"]).ok();
    for field in [
        "2100 records received, ",
        " records/sec (",
        " MB/sec), ",
        " ms max poll latency, ",
        " ms 50th, ",
        " ms 99th, ",
        " ms 99.9th.",
    ] {
        assert!(
            consume.contains(field),
            "{field:?} missing from:\n{consume}"
        );
    }
}

#[test]
fn errors_go_to_stderr_with_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run(dir, &["topics", "create", "t", "--partitions", "1"]).ok();
    for args in [
        &["consume", "nope", "--from-beginning"][..],
        &["offsets", "nope"],
        &["topics", "describe", "nope"],
        &["topics", "delete", "nope"],
        &["perf", "consume", "nope", "--num-records", "1"],
    ] {
        let run = run(dir, args);
        assert_eq!(run.stdout, "", "{args:?}");
        let err = run.fails(1);
        assert_eq!(err, "error: unknown topic \"nope\"\n", "{args:?}");
    }
    let err = partlog(Some(dir), &["produce", "nope"], "x\n").fails(1);
    assert!(err.contains(r#"unknown topic "nope""#), "{err}");

    let missing = tmp.path().join("missing");
    let err = run(&missing, &["topics", "list"]).fails(1);
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        !missing.exists(),
        "a read-only command creates no directory"
    );
    let err = partlog(None, &["topics", "list"], "").fails(2);
    assert!(err.contains("--data-dir"), "{err}");
    let err = partlog(None, &["dump", "/nonexistent/00000000000000000000.log"], "").fails(1);
    assert!(
        err.contains("/nonexistent/00000000000000000000.log"),
        "{err}"
    );
    let err = partlog(None, &["bogus"], "").fails(2);
    assert!(err.contains("bogus"), "{err}");
}
