//! End-to-end latency from a producer thread's `send_blocking` to a consumer thread
//! receiving the record, for each wait strategy, beside the floor of a bare
//! condition-variable wake-up between two threads and of a bare spin on an atomic, all in
//! the same run.
//!
//! Parked consumers and the condition-variable floor run in one run, their messages
//! alternating on one writer thread, so that the host's hiccups fall on both alike; so
//! do the spin floor and a partlog consumer polled (`poll` with no timeout) in the same
//! spinning loop of one reader thread, beside the row of the busy-spin wait strategy
//! itself. Both floors queue their messages, as the log does, so that a reader that
//! wakes late times every message it missed instead of dropping the slowest samples.
//!
//! Where the OS runs a woken thread decides what a wake-up costs, so the parking rows
//! run twice: as the OS places the threads, and pinned to two different CPUs. Left to
//! itself, Linux often runs the woken reader on the CPU of the writer, which is about
//! to sleep: a hand-over on one CPU (a few µs). On two CPUs, the idle one must be woken
//! by an interrupt, which on a virtual machine goes through the hypervisor (tens of µs);
//! that is what a reader pays whose writer's CPU stays busy. Busy-spinning readers keep
//! their CPU, so their rows need no second placement.
//!
//! Prints p50, p99 and p99.9 in microseconds (hdrhistogram) for each of five interleaved
//! rounds, then the median of each over the rounds and the target ratios. Last,
//! `send_blocking` alone (no consumer) in nanoseconds: after a pause as in the rows
//! above, and right after another `send_blocking`, which shows what a sending thread
//! that has just slept pays for its cold caches; with the page faults each round's calls
//! took (`getrusage`), which the segment's preparer keeps off the sending thread.
//!
//! A busy-spinning reader's latency is also split in two: up to the moment it sees the
//! log end offset move, then its `poll`. And it runs once more with a writer that spins
//! between messages instead of sleeping, so that its caches stay warm: what a
//! latency-critical pair of threads, each on its own CPU, would see.
//!
//! Last, `send_blocking`, `Log::append` of one batch, `Log::append_batches` of the same
//! batch alone and a consumer's `poll` of the record just sent, each timed with every
//! cache flushed just before it: the weight of the cache lines and pages each call
//! touches.
//!
//! `cargo bench --bench latency` (about 6 minutes); `cargo bench --bench latency -- TEXT...`
//! runs the runs that have a row whose name contains one of the TEXTs (`busy-spin`,
//! `2 CPUs`, `alone`, `cold`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::{Condvar, Mutex};
use partlog::record::ProducerInfo;
use partlog::{BatchBuilder, Codecs, Compression, EncodedBatch, Log, LogConfig};
use partlog::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, ProducerConfig,
    ProducerRecord, TopicConfig, WaitStrategy,
};

const SAMPLES: usize = 20_000;
const WARMUP: usize = 2_000;
/// Interleaved rounds; the summary is the median of each percentile over them.
const ROUNDS: usize = 5;
/// Pause between messages, so that each one finds the consumer waiting.
const GAP: Duration = Duration::from_micros(50);

/// Nanoseconds since `base`, carried in the record so the consumer can time it.
fn stamp(base: Instant) -> [u8; 8] {
    (base.elapsed().as_nanos() as u64).to_be_bytes()
}

/// The stamp `r` carries: when it was sent, in nanoseconds since the run's base.
fn sent_at(r: &ConsumerRecord) -> u64 {
    u64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap())
}

/// CPU time the hypervisor took from this virtual machine's CPUs so far (the `steal`
/// column of `/proc/stat`, all CPUs), in milliseconds; `None` where there is no such file.
/// A spinning reader whose virtual CPU is taken away stalls for milliseconds, so a row's
/// tail is only comparable with its neighbours' when the steal during each was alike.
fn steal_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let steal: u64 = cpu.split_whitespace().nth(8)?.parse().ok()?;
    // In clock ticks (USER_HZ).
    #[allow(unsafe_code)]
    // SAFETY: `sysconf` reads a constant of the system; no memory is passed.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    Some(steal * 1000 / hz.max(1))
}

