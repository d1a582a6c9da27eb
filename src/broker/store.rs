//! The topic list of a data directory: `partlog-topics` at its root.
//!
//! Kafka keeps topic configs in its cluster metadata, not in log directories; partlog
//! has no cluster, so it keeps them in one text file beside Kafka's checkpoint files
//! (Kafka ignores plain files at the root of a log directory). Format, in the style of
//! Kafka's checkpoints: line 1 the version `0`, line 2 the topic count, then one line per
//! topic: `<name> <partitions> key=value ...` with Kafka's topic config names.

use std::collections::BTreeMap;
use std::path::Path;

use super::TopicConfig;
use crate::error::Result;
use crate::log::{bad_line, read_entry_lines, write_entry_lines};

/// File name of the topic list.
pub(crate) const TOPICS_FILE: &str = "partlog-topics";

/// Reads the topic list; a missing file is an empty list.
pub(crate) fn read_topics(dir: &Path) -> Result<BTreeMap<String, (i32, TopicConfig)>> {
    let path = dir.join(TOPICS_FILE);
    let mut topics = BTreeMap::new();
    for (n, line) in read_entry_lines(&path)?.unwrap_or_default() {
        let bad = |reason: String| bad_line(&path, n, reason);
        let mut fields = line.split_whitespace();
        let (Some(name), Some(parts)) = (fields.next(), fields.next()) else {
            return Err(bad(format!(
                "expected `name partitions key=value...`, got {line:?}"
            )));
        };
        let parts: i32 = parts
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| bad(format!("bad partition count {parts:?}")))?;
        let mut config = TopicConfig::default();
        for pair in fields {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("bad pair {pair:?}")))?;
            config.set(k, v).map_err(|e| bad(e.to_string()))?;
        }
        topics.insert(name.to_string(), (parts, config));
    }
    Ok(topics)
}

/// Writes the topic list atomically (tmp, fsync, rename, fsync the directory).
pub(crate) fn write_topics(
    dir: &Path,
    topics: &BTreeMap<String, (i32, TopicConfig)>,
) -> Result<()> {
    let lines: Vec<String> = topics
        .iter()
        .map(|(name, (parts, config))| {
            let mut line = format!("{name} {parts}");
            for (k, v) in config.to_pairs() {
                line.push_str(&format!(" {k}={v}"));
            }
            line
        })
        .collect();
    write_entry_lines(&dir.join(TOPICS_FILE), &lines)
}
