//! Data API storage on the local filesystem: `<data_dir>/files/<account id>/<collection>/...`.
//!
//! Design: directories are real directories and files real files, so the tree
//! can be inspected and backed up with ordinary tools. A write goes to a
//! temporary file in the same directory, is flushed to disk, renamed over the
//! target and the directory is flushed, so an acknowledged write survives a
//! crash and a reader never sees half a file. A collection's ACL is a small
//! file inside it named with the reserved `.algohub-` prefix, which the data
//! API refuses as a user name and leaves out of listings. Paths arrive as
//! checked segments (see `algohub_core::services::split_path`); the account id
//! is a number, so nothing can leave the account's directory. Every operation
//! runs on a blocking thread.

use algohub_core::model::{AccountId, Millis};
use algohub_core::services::{
    DataAcl, DataEntry, DataListItem, DataStorage, RESERVED_PREFIX, StorageError,
};
use async_trait::async_trait;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

const ACL_FILE: &str = ".algohub-acl";

pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage under `root` (created if missing).
    pub fn new(root: PathBuf) -> Result<Self, String> {
        fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create the data directory {}: {e}", root.display()))?;
        Ok(Self { root })
    }

    fn account_dir(&self, owner: AccountId) -> PathBuf {
        self.root.join(owner.to_string())
    }

    fn path_of(&self, owner: AccountId, segments: &[String]) -> PathBuf {
        let mut p = self.account_dir(owner);
        for s in segments {
            p.push(s);
        }
        p
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StorageError::Io(format!("storage task failed: {e}")))?
    }
}

fn io(e: std::io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound,
        ErrorKind::AlreadyExists => StorageError::AlreadyExists,
        ErrorKind::NotADirectory => StorageError::NotADirectory,
        ErrorKind::DirectoryNotEmpty => StorageError::NotEmpty,
        _ => StorageError::Io(e.to_string()),
    }
}

fn modified_millis(meta: &fs::Metadata) -> Millis {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn entry_of(meta: &fs::Metadata) -> DataEntry {
    if meta.is_dir() {
        DataEntry::Dir
    } else {
        DataEntry::File {
            size: meta.len(),
            modified: modified_millis(meta),
        }
    }
}

/// Flushes a directory so a rename or creation inside it is durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Writes `bytes` to `target` atomically and durably.
fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = target.parent().ok_or(StorageError::NotFound)?;
    if !dir.is_dir() {
        return Err(if dir.exists() {
            StorageError::NotADirectory
        } else {
            StorageError::NotFound
        });
    }
    if target.is_dir() {
        return Err(StorageError::AlreadyExists);
    }
    let tmp = dir.join(format!("{RESERVED_PREFIX}tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut f = fs::File::create_new(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, target).map_err(io)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Deletes a tree, counting the files in it.
fn remove_tree(dir: &Path) -> Result<u64, StorageError> {
    let mut files = 0;
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            files += remove_tree(&entry.path())?;
        } else {
            fs::remove_file(entry.path()).map_err(io)?;
            if !entry
                .file_name()
                .to_string_lossy()
                .starts_with(RESERVED_PREFIX)
            {
                files += 1;
            }
        }
    }
    fs::remove_dir(dir).map_err(io)?;
    Ok(files)
}

/// The bytes of the files under `dir` (reserved files and temporary files
/// left out); a directory that does not exist holds none.
fn tree_bytes(dir: &Path) -> Result<u64, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = 0u64;
    for entry in entries {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            bytes = bytes.saturating_add(tree_bytes(&entry.path())?);
        } else if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(RESERVED_PREFIX)
        {
            bytes = bytes.saturating_add(entry.metadata().map_err(io)?.len());
        }
    }
    Ok(bytes)
}

#[async_trait]
impl DataStorage for FsStorage {
    async fn usage(&self, owner: AccountId) -> Result<u64, StorageError> {
        let dir = self.account_dir(owner);
        Self::blocking(move || tree_bytes(&dir)).await
    }

    async fn stat(&self, owner: AccountId, path: &[String]) -> Result<DataEntry, StorageError> {
        let p = self.path_of(owner, path);
        Self::blocking(move || fs::metadata(&p).map(|m| entry_of(&m)).map_err(io)).await
    }

    async fn read(&self, owner: AccountId, path: &[String]) -> Result<Vec<u8>, StorageError> {
        let p = self.path_of(owner, path);
        Self::blocking(move || {
            if p.is_dir() {
                return Err(StorageError::NotFound);
            }
            fs::read(&p).map_err(io)
        })
        .await
    }

    async fn write(
        &self,
        owner: AccountId,
        path: &[String],
        bytes: Vec<u8>,
    ) -> Result<(), StorageError> {
        let p = self.path_of(owner, path);
        Self::blocking(move || write_atomic(&p, &bytes)).await
    }

    async fn create_dir(&self, owner: AccountId, path: &[String]) -> Result<(), StorageError> {
        let account = self.account_dir(owner);
        let p = self.path_of(owner, path);
        Self::blocking(move || {
            if !account.exists() {
                fs::create_dir_all(&account).map_err(io)?;
                if let Some(root) = account.parent() {
                    sync_dir(root)?;
                }
            }
            fs::create_dir(&p).map_err(io)?;
            sync_dir(p.parent().ok_or(StorageError::NotFound)?)
        })
        .await
    }

