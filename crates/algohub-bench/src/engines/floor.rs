//! The floor: a precomputed `FxHashMap<(user, home account), OrgRole>` and one
//! lookup plus one comparison per question. It is what "no engine at all" costs;
//! it ignores suspension, missing resources, cluster admins and team grants, so
//! its answers are not checked.

use super::Contender;
use crate::generate::{Directory, Question};
use algohub_core::model::AccountId;
use algohub_core::policy::Action;
use algohub_core::roles::OrgRole;
use rustc_hash::FxHashMap;

pub struct Floor {
    roles: FxHashMap<(AccountId, AccountId), OrgRole>,
}

impl Floor {
    pub fn build(d: &Directory) -> Self {
        let mut roles = FxHashMap::default();
        roles.reserve(d.snapshot.memberships.len());
        for m in &d.snapshot.memberships {
            roles.insert((m.user_id, m.org_id), m.role);
        }
        Self { roles }
    }
}

/// The lowest org role that answers yes (`u8::MAX`: none does).
fn threshold(a: Action) -> u8 {
    match a {
        Action::OrgMembersRead
        | Action::OrgReadPrivate
        | Action::OrgTeamsRead
        | Action::AppRead => OrgRole::Viewer as u8,
        Action::AppCreate | Action::AppContribute | Action::AppWrite => OrgRole::Contributor as u8,
        _ => OrgRole::Admin as u8,
    }
}

impl Contender for Floor {
    /// (user, home, lowest role that allows)
    type Prepared = (AccountId, AccountId, u8);

    fn prepare(&self, q: &Question) -> Self::Prepared {
        (q.user, q.home, threshold(q.action))
    }

    #[inline]
    fn decide(&mut self, &(user, home, need): &Self::Prepared) -> bool {
        self.roles
            .get(&(user, home))
            .is_some_and(|r| *r as u8 >= need)
    }
}
