//! Replacing segments with the cleaner's output, and finishing or undoing an interrupted
//! replacement when a log is opened (reference §1.2, Kafka's `LocalLog.replaceSegments`
//! and `LogLoader.removeTempFilesAndCollectSwapFiles`).
//!
//! The commit protocol, each step made durable by an fsync of the directory:
//! 1. the output is written to `<base>.{log,index,timeindex}.cleaned` and fsynced;
//! 2. each `.cleaned` file is renamed `.swap` (the `.log` last);
//! 3. the replaced segments' files are renamed `.deleted`;
//! 4. each `.swap` file is renamed to its final name (the `.log` last);
//! 5. the segment list is swapped in memory, then the `.deleted` files are unlinked.
//!
//! Kafka waits `file.delete.delay.ms` (60 s) before unlinking, so that fetches still
//! reading the old files finish. partlog's readers read through memory maps and open
//! file handles that outlive the unlink, so it unlinks at once.
//!
//! A crash after any step leaves files from which [`finish_interrupted`] rebuilds one of
//! the two states: a `.log.cleaned` means step 2 did not finish, so the output is
//! dropped; a `.log.swap` without `.cleaned` files means it did, so the swap completes.

use std::fs;
use std::path::{Path, PathBuf};

use super::checkpoint::sync_dir;
use super::load::RecoveryReport;
use crate::error::{Error, IoContext, Result};
use crate::segment::cleaned::{CLEANED, DELETED, SEGMENT_EXTS, SWAP, scan_next_offset};
use crate::segment::{file_name, parse_file_name};

/// A point of the swap protocol, handed to a [`SwapHook`] before it is carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwapStep {
    /// Renaming this `.cleaned` file to `.swap`.
    ToSwap(PathBuf),
    /// Renaming this file of a replaced segment to `.deleted`.
    ToDeleted(PathBuf),
    /// Renaming this `.swap` file to its final name.
    ToFinal(PathBuf),
    /// Swapping the in-memory segment list.
    SwapList,
    /// Unlinking this `.deleted` file.
    Unlink(PathBuf),
}

/// A fault-injection hook for tests: called before every step of a segment swap; an
/// error stops the swap right there, as a crash would (the files stay as they are).
pub type SwapHook = std::sync::Arc<dyn Fn(&SwapStep) -> Result<()> + Send + Sync>;

fn with_suffix(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", file_name(base, ext)))
}

/// Renames `from` to `to`; a missing `from` is skipped (that index was never written).
fn rename(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(from, e)),
    }
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The aborted transactions of the segment at `base`, from its `.txnindex`, or from its
/// `.txnindex.deleted` while a swap replacing it is under way: readers go on reading the
/// old segment until the list is swapped (step 5), after its files were renamed (step 3),
/// and a read_committed reader must still learn which of its records were aborted.
pub(super) fn read_txn_index(dir: &Path, base: i64) -> Result<Vec<super::AbortedTxn>> {
    let path = with_suffix(dir, base, "txnindex", "");
    if path.exists() {
        return super::txn_index::read(&path);
    }
    super::txn_index::read(&with_suffix(dir, base, "txnindex", DELETED))
}

/// Steps 2–4 for the output segment at `new_base` replacing the segments `old_bases`.
pub(super) fn rename_into_place(
    dir: &Path,
    new_base: i64,
    old_bases: &[i64],
    hook: Option<&SwapHook>,
) -> Result<()> {
    // The hook sees only files that exist (a `.txnindex` rarely does).
    let call = |path: &Path, step: fn(PathBuf) -> SwapStep| match hook {
        Some(h) if path.exists() => h(&step(path.to_path_buf())),
        _ => Ok(()),
    };
    for ext in SEGMENT_EXTS {
        let from = with_suffix(dir, new_base, ext, CLEANED);
        call(&from, SwapStep::ToSwap)?;
        rename(&from, &with_suffix(dir, new_base, ext, SWAP))?;
    }
    sync_dir(dir)?;
    for &base in old_bases.iter().rev() {
        for ext in SEGMENT_EXTS {
            let from = with_suffix(dir, base, ext, "");
            call(&from, SwapStep::ToDeleted)?;
            rename(&from, &with_suffix(dir, base, ext, DELETED))?;
        }
    }
    sync_dir(dir)?;
    for ext in SEGMENT_EXTS {
        let from = with_suffix(dir, new_base, ext, SWAP);
        call(&from, SwapStep::ToFinal)?;
        rename(&from, &with_suffix(dir, new_base, ext, ""))?;
    }
    sync_dir(dir)
}

