//! A memory-mapped file of fixed-size index entries, shared by the offset and time indexes.
//!
//! While its segment is active the file is preallocated (sparse) to the configured
//! maximum and mapped read-write; the entry count lives in memory. On roll and close it is
//! trimmed to `entries * entry_size`, so the file size alone tells how many entries it has
//! (Kafka's reader assumes exactly that).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{IoContext, Result};

/// One index file and its mapping.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    /// `None` when the file is empty: a zero-length file cannot be mapped.
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    /// Entries the current file length can hold.
    capacity: usize,
}

impl IndexFile {
    /// Opens (creating if needed) the index at `path`. Entries are taken to be
    /// `len / entry_size`: the caller checks them against the log before trusting them.
    /// A trailing partial entry is ignored and reported through [`IndexFile::torn`].
    pub(crate) fn open(path: &Path, entry_size: usize) -> Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let len = file.metadata().at(path)?.len() as usize;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_size,
            entries: len / entry_size,
            capacity: len / entry_size,
        };
        index.remap(len)?;
        Ok(index)
    }

    /// Whether the file length is not a multiple of the entry size.
    pub(crate) fn torn(&self) -> Result<bool> {
        let len = self.file.metadata().at(&self.path)?.len() as usize;
        Ok(!len.is_multiple_of(self.entry_size))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The bytes of entry `i < len()`.
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        let map = self.mmap.as_ref().expect("a file with entries is mapped");
        &map[i * self.entry_size..(i + 1) * self.entry_size]
    }

    /// Appends an entry; the caller checked `len() < capacity()`.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        debug_assert_eq!(bytes.len(), self.entry_size);
        let at = self.entries * self.entry_size;
        let map = self.mmap.as_mut().expect("a file with capacity is mapped");
        map[at..at + self.entry_size].copy_from_slice(bytes);
        self.entries += 1;
    }

    /// Forgets entries from `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Grows (sparsely) or shrinks the file to hold `max_bytes` rounded down to whole
    /// entries, never below the live entries, and maps it again.
    pub(crate) fn resize(&mut self, max_bytes: usize) -> Result<()> {
        let bytes = (max_bytes / self.entry_size).max(self.entries) * self.entry_size;
        self.mmap = None;
        self.file.set_len(bytes as u64).at(&self.path)?;
        self.capacity = bytes / self.entry_size;
        self.remap(bytes)
    }

    /// Trims the file to exactly its entries.
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    /// Writes the mapped entries and the file length to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        if let Some(map) = &self.mmap {
            map.flush().at(&self.path)?;
        }
        self.file.sync_all().at(&self.path)
    }

    fn remap(&mut self, len: usize) -> Result<()> {
        self.mmap = if len == 0 {
            None
        } else {
            Some(map_file(&self.file).at(&self.path)?)
        };
        Ok(())
    }
}

/// Maps `file` read-write.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<MmapMut> {
    // SAFETY: the map is only sound while nobody else truncates or rewrites the file.
    // Index files live inside a partition directory that one process owns (`LogDir` holds
    // an exclusive OS lock on the data directory's `.lock`; a bare `Log` documents that its
    // directory must not be shared), and within this process the only writer is the
    // `IndexFile` holding this map, which drops the map before every `set_len`.
    unsafe { MmapMut::map_mut(file) }
}
