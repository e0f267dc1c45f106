//! The Algorithmia v1 compatible routes.

pub mod algorithms;
pub mod calls;
pub mod keys;
pub mod orgs;
pub mod shapes;
pub mod users;

use crate::routes::Routes;

pub fn routes(r: Routes) -> Routes {
    calls::routes(algorithms::routes(keys::routes(orgs::routes(
        users::routes(r),
    ))))
}
