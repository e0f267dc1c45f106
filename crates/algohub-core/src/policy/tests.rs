//! Table tests of the policy: one row per (principal, action, resource) case.

use super::*;
use crate::roles::{AppRole, OrgRole};
use crate::store::*;

use super::test_directory::{NOW, engine};

fn key(e: &PolicyEngine, digest: &str) -> Principal {
    e.index
        .read()
        .principal_for_key(digest, NOW)
        .unwrap_or_else(|| panic!("key {digest} should authenticate"))
}

#[test]
fn decision_table() {
    use Action::*;
    use Resource as R;
    let e = engine();
    let u = Principal::user;
    let org_key = key(&e, "d-org");
    let member_key = key(&e, "d-member");
    let calls_key = key(&e, "d-calls");
    #[rustfmt::skip]
    let rows: Vec<(&str, Principal, Action, Resource, bool, Rule)> = vec![
        ("admin manages users", u(1), AdminUsersManage, R::Cluster, true, Rule::ClusterAdmin),
        ("user cannot manage users", u(2), AdminUsersManage, R::Cluster, false, Rule::DefaultDeny),
        ("admin manages any org's members", u(1), OrgMembersManage, R::Org(100), true, Rule::ClusterAdmin),
        ("admin needs super powers for apps", u(1), AppRead, R::App(200), false, Rule::DefaultDeny),
        ("org admin manages members", u(2), OrgMembersManage, R::Org(100), true, Rule::OrgRole),
        ("contributor cannot manage members", u(3), OrgMembersManage, R::Org(100), false, Rule::DefaultDeny),
        ("viewer reads members", u(5), OrgMembersRead, R::Org(100), true, Rule::OrgRole),
        ("outsider cannot read members", u(6), OrgMembersRead, R::Org(100), false, Rule::DefaultDeny),
        ("everyone reads org profile", u(6), OrgRead, R::Org(100), true, Rule::Authenticated),
        ("org must exist", u(6), OrgRead, R::Org(999), false, Rule::ResourceExists),
        ("suspended user refused", u(7), OrgRead, R::Org(100), false, Rule::PrincipalActive),
        ("unknown user refused", u(99), OrgRead, R::Org(100), false, Rule::PrincipalActive),
        ("expired membership gives nothing", u(8), OrgMembersRead, R::Org(100), false, Rule::DefaultDeny),
        ("contributor creates apps in org", u(3), AppCreate, R::Account(100), true, Rule::OrgRole),
        ("team contributor cannot create apps", u(4), AppCreate, R::Account(100), false, Rule::DefaultDeny),
        ("user creates apps in own account", u(6), AppCreate, R::Account(6), true, Rule::AccountSelf),
        ("user cannot create apps elsewhere", u(6), AppCreate, R::Account(2), false, Rule::DefaultDeny),
        ("org admin has app admin", u(2), AppManage, R::App(200), true, Rule::AppOrgRole),
        ("contributor writes org apps", u(3), AppWrite, R::App(201), true, Rule::AppOrgRole),
        ("contributor cannot delete org apps", u(3), AppDelete, R::App(201), false, Rule::DefaultDeny),
        ("viewer reads org apps", u(5), AppRead, R::App(200), true, Rule::AppOrgRole),
        ("viewer cannot write org apps", u(5), AppWrite, R::App(200), false, Rule::DefaultDeny),
        ("team grant write", u(4), AppWrite, R::App(200), true, Rule::TeamAppGrant),
        ("team grant below need", u(4), AppManage, R::App(200), false, Rule::DefaultDeny),
        ("expired team grant", u(4), AppRead, R::App(201), false, Rule::DefaultDeny),
        ("owner manages own app", u(6), AppManage, R::App(202), true, Rule::AppOwner),
        ("stranger cannot read private app", u(2), AppRead, R::App(202), false, Rule::DefaultDeny),
        ("missing app", u(2), AppRead, R::App(999), false, Rule::ResourceExists),
        ("self reads own profile", u(6), UserRead, R::User(6), true, Rule::AccountSelf),
        ("user cannot read another profile", u(6), UserRead, R::User(2), false, Rule::DefaultDeny),
        ("any user creates orgs", u(6), OrgCreate, R::Cluster, true, Rule::Authenticated),
        ("org key acts as contributor", org_key, AppWrite, R::App(200), true, Rule::AppOrgRole),
        ("org key cannot manage members", org_key, OrgMembersManage, R::Org(100), false, Rule::DefaultDeny),
        ("org key cannot create orgs", org_key, OrgCreate, R::Cluster, false, Rule::DefaultDeny),
        ("member key inside its org", member_key, AppWrite, R::App(200), true, Rule::AppOrgRole),
        ("member key outside its org", member_key, UserRead, R::User(3), false, Rule::KeyOrgLimit),
        ("calls-only key cannot manage", calls_key, OrgMembersManage, R::Org(100), false, Rule::KeyScope),
        ("team resource: viewer reads teams", u(5), OrgTeamsRead, R::Team(30), true, Rule::OrgRole),
        ("team resource: contributor cannot manage teams", u(3), OrgTeamsManage, R::Team(30), false, Rule::DefaultDeny),
        ("missing team", u(2), OrgTeamsRead, R::Team(31), false, Rule::ResourceExists),
        ("owner calls own private algorithm", u(6), AlgoCall, R::Algorithm(302), true, Rule::AppOwner),
        ("stranger cannot call a private algorithm", u(2), AlgoCall, R::Algorithm(302), false, Rule::DefaultDeny),
        ("anyone calls a public version", u(2), AlgoCallPublic, R::Algorithm(302), true, Rule::Authenticated),
        ("viewer calls org algorithms", u(5), AlgoCall, R::Algorithm(301), true, Rule::AppOrgRole),
        ("viewer cannot publish", u(5), AlgoPublish, R::Algorithm(301), false, Rule::DefaultDeny),
        ("contributor publishes", u(3), AlgoPublish, R::Algorithm(301), true, Rule::AppOrgRole),
        ("team grant reaches algorithms in the app", u(4), AlgoPublish, R::Algorithm(300), true, Rule::TeamAppGrant),
        ("no team grant outside the app", u(4), AlgoCall, R::Algorithm(301), false, Rule::DefaultDeny),
        ("org admin approves versions", u(2), VersionApprove, R::Algorithm(300), true, Rule::OrgRole),
        ("contributor cannot approve", u(3), VersionApprove, R::Algorithm(300), false, Rule::DefaultDeny),
        ("cluster admin cannot approve", u(1), VersionApprove, R::Algorithm(300), false, Rule::DefaultDeny),
        ("contributor creates org algorithms", u(3), AlgoCreate, R::Account(100), true, Rule::OrgRole),
        ("user creates own algorithms", u(6), AlgoCreate, R::Account(6), true, Rule::AccountSelf),
        ("calls-only key calls", calls_key, AlgoCall, R::Algorithm(301), true, Rule::AppOrgRole),
        ("calls-only key cannot publish", calls_key, AlgoPublish, R::Algorithm(301), false, Rule::KeyScope),
        ("missing algorithm", u(2), AlgoCall, R::Algorithm(999), false, Rule::ResourceExists),
        ("user writes own data", u(6), DataWrite, R::Account(6), true, Rule::AccountSelf),
        ("user cannot read others' data", u(6), DataRead, R::Account(2), false, Rule::DefaultDeny),
        ("anyone reads public collections", u(6), DataReadPublic, R::Account(2), true, Rule::Authenticated),
        ("viewer reads org data", u(5), DataRead, R::Account(100), true, Rule::OrgRole),
        ("viewer cannot write org data", u(5), DataWrite, R::Account(100), false, Rule::DefaultDeny),
        ("contributor writes org data", u(3), DataWrite, R::Account(100), true, Rule::OrgRole),
        ("cluster admin needs super powers for data", u(1), DataRead, R::Account(6), false, Rule::DefaultDeny),
        ("calls-only key cannot read data", calls_key, DataRead, R::Account(100), false, Rule::KeyScope),
        ("sudo user calls as the owner", u(9), AlgoCallSudo, R::Algorithm(302), true, Rule::SudoUser),
        ("others cannot sudo", u(2), AlgoCallSudo, R::Algorithm(302), false, Rule::SudoUser),
        ("cluster admins are not sudo users by role", u(1), AlgoCallSudo, R::Algorithm(302), false, Rule::SudoUser),
        ("member keys never sudo", member_key, AlgoCallSudo, R::Algorithm(301), false, Rule::SudoUser),
        ("org admin reads org billing", u(2), AccountBillingRead, R::Account(100), true, Rule::OrgRole),
        ("contributor cannot read org billing", u(3), AccountBillingRead, R::Account(100), false, Rule::DefaultDeny),
        ("user reads own billing", u(6), AccountBillingRead, R::Account(6), true, Rule::AccountSelf),
        ("cluster admin reads any billing", u(1), AccountBillingRead, R::Account(100), true, Rule::ClusterAdmin),
        ("org key cannot read org billing", org_key, AccountBillingRead, R::Account(100), false, Rule::DefaultDeny),
    ];
    for (name, p, a, r, allow, rule) in rows {
        let d = e.decide_at(&p, a, r, NOW);
        assert_eq!((d.allow, d.rule), (allow, rule), "{name}");
        let x = {
            let ix = e.index.read();
            let mut t = rules::VecTrace::default();
            let d2 = rules::evaluate(&ix, &p, a, r, NOW, &mut t);
            (d2, t.steps)
        };
        assert_eq!(x.0, d, "{name}: explain and decide agree");
        assert_eq!(
            x.1.last().map(|s| s.rule),
            Some(rule),
            "{name}: chain ends at the deciding rule"
        );
    }
}

