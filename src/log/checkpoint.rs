//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): text, version `0`, an entry count, then one
//! `topic partition offset` line per entry. Written to `<name>.tmp`, fsynced, renamed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Offsets by (topic, partition).
pub type OffsetMap = BTreeMap<(String, i32), i64>;

/// Reads a checkpoint file; a missing file is an empty map.
///
/// # Errors
/// [`Error::BadCheckpoint`] when the version, count or a line does not parse;
/// [`Error::Io`] when the file cannot be read.
pub fn read_checkpoint(path: &Path) -> Result<OffsetMap> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OffsetMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |line: usize, reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => return Err(bad(1, format!("version {other:?}, expected \"0\""))),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad(2, "entry count is not a number".into()))?;
    let mut map = OffsetMap::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(bad(
                i + 3,
                format!("expected `topic partition offset`, got {line:?}"),
            ));
        };
        let partition = partition
            .parse()
            .map_err(|_| bad(i + 3, format!("bad partition {partition:?}")))?;
        let offset = offset
            .parse()
            .map_err(|_| bad(i + 3, format!("bad offset {offset:?}")))?;
        map.insert((topic.to_string(), partition), offset);
    }
    if map.len() != count {
        return Err(bad(
            2,
            format!("declares {count} entries, holds {}", map.len()),
        ));
    }
    Ok(map)
}

/// Writes a checkpoint file atomically: `<path>.tmp`, fsync, rename, fsync the directory.
///
/// # Errors
/// [`Error::Io`] naming the file that failed.
pub fn write_checkpoint(path: &Path, offsets: &OffsetMap) -> Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).at(&tmp)?;
    f.write_all(text.as_bytes()).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    fs::rename(&tmp, path).at(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory, making created, renamed and deleted entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kafka_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut m = OffsetMap::new();
        m.insert(("orders".into(), 0), 42);
        m.insert(("orders".into(), 1), 7);
        write_checkpoint(&path, &m).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\norders 0 42\norders 1 7\n"
        );
        assert_eq!(read_checkpoint(&path).unwrap(), m);
    }

    #[test]
    fn malformed_files_are_rejected_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        fs::write(&path, "0\n2\norders 0 42\n").unwrap();
        let err = read_checkpoint(&path).unwrap_err().to_string();
        assert!(err.contains("declares 2 entries, holds 1"), "{err}");
        fs::write(&path, "1\n0\n").unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(Error::BadCheckpoint { line: 1, .. })
        ));
        fs::write(&path, "0\n1\norders x 42\n").unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(Error::BadCheckpoint { line: 3, .. })
        ));
    }
}
