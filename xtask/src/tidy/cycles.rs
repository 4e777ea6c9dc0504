//! No module cycles inside a crate.
//!
//! Every `.rs` file under a crate's `src/` is a module (`lib.rs`/`main.rs` the root,
//! `a.rs` or `a/mod.rs` is `a`, `a/b.rs` is `a::b`). Each `crate::…`, `super::…` and
//! `self::…` path in it (in `use` items, groups included, and inline) resolves to the
//! longest module path that exists, giving an edge between file modules. Edges to the
//! crate root or to the module's own descendants, and paths inside `#[cfg(test)]`
//! modules, are ignored. A cycle in what remains is an error.

use super::lexer;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// One source file of a crate: its path (for messages), module path and text.
pub struct SourceFile {
    pub path: String,
    pub module: Vec<String>,
    pub text: String,
}

/// The first place a module uses another: `(file, 1-based line)`.
type Edges = BTreeMap<String, BTreeMap<String, (String, usize)>>;

/// The I/O wrapper: every workspace crate's `src/`.
pub fn run(root: &Path) -> Result<Vec<String>, String> {
    let meta = super::metadata(root)?;
    let mut problems = Vec::new();
    for package in &meta.packages {
        let Some(dir) = package.manifest_path.parent() else {
            continue;
        };
        let src = dir.join("src");
        let mut files = Vec::new();
        for path in super::rust_files(&src) {
            let rel = path.strip_prefix(&src).unwrap_or(&path);
            if let Some(module) = module_path(rel) {
                let text = super::read(&path)?;
                files.push(SourceFile {
                    path: super::shown(root, &path),
                    module,
                    text,
                });
            }
        }
        problems.extend(check(&package.name, &files));
    }
    Ok(problems)
}

/// The module path of a file, given relative to `src/`; `None` for `src/bin/*`
/// (separate crates).
pub fn module_path(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") && parts.len() > 1 {
        return None;
    }
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    match stem {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts)
}

/// One message per cycle among the modules of `files`.
pub fn check(krate: &str, files: &[SourceFile]) -> Vec<String> {
    let edges = edges(files);
    cycles(&edges)
        .into_iter()
        .map(|cycle| {
            let uses: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let (file, line) = &edges[&w[0]][&w[1]];
                    format!("{file}:{line} uses {}", show(&w[1]))
                })
                .collect();
            let names: Vec<String> = cycle.iter().map(|m| show(m)).collect();
            format!(
                "crate `{krate}` has a module cycle {} ({}); move what both sides need \
                 into a module of its own, or merge them",
                names.join(" -> "),
                uses.join("; ")
            )
        })
        .collect()
}

fn show(module: &str) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.into()
    }
}

/// The module graph: file module → file module, with the first use site.
fn edges(files: &[SourceFile]) -> Edges {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges = Edges::new();
    for f in files {
        let from = f.module.join("::");
        let node = edges.entry(from.clone()).or_default();
        for (line, path) in references(&f.module, &f.text) {
            let to = (0..=path.len())
                .rev()
                .map(|n| &path[..n])
                .find(|p| modules.contains(*p))
                .unwrap_or(&[]);
            // The root, the module itself and its descendants are not edges.
            if to.is_empty() || to.starts_with(&f.module) {
                continue;
            }
            node.entry(to.join("::"))
                .or_insert_with(|| (f.path.clone(), line));
        }
    }
    edges
}

