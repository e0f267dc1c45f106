//! The compact entries the policy index keeps per user and app, and how
//! memberships and team seats are packed into them.

use crate::model::{AccountId, AppId, Millis, TeamId};
use crate::roles::{AppRole, OrgRole};
use crate::store::{PolicyMembershipRow, PolicyUserRow};
use slab::Slab;
use smallvec::SmallVec;

/// One of a user's org memberships.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrgSeat {
    pub org: AccountId,
    pub role: OrgRole,
    /// The membership has an `expires_at` (in `Index::member_expiry`).
    pub expires: bool,
}

/// Memberships of a user who does not fit `UserEntry`'s two inline ones.
pub(crate) type Memberships = SmallVec<[OrgSeat; 4]>;
/// A user's team seats: (team, expires_at).
pub(crate) type Seats = SmallVec<[(TeamId, Option<Millis>); 1]>;
/// A team's app grants: (app, role, expires_at); teams hold a few apps.
pub(crate) type Grants = SmallVec<[(AppId, AppRole, Option<Millis>); 4]>;

/// A team's grants on one app.
pub(crate) type AppGrants = SmallVec<[TeamGrant; 1]>;

/// What a decision reads about an app: its owner, and where its team grants
/// are in `Index::app_grants` (`NO_GRANTS`: no team holds it). 16 bytes, so
/// that the apps of a large cluster stay in cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppEntry {
    pub owner: AccountId,
    pub grants: u32,
    _niche: Niche,
}

/// A one-value byte in an entry's padding: the other 255 values let
/// `Option<AppEntry>` (a dense table's row) stay 16 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum Niche {
    Entry = 0,
}

pub(crate) const NO_GRANTS: u32 = u32::MAX;

impl AppEntry {
    pub(crate) fn new(owner: AccountId) -> Self {
        Self {
            owner,
            grants: NO_GRANTS,
            _niche: Niche::Entry,
        }
    }
    pub(crate) fn granted(&self) -> bool {
        self.grants != NO_GRANTS
    }
}

/// A slab key as the `u32` an entry keeps. Keys are below the slab's length,
/// and a side table of 2^32 entries (each tens of bytes) would not fit in
/// memory long before: the cast never truncates.
pub(super) fn slot(key: usize) -> u32 {
    debug_assert!(u32::try_from(key).is_ok());
    key as u32
}

/// A team's grant on an app, as `Index::app_grants` holds it (a copy of the
/// teams' grants, kept by app so that the team-grant rule reads the app's
/// grants and the user's seats, not every team the user sits in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TeamGrant {
    pub team: TeamId,
    /// The team's org (a team never moves).
    pub org: AccountId,
    pub role: AppRole,
    /// When the grant ends (`Millis::MAX`: never).
    pub until: Millis,
}

/// A user's team seats, as `Index::team_seats` finds them.
pub(crate) enum TeamSeats<'a> {
    /// One seat without an end (inline in the user's entry).
    One(TeamId),
    Many(&'a [(TeamId, Option<Millis>)]),
}

impl TeamSeats<'_> {
    /// Whether one of the seats is a live seat in `team`.
    #[inline(always)]
    pub(crate) fn hold(&self, team: TeamId, now: Millis) -> bool {
        match self {
            TeamSeats::One(t) => *t == team,
            TeamSeats::Many(seats) => seats.iter().any(|(t, exp)| *t == team && live(*exp, now)),
        }
    }
}

/// `UserEntry::flags`: the account is not suspended.
const ACTIVE: u8 = 1;
const CLUSTER_ADMIN: u8 = 1 << 1;
const SUDO_USER: u8 = 1 << 2;
/// The user's memberships are all in `Index::more_orgs`, at the slot in
/// `orgs[0]` (more than two, or an org id past 32 bits); none are inline.
pub(super) const MORE_ORGS: u8 = 1 << 3;
/// Inline membership 0 (and, shifted by one, membership 1) has an `expires_at`.
pub(super) const EXPIRES: u8 = 1 << 4;
/// The user has one team seat, without an end, in `UserEntry::team`.
pub(super) const TEAM_SEAT: u8 = 1 << 6;
/// The user's team seats are in `Index::seats`, at the slot in `team` (more
/// than one, an end, or a team id past 32 bits).
pub(super) const MORE_SEATS: u8 = 1 << 7;

