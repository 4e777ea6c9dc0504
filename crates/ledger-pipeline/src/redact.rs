//! Keeping secret environment values out of everything `ledger` stores or prints.
//!
//! A variable is secret when it is named with `--redact-env`, or its name contains
//! TOKEN, SECRET, PASSWORD or KEY (any case). Every occurrence of a secret value (and,
//! for multi-line values such as PEM keys, of each of its longer lines) is replaced by
//! `***`. Values shorter than [`MIN_SECRET_LEN`] are not searched for: replacing every
//! `1` in a log would destroy it while protecting nothing.

use std::collections::BTreeMap;

/// The marker that replaces a secret.
pub const MASK: &str = "***";

/// Shorter values are not redacted (see the module comment).
pub const MIN_SECRET_LEN: usize = 4;

const SECRET_NAME_PARTS: [&str; 4] = ["TOKEN", "SECRET", "PASSWORD", "KEY"];

/// Replaces secret values with [`MASK`].
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Needles, longest first so that a value containing another is masked whole.
    needles: Vec<String>,
    names: Vec<String>,
}

impl Redactor {
    /// A redactor for the secrets among `env`, plus the variables named in `extra`.
    pub fn from_env(env: &BTreeMap<String, String>, extra: &[String]) -> Self {
        let mut names = Vec::new();
        let mut needles = Vec::new();
        for (name, value) in env {
            let upper = name.to_ascii_uppercase();
            let secret = extra.iter().any(|e| e == name)
                || SECRET_NAME_PARTS.iter().any(|p| upper.contains(p));
            if !secret || value.is_empty() {
                continue;
            }
            names.push(name.clone());
            if value.len() >= MIN_SECRET_LEN {
                needles.push(value.clone());
            }
            if value.contains('\n') {
                needles.extend(
                    value
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 8)
                        .map(str::to_owned),
                );
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles, names }
    }

    /// Also masks `text`, a secret held in no variable (the signing key's PEM): the
    /// whole text, each of its lines of 8 characters or more apart from `-----`
    /// armour lines, and those lines joined into one (a PEM body printed unwrapped).
    #[must_use]
    pub fn with_secret_text(mut self, text: &str) -> Self {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
            .collect();
        let trimmed = text.trim();
        if trimmed.len() >= MIN_SECRET_LEN {
            self.needles.push(trimmed.to_owned());
        }
        self.needles.push(lines.concat());
        self.needles.extend(lines.iter().map(|l| (*l).to_owned()));
        self.needles.retain(|n| n.len() >= MIN_SECRET_LEN);
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        self.needles.dedup();
        self
    }

    /// Names of the variables treated as secret (recorded; values never are).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `text` with every secret value masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }

    /// Like [`Redactor::redact`] for bytes that may not be UTF-8.
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return bytes.to_vec();
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => self.redact(s).into_bytes(),
            Err(_) => {
                let mut out = bytes.to_vec();
                for n in &self.needles {
                    out = replace_bytes(&out, n.as_bytes(), MASK.as_bytes());
                }
                out
            }
        }
    }
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn masks_secret_names_and_explicit_ones() {
        let r = Redactor::from_env(
            &env(&[
                ("API_TOKEN", "tok-123456"),
                ("DB_PASSWORD", "hunter22"),
                ("PLAIN", "visible-value"),
                ("CUSTOM", "custom-secret"),
            ]),
            &["CUSTOM".to_string()],
        );
        let out = r.redact("a tok-123456 b hunter22 c visible-value d custom-secret");
        assert_eq!(out, "a *** b *** c visible-value d ***");
        assert_eq!(r.names(), &["API_TOKEN", "CUSTOM", "DB_PASSWORD"]);
    }

    #[test]
    fn masks_each_line_of_a_pem() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPVcr03LOITJSK3G\n-----END PRIVATE KEY-----\n";
        let r = Redactor::from_env(&env(&[("LEDGER_SIGNING_KEY", pem)]), &[]);
        let out = r.redact("printed: MC4CAQAwBQYDK2VwBCIEIPVcr03LOITJSK3G");
        assert!(!out.contains("MC4CAQ"), "{out}");
    }

    #[test]
    fn masks_a_key_held_in_no_variable_wrapped_or_joined() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIE\nIPVcr03LOITJSK3GabcdefXY\n-----END PRIVATE KEY-----\n";
        let r = Redactor::default().with_secret_text(pem);
        let out = r.redact(&format!(
            "a {pem} b MC4CAQAwBQYDK2VwBCIEIPVcr03LOITJSK3GabcdefXY c IPVcr03LOITJSK3GabcdefXY"
        ));
        assert!(!out.contains("MC4CAQ") && !out.contains("IPVcr03"), "{out}");
        assert!(r.names().is_empty());
        assert_eq!(
            r.redact("-----BEGIN PRIVATE KEY-----"),
            "-----BEGIN PRIVATE KEY-----"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        let r = Redactor::from_env(&env(&[("X_TOKEN", "abcd1234")]), &[]);
        let out = r.redact_bytes(b"\xff abcd1234 \xfe");
        assert_eq!(out, b"\xff *** \xfe");
    }

    #[test]
    fn short_values_are_left_alone() {
        let r = Redactor::from_env(&env(&[("KEY", "1")]), &[]);
        assert_eq!(r.redact("1 2 3"), "1 2 3");
        assert_eq!(r.names(), &["KEY"]);
    }
}
