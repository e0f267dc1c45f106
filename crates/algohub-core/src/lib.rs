#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! algohub-core: the domain of algohub, free of HTTP and SQL.
//!
//! - `names`, `roles`, `secrets`, `model`: types parsed once at the edge.
//! - `policy`: the authorization engine every service calls.
//! - `store`: the narrow store traits the backends implement.
//! - `services`: the use cases (caller first, then load, authorize, change, record).

pub mod audit;
pub mod context;
pub mod error;
pub mod model;
pub mod names;
pub mod policy;
pub mod roles;
pub mod secrets;
pub mod services;
pub mod store;

pub use context::RequestCtx;
pub use error::{Code, Error, ErrorKind, LimitInfo, Result};
