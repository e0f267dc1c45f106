//! Secrets: API keys, invitation tokens and passwords.
//!
//! API keys and invitation tokens are long random strings (about 149 bits), so a
//! SHA-256 digest is a safe way to store them and lets authentication look a key up
//! by its digest in the in-memory index. Passwords are low-entropy, so they use
//! argon2id. `Debug` never prints a secret.

use crate::error::{Code, Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::{Digest, Sha256};

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_alphanumeric(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

/// SHA-256 of a secret, hex encoded: what the store keeps.
pub fn digest_hex(secret: &str) -> String {
    // Through a buffer: `hex::encode` pushes one char at a time, and this
    // runs on every authenticated request.
    let mut out = [0u8; 64];
    if hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut out).is_err() {
        unreachable!("32 bytes fill 64 hex digits")
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A freshly issued API key: `sim` followed by 25 alphanumerics (28 characters),
/// the form the Algorithmia CLI accepts.
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub fn generate() -> Self {
        Self(format!("sim{}", random_alphanumeric(25)))
    }
    /// Checks the shape of a presented key (cheap rejection before a lookup).
    pub fn looks_valid(raw: &str) -> bool {
        raw.len() == 28 && raw.starts_with("sim") && raw.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn digest(&self) -> String {
        digest_hex(&self.0)
    }
    /// What listings show instead of the key: the first 3 and last 4 characters.
    pub fn mask(&self) -> String {
        mask(&self.0)
    }
}

pub fn mask(secret: &str) -> String {
    let n = secret.len();
    if n <= 8 {
        return "*".repeat(n);
    }
    format!("{}{}{}", &secret[..3], "*".repeat(n - 7), &secret[n - 4..])
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({})", self.mask())
    }
}

/// A session token: `ahs_` followed by 40 alphanumerics (about 238 bits),
/// shown once, stored as a digest. Sent as `Authorization: Bearer <token>`.
pub struct SessionSecret(String);

impl SessionSecret {
    pub fn generate() -> Self {
        Self(format!("ahs_{}", random_alphanumeric(40)))
    }
    /// Checks the shape of a presented token (cheap rejection before a lookup).
    pub fn looks_valid(raw: &str) -> bool {
        raw.len() == 44
            && raw.starts_with("ahs_")
            && raw[4..].bytes().all(|b| b.is_ascii_alphanumeric())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn digest(&self) -> String {
        digest_hex(&self.0)
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionSecret({})", mask(&self.0))
    }
}

/// A single-use invitation token (shown once, stored as a digest).
pub struct InviteToken(String);

impl InviteToken {
    pub fn generate() -> Self {
        Self(format!("inv_{}", random_alphanumeric(32)))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn digest(&self) -> String {
        digest_hex(&self.0)
    }
}

impl std::fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteToken(***)")
    }
}

/// Signs and checks call tokens: `ahc1.<claims, hex>.<HMAC-SHA256 of the
/// claims, hex>`. The key is a cluster secret (every node has the same one),
/// so a token minted by one node is accepted by all; nothing is stored per
/// token. Tokens are short-lived (a call's deadline), so none is revoked.
pub struct CallTokenKey(Vec<u8>);

const CALL_TOKEN_PREFIX: &str = "ahc1.";

impl CallTokenKey {
    /// The name of the cluster secret the key comes from.
    pub const SECRET_NAME: &'static str = "call_token";

    /// A fresh secret for a cluster that has none yet (about 285 bits).
    pub fn generate_secret() -> String {
        random_alphanumeric(48)
    }
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }
    /// Whether a presented credential is meant to be a call token.
    pub fn looks_like(raw: &str) -> bool {
        raw.starts_with(CALL_TOKEN_PREFIX)
    }
    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
    /// A token carrying `claims`.
    pub fn sign(&self, claims: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(claims);
        let tag = mac.finalize().into_bytes();
        format!(
            "{CALL_TOKEN_PREFIX}{}.{}",
            hex::encode(claims),
            hex::encode(tag)
        )
    }
    /// The claims of a token this key signed; `None` for anything else.
    pub fn open(&self, token: &str) -> Option<Vec<u8>> {
        let (claims, tag) = token.strip_prefix(CALL_TOKEN_PREFIX)?.split_once('.')?;
        let claims = hex::decode(claims).ok()?;
        let tag = hex::decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(&claims);
        // Constant-time comparison.
        mac.verify_slice(&tag).ok()?;
        Some(claims)
    }
}

impl std::fmt::Debug for CallTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallTokenKey(***)")
    }
}

/// Hash a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    if password.len() < 8 {
        return Err(Error::new(
            Code::InvalidInput,
            "password must be at least 8 characters",
        ));
    }
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Check a password against a stored argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_client_shape() {
        let k = ApiKeySecret::generate();
        assert_eq!(k.expose().len(), 28);
        assert!(ApiKeySecret::looks_valid(k.expose()));
        assert_ne!(k.expose(), ApiKeySecret::generate().expose());
        assert_eq!(k.digest().len(), 64);
        assert!(!format!("{k:?}").contains(k.expose()));
        assert!(k.mask().starts_with("sim") && k.mask().contains('*'));
        assert!(!ApiKeySecret::looks_valid("simABC"));
        assert!(!ApiKeySecret::looks_valid("xyz0123456789012345678901234"));
    }

    #[test]
    fn call_tokens_open_only_with_their_key_and_intact() {
        let key = CallTokenKey::new(&CallTokenKey::generate_secret());
        let t = key.sign(b"{\"a\":1}");
        assert!(CallTokenKey::looks_like(&t));
        assert_eq!(key.open(&t).as_deref(), Some(&b"{\"a\":1}"[..]));
        let other = CallTokenKey::new(&CallTokenKey::generate_secret());
        assert_eq!(other.open(&t), None, "another cluster's key");
        // Changed claims (same tag), a changed tag, a cut token: refused.
        let (head, tag) = t.rsplit_once('.').unwrap();
        let forged = format!(
            "{}.{tag}",
            key.sign(b"{\"a\":2}").rsplit_once('.').unwrap().0
        );
        assert_eq!(key.open(&forged), None);
        let flipped = if tag.starts_with('0') { "1" } else { "0" };
        assert_eq!(key.open(&format!("{head}.{flipped}{}", &tag[1..])), None);
        assert_eq!(key.open(head), None);
        assert_eq!(key.open("ahc1.zz.zz"), None);
        assert_eq!(format!("{key:?}"), "CallTokenKey(***)");
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(hash_password("short").is_err());
    }
}