/// Decides `rows` and checks that explain agrees and ends at the deciding rule.
fn check_table(e: &PolicyEngine, rows: Vec<(&str, Principal, Action, Resource, bool, Rule)>) {
    for (name, p, a, r, allow, rule) in rows {
        let d = e.decide_at(&p, a, r, NOW);
        assert_eq!((d.allow, d.rule), (allow, rule), "{name}");
        let ix = e.index.read();
        let mut t = rules::VecTrace::default();
        let d2 = rules::evaluate(&ix, &p, a, r, NOW, &mut t);
        assert_eq!(d2, d, "{name}: explain and decide agree");
        assert_eq!(
            t.steps.last().map(|s| s.rule),
            Some(rule),
            "{name}: chain ends at the deciding rule"
        );
    }
}

/// `algo.source.read`: an algorithm's source, whatever its source_visibility,
/// for those with rights on it (app role write); where the source is open,
/// `algo.read` is enough (the viewer's `AlgoRead` row). Cluster admins need super powers
/// (`principal_tests`).
#[test]
fn source_read_table() {
    use Action::*;
    use Resource as R;
    let e = engine();
    let u = Principal::user;
    let org_key = key(&e, "d-org");
    let member_key = key(&e, "d-member");
    let calls_key = key(&e, "d-calls");
    #[rustfmt::skip]
    let rows: Vec<(&str, Principal, Action, Resource, bool, Rule)> = vec![
        ("owner reads own source", u(6), AlgoSourceRead, R::Algorithm(302), true, Rule::AppOwner),
        ("stranger cannot read source", u(2), AlgoSourceRead, R::Algorithm(302), false, Rule::DefaultDeny),
        ("org admin reads org source", u(2), AlgoSourceRead, R::Algorithm(301), true, Rule::AppOrgRole),
        ("contributor reads org source", u(3), AlgoSourceRead, R::Algorithm(301), true, Rule::AppOrgRole),
        ("viewer cannot read source by rights", u(5), AlgoSourceRead, R::Algorithm(301), false, Rule::DefaultDeny),
        ("viewer reads the algorithm (open source)", u(5), AlgoRead, R::Algorithm(301), true, Rule::AppOrgRole),
        ("team write grant reads source in the app", u(4), AlgoSourceRead, R::Algorithm(300), true, Rule::TeamAppGrant),
        ("team contributor without a grant", u(4), AlgoSourceRead, R::Algorithm(301), false, Rule::DefaultDeny),
        ("expired membership reads nothing", u(8), AlgoSourceRead, R::Algorithm(301), false, Rule::DefaultDeny),
        ("cluster admin without super powers", u(1), AlgoSourceRead, R::Algorithm(302), false, Rule::DefaultDeny),
        ("cluster admin cannot read the algorithm either", u(1), AlgoRead, R::Algorithm(302), false, Rule::DefaultDeny),
        ("sudo user is no reader of source", u(9), AlgoSourceRead, R::Algorithm(302), false, Rule::DefaultDeny),
        ("suspended user refused", u(7), AlgoSourceRead, R::Algorithm(301), false, Rule::PrincipalActive),
        ("org key reads org source", org_key, AlgoSourceRead, R::Algorithm(301), true, Rule::AppOrgRole),
        ("member key reads source inside its org", member_key, AlgoSourceRead, R::Algorithm(301), true, Rule::AppOrgRole),
        ("member key outside its org", member_key, AlgoSourceRead, R::Algorithm(302), false, Rule::KeyOrgLimit),
        ("calls-only key cannot read source", calls_key, AlgoSourceRead, R::Algorithm(301), false, Rule::KeyScope),
        ("missing algorithm", u(2), AlgoSourceRead, R::Algorithm(999), false, Rule::ResourceExists),
    ];
    check_table(&e, rows);
    assert_eq!(Action::parse("algo.source.read"), Some(AlgoSourceRead));
    assert_eq!(AlgoSourceRead.required_scope(), Scopes::MANAGEMENT);
    // Who may read acme/detector's source by rights: admin, contributor, and
    // the team seat holding app 200 with write (not the viewer, not root).
    let who: Vec<_> = e
        .who_can(AlgoSourceRead, R::Algorithm(300))
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(who, vec![2, 3, 4]);
}

