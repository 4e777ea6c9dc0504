//! Environment names, as they appear in evidence keys.
//!
//! Deploy and smoke evidence is kept per environment. The default environment
//! (`production`) keeps the plain keys (`infra/<sha>/deployment.json`); any other
//! environment's evidence carries its name in the file name
//! (`infra/<sha>/deployment.canary.json`, `…deployment.canary.attempt-2.json`). So a
//! name must never be mistaken for the attempt suffix or contain the `.` that
//! separates them: `[a-z0-9][a-z0-9_-]{0,31}`, not starting with `attempt-`. The type
//! is `Copy` (a fixed inline buffer) so [`crate::ArtifactRef`] stays `Copy`.

use std::fmt;

/// The environment whose evidence keeps the plain keys (no environment in the name).
pub const DEFAULT_ENV: &str = "production";

/// Longest environment name.
pub const MAX_ENV_LEN: usize = 32;

/// A validated environment name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvName {
    len: u8,
    bytes: [u8; MAX_ENV_LEN],
}

/// A string that cannot name an environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid environment name {0:?}: use 1-32 of a-z, 0-9, `_` and `-`, starting with a letter or digit (and not `attempt-…`)")]
pub struct InvalidEnvName(pub String);

impl EnvName {
    /// Parses and validates `s`.
    pub fn parse(s: &str) -> Result<EnvName, InvalidEnvName> {
        let bad = || InvalidEnvName(s.chars().take(64).collect());
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_ENV_LEN || s.starts_with("attempt-") {
            return Err(bad());
        }
        let mut bytes = [0u8; MAX_ENV_LEN];
        bytes[..b.len()].copy_from_slice(b);
        let len = u8::try_from(b.len()).map_err(|_too_long| bad())?;
        Ok(EnvName { len, bytes })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether this is the default environment (plain keys).
    pub fn is_default(&self) -> bool {
        self.as_str() == DEFAULT_ENV
    }

    /// The key qualifier for this environment: `None` for the default one.
    pub fn qualifier(self) -> Option<EnvName> {
        (!self.is_default()).then_some(self)
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvName({})", self.as_str())
    }
}

impl std::str::FromStr for EnvName {
    type Err = InvalidEnvName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EnvName::parse(s)
    }
}

impl serde::Serialize for EnvName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EnvName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EnvName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["production", "canary", "eu-west_1", "a", &"x".repeat(32)] {
            assert_eq!(EnvName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Prod",
            "a.b",
            "-x",
            "attempt-2",
            "a/b",
            &"x".repeat(33),
            "ü",
        ] {
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EnvName::parse("production").unwrap().qualifier().is_none());
        assert_eq!(
            EnvName::parse("canary")
                .unwrap()
                .qualifier()
                .unwrap()
                .as_str(),
            "canary"
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let canary: EnvName = serde_json::from_str("\"canary\"").unwrap();
        assert_eq!(serde_json::to_string(&canary).unwrap(), "\"canary\"");
        for bad in ["\"a.b\"", "\"attempt-2\"", "\"\"", "7"] {
            assert!(serde_json::from_str::<EnvName>(bad).is_err(), "{bad}");
        }
    }
}
