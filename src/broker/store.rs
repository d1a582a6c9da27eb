//! The topic list of a data directory: `partlog-topics` at its root.
//!
//! Kafka keeps topic configs in its cluster metadata, not in log directories; partlog
//! has no cluster, so it keeps them in one text file beside Kafka's checkpoint files
//! (Kafka ignores plain files at the root of a log directory). Format, in the style of
//! Kafka's checkpoints: line 1 the version `0`, line 2 the topic count, then one line per
//! topic: `<name> <partitions> key=value ...` with Kafka's topic config names.
//!
//! Beside it, `partlog-deleting` names the topics whose deletion has begun and whose
//! partition directories may not all be gone yet (same format, one name per line, no
//! file when there are none): `Broker::open` finishes those deletions first, so that a
//! crash inside `delete_topic` cannot bring a topic back from the directories it left.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use super::TopicConfig;
use crate::error::{Error, Result};
use crate::log::{bad_line, read_entry_lines, sync_dir, validate_topic_name, write_entry_lines};

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

/// File name of the list of topics being deleted.
pub(crate) const DELETING_FILE: &str = "partlog-deleting";

/// Reads the topics being deleted; a missing file is none.
pub(crate) fn read_deleting(dir: &Path) -> Result<BTreeSet<String>> {
    let path = dir.join(DELETING_FILE);
    let mut names = BTreeSet::new();
    for (n, line) in read_entry_lines(&path)?.unwrap_or_default() {
        validate_topic_name(&line).map_err(|e| bad_line(&path, n, e.to_string()))?;
        names.insert(line);
    }
    Ok(names)
}

/// Writes the topics being deleted durably, as the topic list is written; with none,
/// removes the file (and fsyncs the directory).
pub(crate) fn write_deleting(dir: &Path, names: &BTreeSet<String>) -> Result<()> {
    let path = dir.join(DELETING_FILE);
    if names.is_empty() {
        match fs::remove_file(&path) {
            Ok(()) => return sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let lines: Vec<String> = names.iter().cloned().collect();
    write_entry_lines(&path, &lines)
}
