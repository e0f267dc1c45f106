//! The data API: files and directories in per-account collections
//! (`data://owner/collection/path`, `.my` = the caller's own account).
//!
//! Design: paths are parsed once into a [`DataPath`] (owner resolved, every
//! segment checked: no `..`, no `.`, no separators, no control characters, no
//! reserved `.algohub-` prefix), so a storage backend only ever sees clean
//! relative segments under an account. Bytes live behind the [`DataStorage`]
//! port (the local filesystem by default; an object store can implement the
//! same trait). Access: the owner's side (`data.read` / `data.write`, which the
//! policy gives the account itself and org members by role) or, for reading,
//! a collection whose ACL is public (`data.read_public`). Someone who may not
//! read a collection is told it does not exist.

use super::Authorizer;
use super::Base;
use super::Directory;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountId, Millis};
use crate::policy::{Action, Resource};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// Prefix of names the storage keeps for itself (temporary files, ACLs).
pub const RESERVED_PREFIX: &str = ".algohub-";
/// Entries per listing page.
pub const LIST_PAGE: usize = 1000;
const MAX_SEGMENT_BYTES: usize = 255;
const MAX_DEPTH: usize = 32;

/// Who may read a collection besides its owner's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataAcl {
    /// Every authenticated user (`user://*`).
    Public,
    /// The owner's algorithms (`algo://.my/*`): the default for a new collection.
    MyAlgos,
    /// The owner's side only (`[]`).
    Private,
}

impl DataAcl {
    /// The v1 `acl.read` list.
    pub fn to_read_list(self) -> Vec<&'static str> {
        match self {
            Self::Public => vec!["user://*"],
            Self::MyAlgos => vec!["algo://.my/*"],
            Self::Private => vec![],
        }
    }

    /// Parses a v1 `acl.read` list.
    pub fn from_read_list(list: &[String]) -> Result<Self> {
        if list.is_empty() {
            return Ok(Self::Private);
        }
        let mut acl = Self::Private;
        for item in list {
            match item.as_str() {
                "user://*" => acl = Self::Public,
                "algo://.my/*" if acl != Self::Public => acl = Self::MyAlgos,
                "algo://.my/*" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "unknown ACL entry {other:?}: use \"user://*\" (public), \"algo://.my/*\" \
                         (my algorithms) or an empty list (private)"
                    )));
                }
            }
        }
        Ok(acl)
    }
}

/// What a path names in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEntry {
    File { size: u64, modified: Millis },
    Dir,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataListItem {
    pub name: String,
    pub entry: DataEntry,
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("the directory is not empty")]
    NotEmpty,
    #[error("a parent of the path is not a directory")]
    NotADirectory,
    #[error("storage failure: {0}")]
    Io(String),
}

/// Where data bytes live. Paths are an account and clean segments (the first
/// is the collection); the backend owns durability (an acknowledged write
/// survives a crash) and atomic replacement of files.
#[async_trait]
pub trait DataStorage: Send + Sync {
    /// The bytes of all of an account's files (what its storage quota counts).
    async fn usage(&self, owner: AccountId) -> Result<u64, StorageError>;
    async fn stat(&self, owner: AccountId, path: &[String]) -> Result<DataEntry, StorageError>;
    async fn read(&self, owner: AccountId, path: &[String]) -> Result<Vec<u8>, StorageError>;
    /// Creates or replaces a file; its directory must exist.
    async fn write(
        &self,
        owner: AccountId,
        path: &[String],
        bytes: Vec<u8>,
    ) -> Result<(), StorageError>;
    /// Creates one directory; its parent must exist (the account root always does).
    async fn create_dir(&self, owner: AccountId, path: &[String]) -> Result<(), StorageError>;
    /// Every entry of a directory (reserved names left out), sorted by name.
    async fn list(
        &self,
        owner: AccountId,
        path: &[String],
    ) -> Result<Vec<DataListItem>, StorageError>;
    async fn delete_file(&self, owner: AccountId, path: &[String]) -> Result<(), StorageError>;
    /// Deletes a directory; with `recursive`, its contents too. Returns how
    /// many files were deleted. `NotEmpty` without `recursive`.
    async fn delete_dir(
        &self,
        owner: AccountId,
        path: &[String],
        recursive: bool,
    ) -> Result<u64, StorageError>;
    async fn read_acl(&self, owner: AccountId, collection: &str) -> Result<DataAcl, StorageError>;
    async fn write_acl(
        &self,
        owner: AccountId,
        collection: &str,
        acl: DataAcl,
    ) -> Result<(), StorageError>;
}

/// A checked data path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPath {
    /// The owner as written (`.my` or a name), for echoing URIs back.
    pub owner_as_given: String,
    pub owner: AccountId,
    /// Collection first; empty for the account root.
    pub segments: Vec<String>,
}