/// Sleeps between messages, leaving the CPU to the threads under test (a spinning pause
/// would occupy one of this machine's two cores).
fn pause(gap: Duration) {
    thread::sleep(gap);
}

/// Where the two threads of a row run.
#[derive(Clone, Copy)]
enum Placement {
    /// Wherever the OS puts them.
    Os,
    /// The writer on the first CPU, the reader on the second.
    TwoCpus([usize; 2]),
}

impl Placement {
    /// Pins the calling thread to the CPU of its side (`reader` or writer), if asked.
    fn pin(self, reader: bool) {
        if let Placement::TwoCpus(cpus) = self {
            pin_to(cpus[usize::from(reader)]);
        }
    }
}

/// The first two CPUs this process may run on, if it may run on two.
fn two_cpus() -> Option<[usize; 2]> {
    #[allow(unsafe_code)]
    // SAFETY: `set` is a plain bit set that the kernel fills, passed with its size; pid 0
    // means the calling thread; `CPU_ISSET` reads inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set));
        Some([cpus.next()?, cpus.next()?])
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    #[allow(unsafe_code)]
    // SAFETY: `set` is a plain bit set, zeroed and filled by libc's own macro, and is
    // passed with its size; pid 0 means the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "pinning to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

/// The partlog consumer's reader thread: polls until `SAMPLES + WARMUP` records have
/// come and times each from the stamp it carries.
fn partlog_reader(
    mut consumer: Consumer,
    base: Instant,
    placement: Placement,
) -> thread::JoinHandle<Histogram<u64>> {
    thread::spawn(move || {
        placement.pin(true);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut n = 0;
        while n < SAMPLES + WARMUP {
            for r in consumer.poll(Duration::from_secs(5)).unwrap() {
                let sent = sent_at(&r);
                let now = base.elapsed().as_nanos() as u64;
                if n >= WARMUP {
                    h.record((now - sent) / 1000).unwrap();
                }
                n += 1;
            }
        }
        h
    })
}

/// A broker in a fresh directory with one topic, `lat`, of one partition, and a consumer
/// of it from the beginning that waits by `strategy`.
fn lat_topic(strategy: WaitStrategy) -> (tempfile::TempDir, Broker, Consumer) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("lat", 1, TopicConfig::default())
        .unwrap();
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        wait_strategy: strategy,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["lat"]).unwrap();
    (dir, broker, consumer)
}

/// Waits `gap` on the CPU, for a writer that stays hot between messages (as a
/// latency-critical writer beside a busy-spinning reader would).
fn spin_pause(gap: Duration) {
    let until = Instant::now() + gap;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn partlog_latency(strategy: WaitStrategy, placement: Placement) -> Histogram<u64> {
    partlog_latency_with(strategy, placement, pause)
}

/// `partlog_latency` with the writer waiting between messages by `writer_pause`.
fn partlog_latency_with(
    strategy: WaitStrategy,
    placement: Placement,
    writer_pause: fn(Duration),
) -> Histogram<u64> {
    let (_dir, broker, consumer) = lat_topic(strategy);
    let base = Instant::now();
    let reader = partlog_reader(consumer, base, placement);
    let producer = broker.producer(ProducerConfig::default());
    // The writer runs on a thread of its own, so that pinning it leaves the main
    // thread's placement alone.
    thread::scope(|s| {
        s.spawn(|| {
            placement.pin(false);
            for _ in 0..SAMPLES + WARMUP {
                let v = stamp(base);
                producer
                    .send_blocking(ProducerRecord::new("lat", &v))
                    .unwrap();
                writer_pause(GAP);
            }
        });
    });
    let h = reader.join().unwrap();
    drop(producer);
    broker.close().unwrap();
    h
}

/// Page faults the calling thread has taken so far (minor and major), where
/// `getrusage` can tell.
fn thread_faults() -> Option<u64> {
    #[allow(unsafe_code)]
    // SAFETY: `usage` is a plain struct the kernel fills; `RUSAGE_THREAD` asks for the
    // calling thread's figures.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
            return None;
        }
        u64::try_from(usage.ru_minflt + usage.ru_majflt).ok()
    }
}

