//! `MappedFile`: a file mapped shared and writable, for appending without a
//! system call per append (the usage journal).
//!
//! Why: on this kind of machine one `write(2)` of a 300-byte usage record to
//! ext4 costs several microseconds of CPU under load (the system call, the
//! page-cache write path, timestamps), a tenth of a whole call. Bytes copied
//! into a shared mapping are in the same page cache at once, so they survive
//! the process being killed exactly as written bytes do; `sync_range`
//! (`msync`) makes them durable on disk where a `fdatasync` would.
//!
//! The file must keep its length while it is mapped (touching a page beyond
//! the end of a shrunk file raises `SIGBUS`), and no other process may write
//! it: that is the contract of the `unsafe fn` [`MappedFile::map`], which its
//! caller states where it maps. The journal keeps it by holding an exclusive
//! lock (`flock`) on its file for as long as it is mapped, allocating every
//! byte (writing zeros) before mapping it, and only ever growing it.

use std::fs::File;
use std::io;

/// A whole file, mapped shared and writable.
pub struct MappedFile {
    map: memmap2::MmapMut,
}

impl MappedFile {
    /// Maps all of `file` (open for reading and writing).
    ///
    /// # Safety
    /// For as long as the returned map lives:
    /// - the file keeps at least its current length: nothing (this process
    ///   or another) truncates or shrinks it, since touching a mapped page
    ///   past the end of the file raises `SIGBUS`;
    /// - no other process maps, writes or truncates those bytes, since
    ///   bytes changed under the map would be changed under Rust references
    ///   to them (`write_at` copies through a `&mut [u8]`).
    ///
    /// Growing the file, reading it, renaming or removing it are fine.
    pub unsafe fn map(file: &File) -> io::Result<Self> {
        // SAFETY: the caller keeps the file's length and keeps other
        // writers away for the map's life (this function's contract), which
        // is what `memmap2` asks of a mutable shared mapping.
        let map = unsafe { memmap2::MmapOptions::new().map_mut(file)? };
        Ok(Self { map })
    }

    /// Bytes mapped (the file's length when mapped).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is mapped (an empty file).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Copies `bytes` into the file at `at`; an error if they do not fit.
    /// Once this returns, the bytes are in the page cache: another process
    /// reading the file sees them, and killing this one does not lose them.
    pub fn write_at(&mut self, at: usize, bytes: &[u8]) -> io::Result<()> {
        let end = at
            .checked_add(bytes.len())
            .filter(|end| *end <= self.map.len())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} bytes at {at} do not fit in a mapping of {}",
                        bytes.len(),
                        self.map.len()
                    ),
                )
            })?;
        self.map[at..end].copy_from_slice(bytes);
        Ok(())
    }

    /// Waits until the bytes in `at..at + len` are on disk (`msync`).
    pub fn sync_range(&self, at: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if at.checked_add(len).is_none_or(|end| end > self.map.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the range to sync is outside the mapping",
            ));
        }
        self.map.flush_range(at, len)
    }
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("len", &self.map.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::MappedFile;
    use std::io::{Read, Write};

    #[test]
    fn bytes_written_through_the_map_are_in_the_file_at_once() {
        let mut file = tempfile_in_target();
        file.write_all(&[0u8; 8192]).unwrap();
        // SAFETY: the file is this test's alone (already unlinked, so no
        // other process can open it) and nothing shrinks it.
        let mut map = unsafe { MappedFile::map(&file) }.unwrap();
        assert_eq!(map.len(), 8192);
        map.write_at(4090, b"across a page").unwrap();
        map.sync_range(4090, 13).unwrap();
        // Read through the file, not the map (another process would).
        let mut back = Vec::new();
        let mut again = file.try_clone().unwrap();
        std::io::Seek::rewind(&mut again).unwrap();
        again.read_to_end(&mut back).unwrap();
        assert_eq!(&back[4090..4103], b"across a page");
        assert!(back[..4090].iter().all(|b| *b == 0));
        // Nothing past the end, and no overflow.
        assert!(map.write_at(8190, b"abc").is_err());
        assert!(map.write_at(usize::MAX, b"a").is_err());
        assert!(map.sync_range(8000, 500).is_err());
        assert!(map.sync_range(0, 0).is_ok());
    }

    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "algohub-sync-mapped-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
