//! API tests: one integration binary (see ARCHITECTURE.md, Tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod admin_users;
mod algorithms;
mod apps_teams;
mod audit;
mod billing;
mod call_tokens;
mod calls;
mod cli;
mod data;
mod durability;
mod elevated;
mod governance;
mod invitations;
mod journal;
mod keys;
mod matrix;
mod multinode;
mod notifications;
mod support;
