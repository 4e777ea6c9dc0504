//! The one strict JSON reader for everything `ledger` reads and did not just write:
//! envelopes, statements and their predicates, signed documents, log entries, roots,
//! policies, leases.
//!
//! serde_json alone takes the last of two members with one name, and only where a
//! typed struct does not catch it; Python's `json` takes the last too, other parsers
//! the first. A document that two readers see differently is exactly what evidence
//! must not be, so [`from_slice`] refuses, before any typing:
//!
//! * a UTF-8 byte order mark (some readers skip it, others refuse it);
//! * an object member whose name appeared before in the same object, at any depth,
//!   named by its JSON pointer (RFC 6901, e.g. `/predicate/result`);
//! * anything after the document but whitespace.
//!
//! The duplicate check walks serde_json's own deserializer (so its recursion limit
//! holds) and keeps only each open object's member names: no `serde_json::Value` is
//! built. The typed reading then runs on the same bytes.

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// The UTF-8 encoding of U+FEFF, the byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why bytes are not a strict JSON document of the wanted type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("starts with a UTF-8 byte order mark: JSON here is UTF-8 without one (remove the first 3 bytes)")]
    Bom,
    #[error("member {pointer} appears twice in one object: each name may appear once, since readers disagree on which copy counts (line {line}, column {column})")]
    Duplicate {
        pointer: String,
        line: usize,
        column: usize,
    },
    #[error("{0}")]
    Syntax(String),
}

/// Reads `bytes` as one strict JSON document (see the module docs), then as a `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    check(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// Checks that `bytes` are one strict JSON document, without typing it.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    if bytes.starts_with(BOM) {
        return Err(JsonError::Bom);
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walked = Node {
        path: &Path::Root,
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (walked, found.into_inner()) {
        (Ok(()), _) => Ok(()),
        (Err(e), Some(pointer)) => Err(JsonError::Duplicate {
            pointer,
            line: e.line(),
            column: e.column(),
        }),
        (Err(e), None) => Err(JsonError::Syntax(e.to_string())),
    }
}

/// Where a value sits in the document, as a chain up to the root: rendered as a JSON
/// pointer only when a duplicate is found.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Member(parent, name) => {
                // RFC 6901: `~` is written `~0` and `/` is written `~1`.
                let escaped = name.replace('~', "~0").replace('/', "~1");
                format!("{}/{escaped}", parent.pointer())
            }
            Path::Index(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

/// One value to walk; records the pointer of the first duplicate in `found`.
#[derive(Clone, Copy)]
struct Node<'a> {
    path: &'a Path<'a>,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Node {
                path: &Path::Index(self.path, i),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names: HashSet<String> = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            let path = Path::Member(self.path, &name);
            if names.contains(&name) {
                let pointer = path.pointer();
                let message = format!("duplicate member {pointer}");
                *self.found.borrow_mut() = Some(pointer);
                return Err(de::Error::custom(message));
            }
            map.next_value_seed(Node {
                path: &path,
                found: self.found,
            })?;
            names.insert(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn duplicate(text: &str) -> Option<String> {
        match check(text.as_bytes()) {
            Err(JsonError::Duplicate { pointer, .. }) => Some(pointer),
            _ => None,
        }
    }

    #[test]
    fn duplicates_are_named_at_any_depth() {
        assert_eq!(duplicate(r#"{"a":1,"a":2}"#).as_deref(), Some("/a"));
        assert_eq!(
            duplicate(r#"{"predicate":{"result":"fail","result":"pass"}}"#).as_deref(),
            Some("/predicate/result")
        );
        assert_eq!(
            duplicate(r#"{"subject":[{"d":{}},{"d":{"g":"1","g":"2"}}]}"#).as_deref(),
            Some("/subject/1/d/g")
        );
        assert_eq!(
            duplicate(r#"{"a/b":{"m~n":0,"m~n":1}}"#).as_deref(),
            Some("/a~1b/m~0n")
        );
        // Escapes are decoded before names are compared.
        assert_eq!(duplicate(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("/a"));
        // The same name in sibling objects is fine.
        assert!(check(br#"{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}"#).is_ok());
    }

    #[test]
    fn bom_trailing_bytes_and_depth_are_refused() {
        assert_eq!(check(b"\xEF\xBB\xBF{}"), Err(JsonError::Bom));
        assert!(check(b"{} {}").is_err());
        assert!(check(b"{}x").is_err());
        assert!(check(b"{} \n").is_ok());
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(matches!(check(deep.as_bytes()), Err(JsonError::Syntax(_))));
        let fine = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(check(fine.as_bytes()).is_ok());
    }

    /// The fuzz target's committed inputs, each named for its verdict: `ok-` reads,
    /// `dup-` is refused for a duplicate member, `bad-` for anything else.
    #[test]
    fn the_committed_fuzz_inputs_get_the_verdicts_their_names_say() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/json");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let got = check(&std::fs::read(&path).unwrap());
            match name.split('-').next() {
                Some("ok") => assert_eq!(got, Ok(()), "{name}"),
                Some("dup") => assert!(matches!(got, Err(JsonError::Duplicate { .. })), "{name}"),
                _ => assert!(
                    matches!(got, Err(JsonError::Bom | JsonError::Syntax(_))),
                    "{name}: {got:?}"
                ),
            }
            seen += 1;
        }
        assert!(seen >= 8);
    }

    #[test]
    fn typed_reading_follows_the_check() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct T {
            a: u8,
        }
        assert_eq!(from_slice::<T>(br#"{"a":1}"#), Ok(T { a: 1 }));
        assert!(matches!(
            from_slice::<T>(br#"{"a":1,"a":1}"#),
            Err(JsonError::Duplicate { .. })
        ));
        assert!(matches!(
            from_slice::<T>(br#"{"a":300}"#),
            Err(JsonError::Syntax(_))
        ));
    }
}
