//! Ordered roles: organization roles and app roles.

use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

/// Organization roles, ordered: `viewer` < `team_contributor` < `contributor` < `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Viewer = 1,
    TeamContributor = 2,
    Contributor = 3,
    Admin = 4,
}

impl OrgRole {
    pub const ALL: [OrgRole; 4] = [
        OrgRole::Viewer,
        OrgRole::TeamContributor,
        OrgRole::Contributor,
        OrgRole::Admin,
    ];

    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Self::Viewer),
            "team_contributor" => Ok(Self::TeamContributor),
            "contributor" => Ok(Self::Contributor),
            "admin" => Ok(Self::Admin),
            _ => Err(Error::new(
                Code::InvalidRole,
                format!("unknown role {raw:?}: use viewer, team_contributor, contributor or admin"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::TeamContributor => "team_contributor",
            Self::Contributor => "contributor",
            Self::Admin => "admin",
        }
    }
    pub fn from_i64(v: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as i64 == v)
    }
    /// How the Algorithmia v1 API shows this role.
    pub fn v1_name(self) -> &'static str {
        if self == Self::Admin {
            "owner"
        } else {
            "member"
        }
    }
}

/// App roles granted to teams, ordered: `read` < `contributor` < `write` < `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppRole {
    Read = 1,
    Contributor = 2,
    Write = 3,
    Admin = 4,
}

impl AppRole {
    pub const ALL: [AppRole; 4] = [
        AppRole::Read,
        AppRole::Contributor,
        AppRole::Write,
        AppRole::Admin,
    ];

    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Self::Read),
            "contributor" => Ok(Self::Contributor),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            _ => Err(Error::new(
                Code::InvalidRole,
                format!("unknown app role {raw:?}: use read, contributor, write or admin"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Contributor => "contributor",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
    pub fn from_i64(v: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as i64 == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ordering_and_parsing() {
        assert!(OrgRole::Viewer < OrgRole::TeamContributor);
        assert!(OrgRole::TeamContributor < OrgRole::Contributor);
        assert!(OrgRole::Contributor < OrgRole::Admin);
        assert!(
            AppRole::Read < AppRole::Contributor
                && AppRole::Contributor < AppRole::Write
                && AppRole::Write < AppRole::Admin
        );
        for r in OrgRole::ALL {
            assert_eq!(OrgRole::parse(r.as_str()), Ok(r));
            assert_eq!(OrgRole::from_i64(r as i64), Some(r));
        }
        for r in AppRole::ALL {
            assert_eq!(AppRole::parse(r.as_str()), Ok(r));
        }
        assert_eq!(
            OrgRole::parse("owner").map_err(|e| e.code),
            Err(Code::InvalidRole)
        );
        assert_eq!(OrgRole::Admin.v1_name(), "owner");
        assert_eq!(OrgRole::Viewer.v1_name(), "member");
    }
}
