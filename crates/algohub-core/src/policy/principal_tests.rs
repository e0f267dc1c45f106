//! Table tests of principals other than a plain user or key: a cluster admin
//! with super powers, an impersonation session, and an algorithm's call token.

use super::test_directory::{NOW, engine};
use super::*;
use crate::store::PolicyUserRow;

#[test]
fn super_powers_open_reads_only_while_on() {
    use Action::*;
    use Resource as R;
    let e = engine();
    let admin = Principal::user(1);
    assert_eq!(
        e.decide_at(&admin, AppRead, R::App(202), NOW).rule,
        Rule::DefaultDeny
    );
    let on = PolicyUserRow {
        id: 1,
        cluster_admin: true,
        sudo_user: false,
        active: true,
        super_powers_until: Some(NOW + 1_000),
    };
    e.apply(
        ChangeKind::User,
        1,
        &PolicySubject {
            user: Some(on),
            ..Default::default()
        },
    );
    let reads = [
        (AppRead, R::App(202)),
        (AlgoRead, R::Algorithm(302)),
        (AlgoSourceRead, R::Algorithm(302)),
        (AlgoSourceRead, R::Algorithm(301)),
        (OrgTeamsRead, R::Team(30)),
        (OrgReadPrivate, R::Org(100)),
    ];
    for (action, r) in reads {
        let d = e.decide_at(&admin, action, r, NOW);
        assert_eq!((d.allow, d.rule), (true, Rule::SuperPowers), "{action:?}");
        assert!(
            !e.decide_at(&admin, action, r, NOW + 1_000).allow,
            "{action:?} after they end"
        );
    }
    for (action, r) in [
        (AppWrite, R::App(202)),
        (AlgoCall, R::Algorithm(302)),
        (AlgoUpdate, R::Algorithm(302)),
        (DataRead, R::Account(6)),
    ] {
        assert!(!e.decide_at(&admin, action, r, NOW).allow, "{action:?}");
    }
    // Ordinary access is never counted as elevated.
    let d = e.decide_at(&Principal::user(6), AppRead, R::App(202), NOW);
    assert_eq!(d.rule, Rule::AppOwner);
}

#[test]
fn impersonation_acts_as_the_user_within_limits() {
    use Action::*;
    use Resource as R;
    let e = engine();
    let erin_by_admin = Principal {
        session: Some(1),
        impersonator: Some(1),
        ..Principal::user(6)
    };
    let d = e.decide_at(&erin_by_admin, AppWrite, R::App(202), NOW);
    assert_eq!((d.allow, d.rule), (true, Rule::AppOwner));
    // Source reads go as the user's: erin's own, not acme's.
    let d = e.decide_at(&erin_by_admin, AlgoSourceRead, R::Algorithm(302), NOW);
    assert_eq!((d.allow, d.rule), (true, Rule::AppOwner));
    let d = e.decide_at(&erin_by_admin, AlgoSourceRead, R::Algorithm(301), NOW);
    assert_eq!((d.allow, d.rule), (false, Rule::DefaultDeny));
    for (action, r) in [
        (UserKeysManage, R::User(6)),
        (AdminUsersRead, R::Cluster),
        (AlgoCallSudo, R::Algorithm(302)),
        // What outlives the session or changes who may do what.
        (AppManage, R::App(202)),
        (OrgUpdate, R::Org(100)),
        (OrgDelete, R::Org(100)),
        (OrgTeamsManage, R::Org(100)),
        (VersionApprove, R::Algorithm(302)),
    ] {
        let d = e.decide_at(&erin_by_admin, action, r, NOW);
        assert_eq!(
            (d.allow, d.rule),
            (false, Rule::ImpersonationLimit),
            "{action:?}"
        );
    }
    // Impersonating an admin does not carry the admin's powers.
    let admin_by_admin = Principal {
        session: Some(2),
        impersonator: Some(1),
        ..Principal::user(1)
    };
    assert!(
        !e.decide_at(&admin_by_admin, AdminUsersManage, R::Cluster, NOW)
            .allow
    );
}

#[test]
fn a_call_token_principal_is_held_to_its_scopes() {
    use Action::*;
    use Resource as R;
    let e = engine();
    // alice's (2) algorithm, called by erin (6), reading data.
    let token = Principal {
        scopes: Scopes(Scopes::DATA_READ),
        call: Some(CallGrant {
            algorithm_owner: 2,
            caller: 6,
            caller_key: None,
            caller_session: None,
            sudo: false,
        }),
        ..Principal::user(6)
    };
    assert!(token.is_algorithm_of(2) && !token.is_algorithm_of(6));
    let d = e.decide_at(&token, DataRead, R::Account(6), NOW);
    assert_eq!((d.allow, d.rule), (true, Rule::AccountSelf));
    // What a full session of the same user may do, the token may not.
    for (action, r) in [
        (DataWrite, R::Account(6)),
        (AppManage, R::App(202)),
        (UserKeysManage, R::User(6)),
        (AlgoCallPublic, R::Algorithm(302)),
    ] {
        assert!(
            e.decide_at(&Principal::user(6), action, r, NOW).allow,
            "{action:?}"
        );
        let d = e.decide_at(&token, action, r, NOW);
        assert_eq!((d.allow, d.rule), (false, Rule::KeyScope), "{action:?}");
    }
    // Nor does it lend the caller the owner's rights.
    assert!(!e.decide_at(&token, DataRead, R::Account(2), NOW).allow);
}
