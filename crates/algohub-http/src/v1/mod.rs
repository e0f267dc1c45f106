//! The Algorithmia v1 compatible routes.

pub mod admin_usage;
pub mod algorithms;
pub mod calls;
pub mod data;
pub mod invites;
pub mod keys;
pub mod notifications;
pub mod orgs;
pub mod shapes;
pub mod source;
pub mod usage;
pub mod users;
pub mod versions;

use crate::routes::Routes;

pub fn routes(r: Routes) -> Routes {
    let r = users::routes(r);
    let r = orgs::routes(r);
    let r = keys::routes(r);
    let r = algorithms::routes(r);
    let r = versions::routes(r);
    let r = source::routes(r);
    let r = calls::routes(r);
    let r = usage::routes(r);
    let r = admin_usage::routes(r);
    let r = notifications::routes(r);
    let r = invites::routes(r);
    data::routes(r)
}
