//! Tests of the index's compact layout: entry sizes, and memberships and
//! team seats past what a user's entry holds inline, from a snapshot and
//! through changes.

use super::entry::{MORE_ORGS, MORE_SEATS};
use super::test_directory::{NOW, engine, snapshot};
use super::*;
use crate::roles::{AppRole, OrgRole};
use crate::store::*;

#[test]
fn users_and_apps_pack_into_cache_lines() {
    use super::entry::{AppEntry, UserEntry};
    // Four users to a line, none straddling two.
    assert_eq!(std::mem::size_of::<UserEntry>(), 16);
    assert_eq!(std::mem::align_of::<UserEntry>(), 16);
    // The dense tables hold `Option`s: no bigger.
    assert_eq!(std::mem::size_of::<Option<UserEntry>>(), 16);
    assert_eq!(std::mem::size_of::<Option<AppEntry>>(), 16);
}

/// Seats past the two a user entry holds inline, org ids past 32 bits, and
/// an expiring second seat: from a snapshot and through changes.
#[test]
fn memberships_beyond_the_inline_seats() {
    const BIG: AccountId = (u32::MAX as AccountId) + 7;
    // Past the real clock (`org_role` and `user_orgs` read it).
    const LATER: Millis = 4_000_000_000_000;
    let mut s = snapshot();
    s.orgs.extend([(102, true), (103, true), (BIG, true)]);
    let m = |user_id, org_id, role, expires_at| PolicyMembershipRow {
        user_id,
        org_id,
        role,
        expires_at,
    };
    // erin (6): viewer of 101 and an expired contributor of 102 (inline);
    // dave (5): acme viewer, plus 101 admin, 102 contributor, 103 viewer (spilled);
    // bob (3): acme contributor, plus admin of an org whose id needs 64 bits.
    s.memberships.extend([
        m(6, 101, OrgRole::Viewer, None),
        m(6, 102, OrgRole::Contributor, Some(1_000)),
        m(5, 101, OrgRole::Admin, None),
        m(5, 102, OrgRole::Contributor, None),
        m(5, 103, OrgRole::Viewer, Some(LATER)),
        m(3, BIG, OrgRole::Admin, None),
    ]);
    let e = PolicyEngine::new(&s);
    let check = |e: &PolicyEngine| {
        assert_eq!(e.org_role(6, 101), Some(OrgRole::Viewer));
        assert_eq!(e.org_role(6, 102), None, "expired second seat");
        assert_eq!(e.user_orgs(6), vec![101]);
        assert_eq!(e.org_role(5, 100), Some(OrgRole::Viewer));
        assert_eq!(e.org_role(5, 101), Some(OrgRole::Admin));
        assert_eq!(e.org_role(5, 102), Some(OrgRole::Contributor));
        assert_eq!(e.org_role(5, 103), Some(OrgRole::Viewer));
        assert_eq!(e.user_orgs(5), vec![100, 101, 102, 103]);
        assert_eq!(e.org_role(3, BIG), Some(OrgRole::Admin));
        assert_eq!(e.org_role(3, 100), Some(OrgRole::Contributor));
        let dave = Principal::user(5);
        assert!(
            e.decide_at(&dave, Action::OrgMembersManage, Resource::Org(101), NOW)
                .allow
        );
        assert!(
            !e.decide_at(&dave, Action::OrgMembersRead, Resource::Org(103), LATER)
                .allow,
            "a spilled seat's expiry holds"
        );
        assert!(
            e.decide_at(
                &Principal::user(3),
                Action::OrgUpdate,
                Resource::Org(BIG),
                NOW
            )
            .allow
        );
        assert_eq!(e.stats().memberships, 12);
    };
    check(&e);
    // The same rows arriving as changes give the same index.
    let e2 = engine();
    for id in [3, 5, 6] {
        e2.apply(
            ChangeKind::User,
            id,
            &PolicySubject {
                user: s.users.iter().find(|u| u.id == id).cloned(),
                memberships: s
                    .memberships
                    .iter()
                    .filter(|m| m.user_id == id)
                    .cloned()
                    .collect(),
                ..Default::default()
            },
        );
    }
    for (org, active) in [(102, true), (103, true), (BIG, true)] {
        e2.apply(
            ChangeKind::Org,
            org,
            &PolicySubject {
                org_active: Some(active),
                ..Default::default()
            },
        );
    }
    check(&e2);
    // dave leaves every org: nothing of his seats is left behind.
    e2.apply(
        ChangeKind::User,
        5,
        &PolicySubject {
            user: s.users.iter().find(|u| u.id == 5).cloned(),
            ..Default::default()
        },
    );
    assert!(e2.user_orgs(5).is_empty());
    assert_eq!(e2.org_role(5, 101), None);
    let ix = e2.index.read();
    assert!(!spilled(&ix, 5, MORE_ORGS));
    assert!(!ix.member_expiry.contains_key(&(5, 103)));
    slots_match_entries(&ix);
    drop(ix);
    let ix = e.index.read();
    assert!(spilled(&ix, 5, MORE_ORGS) && spilled(&ix, 3, MORE_ORGS));
    assert!(!spilled(&ix, 6, MORE_ORGS), "two seats stay inline");
    slots_match_entries(&ix);
}