#[test]
fn keys_authenticate_only_when_live() {
    let e = engine();
    assert!(e.index.read().principal_for_key("d-expired", NOW).is_none());
    assert!(e.index.read().principal_for_key("d-revoked", NOW).is_none());
    assert!(e.index.read().principal_for_key("nope", NOW).is_none());
    assert_eq!(
        key(&e, "d-member").kind,
        PrincipalKind::MemberKey { user: 3, org: 100 }
    );
}

#[test]
fn changes_apply_incrementally() {
    let e = engine();
    let bob = Principal::user(3);
    assert!(
        e.decide_at(&bob, Action::AppWrite, Resource::App(200), NOW)
            .allow
    );
    // bob leaves acme: the user subject now has no memberships.
    e.apply(
        ChangeKind::User,
        3,
        &PolicySubject {
            user: Some(PolicyUserRow {
                id: 3,
                cluster_admin: false,
                sudo_user: false,
                active: true,
                super_powers_until: None,
            }),
            ..Default::default()
        },
    );
    assert!(
        !e.decide_at(&bob, Action::AppWrite, Resource::App(200), NOW)
            .allow
    );
    // the org key is revoked.
    e.apply(ChangeKind::Key, 1, &PolicySubject::default());
    assert!(e.authenticate_key("d-org").is_none());
    // app 202 moves to acme.
    e.apply(
        ChangeKind::App,
        202,
        &PolicySubject {
            app_owner: Some(100),
            ..Default::default()
        },
    );
    assert!(
        e.decide_at(
            &Principal::user(2),
            Action::AppManage,
            Resource::App(202),
            NOW
        )
        .allow
    );
    assert!(
        !e.decide_at(
            &Principal::user(6),
            Action::AppManage,
            Resource::App(202),
            NOW
        )
        .allow
    );
}

