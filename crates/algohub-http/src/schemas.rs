//! JSON schemas of the request and response bodies, for the OpenAPI document.

use serde_json::{Value, json};

fn obj(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

const S: &str = "string";

fn s() -> Value {
    json!({"type": S})
}

fn int() -> Value {
    json!({"type": "integer"})
}

fn num() -> Value {
    json!({"type": "number"})
}

pub fn all() -> Value {
    let permissions = obj(
        &[],
        json!({"allow_algo": {"type": "boolean"}, "allow_data": {"type": "boolean"}, "allow_data_write": {"type": "boolean"},
               "allow_algo_management": {"type": "boolean"}, "allow_web_algo": {"type": "boolean"},
               "algo_acl": {"type": "array", "items": s()}, "referer_host": s()}),
    );
    let mut schemas = json!({
        "Error": obj(&["error"], json!({"error": obj(&["message"], json!({"message": s(), "code": {"type": "integer"}, "reason": s(),
            "limit_kind": s(), "scope": s(), "retry_after": {"type": "integer"}}))})),
        "User": obj(&["username", "email", "resource_type"], json!({"id": s(), "username": s(), "email": s(), "fullname": s(),
            "company_name": s(), "company_role": s(), "password": s(), "self_link": s(), "resource_type": s()})),
        "Organization": obj(&["org_name", "org_email", "org_label", "org_contact_name", "type_id"], json!({"org_name": s(), "org_email": s(),
            "org_label": s(), "org_contact_name": s(), "org_url": s(), "type_id": s(), "self_link": s(), "resource_type": s(),
            "require_approval": {"type": "boolean"}, "allow_self_approval": {"type": "boolean"}, "consolidated_billing": {"type": "boolean"}})),
        "OrganizationType": obj(&["id", "name"], json!({"id": s(), "name": s()})),
        "OrganizationMember": obj(&["username", "role", "user_link", "resource_type"], json!({"username": s(),
            "role": {"type": S, "enum": ["owner", "member", "invited"]}, "algohub_role": s(), "user_link": s(), "resource_type": s()})),
        "PagedResultList": obj(&["results"], json!({"results": {"type": "array", "items": {"type": "object"}}, "marker": s(), "next_link": s()})),
        "AuthPermissions": permissions,
        "ApiKeyCreation": obj(&[], json!({"key_label": s(), "key_type": {"type": S, "enum": ["ManagementKey", "PlatformAdminKey", "AlgorithmKey"]},
            "permissions": {"$ref": "#/components/schemas/AuthPermissions"}, "scopes": {"type": "array", "items": {"type": S, "enum": ["algo_call", "data_read", "data_write", "management"]}},
            "expires_at": {"type": S, "format": "date-time"}})),
        "ApiKey": obj(&["username", "key_label", "created_at", "api_key_mask", "api_key", "key_type"], json!({"id": s(), "username": s(),
            "key_label": s(), "created_at": s(), "api_key_mask": s(), "api_key": s(), "key_type": s(), "owner_name": s(),
            "permissions": {"$ref": "#/components/schemas/AuthPermissions"}, "scopes": {"type": "array", "items": s()},
            "expires_at": s(), "last_used_at": s()})),
        "ApiKeyList": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}},
        "OrganizationTypeList": {"type": "array", "items": {"$ref": "#/components/schemas/OrganizationType"}},
        "InvitationCreate": obj(&["role"], json!({"username": s(), "email": s(), "role": {"type": S, "enum": ["viewer", "team_contributor", "contributor", "admin"]}})),
        "Invitation": obj(&["id", "org", "role", "status"], json!({"id": s(), "org": s(), "username": s(), "email": s(), "role": s(),
            "status": {"type": S, "enum": ["pending", "accepted", "declined", "rescinded", "expired"]}, "created_at": s(), "expires_at": s()})),
        "InvitationList": {"type": "array", "items": {"$ref": "#/components/schemas/Invitation"}},
        "InvitationToken": obj(&["token"], json!({"token": s()})),
        "Membership": obj(&["org", "username", "role"], json!({"org": s(), "username": s(), "role": s(), "expires_at": s()})),
        "RoleChange": obj(&["role"], json!({"role": {"type": S, "enum": ["viewer", "team_contributor", "contributor", "admin"]}, "expires_at": s()})),
        "Roles": obj(&["org_roles", "app_roles"], json!({"org_roles": {"type": "array", "items": {"type": "object"}}, "app_roles": {"type": "array", "items": {"type": "object"}}})),
        "TeamCreate": obj(&["name"], json!({"name": s()})),
        "Team": obj(&["name"], json!({"id": s(), "name": s(), "org": s(), "members": {"type": "array", "items": {"type": "object"}}, "apps": {"type": "array", "items": {"type": "object"}}})),
        "TeamList": {"type": "array", "items": {"$ref": "#/components/schemas/Team"}},
        "TeamSeat": obj(&[], json!({"expires_at": s()})),
        "TeamAppGrant": obj(&["role"], json!({"role": {"type": S, "enum": ["read", "contributor", "write", "admin"]}, "expires_at": s()})),
        "AppCreate": obj(&["name"], json!({"name": s(), "description": s()})),
        "App": obj(&["id", "owner", "name"], json!({"id": s(), "owner": s(), "name": s(), "description": s(), "created_at": s(), "updated_at": s()})),
        "AppList": {"type": "array", "items": {"$ref": "#/components/schemas/App"}},
        "AppDuplicate": obj(&["name"], json!({"name": s()})),
        "AppTransfer": obj(&["to"], json!({"to": s(), "name": s()})),
        "Explanation": obj(&["allow", "decided_by", "chain"], json!({"principal": s(), "action": s(), "resource": s(), "allow": {"type": "boolean"},
            "decided_by": s(), "chain": {"type": "array", "items": obj(&["rule", "outcome"], json!({"rule": s(), "outcome": s(), "detail": s()}))}})),
        "WhoCan": obj(&["results"], json!({"action": s(), "resource": s(), "results": {"type": "array", "items": obj(&["username", "rule"], json!({"username": s(), "rule": s()}))}})),
        "Health": obj(&["status"], json!({"status": s()})),
        "AlgorithmCreate": obj(&["name", "details", "settings"], json!({"name": s(), "details": obj(&["label"], json!({"label": s(), "summary": s(), "tagline": s()})),
            "settings": {"type": "object"}, "app": s()})),
        "AlgorithmUpdate": obj(&[], json!({"details": {"type": "object"}, "settings": {"type": "object"}, "app": s()})),
        "Algorithm": obj(&["id", "name", "details", "settings"], json!({"id": s(), "name": s(), "owner": s(), "details": {"type": "object"},
            "settings": {"type": "object"}, "runtime": {"type": S, "enum": ["wasm", "http"]}, "version_info": {"type": "object"}, "self_link": s(), "resource_type": s()})),
        "VersionRequest": obj(&[], json!({"details": {"type": "object"}, "settings": {"type": "object"},
            "version_info": obj(&[], json!({"version_type": {"type": S, "enum": ["major", "minor", "revision", "patch"]}, "release_notes": s(), "sample_input": {}, "sample_output": {}}))})),
        "VersionResponse": obj(&["name", "version_info"], json!({"id": s(), "name": s(), "details": {"type": "object"}, "settings": {"type": "object"},
            "version_info": obj(&["insights_enabled"], json!({"semantic_version": s(), "git_hash": s(), "version_uuid": s(), "release_notes": s(), "insights_enabled": {"type": "boolean"},
                "status": {"type": S, "enum": ["published", "pending", "rejected"]}, "callability": s()})),
            "build": {"$ref": "#/components/schemas/Build"}, "compilation": obj(&["successful"], json!({"successful": {"type": "boolean"}, "output": s()})),
            "self_link": s(), "resource_type": s()})),
        "Build": obj(&["build_id", "commit_sha", "started_at", "status"], json!({"build_id": s(), "commit_sha": s(), "started_at": s(), "finished_at": s(),
            "status": {"type": S, "enum": ["in-progress", "succeeded", "failed"]}, "resource_type": s(), "version_info": obj(&["semantic_version"], json!({"semantic_version": s()}))})),
        "BuildLogs": obj(&["logs"], json!({"logs": s()})),
        "AlgorithmSource": {"description": "an http algorithm's definition; every header value, the url's query values, user info and fragment, and any unknown field read \"[redacted]\" (the X-Algohub-Redacted: true header says something was)",
            "type": "object", "properties": {"runtime": s(), "url": s(), "timeout": num(), "headers": {"type": "object", "additionalProperties": s()}}},
        "AlgorithmErrors": {"type": "array", "items": obj(&["created_at", "request_id", "error"], json!({"created_at": {"type": "integer"}, "request_id": s(),
            "username": s(), "algoname": s(), "algoversion": s(), "input": s(), "error": s(), "error_type": s(), "billable_to": s(), "worker": s()}))},
        "PagedList": obj(&["results"], json!({"results": {"type": "array", "items": {"type": "object"}}, "marker": s(), "next_link": s()})),
        "Decision": obj(&[], json!({"reason": s()})),
        "DataCreateDirectory": obj(&["name"], json!({"name": s(), "acl": obj(&["read"], json!({"read": {"type": "array", "items": s()}}))})),
        "DataAclUpdate": obj(&["acl"], json!({"acl": obj(&["read"], json!({"read": {"type": "array", "items": s()}}))})),
        "AdminUser": obj(&["id", "username", "email", "status", "cluster_admin"], json!({"id": s(), "username": s(), "email": s(), "fullname": s(),
            "status": {"type": S, "enum": ["active", "suspended"]}, "cluster_admin": {"type": "boolean"}, "sudo_user": {"type": "boolean"},
            "work_limit": {"type": ["integer", "null"]}, "created_at": s(), "last_login_at": s()})),
        "AdminUserList": obj(&["results"], json!({"results": {"type": "array", "items": {"$ref": "#/components/schemas/AdminUser"}}, "marker": s()})),
        "AuditRecord": obj(&["id", "at", "action", "target", "outcome"], json!({"id": int(), "at": s(), "action": s(), "actor": s(), "effective_account": s(),
            "target": s(), "detail": {}, "outcome": s(), "request_id": s(), "auth_method": s(), "token_sha256": s(), "source": s(), "hash": s()})),
        "AuditList": obj(&["results"], json!({"results": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}}, "next": s()})),
        "AuditVerdict": obj(&["ok", "checked"], json!({"ok": {"type": "boolean"}, "checked": int(), "first_bad": obj(&["id", "reason"], json!({"id": int(), "reason": s()}))})),
        "Notification": obj(&["notification_id", "notification_type", "created_at", "notification_context", "algorithm_id", "username", "algoname"], json!({
            "notification_id": s(), "id": int(), "notification_type": s(), "created_at": s(), "read_at": s(), "text": s(), "url": s(),
            "notification_context": {"type": "object"}, "algorithm_id": s(), "username": s(), "algoname": s()})),
        "NotificationList": {"type": "array", "items": {"$ref": "#/components/schemas/Notification"}},
        "UnreadCount": obj(&["unread"], json!({"unread": int()})),
        "Marked": obj(&["marked"], json!({"marked": int()})),
        "NotificationSend": obj(&["usernames", "text"], json!({"usernames": s(), "text": s(), "url": s()})),
        "NotificationSent": obj(&["sent", "results"], json!({"sent": int(), "results": {"type": "array", "items": obj(&["username", "notification_id"], json!({"username": s(), "notification_id": s()}))}})),
        "DeletionReceipt": obj(&["username", "keys", "memberships", "team_seats", "invitations", "sessions"], json!({"username": s(),
            "keys": {"type": "array", "items": s()}, "memberships": {"type": "array", "items": s()},
            "team_seats": {"type": "array", "items": s()}, "invitations": {"type": "array", "items": s()},
            "sessions": {"type": "array", "items": s()}})),
        "InviteCode": obj(&["inviteCode"], json!({"inviteCode": s(), "signupCredits": int(), "comments": s(), "expiresAt": s(), "createdAt": s(), "createdBy": s()})),
        "InviteCodeList": {"type": "array", "items": {"$ref": "#/components/schemas/InviteCode"}},
        "NewInviteCode": obj(&["inviteCode"], json!({"inviteCode": s(), "signupCredits": int(), "comments": s(), "expiresAt": s()})),
        "WorkLimit": obj(&["account", "work_limit", "is_default"], json!({"account": s(), "work_limit": int(), "is_default": {"type": "boolean"}, "running_here": int()})),
        "WorkLimitUpdate": obj(&["work_limit"], json!({"work_limit": {"type": ["integer", "null"], "minimum": 1}})),
        "UsageReport": obj(&["account", "start_date", "end_date", "group_by", "side", "results"], json!({"account": s(), "start_date": s(), "end_date": s(), "group_by": s(), "side": s(),
            "results": {"type": "array", "items": obj(&["calls", "errors"], json!({"calls": int(), "errors": int(), "refused": int(), "compute_units": int(), "duration_seconds": num(), "error_duration_seconds": num(), "credits_microcredits": int(),
                "member": s(), "algorithm": s(), "version": s(), "day": s()}))}})),
        "Balance": obj(&["account", "balance_microcredits", "earned_microcredits", "spent_microcredits"], json!({"account": s(), "balance_microcredits": int(), "earned_microcredits": int(), "spent_microcredits": int()})),
        "FullUsageResult": obj(&["results"], json!({"results": {"type": "array", "items": obj(&["algorithm_called", "caller", "algorithm_version", "algorithm_owner", "total_calls", "total_errors", "total_error_duration", "total_duration", "machine_type"],
            json!({"algorithm_called": s(), "caller": s(), "algorithm_version": s(), "algorithm_owner": s(), "total_calls": int(), "total_errors": int(), "total_error_duration": num(), "total_duration": num(), "machine_type": s()}))}, "next_marker": s()})),
        "AlgorithmUsageResult": obj(&["results"], json!({"results": {"type": "array", "items": obj(&["algorithm_called", "algorithm_version", "algorithm_owner", "total_calls", "total_errors", "total_error_duration", "total_duration", "machine_type"],
            json!({"algorithm_called": s(), "algorithm_version": s(), "algorithm_owner": s(), "total_calls": int(), "total_errors": int(), "total_error_duration": num(), "total_duration": num(), "machine_type": s()}))}, "next_marker": s()})),
        "UserUsageResult": obj(&["results"], json!({"results": {"type": "array", "items": obj(&["caller", "total_calls", "total_errors", "total_error_duration", "total_duration"],
            json!({"caller": s(), "total_calls": int(), "total_errors": int(), "total_error_duration": num(), "total_duration": num()}))}, "next_marker": s()})),
        "UsageRecord": obj(&["request_id", "status", "via"], json!({"request_id": s(), "started_at": s(), "duration_seconds": num(), "caller": s(), "acting_as": s(), "payer": s(),
            "via": {"type": S, "enum": ["direct", "org_key", "member_key", "sudo", "impersonation"]}, "algorithm_owner": s(), "algorithm_name": s(), "version": s(),
            "status": {"type": S, "enum": ["ok", "error", "refused", "limited"]}, "error_code": s(), "compute_units": int(), "royalty_microcredits": int()})),
        "CallInput": {"description": "any JSON (application/json), text (text/plain) or bytes (application/octet-stream)"},
        "CallResult": obj(&["async", "request_id"], json!({"result": {}, "async": {"type": "boolean"}, "request_id": s(),
            "error": obj(&["message"], json!({"message": s(), "error_type": s(), "stacktrace": s()})),
            "metadata": obj(&["duration"], json!({"content_type": {"type": S, "enum": ["text", "json", "binary", "void"]}, "duration": {"type": "number"},
                "stdout": s(), "compute_units": {"type": "integer"}, "version": s()}))})),
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), elevated()) {
        all.extend(more);
    }
    schemas
}