/// Absolute module paths (segments after `crate`) a file refers to, with 1-based
/// lines; paths in `#[cfg(test)]` modules are left out.
pub fn references(module: &[String], text: &str) -> Vec<(usize, Vec<String>)> {
    let stripped = lexer::strip(text);
    let tests = lexer::test_lines(&stripped);
    let b = stripped.as_bytes();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            c if is_ident(c) && (i == 0 || !is_ident(b[i - 1])) => {
                let word = ident(b, i);
                let end = i + word.len();
                if word == "mod" {
                    let name_at = skip_ws(b, end);
                    let name = ident(b, name_at);
                    let open = skip_ws(b, name_at + name.len());
                    if !name.is_empty() && b.get(open) == Some(&b'{') {
                        inline.push((name.to_owned(), depth));
                        depth += 1;
                        i = open + 1;
                        continue;
                    }
                } else if matches!(word, "crate" | "super" | "self")
                    && b[end..].starts_with(b"::")
                    && !after_in(b, i)
                {
                    let mut paths = Vec::new();
                    let next = use_tree(b, i, Vec::new(), &mut paths);
                    let line = lexer::line_of(&stripped, i);
                    let mut here = module.to_vec();
                    here.extend(inline.iter().map(|(n, _)| n.clone()));
                    if !tests.get(line).copied().unwrap_or(false) {
                        out.extend(
                            paths
                                .iter()
                                .filter_map(|p| absolute(&here, p))
                                .map(|p| (line + 1, p)),
                        );
                    }
                    i = next;
                    continue;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `path` (starting with `crate`, `self` or `super`s) made absolute from `here`.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let (base, rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (here.to_vec(), &path[1..]),
        _ => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            (
                here.get(..here.len().checked_sub(ups)?)?.to_vec(),
                &path[ups..],
            )
        }
    };
    let mut abs = base;
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(abs)
}

/// Parses a path or use tree at `i` (`a::b`, `a::{b, c::d}`, `a::*`), pushing each
/// full path onto `out`; returns the index after it.
fn use_tree(b: &[u8], i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let i = skip_ws(b, i);
    if b.get(i) == Some(&b'{') {
        let mut i = i + 1;
        loop {
            i = skip_ws(b, i);
            match b.get(i) {
                None => return i,
                Some(b'}') => return i + 1,
                Some(b',') => i += 1,
                Some(_) => {
                    let next = use_tree(b, i, prefix.clone(), out);
                    // Skip what the tree did not consume (`as x`) up to `,` or `}`.
                    i = next.max(i + 1);
                    while i < b.len() && !matches!(b[i], b',' | b'}') {
                        i += 1;
                    }
                }
            }
        }
    }
    let word = ident(b, i);
    if word.is_empty() {
        out.push(prefix);
        return i + usize::from(b.get(i) == Some(&b'*'));
    }
    let mut path = prefix;
    path.push(word.to_owned());
    let end = i + word.len();
    if b[end..].starts_with(b"::") && b.get(end + 2).is_some_and(|&c| c != b'<') {
        return use_tree(b, end + 2, path, out);
    }
    out.push(path);
    end
}

/// Whether the word at `i` follows `in` (`pub(in crate::a)` is visibility, not use).
fn after_in(b: &[u8], i: usize) -> bool {
    b[..i].trim_ascii_end().ends_with(b"(in")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident(b: &[u8], i: usize) -> &str {
    let end = (i..b.len()).find(|&k| !is_ident(b[k])).unwrap_or(b.len());
    std::str::from_utf8(&b[i.min(end)..end]).unwrap_or("")
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// One shortest cycle per strongly connected component, each starting and ending at
/// the component's first module, e.g. `[a::b, c, a::b]`.
fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    let reach: BTreeMap<&String, BTreeSet<&String>> =
        edges.keys().map(|n| (n, reachable(edges, n))).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (node, from_node) in &reach {
        if seen.contains(node) || !from_node.contains(node) {
            continue;
        }
        let component: BTreeSet<&String> = from_node
            .iter()
            .filter(|m| reach.get(*m).is_some_and(|r| r.contains(node)))
            .copied()
            .collect();
        seen.extend(component.iter().copied());
        out.push(shortest_cycle(edges, node, &component));
    }
    out
}

/// Every module reachable from `start` in one or more steps.
fn reachable<'a>(edges: &'a Edges, start: &String) -> BTreeSet<&'a String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<&String> = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for next in edges.get(n).into_iter().flat_map(BTreeMap::keys) {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    seen
}

fn shortest_cycle(edges: &Edges, start: &String, within: &BTreeSet<&String>) -> Vec<String> {
    let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue: VecDeque<&String> = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for next in edges.get(n).into_iter().flat_map(BTreeMap::keys) {
            if next == start {
                let mut path = vec![start.clone(), n.clone()];
                let mut at = n;
                while let Some(p) = parent.get(at) {
                    path.push((*p).clone());
                    at = p;
                }
                path.reverse();
                return path;
            }
            if within.contains(next) && !parent.contains_key(next) {
                parent.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    vec![start.clone()]
}

#[cfg(test)]
mod tests;
