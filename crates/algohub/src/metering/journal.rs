//! The usage journal: node-local, append-only files that make a call's usage
//! record durable before the call's response goes out, so that the database
//! can take records in large batches behind the calls.
//!
//! Design:
//! - A running node appends to one file (`<uuid>.journal` in the journal
//!   directory, which must be on a local file system), held under an
//!   exclusive lock (`flock`) for as long as the node keeps it. It is created
//!   under a temporary name and renamed once locked, so a `.journal` file
//!   that is not locked belongs to a process that is gone. Once a file is big
//!   the node starts another and removes the old one when everything in it
//!   is in the store (the meter decides; see `metering/mod.rs`).
//! - A file starts with a version line; then one line per record (a JSON
//!   array of the record's fields in declaration order), then zeros: the
//!   file is allocated ahead (zeros written, `GROW_BYTES` at a time) and
//!   mapped shared ([`MappedFile`]), and a batch is copied into the map
//!   (plus `msync` of its bytes when `fsync` is configured). Once copied,
//!   the bytes are in the kernel's page cache, as after a `write`, so a
//!   killed process (`kill -9`) loses nothing; an operating-system crash or
//!   power loss can, unless `fsync` is on. A copy costs no system call,
//!   where a `write` cost several microseconds of CPU under load.
//! - Records end at the first zero byte (a JSON line never holds one). A
//!   process killed in the middle of a copy leaves part of a line before
//!   the zeros: a torn last line, whose call got no answer. Appends are
//!   serialized (the meter's lock), so only the last one can be torn.
//! - A failed append is zeroed again and the meter gives the journal up,
//!   committing straight to the store until the next start.
//! - At start (and now and then while running), the journals of processes
//!   that are gone are loaded into the store (loading is idempotent: records
//!   are keyed by request id) and removed. Only a last line without its
//!   newline (a write cut short, whose calls got no answer) may be skipped;
//!   a file with any other unreadable line is loaded as far as it can be and
//!   set aside as `.unreadable` for an operator, never removed; a file of
//!   another format version is left in place for that version.

use algohub_core::model::{UsageRecord, UsageStatus, Via};
use algohub_sync::MappedFile;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first line of every journal file: format name and version.
const HEADER: &[u8] = b"[\"algohub-usage-journal\",1]\n";

/// A journal file is allocated ahead (zeros written, then mapped) this many
/// bytes at a time.
const GROW_BYTES: usize = 256 << 10;

/// A temporary journal file this old was left by a process that died.
const TMP_LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// A journal file of this process.
pub(crate) struct Journal {
    file: File,
    /// All of `file` (records, then the zeros allocated ahead), mapped.
    map: MappedFile,
    path: PathBuf,
    fsync: bool,
    /// Bytes of the header and of whole batches (where the zeros begin).
    len: u64,
}

