//! Our engine: `PolicyEngine` built from the snapshot, asked with
//! `decide_at(&Principal::user(id), action, resource, now)`. The stream holds
//! the user id, as the floor's does; the `Principal` is built per decision
//! (as a request handler builds it from its session), not stored 80 bytes
//! a question.

use super::Contender;
use crate::generate::Question;
use algohub_core::model::{AccountId, Millis};
use algohub_core::policy::{Action, PolicyEngine, Principal, Resource};

/// A fixed "now" (nothing in the generated directory expires).
pub const NOW: Millis = 1_750_000_000_000;

pub struct Ours {
    pub engine: PolicyEngine,
}

impl Contender for Ours {
    type Prepared = (AccountId, Action, Resource);

    fn prepare(&self, q: &Question) -> Self::Prepared {
        (q.user, q.action, q.resource)
    }

    #[inline]
    fn decide(&mut self, &(user, a, r): &Self::Prepared) -> bool {
        self.engine
            .decide_at(&Principal::user(user), a, r, NOW)
            .allow
    }
}

/// Our rules over an index held directly: `Ours` without the engine's
/// read lock, to show what the lock costs.
pub struct OursIndex {
    pub index: algohub_core::policy::Index,
}

impl Contender for OursIndex {
    type Prepared = (AccountId, Action, Resource);

    fn prepare(&self, q: &Question) -> Self::Prepared {
        (q.user, q.action, q.resource)
    }

    #[inline]
    fn decide(&mut self, &(user, a, r): &Self::Prepared) -> bool {
        self.index.decide(&Principal::user(user), a, r, NOW).allow
    }
}
