//! Just enough Rust lexing for tidy: blank out comments and literals, find test modules.
//!
//! The checks read rustfmt-formatted source as text; this keeps a `crate::` inside a
//! doc comment or a `{` inside a string from confusing them. Line numbers survive:
//! every blanked character becomes a space and newlines are kept.

/// `text` with comments and the contents of string and char literals blanked.
pub fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied();
        if c[i] == '/' && at(i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == Some('*') {
            i = block_comment(&c, i, &mut out);
        } else if c[i] == '"' {
            i = quoted(&c, i, 0, &mut out);
        } else if let Some(hashes) = raw_string_start(&c, i) {
            out.push('r');
            i = quoted(&c, i + 1 + hashes, hashes, &mut out);
        } else if c[i] == '\'' && at(i + 1) == Some('\\') {
            // An escaped char literal: blank up to its closing quote.
            out.push('\'');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    blank(c[i], &mut out);
                    i += 1;
                }
                if let Some(&ch) = c.get(i) {
                    blank(ch, &mut out);
                    i += 1;
                }
            }
            if i < c.len() {
                out.push('\'');
                i += 1;
            }
        } else if c[i] == '\'' && at(i + 2) == Some('\'') {
            out.push_str("' '");
            i += 3;
        } else {
            // Everything else, lifetimes included, is kept.
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn blank(ch: char, out: &mut String) {
    out.push(if ch == '\n' { '\n' } else { ' ' });
}

/// Blanks a (nested) block comment starting at `i`; returns the index after it.
fn block_comment(c: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            out.push_str("  ");
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            out.push_str("  ");
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            blank(c[i], out);
            i += 1;
        }
    }
    i
}

/// `Some(number of #)` when a raw string (`r"`, `r#"`, `br"`) starts at `i`.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let ident = |k: usize| c[k].is_alphanumeric() || c[k] == '_';
    let free = i == 0 || !ident(i - 1) || (c[i - 1] == 'b' && (i < 2 || !ident(i - 2)));
    if c[i] != 'r' || !free {
        return None;
    }
    let mut j = i + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j - i - 1)
}

/// Copies the `#`s and quotes of a string starting at `i` (at its first `#` or
/// `"`), blanking its contents; returns the index after it.
fn quoted(c: &[char], mut i: usize, hashes: usize, out: &mut String) -> usize {
    let fence: String = "#".repeat(hashes);
    out.push_str(&fence);
    out.push('"');
    i += hashes + 1;
    while i < c.len() {
        if c[i] == '\\' && hashes == 0 {
            blank(c[i], out);
            if let Some(&next) = c.get(i + 1) {
                blank(next, out);
            }
            i += 2;
        } else if c[i] == '"' && (0..hashes).all(|k| c.get(i + 1 + k) == Some(&'#')) {
            out.push('"');
            out.push_str(&fence);
            return i + 1 + hashes;
        } else {
            blank(c[i], out);
            i += 1;
        }
    }
    i
}

/// For each line of `stripped` (0-based), whether it lies in a `#[cfg(test)]` module.
pub fn test_lines(stripped: &str) -> Vec<bool> {
    let b = stripped.as_bytes();
    let mut lines = vec![false; stripped.lines().count() + 1];
    let mut from = 0;
    while let Some(found) = stripped[from..].find("#[cfg(test)]") {
        let start = from + found;
        from = start + 1;
        // The item after the attribute (and any further attributes) must be a
        // `mod name {`: then everything to its matching brace is test code.
        let rest = &stripped[start + "#[cfg(test)]".len()..];
        let Some(brace) = rest.find(['{', ';']) else {
            break;
        };
        let head = &rest[..brace];
        let is_mod = head.split_whitespace().any(|w| w == "mod") && rest[brace..].starts_with('{');
        if !is_mod {
            continue;
        }
        let open = start + "#[cfg(test)]".len() + brace;
        let mut depth = 0;
        let mut end = b.len();
        for (k, &ch) in b.iter().enumerate().skip(open) {
            match ch {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = line_of(stripped, start);
        let last = line_of(stripped, end);
        for flag in &mut lines[first..=last] {
            *flag = true;
        }
        from = end.max(from);
    }
    lines
}

/// The 0-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_comments_and_literals_but_keeps_lines() {
        let src = "use crate::a; // crate::b\n/* crate::c\n */ let s = \"crate::d {\";\nlet c = '{'; let r = r#\"crate::e\"#; fn f<'a>() {}\n";
        let out = strip(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(out.contains("use crate::a;"));
        for hidden in ["crate::b", "crate::c", "crate::d", "crate::e", "'{'"] {
            assert!(!out.contains(hidden), "{hidden} in {out}");
        }
        assert!(out.contains("fn f<'a>() {}"));
    }

    #[test]
    fn escaped_quotes_and_chars() {
        let out = strip("let a = \"x\\\"{\"; let b = '\\''; let c = b'{'; ok");
        assert!(!out.contains('{'), "{out}");
        assert!(out.ends_with("ok"));
    }

    #[test]
    fn finds_test_modules() {
        let src = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {\n    }\n}\nfn c() {}\n";
        let lines = test_lines(&strip(src));
        assert_eq!(&lines[..7], &[false, true, true, true, true, true, false]);
    }

    #[test]
    fn a_test_only_function_is_not_a_test_module() {
        let src = "#[cfg(test)]\nfn helper() {}\nfn c() {}\n";
        assert!(test_lines(&strip(src)).iter().all(|t| !t));
    }
}