/// The `content` of a success response whose schema is `name`: JSON, or for
/// an answer that is not always JSON, each media type it comes in.
pub fn response_content(name: &str) -> Value {
    match name {
        "AlgorithmSource" => json!({
            "application/wasm": {"schema": {"type": S, "format": "binary", "description": "the wasm module as stored (a WAT upload is kept compiled)"}},
            "text/plain": {"schema": {"type": S, "description": "with ?format=wat: the wasm module printed as WAT"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/AlgorithmSource"}},
        }),
        r => json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}),
    }
}

/// Elevated access: impersonation sessions, super powers, `/v1/session`.
fn elevated() -> Value {
    json!({
        "ElevateRequest": obj(&["reason"], json!({"reason": s(), "duration_minutes": {"type": "integer", "minimum": 1}})),
        "Impersonation": obj(&["session_id", "real_user", "user", "reason", "started_at", "expires_at"], json!({"session_id": int(), "real_user": s(), "user": s(), "reason": s(),
            "started_at": s(), "expires_at": s(), "ended_at": s(), "end_reason": s()})),
        "ImpersonationStarted": obj(&["token", "impersonation"], json!({"token": s(), "impersonation": {"$ref": "#/components/schemas/Impersonation"}, "usage": s()})),
        "SessionEnded": obj(&["ended", "impersonation"], json!({"ended": {"type": "boolean"}, "impersonation": {"$ref": "#/components/schemas/Impersonation"}})),
        "SuperPowers": obj(&["reason", "started_at", "until"], json!({"reason": s(), "started_at": s(), "until": s()})),
        "SuperPowersState": obj(&["super_powers"], json!({"super_powers": {"oneOf": [{"$ref": "#/components/schemas/SuperPowers"}, {"type": "null"}]}})),
        "SessionInfo": obj(&["account", "account_type", "credential", "scopes", "cluster_admin"], json!({"account": s(), "account_type": s(),
            "credential": {"type": S, "enum": ["api_key", "session", "call_token"]}, "scopes": {"type": "array", "items": s()}, "cluster_admin": {"type": "boolean"},
            "impersonation": {"oneOf": [{"$ref": "#/components/schemas/Impersonation"}, {"type": "null"}]},
            "super_powers": {"oneOf": [{"$ref": "#/components/schemas/SuperPowers"}, {"type": "null"}]}})),
    })
}