/// `send_blocking` alone, in nanoseconds: each call timed after a pause of `GAP` or, when
/// `back_to_back`, right after an untimed call. Also returns the page faults the thread
/// took over all its calls (warm-up included): a store into a page the segment has not
/// prepared, or the first entry in a page of an index.
fn send_blocking_alone(back_to_back: bool) -> (Histogram<u64>, Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
    broker
        .create_topic("alone", 1, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let mut h = Histogram::<u64>::new(3).unwrap();
    let v = [0u8; 8];
    let faults_before = thread_faults();
    for n in 0..SAMPLES + WARMUP {
        if back_to_back {
            producer
                .send_blocking(ProducerRecord::new("alone", &v))
                .unwrap();
        }
        let t = Instant::now();
        producer
            .send_blocking(ProducerRecord::new("alone", &v))
            .unwrap();
        let ns = t.elapsed().as_nanos() as u64;
        if n >= WARMUP {
            h.record(ns).unwrap();
        }
        pause(GAP);
    }
    let faults = faults_before
        .zip(thread_faults())
        .map(|(before, after)| after - before);
    drop(producer);
    broker.close().unwrap();
    (h, faults)
}

/// Samples of each row with the caches flushed.
const COLD_SAMPLES: usize = 1_500;
/// Bytes written between two calls timed with the caches flushed: more than this
/// machine's last-level cache (32 MiB), so that the call finds none of its code, data or
/// page-table entries cached.
const FLUSH_BYTES: usize = 64 << 20;

/// Writes a byte of every cache line of `buf`.
#[inline(never)]
fn flush_caches(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    std::hint::black_box(&buf[0]);
}

/// A one-record batch of idempotent producer 7 with sequence `seq`, as `send_blocking`
/// builds one.
fn idempotent_batch(seq: i32) -> EncodedBatch {
    let mut b = BatchBuilder::new(Compression::None).producer(ProducerInfo {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: seq,
    });
    b.push(1_700_000_000_000, None, Some(&[0u8; 8]), &[]);
    b.build(&Codecs::default()).unwrap()
}

/// Calls timed in nanoseconds with every cache flushed just before (`FLUSH_BYTES`
/// written), in turn: `send_blocking`; `Log::append` of a one-record idempotent batch
/// (the log's own path for one batch); `Log::append_batches` of the same batch alone in
/// a list (the general path); and a consumer's `poll` of the record that `send_blocking`
/// wrote (the reader's side of a wake-up). A thread that has slept finds some of its
/// footprint still cached; these find none of it, so they weigh each cache line and page
/// a call touches, with less of the host's noise than the rows after a pause.
fn cold_calls() -> Vec<Histogram<u64>> {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).unwrap();
    broker
        .create_topic("cold", 1, TopicConfig::default())
        .unwrap();
    let producer = broker.producer(ProducerConfig::default());
    let mut consumer = broker.consumer(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::default()
    });
    consumer.subscribe(&["cold"]).unwrap();
    let one = Log::open(dir.path().join("one-0"), LogConfig::default()).unwrap();
    let list = Log::open(dir.path().join("list-0"), LogConfig::default()).unwrap();
    let mut buf = vec![0u8; FLUSH_BYTES];
    let mut hs = vec![Histogram::<u64>::new(3).unwrap(); 4];
    let v = [0u8; 8];
    for n in 0..COLD_SAMPLES + COLD_SAMPLES / 10 {
        let seq = n as i32;
        let (batch, batches) = (idempotent_batch(seq), vec![idempotent_batch(seq)]);
        flush_caches(&mut buf);
        let t = Instant::now();
        producer
            .send_blocking(ProducerRecord::new("cold", &v))
            .unwrap();
        let send = t.elapsed();
        flush_caches(&mut buf);
        let t = Instant::now();
        one.append(batch).unwrap();
        let append = t.elapsed();
        flush_caches(&mut buf);
        let t = Instant::now();
        list.append_batches(batches).unwrap();
        let general = t.elapsed();
        flush_caches(&mut buf);
        let t = Instant::now();
        let records = consumer.poll(Duration::ZERO).unwrap();
        let poll = t.elapsed();
        assert_eq!(records.len(), 1, "the poll takes the record just sent");
        drop(records);
        if n >= COLD_SAMPLES / 10 {
            for (h, d) in hs.iter_mut().zip([send, append, general, poll]) {
                h.record(d.as_nanos() as u64).unwrap();
            }
        }
    }
    drop(producer);
    broker.close().unwrap();
    hs
}