/// What a decision reads about a user: 16 bytes, four users to a cache line,
/// so that the users of a large cluster stay in cache (a decision is mostly
/// the wait for this one load). Most users are in at most two orgs and one
/// team: those are inline; users in more keep them in `Index::more_orgs` and
/// `Index::seats`. Super powers (cluster admins only) are in
/// `Index::super_until`.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct UserEntry {
    pub(super) orgs: [u32; 2],
    /// The one team seat (with `TEAM_SEAT`).
    pub(super) team: u32,
    pub(super) roles: [OrgRole; 2],
    /// Inline memberships in use.
    pub(super) len: u8,
    pub(super) flags: u8,
}

impl UserEntry {
    #[inline(always)]
    pub fn active(&self) -> bool {
        self.flags & ACTIVE != 0
    }
    #[inline(always)]
    pub fn cluster_admin(&self) -> bool {
        self.flags & CLUSTER_ADMIN != 0
    }
    #[inline(always)]
    pub fn sudo_user(&self) -> bool {
        self.flags & SUDO_USER != 0
    }
    /// Whether the user sits in any team.
    #[inline(always)]
    pub fn has_seats(&self) -> bool {
        self.flags & (TEAM_SEAT | MORE_SEATS) != 0
    }
}

pub(super) fn user_entry(u: &PolicyUserRow) -> UserEntry {
    let mut flags = 0;
    for (on, flag) in [
        (u.active, ACTIVE),
        (u.cluster_admin, CLUSTER_ADMIN),
        (u.sudo_user, SUDO_USER),
    ] {
        if on {
            flags |= flag;
        }
    }
    UserEntry {
        orgs: [0; 2],
        team: 0,
        roles: [OrgRole::Viewer; 2],
        len: 0,
        flags,
    }
}

pub(super) fn org_seat(m: &PolicyMembershipRow) -> OrgSeat {
    OrgSeat {
        org: m.org_id,
        role: m.role,
        expires: m.expires_at.is_some(),
    }
}

/// Adds a membership to a user's entry: inline while it fits, else all of
/// the user's memberships move to a slot of `more`.
pub(super) fn add_seat(more: &mut Slab<Memberships>, e: &mut UserEntry, seat: OrgSeat) {
    if e.flags & MORE_ORGS == 0 {
        let i = usize::from(e.len);
        if let (true, Ok(org)) = (i < e.orgs.len(), u32::try_from(seat.org)) {
            e.orgs[i] = org;
            e.roles[i] = seat.role;
            if seat.expires {
                e.flags |= EXPIRES << i;
            }
            e.len += 1;
            return;
        }
        let inline: Memberships = inline_orgs(e).collect();
        e.len = 0;
        e.flags = (e.flags | MORE_ORGS) & !(EXPIRES | EXPIRES << 1);
        e.orgs = [slot(more.insert(inline)), 0];
    }
    if let Some(m) = more.get_mut(e.orgs[0] as usize) {
        m.push(seat);
    }
}

/// Sets a user's team seats: inline if one without an end, else in a slot
/// of `more`.
pub(super) fn set_team_seats(more: &mut Slab<Seats>, e: &mut UserEntry, seats: Seats) {
    release_slots(None, Some(more), e);
    e.flags &= !(TEAM_SEAT | MORE_SEATS);
    match seats[..] {
        [] => {}
        [(team, None)] if u32::try_from(team).is_ok() => {
            e.team = team as u32;
            e.flags |= TEAM_SEAT;
        }
        _ => {
            e.flags |= MORE_SEATS;
            e.team = slot(more.insert(seats));
        }
    }
}

/// Frees the side-table slots an entry holds (memberships, team seats).
pub(super) fn release_slots(
    orgs: Option<&mut Slab<Memberships>>,
    seats: Option<&mut Slab<Seats>>,
    e: &UserEntry,
) {
    if let Some(orgs) = orgs
        && e.flags & MORE_ORGS != 0
    {
        orgs.try_remove(e.orgs[0] as usize);
    }
    if let Some(seats) = seats
        && e.flags & MORE_SEATS != 0
    {
        seats.try_remove(e.team as usize);
    }
}

pub(super) fn inline_orgs(e: &UserEntry) -> impl Iterator<Item = OrgSeat> + '_ {
    let len = if e.flags & MORE_ORGS == 0 { e.len } else { 0 };
    (0..usize::from(len)).map(|i| OrgSeat {
        org: AccountId::from(e.orgs[i]),
        role: e.roles[i],
        expires: e.flags & (EXPIRES << i) != 0,
    })
}

pub(crate) fn live(expires_at: Option<Millis>, now: Millis) -> bool {
    expires_at.is_none_or(|t| t > now)
}
