//! Our engine: `PolicyEngine` built from the snapshot, asked with
//! `decide_at(&Principal::user(id), action, resource, now)`.

use super::Contender;
use crate::generate::Question;
use algohub_core::model::Millis;
use algohub_core::policy::{Action, PolicyEngine, Principal, Resource};

/// A fixed "now" (nothing in the generated directory expires).
pub const NOW: Millis = 1_750_000_000_000;

pub struct Ours {
    pub engine: PolicyEngine,
}

impl Contender for Ours {
    type Prepared = (Principal, Action, Resource);

    fn prepare(&self, q: &Question) -> Self::Prepared {
        (Principal::user(q.user), q.action, q.resource)
    }

    #[inline]
    fn decide(&mut self, (p, a, r): &Self::Prepared) -> bool {
        self.engine.decide_at(p, *a, *r, NOW).allow
    }
}

/// Our rules over an index held directly: `Ours` without the engine's
/// read lock, to show what the lock costs.
pub struct OursIndex {
    pub index: algohub_core::policy::Index,
}

impl Contender for OursIndex {
    type Prepared = (Principal, Action, Resource);

    fn prepare(&self, q: &Question) -> Self::Prepared {
        (Principal::user(q.user), q.action, q.resource)
    }

    #[inline]
    fn decide(&mut self, (p, a, r): &Self::Prepared) -> bool {
        self.index.decide(p, *a, *r, NOW).allow
    }
}