/// Step 5's unlinks: the `.deleted` files of `bases`.
pub(super) fn unlink_deleted(dir: &Path, bases: &[i64], hook: Option<&SwapHook>) -> Result<()> {
    for &base in bases {
        for ext in SEGMENT_EXTS {
            let path = with_suffix(dir, base, ext, DELETED);
            if let Some(h) = hook.filter(|_| path.exists()) {
                h(&SwapStep::Unlink(path.clone()))?;
            }
            remove(&path)?;
        }
    }
    sync_dir(dir)
}

/// At load, before segments are opened: deletes `.deleted` and `.cleaned` files and
/// completes or drops each `.swap`, exactly as Kafka's loader does.
///
/// 1. Every `.deleted` and `.cleaned` file goes.
/// 2. A `.swap` at or above the smallest `.cleaned` base belongs to an unfinished rename
///    and goes too; so do index `.swap` files (the indexes are rebuilt).
/// 3. For the remaining `.log.swap` files, the normal segment files whose base lies in
///    [min swap base, max swap next offset) are deleted, and each `.swap` is renamed to
///    its final name.
pub(super) fn finish_interrupted(dir: &Path, report: &mut RecoveryReport) -> Result<()> {
    let mut min_cleaned = i64::MAX;
    let mut swaps = Vec::new();
    let mut index_swaps = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(CLEANED) {
            if let Some((base, _)) = parse_file_name(stem) {
                min_cleaned = min_cleaned.min(base);
            }
            remove(&path)?;
            report.removed_files.push(path);
        } else if name.ends_with(DELETED) {
            remove(&path)?;
            report.removed_files.push(path);
        } else if let Some(stem) = name.strip_suffix(SWAP) {
            match parse_file_name(stem) {
                Some((base, "log")) => swaps.push(base),
                _ => index_swaps.push(path),
            }
        }
    }
    for path in index_swaps {
        remove(&path)?;
        report.removed_files.push(path);
    }
    let (drop, keep): (Vec<i64>, Vec<i64>) = swaps.into_iter().partition(|b| *b >= min_cleaned);
    for base in drop {
        let path = with_suffix(dir, base, "log", SWAP);
        remove(&path)?;
        report.removed_files.push(path);
    }
    if let Some(&lo) = keep.iter().min() {
        let mut hi = lo;
        for &base in &keep {
            let next = scan_next_offset(&with_suffix(dir, base, "log", SWAP))?;
            hi = hi.max(next.unwrap_or(base + 1));
        }
        replace_range(dir, lo, hi, report)?;
        // The replaced files must be gone on disk before the output takes their place:
        // a power loss keeping the rename but not the unlinks would leave two segments
        // over the same offsets.
        sync_dir(dir)?;
        for &base in &keep {
            let to = with_suffix(dir, base, "log", "");
            rename(&with_suffix(dir, base, "log", SWAP), &to)?;
            report.completed_swaps.push(to);
        }
    }
    sync_dir(dir)
}

/// Deletes the normal segment files whose base offset lies in `[lo, hi)`.
fn replace_range(dir: &Path, lo: i64, hi: i64, report: &mut RecoveryReport) -> Result<()> {
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((base, ext)) = parse_file_name(name)
            && SEGMENT_EXTS.contains(&ext)
            && (lo..hi).contains(&base)
        {
            remove(&path)?;
            report.removed_files.push(path);
        }
    }
    Ok(())
}
