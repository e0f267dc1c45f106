//! Algorithms, their content-addressed artifacts, builds and versions, and
//! the record of failed calls.

use super::{AccountId, AppId, Millis};
use serde::{Deserialize, Serialize};

pub type AlgoId = i64;

/// Who may call a published version (`algorithm_callability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Callability {
    /// Anyone with an API key.
    Public,
    /// The owner, and the owning organization's members.
    Private,
}

impl Callability {
    pub fn as_str(self) -> &'static str {
        match self {
            Callability::Public => "public",
            Callability::Private => "private",
        }
    }

    /// `public` or `private`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "public" => Some(Callability::Public),
            "private" => Some(Callability::Private),
            _ => None,
        }
    }
}

/// Where an algorithm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    Wasm,
    Http,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Http => "http",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "http" { Self::Http } else { Self::Wasm }
    }
}

/// Who may read a version's source (`source_visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceVisibility {
    Open,
    Closed,
}

/// An algorithm's license (`license`; closed source needs `apl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum License {
    Apl,
    Apache2,
    Gpl3,
    Mit,
}

/// Whether an algorithm may reach the network (`network_access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkAccess {
    Isolated,
    Full,
}

/// What an algorithm runs on (`environment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Cpu,
    Gpu,
}

/// An algorithm's settings: the v1 `settings` object, typed. Every key is
/// optional (absent keys are not sent); the service checks a change key by
/// key (`check_settings`) before it becomes one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlgorithmSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_callability: Option<Callability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_visibility: Option<SourceVisibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_access: Option<NetworkAccess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_enabled: Option<bool>,
    /// What each call pays the owner (not in sudo calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub royalty_microcredits: Option<i64>,
    /// Caps the timeout of this algorithm's calls (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_secs: Option<u64>,
    /// Caps the wasm fuel of this algorithm's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fuel_per_call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_environment: Option<String>,
}

impl AlgorithmSettings {
    /// Whether the settings open the source to the algorithm's readers.
    pub fn source_is_open(&self) -> bool {
        self.source_visibility == Some(SourceVisibility::Open)
    }
}

/// An algorithm: details are kept as the v1 JSON object (validated by the
/// service), so they round-trip exactly; settings are typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Algorithm {
    pub id: AlgoId,
    pub uuid: String,
    pub owner_id: AccountId,
    pub owner_name: String,
    pub name: String,
    pub app_id: Option<AppId>,
    pub details: serde_json::Value,
    pub settings: AlgorithmSettings,
    pub runtime: RuntimeKind,
    /// The artifact the next compile builds from.
    pub artifact_digest: String,
    pub created_by: AccountId,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewAlgorithm {
    pub uuid: String,
    pub owner_id: AccountId,
    pub name: String,
    pub app_id: Option<AppId>,
    pub details: serde_json::Value,
    pub settings: AlgorithmSettings,
    pub runtime: RuntimeKind,
    pub artifact_digest: String,
    pub created_by: AccountId,
}

/// Content-addressed artifact: a wasm module or an http upstream definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub digest: String,
    pub kind: RuntimeKind,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    pub id: i64,
    pub uuid: String,
    pub algorithm_id: AlgoId,
    /// 40 hex characters of the artifact digest: the version hash.
    pub commit_sha: String,
    pub artifact_digest: String,
    pub status: String,
    pub logs: String,
    pub created_by: AccountId,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// The semantic version published from this build, if any.
    pub semantic_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SemVer {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
}

impl std::fmt::Display for SemVer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    Published,
    Pending,
    Rejected,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Pending => "pending",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "published" => Self::Published,
            "pending" => Self::Pending,
            _ => Self::Rejected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub id: i64,
    pub uuid: String,
    pub algorithm_id: AlgoId,
    pub build_id: i64,
    pub build_uuid: String,
    pub semver: SemVer,
    pub git_hash: String,
    pub artifact_digest: String,
    pub callability: Callability,
    pub status: VersionStatus,
    pub release_notes: String,
    pub sample_input: Option<String>,
    pub sample_output: Option<String>,
    pub settings: AlgorithmSettings,
    pub published_by: AccountId,
    pub created_at: Millis,
    pub decided_by: Option<AccountId>,
    pub decided_at: Option<Millis>,
    pub decision_reason: Option<String>,
    /// The artifact digest an approval was given for.
    pub approved_digest: Option<String>,
}

/// A version to publish. Its status is not chosen here: the store decides it
/// from the algorithm's owner as its transaction sees it (`create_version`).
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub uuid: String,
    pub algorithm_id: AlgoId,
    pub build_id: i64,
    pub semver: SemVer,
    pub callability: Callability,
    pub release_notes: String,
    pub sample_input: Option<String>,
    pub sample_output: Option<String>,
    pub settings: AlgorithmSettings,
    pub published_by: AccountId,
}

/// One failed call, for the owner's error listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlgorithmError {
    pub algorithm_id: AlgoId,
    pub created_at: Millis,
    pub request_id: String,
    pub caller_id: AccountId,
    /// The caller's account name (filled in when listing).
    pub caller_name: String,
    /// The algorithm's owner and name (filled in when listing).
    pub owner_name: String,
    pub algorithm_name: String,
    pub version: String,
    /// The start of the input (text and JSON only).
    pub input: String,
    pub error: String,
    pub error_type: String,
}

/// Whose failed calls an error listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorScope {
    /// One algorithm's.
    Algorithm(AlgoId),
    /// Every algorithm an account owns.
    Owner(AccountId),
}