/// What the condition-variable floor's writer hands its reader under the mutex.
#[derive(Default)]
struct FloorSlot {
    /// The send times of the messages not yet taken, oldest first. A queue, as the log
    /// is: a reader that wakes late times every message it missed, where a single slot
    /// would let a later message replace the late one and drop the slowest samples.
    sent: VecDeque<u64>,
    /// The writer has sent its last message.
    done: bool,
}

/// The condition-variable floor's reader: takes each value queued under the mutex,
/// waiting on the condition variable in between, and times its wake-ups until the
/// writer is done.
fn condvar_reader(
    pair: Arc<(Mutex<FloorSlot>, Condvar)>,
    base: Instant,
    placement: Placement,
) -> thread::JoinHandle<Histogram<u64>> {
    thread::spawn(move || {
        placement.pin(true);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut n = 0;
        let (m, cv) = &*pair;
        let mut slot = m.lock();
        loop {
            match slot.sent.pop_front() {
                Some(sent) => {
                    let now = base.elapsed().as_nanos() as u64;
                    if n >= WARMUP {
                        h.record((now - sent) / 1000).unwrap();
                    }
                    n += 1;
                }
                None if slot.done => return h,
                None => cv.wait(&mut slot),
            }
        }
    })
}

/// Parked partlog consumers and the floor in one run, their messages alternating: one
/// writer thread sends a record, pauses, sets the floor's value under a mutex and
/// notifies its condition variable, pauses, and so on; a partlog consumer with
/// `strategy` and the floor's reader each time their wake-ups. Every hiccup of the
/// host then falls on both alike, where rows run one after the other can meet
/// different weather. Returns `[partlog, floor]`.
fn parked_beside_floor(strategy: WaitStrategy, placement: Placement) -> Vec<Histogram<u64>> {
    let (_dir, broker, consumer) = lat_topic(strategy);
    let base = Instant::now();
    let reader = partlog_reader(consumer, base, placement);
    let pair = Arc::new((Mutex::new(FloorSlot::default()), Condvar::new()));
    let floor = condvar_reader(pair.clone(), base, placement);
    let producer = broker.producer(ProducerConfig::default());
    thread::scope(|s| {
        s.spawn(|| {
            placement.pin(false);
            let (m, cv) = &*pair;
            for _ in 0..SAMPLES + WARMUP {
                let v = stamp(base);
                producer
                    .send_blocking(ProducerRecord::new("lat", &v))
                    .unwrap();
                pause(GAP);
                m.lock().sent.push_back(base.elapsed().as_nanos() as u64);
                cv.notify_one();
                pause(GAP);
            }
            m.lock().done = true;
            cv.notify_one();
        });
    });
    let hs = vec![reader.join().unwrap(), floor.join().unwrap()];
    drop(producer);
    broker.close().unwrap();
    hs
}

