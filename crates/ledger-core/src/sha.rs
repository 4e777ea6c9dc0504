//! The git commit SHA every artifact is keyed by.
//!
//! A SHA becomes part of object-store keys, so it is validated once, here, into a
//! newtype: 40 lowercase hex digits and nothing else. Nothing that has not passed
//! through [`GitSha::parse`] can name a key, which is what rules out path traversal.

use std::fmt;
use std::str::FromStr;

/// A full, lowercase, 40-hex-digit git commit SHA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitSha([u8; 40]);

/// Why a string is not a [`GitSha`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed git SHA {shown:?}: {why}; give the full 40-character lowercase hex commit id (e.g. from `git rev-parse HEAD`)")]
pub struct ShaError {
    shown: String,
    why: &'static str,
}

impl GitSha {
    /// Parses a full lowercase commit SHA.
    pub fn parse(s: &str) -> Result<Self, ShaError> {
        let err = |why| ShaError {
            shown: s.chars().take(80).collect(),
            why,
        };
        if s.len() != 40 {
            return Err(err("it must be exactly 40 characters"));
        }
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("it must be lowercase"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("it must contain only hex digits 0-9a-f"));
        }
        let mut bytes = [0u8; 40];
        bytes.copy_from_slice(s.as_bytes());
        Ok(GitSha(bytes))
    }

    /// The SHA as a string slice.
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first 12 characters, for people.
    pub fn short(&self) -> &str {
        &self.as_str()[..12]
    }
}

impl FromStr for GitSha {
    type Err = ShaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GitSha::parse(s)
    }
}

impl fmt::Display for GitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for GitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitSha({})", self.as_str())
    }
}

impl serde::Serialize for GitSha {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for GitSha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GitSha::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn accepts_full_lowercase_hex() {
        assert_eq!(GitSha::parse(GOOD).unwrap().as_str(), GOOD);
        assert_eq!(GitSha::parse(GOOD).unwrap().short(), "0123456789ab");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "abc",
            &GOOD[..39],
            &format!("{GOOD}0"),
            &GOOD.to_uppercase(),
            "0123456789abcdef0123456789abcdef0123456g",
            "../../../../../../../../../../etc/passwd",
            "0123456789abcdef0123456789abcdef012345/7",
            "é123456789abcdef0123456789abcdef0123456",
        ] {
            let e = GitSha::parse(bad).unwrap_err().to_string();
            assert!(e.contains("malformed git SHA"), "{bad}: {e}");
        }
    }

    #[test]
    fn error_says_why() {
        assert!(GitSha::parse(&GOOD.to_uppercase())
            .unwrap_err()
            .to_string()
            .contains("lowercase"));
        assert!(GitSha::parse("abc").unwrap_err().to_string().contains("40"));
    }
}
