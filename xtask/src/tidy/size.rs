//! Size limits: files under [`FILE_LINES`] lines, functions under [`FN_LINES`].
//!
//! Functions are found on rustfmt-formatted code: a line whose first token (after
//! visibility and qualifiers) is `fn name`, up to the first later line that is just
//! `}` at the signature's indentation. Comments and literals are blanked first, so
//! Rust code inside a string is not mistaken for a function.

use super::lexer;
use std::path::Path;

/// A file must stay under this many lines.
pub const FILE_LINES: usize = 500;
/// A function must stay under this many lines, signature and closing brace included.
pub const FN_LINES: usize = 80;

/// Folders checked, relative to the workspace root; `*` is every crate folder.
const DIRS: &[&str] = &[
    "crates/*/src",
    "crates/*/tests",
    "crates/*/benches",
    "tests",
    "xtask/src",
];

/// The I/O wrapper: reads every file under [`DIRS`].
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for dir in expand(root, DIRS) {
        for path in super::rust_files(&dir) {
            files.push((super::shown(root, &path), super::read(&path)?));
        }
    }
    Ok(check(&files))
}

/// `dirs` with `crates/*` expanded to each folder under `crates`.
fn expand(root: &Path, dirs: &[&str]) -> Vec<std::path::PathBuf> {
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    let mut out = Vec::new();
    for d in dirs {
        match d.strip_prefix("crates/*/") {
            Some(rest) => out.extend(crates.iter().map(|c| c.join(rest))),
            None => out.push(root.join(d)),
        }
    }
    out
}

/// Every file and function over its limit, each group largest first.
pub fn check(files: &[(String, String)]) -> Vec<String> {
    let mut long_files: Vec<(usize, &str)> = files
        .iter()
        .map(|(path, text)| (text.lines().count(), path.as_str()))
        .filter(|(n, _)| *n >= FILE_LINES)
        .collect();
    long_files.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut long_fns: Vec<(usize, &str, usize, String)> = files
        .iter()
        .flat_map(|(path, text)| {
            functions(text)
                .into_iter()
                .filter(|f| f.2 >= FN_LINES)
                .map(move |(line, name, len)| (len, path.as_str(), line, name))
        })
        .collect();
    long_fns.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
    let files = long_files.into_iter().map(|(n, path)| {
        format!("{path}: {n} lines (limit: under {FILE_LINES}); split it into modules by topic")
    });
    let fns = long_fns.into_iter().map(|(n, path, line, name)| {
        format!(
            "{path}:{line}: fn `{name}` is {n} lines (limit: under {FN_LINES}); \
             extract its steps into named functions"
        )
    });
    files.chain(fns).collect()
}

/// Every function with a body in `text`: `(1-based line, name, length in lines)`.
pub fn functions(text: &str) -> Vec<(usize, String, usize)> {
    let stripped = lexer::strip(text);
    let lines: Vec<&str> = stripped.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        // The body opens on the first line with a `{`, unless a `;` ends the
        // signature first (a declaration in a trait or an `extern` block).
        let Some(open) = (start..lines.len())
            .find(|&k| lines[k].contains('{') || lines[k].trim_end().ends_with(';'))
        else {
            continue;
        };
        if !lines[open].contains('{') {
            continue;
        }
        let opened = lines[open].matches('{').count();
        if opened == lines[open].matches('}').count() {
            continue; // `fn f() {}` and other one-line bodies
        }
        let close = (open + 1..lines.len()).find(|&k| {
            let t = lines[k].trim_end();
            t.strip_prefix(indent) == Some("}")
        });
        if let Some(close) = close {
            out.push((start + 1, name, close - start + 1));
        }
    }
    out
}

/// The function named on a signature line, if `line` is one.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = match r.strip_prefix('(') {
            Some(vis) => vis.split_once(')')?.1,
            None => r,
        }
        .trim_start();
    }
    loop {
        let before = rest;
        for q in ["const ", "async ", "unsafe ", "default "] {
            rest = rest.strip_prefix(q).unwrap_or(rest).trim_start();
        }
        if let Some(r) = rest.strip_prefix("extern ") {
            rest = r.trim_start();
            if let Some(abi) = rest.strip_prefix('"') {
                rest = abi
                    .split_once('"')
                    .map_or(abi, |(_, after)| after)
                    .trim_start();
            }
        }
        if rest == before {
            break;
        }
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str, indent: &str, inner: usize) -> String {
        let mut s = format!(
            "{indent}pub(crate) async fn {name}(\n{indent}    x: u8,\n{indent}) -> u8 {{\n"
        );
        for _ in 0..inner {
            s.push_str(&format!(
                "{indent}    let _ = if x > 0 {{ 1 }} else {{ 2 }};\n"
            ));
        }
        s.push_str(&format!("{indent}}}\n"));
        s
    }

    #[test]
    fn measures_functions_from_signature_to_closing_brace() {
        let text = format!(
            "//! doc\n{}impl A {{\n    fn short(&self) {{}}\n    fn decl(&self);\n{}}}\n",
            body("outer", "", 2),
            body("inner", "    ", 0)
        );
        let found = functions(&text);
        assert_eq!(
            found,
            [(2, "outer".to_string(), 6), (11, "inner".to_string(), 4)]
        );
    }

    #[test]
    fn where_clauses_and_strings_do_not_confuse_it() {
        let text =
            "fn g<T>(t: T)\nwhere\n    T: Copy,\n{\n    let s = \"\n}\nfn fake() {\n\";\n}\n";
        assert_eq!(functions(text), [(1, "g".to_string(), 9)]);
    }

    #[test]
    fn reports_long_files_and_functions_largest_first() {
        let small = body("small", "", FN_LINES - 5);
        let big = body("big", "", FN_LINES + 10);
        let long = "//!\n".repeat(FILE_LINES + 3);
        let files = [
            ("a.rs".to_string(), small),
            (
                "b.rs".to_string(),
                format!("{}{big}", body("edge", "", FN_LINES - 4)),
            ),
            ("c.rs".to_string(), long),
        ];
        let found = check(&files);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("c.rs: 503 lines (limit: under 500)"));
        assert!(
            found[1].starts_with("b.rs:81: fn `big` is 94 lines"),
            "{}",
            found[1]
        );
        assert!(
            found[2].starts_with("b.rs:1: fn `edge` is 80 lines"),
            "{}",
            found[2]
        );
    }

    #[test]
    fn recognises_signature_lines() {
        assert_eq!(fn_name("    pub fn a() {").as_deref(), Some("a"));
        assert_eq!(
            fn_name("pub(in crate::x) const unsafe fn b_2<T>(").as_deref(),
            Some("b_2")
        );
        assert_eq!(fn_name("extern \"C\" fn c() {").as_deref(), Some("c"));
        assert_eq!(fn_name("    let f = fn_ptr;"), None);
        assert_eq!(fn_name("    f: fn(u8) -> u8,"), None);
    }
}