#[test]
fn membership_expiry_follows_user_changes() {
    let e = engine();
    let gina = Principal::user(8);
    let row = PolicyUserRow {
        id: 8,
        cluster_admin: false,
        sudo_user: false,
        active: true,
        super_powers_until: None,
    };
    let member = |expires_at| PolicyMembershipRow {
        user_id: 8,
        org_id: 100,
        role: OrgRole::Viewer,
        expires_at,
    };
    let read = |e: &PolicyEngine| {
        e.decide_at(&gina, Action::OrgMembersRead, Resource::Org(100), NOW)
            .allow
    };
    let set = |e: &PolicyEngine, expires_at| {
        e.apply(
            ChangeKind::User,
            8,
            &PolicySubject {
                user: Some(row),
                memberships: vec![member(expires_at)],
                ..Default::default()
            },
        )
    };
    assert!(!read(&e), "the snapshot's membership has expired");
    set(&e, None);
    assert!(read(&e), "renewed without an end, the old expiry is gone");
    set(&e, Some(NOW + 1));
    assert!(read(&e));
    assert!(
        !e.decide_at(&gina, Action::OrgMembersRead, Resource::Org(100), NOW + 1)
            .allow
    );
    set(&e, Some(NOW - 1));
    assert!(!read(&e));
    // Leaving the org drops the membership and its expiry.
    e.apply(
        ChangeKind::User,
        8,
        &PolicySubject {
            user: Some(row),
            ..Default::default()
        },
    );
    assert!(!read(&e));
    assert_eq!(e.org_role(8, 100), None);
    assert!(e.user_orgs(8).is_empty());
    assert_eq!(e.stats().memberships, 5);
    assert!(e.index.read().member_expiry.is_empty());
}

