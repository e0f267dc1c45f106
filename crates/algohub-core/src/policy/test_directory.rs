//! The directory the policy's unit tests decide over: users, orgs, apps,
//! teams and keys with the roles, expiries and states the tables need.

use super::*;
use crate::model::KeyKind;
use crate::roles::{AppRole, OrgRole};
use crate::store::*;

// Accounts: 1 admin, 2 alice (acme admin), 3 bob (acme contributor), 4 carol (acme
// team_contributor, seat in team 30), 5 dave (acme viewer), 6 erin (no org),
// 7 frank (suspended), 8 gina (acme viewer, expired membership).
// Orgs: 100 acme, 101 globex. Apps: 200 acme/app-a, 201 acme/app-b, 202 erin/mine.
// Team 30 in acme grants app 200 write, app 201 read (expired).
pub(super) fn snapshot() -> PolicySnapshot {
    let user = |id, admin, active| PolicyUserRow {
        id,
        cluster_admin: admin,
        sudo_user: false,
        active,
        super_powers_until: None,
    };
    let m = |user_id, org_id, role, expires_at| PolicyMembershipRow {
        user_id,
        org_id,
        role,
        expires_at,
    };
    PolicySnapshot {
        seq: 0,
        users: vec![
            user(1, true, true),
            user(2, false, true),
            user(3, false, true),
            user(4, false, true),
            user(5, false, true),
            user(6, false, true),
            user(7, false, false),
            user(8, false, true),
            PolicyUserRow {
                id: 9,
                cluster_admin: false,
                sudo_user: true,
                active: true,
                super_powers_until: None,
            },
        ],
        orgs: vec![(100, true), (101, true)],
        memberships: vec![
            m(2, 100, OrgRole::Admin, None),
            m(3, 100, OrgRole::Contributor, None),
            m(4, 100, OrgRole::TeamContributor, None),
            m(5, 100, OrgRole::Viewer, None),
            m(7, 100, OrgRole::Admin, None),
            m(8, 100, OrgRole::Viewer, Some(1_000)),
        ],
        teams: vec![(30, 100)],
        team_members: vec![PolicyTeamMemberRow {
            team_id: 30,
            user_id: 4,
            expires_at: None,
        }],
        team_apps: vec![
            PolicyTeamAppRow {
                team_id: 30,
                app_id: 200,
                role: AppRole::Write,
                expires_at: None,
            },
            PolicyTeamAppRow {
                team_id: 30,
                app_id: 201,
                role: AppRole::Read,
                expires_at: Some(1_000),
            },
        ],
        apps: vec![(200, 100), (201, 100), (202, 6)],
        // 300 acme/detector in app 200; 301 acme/loose outside any app; 302 erin/mine.
        algorithms: vec![
            PolicyAlgorithmRow {
                id: 300,
                owner_id: 100,
                app_id: Some(200),
            },
            PolicyAlgorithmRow {
                id: 301,
                owner_id: 100,
                app_id: None,
            },
            PolicyAlgorithmRow {
                id: 302,
                owner_id: 6,
                app_id: None,
            },
        ],
        keys: vec![
            PolicyKeyRow {
                id: 1,
                digest: "d-org".into(),
                kind: KeyKind::Org,
                owner_id: 100,
                org_id: None,
                created_by: 3,
                minted: false,
                scopes: Scopes::ALL,
                expires_at: None,
                revoked: false,
            },
            PolicyKeyRow {
                id: 2,
                digest: "d-member".into(),
                kind: KeyKind::Member,
                owner_id: 3,
                org_id: Some(100),
                created_by: 3,
                minted: false,
                scopes: Scopes::ALL,
                expires_at: None,
                revoked: false,
            },
            PolicyKeyRow {
                id: 3,
                digest: "d-calls".into(),
                kind: KeyKind::User,
                owner_id: 2,
                org_id: None,
                created_by: 2,
                minted: false,
                scopes: Scopes(Scopes::ALGO_CALL),
                expires_at: None,
                revoked: false,
            },
            PolicyKeyRow {
                id: 4,
                digest: "d-expired".into(),
                kind: KeyKind::User,
                owner_id: 2,
                org_id: None,
                created_by: 2,
                minted: false,
                scopes: Scopes::ALL,
                expires_at: Some(1_000),
                revoked: false,
            },
            PolicyKeyRow {
                id: 5,
                digest: "d-revoked".into(),
                kind: KeyKind::User,
                owner_id: 2,
                org_id: None,
                created_by: 2,
                minted: false,
                scopes: Scopes::ALL,
                expires_at: None,
                revoked: true,
            },
        ],
        sessions: vec![],
    }
}

pub(super) const NOW: Millis = 10_000;

pub(super) fn engine() -> PolicyEngine {
    PolicyEngine::new(&snapshot())
}
