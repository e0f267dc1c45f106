//! algohub's native routes, for what the v1 API lacks.

pub mod admin;
pub mod apps;
pub mod audit;
pub mod authz;
pub mod elevated;
pub mod invitations;
pub mod quota;
pub mod signin;
pub mod teams;

use crate::routes::Routes;

pub fn routes(r: Routes) -> Routes {
    let r = invitations::routes(r);
    let r = teams::routes(r);
    let r = apps::routes(r);
    let r = authz::routes(r);
    let r = admin::routes(r);
    let r = elevated::routes(r);
    let r = signin::routes(r);
    let r = quota::routes(r);
    audit::routes(r)
}
