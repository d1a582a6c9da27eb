//! A data directory holding many partition logs, with Kafka's checkpoint files and
//! clean-shutdown marker at its root (reference §1.1).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::checkpoint::{OffsetMap, read_checkpoint, sync_dir, write_checkpoint};
use super::lock::DirLock;
use super::{Log, LogConfig, LogOptions};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, IoContext, Result};
use crate::record::Codecs;

const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
const LOCK: &str = ".lock";
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";
const LOG_START_OFFSETS: &str = "log-start-offset-checkpoint";

/// Checks a topic name against Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`,
/// and neither `.` nor `..`. No valid name can reach outside the data directory.
///
/// # Errors
/// [`Error::InvalidConfig`] saying which rule the name breaks.
pub fn validate_topic_name(topic: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidConfig {
            name: "topic",
            value: topic.to_string(),
            reason,
        })
    };
    if topic.is_empty() || topic.len() > 249 {
        return bad("a topic name has 1 to 249 characters");
    }
    if topic == "." || topic == ".." {
        return bad("a topic name cannot be \".\" or \"..\"");
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("a topic name may hold only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// The directory name of a partition: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// A data directory (one of Kafka's `log.dirs`) and the partition logs opened in it.
///
/// It keeps `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` at its
/// root and writes `.kafka_cleanshutdown` on [`LogDir::close`], so that the next open
/// validates nothing when the previous one closed cleanly, and validates everything
/// from each partition's recovery point when it did not.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    codecs: Codecs,
    clock: Arc<dyn Clock>,
    clean_shutdown: bool,
    state: Mutex<DirState>,
    /// Holds the lock on `.lock` until `close` or drop.
    lock: Mutex<Option<DirLock>>,
}

#[derive(Debug, Default)]
struct DirState {
    logs: BTreeMap<(String, i32), Arc<Log>>,
    /// Checkpointed values of partitions not opened (yet) in this session.
    recovery_points: OffsetMap,
    log_start_offsets: OffsetMap,
    closed: bool,
}

impl LogDir {
    /// Opens (creating if needed) a data directory with the default codecs and clock.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::BadCheckpoint`].
    pub fn open(path: impl AsRef<Path>) -> Result<LogDir> {
        LogDir::open_with(path, Codecs::default(), Arc::new(SystemClock))
    }

    /// Opens a data directory with explicit codecs and clock.
    ///
    /// Takes an exclusive lock on `<dir>/.lock` (an `fcntl` record lock, as Kafka's JVM
    /// takes), released by a successful [`LogDir::close`] or when the `LogDir` is
    /// dropped, so a second process, a Kafka broker, or a second `LogDir` in this process
    /// gets [`Error::Locked`] instead of corrupting the logs. The clean-shutdown marker is
    /// deleted at once, as Kafka does, so that a crash while this session runs counts as
    /// unclean at the next open. A checkpoint file that does not parse is ignored: the
    /// logs then recover from offset 0, which is slower but loses nothing.
    ///
    /// # Errors
    /// [`Error::Locked`], or [`Error::Io`] naming the file.
    pub fn open_with(
        path: impl AsRef<Path>,
        codecs: Codecs,
        clock: Arc<dyn Clock>,
    ) -> Result<LogDir> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path).at(&path)?;
        let lock = DirLock::acquire(&path, LOCK)?;
        let marker = path.join(CLEAN_SHUTDOWN);
        let clean_shutdown = marker.exists();
        if clean_shutdown {
            fs::remove_file(&marker).at(&marker)?;
            sync_dir(&path)?;
        }
        let recovery_points = read_checkpoint(&path.join(RECOVERY_POINTS)).unwrap_or_default();
        let log_start_offsets = read_checkpoint(&path.join(LOG_START_OFFSETS)).unwrap_or_default();
        Ok(LogDir {
            path,
            codecs,
            clock,
            clean_shutdown,
            state: Mutex::new(DirState {
                recovery_points,
                log_start_offsets,
                ..DirState::default()
            }),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the previous session closed this directory cleanly.
    pub fn had_clean_shutdown(&self) -> bool {
        self.clean_shutdown
    }

    /// Opens the log of `topic`-`partition`, creating it if needed; a second call returns
    /// the same log.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad topic name or partition; [`Error::Closed`];
    /// what [`Log::open`] returns.
    pub fn open_log(&self, topic: &str, partition: i32, config: LogConfig) -> Result<Arc<Log>> {
        validate_topic_name(topic)?;
        if partition < 0 {
            return Err(Error::InvalidConfig {
                name: "partition",
                value: partition.to_string(),
                reason: "must be 0 or more",
            });
        }
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::Closed(self.path.display().to_string()));
        }
        let key = (topic.to_string(), partition);
        if let Some(log) = state.logs.get(&key) {
            return Ok(log.clone());
        }
        let options = LogOptions {
            codecs: self.codecs.clone(),
            clock: self.clock.clone(),
            recovery_point: state.recovery_points.get(&key).copied().unwrap_or(0),
            log_start_offset: state.log_start_offsets.get(&key).copied().unwrap_or(0),
            clean_shutdown: self.clean_shutdown,
        };
        let dir = self.path.join(partition_dir_name(topic, partition));
        let log = Arc::new(Log::open_with(dir, config, options)?);
        state.logs.insert(key, log.clone());
        Ok(log)
    }

    /// Closes the log of `topic`-`partition` (if open) and deletes its directory and
    /// checkpoint entries. The directory entry removal is fsynced.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path that could not be removed.
    pub fn remove_log(&self, topic: &str, partition: i32) -> Result<()> {
        validate_topic_name(topic)?;
        let key = (topic.to_string(), partition);
        let log = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(Error::Closed(self.path.display().to_string()));
            }
            state.recovery_points.remove(&key);
            state.log_start_offsets.remove(&key);
            state.logs.remove(&key)
        };
        if let Some(log) = log {
            // A poisoned log cannot flush; its files are about to go anyway.
            let _ignored_because_deleting = log.close();
        }
        let dir = self.path.join(partition_dir_name(topic, partition));
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        sync_dir(&self.path)
    }

    /// Partition directories present on disk, as (topic, partition), whether opened or not.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn partitions_on_disk(&self) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.path).at(&self.path)? {
            let entry = entry.at(&self.path)?;
            if !entry.file_type().at(&entry.path())?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((topic, p)) = name.rsplit_once('-')
                && let Ok(p) = p.parse::<i32>()
                && p >= 0
                && validate_topic_name(topic).is_ok()
            {
                out.push((topic.to_string(), p));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The logs opened so far, by (topic, partition).
    pub fn logs(&self) -> Vec<((String, i32), Arc<Log>)> {
        self.state
            .lock()
            .logs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes both checkpoint files with every log's recovery point and start offset.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn checkpoint(&self) -> Result<()> {
        let state = self.state.lock();
        let mut recovery_points = state.recovery_points.clone();
        let mut log_start_offsets = state.log_start_offsets.clone();
        for (key, log) in &state.logs {
            recovery_points.insert(key.clone(), log.recovery_point());
            log_start_offsets.insert(key.clone(), log.log_start_offset());
        }
        write_checkpoint(&self.path.join(RECOVERY_POINTS), &recovery_points)?;
        write_checkpoint(&self.path.join(LOG_START_OFFSETS), &log_start_offsets)
    }

    /// Takes `topic`'s partitions out of the checkpoint files on disk, leaving every
    /// other entry as it is: once its directories are deleted, a topic created again
    /// under the name must not open, after a crash, with the old topic's recovery point
    /// and log start offset (a start past the new log's end would empty it).
    ///
    /// # Errors
    /// [`Error::Io`] naming the checkpoint file that could not be written.
    pub fn forget_checkpoints(&self, topic: &str) -> Result<()> {
        for name in [RECOVERY_POINTS, LOG_START_OFFSETS] {
            let path = self.path.join(name);
            if !path.exists() {
                continue;
            }
            // An unreadable file is ignored at open as well; it is rewritten without it.
            let mut offsets = read_checkpoint(&path).unwrap_or_default();
            let before = offsets.len();
            offsets.retain(|(t, _), _| t != topic);
            if offsets.len() != before {
                write_checkpoint(&path, &offsets)?;
            }
        }
        Ok(())
    }

    fn close_logs(&self, logs: &[Arc<Log>]) -> Result<()> {
        for log in logs {
            log.close()?;
        }
        self.checkpoint()?;
        let marker = self.path.join(CLEAN_SHUTDOWN);
        fs::write(&marker, b"{\"version\":0,\"brokerEpoch\":0}").at(&marker)?;
        fs::File::open(&marker)
            .and_then(|f| f.sync_all())
            .at(&marker)?;
        sync_dir(&self.path)
    }

    /// Closes every log (flush, final time-index entries, trimmed indexes), writes the
    /// checkpoints, and then the clean-shutdown marker, unless a log failed to close.
    ///
    /// # Errors
    /// The first failure; the marker is then not written, so the next open recovers.
    pub fn close(&self) -> Result<()> {
        let logs: Vec<Arc<Log>> = {
            let mut state = self.state.lock();
            if state.closed {
                return Ok(());
            }
            state.closed = true;
            state.logs.values().cloned().collect()
        };
        let result = self.close_logs(&logs);
        if result.is_err() {
            // Not closed after all: a later `close` tries again (and fails again while a
            // log stays poisoned, so no clean-shutdown marker is ever written for it).
            self.state.lock().closed = false;
            return result;
        }
        // Handles may outlive the close; the directory is free for another process now.
        self.lock.lock().take();
        Ok(())
    }
}
