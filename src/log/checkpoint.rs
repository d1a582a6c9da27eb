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
    let mut map = OffsetMap::new();
    for (n, line) in read_entry_lines(path)?.unwrap_or_default() {
        let bad = |reason: String| bad_line(path, n, reason);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(bad(format!(
                "expected `topic partition offset`, got {line:?}"
            )));
        };
        let partition = partition
            .parse()
            .map_err(|_| bad(format!("bad partition {partition:?}")))?;
        let offset = offset
            .parse()
            .map_err(|_| bad(format!("bad offset {offset:?}")))?;
        map.insert((topic.to_string(), partition), offset);
    }
    Ok(map)
}

/// Writes a checkpoint file atomically: `<path>.tmp`, fsync, rename, fsync the directory.
///
/// # Errors
/// [`Error::Io`] naming the file that failed.
pub fn write_checkpoint(path: &Path, offsets: &OffsetMap) -> Result<()> {
    let lines: Vec<String> = offsets
        .iter()
        .map(|((topic, partition), offset)| format!("{topic} {partition} {offset}"))
        .collect();
    write_entry_lines(path, &lines)
}

/// The entry lines of a text file in Kafka's checkpoint layout (line 1 the version `0`,
/// line 2 the entry count, then one entry per line), each with its 1-based line number;
/// `None` when the file does not exist.
pub(crate) fn read_entry_lines(path: &Path) -> Result<Option<Vec<(usize, String)>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => {
            return Err(bad_line(
                path,
                1,
                format!("version {other:?}, expected \"0\""),
            ));
        }
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad_line(path, 2, "entry count is not a number".into()))?;
    let entries: Vec<(usize, String)> = lines
        .enumerate()
        .map(|(i, l)| (i + 3, l.to_string()))
        .collect();
    if entries.len() != count {
        let reason = format!("declares {count} entries, holds {}", entries.len());
        return Err(bad_line(path, 2, reason));
    }
    Ok(Some(entries))
}

/// Writes `lines` in Kafka's checkpoint layout, atomically: `<path>.tmp`, fsync, rename,
/// fsync the directory.
pub(crate) fn write_entry_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("0\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).at(&tmp)?;
    f.write_all(text.as_bytes()).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    fs::rename(&tmp, path).at(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// [`Error::BadCheckpoint`] for line `line` of `path`.
pub(crate) fn bad_line(path: &Path, line: usize, reason: String) -> Error {
    Error::BadCheckpoint {
        path: path.to_path_buf(),
        line,
        reason,
    }
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
