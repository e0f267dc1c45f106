//! The contenders: our engine, cedar-policy, regorus (Rego), casbin and a bare
//! hash-map floor, behind one small trait so the measuring loop is generic (and
//! monomorphized: no dynamic dispatch inside a timed loop).

pub mod casbin;
pub mod cedar;
pub mod floor;
pub mod ours;
pub mod rego;

use crate::generate::Question;

/// An engine that answers questions.
pub trait Contender {
    /// The engine's own form of a question, built before timing starts (for
    /// example a cedar `Request`), so that the timed loop measures deciding.
    type Prepared;
    fn prepare(&self, q: &Question) -> Self::Prepared;
    fn decide(&mut self, p: &Self::Prepared) -> bool;
}