impl DataPath {
    /// `data://<owner as given>/<segments>`.
    pub fn uri(&self) -> String {
        let mut s = format!("data://{}", self.owner_as_given);
        for seg in &self.segments {
            s.push('/');
            s.push_str(seg);
        }
        s
    }
}

fn bad_path(raw: &str, why: &str) -> Error {
    Error::new(
        Code::InvalidPath,
        format!("invalid data path {raw:?}: {why}"),
    )
}

/// Splits a decoded path into checked segments (empty ones from doubled or
/// trailing slashes are dropped).
pub fn split_path(raw: &str) -> Result<Vec<String>> {
    let trimmed = raw.strip_prefix("data://").unwrap_or(raw);
    if trimmed.contains("://") {
        return Err(bad_path(raw, "only data:// paths are served here"));
    }
    let mut out = Vec::new();
    for seg in trimmed.split('/').filter(|s| !s.is_empty()) {
        let seg = crate::names::one_spelling(seg);
        let seg = seg.as_ref();
        if seg == "." || seg == ".." {
            return Err(bad_path(raw, "'.' and '..' are not allowed"));
        }
        if seg.len() > MAX_SEGMENT_BYTES {
            return Err(bad_path(raw, "a segment is longer than 255 bytes"));
        }
        if seg.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad_path(raw, "control characters and '\\' are not allowed"));
        }
        if seg.chars().any(crate::names::is_bidi_control) {
            return Err(bad_path(
                raw,
                "bidirectional control characters (U+061C, U+200E, U+200F, U+202A to U+202E, \
                 U+2066 to U+2069) are not allowed: they make a name display as another",
            ));
        }
        if seg.starts_with(RESERVED_PREFIX) {
            return Err(bad_path(raw, "names starting with .algohub- are reserved"));
        }
        out.push(seg.to_string());
    }
    if out.len() > MAX_DEPTH + 1 {
        return Err(bad_path(raw, "too deep"));
    }
    Ok(out)
}

/// Collection names follow the v1 client's rule.
fn check_collection_name(name: &str) -> Result<()> {
    crate::names::check_identifier(name, 30, "collection")
}

