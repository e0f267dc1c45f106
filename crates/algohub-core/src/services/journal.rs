//! The usage journal: a node-local, append-only file that makes a call's
//! usage record durable before the call's response goes out, so that the
//! database can take records in large batches behind the calls.
//!
//! Design:
//! - One file per running node (`<uuid>.journal` in the journal directory),
//!   held under an exclusive lock (`flock`) for the life of the process. It is
//!   created under a temporary name and renamed once locked, so a `.journal`
//!   file that is not locked belongs to a process that is gone.
//! - A batch is one line per record (a JSON array of the record's fields in
//!   declaration order, a third the size of an object), written with one `write` (plus
//!   `fdatasync` when configured). Once `write` returned, the bytes are in the
//!   kernel: a killed process (`kill -9`) loses nothing; an operating-system
//!   crash or power loss can, unless `fsync` is on.
//! - A failed append is cut off again (`set_len`) and the meter gives the
//!   journal up, committing straight to the store until the next start.
//! - The file is emptied once everything in it is in the store; at start, the
//!   journals of processes that are gone are loaded into the store (loading is
//!   idempotent: records are keyed by request id) and removed. An unreadable
//!   line (a torn last write, whose call never got an answer) is skipped.

use crate::model::{UsageRecord, UsageStatus, Via};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// The journal file of this process.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    fsync: bool,
    /// Bytes of whole batches in the file.
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
            .append(true)
            .open(&tmp)?;
        // Nobody else can know a fresh name, so the lock is ours at once.
        file.try_lock().map_err(io::Error::other)?;
        let path = dir.join(format!("{name}.journal"));
        fs::rename(&tmp, &path)?;
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        Ok(Self {
            file,
            path,
            fsync,
            len: 0,
        })
    }

    /// Bytes of records in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends records; once this returns `Ok`, they survive the process.
    pub(crate) fn append(&mut self, records: &[UsageRecord]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 320);
        for r in records {
            serde_json::to_writer(&mut buf, &line(r)).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let written = self.file.write_all(&buf).and_then(|()| {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut off what part of the batch got in, so the next append
                // starts on a line of its own.
                self.file.set_len(self.len)?;
                Err(e)
            }
        }
    }

    /// Empties the file: everything in it is in the store.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
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
    pub(crate) records: Vec<UsageRecord>,
    /// Lines that could not be read (a torn last write).
    pub(crate) skipped: usize,
    _file: File,
}

impl Orphan {
    /// Removes the file (its records are in the store).
    pub(crate) fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// The journals in `dir` whose process is gone (nobody holds their lock).
pub(crate) fn orphans(dir: &Path) -> io::Result<Vec<Orphan>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "journal") {
            continue;
        }
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            // Removed meanwhile by another node that loaded it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Locked now; it may have been loaded and removed just before.
        if !path.exists() {
            continue;
        }
        let (records, skipped) = read_records(&file)?;
        found.push(Orphan {
            path,
            records,
            skipped,
            _file: file,
        });
    }
    Ok(found)
}

/// A record's journal line: its fields in declaration order.
type Line<S, O> = (
    S,
    i64,
    i64,
    i64,
    i64,
    i64,
    Via,
    Option<i64>,
    Option<i64>,
    S,
    S,
    S,
    UsageStatus,
    O,
    i64,
    i64,
);

fn line(r: &UsageRecord) -> Line<&str, Option<&str>> {
    (
        &r.request_id,
        r.started_at,
        r.duration_us,
        r.caller_id,
        r.acting_as_id,
        r.payer_id,
        r.via,
        r.algorithm_id,
        r.owner_id,
        &r.algo_owner,
        &r.algo_name,
        &r.version,
        r.status,
        r.error_code.as_deref(),
        r.compute_units,
        r.royalty_microcredits,
    )
}

fn from_line(l: Line<String, Option<String>>) -> UsageRecord {
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

/// The records of a journal file, and how many lines could not be read.
fn read_records(file: &File) -> io::Result<(Vec<UsageRecord>, usize)> {
    let mut records = Vec::new();
    let mut skipped = 0;
    for line in io::BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(l) => records.push(from_line(l)),
            Err(_) => skipped += 1,
        }
    }
    Ok((records, skipped))
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

    #[test]
    fn a_live_journal_is_not_an_orphan_and_a_dead_one_is_read_back() {
        let dir = temp_dir("orphans");
        let mut j = Journal::create(&dir, false).unwrap();
        j.append(&[record("a"), record("b")]).unwrap();
        j.append(&[record("c")]).unwrap();
        assert!(orphans(&dir).unwrap().is_empty(), "held by a live journal");
        let path = j.path.clone();
        drop(j);
        // A torn last write: half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"request_id\":\"d\",\"sta").unwrap();
        drop(f);
        let found = orphans(&dir).unwrap();
        assert_eq!(found.len(), 1);
        let ids: Vec<&str> = found[0]
            .records
            .iter()
            .map(|r| r.request_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(found[0].records[0], record("a"));
        assert_eq!(found[0].skipped, 1);
        // Locked by the first reader: a second one does not see it.
        assert!(orphans(&dir).unwrap().is_empty());
        for o in found {
            o.remove().unwrap();
        }
        assert!(orphans(&dir).unwrap().is_empty());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clearing_empties_the_file_and_appends_continue() {
        let dir = temp_dir("clear");
        let mut j = Journal::create(&dir, true).unwrap();
        j.append(&[record("a")]).unwrap();
        assert!(j.len() > 0);
        j.clear().unwrap();
        assert_eq!(j.len(), 0);
        j.append(&[record("b")]).unwrap();
        let path = j.path.clone();
        drop(j);
        let found = orphans(&dir).unwrap();
        assert_eq!(found[0].records, vec![record("b")]);
        assert_eq!(fs::metadata(&path).unwrap().len(), found_len(&found[0]));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn found_len(o: &Orphan) -> u64 {
        o.records
            .iter()
            .map(|r| serde_json::to_vec(&line(r)).unwrap().len() as u64 + 1)
            .sum()
    }
}