    async fn list(
        &self,
        owner: AccountId,
        path: &[String],
    ) -> Result<Vec<DataListItem>, StorageError> {
        let p = self.path_of(owner, path);
        let is_root = path.is_empty();
        Self::blocking(move || {
            let entries = match fs::read_dir(&p) {
                Ok(e) => e,
                // An account that never stored anything has an empty root.
                Err(e) if is_root && e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io(e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let meta = entry.metadata().map_err(io)?;
                out.push(DataListItem {
                    name,
                    entry: entry_of(&meta),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    async fn delete_file(&self, owner: AccountId, path: &[String]) -> Result<(), StorageError> {
        let p = self.path_of(owner, path);
        Self::blocking(move || {
            fs::remove_file(&p).map_err(io)?;
            sync_dir(p.parent().ok_or(StorageError::NotFound)?)
        })
        .await
    }

    async fn delete_dir(
        &self,
        owner: AccountId,
        path: &[String],
        recursive: bool,
    ) -> Result<u64, StorageError> {
        let p = self.path_of(owner, path);
        Self::blocking(move || {
            let count = if recursive {
                remove_tree(&p)?
            } else {
                // Only reserved files (the ACL) may be left in an "empty"
                // directory. Remove those, then the directory itself, which
                // fails if anything else is (or has just been put) there.
                let entries: Vec<_> = fs::read_dir(&p)
                    .map_err(io)?
                    .filter_map(|e| e.ok())
                    .collect();
                if entries
                    .iter()
                    .any(|e| !e.file_name().to_string_lossy().starts_with(RESERVED_PREFIX))
                {
                    return Err(StorageError::NotEmpty);
                }
                for e in entries {
                    fs::remove_file(e.path()).map_err(io)?;
                }
                fs::remove_dir(&p).map_err(io)?;
                0
            };
            sync_dir(p.parent().ok_or(StorageError::NotFound)?)?;
            Ok(count)
        })
        .await
    }

    async fn read_acl(&self, owner: AccountId, collection: &str) -> Result<DataAcl, StorageError> {
        let p = self
            .path_of(owner, &[collection.to_string()])
            .join(ACL_FILE);
        Self::blocking(move || match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Io(format!("unreadable ACL {}: {e}", p.display()))),
            // A collection made outside the API has the default ACL.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if p.parent().is_some_and(Path::is_dir) {
                    Ok(DataAcl::MyAlgos)
                } else {
                    Err(StorageError::NotFound)
                }
            }
            Err(e) => Err(io(e)),
        })
        .await
    }

    async fn write_acl(
        &self,
        owner: AccountId,
        collection: &str,
        acl: DataAcl,
    ) -> Result<(), StorageError> {
        let p = self
            .path_of(owner, &[collection.to_string()])
            .join(ACL_FILE);
        Self::blocking(move || {
            let bytes = serde_json::to_vec(&acl).map_err(|e| StorageError::Io(e.to_string()))?;
            write_atomic(&p, &bytes)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn files_directories_and_acls() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new(dir.path().join("files")).unwrap();
        assert_eq!(s.list(7, &[]).await.unwrap(), vec![]);
        s.create_dir(7, &segs(&["coll"])).await.unwrap();
        assert_eq!(
            s.create_dir(7, &segs(&["coll"])).await,
            Err(StorageError::AlreadyExists)
        );
        assert_eq!(s.read_acl(7, "coll").await.unwrap(), DataAcl::MyAlgos);
        s.write_acl(7, "coll", DataAcl::Public).await.unwrap();
        assert_eq!(s.read_acl(7, "coll").await.unwrap(), DataAcl::Public);
        assert_eq!(s.read_acl(7, "nope").await, Err(StorageError::NotFound));
        s.write(7, &segs(&["coll", "a.txt"]), b"one".to_vec())
            .await
            .unwrap();
        s.write(7, &segs(&["coll", "a.txt"]), b"two!".to_vec())
            .await
            .unwrap();
        assert_eq!(s.read(7, &segs(&["coll", "a.txt"])).await.unwrap(), b"two!");
        assert_eq!(
            s.write(7, &segs(&["coll", "missing", "x"]), vec![]).await,
            Err(StorageError::NotFound)
        );
        s.create_dir(7, &segs(&["coll", "sub"])).await.unwrap();
        s.write(7, &segs(&["coll", "sub", "b"]), b"b".to_vec())
            .await
            .unwrap();
        let names: Vec<String> = s
            .list(7, &segs(&["coll"]))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["a.txt", "sub"], "the ACL file is not listed");
        assert!(matches!(
            s.stat(7, &segs(&["coll", "a.txt"])).await.unwrap(),
            DataEntry::File { size: 4, .. }
        ));
        assert_eq!(
            s.delete_dir(7, &segs(&["coll"]), false).await,
            Err(StorageError::NotEmpty)
        );
        assert_eq!(s.delete_dir(7, &segs(&["coll"]), true).await.unwrap(), 2);
        assert_eq!(s.list(7, &[]).await.unwrap(), vec![]);
        // Accounts are separate trees.
        assert_eq!(
            s.stat(8, &segs(&["coll"])).await,
            Err(StorageError::NotFound)
        );
    }
}