/// The floor for busy-spinning readers beside a partlog consumer polled in the same
/// spinning loop. One writer thread sends a record, pauses, stores the floor's next
/// timestamp in a slot of its own and bumps a counter, pauses, and so on; one reader
/// thread spins, in turn checking the floor's counter and calling `poll` with no timeout,
/// and times what each brings. The floor is what is left of a bare spin on an atomic:
/// the machine's own noise (interrupts, the hypervisor) and the cache-line transfer.
/// Slots rather than one atomic, so that a reader that stalls still times each message it
/// missed. Both share one reader and one writer, so the host's hiccups fall on both
/// alike (two spinning readers and a writer would not fit this machine's two CPUs).
/// Returns `[partlog, floor]`.
fn polled_beside_spin_floor() -> Vec<Histogram<u64>> {
    let (_dir, broker, mut consumer) = lat_topic(WaitStrategy::BusySpin);
    let stamps: Arc<Vec<AtomicU64>> =
        Arc::new((0..SAMPLES + WARMUP).map(|_| AtomicU64::new(0)).collect());
    let sent = Arc::new(AtomicUsize::new(0));
    let base = Instant::now();
    let (st2, se2) = (stamps.clone(), sent.clone());
    let reader = thread::spawn(move || {
        let mut hs = vec![Histogram::<u64>::new(3).unwrap(); 2];
        let (mut records, mut n) = (0, 0);
        while records < SAMPLES + WARMUP || n < SAMPLES + WARMUP {
            let upto = se2.load(Ordering::Acquire);
            if upto > n {
                let now = base.elapsed().as_nanos() as u64;
                for slot in &st2[n..upto] {
                    if n >= WARMUP {
                        hs[1]
                            .record((now - slot.load(Ordering::Relaxed)) / 1000)
                            .unwrap();
                    }
                    n += 1;
                }
            }
            for r in consumer.poll(Duration::ZERO).unwrap() {
                let sent = sent_at(&r);
                let now = base.elapsed().as_nanos() as u64;
                if records >= WARMUP {
                    hs[0].record((now - sent) / 1000).unwrap();
                }
                records += 1;
            }
            std::hint::spin_loop();
        }
        hs
    });
    let producer = broker.producer(ProducerConfig::default());
    for (i, slot) in stamps.iter().enumerate() {
        let v = stamp(base);
        producer
            .send_blocking(ProducerRecord::new("lat", &v))
            .unwrap();
        pause(GAP);
        slot.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        sent.store(i + 1, Ordering::Release);
        pause(GAP);
    }
    let hs = reader.join().unwrap();
    drop(producer);
    broker.close().unwrap();
    hs
}

/// A busy-spinning reader's latency in two parts, to tell the writer's share from the
/// reader's: from the stamp to the moment the reader sees the partition's log end offset
/// move (the writer's `send_blocking` up to the publish, and that cache line's way to the
/// reader's CPU), then from there to `poll` (with no timeout) returning the record (the
/// read and decode of a batch just written on another CPU). Beside them, how long each
/// `send_blocking` took on the writer's thread in the same run, so that a tail of the
/// first part can be told to be the writer's or the reader's. Returns `[to the publish,
/// the poll, the send]`.
fn busy_spin_split() -> Vec<Histogram<u64>> {
    let (_dir, broker, mut consumer) = lat_topic(WaitStrategy::BusySpin);
    let partition = broker.partition("lat", 0).unwrap();
    let base = Instant::now();
    let reader = thread::spawn(move || {
        let mut hs = vec![Histogram::<u64>::new(3).unwrap(); 2];
        let (mut n, mut seen) = (0, 0);
        while n < SAMPLES + WARMUP {
            if partition.log_end_offset() <= seen {
                std::hint::spin_loop();
                continue;
            }
            let published = base.elapsed().as_nanos() as u64;
            let records = consumer.poll(Duration::ZERO).unwrap();
            let now = base.elapsed().as_nanos() as u64;
            for r in records {
                if n >= WARMUP {
                    let to_publish = published.saturating_sub(sent_at(&r));
                    hs[0].record(to_publish / 1000).unwrap();
                    hs[1].record((now - published) / 1000).unwrap();
                }
                n += 1;
                seen = r.offset + 1;
            }
        }
        hs
    });
    let producer = broker.producer(ProducerConfig::default());
    let mut send = Histogram::<u64>::new(3).unwrap();
    for n in 0..SAMPLES + WARMUP {
        let v = stamp(base);
        producer
            .send_blocking(ProducerRecord::new("lat", &v))
            .unwrap();
        if n >= WARMUP {
            let took = base.elapsed().as_nanos() as u64 - u64::from_be_bytes(v);
            send.record(took / 1000).unwrap();
        }
        pause(GAP);
    }
    let mut hs = reader.join().unwrap();
    hs.push(send);
    drop(producer);
    broker.close().unwrap();
    hs
}