/// Whether a user's memberships (`MORE_ORGS`) or seats (`MORE_SEATS`) are
/// kept beside the entry.
fn spilled(ix: &Index, user: AccountId, flag: u8) -> bool {
    ix.users.get(&user).is_some_and(|u| u.flags & flag != 0)
}

/// Every side-table slot belongs to exactly one entry: none leaked, none shared.
pub(super) fn slots_match_entries(ix: &Index) {
    let mut orgs: Vec<u32> = ix
        .users
        .values()
        .filter(|u| u.flags & MORE_ORGS != 0)
        .map(|u| u.orgs[0])
        .collect();
    let mut seats: Vec<u32> = ix
        .users
        .values()
        .filter(|u| u.flags & MORE_SEATS != 0)
        .map(|u| u.team)
        .collect();
    let mut grants: Vec<u32> = ix
        .apps
        .values()
        .filter(|a| a.granted())
        .map(|a| a.grants)
        .collect();
    for (slots, held) in [
        (
            &mut orgs,
            ix.more_orgs
                .iter()
                .map(|(k, _)| k as u32)
                .collect::<Vec<_>>(),
        ),
        (&mut seats, ix.seats.iter().map(|(k, _)| k as u32).collect()),
        (
            &mut grants,
            ix.app_grants.iter().map(|(k, _)| k as u32).collect(),
        ),
    ] {
        slots.sort_unstable();
        assert_eq!(*slots, held);
    }
}

/// A user's one team seat is kept inline; more seats, a seat with an end or
/// a team id past 32 bits are kept beside: each answers the same.
#[test]
fn team_seats_inline_and_beside() {
    const BIG: TeamId = (u32::MAX as TeamId) + 3;
    const LATER: Millis = 4_000_000_000_000;
    let mut s = snapshot();
    s.teams.extend([(31, 100), (BIG, 100)]);
    let grant = |team_id, app_id, role| PolicyTeamAppRow {
        team_id,
        app_id,
        role,
        expires_at: None,
    };
    s.team_apps.extend([
        grant(31, 201, AppRole::Admin),
        grant(BIG, 202, AppRole::Write),
    ]);
    let seat = |team_id, user_id, expires_at| PolicyTeamMemberRow {
        team_id,
        user_id,
        expires_at,
    };
    // carol (4): team 30, and team 31 until LATER; dave (5): the big team only.
    s.team_members
        .extend([seat(31, 4, Some(LATER)), seat(BIG, 5, None)]);
    s.apps.retain(|(id, _)| *id != 202);
    s.apps.push((202, 100));
    let e = PolicyEngine::new(&s);
    let may = |e: &PolicyEngine, user, action, app, now| {
        e.decide_at(&Principal::user(user), action, Resource::App(app), now)
            .allow
    };
    assert!(may(&e, 4, Action::AppWrite, 200, NOW), "team 30");
    assert!(may(&e, 4, Action::AppManage, 201, NOW), "team 31");
    assert!(
        !may(&e, 4, Action::AppManage, 201, LATER),
        "team 31 seat ended"
    );
    assert!(may(&e, 5, Action::AppWrite, 202, NOW), "the big team");
    assert!(
        !may(&e, 4, Action::AppWrite, 202, NOW),
        "not in the big team"
    );
    assert_eq!(e.stats().team_seats, 3);
    {
        let ix = e.index.read();
        assert!(spilled(&ix, 4, MORE_SEATS) && spilled(&ix, 5, MORE_SEATS));
        slots_match_entries(&ix);
    }
    // carol's seats shrink to team 30 alone: inline again, team 31 gone.
    e.apply(
        ChangeKind::User,
        4,
        &PolicySubject {
            user: s.users.iter().find(|u| u.id == 4).cloned(),
            memberships: s
                .memberships
                .iter()
                .filter(|m| m.user_id == 4)
                .cloned()
                .collect(),
            team_seats: vec![seat(30, 4, None)],
            ..Default::default()
        },
    );
    assert!(may(&e, 4, Action::AppWrite, 200, NOW));
    assert!(!may(&e, 4, Action::AppManage, 201, NOW));
    assert!(!spilled(&e.index.read(), 4, MORE_SEATS));
    slots_match_entries(&e.index.read());
    assert_eq!(e.stats().team_seats, 2);
}
