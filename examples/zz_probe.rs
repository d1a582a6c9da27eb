// Temporary probe (not committed): caller-thread CPU ns per `send`.
use partlog::{Broker, BrokerConfig, ProducerConfig, ProducerRecord, TopicConfig};
use std::time::Instant;

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts)
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(2_000_000, |s| s.parse().unwrap());
    let keyed = std::env::args().nth(2).is_some_and(|s| s == "keyed");
    let values: Vec<Vec<u8>> = (0..1024).map(|i| vec![(i % 251) as u8; 100]).collect();
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    std::fs::create_dir_all(&base).unwrap();
    let mut res = vec![];
    for round in 0..7 {
        let tmp = tempfile::tempdir_in(&base).unwrap();
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        broker.create_topic("t", 1, TopicConfig::default()).unwrap();
        let producer = broker.producer(ProducerConfig::default());
        let c0 = cpu_ns();
        let t0 = Instant::now();
        for i in 0..n {
            let v = &values[(i % 1024) as usize];
            let mut r = ProducerRecord::new("t", v).timestamp(1_700_000_000_000);
            let k = (i % 1000).to_be_bytes();
            if keyed {
                r = r.key(&k);
            }
            if std::env::args().nth(3).is_some() {
                r = r.partition(0);
            }
            drop(producer.send(r).unwrap());
        }
        let c1 = cpu_ns();
        producer.flush().unwrap();
        let wall = t0.elapsed();
        if round > 0 {
            res.push((
                (c1 - c0) as f64 / n as f64,
                n as f64 / wall.as_secs_f64() / 1e6,
            ));
        }
    }
    res.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let cpu: Vec<String> = res.iter().map(|r| format!("{:.1}", r.0)).collect();
    let mut w: Vec<f64> = res.iter().map(|r| r.1).collect();
    w.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "caller cpu ns/record {:?} median {:.1}; wall M/s median {:.2}",
        cpu,
        res[res.len() / 2].0,
        w[w.len() / 2]
    );
}