fn storage_error(e: StorageError, path: &DataPath) -> Error {
    match e {
        StorageError::NotFound | StorageError::NotADirectory => {
            Error::new(Code::DataNotFound, format!("{} does not exist", path.uri()))
        }
        StorageError::AlreadyExists => {
            Error::new(Code::DataConflict, format!("{} already exists", path.uri()))
        }
        StorageError::NotEmpty => Error::new(
            Code::DataConflict,
            format!(
                "{} is not empty: delete it with force=true to delete its contents too",
                path.uri()
            ),
        ),
        StorageError::Io(m) => Error::new(Code::Internal, format!("data storage failed: {m}")),
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct DataListing {
    pub folders: Vec<String>,
    pub files: Vec<(String, u64, Millis)>,
    /// The name to continue after, when more entries follow.
    pub marker: Option<String>,
    pub acl: Option<DataAcl>,
}

/// The data API: collections and files, and their permissions.
pub struct DataService {
    pub(super) store: Arc<dyn Store>,
    pub(super) authz: Arc<Authorizer>,
    pub(super) directory: Directory,
    files: Option<Arc<dyn DataStorage>>,
    pub(super) settings: Arc<super::Settings>,
    pub(super) quotas: super::data_quota::Quotas,
}

impl DataService {
    pub(super) fn new(base: &Base, files: Option<Arc<dyn DataStorage>>) -> Self {
        Self {
            store: base.store.clone(),
            authz: base.authz.clone(),
            directory: base.directory.clone(),
            files,
            settings: base.settings.clone(),
            quotas: Default::default(),
        }
    }
}

impl DataService {
    /// The root folders a caller sees (`GET /v1/data/`): their own account first.
    pub async fn data_root(&self, ctx: &RequestCtx) -> Result<Vec<String>> {
        let me = self.store.get_account(ctx.account_id()).await?;
        Ok(vec![me.name])
    }

    /// Whether this node serves the data API.
    pub(crate) fn serves_files(&self) -> bool {
        self.files.is_some()
    }

    pub(super) fn storage(&self) -> Result<&dyn DataStorage> {
        self.files
            .as_deref()
            .ok_or_else(|| Error::new(Code::Unavailable, "this node does not serve the data API"))
    }

    /// Resolves `owner/collection/...` (owner may be `.my`).
    pub async fn data_path(&self, ctx: &RequestCtx, raw: &str) -> Result<DataPath> {
        let mut segments = split_path(raw)?;
        if segments.is_empty() {
            return Err(bad_path(raw, "name an owner: .my/collection/..."));
        }
        let owner_as_given = segments.remove(0);
        let owner = if owner_as_given == ".my" {
            ctx.account_id()
        } else {
            self.directory
                .account(&owner_as_given)
                .await
                .map_err(|_| {
                    Error::new(
                        Code::DataNotFound,
                        format!("data://{owner_as_given} does not exist"),
                    )
                })?
                .id
        };
        Ok(DataPath {
            owner_as_given,
            owner,
            segments,
        })
    }

    /// Read access: the owner's side; anyone for a public collection; the
    /// owner's algorithms, during a call (call token), for a `my_algos` one.
    /// Someone who may not read gets "does not exist".
    async fn authorize_data_read(&self, ctx: &RequestCtx, path: &DataPath) -> Result<()> {
        let owner = Resource::Account(path.owner);
        if self.authz.can(ctx, Action::DataRead, owner) {
            return Ok(());
        }
        match path.segments.first() {
            // An account's root: anyone lists it, seeing only public collections.
            None => return self.authz.authorize(ctx, Action::DataReadPublic, owner),
            Some(collection) => match self.storage()?.read_acl(path.owner, collection).await {
                Ok(DataAcl::Public) => {
                    return self.authz.authorize(ctx, Action::DataReadPublic, owner);
                }
                Ok(DataAcl::MyAlgos) if ctx.principal.is_algorithm_of(path.owner) => {
                    return self.authz.authorize(ctx, Action::DataReadPublic, owner);
                }
                _ => {}
            },
        }
        Err(Error::new(
            Code::DataNotFound,
            format!("{} does not exist", path.uri()),
        ))
    }

    async fn authorize_data_write(&self, ctx: &RequestCtx, path: &DataPath) -> Result<()> {
        if self
            .authz
            .can(ctx, Action::DataWrite, Resource::Account(path.owner))
        {
            return Ok(());
        }
        // Refuse plainly only where the caller may see the data at all.
        self.authorize_data_read(ctx, path).await?;
        self.authz
            .authorize(ctx, Action::DataWrite, Resource::Account(path.owner))
    }

    /// What the path names (after read authorization).
    pub async fn data_stat(&self, ctx: &RequestCtx, path: &DataPath) -> Result<DataEntry> {
        self.authorize_data_read(ctx, path).await?;
        if path.segments.is_empty() {
            return Ok(DataEntry::Dir);
        }
        self.storage()?
            .stat(path.owner, &path.segments)
            .await
            .map_err(|e| storage_error(e, path))
    }

    pub async fn data_read_file(&self, ctx: &RequestCtx, path: &DataPath) -> Result<Vec<u8>> {
        self.authorize_data_read(ctx, path).await?;
        self.storage()?
            .read(path.owner, &path.segments)
            .await
            .map_err(|e| storage_error(e, path))
    }

    /// One page of a directory, continuing after `marker`.
    pub async fn data_list(
        &self,
        ctx: &RequestCtx,
        path: &DataPath,
        marker: Option<&str>,
        with_acl: bool,
    ) -> Result<DataListing> {
        self.authorize_data_read(ctx, path).await?;
        let storage = self.storage()?;
        let all = storage
            .list(path.owner, &path.segments)
            .await
            .map_err(|e| storage_error(e, path))?;
        // Someone else sees only the collections they may read.
        let owner_side = self
            .authz
            .can(ctx, Action::DataRead, Resource::Account(path.owner));
        let mut items = Vec::new();
        for item in all {
            if marker.is_some_and(|m| item.name.as_str() <= m) {
                continue;
            }
            if !owner_side
                && path.segments.is_empty()
                && storage.read_acl(path.owner, &item.name).await != Ok(DataAcl::Public)
            {
                continue;
            }
            items.push(item);
            if items.len() > LIST_PAGE {
                break;
            }
        }
        let marker = (items.len() > LIST_PAGE).then(|| {
            items.truncate(LIST_PAGE);
            items.last().map(|i| i.name.clone()).unwrap_or_default()
        });
        let mut listing = DataListing {
            folders: Vec::new(),
            files: Vec::new(),
            marker,
            acl: None,
        };
        for item in items {
            match item.entry {
                DataEntry::Dir => listing.folders.push(item.name),
                DataEntry::File { size, modified } => {
                    listing.files.push((item.name, size, modified))
                }
            }
        }
        if with_acl && let Some(collection) = path.segments.first() {
            listing.acl = Some(
                storage
                    .read_acl(path.owner, collection)
                    .await
                    .map_err(|e| storage_error(e, path))?,
            );
        }
        Ok(listing)
    }

    pub async fn data_write_file(
        &self,
        ctx: &RequestCtx,
        path: &DataPath,
        bytes: Vec<u8>,
    ) -> Result<()> {
        if path.segments.len() < 2 {
            return Err(Error::new(
                Code::InvalidPath,
                format!(
                    "{} is not a file path: files live in a collection (data://.my/collection/file)",
                    path.uri()
                ),
            ));
        }
        self.authorize_data_write(ctx, path).await?;
        let storage = self.storage()?;
        let quota = self.quota_bytes(path.owner).await?;
        let size = bytes.len() as u64;
        let reservation = match self
            .quotas
            .reserve(storage, path.owner, &path.segments, size, quota)
            .await
        {
            Ok(r) => r,
            Err(refused) => {
                let name = self.store.get_account(path.owner).await?.name;
                return Err(refused.into_error(&name));
            }
        };
        let written = if self.quotas.shrinks(&reservation) {
            let counting = self.quotas.counting(path.owner);
            let _counting = counting.lock().await;
            let written = storage.write(path.owner, &path.segments, bytes).await;
            self.quotas.settle_counted(reservation, written.is_ok());
            written
        } else {
            let written = storage.write(path.owner, &path.segments, bytes).await;
            self.quotas.settle(reservation, written.is_ok()).await;
            written
        };
        written.map_err(|e| storage_error(e, path))
    }

    /// Creates `name` inside `parent`; a collection (directly under the
    /// account) gets an ACL, `my_algos` by default.
    pub async fn data_create_dir(
        &self,
        ctx: &RequestCtx,
        parent: &DataPath,
        name: &str,
        acl: Option<DataAcl>,
    ) -> Result<DataPath> {
        let seg = split_path(name)?;
        if seg.len() != 1 || seg[0] != name {
            return Err(Error::new(
                Code::InvalidName,
                format!("invalid directory name {name:?}"),
            ));
        }
        let mut path = parent.clone();
        path.segments.push(name.to_string());
        self.authorize_data_write(ctx, &path).await?;
        let storage = self.storage()?;
        if parent.segments.is_empty() {
            check_collection_name(name)?;
        } else if acl.is_some() {
            return Err(Error::invalid(
                "only collections (top-level directories) carry an ACL",
            ));
        }
        storage
            .create_dir(path.owner, &path.segments)
            .await
            .map_err(|e| storage_error(e, &path))?;
        if parent.segments.is_empty()
            && let Err(e) = storage
                .write_acl(path.owner, name, acl.unwrap_or(DataAcl::MyAlgos))
                .await
        {
            // A collection without the ACL asked for must not stay behind.
            let _ = storage.delete_dir(path.owner, &path.segments, true).await;
            return Err(storage_error(e, &path));
        }
        Ok(path)
    }

    pub async fn data_set_acl(
        &self,
        ctx: &RequestCtx,
        path: &DataPath,
        acl: DataAcl,
    ) -> Result<()> {
        if path.segments.len() != 1 {
            return Err(Error::invalid(
                "only collections (top-level directories) carry an ACL",
            ));
        }
        self.authorize_data_write(ctx, path).await?;
        let storage = self.storage()?;
        match storage.stat(path.owner, &path.segments).await {
            Ok(DataEntry::Dir) => {}
            Ok(DataEntry::File { .. }) => {
                return Err(Error::invalid(format!("{} is a file", path.uri())));
            }
            Err(e) => return Err(storage_error(e, path)),
        }
        let collection = &path.segments[0];
        let old = storage.read_acl(path.owner, collection).await.ok();
        storage
            .write_acl(path.owner, collection, acl)
            .await
            .map_err(|e| storage_error(e, path))?;
        // Who may read a collection is governance: on record, old and new.
        let detail = serde_json::json!({"old": {"acl": old}, "new": {"acl": acl}});
        let target = format!("data:{}/{collection}", path.owner);
        let kind = crate::audit::EventKind::DataAclSet;
        Ok(self
            .store
            .record_audit(&ctx.audit, kind, None, &target, detail, "ok")
            .await?)
    }

    /// Deletes a file or directory; returns how many files were deleted.
    pub async fn data_delete(&self, ctx: &RequestCtx, path: &DataPath, force: bool) -> Result<u64> {
        if path.segments.is_empty() {
            return Err(Error::invalid("an account's data root cannot be deleted"));
        }
        self.authorize_data_write(ctx, path).await?;
        let storage = self.storage()?;
        match storage
            .stat(path.owner, &path.segments)
            .await
            .map_err(|e| storage_error(e, path))?
        {
            DataEntry::File { size, .. } => {
                let counting = self.quotas.counting(path.owner);
                let _counting = counting.lock().await;
                let done = storage.delete_file(path.owner, &path.segments).await;
                if done.is_ok() {
                    self.quotas.deleted(path.owner, size);
                }
                done.map(|()| 1)
            }
            DataEntry::Dir => {
                let done = storage.delete_dir(path.owner, &path.segments, force).await;
                if done.as_ref().is_ok_and(|n| *n > 0) {
                    self.quotas.recount(path.owner);
                }
                done
            }
        }
        .map_err(|e| storage_error(e, path))
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
