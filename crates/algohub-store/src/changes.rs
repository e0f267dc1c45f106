//! Audit details of governance changes: the fields a write changed, each
//! with its value before and after (`{"old": {...}, "new": {...}}`), read
//! inside the writing transaction. No secret is among these fields.

use crate::db::{WriteTx, col, db_err, flag};
use algohub_core::audit::EventKind;
use algohub_core::model::{AccountId, Algorithm};
use algohub_core::store::StoreResult;
use serde_json::{Map, Value, json};

/// `{"old", "new"}` with the fields of `old` and `new` (objects) that differ.
pub(crate) fn diff(old: &Value, new: &Value) -> Value {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let (mut before, mut after) = (Map::new(), Map::new());
    for key in o.keys().chain(n.keys()) {
        let (was, is) = (
            o.get(key).unwrap_or(&Value::Null),
            n.get(key).unwrap_or(&Value::Null),
        );
        if was != is && !before.contains_key(key) {
            before.insert(key.clone(), was.clone());
            after.insert(key.clone(), is.clone());
        }
    }
    json!({ "old": before, "new": after })
}

/// An org's profile and governance settings, as its audit records show them.
pub(crate) async fn org_fields(tx: &mut WriteTx<'_>, org: AccountId) -> StoreResult<Value> {
    let r = sqlx::query(
        "SELECT label, contact_name, email, url, type_id, require_approval, allow_self_approval, \
         consolidated_billing FROM orgs WHERE account_id = $1",
    )
    .bind(org)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    Ok(json!({
        "org_label": col::<String>(&r, "label")?,
        "org_contact_name": col::<String>(&r, "contact_name")?,
        "org_email": col::<String>(&r, "email")?,
        "org_url": col::<Option<String>>(&r, "url")?,
        "type_id": col::<String>(&r, "type_id")?,
        "require_approval": flag(&r, "require_approval")?,
        "allow_self_approval": flag(&r, "allow_self_approval")?,
        "consolidated_billing": flag(&r, "consolidated_billing")?,
    }))
}

/// A user's profile, as its audit records show it.
pub(crate) async fn user_fields(tx: &mut WriteTx<'_>, user: AccountId) -> StoreResult<Value> {
    let r = sqlx::query(
        "SELECT email, full_name, company_name, company_role FROM users WHERE account_id = $1",
    )
    .bind(user)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    Ok(json!({
        "email": col::<String>(&r, "email")?,
        "fullname": col::<String>(&r, "full_name")?,
        "company_name": col::<Option<String>>(&r, "company_name")?,
        "company_role": col::<Option<String>>(&r, "company_role")?,
    }))
}

/// Records what an update changed of an algorithm: its settings (price,
/// callability, visibility, limits), details and app.
pub(crate) async fn algorithm_updated(
    tx: &mut WriteTx<'_>,
    old: &Algorithm,
    new: &Algorithm,
) -> StoreResult<()> {
    let fields = |a: &Algorithm| -> StoreResult<Value> {
        let mut v = serde_json::to_value(&a.settings)
            .map_err(|e| algohub_core::store::StoreError::Other(e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.insert("details".into(), a.details.clone());
            m.insert("app_id".into(), json!(a.app_id));
        }
        Ok(v)
    };
    let detail = diff(&fields(old)?, &fields(new)?);
    tx.event(
        EventKind::AlgorithmUpdated,
        None,
        &format!("algorithm:{}", new.id),
        detail,
    )
    .await
}
