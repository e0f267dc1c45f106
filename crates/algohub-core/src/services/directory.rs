//! Looking accounts up by name (or a user by UUID) for the use cases: the
//! one place that says what "not found" means for a name.

use crate::error::{Code, Error, Result};
use crate::model::{AccountId, AccountKind, AccountRef};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// Account lookups over the store.
#[derive(Clone)]
pub(crate) struct Directory {
    store: Arc<dyn Store>,
}

impl Directory {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Resolves a live account by name in the shared namespace.
    pub(crate) async fn account(&self, name: &str) -> Result<AccountRef> {
        // A name that cannot exist is not looked up (and never reaches SQL).
        let not_found = || Error::new(Code::NotFound, format!("account {name:?} not found"));
        let Ok(valid) = crate::names::AccountName::parse(name) else {
            return Err(not_found());
        };
        match self.store.get_account_by_name(valid.as_str()).await {
            Ok(a) if a.status != crate::model::AccountStatus::Deleted => Ok(a),
            Ok(_) | Err(StoreError::NotFound) => Err(Error::new(
                Code::NotFound,
                format!("account {name:?} not found"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn org_account(&self, name: &str) -> Result<AccountRef> {
        match self.account(name).await {
            Ok(a) if a.kind == AccountKind::Org => Ok(a),
            _ => Err(Error::new(
                Code::OrgNotFound,
                format!("organization {name:?} not found"),
            )),
        }
    }

    pub(crate) async fn user_account(&self, name: &str) -> Result<AccountRef> {
        match self.account(name).await {
            Ok(a) if a.kind == AccountKind::User => Ok(a),
            _ => Err(Error::new(
                Code::UserNotFound,
                format!("user {name:?} not found"),
            )),
        }
    }

    /// A live user named by the user's UUID or by username, for the v1
    /// `/v1/users/{userId}/...` routes (the Algorithmia clients pass the UUID,
    /// people and older callers the name). A UUID-shaped segment that is some
    /// user's UUID names that user, even when an account's name is spelled like
    /// it (names may be, UUIDs are never reused); a deleted user's UUID names
    /// nobody, as their name does.
    pub(crate) async fn user_account_by_uuid_or_name(&self, segment: &str) -> Result<AccountRef> {
        let not_found = || Error::new(Code::UserNotFound, format!("user {segment:?} not found"));
        let uuid = uuid::Uuid::try_parse(segment)
            .ok()
            .filter(|_| segment.len() == 36);
        if let Some(uuid) = uuid {
            match self
                .store
                .get_user_by_uuid(&uuid.hyphenated().to_string())
                .await
            {
                Ok(u) if u.status == crate::model::AccountStatus::Deleted => {
                    return Err(not_found());
                }
                Ok(u) => {
                    return Ok(AccountRef {
                        id: u.id,
                        uuid: u.uuid,
                        name: u.username,
                        kind: AccountKind::User,
                        status: u.status,
                    });
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.user_account(segment).await
    }

    /// Names of the given accounts (deleted ones included), for display.
    pub(crate) async fn account_names(
        &self,
        ids: impl IntoIterator<Item = AccountId>,
    ) -> Result<HashMap<AccountId, String>> {
        let mut names = HashMap::new();
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(e) = names.entry(id) {
                e.insert(self.store.get_account(id).await?.name);
            }
        }
        Ok(names)
    }
}