#[test]
fn team_grants_follow_team_and_app_changes() {
    let e = engine();
    let carol = Principal::user(4);
    let allowed = |a: Action, app: AppId| e.decide_at(&carol, a, Resource::App(app), NOW);
    let d = allowed(Action::AppWrite, 200);
    assert!(d.allow && d.rule == Rule::TeamAppGrant, "{d:?}");
    // Team 30 now grants app 200 read only, and app 201 admin.
    let grant = |app_id, role| PolicyTeamAppRow {
        team_id: 30,
        app_id,
        role,
        expires_at: None,
    };
    e.apply(
        ChangeKind::Team,
        30,
        &PolicySubject {
            team_org: Some(100),
            team_apps: vec![grant(200, AppRole::Read), grant(201, AppRole::Admin)],
            ..Default::default()
        },
    );
    assert!(!allowed(Action::AppWrite, 200).allow);
    assert!(allowed(Action::AppRead, 200).allow);
    assert!(allowed(Action::AppManage, 201).allow);
    // An app that changes hands keeps its grants; once it is in another org
    // than the team's, they no longer count.
    let move_to = |owner| {
        e.apply(
            ChangeKind::App,
            201,
            &PolicySubject {
                app_owner: Some(owner),
                ..Default::default()
            },
        )
    };
    move_to(101);
    assert!(!allowed(Action::AppManage, 201).allow);
    move_to(100);
    assert!(allowed(Action::AppManage, 201).allow);
    // A new app holds no grants.
    e.apply(
        ChangeKind::App,
        203,
        &PolicySubject {
            app_owner: Some(100),
            ..Default::default()
        },
    );
    assert!(!allowed(Action::AppRead, 203).allow);
    // The team goes: so do its grants, from every app.
    e.apply(ChangeKind::Team, 30, &PolicySubject::default());
    assert!(!allowed(Action::AppRead, 200).allow);
    assert!(!allowed(Action::AppManage, 201).allow);
    let ix = e.index.read();
    assert!(ix.app_grants.is_empty());
    assert!(ix.apps.values().all(|a| !a.granted()));
    super::layout_tests::slots_match_entries(&ix);
    assert!(!ix.team_grants.contains_key(&30));
}

#[test]
fn who_can_lists_users_with_reasons() {
    let e = engine();
    let who = e.who_can(Action::OrgMembersManage, Resource::Org(100));
    assert_eq!(who, vec![(1, Rule::ClusterAdmin), (2, Rule::OrgRole)]);
    let readers: Vec<_> = e
        .who_can(Action::AppRead, Resource::App(200))
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(readers, vec![2, 3, 4, 5]);
}

#[test]
fn actions_round_trip_by_name() {
    for a in Action::ALL {
        assert_eq!(Action::parse(a.as_str()), Some(a));
    }
    assert_eq!(Action::parse("nope"), None);
}

/// `org.leave`: every member of the org may leave it, whatever their role,
/// with their own credentials or a member key inside the org; not through an
/// impersonation session (a membership outlives it), and not those who are no
/// (longer) members.
#[test]
fn leaving_an_org_table() {
    use Action::*;
    use Resource as R;
    let e = engine();
    let u = Principal::user;
    let member_key = key(&e, "d-member");
    let calls_key = key(&e, "d-calls");
    let impersonated = |user| Principal {
        session: Some(1),
        impersonator: Some(1),
        ..Principal::user(user)
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Principal, Resource, bool, Rule)> = vec![
        ("admin leaves", u(2), R::Org(100), true, Rule::OrgRole),
        ("contributor leaves", u(3), R::Org(100), true, Rule::OrgRole),
        ("team contributor leaves", u(4), R::Org(100), true, Rule::OrgRole),
        ("viewer leaves", u(5), R::Org(100), true, Rule::OrgRole),
        ("member key leaves its org", member_key, R::Org(100), true, Rule::OrgRole),
        ("not a member", u(6), R::Org(100), false, Rule::DefaultDeny),
        ("expired membership", u(8), R::Org(100), false, Rule::DefaultDeny),
        ("suspended member", u(7), R::Org(100), false, Rule::PrincipalActive),
        ("calls-only key", calls_key, R::Org(100), false, Rule::KeyScope),
        ("impersonated admin", impersonated(2), R::Org(100), false, Rule::ImpersonationLimit),
        ("impersonated viewer", impersonated(5), R::Org(100), false, Rule::ImpersonationLimit),
        ("missing org", u(2), R::Org(999), false, Rule::ResourceExists),
    ];
    for (name, p, r, allow, rule) in rows {
        let d = e.decide_at(&p, OrgLeave, r, NOW);
        assert_eq!((d.allow, d.rule), (allow, rule), "{name}");
        let mut t = rules::VecTrace::default();
        let d2 = rules::evaluate(&e.index.read(), &p, OrgLeave, r, NOW, &mut t);
        assert_eq!(d2, d, "{name}: explain and decide agree");
    }
    // Reading the member list is no longer what lets a member leave: an
    // impersonation session may still read it.
    assert!(
        e.decide_at(&impersonated(5), OrgMembersRead, R::Org(100), NOW)
            .allow
    );
    assert_eq!(Action::parse("org.leave"), Some(OrgLeave));
    assert_eq!(OrgLeave.required_scope(), Scopes::MANAGEMENT);
}
