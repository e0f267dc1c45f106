//! Parse, don't validate: names and emails are checked once at the edge.
//!
//! Account names (users and organizations share one namespace) follow
//! `[a-z0-9][a-z0-9_-]{1,38}`; input is accepted in any case and stored lowercased,
//! so comparisons are case-insensitive by construction.

use crate::error::{Code, Error, Result};
use serde::Serialize;

/// A valid account name (user or organization), lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(raw: &str) -> Result<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        let bytes = lower.as_bytes();
        let ok_len = (2..=39).contains(&bytes.len());
        let ok_first = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_rest = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if ok_len && ok_first && ok_rest {
            Ok(Self(lower))
        } else {
            Err(Error::new(
                Code::InvalidName,
                format!(
                    "invalid name {raw:?}: use 2 to 39 characters, letters, digits, '_' or '-', starting with a letter or digit"
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for AccountName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource name inside an account (apps, teams): same alphabet as account names,
/// 1 to 64 characters, stored as given but unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ResourceName(String);

impl ResourceName {
    pub fn parse(raw: &str) -> Result<Self> {
        let s = raw.trim();
        let b = s.as_bytes();
        let ok = (1..=64).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-' || *c == b'.');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(Error::new(
                Code::InvalidName,
                format!(
                    "invalid name {raw:?}: use 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit"
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn lower(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A syntactically valid email address, stored lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let s = raw.trim().to_ascii_lowercase();
        let valid = s.len() <= 100
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(s))
        } else {
            Err(Error::new(
                Code::InvalidEmail,
                format!("invalid email address {raw:?}"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks an identifier of the v1 clients' shape: 1 to `max` ASCII letters,
/// digits or `_`, starting with a letter (algorithm and collection names).
pub fn check_identifier(name: &str, max: usize, what: &str) -> crate::error::Result<()> {
    let b = name.as_bytes();
    let ok = (1..=max).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::new(
            crate::error::Code::InvalidName,
            format!(
                "invalid {what} name {name:?}: use 1 to {max} letters, digits or '_', starting with a letter"
            ),
        ))
    }
}

/// One spelling per name: text as Unicode's composed form (NFC), so `é`
/// typed as one character or as `e` and a combining accent is one name.
pub fn one_spelling(raw: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::{UnicodeNormalization, is_nfc};
    if is_nfc(raw) {
        std::borrow::Cow::Borrowed(raw)
    } else {
        std::borrow::Cow::Owned(raw.nfc().collect())
    }
}

/// Characters that reorder how the text around them is displayed (so a
/// name could display as another).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert_eq!(
            AccountName::parse("Alice").map(|n| n.into_string()),
            Ok("alice".into())
        );
        for good in ["ab", "a_b", "a-b", "0rg", &"x".repeat(39)] {
            assert!(AccountName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "_ab",
            "-ab",
            "a b",
            "a/b",
            "ä1",
            &"x".repeat(40),
            "a.b",
        ] {
            assert_eq!(
                AccountName::parse(bad).map_err(|e| e.code),
                Err(Code::InvalidName),
                "{bad}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" A@Example.com ").map(|e| e.0),
            Ok("a@example.com".into())
        );
        for bad in ["", "a", "a@b", "@b.c", "a@@b.c", "a b@c.d", "a@.c", "a@c."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_names() {
        assert!(ResourceName::parse("My-App.v2").is_ok());
        assert!(ResourceName::parse("").is_err());
        assert!(ResourceName::parse(".hidden").is_err());
        assert!(ResourceName::parse("a/b").is_err());
    }
}