/// One measured run: the names of its rows and what returns their latency histograms,
/// in the same order.
type Run = (
    &'static [&'static str],
    Box<dyn Fn() -> Vec<Histogram<u64>>>,
);

/// A row of `send_blocking` alone: its histogram and the page faults it took.
type Alone = Box<dyn Fn() -> (Histogram<u64>, Option<u64>)>;

fn main() {
    // Criterion passes flags such as `--bench`; this harness takes none.
    let spin_then_park = WaitStrategy::SpinThenPark { spins: 100_000 };
    let mut runs: Vec<Run> = vec![
        (
            &["partlog park", "condvar floor"],
            Box::new(|| parked_beside_floor(WaitStrategy::Park, Placement::Os)),
        ),
        (
            &["partlog polled, spinning", "spin floor"],
            Box::new(polled_beside_spin_floor),
        ),
        (
            &["partlog spin-then-park"],
            Box::new(move || vec![partlog_latency(spin_then_park, Placement::Os)]),
        ),
        (
            &["partlog busy-spin"],
            Box::new(|| vec![partlog_latency(WaitStrategy::BusySpin, Placement::Os)]),
        ),
        (
            &["busy-spin, writer hot"],
            Box::new(|| {
                vec![partlog_latency_with(
                    WaitStrategy::BusySpin,
                    Placement::Os,
                    spin_pause,
                )]
            }),
        ),
        (
            &[
                "busy-spin: to publish",
                "busy-spin: then poll",
                "busy-spin: its send",
            ],
            Box::new(busy_spin_split),
        ),
    ];
    let two_cpus = two_cpus();
    if let Some(cpus) = two_cpus {
        let pinned = Placement::TwoCpus(cpus);
        runs.extend::<[Run; 2]>([
            (
                &["park, 2 CPUs", "condvar floor, 2 CPUs"],
                Box::new(move || parked_beside_floor(WaitStrategy::Park, pinned)),
            ),
            (
                &["spin-then-park, 2 CPUs"],
                Box::new(move || vec![partlog_latency(spin_then_park, pinned)]),
            ),
        ]);
    }
    let mut alone: Vec<(&str, Alone)> = vec![
        (
            "alone, after a pause",
            Box::new(|| send_blocking_alone(false)),
        ),
        (
            "alone, back to back",
            Box::new(|| send_blocking_alone(true)),
        ),
    ];
    // `cargo bench --bench latency -- TEXT...` keeps the rows whose name contains a TEXT.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let keep = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    runs.retain(|(names, _)| names.iter().any(|name| keep(name)));
    alone.retain(|(name, _)| keep(name));
    let rows: Vec<&str> = runs
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .collect();
    println!("end-to-end latency, {SAMPLES} messages each, {GAP:?} apart (µs)");
    println!(
        "{:<24} {:>8} {:>8} {:>8}   (round; ms of CPU time the host stole during the run)",
        "", "p50", "p99", "p99.9"
    );
    // Rounds, interleaved, so drift hits every run alike; each round prints, then the
    // median of each percentile over the rounds. A run of two rows interleaves their
    // messages as well.
    let mut results: Vec<Vec<[u64; 3]>> = vec![Vec::new(); rows.len()];
    let mut alone_results: Vec<Vec<[u64; 3]>> = vec![Vec::new(); alone.len()];
    let mut alone_faults: Vec<Vec<u64>> = vec![Vec::new(); alone.len()];
    for round in 1..=ROUNDS {
        let mut row = 0;
        for (names, run) in &runs {
            let before = steal_ms();
            let hs = run();
            let stolen = before
                .zip(steal_ms())
                .map_or("?".to_string(), |(a, b)| (b - a).to_string());
            for (name, h) in names.iter().zip(hs) {
                let q = [0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q));
                println!(
                    "{:<24} {:>8} {:>8} {:>8}   (round {round}; steal {stolen} ms)",
                    name, q[0], q[1], q[2]
                );
                results[row].push(q);
                row += 1;
            }
        }
        for (((_, run), out), faults) in alone.iter().zip(&mut alone_results).zip(&mut alone_faults)
        {
            let (h, f) = run();
            out.push([0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q)));
            faults.extend(f);
        }
    }
    println!("median of {ROUNDS} rounds:");
    let median = |results: &[Vec<[u64; 3]>]| -> Vec<[u64; 3]> {
        results
            .iter()
            .map(|r| {
                [0, 1, 2].map(|i| {
                    let mut v: Vec<u64> = r.iter().map(|q| q[i]).collect();
                    v.sort_unstable();
                    v[v.len() / 2]
                })
            })
            .collect()
    };
    let medians = median(&results);
    for (name, m) in rows.iter().zip(&medians) {
        println!("{:<24} {:>8} {:>8} {:>8}", name, m[0], m[1], m[2]);
    }
    // The verdicts, for the rows this run kept.
    let p99 = |name: &str| {
        let i = rows.iter().position(|n| *n == name)?;
        Some(medians[i][1] as f64)
    };
    if let (Some(park), Some(floor)) = (p99("partlog park"), p99("condvar floor")) {
        println!(
            "park p99 / condvar floor p99: {:.2}x as the OS places the threads (target <= 1.5x)",
            park / floor.max(1.0)
        );
    }
    if let Some(spin) = p99("partlog busy-spin") {
        println!("busy-spin p99 {spin} µs (target < 5)");
    }
    if let Some(spin) = p99("busy-spin, writer hot") {
        println!("busy-spin p99 {spin} µs with a writer that spins between messages");
    }
    if let (Some(polled), Some(floor)) = (p99("partlog polled, spinning"), p99("spin floor")) {
        println!("polled in a spinning loop p99 {polled} µs beside a spin floor p99 of {floor} µs");
    }
    if let (Some(park), Some(floor)) = (p99("park, 2 CPUs"), p99("condvar floor, 2 CPUs")) {
        println!(
            "park p99 / condvar floor p99 on 2 CPUs: {:.2}x (target <= 1.5x)",
            park / floor.max(1.0)
        );
    }
    if !alone.is_empty() {
        println!(
            "send_blocking alone, no consumer (ns), median of {ROUNDS} rounds; page faults per round of {} calls",
            SAMPLES + WARMUP
        );
    }
    for (((name, _), m), faults) in alone.iter().zip(median(&alone_results)).zip(&alone_faults) {
        println!(
            "{:<24} {:>8} {:>8} {:>8}   faults {faults:?}",
            name, m[0], m[1], m[2]
        );
    }
    const COLD_ROWS: [&str; 4] = [
        "send_blocking",
        "Log::append, one batch",
        "append_batches of one",
        "poll of that send's record",
    ];
    if COLD_ROWS.iter().any(|name| keep(&format!("cold {name}"))) {
        println!(
            "with every cache flushed before each call ({COLD_SAMPLES} calls each, in turn; ns)"
        );
        for (name, h) in COLD_ROWS.iter().zip(cold_calls()) {
            let q = [0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q));
            println!(
                "{:<30} {:>8} {:>8} {:>8}",
                format!("cold {name}"),
                q[0],
                q[1],
                q[2]
            );
        }
    }
}
