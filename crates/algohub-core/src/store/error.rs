//! What a store call can fail with: not found, a conflict naming its
//! `Constraint`, or a failure of the database; and which database it is.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict on {constraint}")]
    Conflict { constraint: Constraint },
    #[error("store failure: {0}")]
    Other(String),
}

macro_rules! constraints {
    ($( $(#[$doc:meta])* $name:ident = $text:literal ),* $(,)?) => {
        /// What a refused write clashed with: a unique constraint (named once,
        /// where the store meets the database) or a rule the store checks in
        /// the write's transaction. Services map it to a domain error.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Constraint {
            $( $(#[$doc])* $name, )*
            /// The user is the only admin of this organization.
            LastAdminOf { org: String },
            /// An app transfer: these algorithm names are taken in the new owner.
            AlgorithmNamesTaken { names: Vec<String> },
            /// A constraint no row of this table names (a schema change
            /// without its row: add one).
            Other(String),
        }

        impl Constraint {
            /// Every named constraint (not the ones with data).
            pub const NAMED: &'static [Constraint] = &[ $( Constraint::$name ),* ];

            /// The stable name (in messages and logs).
            pub fn name(&self) -> &str {
                match self {
                    $( Constraint::$name => $text, )*
                    Constraint::LastAdminOf { .. } => "last_admin_of",
                    Constraint::AlgorithmNamesTaken { .. } => "algorithm_names_taken",
                    Constraint::Other(raw) => raw,
                }
            }
        }
    };
}

constraints! {
    AccountName = "account_name",
    AccountUuid = "account_uuid",
    UserEmail = "user_email",
    OrgTypeName = "org_type_name",
    OrgTypeId = "org_type_id",
    /// An org type still used by an organization.
    OrgTypeInUse = "org_type_in_use",
    Membership = "membership",
    /// The user belongs to the most organizations the cluster allows.
    OrgLimit = "org_limit",
    /// The change would leave an organization without an admin.
    LastAdmin = "last_admin",
    /// The change would leave the cluster without an admin.
    LastClusterAdmin = "last_cluster_admin",
    InvitationId = "invitation_id",
    InvitationToken = "invitation_token",
    /// The invitation was accepted, declined, rescinded or expired.
    InvitationClosed = "invitation_closed",
    InvitationExpired = "invitation_expired",
    /// The invitee already has a pending invitation to the organization.
    PendingInvitation = "pending_invitation",
    InviteCode = "invite_code",
    AppUuid = "app_uuid",
    AppName = "app_name",
    AppPin = "app_pin",
    /// The app changed owner while the write was being prepared.
    AppMoved = "app_moved",
    /// The algorithm's app belongs to another account.
    AppOwner = "app_owner",
    AlgorithmName = "algorithm_name",
    VersionExists = "version_exists",
    /// The build was already published, or there is no new build.
    NoNewBuild = "no_new_build",
    /// The version is no longer pending approval.
    NotPending = "not_pending",
    TeamUuid = "team_uuid",
    TeamName = "team_name",
    TeamMember = "team_member",
    TeamApp = "team_app",
    KeyUuid = "key_uuid",
    KeyDigest = "key_digest",
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constraint::LastAdminOf { org } => write!(f, "last_admin of {org}"),
            Constraint::AlgorithmNamesTaken { names } => {
                write!(f, "algorithm names taken: {}", names.join(", "))
            }
            other => f.write_str(other.name()),
        }
    }
}

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or memory): one node.
    Sqlite,
    /// PostgreSQL: nodes may share it.
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// A conflict on `constraint`.
    pub fn conflict(constraint: Constraint) -> Self {
        StoreError::Conflict { constraint }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