impl Journal {
    /// Creates and locks a fresh journal file in `dir` (created if missing).
    pub(crate) fn create(dir: &Path, fsync: bool) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&tmp)?;
        // Nobody else can know a fresh name, so the lock is ours at once.
        file.try_lock().map_err(io::Error::other)?;
        (&file).write_all(HEADER)?;
        let map = allocate(&file, HEADER.len(), HEADER.len() + GROW_BYTES, fsync)?;
        let path = dir.join(format!("{name}.journal"));
        fs::rename(&tmp, &path)?;
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        Ok(Self {
            file,
            map,
            path,
            fsync,
            len: HEADER.len() as u64,
        })
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends records; once this returns `Ok`, they survive the process.
    #[cfg(test)]
    pub(crate) fn append(&mut self, records: &[UsageRecord]) -> io::Result<()> {
        self.append_encoded(&encode(records)?)
    }

    /// Appends lines made by `encode`; once this returns `Ok`, they survive
    /// the process.
    pub(crate) fn append_encoded(&mut self, buf: &[u8]) -> io::Result<()> {
        let at = usize::try_from(self.len).map_err(io::Error::other)?;
        let end = at + buf.len();
        if end > self.map.len() {
            // Nothing of the batch is in yet, so a failure here leaves the
            // file as it was.
            let to = end.next_multiple_of(GROW_BYTES);
            self.map = allocate(&self.file, self.map.len(), to, self.fsync)?;
        }
        self.map.write_at(at, buf)?;
        if self.fsync
            && let Err(e) = self.map.sync_range(at, buf.len())
        {
            // Zero the batch again, so the next append starts on a line of
            // its own (and nothing reads this one back).
            self.map.write_at(at, &vec![0; buf.len()])?;
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (everything in it is in the store); the lock is
    /// held until the journal is dropped.
    pub(crate) fn remove(&self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// Grows `file` from `from` to `to` bytes with zeros (allocated on disk, so
/// that a full disk fails here rather than at a copy into the map), makes
/// its new length durable when `fsync` is set, and maps all of it.
#[allow(unsafe_code)]
fn allocate(file: &File, from: usize, to: usize, fsync: bool) -> io::Result<MappedFile> {
    let zeros = vec![0u8; (to - from).min(GROW_BYTES)];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len());
        file.write_all_at(&zeros[..n], at as u64)?;
        at += n;
    }
    if fsync {
        file.sync_data()?;
    }
    // SAFETY: `file` is a journal file of this process, under an exclusive
    // `flock` from `Journal::create` for as long as the `Journal` (and so
    // the map) lives; other processes only open journals they can lock, and
    // then only read and remove them, so none writes or shrinks this one.
    // This process never shrinks it: it only grows it (above, before
    // mapping) and replaces the map.
    unsafe { MappedFile::map(file) }
}

/// The journal lines of `records` (done before taking the journal's lock,
/// so concurrent calls hold it only for their `write`).
pub(crate) fn encode(records: &[UsageRecord]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(records.len() * 320);
    for r in records {
        serde_json::to_writer(&mut buf, &r.columns()).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

/// A journal left by a process that is gone, locked by us until dropped.
pub(crate) struct Orphan {
    pub(crate) path: PathBuf,
    file: File,
}

/// What an orphan journal holds.
pub(crate) struct Contents {
    pub(crate) records: Vec<UsageRecord>,
    /// The last line had no newline (a write cut short; its calls got no answer).
    pub(crate) torn: bool,
    /// Complete lines that could not be read.
    pub(crate) unreadable: usize,
    /// Written by a later version (its header names another format): not
    /// read at all, left for that version to load.
    pub(crate) foreign: bool,
}

impl Orphan {
    /// Reads the file's records.
    pub(crate) fn read(&self) -> io::Result<Contents> {
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut &self.file, &mut bytes)?;
        Ok(parse(&bytes))
    }

    /// Removes the file (its records are in the store).
    pub(crate) fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }

    /// Renames the file to `.unreadable`, out of the loader's way; returns the new path.
    pub(crate) fn set_aside(self) -> io::Result<PathBuf> {
        let to = self.path.with_extension("unreadable");
        fs::rename(&self.path, &to)?;
        Ok(to)
    }
}

/// The journals in `dir` whose process is gone (nobody holds their lock),
/// locked by the caller, except the files named in `own` (this process's,
/// skipped even where a file system's locks do not tell processes apart);
/// removes temporary files a process left behind between creating and
/// naming its journal. A file that cannot be opened is logged and skipped.
pub(crate) fn orphans(dir: &Path, own: &[PathBuf]) -> io::Result<Vec<Orphan>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let journal = path.extension().is_some_and(|x| x == "journal");
        // A temporary file is named within microseconds, unless its process
        // died first: only old ones are left over.
        let tmp = path.extension().is_some_and(|x| x == "tmp")
            && fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > TMP_LEFTOVER_AGE));
        if (!journal && !tmp) || own.contains(&path) {
            continue;
        }
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            // Removed meanwhile by another node that loaded it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot open a usage journal; skipped");
                continue;
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(e)) => {
                tracing::error!(path = %path.display(), error = %e, "cannot lock a usage journal; skipped");
                continue;
            }
        }
        // Locked now; it may have been loaded and removed (or named) just before.
        if !path.exists() {
            continue;
        }
        if tmp {
            // Never named, so never written to: nothing to load.
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover journal file");
            }
            continue;
        }
        found.push(Orphan { path, file });
    }
    Ok(found)
}

/// A journal line as read back: `UsageRecord::columns`, owned.
type Line = (
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Via,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    UsageStatus,
    Option<String>,
    i64,
    i64,
);

