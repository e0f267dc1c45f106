//! Call governance for people: work limits, usage reports, balances, error
//! listings per account, and the cluster-wide usage of the v1 admin routes.
//! Reports read the daily rollups (`usage_daily`), never the raw records.

use super::Authorizer;
use super::Base;
use super::Directory;
use super::IndexSync;
use super::calls::{ERROR_LIST_LIMIT, ERROR_RETENTION_MILLIS};
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    AccountKind, AccountRef, AlgorithmError, Balance, ErrorScope, ReportGroup, ReportQuery,
    ReportRow, ReportSide, UsageRecord, day_of,
};
use crate::policy::{Action, Resource};
use crate::store::Store;
use std::sync::Arc;

/// An account's work limit as the admin routes show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkLimitView {
    pub account: String,
    /// The limit in force.
    pub work_limit: i64,
    /// Whether it is the cluster default (no limit of its own).
    pub is_default: bool,
    /// Calls of this account running on this node now.
    pub running_here: i64,
}

/// The widest report range, in days.
pub const MAX_REPORT_DAYS: i64 = 3660;

/// Parses a report date: `YYYY-MM-DD` or an RFC 3339 time; gives the UTC day.
pub fn parse_day(raw: &str, what: &str) -> Result<i64> {
    let raw = raw.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let t = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
        if let Some(t) = t {
            return Ok(day_of(t));
        }
    }
    crate::model::parse_time(raw).map(day_of).ok_or_else(|| {
        Error::invalid(format!(
            "invalid {what} {raw:?}: use a date such as 2026-11-01 or an RFC 3339 time"
        ))
    })
}

/// Checks a day range (inclusive) for a report.
pub fn check_range(from_day: i64, to_day: i64) -> Result<()> {
    if to_day < from_day {
        return Err(Error::invalid("end_date is before start_date"));
    }
    if to_day - from_day > MAX_REPORT_DAYS {
        return Err(Error::invalid(format!(
            "a report covers at most {MAX_REPORT_DAYS} days"
        )));
    }
    Ok(())
}

/// Usage: reports, balances, work limits, call records and errors.
pub struct UsageService {
    store: Arc<dyn Store>,
    authz: Arc<Authorizer>,
    directory: Directory,
    index: Arc<IndexSync>,
    admission: Arc<super::Admission>,
    metering: Arc<super::Metering>,
}

impl UsageService {
    pub(super) fn new(
        base: &Base,
        admission: Arc<super::Admission>,
        metering: Arc<super::Metering>,
    ) -> Self {
        Self {
            store: base.store.clone(),
            authz: base.authz.clone(),
            directory: base.directory.clone(),
            index: base.index.clone(),
            admission,
            metering,
        }
    }
}

impl UsageService {
    async fn work_limit_view(&self, account: &AccountRef) -> Result<WorkLimitView> {
        let own = self.admission.call_settings(account.id).await?.work_limit;
        Ok(WorkLimitView {
            account: account.name.clone(),
            work_limit: self.admission.work_limit(account.id).await?,
            is_default: own.is_none(),
            running_here: self.admission.running_calls(account.id),
        })
    }

