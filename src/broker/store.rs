//! The topic list of a data directory: `partlog-topics` at its root.
//!
//! Kafka keeps topic configs in its cluster metadata, not in log directories; partlog
//! has no cluster, so it keeps them in one text file beside Kafka's checkpoint files
//! (Kafka ignores plain files at the root of a log directory). Format, in the style of
//! Kafka's checkpoints: line 1 the version `0`, line 2 the topic count, then one line per
//! topic: `<name> <partitions> key=value ...` with Kafka's topic config names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::TopicConfig;
use crate::error::{Error, IoContext, Result};
use crate::log::sync_dir;

/// File name of the topic list.
pub(crate) const TOPICS_FILE: &str = "partlog-topics";

/// Reads the topic list; a missing file is an empty list.
pub(crate) fn read_topics(dir: &Path) -> Result<BTreeMap<String, (i32, TopicConfig)>> {
    let path = dir.join(TOPICS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |line: usize, reason: String| Error::BadCheckpoint {
        path: path.clone(),
        line,
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(bad(1, "version is not 0".into()));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| bad(2, "topic count is not a number".into()))?;
    let mut topics = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(parts)) = (fields.next(), fields.next()) else {
            return Err(bad(
                i + 3,
                format!("expected `name partitions key=value...`, got {line:?}"),
            ));
        };
        let parts: i32 = parts
            .parse()
            .map_err(|_| bad(i + 3, format!("bad partition count {parts:?}")))?;
        let mut config = TopicConfig::default();
        for pair in fields {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(i + 3, format!("bad pair {pair:?}")))?;
            config.set(k, v).map_err(|e| bad(i + 3, e.to_string()))?;
        }
        topics.insert(name.to_string(), (parts, config));
    }
    if topics.len() != count {
        return Err(bad(
            2,
            format!("declares {count} topics, holds {}", topics.len()),
        ));
    }
    Ok(topics)
}

/// Writes the topic list atomically (tmp, fsync, rename, fsync the directory).
pub(crate) fn write_topics(
    dir: &Path,
    topics: &BTreeMap<String, (i32, TopicConfig)>,
) -> Result<()> {
    let mut text = format!("0\n{}\n", topics.len());
    for (name, (parts, config)) in topics {
        text.push_str(&format!("{name} {parts}"));
        for (k, v) in config.to_pairs() {
            text.push_str(&format!(" {k}={v}"));
        }
        text.push('\n');
    }
    let path = dir.join(TOPICS_FILE);
    let tmp = dir.join(format!("{TOPICS_FILE}.tmp"));
    {
        use std::io::Write;
        let mut f = fs::File::create(&tmp).at(&tmp)?;
        f.write_all(text.as_bytes()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, &path).at(&path)?;
    sync_dir(dir)
}
