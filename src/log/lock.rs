//! The data directory's lock, `.lock`.
//!
//! Kafka's JVM locks `.lock` with `FileChannel.tryLock`, a POSIX record lock (`fcntl`);
//! partlog takes the same kind, so a Kafka broker and partlog exclude each other. A
//! record lock belongs to the process: a child forked by another thread does not inherit
//! it (a `flock` lock would stay held by the child until it execs), and it does not keep
//! a second handle in the same process out, which a registry of held directories does.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{Error, IoContext, Result};

/// Directories this process holds, by canonical path.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// An exclusive lock on a data directory, released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// `None` once released.
    file: Option<File>,
    key: PathBuf,
}

impl DirLock {
    /// Locks `dir/<name>`, or fails with [`Error::Locked`] when another process or
    /// another handle in this one holds it.
    pub(crate) fn acquire(dir: &Path, name: &str) -> Result<DirLock> {
        let path = dir.join(name);
        let key = fs::canonicalize(dir).at(dir)?;
        let mut held = HELD.lock();
        if held.contains(&key) {
            return Err(Error::Locked { path });
        }
        // Only now open the file: closing any descriptor of a file drops this process's
        // record locks on it, so no descriptor is opened while another handle holds it.
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => return Err(Error::Locked { path }),
            Err(e) => return Err(Error::io(path, e)),
        }
        held.insert(key.clone());
        Ok(DirLock {
            file: Some(file),
            key,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the record lock; then the directory is free
        // for another handle in this process.
        self.file.take();
        HELD.lock().remove(&self.key);
    }
}

/// Takes an exclusive `fcntl` write lock on the whole file without waiting; `Ok(false)`
/// when another process holds a conflicting lock.
#[allow(unsafe_code)]
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: `flock` is plain old data, fully initialised here (zeroed, then the fields
    // F_SETLK reads are set); `fcntl(F_SETLK)` only reads it, through a pointer valid for
    // the call, on a descriptor that `file` keeps open for the call.
    let result = unsafe {
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = 0;
        lock.l_len = 0; // the whole file
        libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock)
    };
    if result == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_in_this_process_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), ".lock").unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path(), ".lock"),
            Err(Error::Locked { .. })
        ));
        drop(first);
        DirLock::acquire(dir.path(), ".lock").unwrap();
    }

    /// Whether another process can take a POSIX record lock on `path` (Python's
    /// `fcntl.lockf` takes the same kind of lock as Kafka's JVM).
    fn other_process_can_lock(path: &Path) -> bool {
        let script = "import fcntl,sys\nf=open(sys.argv[1],'a')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n";
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(path)
            .status()
            .expect("python3 runs (it is on every machine this project builds on)");
        match status.code() {
            Some(0) => true,
            Some(3) => false,
            other => panic!("python3 lock probe ended with {other:?}"),
        }
    }

    #[test]
    fn another_process_taking_kafkas_kind_of_lock_is_kept_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let lock = DirLock::acquire(dir.path(), ".lock").unwrap();
        assert!(!other_process_can_lock(&path));
        drop(lock);
        assert!(other_process_can_lock(&path));
    }
}
