//! algohub's native routes, for what the v1 API lacks.

pub mod admin;
pub mod apps;
pub mod authz;
pub mod invitations;
pub mod teams;

use crate::routes::Routes;

pub fn routes(r: Routes) -> Routes {
    admin::routes(authz::routes(apps::routes(teams::routes(
        invitations::routes(r),
    ))))
}