fn from_line(l: Line) -> UsageRecord {
    UsageRecord {
        request_id: l.0,
        started_at: l.1,
        duration_us: l.2,
        caller_id: l.3,
        acting_as_id: l.4,
        payer_id: l.5,
        via: l.6,
        algorithm_id: l.7,
        owner_id: l.8,
        algo_owner: l.9,
        algo_name: l.10,
        version: l.11,
        status: l.12,
        error_code: l.13,
        compute_units: l.14,
        royalty_microcredits: l.15,
    }
}

/// The records of a journal file's bytes.
fn parse(bytes: &[u8]) -> Contents {
    let mut out = Contents {
        records: Vec::new(),
        torn: false,
        unreadable: 0,
        foreign: false,
    };
    // The zeros allocated ahead of the records (a JSON line holds none).
    let bytes = &bytes[..bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len())];
    if bytes.is_empty() {
        return out;
    }
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` leaves what follows the last newline: empty, or a torn line.
    let last = lines.pop().unwrap_or_default();
    if !last.is_empty() {
        out.torn = true;
    }
    let mut lines = lines.into_iter();
    match lines.next() {
        Some(h) if h.len() + 1 == HEADER.len() && HEADER.starts_with(h) => {}
        // Only the header, cut short: the file was never written to.
        None if HEADER.starts_with(last) => return out,
        _ => {
            // Another format (a later version's): leave all of it alone.
            out.foreign = true;
            return out;
        }
    }
    for line in lines {
        match serde_json::from_slice(line) {
            Ok(l) => out.records.push(from_line(l)),
            Err(_) => out.unreadable += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.into(),
            started_at: 1,
            duration_us: 2,
            caller_id: 3,
            acting_as_id: 3,
            payer_id: 3,
            via: Via::MemberKey,
            algorithm_id: Some(4),
            owner_id: None,
            algo_owner: "al\nice".into(),
            algo_name: "echo".into(),
            version: "1.0.0".into(),
            status: UsageStatus::Limited,
            error_code: Some("x".into()),
            compute_units: 5,
            royalty_microcredits: 6,
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "algohub-journal-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ids(c: &Contents) -> Vec<&str> {
        c.records.iter().map(|r| r.request_id.as_str()).collect()
    }

    #[test]
    fn a_live_journal_is_not_an_orphan_and_a_dead_one_is_read_back() {
        let dir = temp_dir("orphans");
        let mut j = Journal::create(&dir, false).unwrap();
        j.append(&[record("a"), record("b")]).unwrap();
        j.append(&[record("c")]).unwrap();
        assert!(
            orphans(&dir, &[]).unwrap().is_empty(),
            "held by a live journal"
        );
        assert!(
            orphans(&dir, std::slice::from_ref(&j.path))
                .unwrap()
                .is_empty(),
            "and named as our own"
        );
        let (path, end) = (j.path.clone(), j.len());
        drop(j);
        // A torn last copy: part of a line where the records end, before
        // the zeros allocated ahead.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"[\"d\",17", end).unwrap();
        drop(f);
        // A temporary file left between creating and naming a journal (old),
        // and one being named right now (new).
        let old = File::create(dir.join(".x.tmp")).unwrap();
        old.set_modified(std::time::SystemTime::now() - 2 * TMP_LEFTOVER_AGE)
            .unwrap();
        fs::write(dir.join(".y.tmp"), b"").unwrap();
        let found = orphans(&dir, &[]).unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            !dir.join(".x.tmp").exists(),
            "leftover temporary file removed"
        );
        assert!(dir.join(".y.tmp").exists(), "a new one is left alone");
        fs::remove_file(dir.join(".y.tmp")).unwrap();
        let c = found[0].read().unwrap();
        assert_eq!(ids(&c), ["a", "b", "c"]);
        assert_eq!(c.records[0], record("a"));
        assert!(c.torn);
        assert_eq!(c.unreadable, 0);
        // Locked by the first reader: a second one does not see it.
        assert!(orphans(&dir, &[]).unwrap().is_empty());
        for o in found {
            o.remove().unwrap();
        }
        assert!(orphans(&dir, &[]).unwrap().is_empty());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_lines_and_unknown_versions_are_counted_not_dropped() {
        let header = std::str::from_utf8(HEADER).unwrap();
        let good = serde_json::to_string(&record("a").columns()).unwrap();
        let c = parse(format!("{header}{good}\n{{\"not\": 1}}\n{good}\n").as_bytes());
        assert_eq!((c.records.len(), c.unreadable, c.torn), (2, 1, false));
        let c = parse(format!("[\"algohub-usage-journal\",2]\n{good}\n").as_bytes());
        assert_eq!(
            (c.records.len(), c.foreign),
            (0, true),
            "a later version is left alone"
        );
        let c = parse(&HEADER[..5]);
        assert_eq!(
            (c.records.len(), c.unreadable),
            (0, 0),
            "a header cut short"
        );
        let c = parse(b"");
        assert_eq!((c.records.len(), c.unreadable, c.torn), (0, 0, false));
    }

    #[test]
    fn a_removed_journal_and_one_set_aside_are_gone_from_the_loader() {
        let dir = temp_dir("remove");
        let mut j = Journal::create(&dir, true).unwrap();
        j.append(&[record("a")]).unwrap();
        let bytes = fs::read(&j.path).unwrap();
        let len = usize::try_from(j.len()).unwrap();
        assert!(bytes.len() > len, "allocated ahead");
        assert!(bytes[..len].starts_with(HEADER) && bytes[len - 1] == b'\n');
        assert!(
            bytes[len..].iter().all(|b| *b == 0),
            "len counts the header and the records; zeros follow"
        );
        j.remove().unwrap();
        drop(j);
        let mut k = Journal::create(&dir, false).unwrap();
        k.append(&[record("b")]).unwrap();
        drop(k);
        let found = orphans(&dir, &[]).unwrap();
        assert_eq!(found.len(), 1);
        let aside = found.into_iter().next().unwrap().set_aside().unwrap();
        assert!(aside.exists());
        assert!(orphans(&dir, &[]).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_grows_past_what_was_allocated_and_reads_back_whole() {
        let dir = temp_dir("grow");
        for fsync in [false, true] {
            let mut j = Journal::create(&dir, fsync).unwrap();
            let first = fs::metadata(&j.path).unwrap().len();
            // One batch bigger than a whole allocation step, then small ones.
            let big: Vec<UsageRecord> = (0..4000).map(|i| record(&format!("big-{i}"))).collect();
            assert!(encode(&big).unwrap().len() > GROW_BYTES);
            j.append(&big).unwrap();
            for i in 0..50 {
                j.append(&[record(&format!("small-{i}"))]).unwrap();
            }
            let grown = fs::metadata(&j.path).unwrap().len();
            assert!(grown > first && grown >= j.len(), "{first} -> {grown}");
            let path = j.path.clone();
            drop(j);
            let found = orphans(&dir, &[]).unwrap();
            assert_eq!(found.len(), 1);
            let c = found[0].read().unwrap();
            assert_eq!(c.records.len(), 4050);
            assert_eq!(c.records[3999].request_id, "big-3999");
            assert_eq!(c.records[4049].request_id, "small-49");
            assert!(!c.torn && c.unreadable == 0);
            for o in found {
                o.remove().unwrap();
            }
            assert!(!path.exists());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_copy_cut_short_anywhere_is_a_torn_last_line() {
        let header = std::str::from_utf8(HEADER).unwrap();
        let good = serde_json::to_string(&record("a").columns()).unwrap();
        let torn = serde_json::to_string(&record("b").columns()).unwrap();
        let mut bytes = format!("{header}{good}\n").into_bytes();
        let start = bytes.len();
        bytes.extend_from_slice(torn.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(&[0; 4096]);
        // A copy may store its end before its middle: killed in between,
        // the line has a hole of zeros and may even end in its newline.
        for hole in [start, start + 1, start + 40, start + torn.len()] {
            let mut b = bytes.clone();
            b[hole..hole + 8].fill(0);
            let c = parse(&b);
            assert_eq!(ids(&c), ["a"], "hole at {hole}");
            assert_eq!(c.unreadable, 0, "hole at {hole}");
            assert_eq!(c.torn, hole > start, "hole at {hole}");
        }
        let c = parse(&bytes);
        assert_eq!(ids(&c), ["a", "b"]);
        assert!(!c.torn);
    }
}