    /// An account's work limit (cluster admins).
    pub async fn get_work_limit(&self, ctx: &RequestCtx, name: &str) -> Result<WorkLimitView> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        let account = self.directory.account(name).await?;
        self.work_limit_view(&account).await
    }

    /// Sets an account's work limit (a positive integer), or clears it back to
    /// the cluster default with `None` (cluster admins). Takes effect on every
    /// node at its next policy poll; running calls are not interrupted.
    pub async fn set_work_limit(
        &self,
        ctx: &RequestCtx,
        name: &str,
        limit: Option<i64>,
    ) -> Result<WorkLimitView> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        if let Some(l) = limit
            && !(1..=1_000_000).contains(&l)
        {
            return Err(Error::invalid(format!(
                "invalid work_limit {l}: use a whole number from 1 to 1000000 (or null for the cluster default)"
            )));
        }
        let account = self.directory.account(name).await?;
        let actor = super::require_user(ctx)?;
        self.index
            .applied(
                self.store
                    .set_work_limit(&ctx.audit, actor, account.id, limit),
            )
            .await?;
        self.work_limit_view(&account).await
    }

    /// The account, if the caller may read its usage and balance.
    async fn billing_account(&self, ctx: &RequestCtx, name: &str) -> Result<AccountRef> {
        let account = self.directory.account(name).await?;
        self.authz.authorize(
            ctx,
            Action::AccountBillingRead,
            Resource::Account(account.id),
        )?;
        Ok(account)
    }

    /// A usage report of an account over a day range (inclusive): the calls it
    /// paid for (`Payer`, broken down per member for orgs) or the calls to its
    /// algorithms (`Owner`). Users see their own; org admins their org's.
    pub async fn usage_report(
        &self,
        ctx: &RequestCtx,
        name: &str,
        side: ReportSide,
        from_day: i64,
        to_day: i64,
        group: ReportGroup,
    ) -> Result<Vec<ReportRow>> {
        check_range(from_day, to_day)?;
        let account = self.billing_account(ctx, name).await?;
        self.metering.settle_usage().await?;
        Ok(self
            .store
            .usage_report(&ReportQuery {
                side,
                account_id: account.id,
                from_day,
                to_day,
                group,
                callers: Vec::new(),
            })
            .await?)
    }

    /// Royalties earned and spent by an account.
    pub async fn balance(&self, ctx: &RequestCtx, name: &str) -> Result<(AccountRef, Balance)> {
        let account = self.billing_account(ctx, name).await?;
        self.metering.settle_usage().await?;
        let balance = self.store.balance(account.id).await?;
        Ok((account, balance))
    }

    /// Grants an account credits (negative: takes them back), with a reason
    /// (cluster admins); returns the account and its new balance.
    pub async fn grant_credits(
        &self,
        ctx: &RequestCtx,
        name: &str,
        microcredits: i64,
        reason: &str,
    ) -> Result<(AccountRef, Balance)> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        const MOST: i64 = 1_000_000_000_000_000;
        if microcredits == 0 || !(-MOST..=MOST).contains(&microcredits) {
            return Err(Error::invalid(format!(
                "invalid microcredits {microcredits}: a whole number other than 0, from -{MOST} \
                 to {MOST} (negative takes credits back)"
            )));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid(
                "a grant needs a reason of 1 to 500 characters (it is on the audit trail)",
            ));
        }
        let account = self.directory.account(name).await?;
        let actor = super::require_user(ctx)?;
        self.metering.settle_usage().await?;
        let balance = self
            .store
            .grant_credits(&ctx.audit, actor, account.id, microcredits, reason)
            .await?;
        Ok((account, balance))
    }

    /// Cluster-wide usage from the rollups (cluster admins), optionally only
    /// for some callers (user or org names).
    pub async fn cluster_usage(
        &self,
        ctx: &RequestCtx,
        from_day: i64,
        to_day: i64,
        group: ReportGroup,
        callers: &[String],
    ) -> Result<Vec<ReportRow>> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        check_range(from_day, to_day)?;
        let mut ids = Vec::with_capacity(callers.len());
        for name in callers {
            ids.push(self.directory.account(name).await?.id);
        }
        self.metering.settle_usage().await?;
        Ok(self
            .store
            .usage_report(&ReportQuery {
                side: ReportSide::All,
                account_id: 0,
                from_day,
                to_day,
                group,
                callers: ids,
            })
            .await?)
    }

    /// One usage record (cluster admins), e.g. to audit a call by request
    /// id, with the names of its caller, acting-as account and payer.
    pub async fn usage_record(
        &self,
        ctx: &RequestCtx,
        request_id: &str,
    ) -> Result<(UsageRecord, [String; 3])> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        self.metering.settle_usage().await?;
        let r = self
            .store
            .get_usage_record(request_id)
            .await?
            .ok_or_else(|| Error::new(Code::NotFound, format!("no call {request_id:?}")))?;
        let mut names: [String; 3] = Default::default();
        for (slot, id) in names
            .iter_mut()
            .zip([r.caller_id, r.acting_as_id, r.payer_id])
        {
            *slot = self.store.get_account(id).await?.name;
        }
        Ok((r, names))
    }

    /// Failed calls of the last 7 days to every algorithm an account owns
    /// (those who may read the account's billing: the user, org admins); a
    /// user is named by UUID (as the v1 clients do) or by username.
    pub async fn account_errors(
        &self,
        ctx: &RequestCtx,
        name: &str,
        kind: AccountKind,
    ) -> Result<Vec<AlgorithmError>> {
        let account = match kind {
            AccountKind::User => self.directory.user_account_by_uuid_or_name(name).await?,
            AccountKind::Org => self.directory.org_account(name).await?,
        };
        self.authz.authorize(
            ctx,
            Action::AccountBillingRead,
            Resource::Account(account.id),
        )?;
        let since = crate::model::now_millis() - ERROR_RETENTION_MILLIS;
        Ok(self
            .store
            .list_algorithm_errors(ErrorScope::Owner(account.id), since, ERROR_LIST_LIMIT)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days() {
        assert_eq!(parse_day("1970-01-02", "d").unwrap(), 1);
        assert_eq!(parse_day("1970-01-02T23:59:59Z", "d").unwrap(), 1);
        assert!(parse_day("yesterday", "d").is_err());
        assert!(check_range(5, 4).is_err());
        assert!(check_range(0, MAX_REPORT_DAYS + 1).is_err());
        assert!(check_range(3, 3).is_ok());
    }
}
